/**
 * Identities for the runtime tests, made at test time with core/generate: one ECDSA
 * P-256 CA issuing ECDSA P-256 leaves (one key per leaf), and a TLS client that reports
 * what a handshake saw.
 */
import type { KeyObject } from 'node:crypto';
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../../src/core/generate.js';
import { toPem } from '../../src/core/pem.js';
import type { RuntimeLogger } from '../../src/runtime/identity.js';
import { type Identity, identityFromPem } from '../../src/runtime/identity.js';

export interface TestCa {
  certificate: Certificate;
  key: KeyObject;
  certPem: string;
}

export async function makeCa(name = 'Runtime Test CA', now = new Date()): Promise<TestCa> {
  const { privateKey } = await generateKeyPair({ type: 'ec', curve: 'P-256' });
  const der = await createSelfSignedCa({ key: privateKey, subject: { CN: name }, days: 30, now });
  const certificate = parseCertificate(der);
  return { certificate, key: privateKey, certPem: toPem('CERTIFICATE', der) };
}

/** A leaf for `names` (its own P-256 key), served with the CA certificate as chain. */
export async function makeIdentity(
  ca: TestCa,
  names: string[],
  options: { source?: string; alias?: string; now?: Date; rsa?: boolean } = {},
): Promise<Identity> {
  const { privateKey, publicKey } = await generateKeyPair(
    options.rsa ? { type: 'rsa', bits: 2048 } : { type: 'ec', curve: 'P-256' },
  );
  const der = await issueCertificate({
    issuer: { certificate: ca.certificate, key: ca.key },
    publicKey,
    subject: { CN: names[0] ?? 'leaf' },
    sans: { dns: names, ip: ['127.0.0.1'] },
    days: 7,
    now: options.now ?? new Date(),
  });
  return identityFromPem({
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: toPem('CERTIFICATE', der),
    chain: ca.certPem,
    source: options.source ?? 'test',
    ...(options.alias === undefined ? {} : { alias: options.alias }),
  });
}

/**
 * `identity` with the first bytes of its private scalar flipped, the public key in the
 * PKCS#8 left as it was: OpenSSL's key/certificate check compares public keys only, so
 * the context builds, and only a handshake (the probe) finds the bad signature.
 */
export function corruptPrivateHalf(identity: Identity): Identity {
  const der = Buffer.from(identity.keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  // PKCS#8 P-256: 36 bytes of headers, then the 32-byte private scalar.
  for (let i = 36; i < 40; i++) der[i]! ^= 0xff;
  return { ...identity, keyPem: toPem('PRIVATE KEY', der) };
}

/** A copy of `identity` with another object identity but the same content. */
export function cloneIdentity(identity: Identity): Identity {
  return { ...identity, keyPem: `${identity.keyPem}`, certPem: `${identity.certPem}` };
}

export interface Handshake {
  /** The leaf fingerprint the server sent (null on a resumed TLS 1.2/1.3 session). */
  fingerprint: string | null;
  reused: boolean;
  protocol: string | null;
  /** The last session the server gave (ticket or id), for resumption. */
  session: Buffer | undefined;
  /** The body of `GET /` (the test handler answers with the fingerprint it serves with). */
  body: string;
}

/**
 * One TLS connection to 127.0.0.1:port that sends `GET /` with `Connection: close`,
 * reads the answer, and reports the handshake. Rejects on a handshake failure.
 */
export function handshake(
  port: number,
  options: Omit<ConnectionOptions, 'host' | 'port'> = {},
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    let session: Buffer | undefined;
    let body = '';
    let seen: Omit<Handshake, 'session' | 'body'> | undefined;
    socket.setEncoding('utf8');
    socket.on('session', (s: Buffer) => {
      session = s;
    });
    socket.once('secureConnect', () => {
      seen = {
        fingerprint: socket.getPeerX509Certificate()?.fingerprint256 ?? null,
        reused: socket.isSessionReused(),
        protocol: socket.getProtocol(),
      };
      socket.write('GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', (chunk: string) => {
      body += chunk;
    });
    socket.once('error', reject);
    socket.once('close', () => {
      if (!seen) {
        reject(new Error('closed before the handshake'));
        return;
      }
      resolve({ ...seen, session, body: body.slice(body.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/** A keep-alive connection for several requests in a row. */
export async function openConnection(
  port: number,
  options: Omit<ConnectionOptions, 'host' | 'port'> = {},
): Promise<{ socket: TLSSocket; request(): Promise<string>; close(): void }> {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    request: () =>
      new Promise((resolve, reject) => {
        let buffer = '';
        const onData = (chunk: string): void => {
          buffer += chunk;
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) return;
          const length = Number(/content-length: (\d+)/i.exec(buffer)?.[1] ?? 0);
          if (buffer.length < end + 4 + length) return;
          socket.off('data', onData);
          socket.off('error', reject);
          resolve(buffer.slice(end + 4, end + 4 + length));
        };
        socket.on('data', onData);
        socket.once('error', reject);
        socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
      }),
    close: () => socket.destroy(),
  };
}

/** A logger that keeps every entry, to assert on codes and to check for leaked secrets. */
export function memoryLogger(): RuntimeLogger & {
  entries: { level: string; obj: object; msg: string }[];
} {
  const entries: { level: string; obj: object; msg: string }[] = [];
  return {
    entries,
    info: (obj, msg) => entries.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => entries.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => entries.push({ level: 'error', obj, msg }),
  };
}

/** A clock the test moves by hand. */
export function fakeClock(start = new Date('2030-01-01T00:00:00Z')): {
  now(): Date;
  advance(ms: number): void;
} {
  let t = start.getTime();
  return { now: () => new Date(t), advance: (ms) => (t += ms) };
}
