import { chmodSync, existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import {
  aliasNotFound,
  bindingNotFound,
  type ChangePlan,
  checkStoredEntry,
  entryBound,
  notBindable,
  type PlannedEntry,
  prepareChange,
  revisionConflict,
} from './change.js';
import { Sealer } from './encryption.js';
import { checkSqliteFile, migrateSqlite } from './migrations/sqlite.js';
import {
  type AuditRecord,
  type Binding,
  type BindingChanges,
  type BoundEntry,
  type ChangeInput,
  type EntryKind,
  type EntryRecord,
  isStoreError,
  type Store,
  StoreError,
} from './store.js';

export interface SqliteStoreOptions {
  /** The database file; created (mode 0600) when missing. Its directory must exist. */
  path: string;
  /** The 32-byte master key (see `loadMasterKey`). */
  masterKey: Uint8Array;
  /** How often `watch` looks for commits by other processes; 50 ms unless given. */
  pollIntervalMs?: number;
  /** How long a write waits for another process's write lock; 5000 ms unless given. */
  busyTimeoutMs?: number;
  /** The clock of the `at` fields; `new Date()` unless given. */
  now?: () => Date;
  /** Where an exception thrown by a `watch` listener, or by polling, goes. */
  onError?: (err: unknown) => void;
}

/**
 * Opens (creating and migrating when needed) the SQLite store at `path`.
 *
 * - WAL journal, so readers (the server) never wait for a writer (the CLI) and the other
 *   way round; `busy_timeout` for writer against writer.
 * - `synchronous = FULL`: every commit fsyncs the WAL before `applyChange` resolves, so a
 *   revision that was reported is on disk, even across a power cut or kernel panic
 *   (NORMAL would only survive a process crash; changes are rare admin actions, so one
 *   fsync each costs nothing that matters).
 * - `foreign_keys = ON`: a binding can't outlive its entry, whatever the code does.
 * - The master key is checked against the store's key check value at once:
 *   `MasterKeyWrong` rather than a failure on the first private key read.
 *
 * Errors: `StoreUnavailable` (can't open, not a certkeeper file, locked), `StoreTooNew`,
 * `MasterKeyWrong`, `MasterKeyInvalid`, `StoreCorrupt`, `StoreReadOnly`. Every entry read
 * back is checked (`checkStoredEntry`): a row damaged on disk is `StoreCorrupt` naming
 * its alias, even where SQLite's own integrity check passes.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const sealer = new Sealer(options.masterKey);
  const { path } = options;
  let db: Database.Database | undefined;
  try {
    db = openSqliteFile(path, options.busyTimeoutMs ?? 5000);
    checkMasterKey(db, sealer, path);
    return new SqliteStore(db, sealer, options);
  } catch (err) {
    db?.close();
    sealer.destroy();
    throw asStoreError(err, `Cannot open the SQLite store ${path}`);
  }
}

/**
 * Creates (or finishes creating) the store file at `path`, schema and all, without a
 * master key: `openDataDir` writes the schema before it makes `master.key`, so a key file
 * beside a file without a schema always means the store was lost, never a first start
 * that was interrupted.
 */
export function createSqliteStoreFile(path: string): void {
  let db: Database.Database | undefined;
  try {
    db = openSqliteFile(path, 5000);
  } catch (err) {
    throw asStoreError(err, `Cannot create the SQLite store ${path}`);
  } finally {
    db?.close();
  }
}

/** Opens the file (creating it, mode 0600, when missing), checks it and migrates it. */
function openSqliteFile(path: string, busyTimeoutMs: number): Database.Database {
  const isNewFile = !existsSync(path);
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    if (isNewFile && existsSync(path)) chmodSync(path, 0o600);
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = FULL');
    checkSqliteFile(db, path);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new StoreError('StoreUnavailable', `${path} can't use the WAL journal (got ${mode}).`);
    }
    migrateSqlite(db, path);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * What the file at `path` holds, read without writing to it:
 *
 * - `absent`: no file, an empty file (0 bytes, no WAL), or an SQLite file without a
 *   single table: no certkeeper data, whatever happened to it;
 * - `unkeyed`: a certkeeper schema that was never opened with a master key;
 * - `keyed`: a store with its master key check value, i.e. possibly encrypted data.
 */
export type SqliteStoreState = 'absent' | 'unkeyed' | 'keyed';

export async function sqliteStoreState(path: string): Promise<SqliteStoreState> {
  if (!existsSync(path)) return 'absent';
  const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
  if (size(path) === 0 && size(`${path}-wal`) === 0) return 'absent';
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    if (tables.length === 0) return 'absent';
    if (!tables.includes('meta')) return 'unkeyed';
    return db.prepare("SELECT 1 FROM meta WHERE key = 'key_check'").get() ? 'keyed' : 'unkeyed';
  } catch (err) {
    throw asStoreError(err, `Cannot read the SQLite store ${path}`);
  } finally {
    db?.close();
  }
}

/**
 * True when the file at `path` holds no certkeeper data yet (missing, empty, or never
 * opened with a master key): then `loadMasterKey({ create: true })` may make a new key.
 */
export async function sqliteStoreIsNew(path: string): Promise<boolean> {
  return (await sqliteStoreState(path)) !== 'keyed';
}

/** Verifies the key check value, or writes one into a store that has none yet. */
function checkMasterKey(db: Database.Database, sealer: Sealer, path: string): void {
  db.transaction(() => {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'key_check'").get() as
      | { value: Buffer }
      | undefined;
    if (row) {
      if (!sealer.matchesKeyCheck(row.value)) {
        throw new StoreError(
          'MasterKeyWrong',
          `The master key does not match this data directory (${path}). Use the master.key file or CERTKEEPER_MASTER_KEY that this store was created with.`,
        );
      }
      return;
    }
    const { sealed } = db
      .prepare(
        `SELECT (SELECT count(*) FROM entries WHERE private_key IS NOT NULL)
              + (SELECT count(*) FROM secrets) AS sealed`,
      )
      .get() as { sealed: number };
    if (sealed > 0) {
      throw new StoreError(
        'StoreCorrupt',
        `${path} holds encrypted data but its master key check value is missing; restore the file from a backup.`,
      );
    }
    db.prepare("INSERT INTO meta (key, value) VALUES ('key_check', ?)").run(sealer.keyCheck());
  }).immediate();
}

interface EntryRow {
  alias: string;
  kind: EntryKind;
  certificate_pem: string | null;
  chain_pem: string;
  csr_pem: string | null;
  has_private_key: number;
  fingerprint: string | null;
  created_revision: number;
  updated_revision: number;
  created_at: string;
  updated_at: string;
}

interface AuditRow {
  revision: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: string;
}

const ENTRY_COLUMNS = `alias, kind, certificate_pem, chain_pem, csr_pem,
  private_key IS NOT NULL AS has_private_key, fingerprint,
  created_revision, updated_revision, created_at, updated_at`;

class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #sealer: Sealer;
  readonly #path: string;
  readonly #now: () => Date;
  readonly #pollIntervalMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #listeners = new Set<{ listener: (revision: number) => void }>();
  readonly #sql;
  #timer: NodeJS.Timeout | undefined;
  #dataVersion: number;
  /** The highest revision the listeners have been told about (or that was current at open). */
  #notified: number;
  #closed = false;

  constructor(db: Database.Database, sealer: Sealer, options: SqliteStoreOptions) {
    this.#db = db;
    this.#sealer = sealer;
    this.#path = options.path;
    this.#now = options.now ?? (() => new Date());
    this.#pollIntervalMs = options.pollIntervalMs ?? 50;
    if (!(this.#pollIntervalMs > 0)) throw new RangeError('pollIntervalMs must be positive');
    this.#onError =
      options.onError ??
      ((err) => process.emitWarning(`certkeeper store watch: ${(err as Error)?.stack ?? err}`));
    this.#sql = {
      revision: db.prepare('SELECT value FROM revision WHERE id = 1').pluck(),
      setRevision: db.prepare('UPDATE revision SET value = ? WHERE id = 1'),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      getEntry: db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE alias = ?`),
      listEntries: db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY alias`),
      getPrivateKey: db.prepare('SELECT private_key FROM entries WHERE alias = ?').pluck(),
      entryKind: db.prepare('SELECT kind FROM entries WHERE alias = ?').pluck(),
      putEntry: db.prepare(`
        INSERT INTO entries (alias, kind, certificate_pem, chain_pem, csr_pem, private_key,
          fingerprint, created_revision, updated_revision, created_at, updated_at)
        VALUES (@alias, @kind, @certificatePem, @chainPem, @csrPem, @sealedPrivateKey,
          @fingerprint, @revision, @revision, @at, @at)
        ON CONFLICT (alias) DO UPDATE SET kind = excluded.kind,
          certificate_pem = excluded.certificate_pem, chain_pem = excluded.chain_pem,
          csr_pem = excluded.csr_pem, private_key = excluded.private_key,
          fingerprint = excluded.fingerprint, updated_revision = excluded.updated_revision,
          updated_at = excluded.updated_at`),
      deleteEntry: db.prepare('DELETE FROM entries WHERE alias = ?'),
      bindingsOf: db.prepare('SELECT name FROM bindings WHERE alias = ? ORDER BY name').pluck(),
      listBindings: db.prepare('SELECT name, alias, revision FROM bindings ORDER BY name'),
      listBoundEntries: db.prepare(`
        SELECT b.name, b.alias, b.revision, e.updated_revision AS entryRevision, e.fingerprint
        FROM bindings b JOIN entries e ON e.alias = b.alias ORDER BY b.name`),
      // CROSS JOIN keeps each side's revision index as the outer loop: a follower asks
      // for a few changed rows among 100,000, and must not scan them all.
      listBoundEntriesChanged: db.prepare(`
        SELECT b.name, b.alias, b.revision, e.updated_revision AS entryRevision, e.fingerprint
        FROM bindings b CROSS JOIN entries e ON e.alias = b.alias WHERE b.revision > @after
        UNION
        SELECT b.name, b.alias, b.revision, e.updated_revision AS entryRevision, e.fingerprint
        FROM entries e CROSS JOIN bindings b ON b.alias = e.alias
        WHERE e.updated_revision > @after`),
      countBindings: db.prepare('SELECT count(*) FROM bindings').pluck(),
      bind: db.prepare(`
        INSERT INTO bindings (name, alias, revision) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET alias = excluded.alias, revision = excluded.revision`),
      unbind: db.prepare('DELETE FROM bindings WHERE name = ?'),
      getSecret: db.prepare('SELECT value FROM secrets WHERE name = ?').pluck(),
      putSecret: db.prepare(`
        INSERT INTO secrets (name, value, revision) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET value = excluded.value, revision = excluded.revision`),
      audit: db.prepare(`
        INSERT INTO audit (revision, at, actor, action, target, details)
        VALUES (?, ?, ?, ?, ?, ?)`),
      listAudit: db.prepare(`
        SELECT revision, at, actor, action, target, details FROM audit
        WHERE revision > ? ORDER BY revision DESC LIMIT ?`),
    };
    this.#dataVersion = this.#sql.dataVersion.get() as number;
    this.#notified = this.#sql.revision.get() as number;
  }

  async revision(): Promise<number> {
    return this.#read(() => this.#sql.revision.get() as number);
  }

  async getEntry(alias: string): Promise<EntryRecord | undefined> {
    return this.#read(() => {
      const row = this.#sql.getEntry.get(alias) as EntryRow | undefined;
      return row && checkStoredEntry(toEntryRecord(row));
    });
  }

  async listEntries(): Promise<EntryRecord[]> {
    return this.#read(() =>
      (this.#sql.listEntries.all() as EntryRow[]).map((row) =>
        checkStoredEntry(toEntryRecord(row)),
      ),
    );
  }

  async getPrivateKey(alias: string): Promise<Buffer | undefined> {
    return this.#read(() => {
      const sealed = this.#sql.getPrivateKey.get(alias) as Buffer | null | undefined;
      if (sealed === undefined || sealed === null) return undefined;
      return this.#sealer.open(sealed, { kind: 'entry-key', alias });
    });
  }

  async listBindings(): Promise<Binding[]> {
    return this.#read(() => this.#sql.listBindings.all() as Binding[]);
  }

  async listBoundEntries(): Promise<BoundEntry[]> {
    return this.#read(() => this.#sql.listBoundEntries.all() as BoundEntry[]);
  }

  async listBindingChanges(afterRevision: number): Promise<BindingChanges> {
    // One read transaction: the three reads see the same snapshot.
    return this.#read(() =>
      this.#db.transaction(() => ({
        revision: this.#sql.revision.get() as number,
        total: this.#sql.countBindings.get() as number,
        changed: (
          this.#sql.listBoundEntriesChanged.all({ after: afterRevision }) as BoundEntry[]
        ).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      }))(),
    );
  }

  async getSecret(name: string): Promise<Buffer | undefined> {
    return this.#read(() => {
      const sealed = this.#sql.getSecret.get(name) as Buffer | undefined;
      return sealed && this.#sealer.open(sealed, { kind: 'secret', name });
    });
  }

  async listAudit(
    options: { afterRevision?: number; limit?: number } = {},
  ): Promise<AuditRecord[]> {
    const after = options.afterRevision ?? 0;
    const limit = options.limit ?? -1;
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new StoreError('InvalidMutation', 'afterRevision must be an integer, 0 or more.');
    }
    if (options.limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new StoreError('InvalidMutation', 'limit must be a positive integer.');
    }
    return this.#read(() =>
      (this.#sql.listAudit.all(after, limit) as AuditRow[]).map((row) => ({
        revision: row.revision,
        at: row.at,
        actor: row.actor,
        action: row.action,
        target: row.target,
        details: JSON.parse(row.details) as Record<string, unknown>,
      })),
    );
  }

  async applyChange(change: ChangeInput): Promise<number> {
    this.#assertOpen();
    const plan = prepareChange(change, this.#sealer);
    const at = this.#now().toISOString();
    let revision: number;
    try {
      revision = this.#db.transaction(() => this.#write(plan, at)).immediate();
    } catch (err) {
      throw asStoreError(err, `Cannot write to the SQLite store ${this.#path}`);
    }
    this.#publish(revision);
    return revision;
  }

  /** The body of the change's transaction; any throw rolls everything back. */
  #write(plan: ChangePlan, at: string): number {
    const sql = this.#sql;
    const current = sql.revision.get() as number;
    if (plan.expectedRevision !== undefined && plan.expectedRevision !== current) {
      throw revisionConflict(current, plan.expectedRevision);
    }
    const revision = current + 1;
    for (const m of plan.mutations) {
      switch (m.type) {
        case 'putEntry': {
          this.#checkStillBindable(m.entry);
          sql.putEntry.run({ ...m.entry, revision, at });
          break;
        }
        case 'deleteEntry': {
          if (sql.entryKind.get(m.alias) === undefined) throw aliasNotFound(m.alias);
          const bound = sql.bindingsOf.all(m.alias) as string[];
          if (bound.length > 0) throw entryBound(m.alias, bound);
          sql.deleteEntry.run(m.alias);
          break;
        }
        case 'bind': {
          const kind = sql.entryKind.get(m.alias) as EntryKind | undefined;
          if (kind === undefined) throw aliasNotFound(m.alias);
          if (kind !== 'key-pair') throw notBindable(m.alias, kind, m.name);
          sql.bind.run(m.name, m.alias, revision);
          break;
        }
        case 'unbind': {
          if (sql.unbind.run(m.name).changes === 0) throw bindingNotFound(m.name);
          break;
        }
        case 'putSecret': {
          sql.putSecret.run(m.name, m.sealedValue, revision);
          break;
        }
      }
    }
    sql.setRevision.run(revision);
    sql.audit.run(revision, at, plan.actor, plan.action, plan.target, plan.detailsJson);
    return revision;
  }

  /** A bound entry may be replaced only by another key-pair. */
  #checkStillBindable(entry: PlannedEntry): void {
    if (entry.kind === 'key-pair') return;
    const bound = this.#sql.bindingsOf.all(entry.alias) as string[];
    if (bound.length > 0) throw notBindable(entry.alias, entry.kind, bound.join(', '));
  }

  watch(listener: (revision: number) => void): () => void {
    this.#assertOpen();
    const subscription = { listener };
    this.#listeners.add(subscription);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#poll(), this.#pollIntervalMs);
      this.#timer.unref();
    }
    return () => {
      this.#listeners.delete(subscription);
      if (this.#listeners.size === 0) this.#stopPolling();
    };
  }

  /** Another connection's commit changes `data_version`; only then is the revision read. */
  #poll(): void {
    if (this.#closed) return;
    try {
      const dataVersion = this.#sql.dataVersion.get() as number;
      if (dataVersion === this.#dataVersion) return;
      this.#dataVersion = dataVersion;
      this.#publish(this.#sql.revision.get() as number);
    } catch (err) {
      this.#onError(err);
    }
  }

  /**
   * Tells every listener about `revision` once. Listeners see increasing revisions; commits
   * by other processes that land within one poll interval arrive as their latest revision.
   */
  #publish(revision: number): void {
    if (revision <= this.#notified) return;
    this.#notified = revision;
    for (const { listener } of [...this.#listeners]) {
      try {
        listener(revision);
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  #stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopPolling();
    this.#listeners.clear();
    this.#db.close();
    this.#sealer.destroy();
  }

  #read<T>(fn: () => T): T {
    this.#assertOpen();
    try {
      return fn();
    } catch (err) {
      throw asStoreError(err, `Cannot read the SQLite store ${this.#path}`);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('StoreUnavailable', 'The store is closed.');
  }
}

function toEntryRecord(row: EntryRow): EntryRecord {
  return {
    alias: row.alias,
    kind: row.kind,
    certificatePem: row.certificate_pem,
    chainPem: row.chain_pem,
    csrPem: row.csr_pem,
    hasPrivateKey: row.has_private_key === 1,
    fingerprint: row.fingerprint,
    createdRevision: row.created_revision,
    updatedRevision: row.updated_revision,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Store errors pass through; SQLite's become `StoreUnavailable` (or `EntryBound`, `StoreReadOnly`, `StoreCorrupt`). */
function asStoreError(err: unknown, context: string): StoreError {
  if (isStoreError(err)) return err;
  const code = (err as { code?: unknown })?.code;
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return new StoreError('EntryBound', 'The entry is still bound.', { cause: err });
  }
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new StoreError(
      'StoreUnavailable',
      `${context}: another process holds the write lock for too long; try again.`,
      { cause: err },
    );
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_READONLY')) {
    return new StoreError(
      'StoreReadOnly',
      `${context}: the file or its directory is read-only for this process (${code}); certkeeper must be able to write there.`,
      { cause: err },
    );
  }
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') {
    return new StoreError('StoreCorrupt', `${context}: the file is damaged or not a database.`, {
      cause: err,
    });
  }
  return new StoreError('StoreUnavailable', `${context}: ${(err as Error)?.message ?? err}`, {
    cause: err,
  });
}
