import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import type { RuntimeCounters, ServedStatus } from '../runtime/supervisor.js';
import type { ServiceContext } from '../service/context.js';
import { type EntryDescription, listEntries } from '../service/read-entries.js';
import { routeSchema } from './route-schema.js';

interface MetricsOptions {
  keystore: ServiceContext;
  tlsStatus: () => ServedStatus | undefined;
  /** This node's counts since start; absent when the API runs without a runtime. */
  counters?: () => RuntimeCounters | undefined;
}

/** A counter that mirrors a count the runtime keeps, read when scraped (it adds the difference). */
function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | undefined,
): void {
  mirroredCounters(registry, name, help, null, { '': read });
}

/**
 * A counter with one series per value of `label` (every one present from the first
 * scrape, at 0), each mirroring a count the runtime keeps; `label: null` makes one series.
 */
function mirroredCounters(
  registry: Registry,
  name: string,
  help: string,
  label: string | null,
  reads: Record<string, () => number | undefined>,
): void {
  const seen = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: label ? [label] : [],
    registers: [registry],
    collect() {
      for (const [value, read] of Object.entries(reads)) {
        const now = read();
        if (now === undefined) continue;
        const delta = Math.max(0, now - (seen.get(value) ?? 0));
        if (label) this.inc({ [label]: value }, delta);
        else this.inc(delta);
        seen.set(value, now);
      }
    },
  });
}

/**
 * `/metrics` for Prometheus: expiry of every entry and binding, handshakes and their
 * failures, swaps and rollbacks, the served revision, and the API's requests by route and
 * status. Its own registry, so an embedding application's metrics stay its own.
 */
export async function registerMetrics(
  app: FastifyInstance,
  options: MetricsOptions,
): Promise<void> {
  const registry = new Registry();
  const { keystore } = options;
  const now = () => keystore.now().getTime();
  // Both expiry gauges read the entries: a scrape starts every collect() at once, so they
  // share one listing while it runs (and a scrape that overlaps it shares it too).
  let listing: Promise<EntryDescription[]> | undefined;
  const entries = () =>
    (listing ??= listEntries(keystore).finally(() => {
      listing = undefined;
    }));

  new Gauge({
    name: 'certkeeper_certificate_expiry_seconds',
    help: 'Seconds until the certificate of each keystore entry expires (negative: expired).',
    labelNames: ['alias', 'kind'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const entry of await entries()) {
        if (!entry.certificate) continue;
        this.set(
          { alias: entry.alias, kind: entry.kind },
          (Date.parse(entry.certificate.notAfter) - now()) / 1000,
        );
      }
    },
  });
  new Gauge({
    name: 'certkeeper_binding_expiry_seconds',
    help: 'Seconds until the certificate bound to each binding (server, sni:<host>) expires.',
    labelNames: ['binding', 'alias'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const entry of await entries()) {
        if (!entry.certificate) continue;
        for (const binding of entry.bindings) {
          this.set(
            { binding, alias: entry.alias },
            (Date.parse(entry.certificate.notAfter) - now()) / 1000,
          );
        }
      }
    },
  });
  new Gauge({
    name: 'certkeeper_served_revision',
    help: 'The keystore revision this node serves.',
    registers: [registry],
    collect() {
      const status = options.tlsStatus();
      if (status) this.set(status.revision);
    },
  });
  new Gauge({
    name: 'certkeeper_served_certificate_expired',
    help: '1 while the served server certificate has expired (it keeps being served).',
    registers: [registry],
    collect() {
      const status = options.tlsStatus();
      if (status) this.set(status.expired ? 1 : 0);
    },
  });
  const counters = () => options.counters?.();
  mirroredCounter(
    registry,
    'certkeeper_tls_handshakes_total',
    'TLS handshakes completed.',
    () => counters()?.handshakes,
  );
  mirroredCounter(
    registry,
    'certkeeper_tls_handshake_errors_total',
    'TLS handshakes that failed.',
    () => counters()?.handshakeErrors,
  );
  mirroredCounter(
    registry,
    'certkeeper_swaps_total',
    'Identities installed without a restart (the first included).',
    () => counters()?.swaps,
  );
  mirroredCounters(
    registry,
    'certkeeper_rollbacks_total',
    'Rollbacks this node wrote: `refused` (a change it could not serve), `unconfirmed` (an activation not confirmed in its window). Rollbacks asked for through the API count in certkeeper_api_requests_total.',
    'reason',
    {
      refused: () => counters()?.rollbacks,
      unconfirmed: () => counters()?.unconfirmedRollbacks,
    },
  );

  const requests = new Counter({
    name: 'certkeeper_api_requests_total',
    help: 'API requests answered, by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    requests.inc({
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status: String(reply.statusCode),
    });
  });

  app.get(
    '/metrics',
    {
      config: { privilege: 'entries:read' },
      schema: routeSchema({
        operationId: 'getMetrics',
        summary:
          'Prometheus metrics: expiry, handshakes, swaps, rollbacks, served revision, API requests',
        tags: ['health'],
        responses: {
          200: {
            description: 'The Prometheus text format.',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      }),
    },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
}
