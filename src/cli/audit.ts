import { resolve } from 'node:path';
import { openKeystore } from '../service/keystore.js';
import { listAudit } from '../service/read-entries.js';
import { verifyAuditLog } from '../service/verify-audit.js';
import { parseCommandArgs } from './args.js';
import { type Io, UsageError } from './io.js';

const HELP = `Usage: certkeeper audit <verify | list> [options]

  verify               check the audit log's hash chain from its first record; exit 1 and
                       name the first broken record when a record was altered or removed
  list [--limit N]     print the latest records (newest first), one JSON object a line

Options:
  --data-dir DIR       the data directory (default ./data, env CERTKEEPER_DATA_DIR)`;

/** `certkeeper audit verify|list`: read the audit log of a data directory. */
export async function runAudit(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined>,
): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    'data-dir': { type: 'string' },
    limit: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [action, ...rest] = positionals;
  if ((action !== 'verify' && action !== 'list') || rest.length > 0) {
    throw new UsageError('audit needs "verify" or "list"');
  }
  const limit = values.limit === undefined ? 20 : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new UsageError('--limit needs a positive whole number');
  }
  const keystore = await openKeystore(
    resolve(values['data-dir'] ?? env.CERTKEEPER_DATA_DIR ?? 'data'),
    env,
  );
  try {
    if (action === 'list') {
      for (const record of await listAudit(keystore, { limit })) {
        io.stdout.write(`${JSON.stringify(record)}\n`);
      }
      return 0;
    }
    const result = await verifyAuditLog(keystore);
    if (result.ok) {
      io.stdout.write(
        `The audit log is intact: ${result.records} records, each chained to the one before.\n`,
      );
      return 0;
    }
    io.stderr.write(
      `AuditChainBroken: the audit log is broken at record ${result.brokenAt}: ${result.reason}. Records before it are intact; restore the data directory from a backup to recover the rest.\n`,
    );
    return 1;
  } finally {
    await keystore.close();
  }
}
