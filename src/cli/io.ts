/** Where a CLI command writes; tests pass buffers, the executable passes the process streams. */
export interface Io {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** A mistake in how the command was called: exit code 2 and the usage text. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
