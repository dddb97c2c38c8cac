import { entryBound } from '../store/change.js';
import { type ChangeInput, StoreError } from '../store/store.js';
import { checkEntryRevision, guards, isReservedAlias, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { changeBy, type Principal } from './principal.js';

export interface DeleteInput {
  alias: string;
  principal: Principal;
  /** The store revision the caller saw; otherwise the revision read before checking. */
  expectedRevision?: number;
  /** The entry's revision the caller saw (its ETag, `If-Match`): `RevisionConflict` if it changed since. */
  entryRevision?: number;
}

export interface DeleteResult {
  revision: number;
}

/**
 * Deletes an entry (and its private key) as one change. A missing alias is
 * `AliasNotFound`; a bound entry is `AliasInUse` (checked by the store inside the
 * transaction); certkeeper's own entries (`certkeeper-*`) are never deleted (`InvalidAlias`).
 */
export async function deleteEntry(ctx: ServiceContext, input: DeleteInput): Promise<DeleteResult> {
  return { revision: await ctx.store.applyChange(await planDelete(ctx, input)) };
}

/**
 * Validates a deletion and builds its change, writing nothing. A bound entry is refused
 * here already (`AliasInUse`), and again by the store inside the transaction.
 */
export async function planDelete(ctx: ServiceContext, input: DeleteInput): Promise<ChangeInput> {
  if (isReservedAlias(input.alias)) {
    throw new ServiceError(
      'InvalidAlias',
      `"${input.alias}" belongs to certkeeper's local CA and is never deleted.`,
    );
  }
  const entry = await ctx.store.getEntry(input.alias);
  if (!entry) throw new StoreError('AliasNotFound', `No entry is named "${input.alias}".`);
  checkEntryRevision(entry, input.entryRevision);
  // Before the store would (so a batch names the operation), with the store's own error.
  const bound = (await ctx.store.listBindings()).filter((b) => b.alias === input.alias);
  if (bound.length > 0) throw entryBound(input.alias, bound.map((b) => b.name).sort());
  return changeBy(input.principal, {
    action: 'delete',
    target: input.alias,
    details: { kind: entry.kind, fingerprint: entry.fingerprint },
    ...guards(input.expectedRevision, [
      { type: 'entryRevision', alias: input.alias, revision: entry.updatedRevision },
    ]),
    mutations: [{ type: 'deleteEntry', alias: input.alias }],
  });
}
