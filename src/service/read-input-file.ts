/**
 * Reads a file a person named (an upload, a password file, a CA file) with a bound on
 * time and memory: a regular file, or a pipe (`<(pass show web)`, standard input as
 * `/dev/stdin`) read for at most `timeoutMs`; never more than `limit + 1` bytes are read,
 * and every failure is a coded error that names the path and says why in a sentence. A
 * directory, a socket or a device such as /dev/zero is refused before it is opened, so
 * nothing blocks forever or grows without end.
 */
import { closeSync, constants, fstatSync, open as openFd, readSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { CoreError } from '../core/errors.js';
import { MAX_INPUT_BYTES } from '../core/read.js';
import { ServiceError } from './errors.js';

/** What errno codes mean, in words that fit after "Cannot read PATH: ". */
const REASONS: Record<string, string> = {
  ENOENT: 'it does not exist',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory, not a file',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'it is a loop of symbolic links',
  ENAMETOOLONG: 'the path is too long',
  ENXIO: 'it is a socket or a device that is not there',
  EIO: 'the disk reported an input/output error',
  EMFILE: 'too many files are open',
  ENFILE: 'too many files are open',
};

/**
 * The bytes of the regular file at `path` (symbolic links followed), at most `limit`
 * bytes (default 1 MiB, the limit of `core/` `readMaterial`). Throws `FileUnreadable`
 * (missing, not permitted, not a regular file) or `InputTooLarge`, both naming the path.
 */
export async function readInputFile(
  path: string,
  options: { limit?: number; timeoutMs?: number } = {},
): Promise<Buffer> {
  const limit = options.limit ?? MAX_INPUT_BYTES;
  try {
    const stats = await stat(path);
    if (stats.isFIFO()) return await readPipe(path, limit, options.timeoutMs ?? PIPE_TIMEOUT_MS);
    refuseUnusable(path, stats, limit);
    // O_NONBLOCK: should the path turn into a FIFO after the stat, open must not wait for
    // a writer; the fstat below then refuses it. It changes nothing for a regular file.
    const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    try {
      const opened = await handle.stat();
      refuseUnusable(path, opened, limit);
      // Sized by the file, one byte more than it: a byte more tells a file that grew.
      const buffer = Buffer.alloc(Math.min(opened.size, limit) + 1);
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > limit) throw tooLarge(path, `more than ${limit}`, limit);
      if (length > opened.size) {
        throw new ServiceError(
          'FileUnreadable',
          `Cannot read ${quoted(path)}: it grew while it was being read; try again once it is written.`,
          { details: { path, reason: 'changed while read' } },
        );
      }
      return buffer.subarray(0, length);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof CoreError || err instanceof ServiceError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const reason = (code && REASONS[code]) ?? `the system said ${code ?? (err as Error).message}`;
    throw new ServiceError('FileUnreadable', `Cannot read ${quoted(path)}: ${reason}.`, {
      cause: err,
      details: { path, reason: code ?? 'unknown' },
    });
  }
}

/** How long a pipe may take to deliver all it holds (its writer may be slow: a vault). */
const PIPE_TIMEOUT_MS = 30_000;

/**
 * What a pipe delivers until its writer closes it: at most `limit` bytes within
 * `timeoutMs`. Opened without blocking, so a FIFO nothing writes to is refused at once
 * instead of waited for; then read through a socket, so the wait holds no thread of
 * Node's pool.
 */
async function readPipe(path: string, limit: number, timeoutMs: number): Promise<Buffer> {
  const fd = await new Promise<number>((resolve, reject) =>
    openFd(path, constants.O_RDONLY | constants.O_NONBLOCK, (err, opened) =>
      err ? reject(err) : resolve(opened),
    ),
  );
  // A first read tells a pipe without a writer (end of file at once: none came, or it
  // left without writing) from one whose writer has not written yet (EAGAIN); Linux's
  // poll would never report the former, and the read would wait for the timeout.
  let first = Buffer.alloc(Math.min(limit + 1, 65536));
  let atEnd = false;
  try {
    first = first.subarray(0, readSync(fd, first));
    atEnd = first.length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
      closeSync(fd);
      throw err;
    }
    first = first.subarray(0, 0);
  }
  if (atEnd) {
    closeSync(fd);
    throw new ServiceError(
      'FileUnreadable',
      `Cannot read ${quoted(path)}: it is a named pipe (FIFO) that nothing writes to.`,
      { details: { path, reason: 'pipe without a writer' } },
    );
  }
  return readStream(new Socket({ fd, readable: true, writable: false }), path, {
    limit,
    timeoutMs,
    first,
  });
}

/**
 * Standard input (the CLI's `-`): a redirected regular file is read as a file; a pipe or
 * a socket (what a parent process gives) as a stream, bounded as a pipe is. A terminal or
 * another device is refused.
 */
export async function readStandardInput(
  options: { limit?: number; timeoutMs?: number } = {},
): Promise<Buffer> {
  const stats = fstatSync(0);
  if (stats.isFile()) return readInputFile('/dev/stdin', options);
  if (!stats.isFIFO() && !stats.isSocket()) {
    throw new ServiceError(
      'FileUnreadable',
      'Cannot read standard input: it is a terminal or a device; pipe or redirect a file into it.',
      { details: { path: '-', reason: 'not a pipe or a file' } },
    );
  }
  return readStream(process.stdin, 'standard input', {
    limit: options.limit ?? MAX_INPUT_BYTES,
    timeoutMs: options.timeoutMs ?? PIPE_TIMEOUT_MS,
    first: Buffer.alloc(0),
  });
}

/** All of `stream` until it ends (after `first`), at most `limit` bytes within `timeoutMs`. */
function readStream(
  stream: Readable,
  name: string,
  options: { limit: number; timeoutMs: number; first: Buffer },
): Promise<Buffer> {
  const { limit, timeoutMs, first } = options;
  const what = named(name);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [first];
    let length = first.length;
    const fail = (err: Error) => {
      clearTimeout(timer);
      stream.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          new ServiceError(
            'FileUnreadable',
            `Cannot read ${what}: the pipe was not closed within ${timeoutMs / 1000} s.`,
            { details: { path: name, reason: 'pipe timeout' } },
          ),
        ),
      timeoutMs,
    );
    if (length > limit) return fail(tooLarge(name, `more than ${limit}`, limit));
    stream.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) fail(tooLarge(name, `more than ${limit}`, limit));
      else chunks.push(chunk);
    });
    stream.once('error', fail);
    stream.once('end', () => {
      clearTimeout(timer);
      stream.destroy();
      resolve(Buffer.concat(chunks, length));
    });
  });
}

/** Throws unless `stats` is a regular file of at most `limit` bytes. */
function refuseUnusable(path: string, stats: Stats, limit: number): void {
  if (!stats.isFile()) {
    const what = stats.isDirectory()
      ? 'a directory'
      : stats.isSocket()
        ? 'a socket'
        : stats.isCharacterDevice()
          ? 'a character device'
          : stats.isBlockDevice()
            ? 'a block device'
            : 'an unusual kind of file';
    throw new ServiceError(
      'FileUnreadable',
      `Cannot read ${quoted(path)}: it is ${what}, not a regular file.`,
      { details: { path, reason: 'not a regular file' } },
    );
  }
  if (stats.size > limit) throw tooLarge(path, String(stats.size), limit);
}

function tooLarge(path: string, size: string, limit: number): CoreError {
  return new CoreError(
    'InputTooLarge',
    `${named(path)} is ${size} bytes; the limit is ${limit} bytes${limit === MAX_INPUT_BYTES ? ' (1 MiB)' : ''}.`,
    { details: { path, limit } },
  );
}

/** How a message names what it read: standard input, or the path in quotes. */
function named(path: string): string {
  return path === 'standard input' ? path : quoted(path);
}

/** The path in double quotes, with any control character escaped so it stays on one line. */
function quoted(path: string): string {
  return JSON.stringify(path);
}
