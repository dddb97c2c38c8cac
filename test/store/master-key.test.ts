import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { loadMasterKey } from '../../src/store/master-key.js';
import { tempDir } from '../support/tools.js';
import { rejectsWith } from './store-suite.js';

describe('loadMasterKey', () => {
  let dir: string;
  let cleanup: () => void;
  let keyFile: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir('certkeeper-key-'));
    keyFile = join(dir, 'master.key');
  });
  afterEach(() => cleanup());

  describe('from CERTKEEPER_MASTER_KEY', () => {
    const key = randomBytes(32);
    const spellings: [string, string][] = [
      ['hex', key.toString('hex')],
      ['upper-case hex', key.toString('hex').toUpperCase()],
      ['base64', key.toString('base64')],
      ['base64 without padding', key.toString('base64').replace(/=$/, '')],
      ['base64url', key.toString('base64url')],
      ['base64 with a trailing newline', `${key.toString('base64')}\n`],
    ];
    for (const [what, value] of spellings) {
      it(`accepts ${what}`, async () => {
        const loaded = await loadMasterKey({
          dataDir: dir,
          env: { CERTKEEPER_MASTER_KEY: value },
          create: false,
        });
        assert.ok(loaded.equals(key));
      });
    }

    it('refuses anything that is not 32 bytes, without echoing it', async () => {
      const wrong = [
        randomBytes(31).toString('hex'),
        randomBytes(33).toString('hex'),
        randomBytes(24).toString('base64'),
        randomBytes(48).toString('base64'),
        `${key.toString('base64').slice(0, 42)}B=`, // 'B' sets the two padding bits
        'correct horse battery staple',
        `${key.toString('hex')}zz`,
      ];
      for (const value of wrong) {
        const err = await rejectsWith(
          loadMasterKey({ dataDir: dir, env: { CERTKEEPER_MASTER_KEY: value }, create: true }),
          'MasterKeyInvalid',
        );
        assert.match(err.message, /CERTKEEPER_MASTER_KEY/);
        assert.ok(!err.message.includes(value.trim()), 'the message does not leak the value');
      }
      assert.deepEqual(readdirSync(dir), [], 'no key file was made instead');
    });

    it('wins over the key file', async () => {
      writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
      const loaded = await loadMasterKey({
        dataDir: dir,
        env: { CERTKEEPER_MASTER_KEY: key.toString('hex') },
        create: false,
      });
      assert.ok(loaded.equals(key));
    });

    it('counts an empty value as unset', async () => {
      await rejectsWith(
        loadMasterKey({ dataDir: dir, env: { CERTKEEPER_MASTER_KEY: '' }, create: false }),
        'MasterKeyMissing',
      );
    });
  });

  describe('from master.key', () => {
    it('creates a 0600 file of 32 random bytes when allowed, atomically', async () => {
      const key = await loadMasterKey({ dataDir: dir, env: {}, create: true });
      assert.equal(key.length, 32);
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      assert.ok(readFileSync(keyFile).equals(key));
      assert.deepEqual(readdirSync(dir), ['master.key'], 'no temporary file is left behind');
      const again = await loadMasterKey({ dataDir: dir, env: {}, create: true });
      assert.ok(again.equals(key), 'an existing file is used, never replaced');
    });

    it('gives processes that create it at the same time the same key', async () => {
      const keys = await Promise.all(
        Array.from({ length: 8 }, () => loadMasterKey({ dataDir: dir, env: {}, create: true })),
      );
      for (const k of keys) assert.ok(k.equals(keys[0]!));
      assert.deepEqual(readdirSync(dir), ['master.key']);
    });

    it('is MasterKeyMissing when the store is not new, and makes no file', async () => {
      const err = await rejectsWith(
        loadMasterKey({ dataDir: dir, env: {}, create: false }),
        'MasterKeyMissing',
      );
      assert.ok(err.message.includes(keyFile));
      assert.deepEqual(readdirSync(dir), []);
    });

    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      it(`refuses a key file of mode 0${mode.toString(8)}, naming it and chmod 600`, async () => {
        writeFileSync(keyFile, randomBytes(32));
        chmodSync(keyFile, mode);
        const err = await rejectsWith(
          loadMasterKey({ dataDir: dir, env: {}, create: true }),
          'MasterKeyInsecure',
        );
        assert.ok(err.message.includes(keyFile));
        assert.match(err.message, /chmod 600/);
        assert.ok(readFileSync(keyFile).length === 32, 'the file is left alone');
      });
    }

    it('accepts an owner-only file of raw bytes, hex or base64 text', async () => {
      const key = randomBytes(32);
      for (const content of [key, `${key.toString('hex')}\n`, `${key.toString('base64')}\n`]) {
        writeFileSync(keyFile, content, { mode: 0o600 });
        chmodSync(keyFile, 0o400);
        assert.ok((await loadMasterKey({ dataDir: dir, env: {}, create: false })).equals(key));
        chmodSync(keyFile, 0o600);
      }
    });

    it('refuses a key file of the wrong size with MasterKeyInvalid', async () => {
      writeFileSync(keyFile, randomBytes(16), { mode: 0o600 });
      await rejectsWith(loadMasterKey({ dataDir: dir, env: {}, create: true }), 'MasterKeyInvalid');
    });

    it('refuses a directory in place of the key file', async () => {
      mkdirSync(keyFile, { mode: 0o700 });
      const err = await rejectsWith(
        loadMasterKey({ dataDir: dir, env: {}, create: true }),
        'MasterKeyInvalid',
      );
      assert.ok(err.message.includes(keyFile) && !err.message.includes('\n'), err.message);
    });

    it('refuses a FIFO and /dev/zero in place of the key file, from their type', async () => {
      execFileSync('mkfifo', ['-m', '600', keyFile]);
      let err = await rejectsWith(
        loadMasterKey({ dataDir: dir, env: {}, create: true }),
        'MasterKeyInvalid',
      );
      assert.match(err.message, /not a regular file/);
      rmSync(keyFile);
      symlinkSync('/dev/zero', keyFile);
      err = await rejectsWith(
        loadMasterKey({ dataDir: dir, env: {}, create: true }),
        'MasterKeyInvalid',
      );
      assert.ok(err.message.includes(keyFile) && !err.message.includes('\n'), err.message);
    });

    it('refuses a sparse 3 GB key file from its size, without reading it', async () => {
      writeFileSync(keyFile, '', { mode: 0o600 });
      truncateSync(keyFile, 3e9);
      const err = await rejectsWith(
        loadMasterKey({ dataDir: dir, env: {}, create: true }),
        'MasterKeyInvalid',
      );
      assert.ok(err.message.includes(keyFile), err.message);
      assert.match(err.message, /3000000000 bytes; .* at most 4096 bytes/);
      assert.equal(statSync(keyFile).size, 3e9, 'the file is left alone');
    });

    it('accepts key text with whitespace up to 4 KiB, and refuses one byte more', async () => {
      const key = randomBytes(32);
      const text = key.toString('hex');
      writeFileSync(keyFile, text.padEnd(4095, ' ').concat('\n'), { mode: 0o600 });
      assert.ok((await loadMasterKey({ dataDir: dir, env: {}, create: false })).equals(key));
      writeFileSync(keyFile, text.padEnd(4096, ' ').concat('\n'), { mode: 0o600 });
      await rejectsWith(
        loadMasterKey({ dataDir: dir, env: {}, create: false }),
        'MasterKeyInvalid',
      );
    });

    it('says so when the data directory does not exist', async () => {
      await rejectsWith(
        loadMasterKey({ dataDir: join(dir, 'missing'), env: {}, create: true }),
        'StoreUnavailable',
      );
    });
  });
});
