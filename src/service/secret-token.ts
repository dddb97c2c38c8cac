/**
 * The random secrets certkeeper hands out once (session tokens, API tokens, one-time
 * passwords) and the hashes it keeps of them.
 */
import { createHash, randomBytes } from 'node:crypto';

/** `bytes` random bytes as base64url without padding. */
export function randomSecret(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * SHA-256 of a secret, hex: what the store keeps of a session or API token. A secret of
 * 256 random bits needs no slow hash (nothing to guess from its hash, unlike a password),
 * and a fast one keeps every authenticated request cheap.
 */
export function secretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A one-time password for a new user: 20 base64url characters (120 random bits). */
export function oneTimePassword(): string {
  return randomSecret(15);
}
