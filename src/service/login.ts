import { isUsername } from './account-name.js';
import { type AuthPolicy, authPolicy } from './auth-policy.js';
import { authenticationFailure, checkSource } from './authentication.js';
import type { ServiceContext } from './context.js';
import { checkLoginLimit, failureKeys, recordLoginFailure } from './login-limit.js';
import { exceedsPasswordLength } from './passwords.js';
import type { UserRole } from './roles.js';
import { newSessionToken, sessionIdHash } from './session-token.js';

export interface LoginInput {
  username: string;
  password: string;
  /** Where the attempt came from (the client address): the key of the per-address limit. */
  source: string;
}

export interface LoginResult {
  /** The session's secret: returned once, stored only as its SHA-256 hash. */
  sessionToken: string;
  /** The absolute limit: the session ends here however much it is used. */
  expiresAt: string;
  /** The idle limit: the session ends here unless it is used (each use moves it). */
  idleExpiresAt: string;
  username: string;
  role: UserRole;
  /** The password was generated or set by an admin: change it before anything else. */
  mustChangePassword: boolean;
}

/**
 * Checks a user name and password and opens a session (a record outside the revision: a
 * login changes no revision and wakes no follower).
 *
 * - An unknown user costs the same as a wrong password: the password is verified against
 *   a dummy hash made with the same parameters, and both are `AuthenticationFailure` with
 *   the same sentence.
 * - Failures count per user name and per address (`login-limit.ts`): past the limit, even
 *   the right password is `TooManyAttempts` until the window moves on.
 * - Each failure is an audit event (`login`, `denied`) naming the user and the address,
 *   never the password; for an unknown user name not even the name, since people type
 *   their password into the name field.
 * - Success clears the user's failures (not the address's: one's own good login must not
 *   reset the count of guesses at others) and is audited (`login`, `done`).
 */
export async function login(
  ctx: ServiceContext,
  input: LoginInput,
  policy: Partial<AuthPolicy> = {},
): Promise<LoginResult> {
  const p = authPolicy(policy);
  const source = checkSource(input.source);
  const named = isUsername(input.username);
  const keys = failureKeys(named ? input.username : undefined, source);
  await checkLoginLimit(ctx, keys, p);
  const user = named ? await ctx.store.getUser(input.username) : undefined;
  // A password too long to be anyone's is not hashed as it is (bounded work), but the
  // dummy hash is still verified, so it costs what any other failure costs.
  const usable = typeof input.password === 'string' && !exceedsPasswordLength(input.password);
  const verified = await p.hasher.verify(
    usable ? input.password : '',
    user?.passwordHash ?? (await p.hasher.dummyHash()),
  );
  if (!user || !usable || !verified) {
    await recordLoginFailure(ctx, keys);
    await ctx.store.appendAudit({
      actor: user ? user.username : 'unknown',
      source,
      action: 'login',
      ...(user ? { target: `user:${user.username}` } : {}),
      outcome: 'denied',
      details: { reason: user ? 'wrong-password' : 'unknown-user' },
    });
    throw authenticationFailure('login');
  }
  await ctx.store.clearLoginFailures(keys[0]!);

  const sessionToken = newSessionToken();
  const now = ctx.now().getTime();
  const expiresAt = new Date(now + p.sessionAbsoluteMs).toISOString();
  const idleExpiresAt = new Date(Math.min(now + p.sessionIdleMs, now + p.sessionAbsoluteMs));
  const at = new Date(now).toISOString();
  await ctx.store.putSession({
    idHash: sessionIdHash(sessionToken)!,
    username: user.username,
    role: user.role,
    source,
    createdAt: at,
    lastUsedAt: at,
    idleExpiresAt: idleExpiresAt.toISOString(),
    expiresAt,
  });
  await ctx.store.appendAudit({
    actor: user.username,
    source,
    action: 'login',
    target: `user:${user.username}`,
    outcome: 'done',
    details: { role: user.role, expiresAt },
  });
  return {
    sessionToken,
    expiresAt,
    idleExpiresAt: idleExpiresAt.toISOString(),
    username: user.username,
    role: user.role,
    mustChangePassword: user.mustChangePassword,
  };
}
