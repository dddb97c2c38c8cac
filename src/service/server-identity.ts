/**
 * The served identity's history, kept under the revision so that every node agrees on
 * it: what the `server` binding pointed at before the last activation (what a rollback
 * returns to), and a pending confirmation (commit-confirmed: an activation that rolls
 * back by itself unless confirmed in time). Activation itself is `bindEntry` with the
 * `server` binding; this module confirms and rolls back.
 */

import type { Mutation } from '../store/store.js';
import { StoreError } from '../store/store.js';
import { guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { changeBy, type Principal } from './principal.js';

/** The setting that names what the server binding pointed at before the last activation. */
export const PREVIOUS_SERVER_SETTING = 'server-previous';
/** The setting that holds an activation waiting for its confirmation. */
export const PENDING_CONFIRMATION_SETTING = 'server-confirmation';
/** The longest confirmation window: a day. */
export const MAX_CONFIRM_SECONDS = 86_400;

/** An activation waiting for `confirmServer`; past `deadline` the runtime rolls it back. */
export interface PendingConfirmation {
  alias: string;
  /** What the server binding pointed at before (null: the local CA's certificate). */
  previous: string | null;
  deadline: string;
}

/**
 * The mutations that activate `input.alias` as the server identity: the binding, what it
 * replaces (for a later rollback), and the confirmation deadline when one was asked for.
 */
export function serverActivation(
  ctx: ServiceContext,
  input: { alias: string; confirmWithinSeconds?: number },
  previous: string | null,
): { mutations: Mutation[]; deadline?: string } {
  const mutations: Mutation[] = [
    { type: 'bind', name: 'server', alias: input.alias },
    { type: 'putSetting', name: PREVIOUS_SERVER_SETTING, value: { alias: previous } },
  ];
  const seconds = input.confirmWithinSeconds;
  if (seconds === undefined) {
    mutations.push({ type: 'deleteSetting', name: PENDING_CONFIRMATION_SETTING });
    return { mutations };
  }
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_CONFIRM_SECONDS) {
    throw new ServiceError(
      'InvalidConfirmationWindow',
      `confirmWithinSeconds must be a whole number of seconds from 1 to ${MAX_CONFIRM_SECONDS}.`,
    );
  }
  const deadline = new Date(ctx.now().getTime() + seconds * 1000).toISOString();
  const pending: PendingConfirmation = { alias: input.alias, previous, deadline };
  mutations.push({ type: 'putSetting', name: PENDING_CONFIRMATION_SETTING, value: pending });
  return { mutations, deadline };
}

/** The activation waiting for its confirmation, if any. */
export async function pendingConfirmation(
  ctx: ServiceContext,
): Promise<PendingConfirmation | undefined> {
  const value = (await ctx.store.getSetting(PENDING_CONFIRMATION_SETTING)) as
    | PendingConfirmation
    | undefined;
  return value && typeof value.alias === 'string' && typeof value.deadline === 'string'
    ? value
    : undefined;
}

/**
 * Confirms the pending activation, so it stays; `NothingToConfirm` when none is pending
 * (it was confirmed, rolled back, or its deadline passed and the runtime rolled it back).
 */
export async function confirmServer(
  ctx: ServiceContext,
  input: { principal: Principal; expectedRevision?: number },
): Promise<{ revision: number; alias: string }> {
  const pending = await pendingConfirmation(ctx);
  if (!pending) {
    throw new ServiceError(
      'NothingToConfirm',
      'No activation is waiting for its confirmation: it was confirmed or rolled back already.',
    );
  }
  const revision = await ctx.store.applyChange(
    changeBy(input.principal, {
      action: 'confirm',
      target: pending.alias,
      details: { deadline: pending.deadline },
      ...guards(input.expectedRevision, [
        { type: 'bindingIs', name: 'server', alias: pending.alias },
      ]),
      mutations: [{ type: 'deleteSetting', name: PENDING_CONFIRMATION_SETTING }],
    }),
  );
  return { revision, alias: pending.alias };
}

/**
 * Returns the server binding to what it pointed at before the last activation (the
 * pending one's `previous`, else the recorded one), as one change guarded on the binding
 * being what was read; `NothingToRollBack` when nothing was activated. `reason` goes to
 * the audit log (the runtime gives "not confirmed in time").
 */
export async function rollbackServer(
  ctx: ServiceContext,
  input: { principal: Principal; expectedRevision?: number; reason?: string },
): Promise<{ revision: number; restored: string | null }> {
  const pending = await pendingConfirmation(ctx);
  const recorded = (await ctx.store.getSetting(PREVIOUS_SERVER_SETTING)) as
    | { alias: string | null }
    | undefined;
  const current = (await ctx.store.listBindings()).find((b) => b.name === 'server')?.alias ?? null;
  if (!pending && !recorded) {
    throw new ServiceError(
      'NothingToRollBack',
      'No activation is on record to roll back: the server identity was never changed here.',
    );
  }
  const restored = pending ? pending.previous : (recorded?.alias ?? null);
  if (restored !== null && !(await ctx.store.getEntry(restored))) {
    throw new StoreError(
      'AliasNotFound',
      `The previous server identity "${restored}" was deleted since; activate another entry instead.`,
    );
  }
  const mutations: Mutation[] = [
    restored === null
      ? { type: 'unbind', name: 'server' }
      : { type: 'bind', name: 'server', alias: restored },
    { type: 'putSetting', name: PREVIOUS_SERVER_SETTING, value: { alias: current } },
    { type: 'deleteSetting', name: PENDING_CONFIRMATION_SETTING },
  ];
  if (restored === null && current === null) mutations.shift();
  const revision = await ctx.store.applyChange(
    changeBy(input.principal, {
      action: 'rollback',
      target: 'server',
      details: {
        from: current,
        to: restored,
        ...(input.reason ? { reason: input.reason } : {}),
        ...(pending ? { deadline: pending.deadline } : {}),
      },
      ...guards(input.expectedRevision, [{ type: 'bindingIs', name: 'server', alias: current }]),
      mutations,
    }),
  );
  return { revision, restored };
}
