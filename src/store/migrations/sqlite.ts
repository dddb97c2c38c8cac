import type Database from 'better-sqlite3';
import { AUDIT_GENESIS_HASH, auditHash } from '../audit-chain.js';
import { StoreError } from '../store.js';

/**
 * The SQLite schema, as an ordered list of migrations. The schema version is SQLite's
 * `PRAGMA user_version`; each migration runs in its own `IMMEDIATE` transaction together
 * with the version bump, so a crash leaves the file at the old or the new version, and two
 * processes opening a new file at once apply each step once. Append only: a released
 * migration is never edited, and a file whose version is above the last one here was
 * written by a newer certkeeper and is refused (`StoreTooNew`).
 */
export interface SqliteMigration {
  version: number;
  description: string;
  sql: string;
  /** Data moved by code after `sql`, in the same transaction. */
  run?: (db: Database.Database) => void;
}

/** `PRAGMA application_id` of a certkeeper store: "ckpr". */
export const SQLITE_APPLICATION_ID = 0x636b7072;

export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    description: 'entries, bindings, revision counter, audit, secrets, meta',
    sql: `
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
      ) STRICT;

      -- The revision of the last committed change: one row, bumped by every change.
      CREATE TABLE revision (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL CHECK (value >= 0)
      ) STRICT;
      INSERT INTO revision (id, value) VALUES (1, 0);

      CREATE TABLE entries (
        alias            TEXT PRIMARY KEY,
        kind             TEXT NOT NULL CHECK (kind IN ('key-pair', 'trusted', 'pending')),
        certificate_pem  TEXT,
        chain_pem        TEXT NOT NULL DEFAULT '',
        csr_pem          TEXT,
        -- AES-256-GCM, see encryption.ts; the associated data is the alias.
        private_key      BLOB,
        fingerprint      TEXT,
        created_revision INTEGER NOT NULL,
        updated_revision INTEGER NOT NULL,
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL,
        CHECK (kind <> 'pending' OR (certificate_pem IS NULL AND csr_pem IS NOT NULL
                                     AND private_key IS NOT NULL)),
        CHECK (kind <> 'key-pair' OR (certificate_pem IS NOT NULL AND private_key IS NOT NULL)),
        CHECK (kind <> 'trusted' OR (certificate_pem IS NOT NULL AND private_key IS NULL))
      ) STRICT;

      CREATE TABLE bindings (
        name     TEXT PRIMARY KEY,
        alias    TEXT NOT NULL REFERENCES entries (alias) ON DELETE RESTRICT ON UPDATE RESTRICT,
        revision INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX bindings_alias ON bindings (alias);

      CREATE TABLE audit (
        revision INTEGER PRIMARY KEY,
        at       TEXT NOT NULL,
        actor    TEXT NOT NULL,
        action   TEXT NOT NULL,
        target   TEXT,
        details  TEXT NOT NULL CHECK (json_valid(details))
      ) STRICT;

      CREATE TABLE secrets (
        name     TEXT PRIMARY KEY,
        -- AES-256-GCM, see encryption.ts; the associated data is the name.
        value    BLOB NOT NULL,
        revision INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'indexes to find the bindings a change touched',
    sql: `
      CREATE INDEX bindings_revision ON bindings (revision);
      CREATE INDEX entries_updated_revision ON entries (updated_revision);
    `,
  },
  {
    version: 3,
    description:
      'hash-chained audit log; users, tokens and settings under the revision; sessions, login failures, node status and runtime secrets outside it',
    sql: `
      -- Every change (with its revision) and every audited event that changes nothing
      -- (revision NULL), chained by hash: see audit-chain.ts.
      CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY,
        revision  INTEGER UNIQUE,
        at        TEXT NOT NULL,
        actor     TEXT NOT NULL,
        source    TEXT,
        action    TEXT NOT NULL,
        target    TEXT,
        outcome   TEXT NOT NULL,
        before    TEXT NOT NULL CHECK (json_valid(before)),
        after     TEXT NOT NULL CHECK (json_valid(after)),
        details   TEXT NOT NULL CHECK (json_valid(details)),
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL UNIQUE
      ) STRICT;

      CREATE TABLE users (
        username             TEXT PRIMARY KEY,
        role                 TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
        password_hash        TEXT NOT NULL,
        must_change_password INTEGER NOT NULL CHECK (must_change_password IN (0, 1)),
        created_revision     INTEGER NOT NULL,
        updated_revision     INTEGER NOT NULL,
        created_at           TEXT NOT NULL,
        updated_at           TEXT NOT NULL
      ) STRICT;

      CREATE TABLE tokens (
        id               TEXT PRIMARY KEY,
        name             TEXT NOT NULL,
        role             TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
        username         TEXT NOT NULL,
        secret_hash      TEXT NOT NULL UNIQUE,
        expires_at       TEXT,
        created_revision INTEGER NOT NULL,
        created_at       TEXT NOT NULL
      ) STRICT;

      CREATE TABLE settings (
        name     TEXT PRIMARY KEY,
        value    TEXT NOT NULL CHECK (json_valid(value)),
        revision INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE sessions (
        id_hash         TEXT PRIMARY KEY,
        username        TEXT NOT NULL,
        role            TEXT NOT NULL,
        source          TEXT,
        created_at      TEXT NOT NULL,
        last_used_at    TEXT NOT NULL,
        idle_expires_at TEXT NOT NULL,
        expires_at      TEXT NOT NULL
      ) STRICT;
      CREATE INDEX sessions_username ON sessions (username);

      CREATE TABLE login_failures (
        key TEXT NOT NULL,
        at  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX login_failures_key_at ON login_failures (key, at);

      CREATE TABLE node_status (
        node       TEXT PRIMARY KEY,
        status     TEXT NOT NULL CHECK (json_valid(status)),
        updated_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE runtime_secrets (
        name       TEXT PRIMARY KEY,
        -- AES-256-GCM, see encryption.ts; the associated data is the name.
        value      BLOB NOT NULL,
        updated_at TEXT NOT NULL
      ) STRICT;
    `,
    // The old audit rows become the first records of the chain, in revision order.
    run(db) {
      const rows = db
        .prepare('SELECT revision, at, actor, action, target, details FROM audit ORDER BY revision')
        .all() as {
        revision: number;
        at: string;
        actor: string;
        action: string;
        target: string | null;
        details: string;
      }[];
      const insert = db.prepare(`
        INSERT INTO audit_log (seq, revision, at, actor, source, action, target, outcome,
          before, after, details, prev_hash, hash)
        VALUES (@seq, @revision, @at, @actor, NULL, @action, @target, 'applied', '{}', '{}',
          @details, @prevHash, @hash)`);
      let prevHash = AUDIT_GENESIS_HASH;
      rows.forEach((row, i) => {
        const record = {
          seq: i + 1,
          revision: row.revision,
          at: row.at,
          actor: row.actor,
          source: null,
          action: row.action,
          target: row.target,
          outcome: 'applied',
          before: {},
          after: {},
          details: JSON.parse(row.details) as Record<string, unknown>,
          prevHash,
        };
        const hash = auditHash(record);
        insert.run({ ...record, details: row.details, hash });
        prevHash = hash;
      });
      db.exec('DROP TABLE audit');
    },
  },
];

/** The schema version this code writes. */
export const SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS.at(-1)?.version ?? 0;

/**
 * Brings the file at `db` to `SQLITE_SCHEMA_VERSION`. Refuses a file of another
 * application or of a newer schema, writing nothing to it. Returns the versions applied.
 */
export function migrateSqlite(
  db: Database.Database,
  path: string,
  migrations: readonly SqliteMigration[] = SQLITE_MIGRATIONS,
): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`SQLite migration ${i} has version ${m.version}`);
  });
  const latest = migrations.at(-1)?.version ?? 0;
  const applied: number[] = [];

  const step = db.transaction((m: SqliteMigration) => {
    // Read again inside the write lock: another process may have migrated meanwhile.
    if (userVersion(db) >= m.version) return;
    if (m.version === 1) db.pragma(`application_id = ${SQLITE_APPLICATION_ID}`);
    db.exec(m.sql);
    m.run?.(db);
    db.pragma(`user_version = ${m.version}`);
    applied.push(m.version);
  });

  checkSqliteFile(db, path, latest);
  for (const m of migrations) {
    if (userVersion(db) < m.version) step.immediate(m);
  }
  return applied;
}

/**
 * Refuses, without writing to it, a file that is neither new nor a certkeeper store
 * (`StoreUnavailable`), or that has a schema newer than `latest` (`StoreTooNew`).
 */
export function checkSqliteFile(
  db: Database.Database,
  path: string,
  latest: number = SQLITE_SCHEMA_VERSION,
): void {
  const version = userVersion(db);
  const applicationId = db.pragma('application_id', { simple: true }) as number;
  const { tables } = db
    .prepare("SELECT count(*) AS tables FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")
    .get() as { tables: number };
  const isNew = applicationId === 0 && version === 0 && tables === 0;
  if (applicationId !== SQLITE_APPLICATION_ID && !isNew) {
    throw new StoreError(
      'StoreUnavailable',
      `${path} is an SQLite file but not a certkeeper store; point certkeeper at its own data directory.`,
    );
  }
  if (version > latest) {
    throw new StoreError(
      'StoreTooNew',
      `${path} has schema version ${version}, but this certkeeper knows versions up to ${latest}: it was written by a newer certkeeper. Upgrade certkeeper, or restore a backup made by this version.`,
    );
  }
}

function userVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}
