import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { certificatePublicKey, parseCertificate } from '../../src/core/certificate.js';
import { readChildren, readTlv, type Tlv } from '../../src/core/der.js';
import { type CoreErrorCode, isCoreError } from '../../src/core/errors.js';
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
import { readMaterial } from '../../src/core/read.js';
import { needs, needsCorpus, PYCA, REQUIRE_ALL, tempDir, tool } from '../support/tools.js';

const ASYMMETRIC = join(PYCA, 'asymmetric');
const FOLDERS = [
  'PKCS8',
  'Traditional_OpenSSL_Serialization',
  'DER_Serialization',
  'PEM_Serialization',
];

/** Reads one key file: DER by extension, else the one PEM block it holds. */
function parseFile(path: string, password?: string): Promise<ParsedPrivateKey> {
  const bytes = readFileSync(path);
  if (path.endsWith('.der')) return parsePrivateKeyDer(bytes, password);
  const blocks = parsePemBlocks(bytes);
  assert.equal(blocks.length, 1, `${path} should hold one PEM block`);
  return parsePrivateKeyPem(blocks[0]!, password);
}

/** Asserts that `promise` rejects with a CoreError of `code`. */
async function rejectsWith(promise: Promise<unknown>, code: CoreErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isCoreError(err), `expected a CoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
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
    it(title, async () => {
      assert.ok(expected, `no expectation recorded for ${file}`);
      if ('error' in expected) {
        await rejectsWith(parseFile(path, expected.password), expected.error);
        return;
      }
      const parsed = await parseFile(path, expected.password);
      const description = describeKey(parsed.key);
      assert.equal(parsed.format, expected.ok.format);
      assert.equal(parsed.encrypted, expected.password !== undefined);
      assert.equal(description.type, expected.ok.type);
      assert.equal(description.bits, expected.ok.bits);
      assert.equal(description.curve, expected.ok.curve);
      if (expected.password !== undefined) {
        await rejectsWith(parseFile(path), 'PasswordRequired');
        await rejectsWith(parseFile(path, `${expected.password}-wrong`), 'WrongPassword');
      }
    });
  }

  it('gives one public-key fingerprint to the same key in every container', async () => {
    const fingerprints = (files: string[], password: string) =>
      Promise.all(
        files.map(
          async (f) =>
            describeKey((await parseFile(join(ASYMMETRIC, f), password)).key).publicKeySha256,
        ),
      );
    const ec = await fingerprints(
      [
        'PEM_Serialization/ec_private_key.pem',
        'PEM_Serialization/ec_private_key_encrypted.pem',
        'PKCS8/ec_private_key.pem',
        'PKCS8/ec_private_key_encrypted.pem',
        'DER_Serialization/ec_private_key.der',
        'DER_Serialization/ec_private_key_encrypted.der',
      ],
      '123456',
    );
    assert.equal(new Set(ec).size, 1);
    const rsa512 = await fingerprints(
      [
        'Traditional_OpenSSL_Serialization/testrsa.pem',
        'Traditional_OpenSSL_Serialization/testrsa-encrypted.pem',
        'DER_Serialization/testrsa.der',
      ],
      'password',
    );
    assert.equal(new Set(rsa512).size, 1);
  });

  it('refuses an unknown encryption OID even without a password', async () => {
    await rejectsWith(
      parseFile(join(ASYMMETRIC, 'PKCS8/bad-encryption-oid.pem')),
      'UnsupportedAlgorithm',
    );
  });

  it('describes a public key the same way as its private key', async () => {
    const parsed = await parseFile(join(ASYMMETRIC, 'PKCS8/unenc-rsa-pkcs8.pem'));
    assert.deepEqual(describeKey(createPublicKey(parsed.key)), describeKey(parsed.key));
  });
});

describe('sniffPrivateKeyDer', { skip: needsCorpus(ASYMMETRIC) }, () => {
  const sniff = (file: string) => sniffPrivateKeyDer(readFileSync(join(ASYMMETRIC, file)));

  it('names each DER private-key structure', async () => {
    assert.equal(sniff('DER_Serialization/testrsa.der'), 'pkcs1');
    assert.equal(sniff('DER_Serialization/ec_private_key.der'), 'sec1');
    assert.equal(sniff('DER_Serialization/unenc-rsa-pkcs8.der'), 'pkcs8');
    assert.equal(sniff('DER_Serialization/enc2-rsa-pkcs8.der'), 'encrypted-pkcs8');
    assert.equal(sniff('DER_Serialization/dsa.2048.der'), 'dsa-traditional');
  });

  it('returns undefined for public keys, certificates and garbage', async () => {
    assert.equal(sniff('DER_Serialization/rsa_public_key.der'), undefined);
    assert.equal(sniff('DER_Serialization/ec_public_key.der'), undefined);
    const cert = parsePemBlocks(readFileSync(join(PYCA, 'x509/cryptography.io.pem')))[0]!;
    assert.equal(sniffPrivateKeyDer(cert.der), undefined);
    assert.equal(sniffPrivateKeyDer(Buffer.from('not asn.1 at all')), undefined);
    assert.equal(sniffPrivateKeyDer(new Uint8Array(0)), undefined);
  });
});

describe('damaged and foreign input', () => {
  it('refuses garbage bytes as UnsupportedFormat', async () => {
    await rejectsWith(parsePrivateKeyDer(Buffer.from('hello, world')), 'UnsupportedFormat');
    await rejectsWith(
      parsePrivateKeyDer(Buffer.from([0x30, 0x03, 0x02, 0x01])),
      'UnsupportedFormat',
    );
  });

  it('refuses a PEM block that is not a key', async () => {
    const block = { label: 'CERTIFICATE', headers: {}, der: Buffer.from([0x30, 0]), text: '' };
    await rejectsWith(parsePrivateKeyPem(block), 'UnsupportedFormat');
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

  it('reads a PKCS#1 RSA key from genrsa -traditional', async () => {
    const parsed = await pem('rsa-pkcs1.pem');
    assert.equal(parsed.format, 'pkcs1');
    assert.equal(parsed.encrypted, false);
    assert.deepEqual(
      { type: describeKey(parsed.key).type, bits: describeKey(parsed.key).bits },
      { type: 'rsa', bits: 2048 },
    );
  });

  it('reads a SEC1 EC key from ecparam -genkey and refuses its EC PARAMETERS block', async () => {
    const blocks = parsePemBlocks(readFileSync(at('ec-sec1.pem')));
    const params = blocks.find((b) => b.label === 'EC PARAMETERS');
    assert.ok(params);
    await rejectsWith(parsePrivateKeyPem(params), 'UnsupportedFormat');
    const parsed = await pem('ec-sec1.pem');
    assert.equal(parsed.format, 'sec1');
    assert.equal(describeKey(parsed.key).curve, 'P-256');
    assert.equal(describeKey((await pem('p384.pem')).key).curve, 'P-384');
    assert.equal(describeKey((await pem('p384.pem')).key).bits, 384);
  });

  it('reads PKCS#8 keys from genpkey, Ed25519 and Ed448 included', async () => {
    const rsa3072 = await pem('rsa-pkcs8.pem');
    assert.equal(rsa3072.format, 'pkcs8');
    assert.equal(describeKey(rsa3072.key).bits, 3072);
    const ed = await pem('ed25519.pem');
    assert.equal(ed.format, 'pkcs8');
    assert.equal(describeKey(ed.key).type, 'ed25519');
    assert.equal(describeKey(ed.key).bits, undefined);
    assert.equal(describeKey((await pem('ed448.pem')).key).type, 'ed448');
  });

  it('refuses EC keys with explicit curve parameters, encrypted or not', async () => {
    await rejectsWith(pem('ec-explicit-sec1.pem'), 'UnsupportedAlgorithm');
    await rejectsWith(pem('ec-explicit-pkcs8.pem'), 'UnsupportedAlgorithm');
    await rejectsWith(pem('ec-explicit-enc.pem', secret), 'UnsupportedAlgorithm');
  });

  it('refuses an X25519 key, which cannot sign', async () => {
    await rejectsWith(pem('x25519.pem'), 'UnsupportedAlgorithm');
  });

  it('calls an encrypted PKCS#8 key with a broken inner length damaged, not "not a key"', async () => {
    const [block] = parsePemBlocks(readFileSync(at('ec-aes256.pem')));
    const good = block!.der;
    // Every element in the algorithm identifier, found by walking its structure (a salt's
    // random bytes may look like a tag), whose short length is made to claim 2 GiB.
    const starts: number[] = [];
    const walk = (tlv: Tlv) => {
      starts.push(tlv.start);
      if (good[tlv.start]! & 0x20) for (const child of readChildren(good, tlv)) walk(child);
    };
    // Inside it: its own length is the outer SEQUENCE's business, which the sniff reads.
    const algorithm = readChildren(good, readTlv(good))[0]!;
    for (const child of readChildren(good, algorithm)) walk(child);
    let tried = 0;
    for (const i of starts) {
      const length = good[i + 1]!;
      if (length < 5 || length >= 0x80) continue;
      const bad = Buffer.from(good);
      bad.set([0x84, 0x7f, 0xff, 0xff, 0xff], i + 1);
      await assert.rejects(readMaterial(bad, { password: 's3cret' }), (e: unknown) => {
        assert.ok(isCoreError(e), String(e));
        // The outer element is intact, so it is a key: damaged, never an unknown format.
        assert.equal(e.code, 'MalformedInput', `byte ${i}: ${e.message}`);
        return true;
      });
      tried++;
    }
    assert.ok(tried >= 6, `tried ${tried} lengths`);
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
    it(`opens ${file} with its password, and asks for it or refuses a wrong one`, async () => {
      const parsed = await pem(file, secret);
      assert.equal(parsed.format, format);
      assert.equal(parsed.encrypted, true);
      await rejectsWith(pem(file), 'PasswordRequired');
      await rejectsWith(pem(file, 'not-the-password'), 'WrongPassword');
    });
  }

  it('opens the same key from every container with one fingerprint', async () => {
    const fingerprints = [
      await pem('rsa-pkcs1.pem'),
      await der('rsa-pkcs1.der'),
      await pem('rsa-pkcs8-aes256.pem', secret),
      await pem('rsa-pkcs8-des3.pem', secret),
      await pem('rsa-pbe-3des.pem', secret),
      await pem('rsa-trad-aes128.pem', secret),
      await pem('rsa-trad-des3.pem', secret),
    ].map((p) => describeKey(p.key).publicKeySha256);
    assert.equal(new Set(fingerprints).size, 1);
  });

  it('reads DER variants: PKCS#1, SEC1, PKCS#8 and encrypted PKCS#8', async () => {
    assert.equal((await der('rsa-pkcs1.der')).format, 'pkcs1');
    assert.equal((await der('ec-sec1.der')).format, 'sec1');
    assert.equal((await der('rsa-pkcs8.der')).format, 'pkcs8');
    assert.equal(describeKey((await der('ed25519.der')).key).type, 'ed25519');
    const encrypted = await der('ec-pkcs8-aes.der', secret);
    assert.equal(encrypted.format, 'encrypted-pkcs8');
    assert.equal(
      describeKey(encrypted.key).publicKeySha256,
      describeKey((await pem('ec-sec1.pem')).key).publicKeySha256,
    );
    await rejectsWith(der('ec-pkcs8-aes.der'), 'PasswordRequired');
    await rejectsWith(der('ec-pkcs8-aes.der', 'wrong'), 'WrongPassword');
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
    assert.equal(describeKey((await pem('rsa-pkcs1.pem')).key).publicKeySha256, hex);
  });

  it('refuses a public key file as UnsupportedFormat', async () => {
    const [block] = parsePemBlocks(readFileSync(at('rsa-pub.pem')));
    await rejectsWith(parsePrivateKeyPem(block!), 'UnsupportedFormat');
    await rejectsWith(parsePrivateKeyDer(block!.der), 'UnsupportedFormat');
  });

  it('still names a public key whose damage is deep inside (the outer children are read only)', async () => {
    const [block] = parsePemBlocks(readFileSync(at('rsa-pub.pem')));
    const bytes = Buffer.from(block!.der);
    // SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING }: the OID's length
    // now runs past its AlgorithmIdentifier.
    assert.deepEqual([...bytes.subarray(4, 8)], [0x30, 0x0d, 0x06, 0x09]);
    bytes[7] = 0x0c;
    await assert.rejects(parsePrivateKeyDer(bytes), (err: unknown) => {
      assert.ok(isCoreError(err), `expected a CoreError, got ${String(err)}`);
      assert.deepEqual(
        [err.code, err.message],
        ['UnsupportedFormat', 'This is a public key, not a private key.'],
      );
      return true;
    });
  });

  it('refuses a traditional encrypted block without DEK-Info as MalformedInput', async () => {
    const text = readFileSync(at('rsa-trad-aes128.pem'), 'latin1').replace(/^DEK-Info:.*\n/m, '');
    const [block] = parsePemBlocks(text);
    await rejectsWith(parsePrivateKeyPem(block!, secret), 'MalformedInput');
  });

  it('refuses a PKCS#8 key whose inner structure is damaged as MalformedInput', async () => {
    const bytes = Buffer.from(readFileSync(at('rsa-pkcs8.der')));
    // The inner RSAPrivateKey SEQUENCE starts after the OCTET STRING header; make it a SET.
    const inner = bytes.indexOf(Buffer.from([0x04, 0x82]), 20) + 4;
    assert.equal(bytes[inner], 0x30);
    bytes[inner] = 0x31;
    await rejectsWith(parsePrivateKeyDer(bytes), 'MalformedInput');
  });

  it('matches a key to its own certificate and not to another', async () => {
    const rsaKey = (await pem('rsa-pkcs1.pem')).key;
    const ecKey = (await pem('ec-sec1.pem')).key;
    const rsaCert = parseCertificate(parsePemBlocks(readFileSync(at('rsa-cert.pem')))[0]!.der);
    const ecCert = parseCertificate(parsePemBlocks(readFileSync(at('ec-cert.pem')))[0]!.der);
    assert.equal(matchKeyToCertificate(rsaKey, rsaCert), true);
    assert.equal(matchKeyToCertificate(ecKey, ecCert), true);
    assert.equal(matchKeyToCertificate(rsaKey, ecCert), false);
    assert.equal(matchKeyToCertificate(ecKey, rsaCert), false);
    assert.equal(matchKeyToCertificate((await pem('rsa-pkcs8.pem')).key, rsaCert), false);
    assert.equal(
      describeKey(certificatePublicKey(rsaCert)).publicKeySha256,
      describeKey(rsaKey).publicKeySha256,
    );
  });

  it('matches an EC key to a certificate that carries its point compressed', async () => {
    const cert = parseCertificate(
      parsePemBlocks(readFileSync(at('ec-compressed-cert.pem')))[0]!.der,
    );
    assert.equal(matchKeyToCertificate((await pem('ec-sec1.pem')).key, cert), true);
    assert.equal(matchKeyToCertificate((await pem('ec-aes256.pem', secret)).key, cert), false);
  });
});

/** True when this openssl CLI can load the legacy provider (to make DES, RC2 and RC4 keys). */
function hasLegacyProvider(): boolean {
  if (needs('openssl')) return false;
  try {
    execFileSync('openssl', ['list', '-providers', '-provider', 'legacy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Encrypted PKCS#8 under every scheme openssl writes: PBES1, PKCS#12 PBE and PBES2 with
 * PBKDF2 or scrypt. `legacy` marks the ones openssl makes only with its legacy provider.
 */
const SCHEMES: { name: string; args: string[]; legacy: boolean }[] = [
  { name: 'PBE-SHA1-3DES', args: ['-v1', 'PBE-SHA1-3DES'], legacy: false },
  { name: 'PBE-SHA1-2DES', args: ['-v1', 'PBE-SHA1-2DES'], legacy: false },
  { name: 'PBE-SHA1-RC2-40', args: ['-v1', 'PBE-SHA1-RC2-40'], legacy: true },
  { name: 'PBE-SHA1-RC2-128', args: ['-v1', 'PBE-SHA1-RC2-128'], legacy: true },
  { name: 'PBE-SHA1-RC4-40', args: ['-v1', 'PBE-SHA1-RC4-40'], legacy: true },
  { name: 'PBE-SHA1-RC4-128', args: ['-v1', 'PBE-SHA1-RC4-128'], legacy: true },
  { name: 'PBE-MD5-DES', args: ['-v1', 'PBE-MD5-DES'], legacy: true },
  { name: 'PBE-SHA1-DES', args: ['-v1', 'PBE-SHA1-DES'], legacy: true },
  { name: 'PBE-MD5-RC2-64', args: ['-v1', 'PBE-MD5-RC2-64'], legacy: true },
  { name: 'PBE-SHA1-RC2-64', args: ['-v1', 'PBE-SHA1-RC2-64'], legacy: true },
  { name: 'PBES2 des3', args: ['-v2', 'des3'], legacy: false },
  {
    name: 'PBES2 aes-128-cbc hmacWithSHA512',
    args: ['-v2', 'aes-128-cbc', '-v2prf', 'hmacWithSHA512'],
    legacy: false,
  },
  { name: 'PBES2 scrypt aes-256-cbc', args: ['-scrypt'], legacy: false },
  { name: 'PBES2 des-cbc', args: ['-v2', 'des-cbc'], legacy: true },
  { name: 'PBES2 rc2-cbc', args: ['-v2', 'rc2-cbc'], legacy: true },
  { name: 'PBES2 rc2-40-cbc', args: ['-v2', 'rc2-40-cbc'], legacy: true },
  { name: 'PBES2 rc2-64-cbc', args: ['-v2', 'rc2-64-cbc'], legacy: true },
];

describe('encrypted PKCS#8 under legacy and modern schemes', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  const at = (name: string) => join(dir, name);
  const file = (scheme: string, ext: 'pem' | 'der') => at(`${scheme.replace(/\W+/g, '-')}.${ext}`);
  const legacy = hasLegacyProvider();
  /** Why openssl could not make a scheme's fixtures, by scheme name. */
  const unmade = new Map<string, string>();
  let fingerprint = '';

  before(async () => {
    ({ dir, cleanup } = tempDir());
    await tool('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      at('clear.pem'),
    ]);
    fingerprint = describeKey(createPrivateKey(readFileSync(at('clear.pem')))).publicKeySha256;
    const providers = legacy ? ['-provider', 'legacy', '-provider', 'default'] : [];
    for (const { name, args } of SCHEMES) {
      const topk8 = [
        'pkcs8',
        '-topk8',
        '-in',
        at('clear.pem'),
        '-passout',
        'pass:s3cret',
        ...providers,
        ...args,
      ];
      try {
        await tool('openssl', [...topk8, '-out', file(name, 'pem')]);
        await tool('openssl', [...topk8, '-outform', 'DER', '-out', file(name, 'der')]);
      } catch (err) {
        unmade.set(name, String(err).split('\n')[0]!);
      }
    }
  });
  after(() => cleanup());

  /** Skips loudly when openssl could not make the fixture; fails if it should have. */
  const made = (t: TestContext, name: string, isLegacy: boolean): boolean => {
    const why = unmade.get(name);
    if (why === undefined) return true;
    const reason = `SKIPPED: openssl could not make a ${name} key (${why})`;
    // CI has openssl's legacy provider (Debian's libssl3 ships it): nothing skips there.
    if (REQUIRE_ALL) {
      throw new Error(
        `${reason}${legacy || !isLegacy ? ', although it should' : ''} (CERTKEEPER_REQUIRE_ALL=1)`,
      );
    }
    console.warn(reason);
    t.skip(reason);
    return false;
  };

  for (const { name, legacy: isLegacy } of SCHEMES) {
    it(`opens a ${name} key, PEM and DER, and refuses no password or a wrong one`, async (t) => {
      if (!made(t, name, isLegacy)) return;
      const [block] = parsePemBlocks(readFileSync(file(name, 'pem')));
      assert.equal(block?.label, 'ENCRYPTED PRIVATE KEY');
      const der = readFileSync(file(name, 'der'));
      for (const parsed of [
        await parsePrivateKeyPem(block, 's3cret'),
        await parsePrivateKeyDer(der, 's3cret'),
      ]) {
        assert.equal(parsed.format, 'encrypted-pkcs8');
        assert.equal(parsed.encrypted, true);
        assert.equal(describeKey(parsed.key).publicKeySha256, fingerprint);
      }
      await rejectsWith(parsePrivateKeyPem(block, undefined), 'PasswordRequired');
      await rejectsWith(parsePrivateKeyDer(der, 'not-the-password'), 'WrongPassword');
      await rejectsWith(parsePrivateKeyPem(block, 'S3cret'), 'WrongPassword');
    });
  }

  it('reads a legacy-encrypted key through readMaterial, as the upload does', async (t) => {
    if (!made(t, 'PBE-MD5-DES', true)) return;
    const material = await readMaterial(readFileSync(file('PBE-MD5-DES', 'pem')), {
      password: 's3cret',
    });
    assert.deepEqual(
      material.keys.map((k) => [k.format, describeKey(k.key).publicKeySha256]),
      [['encrypted-pkcs8', fingerprint]],
    );
    const wrong = await readMaterial(readFileSync(file('PBE-MD5-DES', 'der')), {
      password: 'wrong',
    }).catch((err: unknown) => err);
    assert.ok(isCoreError(wrong, 'WrongPassword'), String(wrong));
  });
});

describe('traditional PEM keys under legacy ciphers', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  const at = (name: string) => join(dir, name);
  const legacy = hasLegacyProvider();

  before(async () => {
    ({ dir, cleanup } = tempDir());
    await tool('openssl', ['genrsa', '-traditional', '-out', at('rsa.pem'), '2048']);
    const providers = legacy ? ['-provider', 'legacy', '-provider', 'default'] : [];
    const rsa = ['rsa', '-in', at('rsa.pem'), '-traditional', '-passout', 'pass:s3cret'];
    await tool('openssl', [
      ...rsa,
      ...providers,
      legacy ? '-des' : '-aes128',
      '-out',
      at('trad.pem'),
    ]);
  });
  after(() => cleanup());

  it('refuses a DES-CBC one (not PKCS#8) as UnsupportedAlgorithm, with or without the password', async (t) => {
    if (!legacy) {
      const reason = 'SKIPPED: the openssl CLI has no legacy provider to make a DES key';
      if (REQUIRE_ALL) throw new Error(`${reason} (CERTKEEPER_REQUIRE_ALL=1)`);
      console.warn(reason);
      t.skip(reason);
      return;
    }
    const [block] = parsePemBlocks(readFileSync(at('trad.pem')));
    await rejectsWith(parsePrivateKeyPem(block!, 's3cret'), 'UnsupportedAlgorithm');
    await rejectsWith(parsePrivateKeyPem(block!), 'UnsupportedAlgorithm');
  });

  it('refuses a DEK-Info cipher OpenSSL does not know as UnsupportedAlgorithm', async () => {
    const text = readFileSync(at('trad.pem'), 'latin1').replace(/(DES|AES-128)-CBC,/, 'FOO-CBC,');
    const [block] = parsePemBlocks(text);
    await rejectsWith(parsePrivateKeyPem(block!, 's3cret'), 'UnsupportedAlgorithm');
  });
});
