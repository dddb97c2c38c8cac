import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CodedError } from '../../src/core/errors.js';
import { MAX_INPUT_BYTES } from '../../src/core/read.js';
import { readInputFile } from '../../src/service/read-input-file.js';
import { tempDir } from '../support/tools.js';

/** Asserts that reading `path` fails with `code` and a message that names the path. */
async function refuses(path: string, code: string, what?: RegExp): Promise<void> {
  await assert.rejects(readInputFile(path), (err: unknown) => {
    assert.ok(err instanceof CodedError, `expected a coded error, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(path), `"${err.message}" names ${path}`);
    if (what) assert.match(err.message, what);
    return true;
  });
}

describe('readInputFile', () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  after(cleanup);

  it('reads a regular file, and follows a symbolic link to one', async () => {
    writeFileSync(at('a.pem'), 'hello');
    symlinkSync(at('a.pem'), at('link.pem'));
    assert.equal((await readInputFile(at('a.pem'))).toString(), 'hello');
    assert.equal((await readInputFile(at('link.pem'))).toString(), 'hello');
  });

  it('reads a file of exactly the limit, and refuses one byte more with InputTooLarge', async () => {
    writeFileSync(at('limit.bin'), Buffer.alloc(MAX_INPUT_BYTES, 1));
    assert.equal((await readInputFile(at('limit.bin'))).length, MAX_INPUT_BYTES);
    writeFileSync(at('over.bin'), Buffer.alloc(MAX_INPUT_BYTES + 1, 1));
    await refuses(at('over.bin'), 'InputTooLarge', /1048577 bytes/);
    assert.equal((await readInputFile(at('over.bin'), { limit: 2 << 20 })).length, 1048577);
  });

  it('refuses a sparse 3 GB file from its size, without reading it', async () => {
    writeFileSync(at('sparse.bin'), '');
    truncateSync(at('sparse.bin'), 3e9);
    const start = performance.now();
    await refuses(at('sparse.bin'), 'InputTooLarge', /3000000000 bytes/);
    assert.ok(performance.now() - start < 1000, 'refused at once');
  });

  it('refuses a directory, a FIFO and a device, naming what each is', async () => {
    mkdirSync(at('dir'));
    await refuses(at('dir'), 'FileUnreadable', /a directory/);
    execFileSync('mkfifo', [at('fifo')]);
    await refuses(at('fifo'), 'FileUnreadable', /FIFO/);
    await refuses('/dev/zero', 'FileUnreadable', /character device/);
  });

  it('says a missing file, a symlink loop and a path through a file in words', async () => {
    await refuses(at('missing.pem'), 'FileUnreadable', /does not exist/);
    symlinkSync(at('loop-b'), at('loop-a'));
    symlinkSync(at('loop-a'), at('loop-b'));
    await refuses(at('loop-a'), 'FileUnreadable', /loop of symbolic links/);
    await refuses(join(at('a.pem'), 'x'), 'FileUnreadable', /not a directory/);
  });

  // A file it may not read: test/cli/unreadable-inputs.test.ts, which runs the CLI as
  // nobody when the tests run as root (chmod 000 does not stop root).

  it('keeps a path with a newline on one line', async () => {
    await assert.rejects(readInputFile(at('a\nb')), (err: Error) => !err.message.includes('\n'));
  });
});
