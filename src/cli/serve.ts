import { hostname } from 'node:os';
import pino, { type DestinationStream, type Logger } from 'pino';
import { buildApp } from '../api/app.js';
import { RuntimeError } from '../runtime/identity.js';
import { SourceError } from '../runtime/sources.js';
import { Supervisor, urlHost } from '../runtime/supervisor.js';
import { ensureInitialAdmin, type InitialAdminResult } from '../service/initial-admin.js';
import { type Keystore, openKeystore } from '../service/keystore.js';
import { localServerNames } from '../service/local-ca.js';
import type { Io } from './io.js';
import { loadServeConfig, SERVE_HELP, type ServeConfig } from './serve-config.js';

/** A running server: stop it to close the listener, the store and every timer. */
export interface RunningServer {
  supervisor: Supervisor;
  /** The keystore the API's operations use (its store is the one the runtime follows). */
  keystore: Keystore;
  store: Keystore['store'];
  url: string;
  /** Whether this start created the first admin (and its one-time password, to show once). */
  initialAdmin: InitialAdminResult;
  stop(): Promise<void>;
}

/** Never let a secret reach a log line. */
const REDACT = [
  'password',
  'keyPem',
  'privateKey',
  'req.headers.authorization',
  'req.headers.cookie',
];

/**
 * The server's one pino logger (JSON lines on stderr by default), with secrets redacted.
 * Each layer logs through a child of it: `{ layer: 'runtime' }`, `{ layer: 'api' }`.
 */
export function createServeLogger(
  env: Record<string, string | undefined>,
  destination: DestinationStream = pino.destination(2),
): Logger {
  return pino(
    { name: 'certkeeper', level: env.CERTKEEPER_LOG_LEVEL ?? 'info', redact: REDACT },
    destination,
  );
}

/** Opens the data directory and starts serving HTTPS as configured. */
export async function startServer(
  config: ServeConfig,
  env: Record<string, string | undefined>,
  logger: Logger,
): Promise<RunningServer> {
  const keystore = await openKeystore(config.dataDir, env, { create: true });
  // The runtime (which follows the store's change feed and records rollbacks and
  // renewals) and, for now, the API's read-only routes take the store itself: they are
  // layers of their own, not front ends of service/.
  const store = keystore.store;
  let supervisor: Supervisor | undefined;
  try {
    const host = hostname();
    const app = await buildApp({
      keystore,
      logger: logger.child({ layer: 'api' }),
      tlsStatus: () => supervisor?.status(),
      counters: () => supervisor?.counters(),
      authPolicy: {
        sessionIdleMs: config.sessionIdleMinutes * 60_000,
        sessionAbsoluteMs: config.sessionMaxHours * 3_600_000,
      },
      serverFactory: (handler) => {
        supervisor = new Supervisor({
          store,
          sources: {
            dataDir: config.dataDir,
            flags: config.flags,
            config: config.config,
            env,
            strict: config.strictTls,
            // A file source is validated as an import is, against the same anchors.
            trusted: keystore.trusted,
          },
          localNames: localServerNames(host, config.sans),
          commonName: host,
          localNameConstraints: config.localCaNameConstraints,
          host: config.host,
          port: config.port,
          handler,
          logger: logger.child({ layer: 'runtime' }),
          runtime: {
            contextCacheSize: config.sniCacheSize,
            sessionCacheSize: config.sessionIdCacheSize,
            ticketKeyRotationMs: config.ticketKeyRotationHours * 3600_000,
          },
        });
        return supervisor.runtime.server;
      },
    });
    await app.ready();
    await supervisor!.start();
    // Only once the identity is served: a start refused for a damaged store writes nothing.
    const initialAdmin = await ensureInitialAdmin(keystore, {
      env,
      log: logger.child({ layer: 'service' }),
    });
    const address = supervisor!.runtime.address()!;
    return {
      supervisor: supervisor!,
      keystore,
      store,
      url: `https://${urlHost(config.host, host)}:${address.port}/`,
      initialAdmin,
      stop: async () => {
        await supervisor!.stop();
        await app.close();
        await store.close();
      },
    };
  } catch (err) {
    await supervisor?.stop().catch(() => undefined);
    await store.close();
    throw listenError(err, config) ?? err;
  }
}

/**
 * The coded error for a listener that could not be opened (the port taken, a privileged
 * port, an address this machine does not have), worded for the command line; undefined
 * for any other error.
 */
function listenError(err: unknown, config: ServeConfig): RuntimeError | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall !== 'listen' && e?.syscall !== 'bind') return undefined;
  const host = e.address ?? config.host;
  const port = e.port ?? config.port;
  const options = { cause: err, details: { host, port, reason: e.code } };
  switch (e.code) {
    case 'EADDRINUSE':
      return new RuntimeError(
        'AddressInUse',
        `port ${port} on ${host} is in use by another process; stop it or choose another with --port`,
        options,
      );
    case 'EACCES':
    case 'EPERM':
      return new RuntimeError(
        'ListenFailed',
        `port ${port} on ${host} needs privileges this process does not have; choose a port above 1023 with --port, or grant it cap_net_bind_service`,
        options,
      );
    case 'EADDRNOTAVAIL':
      return new RuntimeError(
        'ListenFailed',
        `${host} is not an address of this machine; choose another with --host`,
        options,
      );
    default:
      return new RuntimeError(
        'ListenFailed',
        `cannot listen on port ${port} on ${host}: ${e.code ?? e.message}`,
        options,
      );
  }
}

/** `certkeeper serve`: runs until SIGINT or SIGTERM; SIGHUP re-runs the source lookup. */
export async function runServe(
  argv: string[],
  io: Io,
  env: Record<string, string | undefined>,
): Promise<number> {
  const config = await loadServeConfig(argv, env);
  if (config === 'help') {
    io.stdout.write(`${SERVE_HELP}\n`);
    return 0;
  }
  const logger = createServeLogger(env);
  let server: RunningServer;
  try {
    server = await startServer(config, env, logger);
  } catch (err) {
    if (err instanceof SourceError) {
      // With --strict-tls any broken source ends the start; without, only a broken last
      // resort (the local CA, when nothing before it could serve).
      const why = config.strictTls ? '--strict-tls: ' : 'no certificate to serve: ';
      io.stderr.write(`${err.attempt.code}: ${why}${err.message}\n`);
      return 1;
    }
    // main prints one line for it; the stack goes to the log, at debug level.
    logger.debug({ err }, 'start-up failed');
    throw err;
  }
  const status = server.supervisor.status()!;
  io.stdout.write(
    [
      `certkeeper is serving ${server.url}`,
      `  certificate sha256=${status.fingerprint}`,
      `  source      ${status.source} (${status.what})`,
      `  local CA    ${server.url}ca/root.pem (trust it once to trust the local certificates)`,
      '',
    ].join('\n'),
  );
  const admin = server.initialAdmin;
  if (admin.created && admin.oneTimePassword !== undefined) {
    // Shown once, here only: the log says that the admin was created, never the password.
    io.stdout.write(
      `  first admin "${admin.username}", one-time password (change it at the first login): ${admin.oneTimePassword}\n`,
    );
  }
  return new Promise<number>((resolve) => {
    const onHup = () =>
      void server.supervisor
        .reload()
        .catch((err: unknown) =>
          logger.error({ err: String(err) }, 'Reloading the certificate sources failed.'),
        );
    const onStop = () => {
      process.off('SIGHUP', onHup);
      process.off('SIGINT', onStop);
      process.off('SIGTERM', onStop);
      void server.stop().then(() => resolve(0));
    };
    process.on('SIGHUP', onHup);
    process.on('SIGINT', onStop);
    process.on('SIGTERM', onStop);
  });
}
