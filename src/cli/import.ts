import { resolve } from 'node:path';
import { type ErrorCode, isErrorCode } from '../api/problem.js';
import { CodedError } from '../core/errors.js';
import { importEntry } from '../service/import-entry.js';
import { openKeystore } from '../service/keystore.js';
import { CLI_PRINCIPAL } from '../service/principal.js';
import {
  assertNoServerPinned,
  listServedNodes,
  waitForRevision,
} from '../service/served-status.js';
import {
  PASSWORD_OPTIONS,
  parseCommandArgs,
  passwordFrom,
  readFileArgument,
  refuseStdinTwice,
} from './args.js';
import { type Io, UsageError } from './io.js';
import { reportOutcomes } from './served-report.js';

const HELP = `Usage: certkeeper import ALIAS FILE... [options]

Imports a certificate with its key and chain (files in any format and order) into the
keystore of a data directory, as one change that a running server follows at once.
A FILE of "-" is standard input; a pipe works too (--password-file <(pass show web)).

Options:
  --password P         password of an encrypted key or PKCS#12 file
  --password-file F    read the password from the first line of F
  --key-alias NAME     the key entry to import from a keystore (PKCS#12) that holds
                       several (certkeeper inspect lists them)
  --activate           also make it the served identity (the "server" binding)
  --sni HOST           also serve it for this SNI host name, exact or *.wildcard
                       (repeatable); other names keep the server identity
  --replace            replace an existing entry of the same alias (renewal)
  --data-dir DIR       the data directory (default ./data, env CERTKEEPER_DATA_DIR)
  --init               create the data directory and a new store if it does not exist
  --no-wait            don't wait for running servers to serve or refuse the change
  --wait-timeout S     wait at most S seconds for them (default 30)

When a server runs on the data directory, import waits until it has served the change or
refused it, and says which; the exit status is 1 when a server refused it (and rolled it
back), or did not answer in time.`;

/** How long import waits for running servers by default. */
const DEFAULT_WAIT_SECONDS = 30;

/** What to do on the command line about a service refusal, by its code. */
const FLAG_HINTS: Partial<Record<ErrorCode, string>> = {
  AliasInUse: 'use --replace',
  AliasNotFound: 'leave out --replace',
};

/** `certkeeper import`: write an entry into the data directory's store. */
export async function runImport(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined>,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...PASSWORD_OPTIONS,
    'key-alias': { type: 'string' },
    activate: { type: 'boolean' },
    sni: { type: 'string', multiple: true },
    replace: { type: 'boolean' },
    'data-dir': { type: 'string' },
    init: { type: 'boolean' },
    'no-wait': { type: 'boolean' },
    'wait-timeout': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  const waitSeconds = Number(values['wait-timeout'] ?? DEFAULT_WAIT_SECONDS);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new UsageError('--wait-timeout needs a number of seconds, 0 or more');
  }
  if (values.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [alias, ...files] = positionals;
  if (!alias || files.length === 0)
    throw new UsageError('import needs an ALIAS and at least one FILE');
  refuseStdinTwice([...files, values['password-file']]);
  const password = await passwordFrom(values);
  const inputs: { name: string; bytes: Buffer }[] = [];
  for (const name of files) inputs.push({ name, bytes: await readFileArgument(name) });
  const keystore = await openKeystore(
    resolve(values['data-dir'] ?? env.CERTKEEPER_DATA_DIR ?? 'data'),
    env,
    { create: values.init ?? false },
  );
  try {
    // A running server pinned by a flag, file or the environment would never serve it.
    if (values.activate) await assertNoServerPinned(keystore);
    const result = await importEntry(keystore, {
      alias,
      files: inputs,
      password,
      keyAlias: values['key-alias'],
      replace: values.replace ?? false,
      activate: values.activate ?? false,
      sniHosts: values.sni ?? [],
      principal: CLI_PRINCIPAL,
    });
    io.stdout.write(
      `Imported "${alias}" (${result.entry.kind}) at revision ${result.revision}: ${result.certificate.subject.rfc4514} sha256=${result.certificate.fingerprints.sha256}${values.activate ? ', now the server identity' : ''}\n`,
    );
    for (const w of result.warnings) io.stderr.write(`warning: ${w.code}: ${w.message}\n`);
    if (values['no-wait'] || (await listServedNodes(keystore)).length === 0) return 0;
    const outcomes = await waitForRevision(keystore, result.revision, {
      timeoutMs: waitSeconds * 1000,
    });
    return reportOutcomes(outcomes, result.revision, waitSeconds, io);
  } catch (err) {
    // The service words its refusals for every front end; the flag to use is ours to name.
    const hint = err instanceof CodedError && isErrorCode(err.code) && FLAG_HINTS[err.code];
    if (!hint) throw err;
    io.stderr.write(`${err.code}: ${err.message} (${hint})\n`);
    return 1;
  } finally {
    await keystore.close();
  }
}
