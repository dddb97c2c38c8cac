import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { csrPublicKey, parseCsr } from '../../src/core/csr.js';
import { type CsrKeyType, createCsr, getCsr } from '../../src/service/create-csr.js';
import { importEntry } from '../../src/service/import-entry.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';
import { needs, tempDir, tool } from '../support/tools.js';

const KEYS: [CsrKeyType, string, number | string][] = [
  ['rsa-2048', 'rsa', 2048],
  ['ec-p256', 'ec', 'P-256'],
  ['ec-p384', 'ec', 'P-384'],
  ['ed25519', 'ed25519', 'Ed25519'],
];

describe('createCsr and getCsr', () => {
  let k: TestKeystore;

  before(async () => {
    k = await testKeystore();
  });
  after(() => k.cleanup());

  it('keeps one pending entry per CSR, side by side, for every key type', async () => {
    for (const [keyType, type] of KEYS) {
      const alias = `csr-${keyType}`;
      const before = await k.ctx.store.revision();
      const result = await createCsr(k.ctx, {
        alias,
        subject: {
          CN: 'www.example.test',
          O: 'Example',
          C: 'DE',
          emailAddress: 'ops@example.test',
        },
        sans: ['DNS:www.example.test', 'dns:example.test', 'IP:192.0.2.1'],
        keyType,
        principal: TEST_PRINCIPAL,
      });
      assert.equal(result.revision, before + 1, keyType);
      assert.equal(result.csr.signatureValid, true, keyType);
      assert.equal(result.csr.key.type, type, keyType);
      assert.match(result.csr.subject.rfc4514, /CN=www\.example\.test/);
      assert.deepEqual(result.csr.sans.dns, ['www.example.test', 'example.test']);
      assert.deepEqual(result.csr.sans.ip, ['192.0.2.1']);

      const entry = await k.ctx.store.getEntry(alias);
      assert.equal(entry?.kind, 'pending');
      assert.equal(entry?.certificatePem, null);
      // The stored key is the CSR's key.
      const der = await k.ctx.store.getPrivateKey(alias);
      const key = createPrivateKey({ key: der!, format: 'der', type: 'pkcs8' });
      const csrKey = csrPublicKey(parseCsr((await getCsr(k.ctx, alias)).der));
      assert.ok(createPublicKey(key).equals(csrKey), keyType);
    }
    const pending = (await k.ctx.store.listEntries()).filter((e) => e.kind === 'pending');
    assert.equal(pending.length, KEYS.length);
  });

  it('describes the key size or curve of each type', async () => {
    for (const [keyType, , size] of KEYS) {
      const { csr } = await getCsr(k.ctx, `csr-${keyType}`);
      const described = csr.key as { bits?: number; curve?: string; type: string };
      assert.ok(
        described.bits === size || described.curve === size || keyType === 'ed25519',
        `${keyType}: ${JSON.stringify(described)}`,
      );
    }
  });

  it('hands out the CSR as PEM and DER, and the audit log names who asked', async () => {
    const csr = await getCsr(k.ctx, 'csr-ec-p256');
    assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
    assert.equal(parseCsr(csr.der).der.length, csr.der.length);
    const audit = (await k.ctx.store.listAudit()).find((a) => a.target === 'csr-ec-p256')!;
    assert.equal(audit.action, 'create-csr');
    assert.equal(audit.actor, 'test');
    assert.deepEqual(audit.details.principal, { role: 'admin', source: 'test' });
    assert.ok(!JSON.stringify(audit).includes('PRIVATE KEY'));
  });

  it('makes a CSR OpenSSL verifies', { skip: needs('openssl') }, async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const [keyType] of KEYS) {
        const path = join(dir, `${keyType}.csr`);
        writeFileSync(path, (await getCsr(k.ctx, `csr-${keyType}`)).pem);
        // `openssl req -verify` exits non-zero when the self-signature does not verify.
        await tool('openssl', ['req', '-in', path, '-verify', '-noout']);
      }
    } finally {
      cleanup();
    }
  });

  it('says AliasInUse for an alias that exists, pending or not', async () => {
    const pki = await makeHierarchy();
    await importEntry(k.ctx, {
      alias: 'taken',
      files: [file('b', pki.leaf.certPem + pki.leaf.keyPem)],
      principal: TEST_PRINCIPAL,
    });
    for (const alias of ['taken', 'csr-ec-p256']) {
      await refusesWithoutWriting(
        k.ctx,
        () =>
          createCsr(k.ctx, {
            alias,
            subject: { CN: 'x.example.test' },
            sans: [],
            keyType: 'ec-p256',
            principal: TEST_PRINCIPAL,
          }),
        'AliasInUse',
      );
    }
  });

  it('refuses bad input before generating anything', async () => {
    const csr = (over: Record<string, unknown>) => () =>
      createCsr(k.ctx, {
        alias: 'bad',
        subject: { CN: 'x.example.test' },
        sans: ['DNS:x.example.test'],
        keyType: 'ec-p256',
        principal: TEST_PRINCIPAL,
        ...over,
      });
    await refusesWithoutWriting(k.ctx, csr({ alias: 'certkeeper-x' }), 'InvalidAlias');
    await refusesWithoutWriting(k.ctx, csr({ keyType: 'dsa-1024' }), 'InvalidKeyType');
    await refusesWithoutWriting(k.ctx, csr({ keyType: 'toString' }), 'InvalidKeyType');
    await refusesWithoutWriting(k.ctx, csr({ sans: ['URI:https://x'] }), 'InvalidSubjectAltName');
    await refusesWithoutWriting(
      k.ctx,
      csr({ sans: ['DNS:not a name'] }),
      'InvalidGenerationRequest',
    );
    await refusesWithoutWriting(k.ctx, csr({ sans: ['IP:300.1.1.1'] }), 'InvalidGenerationRequest');
    await refusesWithoutWriting(
      k.ctx,
      csr({ subject: { C: 'Germany' } }),
      'InvalidGenerationRequest',
    );
    await refusesWithoutWriting(k.ctx, csr({ subject: {}, sans: [] }), 'InvalidGenerationRequest');
    assert.equal(await k.ctx.store.getEntry('bad'), undefined);
  });

  it('getCsr says AliasNotFound, or EntryNotUsable for an entry that is not pending', async () => {
    await assert.rejects(getCsr(k.ctx, 'nope'), (e: Error & { code?: string }) => {
      return e.code === 'AliasNotFound';
    });
    await assert.rejects(getCsr(k.ctx, 'taken'), (e: Error & { code?: string }) => {
      return e.code === 'EntryNotUsable';
    });
  });
});
