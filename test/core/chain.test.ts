import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { buildChain, requireCompleteChain } from '../../src/core/chain.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { opensslPki } from '../support/openssl-pki.js';
import { assertCoreError, needs, needsCorpus, PYCA } from '../support/tools.js';

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
