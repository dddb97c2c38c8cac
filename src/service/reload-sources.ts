import type { ServiceContext } from './context.js';
import { changeBy, type Principal } from './principal.js';

/** The setting every server follows to run its certificate source lookup again. */
export const RELOAD_REQUEST_SETTING = 'reload-request';

/** A request to re-run the source lookup, as the store keeps it. */
export interface ReloadRequest {
  at: string;
  by: string;
}

/**
 * Asks every server on the keystore to run its start-up source lookup again (flags, the
 * default location, the config file, the environment, the keystore binding, the local
 * CA), as SIGHUP does for one process: one change that each server follows by reading its
 * files again. What each then serves, and what it found broken, is in its node status
 * (`lastReload`, named by the request's `at`).
 */
export async function requestReload(
  ctx: ServiceContext,
  input: { principal: Principal },
): Promise<{ revision: number; at: string }> {
  const request: ReloadRequest = { at: ctx.now().toISOString(), by: input.principal.actor };
  const revision = await ctx.store.applyChange(
    changeBy(input.principal, {
      action: 'reload',
      target: 'server',
      mutations: [{ type: 'putSetting', name: RELOAD_REQUEST_SETTING, value: request }],
    }),
  );
  return { revision, at: request.at };
}

/** The latest reload request, if any was made. */
export async function reloadRequest(ctx: ServiceContext): Promise<ReloadRequest | undefined> {
  const value = (await ctx.store.getSetting(RELOAD_REQUEST_SETTING)) as ReloadRequest | undefined;
  return value && typeof value.at === 'string' ? value : undefined;
}
