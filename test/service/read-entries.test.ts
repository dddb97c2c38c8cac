import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ServiceContext } from '../../src/service/context.js';
import { createCsr } from '../../src/service/create-csr.js';
import { importEntry } from '../../src/service/import-entry.js';
import {
  describeEntry,
  listAudit,
  listEntries,
  listEntryPage,
  MAX_PAGE_SIZE,
} from '../../src/service/read-entries.js';
import type { Store } from '../../src/store/store.js';
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

  it('pages by alias after an alias, and says whether a next page follows', async () => {
    const all = (await listEntries(k.ctx)).map((d) => d.alias);
    assert.deepEqual(all, ['corp-root', 'soon', 'waiting', 'web']);
    const walked: string[][] = [];
    let after: string | undefined;
    do {
      const page = await listEntryPage(k.ctx, { limit: 3, ...(after ? { after } : {}) });
      walked.push(page.entries.map((d) => d.alias));
      after = page.next ?? undefined;
      if (page.next !== null) assert.equal(page.next, page.entries.at(-1)?.alias);
    } while (after);
    assert.deepEqual(walked, [['corp-root', 'soon', 'waiting'], ['web']]);
    // A page that ends exactly at the last entry has no next page.
    assert.equal((await listEntryPage(k.ctx, { limit: 4 })).next, null);
    assert.equal((await listEntryPage(k.ctx)).next, null, 'the default page holds all four');
    // An alias that is no entry's starts the page where it would sort.
    const from = await listEntryPage(k.ctx, { after: 'soon.', limit: 1 });
    assert.deepEqual([from.entries.map((d) => d.alias), from.next], [['waiting'], 'waiting']);
    assert.deepEqual(await listEntryPage(k.ctx, { after: 'zzz' }), { entries: [], next: null });
  });

  it('filters before paging: a page is full unless it is the last, and none follows a last match', async () => {
    const page = async (input: Parameters<typeof listEntryPage>[1]) => {
      const p = await listEntryPage(k.ctx, input);
      return [p.entries.map((d) => d.alias), p.next];
    };
    assert.deepEqual(await page({ status: 'valid', limit: 1 }), [['corp-root'], 'corp-root']);
    assert.deepEqual(await page({ status: 'valid', limit: 1, after: 'corp-root' }), [
      ['web'],
      null,
    ]);
    // `soon` is the only expiring entry: the entries after it are read, and none matches.
    assert.deepEqual(await page({ status: 'expiring', limit: 1 }), [['soon'], null]);
    assert.deepEqual(await page({ kind: 'key-pair', limit: 1 }), [['soon'], 'soon']);
    assert.deepEqual(await page({ kind: 'key-pair', limit: 1, after: 'soon' }), [['web'], null]);
    assert.deepEqual(await page({ kind: 'key-pair', status: 'expiring', expiringWithinDays: 5 }), [
      [],
      null,
    ]);
  });

  it('reads a page from the store, not the whole keystore', async () => {
    let read = 0;
    const store = new Proxy(k.ctx.store, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (name !== 'listEntries') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: Parameters<Store['listEntries']>) => {
          const records = await target.listEntries(...args);
          read += records.length;
          return records;
        };
      },
    });
    const ctx: ServiceContext = { ...k.ctx, store };
    const page = await listEntryPage(ctx, { limit: 1 });
    assert.deepEqual(
      page.entries.map((d) => d.alias),
      ['corp-root'],
    );
    assert.equal(read, 2, 'the page and the one entry that says a next page follows');
    read = 0;
    assert.equal((await listEntries(ctx)).length, 4);
    assert.equal(read, 4, 'listEntries lists every entry');
  });

  it('refuses a page size out of 1..1000 and an empty after with InvalidQuery', async () => {
    for (const limit of [0, -1, MAX_PAGE_SIZE + 1, 1.5, Number.NaN]) {
      await refusesWithoutWriting(k.ctx, () => listEntryPage(k.ctx, { limit }), 'InvalidQuery');
    }
    await refusesWithoutWriting(k.ctx, () => listEntryPage(k.ctx, { after: '' }), 'InvalidQuery');
    assert.equal((await listEntryPage(k.ctx, { limit: MAX_PAGE_SIZE })).entries.length, 4);
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
