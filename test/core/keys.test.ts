import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificatePublicKey, parseCertificate } from '../../src/core/certificate.js';
import type { CoreErrorCode } from '../../src/core/errors.js';
import {
  describeKey,
  type KeyDescription,
  type KeyFormat,
  matchKeyToCertificate,
  type ParsedPrivateKey,
  parsePrivateKeyDer,
  parsePrivateKeyPem,
  sniffPrivateKeyDer,
} from '../../src/core/keys.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import {
  assertCoreError,
  needs,
  needsCorpus,
  PYCA,
  REQUIRE_ALL,
  tempDir,
  tool,
} from '../support/tools.js';

const ASYMMETRIC = join(PYCA, 'asymmetric');
const FOLDERS = [
  'PKCS8',
  'Traditional_OpenSSL_Serialization',
  'DER_Serialization',
  'PEM_Serialization',
];

/** Reads one key file: DER by extension, else the one PEM block it holds. */
function parseFile(path: string, password?: string): ParsedPrivateKey {
  const bytes = readFileSync(path);
  if (path.endsWith('.der')) return parsePrivateKeyDer(bytes, password);
  const blocks = parsePemBlocks(bytes);
  assert.equal(blocks.length, 1, `${path} should hold one PEM block`);
  return parsePrivateKeyPem(blocks[0]!, password);
}

type Expectation =
  | {
      ok: { type: KeyDescription['type']; bits: number; curve?: string; format: KeyFormat };
      password?: string;
    }
  | { error: CoreErrorCode; password?: string };

const rsa = (bits: number, format: KeyFormat, password?: string): Expectation => ({
  ok: { type: 'rsa', bits, format },
  ...(password === undefined ? {} : { password }),
});
const dsa = (bits: number, format: KeyFormat, password?: string): Expectation => ({
  ok: { type: 'dsa', bits, format },
  ...(password === undefined ? {} : { password }),
});
const p256 = (format: KeyFormat, password?: string): Expectation => ({
  ok: { type: 'ec', bits: 256, curve: 'P-256', format },
  ...(password === undefined ? {} : { password }),
});
const pss: Expectation = { ok: { type: 'rsa-pss', bits: 2048, format: 'pkcs8' } };
const publicKey: Expectation = { error: 'UnsupportedFormat' };
const unsupported: Expectation = { error: 'UnsupportedAlgorithm' };

/** What each pyca key file must give (passwords from the corpus README). */
const EXPECTED: Record<string, Expectation> = {
  'PKCS8/bad-encryption-oid.pem': { error: 'UnsupportedAlgorithm', password: 'anything' },
  'PKCS8/bad-oid-dsa-key.pem': unsupported,
  'PKCS8/ec_oid_not_in_reg_private_2.pkcs8.pem': unsupported,
  'PKCS8/ec_private_key.pem': p256('pkcs8'),
  'PKCS8/ec_private_key_encrypted.pem': p256('encrypted-pkcs8', '123456'),
  'PKCS8/ecc_private_with_rfc5915_ext.pem': p256('pkcs8'),
  'PKCS8/enc-rsa-pkcs8.pem': rsa(1024, 'encrypted-pkcs8', 'foobar'),
  'PKCS8/enc2-rsa-pkcs8.pem': rsa(1024, 'encrypted-pkcs8', 'baz'),
  'PKCS8/nodompar_private.pkcs8.pem': unsupported,
  'PKCS8/private.pem': unsupported,
  'PKCS8/rsa_pss_2048.pem': pss,
  'PKCS8/rsa_pss_2048_hash.pem': pss,
  'PKCS8/rsa_pss_2048_hash_mask.pem': pss,
  'PKCS8/rsa_pss_2048_hash_mask_diff.pem': pss,
  'PKCS8/rsa_pss_2048_hash_mask_salt.pem': pss,
  'PKCS8/rsa_pss_2048_pub.der': publicKey,
  'PKCS8/unenc-dsa-pkcs8.pem': dsa(1024, 'pkcs8'),
  'PKCS8/unenc-dsa-pkcs8.pub.pem': publicKey,
  'PKCS8/unenc-rsa-pkcs8.pem': rsa(1024, 'pkcs8'),
  'PKCS8/unenc-rsa-pkcs8.pub.pem': publicKey,
  'PKCS8/withdompar_private.pkcs8.pem': unsupported,
  'Traditional_OpenSSL_Serialization/dsa.1024.pem': dsa(1024, 'dsa-traditional'),
  'Traditional_OpenSSL_Serialization/dsa.2048.pem': dsa(2048, 'dsa-traditional'),
  'Traditional_OpenSSL_Serialization/dsa.3072.pem': dsa(3072, 'dsa-traditional'),
  'Traditional_OpenSSL_Serialization/key1.pem': rsa(512, 'traditional-encrypted', '123456'),
  'Traditional_OpenSSL_Serialization/key2.pem': rsa(512, 'traditional-encrypted', 'a123456'),
  'Traditional_OpenSSL_Serialization/testrsa-encrypted.pem': rsa(
    512,
    'traditional-encrypted',
    'password',
  ),
  'Traditional_OpenSSL_Serialization/testrsa.pem': rsa(512, 'pkcs1'),
  'DER_Serialization/dsa.1024.der': dsa(1024, 'dsa-traditional'),
  'DER_Serialization/dsa.2048.der': dsa(2048, 'dsa-traditional'),
  'DER_Serialization/dsa.3072.der': dsa(3072, 'dsa-traditional'),
  'DER_Serialization/dsa_public_key.der': publicKey,
  'DER_Serialization/dsa_public_key_invalid_bit_string.der': publicKey,
  'DER_Serialization/dsa_public_key_no_params.der': publicKey,
  'DER_Serialization/ec_private_key.der': p256('sec1'),
  'DER_Serialization/ec_private_key_encrypted.der': p256('encrypted-pkcs8', '123456'),
  'DER_Serialization/ec_public_key.der': publicKey,
  'DER_Serialization/enc-rsa-pkcs8.der': rsa(1024, 'encrypted-pkcs8', 'foobar'),
  'DER_Serialization/enc2-rsa-pkcs8.der': rsa(1024, 'encrypted-pkcs8', 'baz'),
  'DER_Serialization/rsa_public_key.der': publicKey,
  'DER_Serialization/testrsa.der': rsa(512, 'pkcs1'),
  'DER_Serialization/unenc-dsa-pkcs8.der': dsa(1024, 'pkcs8'),
  'DER_Serialization/unenc-dsa-pkcs8.pub.der': publicKey,
  'DER_Serialization/unenc-rsa-pkcs8.der': rsa(1024, 'pkcs8'),
  'DER_Serialization/unenc-rsa-pkcs8.pub.der': publicKey,
  'PEM_Serialization/dsa_4096.pem': dsa(4096, 'dsa-traditional'),
  'PEM_Serialization/dsa_private_key.pem': dsa(2048, 'traditional-encrypted', '123456'),
  'PEM_Serialization/dsa_public_key.pem': publicKey,
  'PEM_Serialization/dsaparam.pem': { error: 'UnsupportedFormat' },
  'PEM_Serialization/ec_private_key.pem': p256('sec1'),
  'PEM_Serialization/ec_private_key_encrypted.pem': p256('traditional-encrypted', '123456'),
  'PEM_Serialization/ec_public_key.pem': publicKey,
  // OpenSSL loads it, but with q = 2 it cannot sign: refused as damaged.
  'PEM_Serialization/rsa-bad-1025-q-is-2.pem': { error: 'MalformedInput' },
  'PEM_Serialization/rsa_private_key.pem': rsa(2048, 'traditional-encrypted', '123456'),
  'PEM_Serialization/rsa_public_key.pem': publicKey,
};
for (let n = 9925; n <= 9932; n++) {
  EXPECTED[`PKCS8/pkcs12_s2k_pem-X_${n}.pem`] = rsa(1024, 'encrypted-pkcs8', '123456');
}
EXPECTED['PKCS8/pkcs12_s2k_pem-X_9607.pem'] = rsa(1024, 'encrypted-pkcs8', '123456');
EXPECTED['PKCS8/pkcs12_s2k_pem-X_9671.pem'] = rsa(1024, 'encrypted-pkcs8', '123456');

describe('pyca private-key vectors', { skip: needsCorpus(ASYMMETRIC) }, () => {
  const files = existsSync(ASYMMETRIC)
    ? FOLDERS.flatMap((folder) =>
        readdirSync(join(ASYMMETRIC, folder))
          .filter((f) => /\.(pem|der)$/.test(f))
          .sort()
          .map((f) => `${folder}/${f}`),
      )
    : [];

  for (const file of files) {
    const expected = EXPECTED[file];
    const path = join(ASYMMETRIC, file);
    const title =
      expected && 'ok' in expected
        ? `reads ${file} as ${expected.ok.type} ${expected.ok.bits} (${expected.ok.format})`
        : `refuses ${file} with ${expected?.error ?? '?'}`;
    it(title, () => {
      assert.ok(expected, `no expectation recorded for ${file}`);
      if ('error' in expected) {
        assertCoreError(() => parseFile(path, expected.password), expected.error);
        return;
      }
      const parsed = parseFile(path, expected.password);
      const description = describeKey(parsed.key);
      assert.equal(parsed.format, expected.ok.format);
      assert.equal(parsed.encrypted, expected.password !== undefined);
      assert.equal(description.type, expected.ok.type);
      assert.equal(description.bits, expected.ok.bits);
      assert.equal(description.curve, expected.ok.curve);
      if (expected.password !== undefined) {
        assertCoreError(() => parseFile(path), 'PasswordRequired');
        assertCoreError(() => parseFile(path, `${expected.password}-wrong`), 'WrongPassword');
      }
    });
  }

  it('gives one public-key fingerprint to the same key in every container', () => {
    const ec = [
      'PEM_Serialization/ec_private_key.pem',
      'PEM_Serialization/ec_private_key_encrypted.pem',
      'PKCS8/ec_private_key.pem',
      'PKCS8/ec_private_key_encrypted.pem',
      'DER_Serialization/ec_private_key.der',
      'DER_Serialization/ec_private_key_encrypted.der',
    ].map((f) => describeKey(parseFile(join(ASYMMETRIC, f), '123456').key).publicKeySha256);
    assert.equal(new Set(ec).size, 1);
    const rsa512 = [
      'Traditional_OpenSSL_Serialization/testrsa.pem',
      'Traditional_OpenSSL_Serialization/testrsa-encrypted.pem',
      'DER_Serialization/testrsa.der',
    ].map((f) => describeKey(parseFile(join(ASYMMETRIC, f), 'password').key).publicKeySha256);
    assert.equal(new Set(rsa512).size, 1);
  });

  it('refuses an unknown encryption OID even without a password', () => {
    assertCoreError(
      () => parseFile(join(ASYMMETRIC, 'PKCS8/bad-encryption-oid.pem')),
      'UnsupportedAlgorithm',
    );
  });

  it('describes a public key the same way as its private key', () => {
    const parsed = parseFile(join(ASYMMETRIC, 'PKCS8/unenc-rsa-pkcs8.pem'));
    assert.deepEqual(describeKey(createPublicKey(parsed.key)), describeKey(parsed.key));
  });
});

describe('sniffPrivateKeyDer', { skip: needsCorpus(ASYMMETRIC) }, () => {
  const sniff = (file: string) => sniffPrivateKeyDer(readFileSync(join(ASYMMETRIC, file)));

  it('names each DER private-key structure', () => {
    assert.equal(sniff('DER_Serialization/testrsa.der'), 'pkcs1');
    assert.equal(sniff('DER_Serialization/ec_private_key.der'), 'sec1');
    assert.equal(sniff('DER_Serialization/unenc-rsa-pkcs8.der'), 'pkcs8');
    assert.equal(sniff('DER_Serialization/enc2-rsa-pkcs8.der'), 'encrypted-pkcs8');
    assert.equal(sniff('DER_Serialization/dsa.2048.der'), 'dsa-traditional');
  });

  it('returns undefined for public keys, certificates and garbage', () => {
    assert.equal(sniff('DER_Serialization/rsa_public_key.der'), undefined);
    assert.equal(sniff('DER_Serialization/ec_public_key.der'), undefined);
    const cert = parsePemBlocks(readFileSync(join(PYCA, 'x509/cryptography.io.pem')))[0]!;
    assert.equal(sniffPrivateKeyDer(cert.der), undefined);
    assert.equal(sniffPrivateKeyDer(Buffer.from('not asn.1 at all')), undefined);
    assert.equal(sniffPrivateKeyDer(new Uint8Array(0)), undefined);
  });
});

describe('damaged and foreign input', () => {
  it('refuses garbage bytes as UnsupportedFormat', () => {
    assertCoreError(() => parsePrivateKeyDer(Buffer.from('hello, world')), 'UnsupportedFormat');
    assertCoreError(
      () => parsePrivateKeyDer(Buffer.from([0x30, 0x03, 0x02, 0x01])),
      'UnsupportedFormat',
    );
  });

  it('refuses a PEM block that is not a key', () => {
    const block = { label: 'CERTIFICATE', headers: {}, der: Buffer.from([0x30, 0]), text: '' };
    assertCoreError(() => parsePrivateKeyPem(block), 'UnsupportedFormat');
  });
});

describe('openssl-made keys', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => tool('openssl', args);
  const pem = (name: string, password?: string) => {
    const blocks = parsePemBlocks(readFileSync(at(name)));
    const keyBlock = blocks.find((b) => b.label.endsWith('PRIVATE KEY'));
    assert.ok(keyBlock, `${name} has no private key block`);
    return parsePrivateKeyPem(keyBlock, password);
  };
  const der = (name: string, password?: string) =>
    parsePrivateKeyDer(readFileSync(at(name)), password);
  const PASS = 'pass:s3cret';

  before(async () => {
    ({ dir, cleanup } = tempDir());
    await openssl('genrsa', '-traditional', '-out', at('rsa-pkcs1.pem'), '2048');
    await openssl('ecparam', '-name', 'prime256v1', '-genkey', '-out', at('ec-sec1.pem'));
    await openssl('ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', at('p384.pem'));
    await openssl(
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:3072',
      '-out',
      at('rsa-pkcs8.pem'),
    );
    await openssl('genpkey', '-algorithm', 'ed25519', '-out', at('ed25519.pem'));
    await openssl('genpkey', '-algorithm', 'ed448', '-out', at('ed448.pem'));
    await openssl('genpkey', '-algorithm', 'X25519', '-out', at('x25519.pem'));
    await openssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-aes256',
      '-pass',
      PASS,
      '-out',
      at('ec-aes256.pem'),
    );
    await openssl(
      'pkcs8',
      '-topk8',
      '-in',
      at('rsa-pkcs1.pem'),
      '-v2',
      'aes-256-cbc',
      '-passout',
      PASS,
      '-out',
      at('rsa-pkcs8-aes256.pem'),
    );
    await openssl(
      'pkcs8',
      '-topk8',
      '-in',
      at('rsa-pkcs1.pem'),
      '-v2',
      'des3',
      '-passout',
      PASS,
      '-out',
      at('rsa-pkcs8-des3.pem'),
    );
    await openssl(
      'pkcs8',
      '-topk8',
      '-in',
      at('rsa-pkcs1.pem'),
      '-v1',
      'PBE-SHA1-3DES',
      '-passout',
      PASS,
      '-out',
      at('rsa-pbe-3des.pem'),
    );
    await openssl(
      'pkcs8',
      '-topk8',
      '-in',
      at('ed25519.pem'),
      '-v2',
      'aes-128-cbc',
      '-passout',
      PASS,
      '-out',
      at('ed25519-aes.pem'),
    );
    await openssl(
      'rsa',
      '-in',
      at('rsa-pkcs1.pem'),
      '-aes128',
      '-traditional',
      '-passout',
      PASS,
      '-out',
      at('rsa-trad-aes128.pem'),
    );
    await openssl(
      'rsa',
      '-in',
      at('rsa-pkcs1.pem'),
      '-des3',
      '-traditional',
      '-passout',
      PASS,
      '-out',
      at('rsa-trad-des3.pem'),
    );
    await openssl(
      'ec',
      '-in',
      at('ec-sec1.pem'),
      '-aes256',
      '-passout',
      PASS,
      '-out',
      at('ec-trad-aes256.pem'),
    );
    await openssl(
      'rsa',
      '-in',
      at('rsa-pkcs1.pem'),
      '-traditional',
      '-outform',
      'DER',
      '-out',
      at('rsa-pkcs1.der'),
    );
    await openssl('ec', '-in', at('ec-sec1.pem'), '-outform', 'DER', '-out', at('ec-sec1.der'));
    // `openssl pkey -outform DER` writes RSA as PKCS#1; -topk8 -nocrypt keeps PKCS#8.
    await openssl(
      'pkcs8',
      '-topk8',
      '-nocrypt',
      '-in',
      at('rsa-pkcs8.pem'),
      '-outform',
      'DER',
      '-out',
      at('rsa-pkcs8.der'),
    );
    await openssl('pkey', '-in', at('ed25519.pem'), '-outform', 'DER', '-out', at('ed25519.der'));
    await openssl(
      'pkcs8',
      '-topk8',
      '-in',
      at('ec-sec1.pem'),
      '-v2',
      'aes-256-cbc',
      '-passout',
      PASS,
      '-outform',
      'DER',
      '-out',
      at('ec-pkcs8-aes.der'),
    );
    await openssl('pkey', '-in', at('rsa-pkcs1.pem'), '-pubout', '-out', at('rsa-pub.pem'));
    await openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      at('rsa-pkcs1.pem'),
      '-subj',
      '/CN=rsa match',
      '-days',
      '1',
      '-out',
      at('rsa-cert.pem'),
    );
    await openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      at('ec-sec1.pem'),
      '-subj',
      '/CN=ec match',
      '-days',
      '1',
      '-out',
      at('ec-cert.pem'),
    );
    await openssl(
      'ecparam',
      '-name',
      'prime256v1',
      '-param_enc',
      'explicit',
      '-genkey',
      '-noout',
      '-out',
      at('ec-explicit-sec1.pem'),
    );
    await openssl(
      'pkcs8',
      '-topk8',
      '-nocrypt',
      '-in',
      at('ec-explicit-sec1.pem'),
      '-out',
      at('ec-explicit-pkcs8.pem'),
    );
    await openssl(
      'pkcs8',
      '-topk8',
      '-in',
      at('ec-explicit-sec1.pem'),
      '-v2',
      'aes-256-cbc',
      '-passout',
      PASS,
      '-out',
      at('ec-explicit-enc.pem'),
    );
    // The same EC key, its point compressed in the certificate's SubjectPublicKeyInfo.
    await openssl(
      'ec',
      '-in',
      at('ec-sec1.pem'),
      '-conv_form',
      'compressed',
      '-out',
      at('ec-compressed.pem'),
    );
    await openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      at('ec-compressed.pem'),
      '-subj',
      '/CN=compressed',
      '-days',
      '1',
      '-out',
      at('ec-compressed-cert.pem'),
    );
  });
  after(() => cleanup());

  const secret = 's3cret';

  it('reads a PKCS#1 RSA key from genrsa -traditional', () => {
    const parsed = pem('rsa-pkcs1.pem');
    assert.equal(parsed.format, 'pkcs1');
    assert.equal(parsed.encrypted, false);
    assert.deepEqual(
      { type: describeKey(parsed.key).type, bits: describeKey(parsed.key).bits },
      { type: 'rsa', bits: 2048 },
    );
  });

  it('reads a SEC1 EC key from ecparam -genkey and refuses its EC PARAMETERS block', () => {
    const blocks = parsePemBlocks(readFileSync(at('ec-sec1.pem')));
    const params = blocks.find((b) => b.label === 'EC PARAMETERS');
    assert.ok(params);
    assertCoreError(() => parsePrivateKeyPem(params), 'UnsupportedFormat');
    const parsed = pem('ec-sec1.pem');
    assert.equal(parsed.format, 'sec1');
    assert.equal(describeKey(parsed.key).curve, 'P-256');
    assert.equal(describeKey(pem('p384.pem').key).curve, 'P-384');
    assert.equal(describeKey(pem('p384.pem').key).bits, 384);
  });

  it('reads PKCS#8 keys from genpkey, Ed25519 and Ed448 included', () => {
    const rsa3072 = pem('rsa-pkcs8.pem');
    assert.equal(rsa3072.format, 'pkcs8');
    assert.equal(describeKey(rsa3072.key).bits, 3072);
    const ed = pem('ed25519.pem');
    assert.equal(ed.format, 'pkcs8');
    assert.equal(describeKey(ed.key).type, 'ed25519');
    assert.equal(describeKey(ed.key).bits, undefined);
    assert.equal(describeKey(pem('ed448.pem').key).type, 'ed448');
  });

  it('refuses EC keys with explicit curve parameters, encrypted or not', () => {
    assertCoreError(() => pem('ec-explicit-sec1.pem'), 'UnsupportedAlgorithm');
    assertCoreError(() => pem('ec-explicit-pkcs8.pem'), 'UnsupportedAlgorithm');
    assertCoreError(() => pem('ec-explicit-enc.pem', secret), 'UnsupportedAlgorithm');
  });

  it('refuses an X25519 key, which cannot sign', () => {
    assertCoreError(() => pem('x25519.pem'), 'UnsupportedAlgorithm');
  });

  for (const [file, format] of [
    ['ec-aes256.pem', 'encrypted-pkcs8'],
    ['rsa-pkcs8-aes256.pem', 'encrypted-pkcs8'],
    ['rsa-pkcs8-des3.pem', 'encrypted-pkcs8'],
    ['rsa-pbe-3des.pem', 'encrypted-pkcs8'],
    ['ed25519-aes.pem', 'encrypted-pkcs8'],
    ['rsa-trad-aes128.pem', 'traditional-encrypted'],
    ['rsa-trad-des3.pem', 'traditional-encrypted'],
    ['ec-trad-aes256.pem', 'traditional-encrypted'],
  ] as const) {
    it(`opens ${file} with its password, and asks for it or refuses a wrong one`, () => {
      const parsed = pem(file, secret);
      assert.equal(parsed.format, format);
      assert.equal(parsed.encrypted, true);
      assertCoreError(() => pem(file), 'PasswordRequired');
      assertCoreError(() => pem(file, 'not-the-password'), 'WrongPassword');
    });
  }

  it('opens the same key from every container with one fingerprint', () => {
    const fingerprints = [
      pem('rsa-pkcs1.pem'),
      der('rsa-pkcs1.der'),
      pem('rsa-pkcs8-aes256.pem', secret),
      pem('rsa-pkcs8-des3.pem', secret),
      pem('rsa-pbe-3des.pem', secret),
      pem('rsa-trad-aes128.pem', secret),
      pem('rsa-trad-des3.pem', secret),
    ].map((p) => describeKey(p.key).publicKeySha256);
    assert.equal(new Set(fingerprints).size, 1);
  });

  it('reads DER variants: PKCS#1, SEC1, PKCS#8 and encrypted PKCS#8', () => {
    assert.equal(der('rsa-pkcs1.der').format, 'pkcs1');
    assert.equal(der('ec-sec1.der').format, 'sec1');
    assert.equal(der('rsa-pkcs8.der').format, 'pkcs8');
    assert.equal(describeKey(der('ed25519.der').key).type, 'ed25519');
    const encrypted = der('ec-pkcs8-aes.der', secret);
    assert.equal(encrypted.format, 'encrypted-pkcs8');
    assert.equal(
      describeKey(encrypted.key).publicKeySha256,
      describeKey(pem('ec-sec1.pem').key).publicKeySha256,
    );
    assertCoreError(() => der('ec-pkcs8-aes.der'), 'PasswordRequired');
    assertCoreError(() => der('ec-pkcs8-aes.der', 'wrong'), 'WrongPassword');
  });

  it('fingerprints the SubjectPublicKeyInfo exactly as openssl does', async () => {
    const spki = await openssl(
      'pkey',
      '-in',
      at('rsa-pkcs1.pem'),
      '-pubout',
      '-outform',
      'DER',
      '-out',
      at('rsa-pub.der'),
    );
    assert.equal(spki, '');
    const digest = await openssl('dgst', '-sha256', '-r', at('rsa-pub.der'));
    const hex = digest.split(' ')[0]!.toUpperCase().match(/../g)!.join(':');
    assert.equal(describeKey(pem('rsa-pkcs1.pem').key).publicKeySha256, hex);
  });

  it('refuses a public key file as UnsupportedFormat', () => {
    const [block] = parsePemBlocks(readFileSync(at('rsa-pub.pem')));
    assertCoreError(() => parsePrivateKeyPem(block!), 'UnsupportedFormat');
    assertCoreError(() => parsePrivateKeyDer(block!.der), 'UnsupportedFormat');
  });

  it('refuses a traditional encrypted block without DEK-Info as MalformedInput', () => {
    const text = readFileSync(at('rsa-trad-aes128.pem'), 'latin1').replace(/^DEK-Info:.*\n/m, '');
    const [block] = parsePemBlocks(text);
    assertCoreError(() => parsePrivateKeyPem(block!, secret), 'MalformedInput');
  });

  it('refuses a PKCS#8 key whose inner structure is damaged as MalformedInput', () => {
    const bytes = Buffer.from(readFileSync(at('rsa-pkcs8.der')));
    // The inner RSAPrivateKey SEQUENCE starts after the OCTET STRING header; make it a SET.
    const inner = bytes.indexOf(Buffer.from([0x04, 0x82]), 20) + 4;
    assert.equal(bytes[inner], 0x30);
    bytes[inner] = 0x31;
    assertCoreError(() => parsePrivateKeyDer(bytes), 'MalformedInput');
  });

  it('matches a key to its own certificate and not to another', () => {
    const rsaKey = pem('rsa-pkcs1.pem').key;
    const ecKey = pem('ec-sec1.pem').key;
    const rsaCert = parseCertificate(parsePemBlocks(readFileSync(at('rsa-cert.pem')))[0]!.der);
    const ecCert = parseCertificate(parsePemBlocks(readFileSync(at('ec-cert.pem')))[0]!.der);
    assert.equal(matchKeyToCertificate(rsaKey, rsaCert), true);
    assert.equal(matchKeyToCertificate(ecKey, ecCert), true);
    assert.equal(matchKeyToCertificate(rsaKey, ecCert), false);
    assert.equal(matchKeyToCertificate(ecKey, rsaCert), false);
    assert.equal(matchKeyToCertificate(pem('rsa-pkcs8.pem').key, rsaCert), false);
    assert.equal(
      describeKey(certificatePublicKey(rsaCert)).publicKeySha256,
      describeKey(rsaKey).publicKeySha256,
    );
  });

  it('matches an EC key to a certificate that carries its point compressed', () => {
    const cert = parseCertificate(
      parsePemBlocks(readFileSync(at('ec-compressed-cert.pem')))[0]!.der,
    );
    assert.equal(matchKeyToCertificate(pem('ec-sec1.pem').key, cert), true);
    assert.equal(matchKeyToCertificate(pem('ec-aes256.pem', secret).key, cert), false);
  });
});

/** True when this openssl CLI can load the legacy provider (to make DES/RC2 fixtures). */
function legacyProviderSkip(): false | string {
  if (needs('openssl')) return 'SKIPPED: needs `openssl`';
  try {
    execFileSync('openssl', ['list', '-providers', '-provider', 'legacy'], { stdio: 'ignore' });
    return false;
  } catch {
    const reason = 'SKIPPED: the openssl CLI has no legacy provider to make DES/RC2 keys';
    if (REQUIRE_ALL) throw new Error(`${reason} (CERTKEEPER_REQUIRE_ALL=1)`);
    console.warn(reason);
    return reason;
  }
}

describe('keys under legacy ciphers', { skip: legacyProviderSkip() }, () => {
  let dir = '';
  let cleanup = () => {};
  const at = (name: string) => join(dir, name);
  const LEGACY = ['-provider', 'legacy', '-provider', 'default'];
  const PASS = 'pass:s3cret';

  before(async () => {
    ({ dir, cleanup } = tempDir());
    await tool('openssl', ['genrsa', '-traditional', '-out', at('rsa.pem'), '2048']);
    const topk8 = ['pkcs8', '-topk8', '-in', at('rsa.pem'), '-passout', PASS, ...LEGACY];
    await tool('openssl', [...topk8, '-v1', 'PBE-SHA1-RC2-40', '-out', at('rc2-40.pem')]);
    await tool('openssl', [...topk8, '-v1', 'PBE-MD5-DES', '-out', at('md5-des.pem')]);
    await tool('openssl', [...topk8, '-v2', 'des-cbc', '-out', at('pbes2-des.pem')]);
    await tool('openssl', [
      ...topk8,
      '-v2',
      'rc2-cbc',
      '-outform',
      'DER',
      '-out',
      at('pbes2-rc2.der'),
    ]);
    const rsa = ['rsa', '-in', at('rsa.pem'), '-traditional', '-passout', PASS, ...LEGACY];
    await tool('openssl', [...rsa, '-des', '-out', at('trad-des.pem')]);
  });
  after(() => cleanup());

  for (const file of ['rc2-40.pem', 'md5-des.pem', 'pbes2-des.pem', 'trad-des.pem']) {
    it(`refuses ${file} as UnsupportedAlgorithm, with or without the password`, () => {
      const [block] = parsePemBlocks(readFileSync(at(file)));
      assertCoreError(() => parsePrivateKeyPem(block!, 's3cret'), 'UnsupportedAlgorithm');
      assertCoreError(() => parsePrivateKeyPem(block!), 'UnsupportedAlgorithm');
    });
  }

  it('refuses a DER PBES2/RC2-CBC key as UnsupportedAlgorithm', () => {
    assertCoreError(
      () => parsePrivateKeyDer(readFileSync(at('pbes2-rc2.der')), 's3cret'),
      'UnsupportedAlgorithm',
    );
  });

  it('refuses a DEK-Info cipher OpenSSL does not know as UnsupportedAlgorithm', () => {
    const text = readFileSync(at('trad-des.pem'), 'latin1').replace('DES-CBC,', 'FOO-CBC,');
    const [block] = parsePemBlocks(text);
    assertCoreError(() => parsePrivateKeyPem(block!, 's3cret'), 'UnsupportedAlgorithm');
  });
});
