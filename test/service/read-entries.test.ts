import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCsr } from '../../src/service/create-csr.js';
import { importEntry } from '../../src/service/import-entry.js';
import { describeEntry, listAudit, listEntries } from '../../src/service/read-entries.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  bundleOf,
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';

const DAY = 86_400_000;

describe('listEntries, describeEntry and listAudit', () => {
  let k: TestKeystore;
  const clock = { at: new Date() };
  let pki: Awaited<ReturnType<typeof makeHierarchy>>;
  let soon: Awaited<ReturnType<typeof makeHierarchy>>;

  before(async () => {
    k = await testKeystore({ now: () => clock.at });
    pki = await makeHierarchy({ hosts: ['app.example.test'], leafDays: 90 });
    soon = await makeHierarchy({ name: 'Soon', hosts: ['soon.example.test'], leafDays: 10 });
    await importEntry(k.ctx, {
      alias: 'web',
      files: [bundleOf(pki)],
      activate: true,
      sniHosts: ['app.example.test'],
      principal: TEST_PRINCIPAL,
    });
    await importEntry(k.ctx, {
      alias: 'soon',
      files: [bundleOf(soon)],
      principal: TEST_PRINCIPAL,
    });
    await importEntry(k.ctx, {
      alias: 'corp-root',
      files: [file('root.pem', pki.root.certPem)],
      principal: TEST_PRINCIPAL,
    });
    await createCsr(k.ctx, {
      alias: 'waiting',
      subject: { CN: 'waiting.example.test' },
      sans: ['DNS:waiting.example.test'],
      keyType: 'ec-p256',
      principal: TEST_PRINCIPAL,
    });
  });
  after(() => k.cleanup());

  it('describes an entry: certificate, chain, bindings, status, never key material', async () => {
    const d = await describeEntry(k.ctx, 'web');
    assert.equal(d.kind, 'key-pair');
    assert.equal(d.status, 'valid');
    assert.equal(d.certificate?.fingerprints.sha256, pki.leaf.cert.sha256);
    assert.deepEqual(d.certificate?.subjectAltNames.dns, ['app.example.test']);
    assert.equal(d.certificate?.publicKey.type, 'ec');
    assert.deepEqual(
      d.chain.map((c) => c.subject.rfc4514),
      [pki.intermediate.cert.subject.rfc4514],
    );
    assert.deepEqual(d.bindings, ['server', 'sni:app.example.test']);
    assert.equal(d.hasPrivateKey, true);
    assert.equal(d.revision, 1);
    const json = JSON.stringify(d);
    assert.ok(!json.includes('PRIVATE KEY'));
    const keyDer = (await k.ctx.store.getPrivateKey('web'))!;
    assert.ok(!json.includes(keyDer.toString('base64').slice(20, 60)), 'no key bytes');
  });

  it('describes a pending entry by its CSR', async () => {
    const d = await describeEntry(k.ctx, 'waiting');
    assert.equal(d.status, 'pending');
    assert.equal(d.certificate, null);
    assert.deepEqual(d.csr?.sans.dns, ['waiting.example.test']);
    assert.equal(d.csr?.signatureValid, true);
  });

  it('tells valid, expiring (within 30 days by default) and expired apart', async () => {
    const statuses = async (options = {}) =>
      Object.fromEntries((await listEntries(k.ctx, options)).map((d) => [d.alias, d.status]));
    assert.deepEqual(await statuses(), {
      'corp-root': 'valid',
      soon: 'expiring',
      waiting: 'pending',
      web: 'valid',
    });
    assert.equal((await statuses({ expiringWithinDays: 5 })).soon, 'valid');
    assert.equal((await statuses({ expiringWithinDays: 100 })).web, 'expiring');
    const now = clock.at;
    clock.at = new Date(now.getTime() + 20 * DAY);
    try {
      assert.equal((await statuses()).soon, 'expired');
      assert.equal((await describeEntry(k.ctx, 'soon')).status, 'expired');
    } finally {
      clock.at = now;
    }
  });

  it('filters by kind and by status, sorted by alias', async () => {
    const aliases = async (options: Parameters<typeof listEntries>[1]) =>
      (await listEntries(k.ctx, options)).map((d) => d.alias);
    assert.deepEqual(await aliases({ kind: 'key-pair' }), ['soon', 'web']);
    assert.deepEqual(await aliases({ kind: 'trusted' }), ['corp-root']);
    assert.deepEqual(await aliases({ status: 'expiring' }), ['soon']);
    assert.deepEqual(await aliases({ status: 'pending' }), ['waiting']);
    assert.deepEqual(await aliases({ kind: 'trusted', status: 'expiring' }), []);
  });

  it('says AliasNotFound, and InvalidQuery for a bad expiry window', async () => {
    await refusesWithoutWriting(k.ctx, () => describeEntry(k.ctx, 'nope'), 'AliasNotFound');
    await refusesWithoutWriting(
      k.ctx,
      () => listEntries(k.ctx, { expiringWithinDays: -1 }),
      'InvalidQuery',
    );
  });

  it('lists the audit log newest first, after a revision and limited', async () => {
    const all = await listAudit(k.ctx);
    assert.deepEqual(
      all.map((a) => [a.revision, a.action, a.target]),
      [
        [4, 'create-csr', 'waiting'],
        [3, 'import', 'corp-root'],
        [2, 'import', 'soon'],
        [1, 'import', 'web'],
      ],
    );
    assert.deepEqual(
      (await listAudit(k.ctx, { afterRevision: 2 })).map((a) => a.revision),
      [4, 3],
    );
    assert.deepEqual(
      (await listAudit(k.ctx, { limit: 1 })).map((a) => a.revision),
      [4],
    );
  });
});
