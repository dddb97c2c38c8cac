import type { RequestListener } from 'node:http';
import type { Server } from 'node:https';
import { hostname } from 'node:os';
import type { CertkeeperApiOptions } from '../api/plugin.js';
import { type RuntimeLogger, silentLogger } from '../runtime/identity.js';
import { type ServedStatus, Supervisor, urlHost } from '../runtime/supervisor.js';
import type { ApplyResult } from '../runtime/tls-runtime.js';
import { ensureInitialAdmin, type InitialAdminResult } from '../service/initial-admin.js';
import { type Keystore, openKeystore } from '../service/keystore.js';
import { localServerNames } from '../service/local-ca.js';

export interface CertkeeperOptions {
  /** The data directory: its keystore is created on first use, as `certkeeper serve` does. */
  dataDir: string;
  /** Host names and IP addresses the local CA's certificate covers besides this host's name, `localhost` and the loopback addresses. */
  names?: string[];
  /** The port to listen on (default 8443; 0 picks a free one). */
  port?: number;
  /** The address to listen on (default: all of them). */
  host?: string;
  /**
   * Where the master key (`CERTKEEPER_MASTER_KEY`), the certificate sources
   * (`CERTKEEPER_SSL_*`) and the first admin's password are read: `process.env` by default.
   */
  env?: Record<string, string | undefined>;
  /** A pino logger (or any with `info`, `warn`, `error`): the runtime logs swaps, refusals and rollbacks. Silent when absent. */
  logger?: RuntimeLogger;
}

/** What `listen` resolves: where it serves, and the first admin if this start created it. */
export interface Listening {
  url: string;
  port: number;
  /** The one-time password (when `created` without `CERTKEEPER_ADMIN_PASSWORD`) is shown here only: show it once. */
  initialAdmin: InitialAdminResult;
}

/** An open data directory, serving through an HTTPS server whose certificates it swaps live. */
export interface Certkeeper {
  /** The keystore, for the service operations (`importEntry`, `activateServer`…). */
  readonly keystore: Keystore;
  /** The options of the `certkeeperApi` Fastify plugin for this keystore and this runtime. */
  readonly apiOptions: CertkeeperApiOptions;
  /**
   * The HTTPS server that answers with `handler`; created once. Certkeeper owns its TLS
   * settings and its listener: call `listen()`, not `server.listen()`. Works as Fastify's
   * `serverFactory`.
   */
  createServer(handler: RequestListener): Server;
  /**
   * Installs the served identity (the startup sources, then the keystore's `server`
   * binding, then the local CA), starts listening, self-probes and follows the keystore.
   */
  listen(): Promise<Listening>;
  /** Runs the startup source lookup again (as SIGHUP does for `certkeeper serve`). */
  reload(): Promise<ApplyResult | undefined>;
  /** What is served now; undefined before `listen`. */
  status(): ServedStatus | undefined;
  /** Stops following and listening (open connections get a grace period), then closes the keystore. */
  close(): Promise<void>;
}

const DEFAULT_PORT = 8443;

/**
 * Opens a data directory for serving HTTPS from another Node.js program.
 *
 * The server comes from certkeeper (`createServer`, or Fastify's `serverFactory`) rather
 * than TLS options for `https.createServer`, because a live swap needs the listener
 * itself: each identity is installed as the listener's default context
 * (`setSecureContext`, which also serves clients without SNI, which no `SNICallback`
 * sees), each connection gets its SNI context before TLS starts (an `SNICallback`
 * context adds its certificate to the default one's, nodejs/node#54235), the listener
 * opens only once the first identity is installed (so no handshake meets a server without
 * a certificate), and the self-probe connects to it after every swap to roll back a swap
 * that serves the wrong certificate. That is `certkeeper serve`'s own runtime: new
 * connections see a change within milliseconds of its commit, open ones finish on the
 * old certificate, and nothing restarts.
 *
 * @example
 *   const ck = await openCertkeeper({ dataDir: '/var/lib/myapp/tls', names: ['myapp.example'] });
 *   const app = Fastify({ serverFactory: ck.createServer });
 *   await app.register(certkeeperApi, { prefix: '/certkeeper', ...ck.apiOptions });
 *   await app.ready();
 *   await ck.listen();
 */
export async function openCertkeeper(options: CertkeeperOptions): Promise<Certkeeper> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  const keystore = await openKeystore(options.dataDir, env, { create: true });
  const host = hostname();
  let supervisor: Supervisor | undefined;
  let listened: Promise<Listening> | undefined;
  let closed: Promise<void> | undefined;

  const createServer = (handler?: RequestListener): Server => {
    if (supervisor) {
      throw new Error('The certkeeper server was created already; create it once.');
    }
    if (closed) throw new Error('This certkeeper was closed.');
    supervisor = new Supervisor({
      store: keystore.store,
      sources: {
        dataDir: options.dataDir,
        flags: {},
        config: {},
        env,
        strict: false,
        // A file source is validated as an import is, against the same anchors.
        trusted: keystore.trusted,
      },
      localNames: localServerNames(host, options.names),
      commonName: host,
      ...(options.host ? { host: options.host } : {}),
      port: options.port ?? DEFAULT_PORT,
      ...(handler ? { handler } : {}),
      logger,
    });
    return supervisor.runtime.server;
  };

  const start = async (): Promise<Listening> => {
    if (!supervisor) createServer();
    await supervisor!.start();
    // Only once the identity is served: a start refused for a damaged store writes nothing.
    const initialAdmin = await ensureInitialAdmin(keystore, { env, log: logger });
    const { address, port } = supervisor!.runtime.address()!;
    return {
      url: `https://${urlHost(address, host)}:${port}/`,
      port,
      initialAdmin,
    };
  };

  return {
    keystore,
    apiOptions: {
      keystore,
      tlsStatus: () => supervisor?.status(),
      counters: () => supervisor?.counters(),
    },
    createServer,
    listen: () => {
      if (closed) return Promise.reject(new Error('This certkeeper was closed.'));
      listened ??= start();
      return listened;
    },
    reload: () => supervisor?.reload() ?? Promise.resolve(undefined),
    status: () => supervisor?.status(),
    close: () => {
      closed ??= (async () => {
        await listened?.catch(() => undefined);
        await supervisor?.stop();
        await keystore.close();
      })();
      return closed;
    },
  };
}
