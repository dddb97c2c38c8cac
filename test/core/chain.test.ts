import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateAssembledChain } from '../../src/core/anchored.js';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { buildChain, requireCompleteChain } from '../../src/core/chain.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { PathBudget, SEARCH_BUDGET, SIGNATURE_BUDGET } from '../../src/core/validate.js';
import { opensslPki } from '../support/openssl-pki.js';
import { assertCoreError, needs, needsCorpus, PYCA, tool } from '../support/tools.js';

function certsIn(path: string): Certificate[] {
  return parsePemBlocks(readFileSync(path))
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => parseCertificate(b.der));
}

const cn = (c: Certificate) => c.subject.attributes.find((a) => a.type === 'CN')?.value;

describe('chains made with openssl', { skip: needs('openssl') }, () => {
  const pki = opensslPki({
    // openssl's default v3_ca, spelled out so that the roots do not depend on openssl.cnf.
    root: [
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      'basicConstraints = critical, CA:TRUE',
    ],
    ca: [
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
    ],
    leaf: [
      'basicConstraints = critical, CA:FALSE',
      'subjectAltName = DNS:www.example.test',
      'extendedKeyUsage = serverAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
    ],
    decoy: ['basicConstraints = critical, CA:TRUE', 'subjectKeyIdentifier = none'],
  });
  const { certs } = pki;
  const key = (name: string) => createPrivateKey(readFileSync(pki.at(name)));

  before(async () => {
    await pki.selfSigned('root', '/CN=Test Root CA', 'root');
    await pki.issue('inter', '/CN=Test Intermediate CA', 'root', 'ca');
    await pki.issue('leaf', '/CN=www.example.test', 'inter', 'leaf');
    await pki.issue('leaf2', '/CN=api.example.test', 'inter', 'leaf');
    // Same name as the root, another key, no SKI: only the signature tells them apart.
    await pki.selfSigned('decoy', '/CN=Test Root CA', 'decoy');
    await pki.selfSigned('unrelated', '/CN=Unrelated', 'root');
  });
  after(pki.cleanup);

  it('orders a shuffled bag, drops duplicates and leaves the unrelated certificate over', () => {
    const { root, inter, leaf, unrelated } = certs as Record<string, Certificate>;
    const bag = [root!, unrelated!, inter!, leaf!, root!, inter!];
    const assembly = buildChain(bag);
    assert.deepEqual(assembly.chain.map(cn), [
      'www.example.test',
      'Test Intermediate CA',
      'Test Root CA',
    ]);
    assert.equal(assembly.leaf.sha256, leaf!.sha256);
    assert.equal(assembly.complete, true);
    assert.equal(assembly.anchoredBy, undefined);
    assert.equal(assembly.missingIssuer, undefined);
    assert.deepEqual(assembly.leftovers.map(cn), ['Unrelated']);
    assert.equal(assembly.duplicatesDropped, 2);
    requireCompleteChain(assembly);
  });

  it('confirms issuers by signature, not by name alone', () => {
    const { root, inter, leaf, decoy } = certs as Record<string, Certificate>;
    const assembly = buildChain([decoy!, leaf!, inter!, root!]);
    assert.equal(assembly.chain[2]!.sha256, root!.sha256);
    assert.deepEqual(
      assembly.leftovers.map((c) => c.sha256),
      [decoy!.sha256],
    );
    const decoyOnly = buildChain([leaf!, inter!, decoy!]);
    assert.equal(decoyOnly.complete, false);
    assert.equal(decoyOnly.missingIssuer?.rfc4514, 'CN=Test Root CA');
  });

  it('picks the leaf that matches the key among several', () => {
    const { root, inter, leaf, leaf2 } = certs as Record<string, Certificate>;
    const assembly = buildChain([leaf!, leaf2!, inter!, root!], { key: key('leaf2.key') });
    assert.equal(cn(assembly.leaf), 'api.example.test');
    assert.equal(assembly.chain.length, 3);
    assert.deepEqual(assembly.leftovers.map(cn), ['www.example.test']);
  });

  it('refuses two possible leaves without a key as AmbiguousLeaf', () => {
    const { root, inter, leaf, leaf2 } = certs as Record<string, Certificate>;
    const err = assertCoreError(() => buildChain([leaf!, leaf2!, inter!, root!]), 'AmbiguousLeaf');
    assert.deepEqual(
      [...((err as { details?: { candidates?: string[] } }).details?.candidates ?? [])].sort(),
      ['CN=api.example.test', 'CN=www.example.test'],
    );
  });

  it('refuses a key that matches no certificate as KeyMismatch', () => {
    const { inter, leaf } = certs as Record<string, Certificate>;
    assertCoreError(
      () => buildChain([leaf!, inter!], { key: key('unrelated.key') }),
      'KeyMismatch',
    );
  });

  it('refuses an empty bag as NoCertificate', () => {
    assertCoreError(() => buildChain([]), 'NoCertificate');
  });

  it('names the missing intermediate', () => {
    const { root, leaf } = certs as Record<string, Certificate>;
    const assembly = buildChain([root!, leaf!]);
    assert.equal(assembly.complete, false);
    assert.deepEqual(assembly.chain.map(cn), ['www.example.test']);
    assert.equal(assembly.missingIssuer?.rfc4514, 'CN=Test Intermediate CA');
    assert.deepEqual(assembly.leftovers.map(cn), ['Test Root CA']);
    const err = assertCoreError(() => requireCompleteChain(assembly), 'ChainIncomplete');
    assert.equal(
      (err as { details?: { missingIssuer?: string } }).details?.missingIssuer,
      'CN=Test Intermediate CA',
    );
  });

  it('completes the chain from the trusted set when the bag stops short', () => {
    const { root, inter, leaf, unrelated } = certs as Record<string, Certificate>;
    const assembly = buildChain([leaf!, inter!], { trusted: [unrelated!, root!] });
    assert.equal(assembly.complete, true);
    assert.equal(assembly.anchoredBy?.sha256, root!.sha256);
    assert.deepEqual(assembly.chain.map(cn), [
      'www.example.test',
      'Test Intermediate CA',
      'Test Root CA',
    ]);
    assert.deepEqual(assembly.leftovers, []);
  });

  it('stops at a trusted intermediate', () => {
    const { root, inter, leaf } = certs as Record<string, Certificate>;
    const assembly = buildChain([leaf!], { trusted: [inter!, root!] });
    assert.equal(assembly.complete, true);
    assert.equal(assembly.anchoredBy?.sha256, inter!.sha256);
    assert.deepEqual(assembly.chain.map(cn), ['www.example.test', 'Test Intermediate CA']);
  });

  it('anchors on a supplied certificate that is also trusted', () => {
    const { root, inter, leaf } = certs as Record<string, Certificate>;
    const assembly = buildChain([leaf!, inter!, root!], { trusted: [root!] });
    assert.equal(assembly.complete, true);
    assert.equal(assembly.anchoredBy?.sha256, root!.sha256);
    assert.equal(assembly.chain.length, 3);
  });

  it('treats a lone self-signed certificate as a complete chain of one', () => {
    const assembly = buildChain([certs.unrelated!]);
    assert.equal(assembly.complete, true);
    assert.equal(assembly.chain.length, 1);
    assert.equal(assembly.leaf.sha256, certs.unrelated!.sha256);
  });

  it('takes a lone intermediate as the leaf and asks for its root', () => {
    const assembly = buildChain([certs.inter!]);
    assert.equal(assembly.complete, false);
    assert.equal(assembly.missingIssuer?.rfc4514, 'CN=Test Root CA');
  });
});

const CHAIN_PEM = join(PYCA, 'x509', 'cryptography.io.chain.pem');

describe('pyca cryptography.io.chain.pem', { skip: needsCorpus(CHAIN_PEM) }, () => {
  it('orders the real chain and names its missing root', () => {
    const bag = certsIn(CHAIN_PEM).reverse();
    const assembly = buildChain(bag);
    assert.deepEqual(assembly.chain.map(cn), ['www.cryptography.io', 'RapidSSL SHA256 CA - G3']);
    assert.equal(assembly.complete, false);
    assert.equal(assembly.missingIssuer?.rfc4514, 'CN=GeoTrust Global CA,O=GeoTrust Inc.,C=US');
    assert.deepEqual(assembly.leftovers, []);
    assertCoreError(() => requireCompleteChain(assembly), 'ChainIncomplete');
  });

  it('drops the intermediate supplied twice from two files', () => {
    const bag = [
      ...certsIn(CHAIN_PEM),
      ...certsIn(join(PYCA, 'x509', 'rapidssl_sha256_ca_g3.pem')),
    ];
    const assembly = buildChain(bag);
    assert.equal(assembly.duplicatesDropped, 1);
    assert.equal(assembly.chain.length, 2);
  });

  it('keeps an unrelated real certificate as a leftover', () => {
    const bag = [...certsIn(CHAIN_PEM), ...certsIn(join(PYCA, 'x509', 'ecdsa_root.pem'))];
    const assembly = buildChain(bag);
    assert.equal(cn(assembly.leaf), 'www.cryptography.io');
    assert.deepEqual(assembly.leftovers.map(cn), ['DigiCert Global Root G3']);
  });
});

describe('building among several candidate issuers', { skip: needs('openssl') }, () => {
  const pki = opensslPki({
    root: [
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
    ],
    ca: [
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
    ],
    leaf: [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'subjectAltName = DNS:www.example.test',
      'extendedKeyUsage = serverAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
    ],
    bag: ['basicConstraints = critical, CA:TRUE', 'subjectKeyIdentifier = none'],
    bagLeaf: [
      'basicConstraints = critical, CA:FALSE',
      'subjectAltName = DNS:www.example.test',
      'subjectKeyIdentifier = none',
    ],
  });
  const { certs } = pki;
  const at = (name: string) => parseCertificate(parsePemBlocks(readFileSync(pki.at(name)))[0]!.der);
  let intX: Certificate;
  let bag: Certificate[];
  /** The 20-byte serial of the `bag` template, which the copies differ from in their last two bytes. */
  const SERIAL = 0x7102030405060708090a0b0c0d0e0f1011121314n;

  before(async () => {
    await pki.selfSigned('rootA', '/CN=Root A', 'root', { days: 3650 });
    await pki.selfSigned('rootB', '/CN=Old Root B', 'root', { days: 3650 });
    await pki.issue('int', '/CN=Issuing CA', 'rootA', 'ca', { days: 365 });
    await pki.issue('leaf', '/CN=www.example.test', 'int', 'leaf');
    // The same subject and key cross-signed by the old root, expired: `-days -1` ends it a day
    // before it starts.
    await tool('openssl', [
      'x509',
      '-req',
      '-in',
      pki.at('int.csr'),
      '-CA',
      pki.at('rootB.pem'),
      '-CAkey',
      pki.at('rootB.key'),
      '-set_serial',
      '0x4242',
      '-days',
      '-1',
      '-extfile',
      pki.at('ext.cnf'),
      '-extensions',
      'ca',
      '-out',
      pki.at('intX.pem'),
    ]);
    intX = at('intX.pem');
    // 2,000 CA certificates with one subject and issuer and no key identifiers: copies of one
    // openssl-made certificate with their serials changed (so their signatures no longer verify).
    await pki.selfSigned('bag', '/CN=Bag CA', 'bag', { serial: SERIAL });
    await pki.selfSigned('bagReal', '/CN=Bag CA', 'bag');
    await pki.issue('bagLeaf', '/CN=www.example.test', 'bagReal', 'bagLeaf');
    const template = certs.bag!.der;
    const serial = Buffer.from(SERIAL.toString(16), 'hex');
    const offset = template.indexOf(serial);
    assert.ok(offset > 0, 'the serial is found in the template');
    bag = Array.from({ length: 2000 }, (_, i) => {
      const der = Buffer.from(template);
      der.writeUInt16BE(i, offset + serial.length - 2);
      return parseCertificate(der);
    });
  });
  after(pki.cleanup);

  it('chooses the valid intermediate when an expired cross-sign of it comes first', () => {
    const { rootA, rootB, int, leaf } = certs as Record<string, Certificate>;
    assert.ok(intX.notAfter.getTime() < Date.now(), 'the cross-sign is expired');
    for (const trusted of [[rootA!], [rootB!, rootA!]]) {
      const budget = new PathBudget();
      const assembly = buildChain([leaf!, intX, int!], { trusted, time: new Date(), budget });
      assert.deepEqual(
        assembly.chain.map((c) => c.sha256),
        [leaf!.sha256, int!.sha256, rootA!.sha256],
      );
      assert.equal(assembly.anchoredBy?.sha256, rootA!.sha256);
      assert.deepEqual(
        assembly.leftOut.map((l) => [l.certificate.sha256, l.inFavourOf.sha256, l.code]),
        [[intX.sha256, int!.sha256, 'CertificateExpired']],
      );
      assert.match(
        assembly.leftOut[0]!.message,
        /^The intermediate "CN=Issuing CA" issued by "CN=Old Root B" \(expired \d{4}-\d\d-\d\d\) was left out in favour of the one issued by "CN=Root A"\.$/,
      );
      assert.ok(budget.signatureChecks <= 6, `${budget.signatureChecks} signature checks`);
    }
  });

  it('ends at the supplied root of the valid path when nothing is trusted', () => {
    const { rootA, rootB, int, leaf } = certs as Record<string, Certificate>;
    const assembly = buildChain([leaf!, intX, rootB!, int!, rootA!], { time: new Date() });
    assert.deepEqual(assembly.chain.map(cn), ['www.example.test', 'Issuing CA', 'Root A']);
    assert.equal(assembly.complete, true);
    assert.equal(assembly.anchoredBy, undefined);
  });

  it('passes over a trusted root that has the issuer name but another key', async () => {
    const { int, leaf } = certs as Record<string, Certificate>;
    const impostor = await pki.selfSigned('impostor', '/CN=Root A', 'root');
    const assembly = buildChain([leaf!, int!], { trusted: [impostor], time: new Date() });
    assert.equal(assembly.complete, false);
    assert.equal(assembly.missingIssuer?.rfc4514, 'CN=Root A');
    assert.deepEqual(assembly.chain.map(cn), ['www.example.test', 'Issuing CA']);
  });

  it('answers a bag of 2,000 look-alike CAs within the budget, in a short sentence', () => {
    const budget = new PathBudget();
    const err = assertCoreError(() => buildChain(bag, { budget }), 'AmbiguousLeaf');
    assert.ok(err.message.length < 300, err.message);
    assert.match(
      err.message,
      /^2,000 certificates could be the leaf \("CN=Bag CA", "CN=Bag CA", "CN=Bag CA" and 1,997 more\)/,
    );
    assert.ok(budget.signatureChecks <= SIGNATURE_BUDGET, `${budget.signatureChecks} checks`);
    assert.ok(budget.signatureChecks > 0, 'the signatures were tried before the names decided');
  });

  it('looks for the issuer of a keyed leaf among 2,000 look-alikes within the budget', () => {
    const budget = new PathBudget();
    const leafKey = createPrivateKey(readFileSync(pki.at('bagLeaf.key')));
    const assembly = buildChain([certs.bagLeaf!, ...bag], {
      key: leafKey,
      budget,
      time: new Date(),
    });
    assert.equal(assembly.leaf.sha256, certs.bagLeaf!.sha256);
    assert.equal(assembly.complete, false);
    assert.equal(assembly.missingIssuer?.rfc4514, 'CN=Bag CA');
    // Validating it afterwards spends the same budget: the input's bound holds for both.
    const result = validateAssembledChain(assembly, { trusted: [], time: new Date(), budget });
    assert.equal(result.valid, false);
    assert.ok(budget.signatureChecks <= SIGNATURE_BUDGET, `${budget.signatureChecks} checks`);
    assert.ok(budget.searchSteps <= SEARCH_BUDGET, `${budget.searchSteps} steps`);
  });
});
