import { join } from 'node:path';
import Database from 'better-sqlite3';
import { STORE_FILE } from '../../src/store/data-dir.js';

/** Flips the last byte of an entry's encrypted key in the data directory, as a damaged disk would. */
export function corruptStoredKey(dataDir: string, alias: string): void {
  const db = new Database(join(dataDir, STORE_FILE));
  try {
    const row = db.prepare('SELECT private_key FROM entries WHERE alias = ?').get(alias) as {
      private_key: Buffer;
    };
    row.private_key[row.private_key.length - 1]! ^= 0xff;
    db.prepare('UPDATE entries SET private_key = ? WHERE alias = ?').run(row.private_key, alias);
  } finally {
    db.close();
  }
}
