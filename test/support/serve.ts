/**
 * A real `certkeeper serve` started in this process on a free loopback port, and the two
 * ways the tests talk to it: a bare TLS handshake (which certificate is served) and HTTPS
 * requests to its API. Neither checks the served certificate: what is served is what the
 * tests check.
 */
import { connect } from 'node:tls';
import pino, { type Logger } from 'pino';
import { Agent, type Dispatcher, request } from 'undici';
import { type RunningServer, startServer } from '../../src/cli/serve.js';
import { loadServeConfig, type ServeConfig } from '../../src/cli/serve-config.js';

/** Starts `certkeeper serve ...args` in this process, on a free port of 127.0.0.1. */
export async function startTestServer(
  args: string[],
  env: Record<string, string | undefined> = {},
  logger: Logger = pino({ level: 'silent' }),
): Promise<{ server: RunningServer; port: number }> {
  // The environment reaches both, as for `certkeeper serve`: the config reads
  // CERTKEEPER_PORT/HOST/DATA_DIR (the flags here win), the server the rest.
  const config = (await loadServeConfig(
    ['--port', '0', '--host', '127.0.0.1', ...args],
    env,
  )) as ServeConfig;
  const server = await startServer(config, env, logger);
  return { server, port: server.supervisor.runtime.address()!.port };
}

/** The SHA-256 fingerprint (colon hex) of the certificate a fresh handshake is served. */
export function servedFingerprint(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) },
      () => {
        const cert = socket.getPeerX509Certificate();
        socket.destroy();
        if (cert) resolve(cert.fingerprint256);
        else reject(new Error('no peer certificate'));
      },
    );
    socket.once('error', reject);
  });
}

/** What the server answered: its status, headers and the body as text. */
export interface ServeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTPS request to the server on `port`; `json` is sent as the body, `token` as a bearer. */
export async function requestJson(
  port: number,
  path: string,
  options: { method?: Dispatcher.HttpMethod; token?: string; json?: unknown } = {},
): Promise<ServeAnswer> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  // One agent a request, closed after it: no connection outlives the call to hold a stop.
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const res = await request(`https://127.0.0.1:${port}${path}`, {
      method: options.method ?? 'GET',
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      dispatcher: agent,
    });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  } finally {
    await agent.close();
  }
}
