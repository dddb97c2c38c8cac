/**
 * Issue 13: trust comes from configuration, never from the upload. A private CA's root that
 * comes with an import is a warning naming it (clients must already trust it); the same
 * root imported first as a `trusted` entry is an anchor, and the warning goes away.
 * Hierarchies made by openssl at test time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { importEntry } from '../../src/service/import-entry.js';
import { preflightImport } from '../../src/service/preflight-import.js';
import { CA_SECTION, leafSection, opensslPki, ROOT_SECTION } from '../support/openssl-pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';
import { needs } from '../support/tools.js';

describe('imports and the roots that come with them', { skip: needs('openssl') }, () => {
  const pki = opensslPki({
    root: ROOT_SECTION,
    ca: CA_SECTION,
    leaf: leafSection('DNS:intranet.corp.test'),
  });
  const read = (name: string) => readFileSync(pki.at(name), 'utf8');
  let ks: TestKeystore;

  before(async () => {
    await pki.selfSigned('root', '/O=Corp/CN=Corp Root', 'root');
    await pki.issue('int', '/O=Corp/CN=Corp Issuing CA', 'root', 'ca');
    await pki.issue('leaf', '/CN=intranet.corp.test', 'int', 'leaf');
    ks = await testKeystore();
  });
  after(async () => {
    await ks?.cleanup();
    pki.cleanup();
  });

  const upload = () => [
    file('bundle.pem', read('leaf.pem') + read('int.pem') + read('root.pem')),
    file('leaf.key', read('leaf.key')),
  ];

  it('imports a private CA leaf with its chain and root, warning that clients must trust the root', async () => {
    const plan = await preflightImport(ks.ctx, {
      alias: 'intranet',
      files: upload(),
      principal: TEST_PRINCIPAL,
    });
    const r = await importEntry(ks.ctx, {
      alias: 'intranet',
      files: upload(),
      principal: TEST_PRINCIPAL,
    });
    assert.equal(r.entry.kind, 'key-pair');
    assert.equal(r.entry.fingerprint, pki.certs.leaf!.sha256);
    for (const warnings of [r.warnings, plan.warnings]) {
      assert.deepEqual(
        warnings.map((w) => w.code),
        ['UntrustedRoot'],
      );
      const w = warnings[0]!;
      assert.equal(w.certificate, pki.certs.root!.sha256);
      const root = pki.certs.root!.subject.rfc4514;
      assert.match(root, /CN=Corp Root/);
      assert.ok(
        w.message.startsWith(`Clients trust this certificate only if they already trust "${root}"`),
        w.message,
      );
      assert.match(w.message, /install that root on them, or import it as a trusted entry here/);
    }
    // The root is described, never stored or served with the leaf.
    assert.deepEqual(
      r.description.chain.map((c) => c.subject.rfc4514),
      [pki.certs.int!.subject.rfc4514],
    );
  });

  it('does not warn once that root is a trusted entry of the keystore', async () => {
    const trusted = await importEntry(ks.ctx, {
      alias: 'corp-root',
      files: [file('root.pem', read('root.pem'))],
      principal: TEST_PRINCIPAL,
    });
    assert.equal(trusted.entry.kind, 'trusted');
    // With the root in the upload, and without it: the keystore's entry anchors the chain.
    for (const files of [
      upload(),
      [file('chain.pem', read('leaf.pem') + read('int.pem')), file('leaf.key', read('leaf.key'))],
    ]) {
      const r = await importEntry(ks.ctx, {
        alias: 'intranet',
        files,
        replace: true,
        principal: TEST_PRINCIPAL,
      });
      assert.deepEqual(r.warnings, []);
    }
  });
});

describe('what blocks an import, and what only warns', { skip: needs('openssl') }, () => {
  const pki = opensslPki({
    root: [
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
    ],
    ca: [
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
    ca_pathlen0: [
      'basicConstraints = critical,CA:TRUE,pathlen:0',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
    ca_nc: [
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'nameConstraints = critical,permitted;DNS:example.com',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
    not_ca: [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
    leaf: [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = DNS:intranet.corp.test',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
  });
  const read = (name: string) => readFileSync(pki.at(name), 'utf8');
  const upload = (leaf: string, ...issuers: string[]) => [
    file('bundle.pem', [leaf, ...issuers].map((n) => read(`${n}.pem`)).join('')),
    file('leaf.key', read(`${leaf}.key`)),
  ];
  let ks: TestKeystore;

  before(async () => {
    await pki.selfSigned('root', '/O=Corp/CN=Corp Root', 'root');
    await pki.issue('int', '/O=Corp/CN=Corp Issuing CA', 'root', 'ca');
    await pki.issue('leaf', '/CN=intranet.corp.test', 'int', 'leaf');
    // The root's name, another key: what a re-keyed or look-alike root looks like.
    await pki.selfSigned('impostor', '/O=Corp/CN=Corp Root', 'root');
    await pki.issue('notCa', '/CN=Not A CA', 'root', 'not_ca');
    await pki.issue('notCaLeaf', '/CN=intranet.corp.test', 'notCa', 'leaf');
    await pki.issue('pl0', '/CN=Pathlen Zero CA', 'root', 'ca_pathlen0');
    await pki.issue('pl0Sub', '/CN=Sub CA', 'pl0', 'ca');
    await pki.issue('pl0Leaf', '/CN=intranet.corp.test', 'pl0Sub', 'leaf');
    await pki.issue('nc', '/CN=Example Only CA', 'root', 'ca_nc');
    await pki.issue('ncLeaf', '/CN=intranet.corp.test', 'nc', 'leaf');
    ks = await testKeystore();
    await importEntry(ks.ctx, {
      alias: 'look-alike-root',
      files: [file('impostor.pem', read('impostor.pem'))],
      principal: TEST_PRINCIPAL,
    });
  });
  after(async () => {
    await ks?.cleanup();
    pki.cleanup();
  });

  it('passes over a trusted root with the issuer name but another key, and warns the chain is incomplete', async () => {
    // It used to be refused as SignatureInvalid: the look-alike was taken for the issuer.
    const r = await importEntry(ks.ctx, {
      alias: 'intranet',
      files: upload('leaf', 'int'),
      principal: TEST_PRINCIPAL,
    });
    assert.deepEqual(
      r.warnings.map((w) => w.code),
      ['ChainIncomplete'],
    );
    assert.equal(
      r.warnings[0]!.message,
      `Browsers will show an error unless the intermediate is sent: add "${pki.certs.root!.subject.rfc4514}" to the upload.`,
    );
    assert.deepEqual(
      r.description.chain.map((c) => c.fingerprints.sha256),
      [pki.certs.int!.sha256],
    );
    // With the real root in the upload, it is found past the look-alike: an untrusted root.
    const withRoot = await preflightImport(ks.ctx, {
      alias: 'intranet-2',
      files: upload('leaf', 'int', 'root'),
      principal: TEST_PRINCIPAL,
    });
    assert.deepEqual(
      withRoot.warnings.map((w) => w.code),
      ['UntrustedRoot'],
    );
  });

  for (const [code, leaf, issuers] of [
    ['NotACertificateAuthority', 'notCaLeaf', ['notCa', 'root']],
    ['PathLengthExceeded', 'pl0Leaf', ['pl0Sub', 'pl0', 'root']],
    ['NameConstraintViolation', 'ncLeaf', ['nc', 'root']],
  ] as const) {
    it(`refuses ${code} and writes nothing, activated or not`, async () => {
      for (const activate of [false, true]) {
        const err = await refusesWithoutWriting(
          ks.ctx,
          () =>
            importEntry(ks.ctx, {
              alias: `blocked-${code}`,
              files: upload(leaf, ...issuers),
              activate,
              principal: TEST_PRINCIPAL,
            }),
          code,
        );
        assert.doesNotMatch(err.message, /\n/, 'one sentence');
        await refusesWithoutWriting(
          ks.ctx,
          () =>
            preflightImport(ks.ctx, {
              alias: `blocked-${code}`,
              files: upload(leaf, ...issuers),
              activate,
              principal: TEST_PRINCIPAL,
            }),
          code,
        );
      }
      assert.equal(await ks.ctx.store.getEntry(`blocked-${code}`), undefined);
    });
  }
});
