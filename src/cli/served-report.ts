import type { RevisionOutcome } from '../service/served-status.js';
import type { Io } from './io.js';

/** One line per running server: served, refused (with why), or silent; exit 1 unless all served. */
export function reportOutcomes(
  outcomes: RevisionOutcome[],
  revision: number,
  waitSeconds: number,
  io: Io,
): number {
  let status = 0;
  for (const o of outcomes) {
    const server = o.node.url ?? o.node.node;
    if (o.outcome === 'served') {
      io.stdout.write(`Served by ${server} (revision ${o.node.reconciledRevision}).\n`);
    } else if (o.outcome === 'refused') {
      status = 1;
      for (const r of o.refusals) {
        io.stderr.write(
          `Refused by ${server}: ${r.binding}${r.alias ? ` = "${r.alias}"` : ''}: ${r.code}: ${r.reason}; it keeps serving what it served before.\n`,
        );
      }
    } else {
      status = 1;
      io.stderr.write(
        `${server} did not report revision ${revision} within ${waitSeconds} s; check its log.\n`,
      );
    }
  }
  return status;
}
