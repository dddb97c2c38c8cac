import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { openKeystore } from '../service/keystore.js';
import { localServerNames, reissueLocalCa } from '../service/local-ca.js';
import { CLI_PRINCIPAL } from '../service/principal.js';
import { parseCommandArgs } from './args.js';
import { type Io, UsageError } from './io.js';

const HELP = `Usage: certkeeper local-ca reissue [options]

Makes a new local CA and a new server certificate from it, replacing the stored ones
whatever they hold: the way back from a damaged local CA (StoreCorrupt), which certkeeper
never re-issues on its own. Clients that trusted the old local CA must then trust the new
one (https://HOST:PORT/ca/root.pem). A running server follows the change at once.

Options:
  --san NAME           another name the server certificate covers (repeatable), as
                       serve's --san; the host name, localhost and loopback are always in
  --name-constraints   the new local CA may certify only these names (critical
                       nameConstraints), as the config's localCa.nameConstraints: true
  --data-dir DIR       the data directory (default ./data, env CERTKEEPER_DATA_DIR)`;

/** `certkeeper local-ca reissue`: replace the local CA on request. */
export async function runLocalCa(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined>,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    san: { type: 'string', multiple: true },
    'name-constraints': { type: 'boolean' },
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'reissue') {
    throw new UsageError('local-ca needs "reissue"');
  }
  const keystore = await openKeystore(
    resolve(values['data-dir'] ?? env.CERTKEEPER_DATA_DIR ?? 'data'),
    env,
  );
  try {
    const host = hostname();
    const { revision, fingerprint } = await reissueLocalCa(keystore, {
      names: localServerNames(host, values.san ?? []),
      commonName: host,
      nameConstraints: values['name-constraints'] === true,
      principal: CLI_PRINCIPAL,
    });
    io.stdout.write(
      `Reissued the local CA at revision ${revision}: sha256=${fingerprint}. Clients that trusted the old one must trust this one (GET /ca/root.pem).\n`,
    );
    return 0;
  } finally {
    await keystore.close();
  }
}
