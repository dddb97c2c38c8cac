import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Csr, describeCsr, parseCsr } from '../../src/core/csr.js';
import type { CoreErrorCode } from '../../src/core/errors.js';
import { describeKey, parsePrivateKeyPem } from '../../src/core/keys.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { assertCoreError, needs, needsCorpus, PYCA, tempDir, tool } from '../support/tools.js';

const REQUESTS = join(PYCA, 'x509', 'requests');

const CSR_LABELS = new Set(['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);

function readCsrFile(path: string): Csr {
  const bytes = readFileSync(path);
  if (path.endsWith('.der')) return parseCsr(bytes);
  const blocks = parsePemBlocks(bytes).filter((b) => CSR_LABELS.has(b.label));
  assert.equal(blocks.length, 1, `${path} should hold one CSR block`);
  return parseCsr(blocks[0]!.der);
}

interface Understood {
  /** The verdict of `openssl req -verify` (null: MD4, which OpenSSL 3 doesn't offer either). */
  valid: boolean | null;
  algorithm: string;
  key: string;
  subject: string;
  dns?: string[];
  challenge?: boolean;
  extensions?: string[];
}
type Expectation = Understood | { error: CoreErrorCode };

const PYCA_SUBJECT = 'CN=cryptography.io,O=PyCA,L=Austin,ST=Texas,C=US';
const PYCA_SUBJECT_REVERSED = 'L=Austin,ST=Texas,C=US,O=PyCA,CN=cryptography.io';

/** One line per file of x509/requests; signature verdicts agree with `openssl req -verify`. */
const EXPECTED: Record<string, Expectation> = {
  'bad-version.pem': { error: 'MalformedInput' },
  'basic_constraints.pem': {
    valid: false,
    algorithm: 'sha1WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT,
    extensions: ['2.5.29.19'],
  },
  'challenge-invalid.der': {
    valid: false,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'C=US',
    challenge: true,
  },
  'challenge-multi-valued.der': {
    valid: false,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'C=US',
    challenge: true,
  },
  'challenge-unstructured.pem': {
    valid: true,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'CN=something',
    challenge: true,
  },
  'challenge.pem': {
    valid: true,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'C=US',
    challenge: true,
  },
  'dsa_sha1.der': {
    valid: true,
    algorithm: 'dsa-with-SHA1',
    key: 'dsa 1024',
    subject: PYCA_SUBJECT_REVERSED,
  },
  'dsa_sha1.pem': {
    valid: true,
    algorithm: 'dsa-with-SHA1',
    key: 'dsa 1024',
    subject: PYCA_SUBJECT_REVERSED,
  },
  'ec_sha256.der': {
    valid: true,
    algorithm: 'ecdsa-with-SHA256',
    key: 'ec P-384',
    subject: PYCA_SUBJECT_REVERSED,
  },
  'ec_sha256.pem': {
    valid: true,
    algorithm: 'ecdsa-with-SHA256',
    key: 'ec P-384',
    subject: PYCA_SUBJECT_REVERSED,
  },
  'ec_sha256_old_header.pem': {
    valid: true,
    algorithm: 'ecdsa-with-SHA256',
    key: 'ec P-384',
    subject: PYCA_SUBJECT_REVERSED,
  },
  // pyca refuses it; OpenSSL reads and verifies it, and so do we (a real FreeIPA request).
  'freeipa-bad-critical.pem': {
    valid: true,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'CN=replica1.ipa.test,O=IPA.TEST',
    dns: ['replica1.ipa.test'],
    extensions: ['2.5.29.17', '2.5.29.19', '2.5.29.14', '1.3.6.1.4.1.311.20.2'],
  },
  'invalid_signature.pem': {
    valid: false,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 1024',
    subject: 'CN=test',
  },
  'long-form-attribute.pem': {
    valid: false,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'C=US',
    challenge: true,
  },
  'rsa_md4.der': {
    valid: null,
    algorithm: 'md4WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT_REVERSED,
  },
  'rsa_md4.pem': {
    valid: null,
    algorithm: 'md4WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT_REVERSED,
  },
  'rsa_sha1.der': {
    valid: true,
    algorithm: 'sha1WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT,
  },
  'rsa_sha1.pem': {
    valid: true,
    algorithm: 'sha1WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT,
  },
  'rsa_sha256.der': {
    valid: true,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT,
  },
  'rsa_sha256.pem': {
    valid: true,
    algorithm: 'sha256WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT,
  },
  'san_rsa_sha1.der': {
    valid: true,
    algorithm: 'sha1WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'CN=cryptography.io,O=PyCA,L=Chicago,ST=Illinois,C=US',
    dns: ['cryptography.io', 'sub.cryptography.io'],
    extensions: ['2.5.29.17'],
  },
  'san_rsa_sha1.pem': {
    valid: true,
    algorithm: 'sha1WithRSAEncryption',
    key: 'rsa 2048',
    subject: 'CN=cryptography.io,O=PyCA,L=Chicago,ST=Illinois,C=US',
    dns: ['cryptography.io', 'sub.cryptography.io'],
    extensions: ['2.5.29.17'],
  },
  // The same extension requested twice: refused, as RFC 5280 §4.2 forbids it.
  'two_basic_constraints.pem': { error: 'MalformedInput' },
  'unsupported_extension.pem': {
    valid: false,
    algorithm: 'sha1WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT,
    extensions: ['1.2.3.4'],
  },
  'unsupported_extension_critical.pem': {
    valid: false,
    algorithm: 'sha1WithRSAEncryption',
    key: 'rsa 2048',
    subject: PYCA_SUBJECT,
    extensions: ['1.2.3.4'],
  },
};

describe('pyca certificate requests', { skip: needsCorpus(REQUESTS) }, () => {
  const files = existsSync(REQUESTS) ? readdirSync(REQUESTS).sort() : [];
  for (const file of files) {
    const expected = EXPECTED[file];
    const title =
      expected && 'error' in expected
        ? `refuses ${file} with ${expected.error}`
        : `describes ${file} (signature ${expected ? String(expected.valid) : '?'})`;
    it(title, () => {
      assert.ok(expected, `no expectation recorded for ${file}`);
      const path = join(REQUESTS, file);
      if ('error' in expected) {
        assertCoreError(() => readCsrFile(path), expected.error);
        return;
      }
      const csr = readCsrFile(path);
      const d = describeCsr(csr);
      assert.equal(d.signatureValid, expected.valid);
      assert.equal(d.signatureAlgorithm, expected.algorithm);
      assert.equal(`${d.key.type} ${d.key.curve ?? d.key.bits}`, expected.key);
      assert.equal(d.subject.rfc4514, expected.subject);
      assert.deepEqual(d.sans.dns, expected.dns ?? []);
      assert.equal(d.challengePassword, expected.challenge ?? false);
      assert.deepEqual(
        csr.extensions.map((e) => e.oid),
        expected.extensions ?? [],
      );
    });
  }

  it('never puts the challenge password into the description', () => {
    const d = describeCsr(readCsrFile(join(REQUESTS, 'challenge.pem')));
    assert.equal(d.challengePassword, true);
    assert.ok(!JSON.stringify(d).includes('challenge me'));
  });

  it('reads the same request from PEM and DER identically', () => {
    const pem = readCsrFile(join(REQUESTS, 'ec_sha256.pem'));
    const der = readCsrFile(join(REQUESTS, 'ec_sha256.der'));
    assert.ok(pem.der.equals(der.der));
    assert.deepEqual(describeCsr(pem), describeCsr(der));
  });

  it('keeps the attributes with the DER of each value', () => {
    const csr = readCsrFile(join(REQUESTS, 'challenge-multi-valued.der'));
    const challenge = csr.attributes.find((a) => a.oid === '1.2.840.113549.1.9.7');
    assert.equal(challenge?.values.length, 2);
  });

  it('refuses a certificate given as a request', () => {
    const [cert] = parsePemBlocks(readFileSync(join(PYCA, 'x509/cryptography.io.pem')));
    assertCoreError(() => parseCsr(cert!.der), 'MalformedInput');
  });
});

describe('damaged requests', () => {
  it('refuses bytes that are not ASN.1 as typed errors', () => {
    assertCoreError(() => parseCsr(Buffer.from('garbage')), 'MalformedInput');
    assertCoreError(() => parseCsr(Buffer.from([0x02, 0x01, 0x00])), 'UnsupportedFormat');
    assertCoreError(() => parseCsr(Buffer.from([0x30, 0x00])), 'MalformedInput');
  });
});

describe('openssl-made requests', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  const at = (name: string) => join(dir, name);
  const SAN =
    'subjectAltName=DNS:www.example.com,DNS:example.com,IP:192.0.2.1,IP:2001:db8::1,email:admin@example.com,URI:https://example.com/';
  const SUBJECT = '/C=DE/ST=Berlin/L=Berlin/O=Example GmbH/OU=Web/CN=www.example.com';

  before(async () => {
    ({ dir, cleanup } = tempDir());
    await tool('openssl', ['genrsa', '-out', at('rsa.pem'), '2048']);
    await tool('openssl', [
      'ecparam',
      '-name',
      'prime256v1',
      '-genkey',
      '-noout',
      '-out',
      at('ec.pem'),
    ]);
    await tool('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', at('ed.pem')]);
    for (const key of ['rsa', 'ec', 'ed']) {
      await tool('openssl', [
        'req',
        '-new',
        '-key',
        at(`${key}.pem`),
        '-subj',
        SUBJECT,
        '-addext',
        SAN,
        '-out',
        at(`${key}.csr`),
      ]);
    }
    // A challenge password comes only from a config file's [req_attributes].
    writeFileSync(
      at('challenge.cnf'),
      [
        '[req]',
        'prompt = no',
        'distinguished_name = dn',
        'attributes = attrs',
        '[dn]',
        'CN = challenge.example',
        '[attrs]',
        'challengePassword = do-not-show-me',
        '',
      ].join('\n'),
    );
    await tool('openssl', [
      'req',
      '-new',
      '-key',
      at('ec.pem'),
      '-config',
      at('challenge.cnf'),
      '-out',
      at('challenge.csr'),
    ]);
    await tool('openssl', [
      'req',
      '-in',
      at('rsa.csr'),
      '-outform',
      'DER',
      '-out',
      at('rsa.csr.der'),
    ]);
  });
  after(() => cleanup());

  for (const [key, type, sigAlg] of [
    ['rsa', 'rsa', 'sha256WithRSAEncryption'],
    ['ec', 'ec', 'ecdsa-with-SHA256'],
    ['ed', 'ed25519', 'Ed25519'],
  ] as const) {
    it(`describes an ${type} request with every kind of SAN`, () => {
      const d = describeCsr(readCsrFile(at(`${key}.csr`)));
      assert.equal(d.signatureValid, true);
      assert.equal(d.signatureAlgorithm, sigAlg);
      assert.equal(d.key.type, type);
      assert.equal(
        d.subject.rfc4514,
        'CN=www.example.com,OU=Web,O=Example GmbH,L=Berlin,ST=Berlin,C=DE',
      );
      assert.deepEqual(d.sans, {
        dns: ['www.example.com', 'example.com'],
        ip: ['192.0.2.1', '2001:db8::1'],
        email: ['admin@example.com'],
        uri: ['https://example.com/'],
      });
      assert.equal(d.challengePassword, false);
    });
  }

  it('describes the key the same way as the key file it came from', async () => {
    const [block] = parsePemBlocks(readFileSync(at('ec.pem')));
    const key = describeKey((await parsePrivateKeyPem(block!)).key);
    assert.deepEqual(describeCsr(readCsrFile(at('ec.csr'))).key, key);
  });

  it('reads a DER request', () => {
    const csr = parseCsr(readFileSync(at('rsa.csr.der')));
    assert.equal(describeCsr(csr).signatureValid, true);
  });

  it('says a challenge password is there without showing it', () => {
    const d = describeCsr(readCsrFile(at('challenge.csr')));
    assert.equal(d.challengePassword, true);
    assert.ok(!JSON.stringify(d).includes('do-not-show-me'));
  });

  it('finds a request whose subject was altered after signing invalid', () => {
    const der = Buffer.from(parseCsr(readFileSync(at('rsa.csr.der'))).der);
    const at_ = der.indexOf(Buffer.from('Example GmbH'));
    assert.ok(at_ > 0);
    der[at_] = 'X'.charCodeAt(0);
    const d = describeCsr(parseCsr(der));
    assert.equal(d.signatureValid, false);
    assert.equal(d.subject.attributes.find((a) => a.type === 'O')?.value, 'Xxample GmbH');
  });
});
