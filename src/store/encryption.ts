import {
  createCipheriv,
  createDecipheriv,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { StoreError } from './store.js';

/** The length of the master key: AES-256. */
export const MASTER_KEY_BYTES = 32;

/** The row a sealed value belongs to; it is the associated data, so values can't be moved. */
export type SealContext =
  | { kind: 'entry-key'; alias: string }
  | { kind: 'secret'; name: string }
  | { kind: 'runtime-secret'; name: string }
  | { kind: 'key-check' };

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;
const HKDF_SALT = Buffer.from('certkeeper', 'utf8');
const HKDF_INFO = Buffer.from('certkeeper store AES-256-GCM v1', 'utf8');
const KEY_CHECK_PLAIN = Buffer.from('certkeeper master key check v1', 'utf8');

/**
 * Encryption at rest of private keys and secrets (DESIGN.md layer 2, "Private keys are
 * encrypted at rest"). A sealed value is
 *
 *     version (1 byte, 0x01) ‖ IV (12 random bytes) ‖ GCM tag (16 bytes) ‖ ciphertext
 *
 * encrypted with AES-256-GCM under a key derived from the master key with HKDF-SHA256
 * (so the master key itself is never used directly and can serve other purposes later).
 * The associated data is the version byte and the row the value belongs to
 * (`entry-key:<alias>`, `secret:<name>`, `key-check`): a value copied into another row,
 * truncated, or given another version byte fails to open with `StoreCorrupt`.
 *
 * The key check is a known constant sealed under the key; the store keeps it in its
 * `meta` table and opens it at start-up, so a wrong master key is `MasterKeyWrong` at once
 * rather than a failure on the first private key read.
 */
export class Sealer {
  #key: Buffer;

  constructor(masterKey: Uint8Array) {
    if (!(masterKey instanceof Uint8Array) || masterKey.length !== MASTER_KEY_BYTES) {
      throw new StoreError(
        'MasterKeyInvalid',
        `The master key must be ${MASTER_KEY_BYTES} bytes long.`,
      );
    }
    this.#key = Buffer.from(hkdfSync('sha256', masterKey, HKDF_SALT, HKDF_INFO, 32));
  }

  seal(plain: Uint8Array, context: SealContext): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(context));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
  }

  /** The plain bytes of a sealed value; `StoreCorrupt` when it fails its integrity check. */
  open(sealed: Uint8Array, context: SealContext): Buffer {
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (bytes.length < HEADER_BYTES || bytes[0] !== VERSION) {
      throw corrupt(context, bytes.length < HEADER_BYTES ? 'it is truncated' : 'unknown version');
    }
    const iv = bytes.subarray(1, 1 + IV_BYTES);
    const tag = bytes.subarray(1 + IV_BYTES, HEADER_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(context));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(bytes.subarray(HEADER_BYTES)), decipher.final()]);
    } catch (err) {
      throw corrupt(context, 'the authentication tag does not verify', err);
    }
  }

  /** A fresh check value for this key (random IV, so two stores never share one). */
  keyCheck(): Buffer {
    return this.seal(KEY_CHECK_PLAIN, { kind: 'key-check' });
  }

  /** True when `check` was made by `keyCheck()` under the same master key. */
  matchesKeyCheck(check: Uint8Array): boolean {
    try {
      const plain = this.open(check, { kind: 'key-check' });
      return plain.length === KEY_CHECK_PLAIN.length && timingSafeEqual(plain, KEY_CHECK_PLAIN);
    } catch {
      return false;
    }
  }

  /** Overwrites the derived key; the sealer is unusable afterwards. */
  destroy(): void {
    this.#key.fill(0);
  }
}

function associatedData(context: SealContext): Buffer {
  const row =
    context.kind === 'entry-key'
      ? `entry-key:${context.alias}`
      : context.kind === 'secret' || context.kind === 'runtime-secret'
        ? `${context.kind}:${context.name}`
        : 'key-check';
  return Buffer.concat([Buffer.from([VERSION]), Buffer.from(row, 'utf8')]);
}

function corrupt(context: SealContext, why: string, cause?: unknown): StoreError {
  const what =
    context.kind === 'entry-key'
      ? `the private key of entry "${context.alias}"`
      : context.kind === 'secret' || context.kind === 'runtime-secret'
        ? `the secret "${context.name}"`
        : 'the master key check value';
  return new StoreError(
    'StoreCorrupt',
    `The encrypted data of ${what} does not open (${why}): it was altered, truncated or copied from another row.`,
    cause === undefined ? undefined : { cause },
  );
}
