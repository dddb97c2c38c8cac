/**
 * The `Supervisor` the benches run: as `certkeeper serve` runs it on a data directory,
 * with no flags, files or environment sources, on 127.0.0.1 and a free port, answering
 * every request with `200 ok`.
 */
import type { RequestListener } from 'node:http';
import type { RuntimeLogger } from '../src/runtime/identity.js';
import { Supervisor, type SupervisorOptions } from '../src/runtime/supervisor.js';
import type { Store } from '../src/store/store.js';

/** Answers every request `200 ok`, with a length so that nothing is chunked. */
export const okHandler: RequestListener = (_req, res) => {
  res.setHeader('content-length', 2);
  res.end('ok');
};

/** A supervisor for `store` in `dataDir`; not started. */
export function benchSupervisor(
  store: Store,
  dataDir: string,
  logger: RuntimeLogger,
  runtime?: SupervisorOptions['runtime'],
): Supervisor {
  return new Supervisor({
    store,
    sources: { dataDir, flags: {}, config: {}, env: {}, strict: false },
    localNames: { dns: ['localhost'], ip: ['127.0.0.1'] },
    commonName: 'localhost',
    host: '127.0.0.1',
    port: 0,
    handler: okHandler,
    logger,
    ...(runtime ? { runtime } : {}),
  });
}
