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

/**
 * Damages one byte of an entry's PEM text column, as a damaged disk would: a letter near
 * the middle of the base64 body has its case bit flipped (`case`: still base64, other
 * DER bytes) or becomes `*` (`not-base64`). SQLite's `integrity_check` still passes
 * afterwards: only certkeeper's own checks can tell.
 */
export function flipStoredPemByte(
  dbPath: string,
  alias: string,
  column: 'certificate_pem' | 'chain_pem',
  how: 'case' | 'not-base64',
): void {
  const db = new Database(dbPath);
  try {
    const pem = db.prepare(`SELECT ${column} FROM entries WHERE alias = ?`).pluck().get(alias);
    if (typeof pem !== 'string') throw new Error(`no ${column} for ${alias}`);
    const bytes = Buffer.from(pem, 'latin1');
    let at = Math.floor(bytes.length / 2);
    while (!/[A-Za-z]/.test(String.fromCharCode(bytes[at]!))) at++;
    bytes[at] = how === 'case' ? bytes[at]! ^ 0x20 : '*'.charCodeAt(0);
    db.prepare(`UPDATE entries SET ${column} = ? WHERE alias = ?`).run(
      bytes.toString('latin1'),
      alias,
    );
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new Error(`integrity_check: ${check}`);
  } finally {
    db.close();
  }
}
