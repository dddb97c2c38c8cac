import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { loadMasterKey } from '../../src/store/master-key.js';
import {
  migrateSqlite,
  SQLITE_APPLICATION_ID,
  SQLITE_MIGRATIONS,
  SQLITE_SCHEMA_VERSION,
} from '../../src/store/migrations/sqlite.js';
import {
  openSqliteStore,
  type SqliteStoreOptions,
  sqliteStoreIsNew,
} from '../../src/store/sqlite.js';
import { isStoreError, type Store } from '../../src/store/store.js';
import { flipStoredPemByte } from '../support/store-damage.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';
import { keyPairEntry, type Material, makeMaterial, pendingEntry } from './material.js';
import { rejectsWith, storeSuite } from './store-suite.js';

const WRITER = join(REPO_ROOT, 'test/store/fixtures/writer.ts');

storeSuite('sqlite', async () => {
  const { dir, cleanup } = tempDir('certkeeper-store-');
  const path = join(dir, 'certkeeper.db');
  const masterKey = randomBytes(32);
  const opened: Store[] = [];
  const open = async () => {
    const store = await openSqliteStore({ path, masterKey, onError: reportUnexpected });
    opened.push(store);
    return store;
  };
  return {
    store: await open(),
    reopen: open,
    cleanup: async () => {
      for (const s of opened) await s.close();
      cleanup();
    },
  };
});

/** The suite makes one listener throw on purpose; anything else is reported. */
function reportUnexpected(err: unknown): void {
  if (!String(err).includes('(expected by the test)')) process.emitWarning(String(err));
}

/** A temp dir with a store path and a key; every store opened through it is closed after. */
function fixture() {
  const { dir, cleanup } = tempDir('certkeeper-sqlite-');
  const path = join(dir, 'certkeeper.db');
  const masterKey = randomBytes(32);
  const stores: Store[] = [];
  return {
    dir,
    path,
    masterKey,
    async open(options: Partial<SqliteStoreOptions> = {}): Promise<Store> {
      const store = await openSqliteStore({ path, masterKey, ...options });
      stores.push(store);
      return store;
    },
    async cleanup() {
      for (const s of stores) await s.close();
      cleanup();
    },
  };
}

type Fixture = ReturnType<typeof fixture>;

function withFixture(
  fn: (f: Fixture, t: TestContext) => Promise<void>,
): (t: TestContext) => Promise<void> {
  return async (t) => {
    const f = fixture();
    try {
      await fn(f, t);
    } finally {
      await f.cleanup();
    }
  };
}

/** The other process: the writer fixture, its output lines as they come. */
function spawnWriter(f: Fixture, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER], {
    cwd: REPO_ROOT,
    env: { ...process.env, STORE_PATH: f.path, MASTER_KEY: f.masterKey.toString('hex'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const commits: { revision: number; at: number }[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') onReady();
    else commits.push(JSON.parse(line) as { revision: number; at: number });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, commits, ready, exited, stderr: () => stderr };
}

function readOnly(path: string): Database.Database {
  return new Database(path, { readonly: true, fileMustExist: true });
}

describe('SQLite store', () => {
  let a: Material;
  before(async () => {
    a = await makeMaterial('a.example');
  });

  describe('encryption at rest', () => {
    it(
      'writes no plain private key or secret bytes to the database file or its WAL',
      withFixture(async (f) => {
        const store = await f.open();
        const secret = randomBytes(48);
        await store.applyChange({
          actor: 'test',
          action: 'import',
          mutations: [
            { type: 'putEntry', entry: keyPairEntry('web', a) },
            { type: 'putEntry', entry: pendingEntry('csr', a) },
            { type: 'putSecret', name: 'ticket', value: secret },
          ],
        });
        const needles = [
          a.secretBytes,
          a.keyDer.subarray(a.keyDer.length - 48),
          Buffer.from(a.keyDer.toString('base64').slice(40, 100)),
          secret,
        ];
        const files = () =>
          [f.path, `${f.path}-wal`].filter(existsSync).map((p) => readFileSync(p));
        const before = files();
        assert.ok(
          before.some((bytes) => bytes.includes(Buffer.from('web'))),
          'the data is there',
        );
        for (const bytes of before) for (const n of needles) assert.equal(bytes.indexOf(n), -1);
        await store.close();
        for (const bytes of files()) for (const n of needles) assert.equal(bytes.indexOf(n), -1);
      }),
    );

    it(
      'refuses a private key copied into another row (StoreCorrupt)',
      withFixture(async (f) => {
        const store = await f.open();
        await store.applyChange({
          actor: 'test',
          action: 'import',
          mutations: [
            { type: 'putEntry', entry: keyPairEntry('one', a) },
            { type: 'putEntry', entry: keyPairEntry('two', a) },
          ],
        });
        const db = new Database(f.path);
        db.prepare(
          "UPDATE entries SET private_key = (SELECT private_key FROM entries WHERE alias = 'one') WHERE alias = 'two'",
        ).run();
        db.close();
        assert.ok((await store.getPrivateKey('one'))?.equals(a.keyDer));
        await rejectsWith(store.getPrivateKey('two'), 'StoreCorrupt');
      }),
    );

    it(
      'refuses a wrong master key with MasterKeyWrong, leaving the data as it was',
      withFixture(async (f) => {
        const store = await f.open();
        await store.applyChange({
          actor: 't',
          action: 'import',
          mutations: [{ type: 'putEntry', entry: keyPairEntry('web', a) }],
        });
        await store.close();
        await assert.rejects(
          openSqliteStore({ path: f.path, masterKey: randomBytes(32) }),
          (err: Error & { code?: string }) => {
            assert.equal(err.code, 'MasterKeyWrong');
            assert.match(err.message, /does not match this data directory/);
            return true;
          },
        );
        const again = await f.open();
        assert.ok((await again.getPrivateKey('web'))?.equals(a.keyDer));
      }),
    );

    it(
      'refuses a master key of the wrong length with MasterKeyInvalid',
      withFixture(async (f) => {
        await rejectsWith(
          openSqliteStore({ path: f.path, masterKey: randomBytes(16) }),
          'MasterKeyInvalid',
        );
      }),
    );
  });

  describe('master key and data directory', () => {
    it(
      'creates master.key 0600 for a new store and uses it from then on',
      withFixture(async (f) => {
        assert.equal(await sqliteStoreIsNew(f.path), true);
        const key = await loadMasterKey({
          dataDir: f.dir,
          env: {},
          create: await sqliteStoreIsNew(f.path),
        });
        assert.equal(statSync(join(f.dir, 'master.key')).mode & 0o777, 0o600);
        const store = await openSqliteStore({ path: f.path, masterKey: key });
        await store.close();
        assert.equal(await sqliteStoreIsNew(f.path), false);
        const again = await loadMasterKey({
          dataDir: f.dir,
          env: {},
          create: await sqliteStoreIsNew(f.path),
        });
        assert.ok(again.equals(key));
        await (await openSqliteStore({ path: f.path, masterKey: again })).close();
      }),
    );

    it(
      'refuses to open a store with data when master.key is gone (MasterKeyMissing)',
      withFixture(async (f) => {
        const store = await f.open();
        await store.close();
        assert.equal(await sqliteStoreIsNew(f.path), false);
        await rejectsWith(
          loadMasterKey({ dataDir: f.dir, env: {}, create: await sqliteStoreIsNew(f.path) }),
          'MasterKeyMissing',
        );
        assert.equal(existsSync(join(f.dir, 'master.key')), false, 'no new key was made');
      }),
    );

    it(
      'accepts the key from CERTKEEPER_MASTER_KEY',
      withFixture(async (f) => {
        await (await f.open()).close();
        const env = { CERTKEEPER_MASTER_KEY: f.masterKey.toString('base64') };
        const key = await loadMasterKey({ dataDir: f.dir, env, create: false });
        const store = await openSqliteStore({ path: f.path, masterKey: key });
        await store.close();
      }),
    );

    it(
      'creates the database file readable by its owner only',
      withFixture(async (f) => {
        await f.open();
        assert.equal(statSync(f.path).mode & 0o777, 0o600);
      }),
    );
  });

  describe('a row damaged on disk, where integrity_check still passes', () => {
    /** Asserts StoreCorrupt naming the alias, from getEntry and listEntries alike. */
    async function assertCorrupt(store: Store, alias: string) {
      for (const read of [() => store.getEntry(alias), () => store.listEntries()]) {
        await assert.rejects(read(), (err: unknown) => {
          assert.ok(isStoreError(err, 'StoreCorrupt'), String(err));
          assert.ok(err.message.includes(`"${alias}"`), err.message);
          assert.deepEqual(err.details, { alias });
          return true;
        });
      }
    }

    for (const how of ['case', 'not-base64'] as const) {
      it(
        `refuses a certificate with one byte changed (${how}) as StoreCorrupt naming the alias`,
        withFixture(async (f) => {
          const store = await f.open();
          await store.applyChange({
            actor: 'test',
            action: 'import',
            mutations: [
              { type: 'putEntry', entry: keyPairEntry('web', a) },
              { type: 'putEntry', entry: keyPairEntry('other', a) },
            ],
          });
          flipStoredPemByte(f.path, 'web', 'certificate_pem', how);
          await assertCorrupt(store, 'web');
          assert.equal((await store.getEntry('other'))?.fingerprint, a.fingerprint);
        }),
      );
    }

    it(
      'refuses a chain with a byte that is not base64 as StoreCorrupt naming the alias',
      withFixture(async (f) => {
        const store = await f.open();
        await store.applyChange({
          actor: 'test',
          action: 'import',
          mutations: [{ type: 'putEntry', entry: keyPairEntry('web', a, a.certificatePem) }],
        });
        flipStoredPemByte(f.path, 'web', 'chain_pem', 'not-base64');
        await assertCorrupt(store, 'web');
      }),
    );
  });

  describe('the audit chain on disk', () => {
    it(
      'names the first record altered, removed or reordered on disk',
      withFixture(async (f) => {
        const store = await f.open();
        for (let i = 0; i < 4; i++) {
          await store.applyChange({
            actor: 'test',
            action: 'test',
            details: { i },
            mutations: [{ type: 'putSecret', name: `s${i}`, value: Buffer.from([i]) }],
          });
        }
        assert.deepEqual(await store.verifyAudit(), { ok: true, records: 4 });
        const db = new Database(f.path);
        try {
          db.prepare(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`).run();
          const altered = await store.verifyAudit();
          assert.equal(altered.ok, false);
          assert.equal(!altered.ok && altered.brokenAt, 3);
          db.prepare(`UPDATE audit_log SET actor = 'test' WHERE seq = 3`).run();
          assert.equal((await store.verifyAudit()).ok, true);
          db.prepare('DELETE FROM audit_log WHERE seq = 2').run();
          const removed = await store.verifyAudit();
          assert.equal(!removed.ok && removed.brokenAt, 3);
        } finally {
          db.close();
        }
      }),
    );

    it(
      'moves the audit rows of a schema-2 store into the chain in revision order',
      withFixture(async (f) => {
        const db = new Database(f.path);
        try {
          migrateSqlite(db, f.path, SQLITE_MIGRATIONS.slice(0, 2));
          const insert = db.prepare(
            'INSERT INTO audit (revision, at, actor, action, target, details) VALUES (?, ?, ?, ?, ?, ?)',
          );
          insert.run(1, '2026-01-01T00:00:00.000Z', 'cli', 'import', 'web', '{"files":["a.pem"]}');
          insert.run(2, '2026-01-02T00:00:00.000Z', 'runtime', 'rollback', null, '{}');
          db.prepare('UPDATE revision SET value = 2').run();
          assert.deepEqual(migrateSqlite(db, f.path), [3]);
        } finally {
          db.close();
        }
        const store = await f.open();
        assert.deepEqual(await store.verifyAudit(), { ok: true, records: 2 });
        const [second, first] = await store.listAudit();
        assert.deepEqual(
          [first!.revision, first!.actor, first!.action, first!.details],
          [1, 'cli', 'import', { files: ['a.pem'] }],
        );
        assert.equal(second!.prevHash, first!.hash);
        await store.applyChange({ actor: 'test', action: 'after', mutations: [] });
        assert.deepEqual(await store.verifyAudit(), { ok: true, records: 3 });
      }),
    );
  });

  describe('schema', () => {
    it(
      'applies the migrations to a new file, and nothing the second time',
      withFixture(async (f) => {
        const db = new Database(f.path);
        try {
          assert.deepEqual(
            migrateSqlite(db, f.path),
            Array.from({ length: SQLITE_SCHEMA_VERSION }, (_, i) => i + 1),
          );
          assert.deepEqual(migrateSqlite(db, f.path), []);
          assert.equal(db.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION);
          assert.equal(db.pragma('application_id', { simple: true }), SQLITE_APPLICATION_ID);
          const tables = db
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .pluck()
            .all();
          assert.deepEqual(tables, [
            'audit_log',
            'bindings',
            'entries',
            'login_failures',
            'meta',
            'node_status',
            'revision',
            'runtime_secrets',
            'secrets',
            'sessions',
            'settings',
            'tokens',
            'users',
          ]);
        } finally {
          db.close();
        }
        // And a store opens it as it is.
        const store = await f.open();
        assert.equal(await store.revision(), 0);
      }),
    );

    it(
      'uses WAL, and keeps the bindings foreign key',
      withFixture(async (f) => {
        await f.open();
        const db = readOnly(f.path);
        try {
          assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
          const fk = db.pragma('foreign_key_list(bindings)') as {
            table: string;
            on_delete: string;
          }[];
          assert.deepEqual(
            fk.map((k) => [k.table, k.on_delete]),
            [['entries', 'RESTRICT']],
          );
        } finally {
          db.close();
        }
      }),
    );

    it(
      'refuses a file from a newer schema version (StoreTooNew) without touching it',
      withFixture(async (f) => {
        await (await f.open()).close();
        const db = new Database(f.path);
        db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
        db.close();
        const bytes = readFileSync(f.path);
        await rejectsWith(f.open(), 'StoreTooNew');
        assert.ok(readFileSync(f.path).equals(bytes));
      }),
    );

    it(
      'refuses an SQLite file that is not a certkeeper store',
      withFixture(async (f) => {
        const db = new Database(f.path);
        db.exec('CREATE TABLE other (x INTEGER)');
        db.close();
        await rejectsWith(f.open(), 'StoreUnavailable');
      }),
    );

    it(
      'refuses a file that is not a database',
      withFixture(async (f) => {
        writeFileSync(f.path, randomBytes(8192));
        await assert.rejects(f.open(), (err: Error & { code?: string }) => {
          assert.ok(['StoreCorrupt', 'StoreUnavailable'].includes(err.code ?? ''), err.message);
          return true;
        });
      }),
    );
  });

  describe('the clock', () => {
    it(
      'stamps entries and audit rows with the injected clock',
      withFixture(async (f) => {
        const at = new Date('2031-01-02T03:04:05.678Z');
        const store = await f.open({ now: () => at });
        await store.applyChange({
          actor: 't',
          action: 'import',
          mutations: [{ type: 'putEntry', entry: keyPairEntry('web', a) }],
        });
        assert.equal((await store.getEntry('web'))?.createdAt, at.toISOString());
        assert.equal((await store.listAudit())[0]?.at, at.toISOString());
      }),
    );
  });

  describe('other processes', () => {
    // How soon they arrive (p50/p99 over many commits) is measured by `npm run
    // bench:latency` (BENCHMARKS.md); a wall-clock bound here fails on a loaded machine.
    it(
      'delivers every commit of another process to watch, in order, losing none',
      withFixture(async (f) => {
        const store = await f.open();
        const seen: number[] = [];
        let last = 0;
        let onSeen = () => {};
        store.watch((revision) => {
          seen.push(revision);
          last = revision;
          onSeen();
        });
        const writer = spawnWriter(f, { COUNT: '8', GAP_MS: '120' });
        assert.equal(await writer.exited, 0, writer.stderr());
        assert.deepEqual(
          writer.commits.map((c) => c.revision),
          [1, 2, 3, 4, 5, 6, 7, 8],
        );
        // Wait for the event itself: the last revision reaching watch (the bound only
        // stops a hang; it is not the claim).
        await new Promise<void>((resolve, reject) => {
          const hang = setTimeout(
            () => reject(new Error(`watch saw ${seen.join(' ')}, never 8`)),
            30_000,
          );
          onSeen = () => {
            if (last < 8) return;
            clearTimeout(hang);
            resolve();
          };
          onSeen();
        });
        // In increasing order, each a revision that was committed, ending at the last;
        // several commits may arrive as only the latest (the Store contract), so every
        // commit is covered by the first delivery at or after it.
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, seen.join(' '));
        for (const revision of seen) assert.ok(revision >= 1 && revision <= 8, seen.join(' '));
        assert.equal(seen.at(-1), 8);
        // Nothing lost: what watch announced is all there, one audit row per commit (newest first).
        assert.equal(await store.revision(), 8);
        assert.deepEqual(
          (await store.listAudit()).map((a) => a.revision).reverse(),
          [1, 2, 3, 4, 5, 6, 7, 8],
        );
      }),
    );

    it(
      'keeps every reported commit and a sound file when the writer is SIGKILLed mid-write',
      withFixture(async (f) => {
        let reported = 0;
        // Each writer starts again at s0, so the names written are those of the longest round.
        let names = 0;
        for (let round = 0; round < 5; round++) {
          const writer = spawnWriter(f, { COUNT: '0' });
          await writer.ready;
          await sleep(20 + Math.random() * 150);
          writer.child.kill('SIGKILL');
          await writer.exited;
          const last = writer.commits.at(-1)?.revision ?? reported;
          assert.ok(last >= reported);
          reported = last;
          const store = await f.open();
          const revision = await store.revision();
          assert.ok(revision >= reported, `revision ${revision} lost reported ${reported}`);
          const audit = await store.listAudit();
          assert.equal(audit.length, revision, 'one audit row per revision');
          assert.equal(audit[0]?.revision, revision);
          names = Math.max(names, Math.min(16, writer.commits.length));
          for (let i = 0; i < names; i++) {
            assert.equal((await store.getSecret(`s${i}`))?.length, 4096);
          }
          await store.close();
          reported = revision;
          const db = readOnly(f.path);
          assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
          assert.deepEqual(db.pragma('foreign_key_check'), []);
          db.close();
        }
        assert.ok(reported > 0, 'the writer committed something');
      }),
    );

    it(
      'passes integrity_check after a burst of changes',
      withFixture(async (f) => {
        const store = await f.open();
        const materials = [a, await makeMaterial('b.example')];
        const changes: Promise<number>[] = [];
        for (let i = 0; i < 300; i++) {
          const m = materials[i % 2]!;
          changes.push(
            store.applyChange({
              actor: 'burst',
              action: 'import',
              mutations: [
                { type: 'putEntry', entry: keyPairEntry(`e${i % 40}`, m) },
                ...(i % 3 === 0
                  ? [{ type: 'bind' as const, name: `sni:h${i % 7}.example`, alias: `e${i % 40}` }]
                  : []),
                { type: 'putSecret', name: `s${i % 5}`, value: randomBytes(256) },
              ],
            }),
          );
        }
        const revisions = await Promise.all(changes);
        assert.deepEqual(
          revisions,
          Array.from({ length: 300 }, (_, i) => i + 1),
        );
        const db = readOnly(f.path);
        try {
          assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
          assert.deepEqual(db.pragma('foreign_key_check'), []);
        } finally {
          db.close();
        }
      }),
    );

    it(
      'waits for a writer in another process rather than failing',
      withFixture(async (f) => {
        const store = await f.open();
        const writer = spawnWriter(f, { COUNT: '40', GAP_MS: '0' });
        await writer.ready;
        let mine = 0;
        for (let i = 0; i < 40; i++) {
          await store.applyChange({ actor: 'server', action: 'renew', mutations: [] });
          mine++;
        }
        assert.equal(await writer.exited, 0, writer.stderr());
        assert.equal(await store.revision(), mine + 40);
      }),
    );
  });
});
