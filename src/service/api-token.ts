/**
 * The text of an API token, parsed here:
 *
 *     ckt_<id>_<secret>
 *
 * `id` is 8 random bytes and `secret` 32 random bytes, both base64url without padding
 * (11 and 43 characters), so a token is always 59 characters. Base64url has `_` among
 * its characters, so the text is cut at fixed positions, never split at `_`. The id is
 * the store's key (public: it is in the audit log and the token list); only the SHA-256
 * of the secret is stored.
 */
import { randomSecret } from './secret-token.js';

const API_TOKEN = /^ckt_([A-Za-z0-9_-]{11})_([A-Za-z0-9_-]{43})$/;

/** A new token's id, secret and text. */
export function newApiToken(): { id: string; secret: string; text: string } {
  const id = randomSecret(8);
  const secret = randomSecret(32);
  return { id, secret, text: `ckt_${id}_${secret}` };
}

/** The id and secret of a token's text, or undefined when it is not one. */
export function parseApiToken(text: unknown): { id: string; secret: string } | undefined {
  if (typeof text !== 'string') return undefined;
  const match = API_TOKEN.exec(text);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}
