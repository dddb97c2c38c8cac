/**
 * The self-probe: after a swap the runtime connects to its own listener, as a client
 * would, once per name to check, and compares the leaf fingerprint it is served with the
 * one the new state promises. It checks what really reaches the wire — the default
 * context (no SNI), the SNI fallback and SNI contexts built lazily by that very
 * handshake — not what the runtime believes it installed.
 */
import type { AddressInfo, Socket } from 'node:net';
import { isIP } from 'node:net';
import { connect, createServer, type Server } from 'node:tls';
import { contextBuildError, type Identity, secureContextOptions } from './identity.js';

/** One name to check. `servername: null` connects without SNI, as clients of an IP do. */
export interface ProbeTarget {
  servername: string | null;
  /** The fingerprint (colon hex) this name must be served. */
  expected: string;
  /** What the name stands for, for people: `server`, `sni:*.example.com`… */
  binding: string;
}

export interface ProbeCheck extends ProbeTarget {
  ok: boolean;
  /** The fingerprint actually served, or null when the handshake failed. */
  served: string | null;
  /** Why the handshake failed (an OpenSSL or Node code), or null. */
  error: string | null;
  ms: number;
}

/** The outcome of one probe, as `GET /api/v1/server/tls` shows it. */
export interface ProbeReport {
  /** When the probe started (ISO 8601, by the runtime's clock). */
  at: string;
  /** The revision that was probed. */
  revision: number;
  ok: boolean;
  ms: number;
  host: string;
  port: number;
  checks: ProbeCheck[];
  /** The checks that failed (a subset of `checks`). */
  failures: ProbeCheck[];
}

export const DEFAULT_PROBE_TIMEOUT_MS = 3000;
export const DEFAULT_PROBE_CONCURRENCY = 4;

/**
 * The loopback address that reaches a listener bound to `address`: 127.0.0.1 for the
 * IPv4 wildcard, ::1 for the IPv6 wildcard, the address itself otherwise.
 */
export function loopbackFor(address: string): string {
  if (address === '' || address === '0.0.0.0') return '127.0.0.1';
  if (address === '::' || address === '::0') return '::1';
  return address;
}

/** Runs one TLS handshake against host:port and reports the served leaf. */
export function probeOnce(
  host: string,
  port: number,
  target: ProbeTarget,
  timeoutMs = DEFAULT_PROBE_TIMEOUT_MS,
): Promise<ProbeCheck> {
  const started = performance.now();
  return new Promise((resolve) => {
    let done = false;
    const servername =
      target.servername && !isIP(target.servername) ? target.servername : undefined;
    const socket = connect({
      host,
      port,
      ...(servername === undefined ? {} : { servername }),
      // The probe checks which certificate is served, not whether a client trusts it.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });
    const finish = (served: string | null, error: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error === null) {
        // Close politely: a TLS 1.3 client is connected before the server has read its
        // Finished, and a reset here would count as a failed handshake on the server.
        socket.end();
        const linger = setTimeout(() => socket.destroy(), timeoutMs);
        linger.unref();
        socket.once('close', () => clearTimeout(linger));
      } else {
        socket.destroy();
      }
      const ok = error === null && served !== null && sameFingerprint(served, target.expected);
      resolve({
        ...target,
        ok,
        served,
        error: error ?? (ok ? null : 'FingerprintMismatch'),
        ms: Math.round((performance.now() - started) * 100) / 100,
      });
    };
    const timer = setTimeout(() => finish(null, `Timeout after ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      finish(cert?.fingerprint256 ?? null, cert ? null : 'NoPeerCertificate');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => finish(null, err.code ?? err.message));
    socket.once('close', () => finish(null, 'ConnectionClosed'));
  });
}

/** Probes every target, a few at a time; checks come back in the order of `targets`. */
export async function probeListener(options: {
  host: string;
  port: number;
  targets: ProbeTarget[];
  timeoutMs?: number;
  concurrency?: number;
}): Promise<ProbeCheck[]> {
  const { host, port, targets } = options;
  const checks: ProbeCheck[] = new Array(targets.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const i = next++;
      checks[i] = await probeOnce(host, port, targets[i]!, options.timeoutMs);
    }
  };
  const workers = Math.max(
    1,
    Math.min(options.concurrency ?? DEFAULT_PROBE_CONCURRENCY, targets.length),
  );
  await Promise.all(Array.from({ length: workers }, worker));
  return checks;
}

function sameFingerprint(a: string, b: string): boolean {
  return a.replaceAll(':', '').toUpperCase() === b.replaceAll(':', '').toUpperCase();
}

/**
 * One handshake with `identity`, served alone on a loopback port with the runtime's TLS
 * settings, before it is chosen: OpenSSL loads some identities that no Node client can
 * complete a handshake with (a secp256k1 or DSA key under TLS 1.3). An identity OpenSSL
 * refuses to load at all is thrown as `ContextBuildFailed`.
 */
export async function probeIdentity(
  identity: Identity,
  timeoutMs = DEFAULT_PROBE_TIMEOUT_MS,
): Promise<ProbeCheck> {
  let server: Server;
  try {
    server = createServer(secureContextOptions(identity));
  } catch (cause) {
    throw contextBuildError(identity, cause);
  }
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  // The failure is the client's to report; the server side of it says less.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const { port } = server.address() as AddressInfo;
    return await probeOnce(
      '127.0.0.1',
      port,
      { servername: null, expected: identity.fingerprint, binding: 'server' },
      timeoutMs,
    );
  } finally {
    server.close();
    for (const s of sockets) s.destroy();
  }
}
