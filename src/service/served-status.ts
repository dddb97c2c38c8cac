/**
 * What the servers on a data directory report of themselves (`Store.putNodeStatus`, written
 * by each server's supervisor): which revision they have caught up with, what they serve,
 * what pins them, what they refused. A front end reads it to refuse an activation that a
 * pinned server would ignore, and to tell the person whether a change was served.
 */
import { hostname } from 'node:os';
import type { NodeStatusRecord } from '../store/store.js';
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';

/** One refusal, as a node reports it. */
export interface NodeRefusal {
  revision: number;
  binding: string;
  alias: string | null;
  code: string;
  reason: string;
}

/** A certificate source that a server's lookup found broken, as it reports it. */
export interface NodeSourceAttempt {
  source: string;
  what: string;
  code?: string;
  message?: string;
}

/** What a server's last reload through the keystore found (`requestReload`). */
export interface NodeReload {
  requestedAt: string;
  source: string;
  what: string;
  /** The pinning source that broke, whose last good certificate keeps serving; or null. */
  keptLastGood: NodeSourceAttempt | null;
  /** Why the sources could not be read again (nothing changed); absent or null when they were. */
  error?: { code: string; message: string } | null;
}

/** A running server's report. */
export interface ServedNode {
  node: string;
  pid: number;
  host: string;
  url: string | null;
  servedRevision: number;
  reconciledRevision: number;
  pinnedBy: string | null;
  alias: string | null;
  fingerprint: string;
  refusals: NodeRefusal[];
  /** The startup sources its last lookup found broken and passed over. */
  refusedSources: NodeSourceAttempt[];
  lastReload: NodeReload | null;
  updatedAt: string;
}

/** What `node` reports of the reload request made `at` (`requestReload`), or null. */
export function reloadOf(node: ServedNode, at: string): NodeReload | null {
  return node.lastReload?.requestedAt === at ? node.lastReload : null;
}

/** What became of one revision on one node. */
export type RevisionOutcome =
  | { node: ServedNode; outcome: 'served' }
  | { node: ServedNode; outcome: 'refused'; refusals: NodeRefusal[] }
  | { node: ServedNode; outcome: 'pending' };

/**
 * The servers that are running on this data directory. A report of a process on this
 * host that no longer exists (a server that was killed) is left out; reports of other
 * hosts are taken as they are.
 */
export async function listServedNodes(ctx: ServiceContext): Promise<ServedNode[]> {
  const records = await ctx.store.listNodeStatus();
  return records.map(toServedNode).filter((n): n is ServedNode => n !== undefined && isLive(n));
}

/** Throws `PinnedBySource` when a running server's identity is pinned by a file source. */
export async function assertNoServerPinned(ctx: ServiceContext): Promise<void> {
  const pinned = (await listServedNodes(ctx)).find((n) => n.pinnedBy !== null);
  if (pinned) {
    throw new ServiceError(
      'PinnedBySource',
      `The server ${pinned.url ?? pinned.node} serves its certificate from ${pinned.pinnedBy}, which takes precedence over the keystore; remove it there first.`,
      { details: { source: pinned.pinnedBy, node: pinned.node } },
    );
  }
}

/**
 * What each running server made of `revision`: `served` once it has caught up with it
 * and refused nothing of it, `refused` with its reasons, `pending` until then.
 */
export function outcomesOf(nodes: ServedNode[], revision: number): RevisionOutcome[] {
  return nodes.map((node) => {
    const refusals = node.refusals.filter((r) => r.revision === revision);
    if (refusals.length > 0) return { node, outcome: 'refused', refusals };
    if (node.reconciledRevision >= revision) return { node, outcome: 'served' };
    return { node, outcome: 'pending' };
  });
}

/**
 * Waits until every running server has served or refused `revision`, reading their
 * reports every `intervalMs`, for at most `timeoutMs`; resolves what each made of it
 * (`pending` for a server that did not report in time).
 */
export async function waitForRevision(
  ctx: ServiceContext,
  revision: number,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<RevisionOutcome[]> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const outcomes = outcomesOf(await listServedNodes(ctx), revision);
    if (outcomes.every((o) => o.outcome !== 'pending') || Date.now() >= deadline) return outcomes;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

function toServedNode(record: NodeStatusRecord): ServedNode | undefined {
  const s = record.status;
  if (typeof s.pid !== 'number' || typeof s.reconciledRevision !== 'number') return undefined;
  return {
    node: record.node,
    pid: s.pid,
    host: String(s.host ?? ''),
    url: typeof s.url === 'string' ? s.url : null,
    servedRevision: Number(s.servedRevision ?? 0),
    reconciledRevision: s.reconciledRevision,
    pinnedBy: typeof s.pinnedBy === 'string' ? s.pinnedBy : null,
    alias: typeof s.alias === 'string' ? s.alias : null,
    fingerprint: String(s.fingerprint ?? ''),
    refusals: Array.isArray(s.refusals) ? (s.refusals as NodeRefusal[]) : [],
    refusedSources: Array.isArray(s.refusedSources)
      ? (s.refusedSources as NodeSourceAttempt[])
      : [],
    lastReload:
      s.lastReload && typeof s.lastReload === 'object' ? (s.lastReload as NodeReload) : null,
    updatedAt: record.updatedAt,
  };
}

function isLive(node: ServedNode): boolean {
  if (node.host !== hostname()) return true;
  try {
    process.kill(node.pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How long a front end waits for the running servers to serve or refuse a change. */
export const SERVED_TIMEOUT_MS = 30_000;

/**
 * Waits as `waitForRevision` does, then throws `ActivationRefused` (with each refusal's
 * reason) when a running server refused `revision`; resolves the outcomes otherwise,
 * `pending` for a server that did not report within `timeoutMs`.
 */
export async function requireServed(
  ctx: ServiceContext,
  revision: number,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<RevisionOutcome[]> {
  const outcomes = await waitForRevision(ctx, revision, options);
  const refusals = outcomes.flatMap((o) => (o.outcome === 'refused' ? o.refusals : []));
  if (refusals.length > 0) {
    const first = refusals[0]!;
    throw new ServiceError(
      'ActivationRefused',
      `The server refused revision ${revision} (${first.binding}${first.alias ? ` → "${first.alias}"` : ''}): ${first.reason}`,
      { details: { revision, refusals } },
    );
  }
  return outcomes;
}
