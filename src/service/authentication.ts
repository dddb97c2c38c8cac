import { ServiceError } from './errors.js';
import type { Principal } from './principal.js';

/**
 * Who a request is, as `authenticateSession` and `authenticateToken` find it: the
 * principal to hand to every write, and what a front end needs to decide what to allow.
 *
 * The principal's actor is the user name for a session (`alice`) and `token:<id>` for an
 * API token: token names are labels a person chooses and need not be unique, while the id
 * is what the token text carries and what `revokeToken` takes, so the audit log names
 * exactly one token (`listTokens` maps the id to its name and user). Its role is the
 * user's role as stored now (for a token, the lower of the token's and its user's), so
 * a user whose role is lowered loses the higher one at the next request.
 */
export interface Authentication {
  principal: Principal;
  /** The user the session or token belongs to. */
  username: string;
  via: 'session' | 'token';
  /** The API token's id (`via: 'token'`). */
  tokenId?: string;
  /** The user must change their password before doing anything else. */
  mustChangePassword: boolean;
  /** When the session or token ends at the latest (null: a token that does not expire). */
  expiresAt: string | null;
}

/**
 * `AuthenticationFailure`, with one sentence per kind of credential that never says what
 * was wrong (an unknown user and a wrong password read the same).
 */
export function authenticationFailure(kind: 'login' | 'session' | 'token'): ServiceError {
  const message = {
    login: 'The user name or password is not right.',
    session: 'The session is unknown or has ended; log in again.',
    token: 'The API token is unknown, expired or revoked.',
  }[kind];
  return new ServiceError('AuthenticationFailure', message);
}

/** Throws `InvalidPrincipal` unless `source` names where a request came from. */
export function checkSource(source: unknown): string {
  if (typeof source !== 'string' || source === '') {
    throw new ServiceError(
      'InvalidPrincipal',
      'An authentication needs the source it came from (a client address, cli).',
    );
  }
  return source;
}
