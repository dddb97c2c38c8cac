import { CodedError } from '../core/errors.js';
import { runAudit } from './audit.js';
import { runImport } from './import.js';
import { runInspect } from './inspect.js';
import { type Io, UsageError } from './io.js';
import { runLocalCa } from './local-ca.js';
import { runReload } from './reload.js';
import { runUser } from './user.js';

const USAGE = `Usage: certkeeper <command> [options]

Commands:
  serve                 serve HTTPS with a managed identity (see docs/configuration.md)
  import ALIAS FILE...  import a certificate, key and chain into the keystore
  inspect FILE...       describe certificates, keys, CSRs, PKCS#7 and PKCS#12 files,
                        pair keys with certificates, build and validate the chain
  audit verify|list     check the audit log's hash chain, or print its latest records
  local-ca reissue      replace a damaged local CA (never done on its own)
  reload                make running servers re-read their certificate sources (as SIGHUP)
  user add|passwd|role|remove|list
                        manage the users who may log in (never the last admin)

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
      case 'reload':
        return await runReload(rest, io, env);
      case 'local-ca':
        return await runLocalCa(rest, io, env);
      case 'audit':
        return await runAudit(rest, io, env);
      case 'import':
        return await runImport(rest, io, env);
      case 'user':
        return await runUser(rest, io, env);
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
    return reportError(err, io, env);
  }
}

/**
 * Prints an error that ended a command as one line on stderr and returns exit code 1:
 * `CODE: sentence` for a coded error, `certkeeper: unexpected error: message` for
 * anything else (a bug or a system failure), with the stack only when
 * CERTKEEPER_DEBUG=1 asks for it.
 */
export function reportError(
  err: unknown,
  io: Io,
  env: Record<string, string | undefined> = process.env,
): number {
  if (err instanceof CodedError) {
    io.stderr.write(`${err.code}: ${oneLine(err.message)}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (env.CERTKEEPER_DEBUG === '1' && err instanceof Error && err.stack) {
    io.stderr.write(`certkeeper: unexpected error: ${err.stack}\n`);
  } else {
    io.stderr.write(`certkeeper: unexpected error: ${oneLine(message)}\n`);
  }
  return 1;
}

/** A message on one line, so each error is exactly one line on stderr. */
function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
