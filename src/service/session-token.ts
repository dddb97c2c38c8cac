/**
 * The text of a session token: `cks_` and 32 random bytes in base64url (43 characters).
 * The prefix tells it apart from an API token (`ckt_`) in an `Authorization` header and
 * lets secret scanners find a leaked one. The store keeps only `sessionIdHash` of it.
 */
import { randomSecret, secretHash } from './secret-token.js';

const PREFIX = 'cks_';
const SESSION_TOKEN = /^cks_[A-Za-z0-9_-]{43}$/;

/** A new session token. */
export function newSessionToken(): string {
  return `${PREFIX}${randomSecret(32)}`;
}

/** The store's id of a session: SHA-256 of its secret, or undefined for text that is not a token. */
export function sessionIdHash(token: unknown): string | undefined {
  if (typeof token !== 'string' || !SESSION_TOKEN.test(token)) return undefined;
  return secretHash(token.slice(PREFIX.length));
}
