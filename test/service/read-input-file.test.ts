import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
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

/**
 * Bytes this process read through read(2) while `fn` ran, from /proc/self/io (`rchar`,
 * which counts every read, page cache or not); undefined where there is no /proc. Reading
 * /proc/self/io itself costs a few hundred bytes, hence {@link NOTHING_READ}.
 */
async function bytesReadDuring(fn: () => Promise<unknown>): Promise<number | undefined> {
  const rchar = (): number | undefined => {
    if (!existsSync('/proc/self/io')) return undefined;
    const line = readFileSync('/proc/self/io', 'utf8').match(/^rchar: (\d+)$/m);
    return line ? Number(line[1]) : undefined;
  };
  const before = rchar();
  await fn();
  const after = rchar();
  return before === undefined || after === undefined ? undefined : after - before;
}

/** Far below any limit (1 MiB), far above what reading /proc/self/io costs. */
const NOTHING_READ = 64 << 10;

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

  // How long a refusal takes is measured by `npm run bench:latency` (BENCHMARKS.md).
  it('refuses a sparse 3 GB file from its size, without reading it', async () => {
    writeFileSync(at('sparse.bin'), '');
    truncateSync(at('sparse.bin'), 3e9);
    const read = await bytesReadDuring(() =>
      refuses(at('sparse.bin'), 'InputTooLarge', /3000000000 bytes/),
    );
    if (read !== undefined) assert.ok(read < NOTHING_READ, `read ${read} bytes`);
  });

  it('refuses a directory, a FIFO nothing writes to and a device, at once, reading nothing', async () => {
    mkdirSync(at('dir'));
    execFileSync('mkfifo', [at('fifo')]);
    const started = performance.now();
    const read = await bytesReadDuring(async () => {
      await refuses(at('dir'), 'FileUnreadable', /a directory/);
      await refuses(at('fifo'), 'FileUnreadable', /named pipe \(FIFO\) that nothing writes to/);
      await refuses('/dev/zero', 'FileUnreadable', /character device/);
    });
    if (read !== undefined) assert.ok(read < NOTHING_READ, `read ${read} bytes`);
    assert.ok(performance.now() - started < 10_000, 'no wait for a writer that never comes');
  });

  describe('a pipe (`<(pass show web)`, standard input)', () => {
    /** A writer on the FIFO `name`: a shell that runs `script` with its output into it. */
    const writer = (name: string, script: string) => {
      execFileSync('mkfifo', [at(name)]);
      // Its own process group, so that killing it also ends what the shell started.
      const child = spawn('sh', ['-c', `{ ${script}; } > "$1"`, 'sh', at(name)], {
        stdio: 'ignore',
        detached: true,
      });
      return { done: once(child, 'exit'), kill: () => process.kill(-child.pid!, 'SIGKILL') };
    };

    it('reads what the writer writes, however slowly, until it closes the pipe', async () => {
      const w = writer('slow', 'printf "first "; sleep 0.3; printf second');
      // Opened once the shell holds the write end (it opens the FIFO before it prints).
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await readInputFile(at('slow'))).toString(), 'first second');
      await w.done;
    });

    it('refuses more than the limit with InputTooLarge, reading no more than the limit and a chunk', async () => {
      const w = writer('flood', 'head -c 5000000 /dev/zero');
      await new Promise((r) => setTimeout(r, 100));
      await refuses(at('flood'), 'InputTooLarge', /more than 1048576/);
      w.kill();
    });

    it('gives up on a writer that never closes it, after the timeout, naming the pipe', async () => {
      const w = writer('stuck', 'printf partial; sleep 30');
      await new Promise((r) => setTimeout(r, 100));
      const started = performance.now();
      await assert.rejects(readInputFile(at('stuck'), { timeoutMs: 300 }), (err: unknown) => {
        assert.ok(err instanceof CodedError);
        assert.equal(err.code, 'FileUnreadable');
        assert.match(err.message, /the pipe was not closed within 0\.3 s/);
        assert.ok(err.message.includes(at('stuck')));
        return true;
      });
      assert.ok(performance.now() - started < 5_000);
      w.kill();
    });
  });

  it('reads no more than the limit and one byte of a file that is larger', async () => {
    writeFileSync(at('big.bin'), Buffer.alloc(4 << 20, 1));
    const read = await bytesReadDuring(() =>
      refuses(at('big.bin'), 'InputTooLarge', /4194304 bytes/),
    );
    // Refused from its size before it is opened; a file that grows after the stat is read
    // only up to limit + 1 bytes (the read loop's buffer has that length).
    if (read !== undefined) assert.ok(read < NOTHING_READ, `read ${read} bytes`);
    // The counter sees a read that does happen: the same file under a larger limit.
    const control = await bytesReadDuring(() => readInputFile(at('big.bin'), { limit: 8 << 20 }));
    if (control !== undefined) assert.ok(control >= 4 << 20, `read ${control} bytes`);
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
