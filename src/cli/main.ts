import { CodedError } from '../core/errors.js';
import { runImport } from './import.js';
import { runInspect } from './inspect.js';
import { type Io, UsageError } from './io.js';

const USAGE = `Usage: certkeeper <command> [options]

Commands:
  serve                 serve HTTPS with a managed identity (see docs/configuration.md)
  import ALIAS FILE...  import a certificate, key and chain into the keystore
  inspect FILE...       describe certificates, keys, CSRs, PKCS#7 and PKCS#12 files,
                        pair keys with certificates, build and validate the chain

Run "certkeeper <command> --help" for a command's options.`;

/** Runs the CLI with the given arguments; resolves the process exit code. */
export async function main(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'inspect':
        return await runInspect(rest, io);
      case 'import':
        return await runImport(rest, io, env);
      case 'serve': {
        const { runServe } = await import('./serve.js');
        return await runServe(rest, io, env);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`certkeeper: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof CodedError) {
      io.stderr.write(`${err.code}: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR') {
      io.stderr.write(`certkeeper: cannot read ${e.path}: ${e.code}\n`);
      return 1;
    }
    throw err;
  }
}
