/**
 * Reads a file a person named (an upload, a password file, a CA file) with a bound on
 * time and memory: only a regular file is opened, never more than `limit + 1` bytes are
 * read, and every failure is a coded error that names the path and says why in a sentence.
 * A directory, a FIFO, a socket or a device such as /dev/zero is refused before it is
 * opened, so nothing blocks forever or grows without end.
 */
import { constants, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
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
  options: { limit?: number } = {},
): Promise<Buffer> {
  const limit = options.limit ?? MAX_INPUT_BYTES;
  try {
    refuseUnusable(path, await stat(path), limit);
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

/** Throws unless `stats` is a regular file of at most `limit` bytes. */
function refuseUnusable(path: string, stats: Stats, limit: number): void {
  if (!stats.isFile()) {
    const what = stats.isDirectory()
      ? 'a directory'
      : stats.isFIFO()
        ? 'a named pipe (FIFO)'
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
    `${quoted(path)} is ${size} bytes; the limit is ${limit} bytes${limit === MAX_INPUT_BYTES ? ' (1 MiB)' : ''}.`,
    { details: { path, limit } },
  );
}

/** The path in double quotes, with any control character escaped so it stays on one line. */
function quoted(path: string): string {
  return JSON.stringify(path);
}
