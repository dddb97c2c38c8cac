import { chmodSync, existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { appendAuditEvent, applyPlan, type ChangeTransaction, runSync } from './apply-change.js';
import { verifyAuditChain } from './audit-chain.js';
import { checkStoredEntry, prepareAuditEvent, prepareChange } from './change.js';
import { Sealer } from './encryption.js';
import { checkSqliteFile, migrateSqlite } from './migrations/sqlite.js';
import {
  type AuditEventInput,
  type AuditRecord,
  type AuditVerification,
  type Binding,
  type BindingChanges,
  type BoundEntry,
  type ChangeInput,
  checkListEntriesOptions,
  type EntryKind,
  type EntryRecord,
  isStoreError,
  type ListEntriesOptions,
  type NodeStatusRecord,
  type Role,
  type SessionRecord,
  type Store,
  StoreError,
  type TokenRecord,
  type UserRecord,
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
              + (SELECT count(*) FROM secrets)
              + (SELECT count(*) FROM runtime_secrets) AS sealed`,
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
  seq: number;
  revision: number | null;
  at: string;
  actor: string;
  source: string | null;
  action: string;
  target: string | null;
  outcome: string;
  before: string;
  after: string;
  details: string;
  prev_hash: string;
  hash: string;
}

interface UserRow {
  username: string;
  role: Role;
  password_hash: string;
  must_change_password: number;
  created_revision: number;
  updated_revision: number;
  created_at: string;
  updated_at: string;
}

interface TokenRow {
  id: string;
  name: string;
  role: Role;
  username: string;
  secret_hash: string;
  expires_at: string | null;
  created_revision: number;
  created_at: string;
}

interface SessionRow {
  id_hash: string;
  username: string;
  role: Role;
  source: string | null;
  created_at: string;
  last_used_at: string;
  idle_expires_at: string;
  expires_at: string;
}

const AUDIT_COLUMNS = `seq, revision, at, actor, source, action, target, outcome, before, after,
  details, prev_hash, hash`;
const USER_COLUMNS = `username, role, password_hash, must_change_password, created_revision,
  updated_revision, created_at, updated_at`;
const TOKEN_COLUMNS =
  'id, name, role, username, secret_hash, expires_at, created_revision, created_at';

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
  readonly #listeners = new Set<{
    listener: (revision: number) => void;
    onError: ((err: unknown) => void) | undefined;
  }>();
  readonly #sql;
  #timer: NodeJS.Timeout | undefined;
  #dataVersion: number;
  /** The highest revision the listeners have been told about (or that was current at open). */
  #notified: number;
  #closed = false;
  readonly #tx: ChangeTransaction;

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
      // A page starts past an alias (`''`: the first) and holds at most LIMIT rows (-1: all),
      // read along the primary key's index in its BINARY order.
      listEntries: db.prepare(
        `SELECT ${ENTRY_COLUMNS} FROM entries WHERE alias > ? ORDER BY alias LIMIT ?`,
      ),
      listEntriesOfKind: db.prepare(
        `SELECT ${ENTRY_COLUMNS} FROM entries WHERE kind = ? AND alias > ? ORDER BY alias LIMIT ?`,
      ),
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
      fingerprintOf: db.prepare('SELECT fingerprint FROM entries WHERE alias = ?').pluck(),
      entryRevision: db.prepare('SELECT updated_revision FROM entries WHERE alias = ?').pluck(),
      boundAlias: db.prepare('SELECT alias FROM bindings WHERE name = ?').pluck(),
      boundFingerprint: db
        .prepare(
          'SELECT e.fingerprint FROM bindings b JOIN entries e ON e.alias = b.alias WHERE b.name = ?',
        )
        .pluck(),
      lastAudit: db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
      appendAudit: db.prepare(`
        INSERT INTO audit_log (${AUDIT_COLUMNS})
        VALUES (@seq, @revision, @at, @actor, @source, @action, @target, @outcome, @before,
          @after, @details, @prevHash, @hash)`),
      listAudit: db.prepare(`
        SELECT ${AUDIT_COLUMNS} FROM audit_log
        WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_log WHERE revision <= @afterRevision)
          AND seq > @afterSeq AND seq < @beforeSeq
        ORDER BY seq DESC LIMIT @limit`),
      allAudit: db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log ORDER BY seq`),
      getUser: db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE username = ?`),
      userExists: db.prepare('SELECT 1 FROM users WHERE username = ?').pluck(),
      userRole: db.prepare('SELECT role FROM users WHERE username = ?').pluck(),
      setUserRole: db.prepare(
        'UPDATE users SET role = ?, updated_revision = ?, updated_at = ? WHERE username = ?',
      ),
      listUsers: db.prepare(`SELECT ${USER_COLUMNS} FROM users ORDER BY username`),
      putUser: db.prepare(`
        INSERT INTO users (${USER_COLUMNS})
        VALUES (@username, @role, @passwordHash, @mustChangePassword, @revision, @revision,
          @at, @at)
        ON CONFLICT (username) DO UPDATE SET role = excluded.role,
          password_hash = excluded.password_hash,
          must_change_password = excluded.must_change_password,
          updated_revision = excluded.updated_revision, updated_at = excluded.updated_at`),
      deleteUser: db.prepare('DELETE FROM users WHERE username = ?'),
      deleteUserSessions: db.prepare('DELETE FROM sessions WHERE username = ?'),
      deleteUserTokens: db.prepare('DELETE FROM tokens WHERE username = ?'),
      getToken: db.prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = ?`),
      listTokens: db.prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id`),
      putToken: db.prepare(`
        INSERT INTO tokens (${TOKEN_COLUMNS})
        VALUES (@id, @name, @role, @username, @secretHash, @expiresAt, @revision, @at)`),
      deleteToken: db.prepare('DELETE FROM tokens WHERE id = ?'),
      getSetting: db.prepare('SELECT value FROM settings WHERE name = ?').pluck(),
      putSetting: db.prepare(`
        INSERT INTO settings (name, value, revision) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET value = excluded.value, revision = excluded.revision`),
      deleteSetting: db.prepare('DELETE FROM settings WHERE name = ?'),
      putSession: db.prepare(`
        INSERT OR REPLACE INTO sessions (id_hash, username, role, source, created_at,
          last_used_at, idle_expires_at, expires_at)
        VALUES (@idHash, @username, @role, @source, @createdAt, @lastUsedAt, @idleExpiresAt,
          @expiresAt)`),
      getSession: db.prepare('SELECT * FROM sessions WHERE id_hash = ?'),
      touchSession: db.prepare(
        'UPDATE sessions SET last_used_at = ?, idle_expires_at = ? WHERE id_hash = ?',
      ),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      deleteUserSessionsExcept: db.prepare(
        'DELETE FROM sessions WHERE username = ? AND id_hash IS NOT ?',
      ),
      deleteExpiredSessions: db.prepare(
        'DELETE FROM sessions WHERE idle_expires_at <= @at OR expires_at <= @at',
      ),
      recordLoginFailure: db.prepare('INSERT INTO login_failures (key, at) VALUES (?, ?)'),
      countLoginFailures: db
        .prepare('SELECT count(*) FROM login_failures WHERE key = ? AND at >= ?')
        .pluck(),
      clearLoginFailures: db.prepare('DELETE FROM login_failures WHERE key = ?'),
      deleteLoginFailuresBefore: db.prepare('DELETE FROM login_failures WHERE at < ?'),
      putNodeStatus: db.prepare(`
        INSERT INTO node_status (node, status, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (node) DO UPDATE SET status = excluded.status,
          updated_at = excluded.updated_at`),
      listNodeStatus: db.prepare('SELECT node, status, updated_at FROM node_status ORDER BY node'),
      deleteNodeStatus: db.prepare('DELETE FROM node_status WHERE node = ?'),
      putRuntimeSecret: db.prepare(`
        INSERT INTO runtime_secrets (name, value, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
      getRuntimeSecret: db.prepare('SELECT value FROM runtime_secrets WHERE name = ?').pluck(),
    };
    this.#dataVersion = this.#sql.dataVersion.get() as number;
    this.#notified = this.#sql.revision.get() as number;
    this.#tx = this.#changeTransaction();
  }

  /**
   * The storage primitives the rules of `apply-change.ts` run on inside `#transaction`:
   * one prepared statement each, answering at once (`runSync`).
   */
  #changeTransaction(): ChangeTransaction {
    const sql = this.#sql;
    return {
      readRevision: () => sql.revision.get() as number,
      writeRevision: (revision) => {
        sql.setRevision.run(revision);
      },
      entryKind: (alias) => sql.entryKind.get(alias) as EntryKind | undefined,
      entryRevision: (alias) => sql.entryRevision.get(alias) as number | undefined,
      fingerprintOf: (alias) => (sql.fingerprintOf.get(alias) as string | null | undefined) ?? null,
      bindingsOf: (alias) => sql.bindingsOf.all(alias) as string[],
      boundAlias: (name) => (sql.boundAlias.get(name) as string | undefined) ?? null,
      boundFingerprint: (name) =>
        (sql.boundFingerprint.get(name) as string | null | undefined) ?? null,
      putEntry: (entry, revision, at) => {
        sql.putEntry.run({ ...entry, revision, at });
      },
      deleteEntry: (alias) => {
        sql.deleteEntry.run(alias);
      },
      bind: (name, alias, revision) => {
        sql.bind.run(name, alias, revision);
      },
      unbind: (name) => sql.unbind.run(name).changes > 0,
      putSecret: (name, sealedValue, revision) => {
        sql.putSecret.run(name, sealedValue, revision);
      },
      userExists: (username) => sql.userExists.get(username) !== undefined,
      putUser: (user, revision, at) => {
        sql.putUser.run({
          ...user,
          mustChangePassword: user.mustChangePassword ? 1 : 0,
          revision,
          at,
        });
      },
      userRole: (username) => sql.userRole.get(username) as Role | undefined,
      setUserRole: (username, role, revision, at) =>
        sql.setUserRole.run(role, revision, at, username).changes > 0,
      deleteUser: (username) => sql.deleteUser.run(username).changes > 0,
      deleteSessionsOf: (username) => {
        sql.deleteUserSessions.run(username);
      },
      deleteTokensOf: (username) => {
        sql.deleteUserTokens.run(username);
      },
      putToken: (token, revision, at) => {
        sql.putToken.run({ ...token, revision, at });
      },
      deleteToken: (id) => sql.deleteToken.run(id).changes > 0,
      putSetting: (name, valueJson, revision) => {
        sql.putSetting.run(name, valueJson, revision);
      },
      deleteSetting: (name) => {
        sql.deleteSetting.run(name);
      },
      lastAudit: () => sql.lastAudit.get() as { seq: number; hash: string } | undefined,
      insertAudit: (record) => {
        sql.appendAudit.run({
          ...record,
          before: JSON.stringify(record.before),
          after: JSON.stringify(record.after),
          details: JSON.stringify(record.details),
        });
      },
    };
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

  async listEntries(options: ListEntriesOptions = {}): Promise<EntryRecord[]> {
    const { after, limit } = checkListEntriesOptions(options);
    return this.#read(() =>
      (
        (options.kind === undefined
          ? this.#sql.listEntries.all(after ?? '', limit ?? -1)
          : this.#sql.listEntriesOfKind.all(options.kind, after ?? '', limit ?? -1)) as EntryRow[]
      ).map((row) => checkStoredEntry(toEntryRecord(row))),
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
    options: { afterRevision?: number; afterSeq?: number; beforeSeq?: number; limit?: number } = {},
  ): Promise<AuditRecord[]> {
    const position = (value: number | undefined, name: string, fallback: number): number => {
      if (value === undefined) return fallback;
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new StoreError('InvalidMutation', `${name} must be an integer, 0 or more.`);
      }
      return value;
    };
    const limit = options.limit ?? -1;
    if (options.limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new StoreError('InvalidMutation', 'limit must be a positive integer.');
    }
    const query = {
      afterRevision: position(options.afterRevision, 'afterRevision', 0),
      afterSeq: position(options.afterSeq, 'afterSeq', 0),
      beforeSeq: position(options.beforeSeq, 'beforeSeq', Number.MAX_SAFE_INTEGER),
      limit,
    };
    return this.#read(() => (this.#sql.listAudit.all(query) as AuditRow[]).map(toAuditRecord));
  }

  async appendAudit(event: AuditEventInput): Promise<number> {
    this.#assertOpen();
    const planned = prepareAuditEvent(event);
    const at = this.#now().toISOString();
    return this.#transaction(() => runSync(appendAuditEvent(this.#tx, planned, at)));
  }

  async verifyAudit(): Promise<AuditVerification> {
    return this.#read(() =>
      verifyAuditChain(auditRecords(this.#sql.allAudit.iterate() as IterableIterator<AuditRow>)),
    );
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    return this.#read(() => {
      const row = this.#sql.getUser.get(username) as UserRow | undefined;
      return row && toUserRecord(row);
    });
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.#read(() => (this.#sql.listUsers.all() as UserRow[]).map(toUserRecord));
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    return this.#read(() => {
      const row = this.#sql.getToken.get(id) as TokenRow | undefined;
      return row && toTokenRecord(row);
    });
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.#read(() => (this.#sql.listTokens.all() as TokenRow[]).map(toTokenRecord));
  }

  async getSetting(name: string): Promise<unknown> {
    return this.#read(() => {
      const json = this.#sql.getSetting.get(name) as string | undefined;
      return json === undefined ? undefined : (JSON.parse(json) as unknown);
    });
  }

  async putSession(session: SessionRecord): Promise<void> {
    this.#write1(() => this.#sql.putSession.run(session));
  }

  async getSession(idHash: string): Promise<SessionRecord | undefined> {
    return this.#read(() => {
      const row = this.#sql.getSession.get(idHash) as SessionRow | undefined;
      return row && toSessionRecord(row);
    });
  }

  async touchSession(idHash: string, at: string, idleExpiresAt: string): Promise<boolean> {
    return this.#write1(() => this.#sql.touchSession.run(at, idleExpiresAt, idHash).changes > 0);
  }

  async deleteSession(idHash: string): Promise<boolean> {
    return this.#write1(() => this.#sql.deleteSession.run(idHash).changes > 0);
  }

  async deleteUserSessions(username: string, exceptIdHash?: string): Promise<number> {
    return this.#write1(
      () => this.#sql.deleteUserSessionsExcept.run(username, exceptIdHash ?? null).changes,
    );
  }

  async deleteExpiredSessions(at: string): Promise<number> {
    return this.#write1(() => this.#sql.deleteExpiredSessions.run({ at }).changes);
  }

  async recordLoginFailure(key: string, at: string): Promise<void> {
    this.#write1(() => this.#sql.recordLoginFailure.run(key, at));
  }

  async countLoginFailures(key: string, since: string): Promise<number> {
    return this.#read(() => this.#sql.countLoginFailures.get(key, since) as number);
  }

  async clearLoginFailures(key: string): Promise<void> {
    this.#write1(() => this.#sql.clearLoginFailures.run(key));
  }

  async deleteLoginFailuresBefore(before: string): Promise<number> {
    return this.#write1(() => this.#sql.deleteLoginFailuresBefore.run(before).changes);
  }

  async putNodeStatus(node: string, status: Record<string, unknown>): Promise<void> {
    const json = JSON.stringify(status);
    const at = this.#now().toISOString();
    this.#write1(() => this.#sql.putNodeStatus.run(node, json, at));
  }

  async listNodeStatus(): Promise<NodeStatusRecord[]> {
    return this.#read(() =>
      (
        this.#sql.listNodeStatus.all() as { node: string; status: string; updated_at: string }[]
      ).map((row) => ({
        node: row.node,
        status: JSON.parse(row.status) as Record<string, unknown>,
        updatedAt: row.updated_at,
      })),
    );
  }

  async deleteNodeStatus(node: string): Promise<void> {
    this.#write1(() => this.#sql.deleteNodeStatus.run(node));
  }

  async putRuntimeSecret(name: string, value: Uint8Array): Promise<void> {
    const sealed = this.#sealer.seal(value, { kind: 'runtime-secret', name });
    const at = this.#now().toISOString();
    this.#write1(() => this.#sql.putRuntimeSecret.run(name, sealed, at));
  }

  async getRuntimeSecret(name: string): Promise<Buffer | undefined> {
    return this.#read(() => {
      const sealed = this.#sql.getRuntimeSecret.get(name) as Buffer | undefined;
      return sealed && this.#sealer.open(sealed, { kind: 'runtime-secret', name });
    });
  }

  /**
   * Runs `body` in one `BEGIN IMMEDIATE` transaction: better-sqlite3 commits when it
   * returns and rolls back when it throws. Synchronous from begin to commit, so no other
   * statement of this process runs in the middle (see `apply-change.ts`).
   */
  #transaction<T>(body: () => T): T {
    try {
      return this.#db.transaction(body).immediate();
    } catch (err) {
      throw asStoreError(err, `Cannot write to the SQLite store ${this.#path}`);
    }
  }

  /** One write outside the revision counter: no revision, no audit record, no watchers. */
  #write1<T>(fn: () => T): T {
    this.#assertOpen();
    try {
      return fn();
    } catch (err) {
      throw asStoreError(err, `Cannot write to the SQLite store ${this.#path}`);
    }
  }

  async applyChange(change: ChangeInput): Promise<number> {
    this.#assertOpen();
    const plan = prepareChange(change, this.#sealer);
    const at = this.#now().toISOString();
    const revision = this.#transaction(() => runSync(applyPlan(this.#tx, plan, at)));
    this.#publish(revision);
    return revision;
  }

  watch(listener: (revision: number) => void, onError?: (err: unknown) => void): () => void {
    this.#assertOpen();
    const subscription = { listener, onError };
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
      this.#reportError(err);
    }
  }

  /** A failure to follow goes to each listener's `onError`, else to the store's. */
  #reportError(err: unknown): void {
    const handlers = [...this.#listeners].map((l) => l.onError).filter((h) => h !== undefined);
    for (const handler of handlers.length > 0 ? handlers : [this.#onError]) {
      try {
        handler(err);
      } catch {
        // A broken error handler must not stop the others.
      }
    }
  }

  /**
   * Tells every listener about `revision` once. Listeners see increasing revisions; commits
   * by other processes that land within one poll interval arrive as their latest revision.
   */
  #publish(revision: number): void {
    if (revision <= this.#notified) return;
    this.#notified = revision;
    for (const { listener, onError } of [...this.#listeners]) {
      try {
        listener(revision);
      } catch (err) {
        (onError ?? this.#onError)(err);
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

function* auditRecords(rows: Iterable<AuditRow>): Generator<AuditRecord> {
  for (const row of rows) yield toAuditRecord(row);
}

function toAuditRecord(row: AuditRow): AuditRecord {
  return {
    seq: row.seq,
    revision: row.revision,
    at: row.at,
    actor: row.actor,
    source: row.source,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    before: JSON.parse(row.before) as Record<string, string | null>,
    after: JSON.parse(row.after) as Record<string, string | null>,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function toUserRecord(row: UserRow): UserRecord {
  return {
    username: row.username,
    role: row.role,
    passwordHash: row.password_hash,
    mustChangePassword: row.must_change_password === 1,
    createdRevision: row.created_revision,
    updatedRevision: row.updated_revision,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toTokenRecord(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    username: row.username,
    secretHash: row.secret_hash,
    expiresAt: row.expires_at,
    createdRevision: row.created_revision,
    createdAt: row.created_at,
  };
}

function toSessionRecord(row: SessionRow): SessionRecord {
  return {
    idHash: row.id_hash,
    username: row.username,
    role: row.role,
    source: row.source,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    idleExpiresAt: row.idle_expires_at,
    expiresAt: row.expires_at,
  };
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

/** Store errors pass through; SQLite's become `StoreUnavailable` (or `AliasInUse`, `StoreReadOnly`, `StoreCorrupt`). */
function asStoreError(err: unknown, context: string): StoreError {
  if (isStoreError(err)) return err;
  const code = (err as { code?: unknown })?.code;
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return new StoreError('AliasInUse', 'The entry is still bound.', { cause: err });
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
