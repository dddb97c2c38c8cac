import { type AuthPolicy, authPolicy } from './auth-policy.js';
import { type Authentication, authenticationFailure, checkSource } from './authentication.js';
import type { ServiceContext } from './context.js';
import { sessionIdHash } from './session-token.js';

export interface AuthenticateSessionInput {
  /** The session token `login` returned (`cks_…`). */
  token: string;
  /** Where this request came from (the principal's source; may differ from the login's). */
  source: string;
}

export interface SessionAuthentication extends Authentication {
  via: 'session';
  /** The idle limit after this use. */
  idleExpiresAt: string;
}

/**
 * The principal of a session token, or `AuthenticationFailure` when the token is not
 * one, is unknown, or has passed its idle or absolute limit (the ended session is then
 * deleted), or its user was removed. A use moves the idle limit (never past the absolute
 * one), written at most once per `touchIntervalMs` so a busy session does not write on
 * every request. The store is looked up by the SHA-256 of the secret, so its timing says
 * nothing about any stored secret.
 */
export async function authenticateSession(
  ctx: ServiceContext,
  input: AuthenticateSessionInput,
  policy: Partial<AuthPolicy> = {},
): Promise<SessionAuthentication> {
  const p = authPolicy(policy);
  const source = checkSource(input.source);
  const idHash = sessionIdHash(input.token);
  if (idHash === undefined) throw authenticationFailure('session');
  const session = await ctx.store.getSession(idHash);
  if (!session) throw authenticationFailure('session');
  const now = ctx.now().getTime();
  if (now >= Date.parse(session.idleExpiresAt) || now >= Date.parse(session.expiresAt)) {
    await ctx.store.deleteSession(idHash);
    throw authenticationFailure('session');
  }
  const user = await ctx.store.getUser(session.username);
  if (!user) {
    await ctx.store.deleteSession(idHash);
    throw authenticationFailure('session');
  }
  let idleExpiresAt = session.idleExpiresAt;
  if (now - Date.parse(session.lastUsedAt) >= p.touchIntervalMs) {
    idleExpiresAt = new Date(
      Math.min(now + p.sessionIdleMs, Date.parse(session.expiresAt)),
    ).toISOString();
    const touched = await ctx.store.touchSession(
      idHash,
      new Date(now).toISOString(),
      idleExpiresAt,
    );
    if (!touched) throw authenticationFailure('session'); // ended meanwhile (logout, removal)
  }
  return {
    principal: { actor: user.username, role: user.role, source },
    username: user.username,
    via: 'session',
    mustChangePassword: user.mustChangePassword,
    expiresAt: session.expiresAt,
    idleExpiresAt,
  };
}
