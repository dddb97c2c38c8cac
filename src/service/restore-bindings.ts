/**
 * The runtime's rollback after it refused what a revision asked for (the self-probe
 * failed, the context could not be built, the key could not be read): each refused
 * binding goes back to the entry that was served for it, so that the store and every
 * node agree with what is served.
 */
import { isStoreError, type Mutation } from '../store/store.js';
import type { ServiceContext } from './context.js';
import { changeBy, type Principal } from './principal.js';
import { PENDING_CONFIRMATION_SETTING } from './server-identity.js';

/** One binding the runtime refused, and the alias it served for it (null: none). */
export interface RefusedBinding {
  /** `server` or `sni:<host>`. */
  name: string;
  /** The alias the refused revision bound. */
  refused: string;
  /** The alias served for it before (null: the local CA, or no SNI binding). */
  served: string | null;
}

/**
 * Puts each refused binding back to its served alias (an unbind when that was none, or
 * when that entry was deleted since), in one change made only at `refusedRevision`:
 * when the store moved on, someone acted after the refused change and the runtime follows
 * them instead (resolves undefined). No change when there is nothing to put back (a
 * renewal refused under the same alias): a rollback is never an empty change. A restored
 * `server` binding also drops the refused activation's pending confirmation.
 */
export async function restoreRefusedBindings(
  ctx: ServiceContext,
  input: {
    refusedRevision: number;
    bindings: RefusedBinding[];
    principal: Principal;
    details?: Record<string, unknown>;
  },
): Promise<number | undefined> {
  const mutations: Mutation[] = [];
  for (const b of input.bindings) {
    if (b.served === b.refused) continue;
    const served = b.served && (await ctx.store.getEntry(b.served)) ? b.served : null;
    mutations.push(
      served ? { type: 'bind', name: b.name, alias: served } : { type: 'unbind', name: b.name },
    );
    if (b.name === 'server') {
      mutations.push({ type: 'deleteSetting', name: PENDING_CONFIRMATION_SETTING });
    }
  }
  if (mutations.length === 0) return undefined;
  try {
    return await ctx.store.applyChange(
      changeBy(input.principal, {
        action: 'rollback',
        target: input.bindings.map((b) => b.name).join(','),
        details: { refusedRevision: input.refusedRevision, ...input.details },
        expectedRevision: input.refusedRevision,
        mutations,
      }),
    );
  } catch (err) {
    if (isStoreError(err, 'RevisionConflict')) return undefined;
    throw err;
  }
}
