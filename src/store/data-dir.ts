import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadMasterKey } from './master-key.js';
import { openSqliteStore, sqliteStoreIsNew } from './sqlite.js';
import type { Store } from './store.js';

/** The store file inside a data directory. */
export const STORE_FILE = 'certkeeper.db';

/**
 * Opens the store of a data directory, creating the directory (mode 0700), the master
 * key and the database on first use. A wrong or missing master key for existing data is
 * a `StoreError`, never a silent reset.
 */
export async function openDataDir(
  dataDir: string,
  env: Record<string, string | undefined>,
  options: { pollIntervalMs?: number; now?: () => Date } = {},
): Promise<Store> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (!(await stat(dataDir)).isDirectory()) throw new Error(`${dataDir} is not a directory`);
  const path = join(dataDir, STORE_FILE);
  const masterKey = await loadMasterKey({ dataDir, env, create: await sqliteStoreIsNew(path) });
  return openSqliteStore({ path, masterKey, ...options });
}
