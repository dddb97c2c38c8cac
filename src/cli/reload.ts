import { resolve } from 'node:path';
import { openKeystore } from '../service/keystore.js';
import { CLI_PRINCIPAL } from '../service/principal.js';
import { requestReload } from '../service/reload-sources.js';
import { listServedNodes, waitForRevision } from '../service/served-status.js';
import { parseCommandArgs } from './args.js';
import { type Io, UsageError } from './io.js';
import { reportReload } from './served-report.js';

const HELP = `Usage: certkeeper reload [options]

Asks every server running on the data directory to run its certificate source lookup
again (flags, the default location, the config file, the environment, the keystore, the
local CA), as SIGHUP does for one process, and waits until each has done it. It
exits 1 when a server found a source broken: a certificate file that served before
and broke keeps serving its last good certificate.

Options:
  --data-dir DIR       the data directory (default ./data, env CERTKEEPER_DATA_DIR)
  --wait-timeout S     wait at most S seconds for the servers (default 30)`;

/** `certkeeper reload`: every running server re-reads its certificate sources. */
export async function runReload(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined>,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    'data-dir': { type: 'string' },
    'wait-timeout': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError('reload takes no arguments');
  const waitSeconds = Number(values['wait-timeout'] ?? 30);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new UsageError('--wait-timeout needs a number of seconds, 0 or more');
  }
  const keystore = await openKeystore(
    resolve(values['data-dir'] ?? env.CERTKEEPER_DATA_DIR ?? 'data'),
    env,
  );
  try {
    if ((await listServedNodes(keystore)).length === 0) {
      io.stderr.write('No server is running on this data directory; nothing to reload.\n');
      return 1;
    }
    const request = await requestReload(keystore, { principal: CLI_PRINCIPAL });
    io.stdout.write(
      `Asked the running servers to reload their certificate sources (revision ${request.revision}).\n`,
    );
    const outcomes = await waitForRevision(keystore, request.revision, {
      timeoutMs: waitSeconds * 1000,
    });
    return reportReload(outcomes, request, waitSeconds, io);
  } finally {
    await keystore.close();
  }
}
