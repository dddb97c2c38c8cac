import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parseCertificate } from '../../src/core/certificate.js';
import { subjectAltNamesOf } from '../../src/core/extensions.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { validateServerChain } from '../../src/core/validate.js';
import { LOCAL_CA_ALIAS, LOCAL_SERVER_ALIAS } from '../../src/service/context.js';
import {
  ensureLocalCa,
  localServerNames,
  renewalDue,
  renewalTime,
} from '../../src/service/local-ca.js';
import { openDataDir, STORE_FILE } from '../../src/store/data-dir.js';
import { isStoreError, type Store } from '../../src/store/store.js';
import { corruptStoredKey, flipStoredPemByte } from '../support/store-damage.js';
import { tempDir } from '../support/tools.js';

const DAY = 86_400_000;

describe('the local CA', () => {
  const { dir, cleanup } = tempDir();
  let store: Store;
  const t0 = new Date('2026-01-01T00:00:00Z');
  const names = localServerNames('box.example.test', ['admin.example.test', '192.0.2.7']);
  const cert = async (alias: string) => {
    const entry = await store.getEntry(alias);
    return parseCertificate(parsePemBlocks(entry!.certificatePem!)[0]!.der);
  };

  before(async () => {
    store = await openDataDir(join(dir, 'data'), {}, { create: true });
  });
  after(async () => {
    await store.close();
    cleanup();
  });

  it('creates a 10-year P-256 CA and a 90-day server certificate on first start', async () => {
    const revision = await ensureLocalCa({ store, now: t0, names, commonName: 'box.example.test' });
    assert.equal(typeof revision, 'number');
    const ca = await cert(LOCAL_CA_ALIAS);
    const leaf = await cert(LOCAL_SERVER_ALIAS);
    assert.equal(Math.round((ca.notAfter.getTime() - t0.getTime()) / DAY), 3650);
    assert.equal(Math.round((leaf.notAfter.getTime() - t0.getTime()) / DAY), 90);
    const sans = subjectAltNamesOf(leaf);
    assert.deepEqual(sans.dns.sort(), ['admin.example.test', 'box.example.test', 'localhost']);
    assert.deepEqual(sans.ip.sort(), ['127.0.0.1', '192.0.2.7', '::1']);
    const bindings = await store.listBindings();
    assert.deepEqual(
      bindings.map((b) => [b.name, b.alias]),
      [['ca', LOCAL_CA_ALIAS]],
    );
    const result = validateServerChain(leaf, { trusted: [ca], time: t0, host: '::1' });
    assert.deepEqual(result.problems, []);
  });

  it('changes nothing before two thirds of the life have passed', async () => {
    const leaf = await cert(LOCAL_SERVER_ALIAS);
    const before = renewalTime(leaf);
    assert.equal(renewalDue(leaf, new Date(before.getTime() - 1000)), false);
    const revision = await store.revision();
    assert.equal(
      await ensureLocalCa({
        store,
        now: new Date(before.getTime() - 1000),
        names,
        commonName: 'box.example.test',
      }),
      undefined,
    );
    assert.equal(await store.revision(), revision);
  });

  it('renews the server certificate at two thirds of its life, keeping the CA', async () => {
    const ca = await cert(LOCAL_CA_ALIAS);
    const old = await cert(LOCAL_SERVER_ALIAS);
    const due = renewalTime(old);
    const revision = await ensureLocalCa({
      store,
      now: due,
      names,
      commonName: 'box.example.test',
    });
    assert.equal(typeof revision, 'number');
    const renewed = await cert(LOCAL_SERVER_ALIAS);
    assert.notEqual(renewed.sha256, old.sha256);
    assert.equal((await cert(LOCAL_CA_ALIAS)).sha256, ca.sha256);
    assert.ok(renewed.notAfter > old.notAfter);
    const audit = (await store.listAudit({ limit: 1 }))[0]!;
    assert.equal(audit.action, 'renew');
    assert.equal(audit.details.reason, 'two thirds of life passed');
  });

  it('re-issues when the names it must cover change', async () => {
    const old = await cert(LOCAL_SERVER_ALIAS);
    const more = localServerNames('box.example.test', ['new.example.test']);
    await ensureLocalCa({
      store,
      now: new Date(old.notBefore.getTime() + DAY),
      names: more,
      commonName: 'box.example.test',
    });
    assert.ok(subjectAltNamesOf(await cert(LOCAL_SERVER_ALIAS)).dns.includes('new.example.test'));
  });

  it('leaves out a host name that is not a DNS name, and refuses a bad extra SAN', () => {
    assert.deepEqual(localServerNames('my_box').dns, ['localhost']);
    assert.throws(() => localServerNames('box', ['not a name']));
  });
});

describe('a damaged local CA', () => {
  const names = localServerNames('box.example.test');
  const t0 = new Date('2026-01-01T00:00:00Z');

  /** A data directory whose local CA exists, damaged by `damage`; the store reopened after. */
  async function damaged(damage: (dataDir: string) => void, t: TestContext): Promise<Store> {
    const { dir, cleanup } = tempDir();
    const dataDir = join(dir, 'data');
    const first = await openDataDir(dataDir, {}, { create: true });
    await ensureLocalCa({ store: first, now: t0, names, commonName: 'box.example.test' });
    await first.close();
    damage(dataDir);
    const store = await openDataDir(dataDir, {});
    t.after(async () => {
      await store.close();
      cleanup();
    });
    return store;
  }

  async function refusesToReissue(store: Store, alias: string): Promise<void> {
    const revision = await store.revision();
    await assert.rejects(
      ensureLocalCa({ store, now: t0, names, commonName: 'box.example.test' }),
      (err: unknown) => {
        assert.ok(isStoreError(err, 'StoreCorrupt'), String(err));
        assert.ok(err.message.includes(alias), err.message);
        return true;
      },
    );
    assert.equal(await store.revision(), revision, 'nothing written, no new CA');
  }

  it('refuses a CA certificate with one byte changed, naming it, and issues no new CA', async (t) => {
    const store = await damaged(
      (d) =>
        flipStoredPemByte(join(d, STORE_FILE), LOCAL_CA_ALIAS, 'certificate_pem', 'not-base64'),
      t,
    );
    await refusesToReissue(store, LOCAL_CA_ALIAS);
  });

  it('refuses a CA key that does not decrypt, and issues no new CA', async (t) => {
    const store = await damaged((d) => corruptStoredKey(d, LOCAL_CA_ALIAS), t);
    await refusesToReissue(store, LOCAL_CA_ALIAS);
  });

  it('refuses a damaged server certificate, naming it', async (t) => {
    const store = await damaged(
      (d) => flipStoredPemByte(join(d, STORE_FILE), LOCAL_SERVER_ALIAS, 'certificate_pem', 'case'),
      t,
    );
    await refusesToReissue(store, LOCAL_SERVER_ALIAS);
  });
});

describe('two nodes keeping one local CA', () => {
  const names = localServerNames('box.example.test');
  const t0 = new Date('2026-01-01T00:00:00Z');

  /** Two stores on one data directory, as two processes (or nodes) would open it. */
  async function twoNodes(t: TestContext): Promise<[Store, Store]> {
    const { dir, cleanup } = tempDir();
    const dataDir = join(dir, 'data');
    const a = await openDataDir(dataDir, {}, { create: true });
    const b = await openDataDir(dataDir, {});
    t.after(async () => {
      await a.close();
      await b.close();
      cleanup();
    });
    return [a, b];
  }

  const ensure = (store: Store, now: Date) =>
    ensureLocalCa({ store, now, names, commonName: 'box.example.test' });

  it('creates one CA when both start at once: the later writer re-reads and finds it', async (t) => {
    const [a, b] = await twoNodes(t);
    const written = (await Promise.all([ensure(a, t0), ensure(b, t0)])).filter(
      (r) => r !== undefined,
    );
    assert.equal(written.length, 1, 'one change');
    assert.equal(await a.revision(), 1);
    const audit = await a.listAudit();
    assert.deepEqual(
      audit.map((r) => r.action),
      ['create-local-ca'],
    );
    assert.deepEqual(audit[0]!.details.principal, { role: 'system', source: 'runtime' });
  });

  it('renews once when both find the certificate due', async (t) => {
    const [a, b] = await twoNodes(t);
    await ensure(a, t0);
    const entry = await a.getEntry(LOCAL_SERVER_ALIAS);
    const due = renewalTime(parseCertificate(parsePemBlocks(entry!.certificatePem!)[0]!.der));
    const before = await a.revision();
    const written = (await Promise.all([ensure(a, due), ensure(b, due)])).filter(
      (r) => r !== undefined,
    );
    assert.equal(written.length, 1, 'one renewal, not two');
    assert.equal(await a.revision(), before + 1);
    assert.deepEqual(
      (await a.listAudit({ afterRevision: before })).map((r) => r.action),
      ['renew'],
    );
  });
});
