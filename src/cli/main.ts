import { runInspect } from './inspect.js';
import { type Io, UsageError } from './io.js';

const USAGE = `Usage: certkeeper <command> [options]

Commands:
  inspect FILE... [--password P | --password-file F] [--host NAME] [--json]
      Describe certificates, keys, CSRs, PKCS#7 and PKCS#12 files; pair keys with
      certificates; build and validate the chain.

Run "certkeeper <command> --help" for a command's options.`;

/** Runs the CLI with the given arguments; resolves the process exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'inspect':
        return await runInspect(rest, io);
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
    throw err;
  }
}
