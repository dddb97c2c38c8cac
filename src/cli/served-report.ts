import {
  type NodeSourceAttempt,
  type RevisionOutcome,
  reloadOf,
} from '../service/served-status.js';
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

/**
 * What each running server made of a reload request (`at`, at `revision`): the source it
 * now serves, the sources it found broken, and a pinning file that broke and whose last
 * good certificate keeps serving. Exit 1 unless every server read every source cleanly.
 */
export function reportReload(
  outcomes: RevisionOutcome[],
  request: { revision: number; at: string },
  waitSeconds: number,
  io: Io,
): number {
  const served = outcomes.filter((o) => o.outcome === 'served');
  let status = reportOutcomes(
    outcomes.filter((o) => o.outcome !== 'served'),
    request.revision,
    waitSeconds,
    io,
  );
  for (const { node } of served) {
    const server = node.url ?? node.node;
    const reload = reloadOf(node, request.at);
    if (reload?.error) {
      status = 1;
      io.stderr.write(
        `${server} could not reload its certificate sources (${reload.error.code}: ${reload.error.message}); it keeps serving what it served (sha256 ${node.fingerprint}).\n`,
      );
      continue;
    }
    if (reload?.keptLastGood) {
      status = 1;
      io.stderr.write(
        `${server} did not take the reload: ${brokenSource(reload.keptLastGood)}; it keeps serving the last good certificate it read from there (sha256 ${node.fingerprint}).\n`,
      );
      continue;
    }
    const what = reload ? ` from ${reload.what}` : '';
    io.stdout.write(
      `Served by ${server} (revision ${node.reconciledRevision})${what}, sha256 ${node.fingerprint}.\n`,
    );
    for (const source of node.refusedSources) {
      status = 1;
      io.stderr.write(`${server} passed over ${brokenSource(source)}.\n`);
    }
  }
  return status;
}

function brokenSource(a: NodeSourceAttempt): string {
  return `${a.what}, which is broken (${a.code ?? 'Unexpected'}: ${a.message ?? 'no reason given'})`;
}
