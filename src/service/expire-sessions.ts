import { type AuthPolicy, authPolicy } from './auth-policy.js';
import type { ServiceContext } from './context.js';

/**
 * Deletes the sessions past their idle or absolute limit at `ctx.now()`; resolves how
 * many. A session is refused once past a limit anyway; this only keeps the table small,
 * so a front end calls it now and then (the API on a timer), and it audits nothing.
 */
export async function expireSessions(ctx: ServiceContext): Promise<number> {
  return ctx.store.deleteExpiredSessions(ctx.now().toISOString());
}

/**
 * Deletes the failed logins that left the limit's window (they no longer count), so that
 * failures from many addresses do not pile up; resolves how many. Called with
 * `expireSessions`, and like it audits nothing.
 */
export async function forgetOldLoginFailures(
  ctx: ServiceContext,
  policy: Partial<AuthPolicy> = {},
): Promise<number> {
  const before = new Date(ctx.now().getTime() - authPolicy(policy).failureWindowMs);
  return ctx.store.deleteLoginFailuresBefore(before.toISOString());
}
