import { type ParseArgsConfig, parseArgs } from 'node:util';
import { readInputFile, readStandardInput } from '../service/read-input-file.js';
import { UsageError } from './io.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: O }>
>;

/** Parses a command's arguments strictly; a mistake is a `UsageError` (exit code 2). */
export function parseCommandArgs<O extends Options>(argv: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The `--password` / `--password-file` options every command shares. */
export const PASSWORD_OPTIONS = {
  password: { type: 'string' },
  'password-file': { type: 'string' },
} as const;

/** The password from `--password`, or the first line of `--password-file`; both is a usage error. */
export async function passwordFrom(values: {
  password?: string | undefined;
  'password-file'?: string | undefined;
}): Promise<string | undefined> {
  if (values.password !== undefined && values['password-file'] !== undefined) {
    throw new UsageError('give --password or --password-file, not both');
  }
  if (values['password-file'] === undefined) return values.password;
  const text = (await readFileArgument(values['password-file'])).toString('utf8');
  return text.split(/\r?\n/)[0] ?? '';
}

/**
 * The bytes of a file named on the command line; `-` is standard input (a pipe or a
 * redirected file, never a terminal: nobody types a certificate).
 */
export async function readFileArgument(name: string): Promise<Buffer> {
  return name === '-' ? readStandardInput() : readInputFile(name);
}

/** Throws a `UsageError` when `-` (standard input) is named more than once. */
export function refuseStdinTwice(names: (string | undefined)[]): void {
  if (names.filter((n) => n === '-').length > 1) {
    throw new UsageError('"-" (standard input) can be read only once');
  }
}
