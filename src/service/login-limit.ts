/**
 * The limit on failed logins: at most `maxFailures` per user name and `maxAddressFailures`
 * per source address within `failureWindowMs` (records outside the revision: `Store.recordLoginFailure`).
 * Past it, logins for that name or from that address are refused with `TooManyAttempts`
 * — even with the right password, or guessing would simply go on — until the oldest
 * failure leaves the window. A refused attempt records no failure (it verified nothing),
 * so a lock ends on time however hard someone knocks. Two concurrent failures may both
 * pass the check before either is recorded: the limit can be exceeded by the number of
 * requests in flight, never by more.
 */
import type { AuthPolicy } from './auth-policy.js';
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';

/** The failure keys of an attempt: `user:<name>` (when it can be a user) and `addr:<source>`. */
export function failureKeys(username: string | undefined, source: string | undefined): string[] {
  return [
    ...(username === undefined ? [] : [`user:${username}`]),
    ...(source === undefined ? [] : [`addr:${source}`]),
  ];
}

/** Throws `TooManyAttempts` (with `details.retryAfterSeconds`) when a key is at its limit. */
export async function checkLoginLimit(
  ctx: ServiceContext,
  keys: string[],
  policy: AuthPolicy,
): Promise<void> {
  const now = ctx.now().getTime();
  for (const key of keys) {
    const since = new Date(now - policy.failureWindowMs).toISOString();
    if ((await ctx.store.countLoginFailures(key, since)) < limitOf(key, policy)) continue;
    const retryAfterSeconds = await secondsUntilBelowLimit(ctx, key, now, policy);
    const who = key.startsWith('user:') ? `for "${key.slice(5)}"` : `from ${key.slice(5)}`;
    throw new ServiceError(
      'TooManyAttempts',
      `Too many failed logins ${who}; try again in ${retryAfterSeconds} seconds.`,
      { details: { retryAfterSeconds } },
    );
  }
}

/** The number of failures in the window at which `key` is refused. */
function limitOf(key: string, policy: AuthPolicy): number {
  return key.startsWith('addr:') ? policy.maxAddressFailures : policy.maxFailures;
}

/** Records a failed attempt under every key. */
export async function recordLoginFailure(ctx: ServiceContext, keys: string[]): Promise<void> {
  const at = ctx.now().toISOString();
  for (const key of keys) await ctx.store.recordLoginFailure(key, at);
}

/**
 * The whole seconds until fewer than its limit of `key`'s failures remain in the
 * window. The store counts failures since a time, so this searches that count (which
 * only falls as the time moves on) by bisection: about ten reads, on the refusal path only.
 */
async function secondsUntilBelowLimit(
  ctx: ServiceContext,
  key: string,
  now: number,
  policy: AuthPolicy,
): Promise<number> {
  const window = policy.failureWindowMs;
  const belowAfter = async (seconds: number) =>
    (await ctx.store.countLoginFailures(
      key,
      new Date(now + seconds * 1000 - window).toISOString(),
    )) < limitOf(key, policy);
  let low = 0; // not below the limit yet
  let high = Math.ceil(window / 1000); // below it (unless failures are dated in the future)
  if (!(await belowAfter(high))) return high;
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (await belowAfter(mid)) high = mid;
    else low = mid;
  }
  return high;
}
