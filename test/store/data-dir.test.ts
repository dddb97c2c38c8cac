import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openDataDir, STORE_FILE } from '../../src/store/data-dir.js';
import { MASTER_KEY_FILE } from '../../src/store/master-key.js';
import { createSqliteStoreFile, sqliteStoreState } from '../../src/store/sqlite.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';
import { rejectsWith } from './store-suite.js';

const mode = (path: string) => statSync(path).mode & 0o777;

/** Opens and closes the store of `dir`, as one command run would. */
async function openAndClose(dir: string, options: { create?: boolean } = {}): Promise<void> {
  const store = await openDataDir(dir, {}, options);
  await store.close();
}

describe('openDataDir', () => {
  let parent: string;
  let dataDir: string;
  let cleanup: () => void;
  beforeEach(() => {
    ({ dir: parent, cleanup } = tempDir('certkeeper-datadir-'));
    dataDir = join(parent, 'data');
  });
  afterEach(() => cleanup());

  it('creates the directory 0700, the store and a 0600 master key when asked to', async () => {
    await openAndClose(dataDir, { create: true });
    assert.equal(mode(dataDir), 0o700);
    assert.equal(mode(join(dataDir, MASTER_KEY_FILE)), 0o600);
    assert.equal(await sqliteStoreState(join(dataDir, STORE_FILE)), 'keyed');
  });

  it('refuses a directory that does not exist unless asked to create it (DataDirMissing), creating nothing', async () => {
    const err = await rejectsWith(openDataDir(dataDir, {}), 'DataDirMissing');
    assert.match(err.message, /--init/);
    assert.ok(err.message.includes(dataDir));
    assert.deepEqual(readdirSync(parent), []);
  });

  it('opens an existing store again with its key', async () => {
    await openAndClose(dataDir, { create: true });
    const key = readFileSync(join(dataDir, MASTER_KEY_FILE));
    await openAndClose(dataDir);
    assert.ok(readFileSync(join(dataDir, MASTER_KEY_FILE)).equals(key));
  });

  describe('a master key without its store (StoreMissing), never re-initialised', () => {
    beforeEach(async () => {
      await openAndClose(dataDir, { create: true });
    });

    it('refuses a store truncated to 0 bytes, and leaves it untouched', async () => {
      const path = join(dataDir, STORE_FILE);
      truncateSync(path);
      const before = readdirSync(dataDir).sort();
      const mtime = statSync(path).mtimeMs;
      const err = await rejectsWith(openDataDir(dataDir, {}, { create: true }), 'StoreMissing');
      assert.ok(err.message.includes(path), err.message);
      assert.match(err.message, /backup/);
      assert.match(err.message, /remove .*master\.key/);
      assert.equal(statSync(path).size, 0);
      assert.equal(statSync(path).mtimeMs, mtime);
      assert.deepEqual(readdirSync(dataDir).sort(), before, 'no file created (no WAL, no journal)');
    });

    it('refuses a deleted store, and creates none', async () => {
      unlinkSync(join(dataDir, STORE_FILE));
      await rejectsWith(openDataDir(dataDir, {}, { create: true }), 'StoreMissing');
      assert.equal(existsSync(join(dataDir, STORE_FILE)), false);
    });

    it('starts a new store once master.key is removed deliberately', async () => {
      unlinkSync(join(dataDir, STORE_FILE));
      unlinkSync(join(dataDir, MASTER_KEY_FILE));
      await openAndClose(dataDir);
      assert.equal(await sqliteStoreState(join(dataDir, STORE_FILE)), 'keyed');
    });
  });

  it('starts a new store with CERTKEEPER_MASTER_KEY and no key file, writing no key file', async () => {
    mkdirSync(dataDir, { mode: 0o700 });
    const env = { CERTKEEPER_MASTER_KEY: randomBytes(32).toString('hex') };
    await (await openDataDir(dataDir, env)).close();
    assert.equal(existsSync(join(dataDir, MASTER_KEY_FILE)), false);
    await (await openDataDir(dataDir, env)).close();
  });

  it('finishes a first start that stopped after the schema and before the key', async () => {
    mkdirSync(dataDir, { mode: 0o700 });
    createSqliteStoreFile(join(dataDir, STORE_FILE));
    assert.equal(await sqliteStoreState(join(dataDir, STORE_FILE)), 'unkeyed');
    await openAndClose(dataDir);
    assert.equal(mode(join(dataDir, MASTER_KEY_FILE)), 0o600);
  });

  it('tightens an existing 0755 directory to 0700', async () => {
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    await openAndClose(dataDir);
    assert.equal(mode(dataDir), 0o700);
  });

  describe('a directory this user does not own or cannot write', () => {
    // As root, a child process running as nobody; otherwise this process.
    const asRoot = process.getuid?.() === 0;
    const skip =
      process.platform === 'win32' ? 'POSIX permissions only' : (false as false | string);
    const NOBODY = 65534;

    /** The error code and message openDataDir gives, as a user that is not the owner. */
    function openAsOtherUser(dir: string): { code: string; message: string } {
      const script = `
        import { openDataDir } from ${JSON.stringify(join(REPO_ROOT, 'src/store/data-dir.ts'))};
        try { await (await openDataDir(${JSON.stringify(dir)}, {})).close(); console.log('{"code":"ok"}'); }
        catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
      const child = spawnSync(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { cwd: REPO_ROOT, encoding: 'utf8', ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}) },
      );
      assert.equal(child.status, 0, child.stderr);
      return JSON.parse(child.stdout.trim().split('\n').at(-1)!);
    }

    it('refuses a 0755 directory it may not tighten (DataDirInsecure), naming the fix', {
      skip,
    }, (t) => {
      // Root owns `parent`; nobody can't chmod it. Without root, `/` is someone else's.
      const dir = asRoot ? parent : '/';
      if (!asRoot && statSync(dir).uid === process.getuid?.()) {
        t.skip('no directory owned by another user to try');
        return;
      }
      chmodSync(parent, 0o755);
      if (!asRoot && (statSync(dir).mode & 0o077) === 0) {
        t.skip(`${dir} is not open to group or others`);
        return;
      }
      const before = mode(dir);
      const { code, message } = openAsOtherUser(dir);
      assert.equal(code, 'DataDirInsecure', message);
      assert.ok(message.includes(`chmod 700 ${dir}`), message);
      assert.equal(mode(dir), before);
      if (asRoot) assert.deepEqual(readdirSync(dir), []);
    });

    it('says a directory it cannot write to is read-only (StoreReadOnly)', { skip }, () => {
      chmodSync(parent, 0o755);
      mkdirSync(dataDir, { mode: 0o500 });
      chmodSync(dataDir, 0o500);
      if (asRoot) chownSync(dataDir, NOBODY, NOBODY);
      const { code, message } = openAsOtherUser(dataDir);
      assert.equal(code, 'StoreReadOnly', message);
      assert.ok(message.includes(dataDir), message);
      assert.match(message, /read-only/);
      chmodSync(dataDir, 0o700);
    });
  });
});
