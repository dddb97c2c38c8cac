/**
 * The one asynchronous `Store` interface of certkeeper (DESIGN.md, layer 2). Adapters:
 * SQLite (embedded default) and, later, PostgreSQL; both are proven by one shared suite
 * in `test/store/store-suite.ts`. Private keys are encrypted at rest inside the adapter:
 * callers hand in and get back plain PKCS#8 DER, and nothing outside `store/` ever sees
 * ciphertext.
 */

import { CodedError } from '../core/errors.js';

/** What an entry of the keystore holds (DESIGN.md "entry"). */
export type EntryKind = 'key-pair' | 'trusted' | 'pending';

/** An entry as stored, without its private key. */
export interface EntryRecord {
  alias: string;
  kind: EntryKind;
  /** The leaf (key-pair) or CA (trusted) certificate, PEM; null for a pending entry. */
  certificatePem: string | null;
  /** The issuers of the leaf, leaf excluded, PEM blocks in order; empty string when none. */
  chainPem: string;
  /** The CSR of a pending entry, PEM; null otherwise. */
  csrPem: string | null;
  hasPrivateKey: boolean;
  /** SHA-256 fingerprint of the leaf or CA certificate, colon hex; null when pending. */
  fingerprint: string | null;
  /** Revision of the change that created the entry, and of the last one that changed it. */
  createdRevision: number;
  updatedRevision: number;
  createdAt: string;
  updatedAt: string;
}

/** An entry to write. `privateKeyDer` is PKCS#8 DER; the store encrypts it. */
export interface EntryInput {
  alias: string;
  kind: EntryKind;
  certificatePem?: string | null;
  chainPem?: string;
  csrPem?: string | null;
  privateKeyDer?: Buffer | null;
  fingerprint?: string | null;
}

/**
 * A binding: what an entry is used for. Names: `server` (the default HTTPS identity),
 * `sni:<host>` (exact or `*.` wildcard host), `ca` (the local CA).
 */
export interface Binding {
  name: string;
  alias: string;
  revision: number;
}

/**
 * A binding with the facts of its entry that say whether it changed: what a follower
 * reads each revision instead of every entry (100,000 SNI bindings stay cheap).
 */
export interface BoundEntry extends Binding {
  /** The entry's `updatedRevision`. */
  entryRevision: number;
  /** The entry's leaf fingerprint; null for a pending entry. */
  fingerprint: string | null;
}

/** See `Store.listBindingChanges`. */
export interface BindingChanges {
  revision: number;
  total: number;
  changed: BoundEntry[];
}

/**
 * Which entries `Store.listEntries` reads. Aliases are ordered by their bytes (SQLite's
 * `BINARY` collation; PostgreSQL needs `COLLATE "C"`), the same order on every adapter and
 * JavaScript's `<` for the ASCII an alias is made of, so a caller can page with `after`.
 */
export interface ListEntriesOptions {
  kind?: EntryKind;
  /** Only the entries whose alias sorts after this one; it need not be an entry's. */
  after?: string;
  /** At most this many: a positive integer. */
  limit?: number;
}

/** `options`, checked: a bad `after` or `limit` is the caller's bug, never a silent "all". */
export function checkListEntriesOptions(options: ListEntriesOptions): ListEntriesOptions {
  const { after, limit } = options;
  if (after !== undefined && typeof after !== 'string') {
    throw new TypeError(`listEntries: after must be a string, not ${typeof after}`);
  }
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new RangeError(`listEntries: limit must be a positive integer, not ${limit}`);
  }
  return options;
}

/** The roles of users and tokens (what each may do is decided in `service/`). */
export type Role = 'admin' | 'operator' | 'auditor';

/** A user as stored. `passwordHash` is an scrypt hash made by `service/`, never a password. */
export interface UserRecord {
  username: string;
  role: Role;
  passwordHash: string;
  /** The password was generated or reset: the user must change it at the next login. */
  mustChangePassword: boolean;
  createdRevision: number;
  updatedRevision: number;
  createdAt: string;
  updatedAt: string;
}

/** A long-lived API token as stored: only the hash of its secret. */
export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  /** The user who created it. */
  username: string;
  secretHash: string;
  /** ISO 8601, or null for a token that does not expire. */
  expiresAt: string | null;
  createdRevision: number;
  createdAt: string;
}

/** One mutation inside a change. */
export type Mutation =
  | { type: 'putEntry'; entry: EntryInput }
  | { type: 'deleteEntry'; alias: string }
  | { type: 'bind'; name: string; alias: string }
  | { type: 'unbind'; name: string }
  /** A small secret (local CA state…), encrypted like private keys. */
  | { type: 'putSecret'; name: string; value: Buffer }
  | {
      type: 'putUser';
      user: Pick<UserRecord, 'username' | 'role' | 'passwordHash' | 'mustChangePassword'>;
    }
  /** Removes the user and ends their sessions. */
  | { type: 'deleteUser'; username: string }
  /**
   * Changes only the user's role (never the password hash, nor `mustChangePassword`, so a
   * password set meanwhile is kept); `UserNotFound` when there is no such user.
   */
  | { type: 'setUserRole'; username: string; role: Role }
  | {
      type: 'putToken';
      token: Pick<TokenRecord, 'id' | 'name' | 'role' | 'username' | 'secretHash' | 'expiresAt'>;
    }
  | { type: 'deleteToken'; id: string }
  /** Small revisioned JSON state (the pending confirmation of an activation…). */
  | { type: 'putSetting'; name: string; value: unknown }
  | { type: 'deleteSetting'; name: string };

/**
 * A condition on the stored state, checked inside the change's transaction, so that two
 * writers racing on the same thing end in a clear error, never a silent overwrite.
 */
export type Precondition =
  /** Else `AliasNotFound`. */
  | { type: 'entryExists'; alias: string }
  /** Else `AliasInUse`. */
  | { type: 'entryAbsent'; alias: string }
  /** The entry was last changed at this revision (its ETag); else `RevisionConflict`. */
  | { type: 'entryRevision'; alias: string; revision: number }
  /** The binding points at this alias (null: unbound); else `RevisionConflict`. */
  | { type: 'bindingIs'; name: string; alias: string | null }
  /** Else `UserNotFound`. */
  | { type: 'userExists'; username: string }
  /** Else `UserExists`. */
  | { type: 'userAbsent'; username: string }
  /**
   * The user exists with this role: else `UserNotFound`, or `RevisionConflict` when the
   * role changed (what "another admin remains" rests on).
   */
  | { type: 'userHasRole'; username: string; role: Role };

/** One atomic batch of mutations (DESIGN.md "change"). */
export interface ChangeInput {
  /** Who made it: `cli`, `api:<user>`, `runtime` … */
  actor: string;
  /** Where the actor acted from (an address, `cli`, `runtime`), for the audit log. */
  source?: string;
  /** What it was, for the audit log: `import`, `activate`, `rollback`, `renew` … */
  action: string;
  /** The entry or binding the change is about, for the audit log. */
  target?: string;
  /** Plain JSON for the audit log. Never put key material or passwords here. */
  details?: Record<string, unknown>;
  /** When given, the change fails with `RevisionConflict` unless the store is at this revision. */
  expectedRevision?: number;
  /** Checked in the transaction before any mutation; the first that fails aborts the change. */
  preconditions?: Precondition[];
  mutations: Mutation[];
}

/** An audited event that changes nothing (a failed login, a key export, a refusal). */
export interface AuditEventInput {
  actor: string;
  source?: string;
  action: string;
  target?: string;
  /** `denied`, `failed`, `refused`, `done` … (a change is always `applied`). */
  outcome: string;
  details?: Record<string, unknown>;
}

/**
 * One record of the hash-chained audit log: a change (with its revision) or an event
 * (revision null). `hash` is SHA-256 over `prevHash` and the RFC 8785 serialisation of
 * the other fields (see `audit-chain.ts`), so an altered or removed record breaks the chain.
 */
export interface AuditRecord {
  seq: number;
  revision: number | null;
  at: string;
  actor: string;
  source: string | null;
  action: string;
  target: string | null;
  outcome: string;
  /** The fingerprints the change replaced and wrote, by alias and by `binding:<name>`. */
  before: Record<string, string | null>;
  after: Record<string, string | null>;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** What `verifyAudit` found. */
export type AuditVerification =
  | { ok: true; records: number }
  | { ok: false; records: number; brokenAt: number; reason: string };

/** A login session (outside the revision counter: a login wakes no follower). */
export interface SessionRecord {
  /** SHA-256 of the session secret; the secret itself is never stored. */
  idHash: string;
  username: string;
  role: Role;
  source: string | null;
  createdAt: string;
  lastUsedAt: string;
  /** The session ends here unless it is used again (idle limit). */
  idleExpiresAt: string;
  /** The session ends here whatever happens (absolute limit). */
  expiresAt: string;
}

/** What a node reports of itself (outside the revision counter). */
export interface NodeStatusRecord {
  node: string;
  status: Record<string, unknown>;
  updatedAt: string;
}

/** The catalogue of `store/` error codes, each with what it means. */
export const STORE_ERROR_CODES = {
  RevisionConflict: 'The store moved on since the revision the change expected.',
  AliasNotFound: 'No entry has this alias.',
  AliasInUse:
    'The alias is in use: an entry already has it, or the entry is bound (server, SNI or CA) and cannot be deleted or downgraded.',
  MasterKeyMissing: 'The store holds encrypted data but no master key was found.',
  MasterKeyWrong: 'The master key does not match this data directory.',
  StoreUnavailable: 'The store cannot be opened or used (missing, locked, not a certkeeper file).',
  InvalidMutation: 'A mutation of the change is not valid.',
  MasterKeyInvalid: 'CERTKEEPER_MASTER_KEY or the key file is not 32 bytes (raw, hex or base64).',
  MasterKeyInsecure: 'The master key file is readable by group or others.',
  StoreTooNew: 'The store was written by a newer certkeeper.',
  StoreCorrupt:
    'Stored data fails its integrity check (ciphertext altered, moved or truncated, a certificate that no longer decodes).',
  StoreMissing:
    'The data directory has a master key but no store: the database file is missing or empty.',
  StoreReadOnly: 'The data directory or the store file is read-only for this process.',
  DataDirMissing: 'The data directory does not exist, and the command was not asked to create it.',
  DataDirInsecure:
    'The data directory is open to group or others, and certkeeper could not tighten it.',
  UserNotFound: 'No user has this name.',
  UserExists: 'A user with this name already exists.',
  TokenNotFound: 'No API token has this id.',
} as const;

/** A stable `store/` error code. */
export type StoreErrorCode = keyof typeof STORE_ERROR_CODES;

/** The one error type of `store/`: a stable `code` and a sentence for a person. */
export class StoreError extends CodedError<StoreErrorCode> {
  override readonly name = 'StoreError';
}

/** True when `err` is a `StoreError`, optionally with the given code. */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

export interface Store {
  /** The revision of the last committed change (0 for a new store). */
  revision(): Promise<number>;
  getEntry(alias: string): Promise<EntryRecord | undefined>;
  /**
   * The entries (or those of one kind) by alias, in the order of the aliases' bytes; only
   * those after `after` and at most `limit` when given (a page: see `ListEntriesOptions`).
   */
  listEntries(options?: ListEntriesOptions): Promise<EntryRecord[]>;
  /** The decrypted PKCS#8 DER of an entry's key; only `service/` and `runtime/` call this. */
  getPrivateKey(alias: string): Promise<Buffer | undefined>;
  listBindings(): Promise<Binding[]>;
  /** Every binding with its entry's revision and fingerprint, by name. */
  listBoundEntries(): Promise<BoundEntry[]>;
  /**
   * What a follower needs to catch up from `afterRevision`, read in one snapshot: the
   * bindings bound, rebound or whose entry changed since, the number of bindings (an
   * unbound name is not listed; a count lower than expected reveals it) and the revision
   * read.
   */
  listBindingChanges(afterRevision: number): Promise<BindingChanges>;
  getSecret(name: string): Promise<Buffer | undefined>;
  /**
   * Audit records, newest first: those after a revision or a sequence number, or before
   * a sequence number (to page back), at most `limit`.
   */
  listAudit(options?: {
    afterRevision?: number;
    afterSeq?: number;
    beforeSeq?: number;
    limit?: number;
  }): Promise<AuditRecord[]>;
  /** Appends an event that changes nothing (no revision) to the audit log. Resolves its seq. */
  appendAudit(event: AuditEventInput): Promise<number>;
  /** Checks the audit log's hash chain from the first record; names the first broken one. */
  verifyAudit(): Promise<AuditVerification>;

  getUser(username: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  /** A setting's JSON value, or undefined. */
  getSetting(name: string): Promise<unknown>;

  // Records outside the revision counter: writing them changes no revision, wakes no
  // follower and writes no audit record (the caller audits what needs it).
  putSession(session: SessionRecord): Promise<void>;
  getSession(idHash: string): Promise<SessionRecord | undefined>;
  /** Records a use: moves `lastUsedAt` and the idle limit. False when the session is gone. */
  touchSession(idHash: string, at: string, idleExpiresAt: string): Promise<boolean>;
  deleteSession(idHash: string): Promise<boolean>;
  /**
   * Ends every session of a user but `exceptIdHash` (the one that asked, when a user
   * changes their own password); resolves how many ended.
   */
  deleteUserSessions(username: string, exceptIdHash?: string): Promise<number>;
  /** Deletes the sessions that expired (idle or absolute) before `at`; resolves how many. */
  deleteExpiredSessions(at: string): Promise<number>;
  recordLoginFailure(key: string, at: string): Promise<void>;
  /** Failures for `key` at or after `since`. */
  countLoginFailures(key: string, since: string): Promise<number>;
  clearLoginFailures(key: string): Promise<void>;
  /** Deletes every failure recorded before `before` (any key); resolves how many. */
  deleteLoginFailuresBefore(before: string): Promise<number>;
  putNodeStatus(node: string, status: Record<string, unknown>): Promise<void>;
  listNodeStatus(): Promise<NodeStatusRecord[]>;
  deleteNodeStatus(node: string): Promise<void>;
  /** A secret of a node's runtime (the session ticket key), encrypted, outside the revision. */
  putRuntimeSecret(name: string, value: Uint8Array): Promise<void>;
  getRuntimeSecret(name: string): Promise<Buffer | undefined>;
  /**
   * Validates and applies a change in one transaction; resolves the new revision.
   * Deleting a bound entry is `AliasInUse`; binding a missing alias is `AliasNotFound`.
   * A failed change writes nothing.
   */
  applyChange(change: ChangeInput): Promise<number>;
  /**
   * Calls `listener` with the latest revision after commits, by this process or by
   * another one on the same store. The contract every adapter keeps: revisions arrive in
   * increasing order, several commits may arrive as only the latest, after a lost
   * connection the latest revision arrives at least once more, and a failure to follow
   * goes to `onError`, never to the caller. A follower reads what changed itself; it
   * does not rely on seeing every revision. Returns the unsubscribe function.
   */
  watch(listener: (revision: number) => void, onError?: (err: unknown) => void): () => void;
  close(): Promise<void>;
}
