import { timingSafeEqual } from 'node:crypto';
import { parseApiToken } from './api-token.js';
import { type Authentication, authenticationFailure, checkSource } from './authentication.js';
import type { ServiceContext } from './context.js';
import { lowerRole } from './roles.js';
import { secretHash } from './secret-token.js';

export interface AuthenticateTokenInput {
  /** The token text (`ckt_<id>_<secret>`), e.g. from `Authorization: Bearer`. */
  token: string;
  /** Where this request came from. */
  source: string;
}

/**
 * The principal of an API token, or `AuthenticationFailure` (one sentence whatever the
 * reason) when the text is not a token, its id is unknown, its secret does not match
 * (compared in constant time), it has expired, or its user was removed. The principal's
 * actor is `token:<id>` and its role the lower of the token's and its user's current
 * role (see `Authentication`).
 */
export async function authenticateToken(
  ctx: ServiceContext,
  input: AuthenticateTokenInput,
): Promise<Authentication & { via: 'token'; tokenId: string }> {
  const source = checkSource(input.source);
  const parsed = parseApiToken(input.token);
  if (!parsed) throw authenticationFailure('token');
  const token = await ctx.store.getToken(parsed.id);
  const presented = Buffer.from(secretHash(parsed.secret), 'hex');
  const stored = token ? Buffer.from(token.secretHash, 'hex') : Buffer.alloc(presented.length);
  const matches =
    token !== undefined && stored.length === presented.length && timingSafeEqual(stored, presented);
  if (!token || !matches) throw authenticationFailure('token');
  if (token.expiresAt !== null && ctx.now().getTime() >= Date.parse(token.expiresAt)) {
    throw authenticationFailure('token');
  }
  const user = await ctx.store.getUser(token.username);
  if (!user) throw authenticationFailure('token');
  return {
    principal: { actor: `token:${token.id}`, role: lowerRole(token.role, user.role), source },
    username: user.username,
    via: 'token',
    tokenId: token.id,
    // The token is its own credential: its user's pending password change is not its concern.
    mustChangePassword: false,
    expiresAt: token.expiresAt,
  };
}
