/**
 * Several writes as one change (issue 14, `POST /api/v1/changes`): each operation is
 * planned by its own module's plan function against the state the operations before it
 * leave, and all their mutations and preconditions go to the store as ONE change, so the
 * batch is applied whole or not at all, at one revision, with one audit record.
 *
 * **What the store checks.** Preconditions are checked before any mutation, against the
 * state before the batch; mutations one after the other, each against what the ones
 * before it left. So a precondition about something an earlier operation of the batch
 * touched (an entry it imported, a binding it set) is dropped: it was planned against the
 * batch's own pending state, which the earlier operation's preconditions (on the state
 * before the batch) and the store's mutation rules (a bind needs its entry) already pin.
 */
import { CodedError } from '../core/errors.js';
import {
  type Binding,
  type ChangeInput,
  checkListEntriesOptions,
  type EntryInput,
  type EntryRecord,
  type ListEntriesOptions,
  type Mutation,
  type Precondition,
  type Store,
} from '../store/store.js';
import { planBind, planUnbind } from './bind-entry.js';
import type { ServiceContext } from './context.js';
import { planDelete } from './delete-entry.js';
import { ServiceError } from './errors.js';
import { planImport } from './import-entry.js';
import { changeBy, type Principal } from './principal.js';
import { type Privilege, requirePrivilege } from './privileges.js';
import type { UploadedFile } from './upload.js';

/** The most operations one batch may hold. */
export const MAX_OPERATIONS = 100;

/** One write of a batch; `entryRevision` is the entry's ETag the caller saw (`ifMatch`). */
export type ChangeOperation =
  | {
      op: 'import';
      alias: string;
      files: UploadedFile[];
      password?: string;
      replace?: boolean;
      entryRevision?: number;
    }
  | { op: 'delete'; alias: string; entryRevision?: number }
  | { op: 'bind'; hostname: string; alias: string; entryRevision?: number }
  | { op: 'unbind'; hostname: string }
  | { op: 'activate'; alias: string; confirmWithinSeconds?: number; entryRevision?: number };

export interface ApplyChangesInput {
  operations: ChangeOperation[];
  principal: Principal;
  /** The store revision the caller saw; otherwise each operation's own guards decide. */
  expectedRevision?: number;
}

/** What one operation did, in the order given. */
export type OperationResult =
  | { op: 'import'; alias: string; action: 'import' | 'replace'; fingerprint: string }
  | { op: 'delete'; alias: string }
  | { op: 'bind'; hostname: string; alias: string; binding: string }
  | { op: 'unbind'; hostname: string; alias: string; binding: string }
  | { op: 'activate'; alias: string; confirmBefore?: string };

export interface ApplyChangesResult {
  revision: number;
  operations: OperationResult[];
  /** The batch changed what a running server serves (a binding, or a bound entry). */
  changesServed: boolean;
}

/** The privilege each operation needs. */
const NEEDS: Readonly<Record<ChangeOperation['op'], Privilege>> = {
  import: 'entries:write',
  delete: 'entries:write',
  bind: 'server:manage',
  unbind: 'server:manage',
  activate: 'server:manage',
};

/**
 * Applies the operations as one change, or none of them: the first refusal (a privilege
 * the principal lacks, an operation its own module refuses, a guard the store finds
 * broken) refuses the batch with that operation's code, its index in `details.operation`
 * and in the sentence, and writes nothing. An empty batch, one over `MAX_OPERATIONS`, or
 * one that sets a binding twice is `InvalidChange`.
 */
export async function applyChanges(
  ctx: ServiceContext,
  input: ApplyChangesInput,
): Promise<ApplyChangesResult> {
  const { operations, principal } = input;
  if (!Array.isArray(operations) || operations.length === 0) {
    throw new ServiceError('InvalidChange', 'A change needs at least one operation.');
  }
  if (operations.length > MAX_OPERATIONS) {
    throw new ServiceError(
      'InvalidChange',
      `A change holds at most ${MAX_OPERATIONS} operations, not ${operations.length}.`,
    );
  }
  operations.forEach((op, index) => {
    atOperation(index, op, () => requirePrivilege(principal, NEEDS[op.op]));
  });

  const view = pendingView(ctx.store);
  const batch: ServiceContext = { ...ctx, store: view.store };
  const guarded: { precondition: Precondition; index: number }[] = [];
  const mutations: Mutation[] = [];
  const audited: Record<string, unknown>[] = [];
  const results: OperationResult[] = [];
  for (const [index, op] of operations.entries()) {
    const { change, result } = await atOperation(index, op, async () => {
      const plan = await planOperation(batch, op, principal);
      view.assertUntouchedBindings(plan.change.mutations);
      return plan;
    });
    for (const precondition of change.preconditions ?? []) {
      if (!view.touched(precondition)) guarded.push({ precondition, index });
    }
    mutations.push(...change.mutations);
    await view.apply(change.mutations);
    const { principal: _, ...details } = change.details ?? {};
    audited.push({ op: op.op, action: change.action, target: change.target, ...details });
    results.push(result);
  }

  const revision = await ctx.store
    .applyChange(
      changeBy(principal, {
        action: 'changes',
        details: { operations: audited },
        ...(input.expectedRevision === undefined
          ? {}
          : { expectedRevision: input.expectedRevision }),
        preconditions: guarded.map((g) => g.precondition),
        mutations,
      }),
    )
    .catch((err: unknown) => {
      throw blameOperation(err, guarded, operations);
    });
  return { revision, operations: results, changesServed: await view.changesServed() };
}

/** Plans one operation with its own module, against the batch's pending state. */
async function planOperation(
  ctx: ServiceContext,
  op: ChangeOperation,
  principal: Principal,
): Promise<{ change: ChangeInput; result: OperationResult }> {
  const entryRevision = (seen: number | undefined) =>
    seen === undefined ? {} : { entryRevision: seen };
  switch (op.op) {
    case 'import': {
      const { change, description } = await planImport(ctx, {
        alias: op.alias,
        files: op.files,
        ...(op.password === undefined ? {} : { password: op.password }),
        replace: op.replace ?? false,
        principal,
        ...entryRevision(op.entryRevision),
      });
      return {
        change,
        result: {
          op: 'import',
          alias: op.alias,
          action: description.action,
          fingerprint: description.certificate.fingerprints.sha256,
        },
      };
    }
    case 'delete':
      return {
        change: await planDelete(ctx, {
          alias: op.alias,
          principal,
          ...entryRevision(op.entryRevision),
        }),
        result: { op: 'delete', alias: op.alias },
      };
    case 'bind': {
      const { change, result } = await planBind(ctx, {
        alias: op.alias,
        binding: `sni:${op.hostname}`,
        principal,
        ...entryRevision(op.entryRevision),
      });
      return {
        change,
        result: { op: 'bind', hostname: op.hostname, alias: op.alias, binding: result.binding },
      };
    }
    case 'unbind': {
      const { change, result } = await planUnbind(ctx, {
        binding: `sni:${op.hostname}`,
        principal,
      });
      return {
        change,
        result: {
          op: 'unbind',
          hostname: op.hostname,
          alias: result.alias,
          binding: result.binding,
        },
      };
    }
    case 'activate': {
      const { change, result } = await planBind(ctx, {
        alias: op.alias,
        binding: 'server',
        principal,
        ...(op.confirmWithinSeconds === undefined
          ? {}
          : { confirmWithinSeconds: op.confirmWithinSeconds }),
        ...entryRevision(op.entryRevision),
      });
      return {
        change,
        result: {
          op: 'activate',
          alias: op.alias,
          ...(result.confirmBefore ? { confirmBefore: result.confirmBefore } : {}),
        },
      };
    }
    default:
      // The types allow no other; a front end checks what it was sent.
      throw new TypeError(`unknown operation ${(op as { op: unknown }).op}`);
  }
}

/**
 * The store as the batch's next operation sees it: the stored state with the mutations of
 * the operations before it applied (entries and bindings: what plan functions read).
 */
function pendingView(base: Store) {
  /** An alias's pending entry; null when the batch deleted it. */
  const entries = new Map<string, EntryRecord | null>();
  /** A binding's pending alias; null when the batch unbound it. */
  const bindings = new Map<string, string | null>();
  let next: number | undefined;

  const getEntry = async (alias: string) =>
    entries.has(alias) ? (entries.get(alias) ?? undefined) : base.getEntry(alias);
  const listBindings = async (): Promise<Binding[]> => {
    const stored = (await base.listBindings()).filter((b) => !bindings.has(b.name));
    const pending = [...bindings].flatMap(([name, alias]) =>
      alias === null ? [] : [{ name, alias, revision: next ?? 0 }],
    );
    return [...stored, ...pending];
  };
  const listEntries = async (options: ListEntriesOptions = {}) => {
    const { limit, ...from } = checkListEntriesOptions(options);
    const stored = (await base.listEntries(from)).filter((e) => !entries.has(e.alias));
    const pending = [...entries.values()].filter(
      (e): e is EntryRecord =>
        e !== null &&
        (from.kind === undefined || e.kind === from.kind) &&
        (from.after === undefined || e.alias > from.after),
    );
    // The store's order (the aliases' bytes), so that a page here is the store's page.
    const all = [...stored, ...pending].sort((a, b) => (a.alias < b.alias ? -1 : 1));
    return limit === undefined ? all : all.slice(0, limit);
  };
  const overrides: Partial<Store> = { getEntry, listBindings, listEntries };
  const store = new Proxy(base, {
    get(target, name, receiver) {
      if (typeof name === 'string' && name in overrides) return overrides[name as keyof Store];
      const value = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });

  return {
    store,
    /** True when an earlier operation of the batch touched what `p` is about. */
    touched(p: Precondition): boolean {
      if (p.type === 'bindingIs') return bindings.has(p.name);
      if ('alias' in p) return entries.has(p.alias);
      return false;
    },
    async apply(mutations: Mutation[]): Promise<void> {
      next ??= (await base.revision()) + 1;
      for (const m of mutations) {
        if (m.type === 'putEntry') entries.set(m.entry.alias, pendingEntry(m.entry, next));
        else if (m.type === 'deleteEntry') entries.set(m.alias, null);
        else if (m.type === 'bind') bindings.set(m.name, m.alias);
        else if (m.type === 'unbind') bindings.set(m.name, null);
      }
    },
    /**
     * Throws `InvalidChange` when `mutations` set a binding an earlier operation set: what
     * it pointed at before (a rollback's target) would be the batch's own, not the stored.
     */
    assertUntouchedBindings(mutations: Mutation[]): void {
      for (const m of mutations) {
        if ((m.type === 'bind' || m.type === 'unbind') && bindings.has(m.name)) {
          throw new ServiceError(
            'InvalidChange',
            `An earlier operation of this change sets "${m.name}" already; set each binding once.`,
          );
        }
      }
    },
    /** A binding changed, or an entry a binding serves. */
    async changesServed(): Promise<boolean> {
      if (bindings.size > 0) return true;
      const bound = new Set((await listBindings()).map((b) => b.alias));
      return [...entries.keys()].some((alias) => bound.has(alias));
    },
  };
}

/** An entry as it will be once the batch is written at `revision`. */
function pendingEntry(entry: EntryInput, revision: number): EntryRecord {
  const at = new Date().toISOString();
  return {
    alias: entry.alias,
    kind: entry.kind,
    certificatePem: entry.certificatePem ?? null,
    chainPem: entry.chainPem ?? '',
    csrPem: entry.csrPem ?? null,
    hasPrivateKey: Boolean(entry.privateKeyDer),
    fingerprint: entry.fingerprint ?? null,
    createdRevision: revision,
    updatedRevision: revision,
    createdAt: at,
    updatedAt: at,
  };
}

/** Runs `step` for operation `index`; a refusal names the operation (see `blamed`). */
function atOperation<T>(index: number, op: ChangeOperation, step: () => T): T {
  try {
    const value = step();
    if (value instanceof Promise) {
      return value.catch((err: unknown) => {
        throw blamed(err, index, op);
      }) as T;
    }
    return value;
  } catch (err) {
    throw blamed(err, index, op);
  }
}

/**
 * The same refusal (same class and code, so a front end answers it the same way), its
 * sentence prefixed with the operation, and `operation` (the index) in its details.
 */
function blamed(err: unknown, index: number, op: ChangeOperation): unknown {
  if (!(err instanceof CodedError)) return err;
  const Refusal = err.constructor as new (
    code: string,
    message: string,
    options: { cause: unknown; details: Record<string, unknown> },
  ) => CodedError<string>;
  return new Refusal(err.code, `Operation ${index} (${op.op}): ${err.message}`, {
    cause: err,
    details: { ...err.details, operation: index, op: op.op },
  });
}

/**
 * A guard the store found broken in the transaction (another writer came first) names
 * what it was about, quoted, in its sentence (the store's refusals carry no details):
 * blames the first operation whose precondition is about that, when one is.
 */
function blameOperation(
  err: unknown,
  guarded: { precondition: Precondition; index: number }[],
  operations: ChangeOperation[],
): unknown {
  if (!(err instanceof CodedError)) return err;
  const about = (p: Precondition) => ('alias' in p ? p.alias : 'name' in p ? p.name : p.username);
  const culprit = guarded.find(({ precondition }) =>
    err.message.includes(`"${about(precondition)}"`),
  );
  return culprit ? blamed(err, culprit.index, operations[culprit.index]!) : err;
}
