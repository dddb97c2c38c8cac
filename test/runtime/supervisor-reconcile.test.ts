import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Supervisor } from '../../src/runtime/supervisor.js';
import type { ServiceContext } from '../../src/service/context.js';
import { importEntry } from '../../src/service/import-entry.js';
import { localServerNames } from '../../src/service/local-ca.js';
import { openDataDir } from '../../src/store/data-dir.js';
import type { Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { corruptStoredKey } from '../support/store-damage.js';
import { tempDir } from '../support/tools.js';
import { handshake, memoryLogger } from './fixtures.js';

/** Imports a fresh leaf for `host` under `alias` (its own root, trusted by nobody). */
async function importLeaf(
  ctx: ServiceContext,
  alias: string,
  host: string,
  options: {
    replace?: boolean;
    activate?: boolean;
    sniHosts?: string[];
    now?: Date;
    expectedRevision?: number;
  } = {},
) {
  const pki = await makeHierarchy({
    name: alias,
    hosts: [host],
    ...(options.now ? { now: options.now } : {}),
  });
  const bytes = Buffer.from(pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem);
  const result = await importEntry(ctx, {
    alias,
    files: [{ name: `${alias}.pem`, bytes }],
    principal: TEST_PRINCIPAL,
    ...(options.replace ? { replace: true } : {}),
    ...(options.activate ? { activate: true } : {}),
    ...(options.sniHosts ? { sniHosts: options.sniHosts } : {}),
    ...(options.expectedRevision === undefined
      ? {}
      : { expectedRevision: options.expectedRevision }),
  });
  return { ...result, pki };
}

/** Waits until the supervisor has caught up with the store's latest revision. */
async function caughtUp(supervisor: Supervisor, store: Store): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const revision = await store.revision();
    if (supervisor.status()?.reconciledRevision === revision) return revision;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the supervisor did not catch up with revision ${await store.revision()}`);
}

interface Running {
  dir: string;
  store: Store;
  supervisor: Supervisor;
  ctx: ServiceContext;
  logger: ReturnType<typeof memoryLogger>;
  port: number;
  clock: { at: Date; now(): Date };
  stop(): Promise<void>;
}

async function startSupervisor(
  options: { flags?: { certificate: string; privateKey: string } } = {},
): Promise<Running> {
  const { dir, cleanup } = tempDir();
  const store = await openDataDir(dir, {});
  const clock = {
    at: new Date(),
    now() {
      return this.at;
    },
  };
  const logger = memoryLogger();
  const supervisor = new Supervisor({
    store,
    sources: { dataDir: dir, flags: options.flags ?? {}, config: {}, env: {}, strict: false },
    localNames: localServerNames('reconcile.test'),
    commonName: 'reconcile.test',
    host: '127.0.0.1',
    port: 0,
    logger,
    clock,
  });
  await supervisor.start();
  return {
    dir,
    store,
    supervisor,
    ctx: { store, now: () => clock.now(), trusted: [] },
    logger,
    port: supervisor.runtime.address()!.port,
    clock,
    stop: async () => {
      await supervisor.stop();
      await store.close();
      cleanup();
    },
  };
}

describe('the supervisor never loops', () => {
  let s: Running;
  before(async () => {
    s = await startSupervisor();
  });
  after(() => s.stop());

  it('replacing the server entry with another key type keeps every SNI name on its own certificate', async () => {
    const web = await importLeaf(s.ctx, 'web', 'web.example.test', { activate: true });
    const api = await importLeaf(s.ctx, 'api', 'api.example.test', {
      sniHosts: ['api.example.test'],
    });
    await caughtUp(s.supervisor, s.store);
    // makeHierarchy leaves are ECDSA; an RSA leaf comes from openssl-style RSA keys below.
    const { generateKeyPairSync } = await import('node:crypto');
    const { issueCertificate } = await import('../../src/core/generate.js');
    const { toPem } = await import('../../src/core/pem.js');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const der = await issueCertificate({
      issuer: { certificate: web.pki.intermediate.cert, key: web.pki.intermediate.key },
      publicKey: rsa.publicKey,
      subject: { CN: 'web.example.test' },
      sans: { dns: ['web.example.test'], ip: [] },
      days: 30,
      now: new Date(),
    });
    const rsaBundle =
      toPem('CERTIFICATE', der) +
      web.pki.intermediate.certPem +
      rsa.privateKey.export({ format: 'pem', type: 'pkcs8' });
    const replaced = await importEntry(s.ctx, {
      alias: 'web',
      files: [{ name: 'web-rsa.pem', bytes: Buffer.from(rsaBundle) }],
      replace: true,
      principal: TEST_PRINCIPAL,
    });
    const revision = await caughtUp(s.supervisor, s.store);
    assert.equal(revision, replaced.revision, 'no rollback and no other write followed');
    assert.equal(s.supervisor.status()!.revision, replaced.revision);
    assert.deepEqual(s.supervisor.status()!.refused, []);
    const apiSeen = await handshake(s.port, { servername: 'api.example.test' });
    assert.equal(apiSeen.fingerprint, api.entry.fingerprint);
    assert.equal((await handshake(s.port)).fingerprint, replaced.entry.fingerprint);
  });

  it('refuses a renewed server entry it cannot serve once, writes nothing, and keeps serving the last good one', async () => {
    const served = s.supervisor.status()!.fingerprint;
    // A renewal under the same alias whose stored key is damaged: nothing to roll back to
    // in the store (the alias is the same), so the refusal is remembered, not written.
    const renewed = await importLeaf(s.ctx, 'web', 'web.example.test', { replace: true });
    corruptStoredKey(s.dir, 'web');
    const revision = await caughtUp(s.supervisor, s.store);
    assert.equal(revision, renewed.revision, 'the supervisor wrote nothing');
    const status = s.supervisor.status()!;
    assert.equal(status.fingerprint, served);
    assert.deepEqual(
      status.refused.map((r) => [r.binding, r.alias, r.revision]),
      [['server', 'web', renewed.revision]],
    );
    assert.equal((await handshake(s.port)).fingerprint, served);

    // Unrelated changes land: each is followed once, the refused entry is not tried again.
    const refusalsLogged = () =>
      s.logger.entries.filter((e) => e.msg.startsWith('Refused server')).length;
    const logged = refusalsLogged();
    for (let i = 0; i < 3; i++) {
      const other = await importLeaf(s.ctx, `other-${i}`, `other${i}.example.test`);
      assert.equal(await caughtUp(s.supervisor, s.store), other.revision);
    }
    assert.equal(refusalsLogged(), logged, 'the refusal is not repeated');
    assert.equal((await handshake(s.port)).fingerprint, served);

    // Re-activating another entry is a new decision, and it is served.
    const fresh = await importLeaf(s.ctx, 'fresh', 'fresh.example.test', { activate: true });
    assert.equal(await caughtUp(s.supervisor, s.store), fresh.revision);
    assert.equal((await handshake(s.port)).fingerprint, fresh.entry.fingerprint);
    assert.deepEqual(s.supervisor.status()!.refused, [], 'the stale refusal is forgotten');
  });

  it('puts an activation it cannot serve back with one compare-and-set change, then stays quiet', async () => {
    const served = s.supervisor.status()!;
    const broken = await importLeaf(s.ctx, 'broken', 'broken.example.test');
    corruptStoredKey(s.dir, 'broken');
    const { bindEntry } = await import('../../src/service/bind-entry.js');
    const { revision } = await bindEntry(s.ctx, {
      alias: 'broken',
      binding: 'server',
      principal: TEST_PRINCIPAL,
    });
    const settled = await caughtUp(s.supervisor, s.store);
    assert.equal(settled, revision + 1, 'exactly one rollback change');
    const [rollback] = await s.store.listAudit({ limit: 1 });
    assert.equal(rollback!.action, 'rollback');
    assert.equal(rollback!.details.refusedRevision, revision);
    const server = (await s.store.listBindings()).find((b) => b.name === 'server');
    assert.equal(server?.alias, served.alias, 'the server binding points where it did');
    assert.equal((await handshake(s.port)).fingerprint, served.fingerprint);
    assert.ok(broken.revision < revision);
  });

  it('keeps serving an expired server certificate through unrelated changes, and says so', async () => {
    const served = s.supervisor.status()!;
    s.clock.at = new Date(Date.now() + 400 * 86400_000);
    const before = await s.store.revision();
    await s.store.applyChange({
      actor: 'test',
      action: 'test',
      mutations: [{ type: 'putSecret', name: 'unrelated', value: Buffer.from('x') }],
    });
    await caughtUp(s.supervisor, s.store);
    // The local CA's own certificate may renew at the new time; nothing rolls back.
    const since = await s.store.listAudit({ afterRevision: before });
    assert.deepEqual(
      since
        .filter((r) => r.action !== 'renew' && r.action !== 'rotate-ticket-key')
        .map((r) => r.action),
      ['test'],
    );
    const status = s.supervisor.status()!;
    assert.equal(status.fingerprint, served.fingerprint);
    assert.equal(status.expired, true);
    assert.ok(s.logger.entries.some((e) => e.level === 'error' && /expired/.test(e.msg)));
    s.clock.at = new Date();
  });
});

describe('the supervisor and a store that fails', () => {
  it('retries a store it cannot read, writes nothing, and catches up when it recovers', async () => {
    const s = await startSupervisor();
    try {
      const served = s.supervisor.status()!;
      // The store's reads of bindings fail from here (the import itself reads none).
      const listBindingChanges = s.store.listBindingChanges.bind(s.store);
      let failures = 0;
      let failing = true;
      s.store.listBindingChanges = async (after) => {
        if (failing) {
          failures++;
          throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
        }
        return listBindingChanges(after);
      };
      const site = await importLeaf(s.ctx, 'site', 'site.example.test', { activate: true });
      for (let i = 0; i < 200 && failures < 3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(failures >= 3, 'the supervisor kept retrying');
      assert.equal(s.supervisor.status()!.fingerprint, served.fingerprint);
      assert.ok(s.logger.entries.some((e) => /Cannot read the store/.test(e.msg)));
      failing = false;
      assert.equal(await caughtUp(s.supervisor, s.store), site.revision, 'no refusal was written');
      assert.equal((await handshake(s.port)).fingerprint, site.entry.fingerprint);
    } finally {
      await s.stop();
    }
  });
});

describe('the supervisor reloading a broken file source (SIGHUP)', () => {
  it('keeps the last good certificate of a file that broke, and logs the file and the problem', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const pki = await makeHierarchy({ name: 'Flag', hosts: ['flag.example.test'] });
      const cert = join(dir, 'flag.crt');
      const key = join(dir, 'flag.key');
      writeFileSync(cert, pki.leaf.certPem + pki.intermediate.certPem);
      writeFileSync(key, pki.leaf.keyPem);
      const s = await startSupervisor({ flags: { certificate: cert, privateKey: key } });
      try {
        assert.equal(s.supervisor.status()!.source, 'flag');
        const served = s.supervisor.status()!.fingerprint;
        writeFileSync(cert, 'not a certificate');
        await s.supervisor.reload();
        assert.equal(s.supervisor.status()!.source, 'flag');
        assert.equal((await handshake(s.port)).fingerprint, served);
        const logged = s.logger.entries.find((e) => /Reload: .*flag\.crt.*broken/.test(e.msg));
        assert.ok(logged, 'the broken file is named in the log');
        // Fixed again: the new certificate is served.
        const next = await makeHierarchy({ name: 'Flag2', hosts: ['flag.example.test'] });
        writeFileSync(cert, next.leaf.certPem + next.intermediate.certPem);
        writeFileSync(key, next.leaf.keyPem);
        await s.supervisor.reload();
        assert.equal((await handshake(s.port)).fingerprint, next.leaf.cert.sha256);
      } finally {
        await s.stop();
      }
    } finally {
      cleanup();
    }
  });
});

describe('the supervisor and an activation waiting for its confirmation', () => {
  it('rolls back an activation not confirmed in time, once, and keeps a confirmed one', async () => {
    const s = await startSupervisor();
    try {
      const { bindEntry } = await import('../../src/service/bind-entry.js');
      const { confirmServer } = await import('../../src/service/server-identity.js');
      const first = await importLeaf(s.ctx, 'first', 'first.example.test', { activate: true });
      await importLeaf(s.ctx, 'second', 'second.example.test');
      await importLeaf(s.ctx, 'third', 'third.example.test');
      const principal = { actor: 'test', role: 'admin', source: 'test' } as const;

      // Confirmed in time: it stays.
      await bindEntry(s.ctx, {
        alias: 'second',
        binding: 'server',
        principal,
        confirmWithinSeconds: 60,
      });
      await caughtUp(s.supervisor, s.store);
      await confirmServer(s.ctx, { principal });
      s.clock.at = new Date(Date.now() + 120_000);
      await s.supervisor.rollBackUnconfirmed();
      assert.equal(await caughtUp(s.supervisor, s.store), await s.store.revision());
      assert.equal(s.supervisor.status()!.alias, 'second');

      // Not confirmed: when the deadline passes the previous identity serves again.
      s.clock.at = new Date();
      const activated = await bindEntry(s.ctx, {
        alias: 'third',
        binding: 'server',
        principal,
        confirmWithinSeconds: 60,
      });
      await caughtUp(s.supervisor, s.store);
      assert.equal(s.supervisor.status()!.alias, 'third');
      await s.supervisor.rollBackUnconfirmed();
      assert.equal(await s.store.revision(), activated.revision, 'not before the deadline');
      s.clock.at = new Date(Date.now() + 61_000);
      await s.supervisor.rollBackUnconfirmed();
      await s.supervisor.rollBackUnconfirmed();
      assert.equal(
        await caughtUp(s.supervisor, s.store),
        activated.revision + 1,
        'exactly one rollback',
      );
      const [rollback] = await s.store.listAudit({ limit: 1 });
      assert.deepEqual(
        [rollback!.action, rollback!.actor, rollback!.details.to],
        ['rollback', 'runtime', 'second'],
      );
      assert.equal(s.supervisor.status()!.alias, 'second');
      assert.equal(
        (await handshake(s.port)).fingerprint,
        (await s.store.getEntry('second'))!.fingerprint,
      );
      assert.ok(first.revision < activated.revision);
    } finally {
      await s.stop();
    }
  });

  it('rolls back after a restart inside the window, when the deadline passes', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const { bindEntry } = await import('../../src/service/bind-entry.js');
      const store = await openDataDir(dir, {});
      const ctx = { store, now: () => new Date(), trusted: [] };
      await importLeaf(ctx, 'old', 'old.example.test', { activate: true });
      await importLeaf(ctx, 'new', 'new.example.test');
      const principal = { actor: 'test', role: 'admin', source: 'test' } as const;
      const activated = await bindEntry(ctx, {
        alias: 'new',
        binding: 'server',
        principal,
        confirmWithinSeconds: 30,
      });
      await store.close();
      // A server started after the deadline (its clock says so) rolls back at once.
      const later = { now: () => new Date(Date.now() + 31_000) };
      const reopened = await openDataDir(dir, {});
      const supervisor = new Supervisor({
        store: reopened,
        sources: { dataDir: dir, flags: {}, config: {}, env: {}, strict: false },
        localNames: localServerNames('restart.test'),
        commonName: 'restart.test',
        host: '127.0.0.1',
        port: 0,
        logger: memoryLogger(),
        clock: later,
      });
      await supervisor.start();
      try {
        for (let i = 0; i < 300 && supervisor.status()!.alias !== 'old'; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.equal(supervisor.status()!.alias, 'old');
        const since = await reopened.listAudit({ afterRevision: activated.revision });
        // The first start also created the local CA; besides it, one rollback.
        assert.deepEqual(
          since.map((r) => r.action).filter((a) => a !== 'create-local-ca'),
          ['rollback'],
        );
      } finally {
        await supervisor.stop();
        await reopened.close();
      }
    } finally {
      cleanup();
    }
  });
});

describe('the supervisor never leaves a promise unhandled', () => {
  it('logs a store that fails under the change feed and the timers, and nothing is unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const s = await startSupervisor();
    try {
      const getEntry = s.store.getEntry.bind(s.store);
      const broken = Object.assign(new Error('I/O error (expected by the test)'), { code: 'EIO' });
      s.store.getEntry = async () => {
        throw broken;
      };
      s.store.getSetting = async () => {
        throw broken;
      };
      await s.store.applyChange({
        actor: 'test',
        action: 'test',
        mutations: [{ type: 'putSecret', name: 'x', value: Buffer.from('x') }],
      });
      for (
        let i = 0;
        i < 100 && !s.logger.entries.some((e) => /pending confirmation/.test(e.msg));
        i++
      ) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
      s.store.getEntry = getEntry;
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await s.stop();
    }
  });
});

describe('the supervisor following several revisions at once from another process', () => {
  /** A supervisor on its own store handle, and a second handle writing as another process would. */
  async function twoHandles() {
    const { dir, cleanup } = tempDir();
    const store = await openDataDir(dir, {});
    const writer = await openDataDir(dir, {});
    const logger = memoryLogger();
    const supervisor = new Supervisor({
      store,
      sources: { dataDir: dir, flags: {}, config: {}, env: {}, strict: false },
      localNames: localServerNames('batch.test'),
      commonName: 'batch.test',
      host: '127.0.0.1',
      port: 0,
      logger,
    });
    await supervisor.start();
    return {
      dir,
      store,
      supervisor,
      ctx: { store: writer, now: () => new Date(), trusted: [] },
      port: supervisor.runtime.address()!.port,
      async stop() {
        await supervisor.stop();
        await store.close();
        await writer.close();
        cleanup();
      },
    };
  }

  it('serves the good changes of a batch whose other change it refused', async () => {
    const s = await twoHandles();
    try {
      await importLeaf(s.ctx, 'a', 'a.test', { sniHosts: ['a.test'] });
      await importLeaf(s.ctx, 'b', 'b.test', { sniHosts: ['b.test'] });
      await caughtUp(s.supervisor, s.store);
      const servedA = (await handshake(s.port, { servername: 'a.test' })).fingerprint;
      // Within one poll: "a" renewed with a key that is then damaged, "b" renewed well.
      await importLeaf(s.ctx, 'a', 'a.test', { replace: true });
      corruptStoredKey(s.dir, 'a');
      const b = await importLeaf(s.ctx, 'b', 'b.test', { replace: true });
      await caughtUp(s.supervisor, s.store);
      assert.equal(
        (await handshake(s.port, { servername: 'b.test' })).fingerprint,
        b.entry.fingerprint,
      );
      assert.equal((await handshake(s.port, { servername: 'a.test' })).fingerprint, servedA);
      const refused = s.supervisor.status()!.refused;
      assert.deepEqual(
        refused.map((r) => [r.binding, r.code]),
        [['sni:a.test', 'ContextBuildFailed']],
      );
      assert.match(refused[0]!.reason, /StoreCorrupt/, 'the reason says what is wrong with it');
    } finally {
      await s.stop();
    }
  });

  it('unbinds a refused name whose last served entry was deleted, rather than fail to roll back', async () => {
    const s = await twoHandles();
    try {
      const { bindEntry } = await import('../../src/service/bind-entry.js');
      const { deleteEntry } = await import('../../src/service/delete-entry.js');
      const principal = { actor: 'test', role: 'admin', source: 'test' } as const;
      await importLeaf(s.ctx, 'a', 'a.test', { sniHosts: ['a.test'] });
      await importLeaf(s.ctx, 'c', 'a.test');
      await importLeaf(s.ctx, 'x', 'a.test');
      corruptStoredKey(s.dir, 'x');
      await caughtUp(s.supervisor, s.store);
      // Within one poll: a.test -> c, "a" deleted, a.test -> x (damaged).
      await bindEntry(s.ctx, { alias: 'c', binding: 'sni:a.test', principal });
      await deleteEntry(s.ctx, { alias: 'a', principal });
      await bindEntry(s.ctx, { alias: 'x', binding: 'sni:a.test', principal });
      await caughtUp(s.supervisor, s.store);
      const bound = (await s.store.listBindings()).find((b) => b.name === 'sni:a.test');
      assert.equal(bound, undefined, 'the store and the server agree: a.test is unbound');
      assert.equal(
        (await handshake(s.port, { servername: 'a.test' })).fingerprint,
        s.supervisor.status()!.fingerprint,
        'a.test gets the server identity',
      );
      const [rollback] = await s.store.listAudit({ limit: 1 });
      assert.equal(rollback!.action, 'rollback');
    } finally {
      await s.stop();
    }
  });
});
