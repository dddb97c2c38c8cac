/**
 * validateServerChain on chains made at test time with `openssl req` / `openssl x509 -req`
 * (extensions from the sections of ext.cnf written below) and CRLs from `openssl ca -gencrl`.
 * Times are relative to the moment the fixtures are made: the root lives 10 years, the
 * intermediate 30 days, the leaf 365 days (a leaf may outlive its issuer; openssl allows it).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseCertificate } from '../../src/core/certificate.js';
import type { CoreErrorCode } from '../../src/core/errors.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import {
  type ValidationOptions,
  type ValidationResult,
  validateServerChain,
} from '../../src/core/validate.js';
import { type CertOptions, opensslPki } from '../support/openssl-pki.js';
import { needs, tool } from '../support/tools.js';

const DAY = 86_400_000;

/** The `openssl ca -gencrl` configuration for the CA whose files are in `dir`. */
const caCnf = (dir: string) => `
[ca]
default_ca = ca_ica
[ca_ica]
database = ${dir}/index.txt
crlnumber = ${dir}/crlnumber
default_md = sha256
default_crl_days = 30
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
`;

/** The sections of ext.cnf: one for each kind of certificate the tests need. */
const EXT_SECTIONS = {
  root: [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
  ],
  ica: [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  ica_pathlen0: [
    'basicConstraints = critical,CA:TRUE,pathlen:0',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  ica_not_ca: [
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  ica_nc: [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'nameConstraints = critical,permitted;DNS:example.com,excluded;DNS:secret.example.com',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  leaf: [
    'basicConstraints = CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = DNS:www.example.com,DNS:example.com,IP:192.0.2.10,IP:2001:db8::10',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  leaf_client: [
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = clientAuth',
    'subjectAltName = DNS:www.example.com',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  leaf_other_org: [
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = DNS:www.example.org',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  leaf_secret: [
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = DNS:a.secret.example.com',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
  ],
  ica_no_ski: [
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = none',
    'authorityKeyIdentifier = keyid:always',
  ],
  leaf_no_aki: [
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = DNS:www.example.com',
    'subjectKeyIdentifier = none',
    'authorityKeyIdentifier = none',
  ],
  leaf_unknown_critical: [
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectAltName = DNS:www.example.com',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    '1.3.6.1.4.1.55738.666.1 = critical,ASN1:NULL',
  ],
};

describe('validateServerChain on openssl-made chains', { skip: needs('openssl') }, () => {
  const pki = opensslPki(EXT_SECTIONS, 'certkeeper-validate-');
  const { certs, at } = pki;
  const openssl = (...args: string[]) => tool('openssl', args);
  let made = 0;

  const root = (name: string, cn: string) =>
    pki.selfSigned(name, `/CN=${cn}`, 'root', { days: 3650 });
  /** Names here are bare CNs, and a certificate lives a year unless the test says otherwise. */
  const issue = (name: string, cn: string, ca: string, section: string, options?: CertOptions) =>
    pki.issue(name, `/CN=${cn}`, ca, section, { days: 365, ...options });

  before(async () => {
    writeFileSync(at('ca.cnf'), caCnf(pki.dir));
    made = Date.now();
    await root('root', 'Test Root CA');
    await root('other-root', 'Other Root CA');
    await issue('ica', 'Test Issuing CA', 'root', 'ica', { days: 30 });
    await issue('leaf', 'www.example.com', 'ica', 'leaf');
    // Same issuer name as `ica`, another key: a decoy for path building.
    await root('decoy-ica', 'Test Issuing CA');
    await issue('rsa1024-leaf', 'www.example.com', 'ica', 'leaf', { key: 'rsa:1024' });
    await issue('sha1-ica', 'SHA1 Issuing CA', 'root', 'ica', { digest: 'sha1' });
    await issue('sha1-leaf', 'www.example.com', 'sha1-ica', 'leaf');
    await issue('pl0-ica', 'Pathlen Zero CA', 'root', 'ica_pathlen0');
    await issue('pl0-sub', 'Sub CA', 'pl0-ica', 'ica');
    await issue('pl0-leaf', 'www.example.com', 'pl0-sub', 'leaf');
    await issue('client-leaf', 'www.example.com', 'ica', 'leaf_client');
    await issue('not-ca', 'Not A CA', 'root', 'ica_not_ca');
    await issue('not-ca-leaf', 'www.example.com', 'not-ca', 'leaf');
    await issue('nc-ica', 'Constrained CA', 'root', 'ica_nc');
    await issue('nc-ok-leaf', 'www.example.com', 'nc-ica', 'leaf');
    await issue('nc-org-leaf', 'www.example.org', 'nc-ica', 'leaf_other_org');
    await issue('nc-secret-leaf', 'a.secret.example.com', 'nc-ica', 'leaf_secret');
    await issue('critical-leaf', 'www.example.com', 'ica', 'leaf_unknown_critical');
    // An old-style private CA: no SKI on the CA, no AKI on the leaf.
    await issue('old-ica', 'Old Issuing CA', 'root', 'ica_no_ski');
    await issue('old-leaf', 'www.example.com', 'old-ica', 'leaf_no_aki');
    await issue('decoy-leaf', 'www.example.com', 'decoy-ica', 'leaf');
    // Key rollover: a new key for "Test Issuing CA", certified by the old one (self-issued).
    await issue('rollover-ica', 'Test Issuing CA', 'ica', 'ica');
    await issue('rollover-leaf', 'www.example.com', 'rollover-ica', 'leaf');
    // A CRL of `ica` that revokes `leaf`, and an empty one.
    const expiry = `${new Date(made + 365 * DAY).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
    const revokedAt = `${new Date(made - DAY).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
    const crl = async (out: string, index: string) => {
      writeFileSync(at('index.txt'), index);
      writeFileSync(at('crlnumber'), '01\n');
      await openssl(
        'ca',
        '-gencrl',
        '-config',
        at('ca.cnf'),
        '-keyfile',
        at('ica.key'),
        '-cert',
        at('ica.pem'),
        '-out',
        at(out),
      );
    };
    await crl(
      'revoking.crl',
      `R\t${expiry}\t${revokedAt}\t${certs.leaf!.serialHex}\tunknown\t/CN=www.example.com\n`,
    );
    await crl('empty.crl', '');
  });
  after(pki.cleanup);

  const crlDer = (name: string) => parsePemBlocks(readFileSync(at(name)))[0]!.der;
  const soon = () => new Date(made + DAY);
  const validate = (leaf: string, options: Partial<ValidationOptions> = {}): ValidationResult =>
    validateServerChain(certs[leaf]!, {
      trusted: [certs.root!],
      intermediates: [certs.ica!],
      time: soon(),
      host: 'www.example.com',
      ...options,
    });
  const codes = (r: ValidationResult) => r.problems.map((p) => p.code);
  const assertProblem = (r: ValidationResult, code: CoreErrorCode, index?: number) => {
    assert.equal(r.valid, false, 'expected the chain to be refused');
    assert.ok(
      r.problems.some((p) => p.code === code && (index === undefined || p.index === index)),
      `expected ${code}${index === undefined ? '' : ` at ${index}`}, got ${JSON.stringify(r.problems)}`,
    );
  };

  it('accepts the same chain at a time inside every validity period', () => {
    const r = validate('leaf');
    assert.deepEqual(r.problems, []);
    assert.equal(r.valid, true);
    assert.deepEqual(
      r.path.map((c) => c.sha256),
      [certs.leaf!.sha256, certs.ica!.sha256, certs.root!.sha256],
    );
  });

  it('names the missing intermediate', () => {
    const r = validate('leaf', { intermediates: [] });
    assertProblem(r, 'ChainIncomplete', 0);
    const p = r.problems.find((x) => x.code === 'ChainIncomplete')!;
    assert.equal(p.issuer, 'CN=Test Issuing CA');
    assert.match(p.message, /CN=Test Issuing CA/);
  });

  it('rejects an expired intermediate at the given time', () => {
    const r = validate('leaf', { time: new Date(made + 40 * DAY) });
    assertProblem(r, 'CertificateExpired', 1);
    assert.ok(!r.problems.some((p) => p.index === 0), 'the leaf itself is still valid');
  });

  it('rejects the chain before the leaf is valid', () => {
    assertProblem(
      validate('leaf', { time: new Date(made - 2 * DAY) }),
      'CertificateNotYetValid',
      0,
    );
  });

  it('rejects an RSA-1024 leaf under the default policy and accepts it when the policy is relaxed', () => {
    assertProblem(validate('rsa1024-leaf'), 'PolicyViolation', 0);
    const relaxed = validate('rsa1024-leaf', { policy: { minRsaBits: 1024 } });
    assert.deepEqual(relaxed.problems, []);
    assert.equal(relaxed.valid, true);
  });

  it('still refuses an RSA-1024 leaf with checkPolicy off, under the fixed web PKI profile', () => {
    const r = validate('rsa1024-leaf', { checkPolicy: false, policy: { minRsaBits: 1024 } });
    assertProblem(r, 'UnsupportedAlgorithm', 0);
  });

  it('rejects a SHA-1 signed intermediate', () => {
    const r = validate('sha1-leaf', { intermediates: [certs['sha1-ica']!] });
    assertProblem(r, 'PolicyViolation', 1);
    const relaxed = validate('sha1-leaf', {
      intermediates: [certs['sha1-ica']!],
      policy: { forbiddenSignatureHashes: ['md5'] },
    });
    assert.equal(relaxed.valid, true, JSON.stringify(relaxed.problems));
  });

  it('enforces pathlen', () => {
    const r = validate('pl0-leaf', { intermediates: [certs['pl0-sub']!, certs['pl0-ica']!] });
    assertProblem(r, 'PathLengthExceeded', 2);
  });

  it('enforces maxDepth, counting leaf and anchor', () => {
    assertProblem(validate('leaf', { maxDepth: 2 }), 'PathLengthExceeded');
    assert.equal(validate('leaf', { maxDepth: 3 }).valid, true);
  });

  it('does not count a self-issued intermediate (key rollover) against maxDepth', () => {
    // rollover-leaf <- rollover-ica (self-issued) <- ica, trusted: leaf and anchor count, 2.
    const r = validate('rollover-leaf', {
      trusted: [certs.ica!],
      intermediates: [certs['rollover-ica']!],
      maxDepth: 2,
    });
    assert.deepEqual(r.problems, []);
    assert.equal(r.path.length, 3);
    const full = validate('rollover-leaf', {
      intermediates: [certs.ica!, certs['rollover-ica']!],
      maxDepth: 3,
    });
    assert.deepEqual(full.problems, []);
  });

  it('rejects a leaf without serverAuth', () => {
    assertProblem(validate('client-leaf'), 'UsageNotAllowed', 0);
    const asClient = validate('client-leaf', { requiredExtendedKeyUsage: ['clientAuth'] });
    assert.equal(asClient.valid, true, JSON.stringify(asClient.problems));
  });

  it('rejects an issuer that is not a CA', () => {
    const r = validate('not-ca-leaf', { intermediates: [certs['not-ca']!] });
    assertProblem(r, 'NotACertificateAuthority', 1);
  });

  it('rejects a host the leaf does not cover, and matches IPv4 and IPv6 SANs', () => {
    assertProblem(validate('leaf', { host: 'mail.example.com' }), 'HostnameMismatch', 0);
    assert.equal(validate('leaf', { host: '192.0.2.10' }).valid, true);
    assert.equal(validate('leaf', { host: '2001:DB8:0::10' }).valid, true);
    assertProblem(validate('leaf', { host: '192.0.2.11' }), 'HostnameMismatch', 0);
  });

  it('finds the path among decoys and duplicates', () => {
    const r = validate('leaf', {
      trusted: [certs['other-root']!, certs.root!, certs.root!],
      intermediates: [certs['decoy-ica']!, certs.ica!, certs.ica!, certs['nc-ica']!, certs.root!],
    });
    assert.deepEqual(r.problems, []);
    assert.equal(r.path[1]!.sha256, certs.ica!.sha256);
  });

  it('reports a signature that does not verify', () => {
    // The leaf's last signature byte flipped: the issuer's key identifier matches, the signature does not.
    const der = Buffer.from(certs.leaf!.der);
    der[der.length - 1]! ^= 0x01;
    assertProblem(
      validateServerChain(parseCertificate(der), {
        trusted: [certs.root!],
        intermediates: [certs.ica!],
        time: soon(),
      }),
      'SignatureInvalid',
      0,
    );
  });

  it('names the missing issuer when only another key of that name was supplied', () => {
    // decoy-leaf's AKI names decoy-ica's key; `ica` shares the name only (OpenSSL says the same).
    const r = validate('decoy-leaf');
    assertProblem(r, 'ChainIncomplete', 0);
    assert.ok(!codes(r).includes('SignatureInvalid'), JSON.stringify(r.problems));
  });

  it('rejects a chain that ends at an untrusted root', () => {
    const r = validate('leaf', {
      trusted: [certs['other-root']!],
      intermediates: [certs.ica!, certs.root!],
    });
    assertProblem(r, 'UntrustedRoot');
  });

  it('applies name constraints to the leaf', () => {
    const inter = { intermediates: [certs['nc-ica']!] };
    assert.equal(validate('nc-ok-leaf', inter).valid, true);
    assertProblem(
      validate('nc-org-leaf', { ...inter, host: 'www.example.org' }),
      'NameConstraintViolation',
      0,
    );
    assertProblem(
      validate('nc-secret-leaf', { ...inter, host: 'a.secret.example.com' }),
      'NameConstraintViolation',
      0,
    );
  });

  it('rejects an unknown critical extension', () => {
    assertProblem(validate('critical-leaf'), 'UnknownCriticalExtension', 0);
  });

  it('rejects a leaf its issuer revoked, and accepts it with a CRL that does not list it', () => {
    assertProblem(validate('leaf', { crls: [crlDer('revoking.crl')] }), 'CertificateRevoked', 0);
    const clean = validate('leaf', { crls: [crlDer('empty.crl')] });
    assert.deepEqual(codes(clean), []);
    assert.equal(clean.valid, true);
  });

  it('refuses a CRL that is out of date at the given time', () => {
    const r = validate('leaf', { crls: [crlDer('empty.crl')], time: new Date(made + 31 * DAY) });
    assert.equal(r.valid, false);
    assert.ok(codes(r).includes('ChainInvalid'), JSON.stringify(r.problems));
  });

  it('reports damaged CRL bytes instead of throwing', () => {
    assertProblem(validate('leaf', { crls: [Buffer.from('not a crl')] }), 'MalformedInput');
  });

  it('refuses missing key identifiers by policy, and accepts them when the policy is relaxed', () => {
    const strict = validate('old-leaf', { intermediates: [certs['old-ica']!] });
    assertProblem(strict, 'PolicyViolation', 0);
    assertProblem(strict, 'PolicyViolation', 1);
    const relaxed = validate('old-leaf', {
      intermediates: [certs['old-ica']!],
      policy: { requireKeyIdentifiers: false },
    });
    assert.deepEqual(relaxed.problems, []);
    assert.equal(relaxed.valid, true);
    // The web PKI profile keeps them mandatory, as x509-limbo expects.
    assertProblem(
      validate('old-leaf', { intermediates: [certs['old-ica']!], checkPolicy: false }),
      'MalformedInput',
    );
  });

  it('never throws when nothing is trusted', () => {
    const r = validate('leaf', { trusted: [], intermediates: [] });
    assertProblem(r, 'ChainIncomplete');
    assert.equal(r.path.length, 1);
  });
});
