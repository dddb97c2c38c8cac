/**
 * The domain rules of a change, the same for every adapter: the expected revision, each
 * precondition, what each mutation may do to the stored state, the fingerprints before and
 * after, the next revision and the hash-chained audit record. `change.ts` checks a change's
 * shape before any transaction starts; this module applies the checked plan inside one,
 * through `ChangeTransaction`: storage primitives that an adapter implements with one
 * statement each, and nothing else. An adapter decides no rule of its own.
 *
 * **Synchronous for SQLite, asynchronous for PostgreSQL, one set of rules.** The rules are
 * written once as a generator of steps (`applyPlan`, `appendAuditRecord`): each primitive's
 * answer is a value or a promise, and a promise is handed to the driver to wait for.
 * - `runSync` drives the steps of an adapter whose primitives answer at once (SQLite,
 *   better-sqlite3) to the end without ever leaving the caller's stack, inside the
 *   adapter's synchronous `db.transaction(…).immediate()`: one fsync per change, and no
 *   other statement of the process can run in the middle of it. That matters: an async
 *   transaction over a synchronous driver holds SQLite's write lock across `await`s, and
 *   then a second handle on the same file in the same process (the CLI's and the server's
 *   in a test, the suite's `reopen`) blocks the event loop in its busy timeout while the
 *   first can't reach its `COMMIT`: a deadlock that only a process-wide lock per file,
 *   taken by every write, open and migration, could prevent.
 * - `runAsync` drives the same steps for an adapter that must wait (PostgreSQL, `pg`),
 *   inside its `BEGIN` … `COMMIT` on one pooled client.
 * "Plan, then check" (read everything the change might touch first, then decide on a copy
 * of the state) would also keep the rules synchronous, but it is a second model of the
 * state that has to agree with the database; here every rule reads the database itself.
 *
 * **What an adapter promises.** The steps run between the adapter's begin and commit, and
 * any throw or rejection means roll back. The transaction serialises writers from the
 * first primitive on: SQLite's `BEGIN IMMEDIATE` takes the write lock; PostgreSQL would
 * start with `SELECT value FROM revision WHERE id = 1 FOR UPDATE` (for audit events too),
 * so that `readRevision` and `lastAudit` read what no other writer can move before the
 * commit. Reads see the transaction's own writes. Errors thrown here are `StoreError`s with
 * the codes and sentences of `change.ts`; an adapter's own failure (a lost connection, a
 * constraint) goes through unchanged for the adapter to name.
 */
import { AUDIT_GENESIS_HASH, auditHash } from './audit-chain.js';
import {
  aliasInUse,
  aliasNotFound,
  bindingChanged,
  bindingNotFound,
  type ChangePlan,
  entryBound,
  entryChanged,
  notBindable,
  type PlannedAuditEvent,
  type PlannedEntry,
  type PlannedMutation,
  revisionConflict,
  tokenNotFound,
  userExists,
  userNotFound,
  userRoleChanged,
} from './change.js';
import type { AuditRecord, EntryKind, Precondition, Role } from './store.js';

/** A planned user, as `putUser` writes it. */
export type PlannedUser = Extract<PlannedMutation, { type: 'putUser' }>['user'];

/** A planned token, as `putToken` writes it. */
export type PlannedToken = Extract<PlannedMutation, { type: 'putToken' }>['token'];

/** A primitive's answer: at once (SQLite), or later (PostgreSQL). */
export type Awaitable<T> = T | PromiseLike<T>;

/**
 * The storage primitives of one open write transaction. Each is one statement; none
 * checks a rule (a put inserts or replaces, a delete of nothing is not an error but says
 * so). Each read answers one value, not a row: a bulk import runs three of them per
 * binding, and a row object costs an SQLite adapter twice a single column. `revision` and `at` are those of the change being written. An adapter answers
 * every primitive at once (and runs the steps with `runSync`) or every one with a promise
 * (`runAsync`).
 */
export interface ChangeTransaction {
  /** The revision of the last committed change (0 for a new store). */
  readRevision(): Awaitable<number>;
  writeRevision(revision: number): Awaitable<void>;

  /** Undefined when there is no entry `alias`. */
  entryKind(alias: string): Awaitable<EntryKind | undefined>;
  /** The revision of the change that last wrote the entry (its ETag); undefined when none. */
  entryRevision(alias: string): Awaitable<number | undefined>;
  /** The entry's certificate fingerprint; null when there is no entry or it is pending. */
  fingerprintOf(alias: string): Awaitable<string | null>;
  /** The names of the bindings that point at `alias`, sorted. */
  bindingsOf(alias: string): Awaitable<string[]>;
  /** The alias bound to `name`; null when unbound. */
  boundAlias(name: string): Awaitable<string | null>;
  /** The fingerprint of the entry bound to `name`; null when unbound. */
  boundFingerprint(name: string): Awaitable<string | null>;
  /** Inserts, or replaces all but `createdRevision` and `createdAt`. */
  putEntry(entry: PlannedEntry, revision: number, at: string): Awaitable<void>;
  deleteEntry(alias: string): Awaitable<void>;
  /** Inserts or repoints the binding, stamped with `revision`. */
  bind(name: string, alias: string, revision: number): Awaitable<void>;
  /** False when there was no such binding. */
  unbind(name: string): Awaitable<boolean>;
  putSecret(name: string, sealedValue: Buffer, revision: number): Awaitable<void>;

  userExists(username: string): Awaitable<boolean>;
  /** The user's role; undefined when there is no such user. */
  userRole(username: string): Awaitable<Role | undefined>;
  /** Inserts, or replaces all but `createdRevision` and `createdAt`. */
  putUser(user: PlannedUser, revision: number, at: string): Awaitable<void>;
  /** Sets only the role (and the user's updated revision and time); false when no such user. */
  setUserRole(username: string, role: Role, revision: number, at: string): Awaitable<boolean>;
  /** False when there was no such user. */
  deleteUser(username: string): Awaitable<boolean>;
  /** Ends every session of the user (sessions live outside the revision). */
  deleteSessionsOf(username: string): Awaitable<void>;
  deleteTokensOf(username: string): Awaitable<void>;
  /** Inserts; an id or secret hash that is taken is the adapter's constraint error. */
  putToken(token: PlannedToken, revision: number, at: string): Awaitable<void>;
  /** False when there was no such token. */
  deleteToken(id: string): Awaitable<boolean>;
  putSetting(name: string, valueJson: string, revision: number): Awaitable<void>;
  deleteSetting(name: string): Awaitable<void>;

  /** The newest audit record's sequence number and hash; undefined when the log is empty. */
  lastAudit(): Awaitable<{ seq: number; hash: string } | undefined>;
  insertAudit(record: AuditRecord): Awaitable<void>;
}

/** An audit record before the chain gives it its place: `appendAuditRecord` does. */
export type NewAuditRecord = Omit<AuditRecord, 'seq' | 'prevHash' | 'hash'>;

/**
 * The rules as steps: a generator that yields each primitive's promise for its driver to
 * wait for, and returns `T`. A primitive that answers at once is not yielded at all.
 */
export type Steps<T> = Generator<PromiseLike<unknown>, T, unknown>;

/**
 * Runs steps whose primitives all answer at once, to the end, on the caller's stack (so
 * inside a synchronous transaction). A primitive that returns a promise is the adapter's
 * bug and throws.
 */
export function runSync<T>(steps: Steps<T>): T {
  const next = steps.next();
  if (next.done) return next.value;
  // Nobody will wait for that promise: its rejection must not go unhandled.
  Promise.resolve(next.value).catch(() => {});
  const err = new TypeError(
    'A synchronous ChangeTransaction returned a promise; drive it with runAsync.',
  );
  steps.throw(err); // ends the steps (their finally blocks run) and rethrows
  throw err;
}

/** Runs steps whose primitives may answer with promises, waiting for each. */
export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let next = steps.next();
  while (!next.done) {
    let answer: unknown;
    try {
      answer = await next.value;
    } catch (err) {
      next = steps.throw(err);
      continue;
    }
    next = steps.next(answer);
  }
  return next.value;
}

/** One primitive's answer: as it is, or after the driver waited for it. */
function* answer<T>(value: Awaitable<T>): Steps<T> {
  if (isPromiseLike(value)) return (yield value) as T;
  return value;
}

function isPromiseLike<T>(value: Awaitable<T>): value is PromiseLike<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Applies a checked change inside the caller's transaction and returns its revision.
 * Checks, in this order: the expected revision (`RevisionConflict`), each precondition,
 * then each mutation against the state the mutations before it left. The first failure
 * throws, and the caller rolls everything back.
 */
export function* applyPlan(tx: ChangeTransaction, plan: ChangePlan, at: string): Steps<number> {
  const current = yield* answer(tx.readRevision());
  if (plan.expectedRevision !== undefined && plan.expectedRevision !== current) {
    throw revisionConflict(current, plan.expectedRevision);
  }
  for (const p of plan.preconditions) yield* checkPrecondition(tx, p);
  const revision = current + 1;

  // The fingerprints each touched entry and binding had before the change, in the order
  // first touched; read again after the last mutation for `after`.
  const before: Record<string, string | null> = {};
  function* touchEntry(alias: string): Steps<void> {
    if (!(alias in before)) before[alias] = yield* answer(tx.fingerprintOf(alias));
  }
  function* touchBinding(name: string): Steps<void> {
    const key = `binding:${name}`;
    if (!(key in before)) before[key] = yield* answer(tx.boundFingerprint(name));
  }

  for (const m of plan.mutations) {
    switch (m.type) {
      case 'putEntry': {
        yield* touchEntry(m.entry.alias);
        // A bound entry may be replaced only by another key-pair.
        if (m.entry.kind !== 'key-pair') {
          const bound = yield* answer(tx.bindingsOf(m.entry.alias));
          if (bound.length > 0) throw notBindable(m.entry.alias, m.entry.kind, bound.join(', '));
        }
        yield* answer(tx.putEntry(m.entry, revision, at));
        break;
      }
      case 'deleteEntry': {
        yield* touchEntry(m.alias);
        if ((yield* answer(tx.entryKind(m.alias))) === undefined) throw aliasNotFound(m.alias);
        const bound = yield* answer(tx.bindingsOf(m.alias));
        if (bound.length > 0) throw entryBound(m.alias, bound);
        yield* answer(tx.deleteEntry(m.alias));
        break;
      }
      case 'bind': {
        yield* touchBinding(m.name);
        const kind = yield* answer(tx.entryKind(m.alias));
        if (kind === undefined) throw aliasNotFound(m.alias);
        if (kind !== 'key-pair') throw notBindable(m.alias, kind, m.name);
        yield* answer(tx.bind(m.name, m.alias, revision));
        break;
      }
      case 'unbind': {
        yield* touchBinding(m.name);
        if (!(yield* answer(tx.unbind(m.name)))) throw bindingNotFound(m.name);
        break;
      }
      case 'putSecret':
        yield* answer(tx.putSecret(m.name, m.sealedValue, revision));
        break;
      case 'putUser':
        yield* answer(tx.putUser(m.user, revision, at));
        break;
      case 'setUserRole':
        if (!(yield* answer(tx.setUserRole(m.username, m.role, revision, at)))) {
          throw userNotFound(m.username);
        }
        break;
      case 'deleteUser': {
        if (!(yield* answer(tx.deleteUser(m.username)))) throw userNotFound(m.username);
        // A removed user's sessions and tokens end with them.
        yield* answer(tx.deleteSessionsOf(m.username));
        yield* answer(tx.deleteTokensOf(m.username));
        break;
      }
      case 'putToken':
        yield* answer(tx.putToken(m.token, revision, at));
        break;
      case 'deleteToken':
        if (!(yield* answer(tx.deleteToken(m.id)))) throw tokenNotFound(m.id);
        break;
      case 'putSetting':
        yield* answer(tx.putSetting(m.name, m.valueJson, revision));
        break;
      case 'deleteSetting':
        yield* answer(tx.deleteSetting(m.name));
        break;
      default:
        throw new TypeError(`unknown mutation ${(m as { type: unknown }).type}`);
    }
  }

  const after: Record<string, string | null> = {};
  for (const key of Object.keys(before)) {
    after[key] = key.startsWith('binding:')
      ? yield* answer(tx.boundFingerprint(key.slice('binding:'.length)))
      : yield* answer(tx.fingerprintOf(key));
  }
  yield* answer(tx.writeRevision(revision));
  yield* appendAuditRecord(tx, {
    revision,
    at,
    actor: plan.actor,
    source: plan.source,
    action: plan.action,
    target: plan.target,
    outcome: 'applied',
    before,
    after,
    details: JSON.parse(plan.detailsJson) as Record<string, unknown>,
  });
  return revision;
}

/**
 * Appends one record to the hash chain inside the caller's transaction (a change's, or
 * one of its own for an event without a revision) and returns its sequence number.
 */
export function* appendAuditRecord(tx: ChangeTransaction, record: NewAuditRecord): Steps<number> {
  const last = yield* answer(tx.lastAudit());
  const unhashed = {
    ...record,
    seq: (last?.seq ?? 0) + 1,
    prevHash: last?.hash ?? AUDIT_GENESIS_HASH,
  };
  yield* answer(tx.insertAudit({ ...unhashed, hash: auditHash(unhashed) }));
  return unhashed.seq;
}

/** Appends an event that changes nothing (no revision, no fingerprints) to the chain. */
export function appendAuditEvent(
  tx: ChangeTransaction,
  event: PlannedAuditEvent,
  at: string,
): Steps<number> {
  const { detailsJson, ...fields } = event;
  return appendAuditRecord(tx, {
    ...fields,
    revision: null,
    at,
    before: {},
    after: {},
    details: JSON.parse(detailsJson) as Record<string, unknown>,
  });
}

/** One precondition, against the state inside the transaction. */
function* checkPrecondition(tx: ChangeTransaction, p: Precondition): Steps<void> {
  switch (p.type) {
    case 'entryExists':
      if ((yield* answer(tx.entryKind(p.alias))) === undefined) throw aliasNotFound(p.alias);
      return;
    case 'entryAbsent':
      if ((yield* answer(tx.entryKind(p.alias))) !== undefined) throw aliasInUse(p.alias);
      return;
    case 'entryRevision': {
      const revision = yield* answer(tx.entryRevision(p.alias));
      if (revision === undefined) throw aliasNotFound(p.alias);
      if (revision !== p.revision) throw entryChanged(p.alias, revision, p.revision);
      return;
    }
    case 'bindingIs': {
      const alias = yield* answer(tx.boundAlias(p.name));
      if (alias !== p.alias) throw bindingChanged(p.name, alias, p.alias);
      return;
    }
    case 'userExists':
      if (!(yield* answer(tx.userExists(p.username)))) throw userNotFound(p.username);
      return;
    case 'userAbsent':
      if (yield* answer(tx.userExists(p.username))) throw userExists(p.username);
      return;
    case 'userHasRole': {
      const role = yield* answer(tx.userRole(p.username));
      if (role === undefined) throw userNotFound(p.username);
      if (role !== p.role) throw userRoleChanged(p.username, role, p.role);
      return;
    }
    default:
      throw new TypeError(`unknown precondition ${(p as { type: unknown }).type}`);
  }
}
