/**
 * Users' passwords: the policy a new password must meet, and scrypt hashing (RFC 7914)
 * with Node's asynchronous `crypto.scrypt`, so hashing never blocks the event loop.
 *
 * The stored format, parsed by `verifyPassword`:
 *
 *     scrypt$<N>$<r>$<p>$<salt, base64url>$<derived key, base64url>
 *
 * e.g. `scrypt$32768$8$1$q2…$Zx…`: cost N = 2^15, block size r = 8, parallelism p = 1
 * (32 MiB of memory and roughly 50–100 ms per hash), a 16-byte random salt and a 32-byte
 * key. The parameters travel with each hash, so raising them later leaves the old hashes
 * verifiable. The store refuses a `passwordHash` that does not start with `scrypt$`.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { ServiceError } from './errors.js';

/** The shortest password a user may have, in characters (Unicode code points). */
export const MIN_PASSWORD_LENGTH = 12;
/** The longest, so that the work of hashing a password stays bounded. */
export const MAX_PASSWORD_LENGTH = 1024;

const COST = 2 ** 15;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/**
 * What hashing and verifying cost, as an object the login path takes, so a test can
 * watch which hashes were verified (the dummy one for an unknown user) without timing.
 */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** True when `password` is the one `hash` was made from; false also for a malformed hash. */
  verify(password: string, hash: string): Promise<boolean>;
  /**
   * A hash of no one's password, made with the same parameters: verified for an unknown
   * user, so that an unknown user and a wrong password take the same time.
   */
  dummyHash(): Promise<string>;
}

/** The scrypt hasher every front end uses. */
export const SCRYPT_HASHER: PasswordHasher = {
  hash: hashPassword,
  verify: verifyPassword,
  dummyHash,
};

/** Hashes a password with scrypt and a new random salt, in the format above. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, {
    N: COST,
    r: BLOCK_SIZE,
    p: PARALLELISM,
  });
  return ['scrypt', COST, BLOCK_SIZE, PARALLELISM, b64(salt), b64(key)].join('$');
}

/**
 * True when `password` matches the stored `hash`, compared in constant time. A hash that
 * is not in the format above, or whose parameters exceed what certkeeper ever writes
 * (a damaged or planted row must not make a login allocate gigabytes), is false.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed) return false;
  const key = await derive(password, parsed.salt, parsed.key.length, parsed.params);
  return timingSafeEqual(key, parsed.key);
}

let dummy: Promise<string> | undefined;

/** A hash of a random password no one knows, made once per process. */
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(24).toString('base64url'));
  return dummy;
}

/**
 * Throws unless `password` may be `username`'s password: `PasswordTooShort` below 12
 * characters, `PasswordTooLong` above 1024, `PasswordMatchesUsername` when it is the user
 * name (in any case).
 */
export function checkPasswordPolicy(password: string, username: string): void {
  if (typeof password !== 'string') {
    throw new ServiceError('PasswordTooShort', 'A password is required.');
  }
  const length = [...password.normalize('NFC')].length;
  if (length < MIN_PASSWORD_LENGTH) {
    throw new ServiceError(
      'PasswordTooShort',
      `A password must be at least ${MIN_PASSWORD_LENGTH} characters long; this one has ${length}.`,
      { details: { minimum: MIN_PASSWORD_LENGTH } },
    );
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw new ServiceError(
      'PasswordTooLong',
      `A password must be at most ${MAX_PASSWORD_LENGTH} characters long; this one has ${length}.`,
      { details: { maximum: MAX_PASSWORD_LENGTH } },
    );
  }
  if (password.normalize('NFC').toLowerCase() === username.normalize('NFC').toLowerCase()) {
    throw new ServiceError(
      'PasswordMatchesUsername',
      `The password of "${username}" must not be the user name.`,
    );
  }
}

/** True when a password is too long to be any user's (see `MAX_PASSWORD_LENGTH`). */
export function exceedsPasswordLength(password: string): boolean {
  return password.length > MAX_PASSWORD_LENGTH * 2 || [...password].length > MAX_PASSWORD_LENGTH;
}

interface ParsedHash {
  params: { N: number; r: number; p: number };
  salt: Buffer;
  key: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  if (typeof hash !== 'string') return undefined;
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map((n) => (/^[1-9]\d{0,7}$/.test(n!) ? Number(n) : NaN));
  // Bounds: at most what certkeeper writes times a margin (N ≤ 2^17, 128 MiB with r = 8).
  if (!N || !r || !p || (N & (N - 1)) !== 0 || N > 2 ** 17 || r > 16 || p > 4) return undefined;
  if (128 * N * r > 256 * 1024 * 1024) return undefined;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const key = Buffer.from(parts[5]!, 'base64url');
  if (salt.length < 8 || key.length < 16 || key.length > 64) return undefined;
  return { params: { N, r, p }, salt, key };
}

function derive(
  password: string,
  salt: Buffer,
  length: number,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  // maxmem: scrypt needs about 128·N·r bytes; Node's default (32 MiB) is exactly that for
  // N = 2^15, r = 8, and refuses it, so allow twice the need.
  const options: ScryptOptions = { ...params, maxmem: 2 * 128 * params.N * params.r + 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function b64(bytes: Buffer): string {
  return bytes.toString('base64url');
}
