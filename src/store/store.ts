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

/** One mutation inside a change. */
export type Mutation =
  | { type: 'putEntry'; entry: EntryInput }
  | { type: 'deleteEntry'; alias: string }
  | { type: 'bind'; name: string; alias: string }
  | { type: 'unbind'; name: string }
  /** A small secret (ticket keys, local CA state…), encrypted like private keys. */
  | { type: 'putSecret'; name: string; value: Buffer };

/** One atomic batch of mutations (DESIGN.md "change"). */
export interface ChangeInput {
  /** Who made it: `cli`, `api:<user>`, `runtime` … */
  actor: string;
  /** What it was, for the audit log: `import`, `activate`, `rollback`, `renew` … */
  action: string;
  /** The entry or binding the change is about, for the audit log. */
  target?: string;
  /** Plain JSON for the audit log. Never put key material or passwords here. */
  details?: Record<string, unknown>;
  /** When given, the change fails with `RevisionConflict` unless the store is at this revision. */
  expectedRevision?: number;
  mutations: Mutation[];
}

/** A committed change, as the audit log keeps it. */
export interface AuditRecord {
  revision: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
}

/** The catalogue of `store/` error codes, each with what it means. */
export const STORE_ERROR_CODES = {
  RevisionConflict: 'The store moved on since the revision the change expected.',
  AliasNotFound: 'No entry has this alias.',
  AliasInUse: 'An entry with this alias already exists.',
  EntryBound: 'The entry is bound (server, SNI or CA) and cannot be deleted or downgraded.',
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
  listEntries(): Promise<EntryRecord[]>;
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
  /** Audit records, newest first, optionally only those after a revision. */
  listAudit(options?: { afterRevision?: number; limit?: number }): Promise<AuditRecord[]>;
  /**
   * Validates and applies a change in one transaction; resolves the new revision.
   * Deleting a bound entry is `EntryBound`; binding a missing alias is `AliasNotFound`.
   * A failed change writes nothing.
   */
  applyChange(change: ChangeInput): Promise<number>;
  /**
   * Calls `listener` with the new revision after every commit, by this process or by
   * another one on the same store (within 200 ms). Returns the unsubscribe function.
   */
  watch(listener: (revision: number) => void): () => void;
  close(): Promise<void>;
}
