import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as asn from '@peculiar/asn1-x509';
import { type Certificate, getExtension, parseCertificate } from '../../src/core/certificate.js';
import { buildChain } from '../../src/core/chain.js';
import { describeCsr, parseCsr } from '../../src/core/csr.js';
import { type CoreErrorCode, isCoreError } from '../../src/core/errors.js';
import {
  createCsr,
  createSelfSignedCa,
  generateKeyPair,
  issueCertificate,
  type KeySpec,
} from '../../src/core/generate.js';
import { describeKey, matchKeyToCertificate, parsePrivateKeyPem } from '../../src/core/keys.js';
import { parsePemBlocks, toPem } from '../../src/core/pem.js';
import { validateServerChain } from '../../src/core/validate.js';
import { needs, needsCorpus, PYCA, tempDir, tool } from '../support/tools.js';

async function assertRejectsCode(fn: () => Promise<unknown>, code: CoreErrorCode): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(isCoreError(err), `expected a CoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** A fixed instant: golden dates, and `openssl verify -attime` an hour later. */
const NOW = new Date('2030-06-15T12:00:00Z');
const AT_TIME = String(NOW.getTime() / 1000 + 3600);
const DAY = 86_400_000;

const SPECS: { name: string; spec: KeySpec; type: string; bits?: number; curve?: string }[] = [
  { name: 'rsa-2048', spec: { type: 'rsa', bits: 2048 }, type: 'rsa', bits: 2048 },
  { name: 'rsa-3072', spec: { type: 'rsa', bits: 3072 }, type: 'rsa', bits: 3072 },
  { name: 'ec-p256', spec: { type: 'ec', curve: 'P-256' }, type: 'ec', bits: 256, curve: 'P-256' },
  { name: 'ec-p384', spec: { type: 'ec', curve: 'P-384' }, type: 'ec', bits: 384, curve: 'P-384' },
  { name: 'ed25519', spec: { type: 'ed25519' }, type: 'ed25519' },
];

const SIGNATURE_NAMES: Record<string, string> = {
  'rsa-2048': 'sha256WithRSAEncryption',
  'rsa-3072': 'sha256WithRSAEncryption',
  'ec-p256': 'ecdsa-with-SHA256',
  'ec-p384': 'ecdsa-with-SHA384',
  ed25519: 'Ed25519',
};

describe('generateKeyPair', () => {
  it('keeps the event loop running while an RSA-4096 key is generated', async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
    }, 1);
    try {
      const { privateKey } = await generateKeyPair({ type: 'rsa', bits: 4096 });
      assert.equal(describeKey(privateKey).bits, 4096);
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks > 0, 'the interval never ran while the key was generated');
  });

  for (const { name, spec, type, bits, curve } of SPECS) {
    it(`generates a ${name} key pair`, async () => {
      const { privateKey, publicKey } = await generateKeyPair(spec);
      const d = describeKey(privateKey);
      assert.deepEqual({ type: d.type, bits: d.bits, curve: d.curve }, { type, bits, curve });
      assert.equal(describeKey(publicKey).publicKeySha256, d.publicKeySha256);
    });
  }

  for (const spec of [
    { type: 'rsa', bits: 1024 },
    { type: 'ec', curve: 'P-521' },
    { type: 'dsa' },
    null,
  ]) {
    it(`refuses the key spec ${JSON.stringify(spec)} as InvalidGenerationRequest`, async () => {
      await assertRejectsCode(
        () => generateKeyPair(spec as unknown as KeySpec),
        'InvalidGenerationRequest',
      );
    });
  }
});

describe('generated material checked by openssl', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => tool('openssl', args);
  /** openssl with stderr folded into the result (req -verify reports there, exit 0 either way). */
  const opensslAll = (...args: string[]) =>
    tool('sh', ['-c', `openssl "$@" 2>&1`, 'openssl', ...args]);
  const keys: Record<string, KeyObject> = {};
  const writePem = (name: string, label: string, der: Buffer) => {
    writeFileSync(at(name), toPem(label, der));
    return at(name);
  };

  before(async () => {
    ({ dir, cleanup } = tempDir());
    for (const { name, spec } of SPECS) keys[name] = (await generateKeyPair(spec)).privateKey;
  });
  after(() => cleanup());

  for (const { name } of SPECS) {
    it(`round-trips a ${name} key through openssl pkey`, async () => {
      const key = keys[name]!;
      writeFileSync(at(`${name}.key`), key.export({ type: 'pkcs8', format: 'pem' }));
      const check = await opensslAll('pkey', '-in', at(`${name}.key`), '-check', '-noout');
      assert.match(check, /valid/i);
      await openssl('pkey', '-in', at(`${name}.key`), '-out', at(`${name}.back.key`));
      const back = await parsePrivateKeyPem(
        parsePemBlocks(readFileSync(at(`${name}.back.key`)))[0]!,
      );
      assert.equal(describeKey(back.key).publicKeySha256, describeKey(key).publicKeySha256);
    });

    it(`makes a ${name} CSR that openssl verifies, with its subject and SANs`, async () => {
      const der = await createCsr({
        key: keys[name]!,
        subject: {
          CN: 'www.example.com',
          O: 'Exämple GmbH',
          OU: 'Web',
          C: 'de',
          ST: 'Berlin',
          L: 'Berlin',
          emailAddress: 'hostmaster@example.com',
        },
        sans: {
          dns: ['www.example.com', 'Example.com', '*.api.example.com', 'www.example.com'],
          ip: ['192.0.2.10', '2001:db8::1'],
        },
      });
      const path = writePem(`${name}.csr`, 'CERTIFICATE REQUEST', der);
      assert.match(await opensslAll('req', '-in', path, '-verify', '-noout'), /verify OK/);
      const text = await openssl(
        'req',
        '-in',
        path,
        '-noout',
        '-text',
        '-nameopt',
        'oneline,-esc_msb',
      );
      assert.match(
        text,
        /C = DE, ST = Berlin, L = Berlin, O = Exämple GmbH, OU = Web, CN = www\.example\.com, emailAddress = hostmaster@example\.com/,
      );
      assert.match(
        text,
        /DNS:www\.example\.com, DNS:example\.com, DNS:\*\.api\.example\.com, IP Address:192\.0\.2\.10, IP Address:2001:DB8:0:0:0:0:0:1/,
      );
      // C is a PrintableString, a non-ASCII O a UTF8String, the rest PrintableString.
      const dump = await openssl('asn1parse', '-in', path);
      assert.match(dump, /PRINTABLESTRING\s+:DE/);
      assert.match(dump, /UTF8STRING\s+:Ex/);
      assert.match(dump, /PRINTABLESTRING\s+:Web/);
      assert.match(dump, /IA5STRING\s+:hostmaster@example\.com/);

      const d = describeCsr(parseCsr(der));
      assert.equal(d.signatureValid, true);
      assert.equal(d.signatureAlgorithm, SIGNATURE_NAMES[name]);
      assert.deepEqual(d.sans, {
        dns: ['www.example.com', 'example.com', '*.api.example.com'],
        ip: ['192.0.2.10', '2001:db8::1'],
        email: [],
        uri: [],
      });
      assert.equal(d.key.publicKeySha256, describeKey(keys[name]!).publicKeySha256);
    });
  }

  it('makes a CSR with only SANs, the SAN extension then critical', async () => {
    const der = await createCsr({
      key: keys['ec-p256']!,
      subject: {},
      sans: { dns: ['only.example'] },
    });
    const csr = parseCsr(der);
    assert.equal(csr.subject.attributes.length, 0);
    assert.deepEqual(
      csr.extensions.map((e) => [e.oid, e.critical]),
      [['2.5.29.17', true]],
    );
    const path = writePem('san-only.csr', 'CERTIFICATE REQUEST', der);
    assert.match(await opensslAll('req', '-in', path, '-verify', '-noout'), /verify OK/);
  });

  for (const { name } of SPECS) {
    it(`makes a ${name} CA and leaf that openssl verifies`, async () => {
      const caKey = keys[name]!;
      const caDer = await createSelfSignedCa({
        key: caKey,
        subject: { CN: `Test ${name} Root`, O: 'certkeeper tests', C: 'DE' },
        days: 3650,
        now: NOW,
        pathLength: 1,
      });
      const caPath = writePem(`${name}.ca.pem`, 'CERTIFICATE', caDer);
      const caText = await openssl('x509', '-in', caPath, '-noout', '-text');
      assert.match(caText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
      assert.match(caText, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
      assert.match(caText, /X509v3 Subject Key Identifier/);
      assert.match(caText, /Not Before: Jun 15 11:59:00 2030 GMT/);
      // 3650 days counted from notBefore, both ends inclusive (RFC 5280 §4.1.2.5).
      assert.match(caText, /Not After : Jun 12 11:58:59 2040 GMT/);
      const ca = parseCertificate(caDer);
      assert.equal(ca.serialHex.length, 32);
      assert.ok(Number.parseInt(ca.serialHex.slice(0, 2), 16) < 0x80, 'the serial is positive');
      assert.equal(ca.notBefore.getTime(), NOW.getTime() - 60_000);
      assert.equal(ca.notAfter.getTime(), ca.notBefore.getTime() + 3650 * DAY - 1000);

      const leafKey = (await generateKeyPair({ type: 'rsa', bits: 2048 })).privateKey;
      const leafDer = await issueCertificate({
        issuer: { certificate: ca, key: caKey },
        publicKey: leafKey,
        subject: { CN: 'www.example.com' },
        sans: { dns: ['www.example.com'], ip: ['192.0.2.10'] },
        days: 90,
        now: NOW,
        clientAuth: true,
      });
      const leafPath = writePem(`${name}.leaf.pem`, 'CERTIFICATE', leafDer);
      const verdict = await openssl('verify', '-attime', AT_TIME, '-CAfile', caPath, leafPath);
      assert.match(verdict, /: OK/);
      const text = await openssl('x509', '-in', leafPath, '-noout', '-text');
      assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
      assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(text, /DNS:www\.example\.com, IP Address:192\.0\.2\.10/);
      assert.match(text, new RegExp(`Signature Algorithm: ${SIGNATURE_NAMES[name]}`, 'i'));

      const leaf = parseCertificate(leafDer);
      const caSki = getExtension(ca, asn.id_ce_subjectKeyIdentifier, asn.SubjectKeyIdentifier);
      const aki = getExtension(leaf, asn.id_ce_authorityKeyIdentifier, asn.AuthorityKeyIdentifier);
      assert.ok(caSki && aki?.keyIdentifier);
      assert.ok(Buffer.from(aki.keyIdentifier.buffer).equals(Buffer.from(caSki.buffer)));
      assert.equal(matchKeyToCertificate(leafKey, leaf), true);
      assert.notEqual(leaf.serialHex, ca.serialHex);
    });
  }

  it('issues from a CSR, taking its subject and SANs, and caps validity at the issuer', async () => {
    const caKey = keys['ec-p256']!;
    const ca = parseCertificate(
      await createSelfSignedCa({ key: caKey, subject: { CN: 'Short CA' }, days: 30, now: NOW }),
    );
    const leafKey = keys.ed25519!;
    const csr = parseCsr(
      await createCsr({
        key: leafKey,
        subject: { CN: 'csr.example', O: 'From CSR' },
        sans: { dns: ['csr.example', 'alt.csr.example'], ip: ['2001:db8::7'] },
      }),
    );
    const leafDer = await issueCertificate({
      issuer: { certificate: ca, key: caKey },
      csr,
      days: 365,
      now: NOW,
    });
    const leaf = parseCertificate(leafDer);
    assert.equal(leaf.subject.rfc4514, 'CN=csr.example,O=From CSR');
    assert.equal(leaf.issuer.rfc4514, 'CN=Short CA');
    assert.equal(leaf.notAfter.getTime(), ca.notAfter.getTime());
    const san = getExtension(leaf, '2.5.29.17', asn.SubjectAlternativeName);
    assert.deepEqual(
      [...(san ?? [])].map((n) => n.dNSName ?? n.iPAddress),
      ['csr.example', 'alt.csr.example', '2001:db8::7'],
    );
    const usage = getExtension(leaf, asn.id_ce_keyUsage, asn.KeyUsage);
    assert.deepEqual(usage?.toJSON(), ['digitalSignature']);
    const eku = getExtension(leaf, asn.id_ce_extKeyUsage, asn.ExtendedKeyUsage);
    assert.deepEqual([...(eku ?? [])], [asn.id_kp_serverAuth]);
    assert.equal(matchKeyToCertificate(leafKey, leaf), true);

    const caPath = writePem('short-ca.pem', 'CERTIFICATE', ca.der);
    const leafPath = writePem('from-csr.pem', 'CERTIFICATE', leafDer);
    assert.match(await openssl('verify', '-attime', AT_TIME, '-CAfile', caPath, leafPath), /: OK/);
  });

  it('builds root → intermediate → leaf that openssl verifies with -untrusted', async () => {
    const rootKey = keys['ec-p384']!;
    const root = parseCertificate(
      await createSelfSignedCa({
        key: rootKey,
        subject: { CN: 'Chain Root' },
        days: 3650,
        now: NOW,
        pathLength: 1,
      }),
    );
    const interKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
    const inter = parseCertificate(
      await issueCertificate({
        issuer: { certificate: root, key: rootKey },
        publicKey: interKey,
        subject: { CN: 'Chain Intermediate' },
        days: 1825,
        now: NOW,
        isCa: true,
        pathLength: 0,
      }),
    );
    const leafKey = keys['rsa-2048']!;
    const leaf = parseCertificate(
      await issueCertificate({
        issuer: { certificate: inter, key: interKey },
        publicKey: leafKey,
        subject: { CN: 'leaf.chain.example' },
        sans: { dns: ['leaf.chain.example'] },
        days: 90,
        now: NOW,
      }),
    );
    const rootPath = writePem('chain-root.pem', 'CERTIFICATE', root.der);
    const interPath = writePem('chain-inter.pem', 'CERTIFICATE', inter.der);
    const leafPath = writePem('chain-leaf.pem', 'CERTIFICATE', leaf.der);
    const verdict = await openssl(
      'verify',
      '-attime',
      AT_TIME,
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      rootPath,
      '-untrusted',
      interPath,
      leafPath,
    );
    assert.match(verdict, /: OK/);
    const interText = await openssl('x509', '-in', interPath, '-noout', '-text');
    assert.match(interText, /CA:TRUE, pathlen:0/);
    assert.match(interText, /Certificate Sign, CRL Sign/);

    const assembly = buildChain([root, leaf, inter]);
    assert.deepEqual(
      assembly.chain.map((c) => c.subject.rfc4514),
      ['CN=leaf.chain.example', 'CN=Chain Intermediate', 'CN=Chain Root'],
    );
    assert.equal(assembly.complete, true);

    // Under the root's path length 1, an intermediate without its own limit is fine.
    const sibling = await issueCertificate({
      issuer: { certificate: root, key: rootKey },
      publicKey: interKey,
      subject: { CN: 'Chain Intermediate 2' },
      days: 30,
      now: NOW,
      isCa: true,
    });
    assert.equal(parseCertificate(sibling).issuer.rfc4514, 'CN=Chain Root');
    await assertRejectsCode(
      () =>
        issueCertificate({
          issuer: { certificate: inter, key: interKey },
          publicKey: leafKey,
          subject: { CN: 'too deep' },
          days: 30,
          now: NOW,
          isCa: true,
        }),
      'PathLengthExceeded',
    );
    await assertRejectsCode(
      () =>
        issueCertificate({
          issuer: { certificate: leaf, key: leafKey },
          publicKey: interKey,
          subject: { CN: 'from a leaf' },
          days: 30,
          now: NOW,
        }),
      'NotACertificateAuthority',
    );
  });
});

describe('issueCertificate refusals', () => {
  let caKey: KeyObject;
  let ca: Certificate;
  let otherKey: KeyObject;
  const base = () => ({
    issuer: { certificate: ca, key: caKey },
    publicKey: otherKey,
    subject: { CN: 'x.example' },
    sans: { dns: ['x.example'] },
    days: 30,
    now: NOW,
  });

  before(async () => {
    caKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
    otherKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
    ca = parseCertificate(
      await createSelfSignedCa({ key: caKey, subject: { CN: 'Refusing CA' }, days: 10, now: NOW }),
    );
  });

  it('refuses an issuer key that is not the CA certificate’s as KeyMismatch', async () => {
    await assertRejectsCode(
      () => issueCertificate({ ...base(), issuer: { certificate: ca, key: otherKey } }),
      'KeyMismatch',
    );
  });

  it('refuses to issue after the issuer expired', async () => {
    await assertRejectsCode(
      () => issueCertificate({ ...base(), now: new Date(NOW.getTime() + 11 * DAY) }),
      'CertificateExpired',
    );
  });

  it('refuses a CSR whose signature does not verify as SignatureInvalid', async () => {
    const der = Buffer.from(
      await createCsr({
        key: otherKey,
        subject: { CN: 'tampered.example' },
        sans: { dns: ['tampered.example'] },
      }),
    );
    const at = der.indexOf(Buffer.from('tampered'));
    der[at] = 'T'.charCodeAt(0);
    const { publicKey: _unused, sans: _names, ...rest } = base();
    await assertRejectsCode(
      () => issueCertificate({ ...rest, csr: parseCsr(der) }),
      'SignatureInvalid',
    );
  });

  const md4 = join(PYCA, 'x509', 'requests', 'rsa_md4.der');
  it('refuses a CSR signed with MD4, which cannot be checked', {
    skip: needsCorpus(md4),
  }, async () => {
    const { publicKey: _unused, sans: _names, ...rest } = base();
    await assertRejectsCode(
      () => issueCertificate({ ...rest, subject: undefined, csr: parseCsr(readFileSync(md4)) }),
      'UnsupportedAlgorithm',
    );
  });

  type IssueInput = Parameters<typeof issueCertificate>[0];
  const refusals: [string, () => Partial<IssueInput>][] = [
    ['zero days', () => ({ days: 0 })],
    ['fractional days', () => ({ days: 1.5 })],
    ['an invalid clock', () => ({ now: new Date('nonsense') })],
    ['no public key and no CSR', () => ({ publicKey: undefined })],
    ['both a public key and a CSR', () => ({ csr: parseCsr(csrDer) })],
    ['a path length on a leaf', () => ({ pathLength: 1 })],
    ['a bad DNS name', () => ({ sans: { dns: ['under_score.example'] } })],
    ['a bad IP address', () => ({ sans: { ip: ['10.0.0.256'] } })],
    ['a server certificate without SANs', () => ({ sans: undefined })],
    ['a server certificate with only a common name', () => ({ sans: { dns: [] } })],
    ['a common name not among the SANs', () => ({ subject: { CN: 'other.example' } })],
    ['a common name in another letter case', () => ({ subject: { CN: 'X.example' } })],
    [
      'an IP common name not in canonical text',
      () => ({ subject: { CN: '2001:db8:0:0:0:0:0:1' }, sans: { ip: ['2001:db8::1'] } }),
    ],
    ['399 days for a server certificate', () => ({ days: 399 })],
    [
      'an issuer public key instead of its private key',
      () => ({ issuer: { certificate: ca, key: createPublicKey(caKey) } }),
    ],
  ];
  let csrDer: Buffer;
  before(async () => {
    csrDer = await createCsr({ key: otherKey, subject: { CN: 'both.example' } });
  });
  for (const [what, change] of refusals) {
    it(`refuses ${what} as InvalidGenerationRequest`, async () => {
      await assertRejectsCode(
        () => issueCertificate({ ...base(), ...change() }),
        'InvalidGenerationRequest',
      );
    });
  }
});

describe('createCsr and createSelfSignedCa refusals', () => {
  let key: KeyObject;
  before(async () => {
    key = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
  });

  for (const [what, subject, sans] of [
    ['a three-letter country', { CN: 'a.example', C: 'DEU' }, undefined],
    ['a numeric country', { CN: 'a.example', C: '12' }, undefined],
    ['an empty common name', { CN: '  ' }, undefined],
    ['a control character', { CN: 'a\nb' }, undefined],
    ['an over-long common name', { CN: 'x'.repeat(65) }, undefined],
    ['an unknown subject field', { CN: 'a.example', XX: 'y' }, undefined],
    ['a non-ASCII e-mail address', { emailAddress: 'jörg@example.com' }, undefined],
    ['nothing to name', {}, undefined],
    ['an IP address that does not parse', { CN: 'a' }, { ip: ['1.2.3'] }],
    ['a DNS label starting with a hyphen', { CN: 'a' }, { dns: ['-bad.example'] }],
    ['an empty DNS label', { CN: 'a' }, { dns: ['a..example'] }],
    ['a wildcard over a public suffix', { CN: 'a' }, { dns: ['*.com'] }],
    ['a wildcard inside a label', { CN: 'a' }, { dns: ['w*.example.com'] }],
    ['a Unicode DNS name', { CN: 'a' }, { dns: ['bücher.example'] }],
    ['an IP address given as a DNS name', { CN: 'a' }, { dns: ['192.0.2.1'] }],
    ['an unsupported SAN kind', { CN: 'a' }, { email: ['a@example.com'] }],
  ] as const) {
    it(`refuses a CSR with ${what} as InvalidGenerationRequest`, async () => {
      await assertRejectsCode(
        () =>
          createCsr({
            key,
            subject: subject as never,
            ...(sans ? { sans: sans as never } : {}),
          }),
        'InvalidGenerationRequest',
      );
    });
  }

  it('refuses to sign with a public key', async () => {
    await assertRejectsCode(
      () => createCsr({ key: createPublicKey(key), subject: { CN: 'a' } }),
      'InvalidGenerationRequest',
    );
  });

  it('accepts a single-label name such as localhost', async () => {
    const csr = parseCsr(
      await createCsr({
        key,
        subject: { CN: 'localhost' },
        sans: { dns: ['localhost'], ip: ['127.0.0.1', '::1'] },
      }),
    );
    assert.deepEqual(describeCsr(csr).sans.dns, ['localhost']);
    assert.deepEqual(describeCsr(csr).sans.ip, ['127.0.0.1', '::1']);
  });

  for (const [what, change] of [
    ['no subject', { subject: {} }],
    ['a negative path length', { pathLength: -1 }],
    ['zero days', { days: 0 }],
  ] as const) {
    it(`refuses a CA with ${what} as InvalidGenerationRequest`, async () => {
      await assertRejectsCode(
        () => createSelfSignedCa({ key, subject: { CN: 'CA' }, days: 10, now: NOW, ...change }),
        'InvalidGenerationRequest',
      );
    });
  }
});

describe('issued server certificates follow the CA/B Forum profile', {
  skip: needs('openssl'),
}, () => {
  let dir = '';
  let cleanup = () => {};
  let caKey: KeyObject;
  let ca: Certificate;
  let caPath = '';
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => tool('openssl', args);

  before(async () => {
    ({ dir, cleanup } = tempDir());
    caKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
    ca = parseCertificate(
      await createSelfSignedCa({ key: caKey, subject: { CN: 'Profile CA' }, days: 3650, now: NOW }),
    );
    caPath = at('ca.pem');
    writeFileSync(caPath, toPem('CERTIFICATE', ca.der));
    await openssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      at('req.key'),
    );
  });
  after(() => cleanup());

  /** The problems our validator finds with the policy on, and openssl's strict verdict. */
  async function bothValidators(leaf: Certificate, host: string, maxValidityDays = 398) {
    const result = validateServerChain(leaf, {
      trusted: [ca],
      time: new Date(NOW.getTime() + 3600_000),
      host,
      checkPolicy: true,
      policy: { maxValidityDays },
    });
    const path = at(`${leaf.serialHex}.pem`);
    writeFileSync(path, toPem('CERTIFICATE', leaf.der));
    const verdict = await tool('sh', [
      '-c',
      'openssl verify -attime "$1" -x509_strict -purpose sslserver -CAfile "$2" "$3" 2>&1 || true',
      'sh',
      AT_TIME,
      caPath,
      path,
    ]);
    return { problems: result.problems, verdict, path };
  }

  for (const { name, spec } of SPECS) {
    it(`issues a ${name} server certificate that our validator and openssl -x509_strict accept`, async () => {
      const { publicKey } = await generateKeyPair(spec);
      const leaf = parseCertificate(
        await issueCertificate({
          issuer: { certificate: ca, key: caKey },
          publicKey,
          subject: { CN: 'www.profile.example' },
          sans: { dns: ['www.profile.example', 'profile.example'], ip: ['192.0.2.44'] },
          days: 90,
          now: NOW,
        }),
      );
      const { problems, verdict, path } = await bothValidators(leaf, 'profile.example');
      assert.deepEqual(problems, []);
      assert.match(verdict, /: OK/);
      const text = await openssl('x509', '-in', path, '-noout', '-text');
      assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
      const usage =
        spec.type === 'rsa' ? 'Digital Signature, Key Encipherment' : 'Digital Signature';
      assert.match(text, new RegExp(`X509v3 Key Usage: critical\\s+${usage}\\n`));
      assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
      assert.match(text, /X509v3 Authority Key Identifier: \n/);
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
      // At least 64 bits from the CSPRNG (BR 7.1.2.7): 16 bytes, positive, never repeated.
      assert.equal(leaf.serialHex.length, 32);
      assert.ok(Number.parseInt(leaf.serialHex.slice(0, 2), 16) < 0x80);
    });
  }

  it('gives "398 days" exactly 398 days counted from the backdated notBefore, and refuses 399', async () => {
    const { publicKey } = await generateKeyPair({ type: 'ec', curve: 'P-256' });
    const issue = (days: number) =>
      issueCertificate({
        issuer: { certificate: ca, key: caKey },
        publicKey,
        subject: { CN: 'long.profile.example' },
        sans: { dns: ['long.profile.example'] },
        days,
        now: NOW,
      });
    const leaf = parseCertificate(await issue(398));
    assert.equal(leaf.notBefore.getTime(), NOW.getTime() - 60_000);
    // Inclusive of both ends (BR 1.6.1): 398 × 24 h is notAfter − notBefore + 1 s.
    assert.equal(leaf.notAfter.getTime() - leaf.notBefore.getTime() + 1000, 398 * DAY);
    assert.deepEqual((await bothValidators(leaf, 'long.profile.example')).problems, []);
    const stricter = await bothValidators(leaf, 'long.profile.example', 397);
    assert.deepEqual(
      stricter.problems.map((p) => p.code),
      ['PolicyViolation'],
    );
    await assertRejectsCode(() => issue(399), 'InvalidGenerationRequest');
  });

  /** A CSR made by openssl req for the profile key, with `-addext` values. */
  async function opensslCsr(name: string, subject: string, ...addext: string[]) {
    const args = ['req', '-new', '-key', at('req.key'), '-subj', subject, '-out', at(name)];
    for (const ext of addext) args.push('-addext', ext);
    await openssl(...args);
    return parseCsr(parsePemBlocks(readFileSync(at(name)))[0]!.der);
  }
  const fromCsr = (csr: ReturnType<typeof parseCsr>) =>
    issueCertificate({ issuer: { certificate: ca, key: caKey }, csr, days: 90, now: NOW });

  it('carries a clientAuth purpose the CSR asks for, alongside serverAuth', async () => {
    const csr = await opensslCsr(
      'client.csr',
      '/CN=both.profile.example',
      'subjectAltName=DNS:both.profile.example',
      'extendedKeyUsage=serverAuth,clientAuth',
    );
    const leaf = parseCertificate(await fromCsr(csr));
    const eku = getExtension(leaf, asn.id_ce_extKeyUsage, asn.ExtendedKeyUsage);
    assert.deepEqual([...(eku ?? [])], [asn.id_kp_serverAuth, asn.id_kp_clientAuth]);
    const { problems, verdict } = await bothValidators(leaf, 'both.profile.example');
    assert.deepEqual(problems, []);
    assert.match(verdict, /: OK/);
  });

  for (const [what, subject, addext, words] of [
    ['only a common name', '/CN=cn-only.profile.example', [], /the CSR names none/],
    [
      'CA:TRUE',
      '/CN=ca.profile.example',
      ['subjectAltName=DNS:ca.profile.example', 'basicConstraints=critical,CA:TRUE'],
      /CA:TRUE/,
    ],
    [
      'keyCertSign',
      '/CN=ku.profile.example',
      ['subjectAltName=DNS:ku.profile.example', 'keyUsage=critical,digitalSignature,keyCertSign'],
      /keyCertSign/,
    ],
    [
      'an e-mail SAN',
      '/CN=mail.profile.example',
      ['subjectAltName=DNS:mail.profile.example,email:admin@profile.example'],
      /e-mail address SAN "admin@profile\.example"/,
    ],
    [
      'a URI SAN',
      '/CN=uri.profile.example',
      ['subjectAltName=DNS:uri.profile.example,URI:https://profile.example/'],
      /URI SAN "https:\/\/profile\.example\/"/,
    ],
    [
      'the codeSigning purpose',
      '/CN=code.profile.example',
      ['subjectAltName=DNS:code.profile.example', 'extendedKeyUsage=serverAuth,codeSigning'],
      /codeSigning/,
    ],
    [
      'OCSP must-staple',
      '/CN=staple.profile.example',
      ['subjectAltName=DNS:staple.profile.example', 'tlsfeature=status_request'],
      /must-staple/,
    ],
    [
      'a common name that is not a SAN',
      '/CN=Profile Web Server',
      ['subjectAltName=DNS:web.profile.example'],
      /"Profile Web Server" is not one of the subject alternative names/,
    ],
  ] as const) {
    it(`refuses a CSR asking for ${what}, saying so, instead of dropping it`, async () => {
      const csr = await opensslCsr(`${what.replace(/\W+/g, '-')}.csr`, subject, ...addext);
      await assert.rejects(fromCsr(csr), (err: unknown) => {
        assert.ok(isCoreError(err, 'InvalidGenerationRequest'), String(err));
        assert.match(err.message, words);
        return true;
      });
    });
  }
});
