import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificate } from '../../src/core/certificate.js';
import { parseCsr } from '../../src/core/csr.js';
import { generateKeyPair, issueCertificate } from '../../src/core/generate.js';
import { parsePemBlocks, toPem } from '../../src/core/pem.js';
import { completeCsr } from '../../src/service/complete-csr.js';
import { createCsr, getCsr } from '../../src/service/create-csr.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';
import { needs, tempDir, tool } from '../support/tools.js';

describe('completeCsr', () => {
  let k: TestKeystore;
  let ca: Awaited<ReturnType<typeof makeHierarchy>>;

  /** Creates a pending entry and has the test intermediate issue its certificate (PEM). */
  async function pendingAndIssued(alias: string): Promise<string> {
    await createCsr(k.ctx, {
      alias,
      subject: { CN: `${alias}.example.test` },
      sans: [`DNS:${alias}.example.test`],
      keyType: 'ec-p256',
      principal: TEST_PRINCIPAL,
    });
    const der = await issueCertificate({
      issuer: { certificate: ca.intermediate.cert, key: ca.intermediate.key },
      csr: parseCsr((await getCsr(k.ctx, alias)).der),
      days: 90,
      now: new Date(),
    });
    return toPem('CERTIFICATE', der);
  }

  before(async () => {
    k = await testKeystore();
    ca = await makeHierarchy({ name: 'Issuing' });
  });
  after(() => k.cleanup());

  it('turns the pending entry into a key pair with its own key and the chain', async () => {
    const issued = await pendingAndIssued('site');
    const pendingKey = await k.ctx.store.getPrivateKey('site');
    const result = await completeCsr(k.ctx, {
      alias: 'site',
      files: [
        file('site.crt', issued),
        file('chain.pem', ca.intermediate.certPem + ca.root.certPem),
      ],
      principal: TEST_PRINCIPAL,
    });
    assert.equal(result.entry.kind, 'key-pair');
    assert.equal(result.entry.csrPem, null);
    assert.equal(result.entry.fingerprint, parseCertificate(parsePemBlocks(issued)[0]!.der).sha256);
    assert.deepEqual(
      result.chain.map((c) => c.subject.rfc4514),
      [ca.intermediate.cert.subject.rfc4514],
    );
    assert.deepEqual(await k.ctx.store.getPrivateKey('site'), pendingKey, 'the key never changed');
    const [audit] = await k.ctx.store.listAudit({ limit: 1 });
    assert.equal(audit!.action, 'complete-csr');
    assert.deepEqual(audit!.details.principal, { role: 'admin', source: 'test' });
  });

  it('takes the issued certificate as PKCS#7 too', { skip: needs('openssl') }, async () => {
    const issued = await pendingAndIssued('p7');
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'leaf.pem'), issued);
      writeFileSync(join(dir, 'int.pem'), ca.intermediate.certPem);
      await tool('openssl', [
        'crl2pkcs7',
        '-nocrl',
        '-certfile',
        join(dir, 'leaf.pem'),
        '-certfile',
        join(dir, 'int.pem'),
        '-outform',
        'DER',
        '-out',
        join(dir, 'issued.p7b'),
      ]);
      const result = await completeCsr(k.ctx, {
        alias: 'p7',
        files: [file('issued.p7b', readFileSync(join(dir, 'issued.p7b')))],
        principal: TEST_PRINCIPAL,
      });
      assert.equal(result.entry.kind, 'key-pair');
      assert.equal(result.chain.length, 1);
    } finally {
      cleanup();
    }
  });

  it('says KeyMismatch for a certificate issued for another key, and stays pending', async () => {
    await pendingAndIssued('mine');
    const other = await generateKeyPair({ type: 'ec', curve: 'P-256' });
    const foreign = await issueCertificate({
      issuer: { certificate: ca.intermediate.cert, key: ca.intermediate.key },
      publicKey: other.publicKey,
      subject: { CN: 'mine.example.test' },
      sans: { dns: ['mine.example.test'] },
      days: 90,
      now: new Date(),
    });
    await refusesWithoutWriting(
      k.ctx,
      () =>
        completeCsr(k.ctx, {
          alias: 'mine',
          files: [file('wrong.crt', toPem('CERTIFICATE', foreign) + ca.intermediate.certPem)],
          principal: TEST_PRINCIPAL,
        }),
      'KeyMismatch',
    );
    assert.equal((await k.ctx.store.getEntry('mine'))?.kind, 'pending');
  });

  it('refuses a private key in the upload: the key is already in the keystore', async () => {
    const issued = await pendingAndIssued('keyed');
    await refusesWithoutWriting(
      k.ctx,
      () =>
        completeCsr(k.ctx, {
          alias: 'keyed',
          files: [file('b', issued + ca.leaf.keyPem)],
          principal: TEST_PRINCIPAL,
        }),
      'UnexpectedPrivateKey',
    );
  });

  it('refuses an alias that is missing or not pending', async () => {
    const files = [file('c', ca.leaf.certPem)];
    await refusesWithoutWriting(
      k.ctx,
      () => completeCsr(k.ctx, { alias: 'nope', files, principal: TEST_PRINCIPAL }),
      'AliasNotFound',
    );
    await refusesWithoutWriting(
      k.ctx,
      () => completeCsr(k.ctx, { alias: 'site', files, principal: TEST_PRINCIPAL }),
      'EntryNotUsable',
    );
  });

  it('refuses an upload without a certificate', async () => {
    await pendingAndIssued('empty');
    await refusesWithoutWriting(
      k.ctx,
      () => completeCsr(k.ctx, { alias: 'empty', files: [], principal: TEST_PRINCIPAL }),
      'EmptyUpload',
    );
  });

  it('refuses an expired issued certificate', async () => {
    await createCsr(k.ctx, {
      alias: 'late',
      subject: { CN: 'late.example.test' },
      sans: ['DNS:late.example.test'],
      keyType: 'ec-p256',
      principal: TEST_PRINCIPAL,
    });
    const der = await issueCertificate({
      issuer: { certificate: ca.intermediate.cert, key: ca.intermediate.key },
      csr: parseCsr((await getCsr(k.ctx, 'late')).der),
      days: 1,
      now: new Date(Date.now() - 10 * 86_400_000),
    });
    await refusesWithoutWriting(
      k.ctx,
      () =>
        completeCsr(k.ctx, {
          alias: 'late',
          files: [file('late.crt', toPem('CERTIFICATE', der) + ca.intermediate.certPem)],
          principal: TEST_PRINCIPAL,
        }),
      'CertificateExpired',
    );
  });
});
