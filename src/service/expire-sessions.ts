import type { ServiceContext } from './context.js';

/**
 * Deletes the sessions past their idle or absolute limit at `ctx.now()`; resolves how
 * many. A session is refused once past a limit anyway; this only keeps the table small,
 * so a front end calls it now and then (the API on a timer), and it audits nothing.
 */
export async function expireSessions(ctx: ServiceContext): Promise<number> {
  return ctx.store.deleteExpiredSessions(ctx.now().toISOString());
}
