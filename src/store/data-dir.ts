import { constants } from 'node:fs';
import { access, chmod, lstat, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadMasterKey, MASTER_KEY_FILE } from './master-key.js';
import { createSqliteStoreFile, openSqliteStore, sqliteStoreState } from './sqlite.js';
import { type Store, StoreError } from './store.js';

/** The store file inside a data directory. */
export const STORE_FILE = 'certkeeper.db';

export interface OpenDataDirOptions {
  /**
   * Create the data directory (mode 0700) when it does not exist: `certkeeper serve`
   * does, `certkeeper import` only with `--init`. Otherwise a missing directory is
   * `DataDirMissing`, so a typo in `--data-dir` never starts a new, empty store.
   */
  create?: boolean;
  pollIntervalMs?: number;
  now?: () => Date;
}

/**
 * Opens the store of a data directory for a command that writes to it. On first use it
 * makes the store file, then the master key (in that order, see below). It never
 * re-initialises anything:
 *
 * - a directory that does not exist is `DataDirMissing` unless `create` is set;
 * - a directory open to group or others is tightened to its owner only (0755 becomes
 *   0700), or refused with `DataDirInsecure` when that is not allowed; one certkeeper
 *   can't write to is `StoreReadOnly`;
 * - `master.key` beside a missing or empty `certkeeper.db` is `StoreMissing`: the store
 *   was deleted or truncated, and a new one would silently lose every entry;
 * - a wrong or missing master key for existing data is `MasterKeyWrong` or
 *   `MasterKeyMissing`.
 *
 * The store file gets its schema before `master.key` is created, and the key file's
 * presence is read before the store's state: so a first start interrupted at any instant,
 * or a second process starting at the same time, never looks like a lost store.
 */
export async function openDataDir(
  dataDir: string,
  env: Record<string, string | undefined>,
  options: OpenDataDirOptions = {},
): Promise<Store> {
  const { create = false, ...storeOptions } = options;
  await prepareDirectory(dataDir, create);
  const path = join(dataDir, STORE_FILE);
  const hasKeyFile = await exists(join(dataDir, MASTER_KEY_FILE));
  const state = await sqliteStoreState(path);
  if (state === 'absent') {
    if (hasKeyFile) throw storeMissing(dataDir, path);
    createSqliteStoreFile(path);
  }
  const masterKey = await loadMasterKey({ dataDir, env, create: state !== 'keyed' });
  return openSqliteStore({ path, masterKey, ...storeOptions });
}

/** Makes sure `dir` is a directory that only its owner can enter, and that we can write. */
async function prepareDirectory(dir: string, create: boolean): Promise<void> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unusable(dir, err);
    if (!create) {
      throw new StoreError(
        'DataDirMissing',
        `The data directory ${dir} does not exist. Check --data-dir (or CERTKEEPER_DATA_DIR); to start a new store there, create it with \`certkeeper serve\` or pass --init.`,
      );
    }
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      info = await stat(dir);
    } catch (cause) {
      if (!isReadOnly(cause)) throw unusable(dir, cause);
      throw new StoreError(
        'StoreReadOnly',
        `Cannot create the data directory ${dir}: its parent is read-only for this process (${(cause as NodeJS.ErrnoException).code}). Create it as a user who may, or pick another --data-dir.`,
        { cause },
      );
    }
  }
  if (!info.isDirectory()) {
    throw new StoreError(
      'StoreUnavailable',
      `The data directory ${dir} is not a directory; point --data-dir at a directory.`,
    );
  }
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    try {
      // Keep the owner's bits; take group's and others' away.
      await chmod(dir, info.mode & 0o700);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'EROFS') throw readOnly(dir, cause);
      const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
      throw new StoreError(
        'DataDirInsecure',
        `The data directory ${dir} has mode ${mode}: it holds the master key and must be open to its owner only, and certkeeper could not change it (${(cause as NodeJS.ErrnoException).code}). Run \`chmod 700 ${dir}\` as its owner.`,
        { cause },
      );
    }
  }
  for (const path of [dir, ...[STORE_FILE, `${STORE_FILE}-wal`].map((f) => join(dir, f))]) {
    if (path !== dir && !(await exists(path))) continue;
    try {
      await access(path, constants.W_OK);
    } catch (cause) {
      throw isReadOnly(cause) ? readOnly(path, cause) : unusable(path, cause);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw unusable(path, err);
  }
}

function isReadOnly(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'EACCES' || code === 'EROFS';
}

function readOnly(path: string, cause: unknown): StoreError {
  const code = (cause as NodeJS.ErrnoException).code;
  const user = process.getuid ? ` (uid ${process.getuid()})` : '';
  return new StoreError(
    'StoreReadOnly',
    `${path} is read-only for this process${user} (${code}): certkeeper writes its store and master key there. Make it writable by the user certkeeper runs as, or mount it read-write.`,
    { cause },
  );
}

function unusable(path: string, cause: unknown): StoreError {
  return new StoreError(
    'StoreUnavailable',
    `Cannot use the data directory ${path}: ${(cause as Error).message}`,
    { cause },
  );
}

function storeMissing(dir: string, path: string): StoreError {
  return new StoreError(
    'StoreMissing',
    `The data directory ${dir} has a master key (${MASTER_KEY_FILE}) but no store: ${path} is missing or empty. Restore ${STORE_FILE} from your backup into ${dir}; or, to start a new empty store deliberately (every entry is lost), remove ${join(dir, MASTER_KEY_FILE)}. certkeeper never re-initialises a store on its own.`,
  );
}
