import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { link, open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MASTER_KEY_BYTES } from './encryption.js';
import { StoreError } from './store.js';

/** The environment variable that carries the master key (hex or base64 of 32 bytes). */
export const MASTER_KEY_ENV = 'CERTKEEPER_MASTER_KEY';
/** The key file's name inside the data directory. */
export const MASTER_KEY_FILE = 'master.key';

export interface LoadMasterKeyOptions {
  /** The data directory that holds (or will hold) `master.key`. The caller creates it. */
  dataDir: string;
  /** Where `CERTKEEPER_MASTER_KEY` is read; `process.env` unless given. */
  env?: NodeJS.ProcessEnv;
  /**
   * True only when the store is new, i.e. holds no encrypted data yet (for SQLite ask
   * `sqliteStoreIsNew(path)`). Then a missing key file is created; otherwise a missing key
   * is `MasterKeyMissing`, so a new key is never made silently over existing data.
   */
  create: boolean;
}

/**
 * The 32-byte master key that encrypts private keys at rest, from, in this order:
 *
 * 1. `CERTKEEPER_MASTER_KEY` — 64 hex digits or base64 (standard or URL-safe) of 32
 *    bytes; anything else is `MasterKeyInvalid`. An empty value counts as unset.
 * 2. `<dataDir>/master.key` — 32 raw bytes (or the same hex/base64 text, for a file an
 *    administrator wrote). It must not be readable by group or others: such a file is
 *    `MasterKeyInsecure`, naming the file and `chmod 600`.
 * 3. When `create` is true: 32 random bytes written to a new `master.key`, mode 0600,
 *    atomically (temporary file, fsync, hard link, so that two processes starting at once
 *    end up with the same key and a crash never leaves a partial file).
 *
 * Otherwise `MasterKeyMissing`. Whether the key matches the store is checked by the
 * store when it opens (`MasterKeyWrong`).
 */
export async function loadMasterKey(options: LoadMasterKeyOptions): Promise<Buffer> {
  const env = options.env ?? process.env;
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const key = decodeKeyText(fromEnv);
    if (!key) {
      throw new StoreError(
        'MasterKeyInvalid',
        `${MASTER_KEY_ENV} must be ${MASTER_KEY_BYTES} bytes written as 64 hex digits or as base64 (for example the output of \`openssl rand -base64 32\`).`,
      );
    }
    return key;
  }

  const path = join(options.dataDir, MASTER_KEY_FILE);
  const existing = await readKeyFile(path);
  if (existing) return existing;
  if (!options.create) {
    throw new StoreError(
      'MasterKeyMissing',
      `The store holds encrypted data but there is no master key: ${path} does not exist and ${MASTER_KEY_ENV} is not set. Restore the key file (mode 0600) or set ${MASTER_KEY_ENV}; certkeeper never makes a new key over existing data.`,
    );
  }
  return createKeyFile(path);
}

/** 64 hex digits, or base64/base64url of exactly 32 bytes; undefined for anything else. */
function decodeKeyText(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(t) && !/^[A-Za-z0-9_-]{43}=?$/.test(t)) return undefined;
  const standard = t.replace(/-/g, '+').replace(/_/g, '/').replace(/=$/, '');
  const key = Buffer.from(standard, 'base64');
  // Node ignores stray trailing bits: accept only the canonical spelling of 32 bytes.
  if (key.length !== MASTER_KEY_BYTES || key.toString('base64').replace(/=$/, '') !== standard) {
    return undefined;
  }
  return key;
}

/**
 * The most a key file may hold: 32 raw bytes, or their hex or base64 text with some
 * whitespace. Anything larger is refused from its size, never read.
 */
const MAX_KEY_FILE_BYTES = 4096;

/**
 * The key in `path`, undefined when the file does not exist. Only a regular file of at
 * most {@link MAX_KEY_FILE_BYTES} is read (a directory, FIFO or device is refused from
 * its type, a larger file from its size), so a wrong path can't block or fill memory.
 */
async function readKeyFile(path: string): Promise<Buffer | undefined> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(path, err);
  }
  refuseUnusable(path, info);
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new StoreError(
      'MasterKeyInsecure',
      `The master key file ${path} has mode ${mode}: it must be readable by its owner only. Run \`chmod 600 ${path}\`.`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = await readBounded(path);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw unreadable(path, err);
  }
  if (bytes.length === MASTER_KEY_BYTES) return bytes;
  const key = decodeKeyText(bytes.toString('latin1'));
  if (key) return key;
  throw new StoreError(
    'MasterKeyInvalid',
    `The master key file ${path} must hold ${MASTER_KEY_BYTES} raw bytes, 64 hex digits or base64 of ${MASTER_KEY_BYTES} bytes; it holds ${bytes.length} bytes of something else.`,
  );
}

/** `MasterKeyInvalid` unless `info` is a regular file of at most MAX_KEY_FILE_BYTES. */
function refuseUnusable(path: string, info: Stats): void {
  if (!info.isFile()) {
    throw new StoreError('MasterKeyInvalid', `The master key file ${path} is not a regular file.`);
  }
  if (info.size > MAX_KEY_FILE_BYTES) {
    throw new StoreError(
      'MasterKeyInvalid',
      `The master key file ${path} is ${info.size} bytes; a key file holds ${MASTER_KEY_BYTES} bytes or their text, at most ${MAX_KEY_FILE_BYTES} bytes.`,
    );
  }
}

/**
 * At most MAX_KEY_FILE_BYTES + 1 bytes of `path`, checked again on the open file: it
 * may have been replaced since the stat. O_NONBLOCK keeps a FIFO put there meanwhile
 * from blocking the open (the fstat then refuses it).
 */
async function readBounded(path: string): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    refuseUnusable(path, await handle.stat());
    const buffer = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_KEY_FILE_BYTES) {
      throw new StoreError(
        'MasterKeyInvalid',
        `The master key file ${path} grew past ${MAX_KEY_FILE_BYTES} bytes while it was read.`,
      );
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

async function createKeyFile(path: string): Promise<Buffer> {
  const key = randomBytes(MASTER_KEY_BYTES);
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(key);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      // link() fails when master.key exists: a process that started at the same time won.
      await link(temporary, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const theirs = await readKeyFile(path);
      if (theirs) return theirs;
      throw err;
    }
    await syncDirectory(join(path, '..'));
    return key;
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(
      'StoreUnavailable',
      `Cannot create the master key file ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

/** Makes a new directory entry durable (a no-op where directories can't be opened). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms and file systems refuse fsync on a directory; the file itself is synced.
  } finally {
    await handle?.close();
  }
}

function unreadable(path: string, cause: unknown): StoreError {
  return new StoreError(
    'StoreUnavailable',
    `Cannot read the master key file ${path}: ${(cause as Error).message}`,
    { cause },
  );
}
