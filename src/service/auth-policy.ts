import { type PasswordHasher, SCRYPT_HASHER } from './passwords.js';

/**
 * The limits of logins and sessions. Every front end uses the defaults unless its
 * configuration says otherwise; tests shorten them or watch the hasher.
 */
export interface AuthPolicy {
  /** A session ends when unused this long (default 30 minutes). */
  sessionIdleMs: number;
  /** A session ends this long after login, however much it is used (default 12 hours). */
  sessionAbsoluteMs: number;
  /**
   * A session's use is written at most once per this interval (default 1 minute), so a
   * busy session does not write on every request; the idle limit is that much coarser.
   */
  touchIntervalMs: number;
  /** Failed logins per user name within the window (default 5)… */
  maxFailures: number;
  /**
   * …and per source address (default 20: one address may be a whole office behind NAT, so
   * one person's typos must not lock out the others; it still stops a guesser trying names)…
   */
  maxAddressFailures: number;
  /** …before further logins are refused until the oldest leaves it (default 15 minutes). */
  failureWindowMs: number;
  hasher: PasswordHasher;
}

export const DEFAULT_AUTH_POLICY: Readonly<AuthPolicy> = {
  sessionIdleMs: 30 * 60_000,
  sessionAbsoluteMs: 12 * 3600_000,
  touchIntervalMs: 60_000,
  maxFailures: 5,
  maxAddressFailures: 20,
  failureWindowMs: 15 * 60_000,
  hasher: SCRYPT_HASHER,
};

/** The defaults with `overrides` applied; a limit that is not a positive integer is a bug. */
export function authPolicy(overrides: Partial<AuthPolicy> = {}): AuthPolicy {
  const policy = { ...DEFAULT_AUTH_POLICY, ...overrides };
  for (const key of [
    'sessionIdleMs',
    'sessionAbsoluteMs',
    'touchIntervalMs',
    'maxFailures',
    'maxAddressFailures',
    'failureWindowMs',
  ] as const) {
    if (!Number.isSafeInteger(policy[key]) || policy[key] <= 0) {
      throw new TypeError(`AuthPolicy.${key} must be a positive integer, not ${policy[key]}.`);
    }
  }
  return policy;
}
