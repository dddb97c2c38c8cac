/**
 * bench/context-build: what one SNI context miss costs. The runtime builds a Node
 * `SecureContext` for an SNI identity on the first handshake that needs it (and again
 * after the context has left the LRU), so this is the price of a cache miss, and what a
 * cached context costs in memory.
 *
 * Each variant is `tls.createSecureContext` over `--count` (2,000) distinct ECDSA P-256
 * leaf certificates sharing one key, in this process pinned to CPU 0, median of `--runs`
 * (3): an empty context (`SSL_CTX_new` and Node's defaults), the key alone (SEC1 and
 * PKCS#8), the certificate alone, and key + certificate with and without the runtime's
 * protocol options (what `buildSecureContext` does). Then `--keep` (10,000) contexts are
 * built and held, and the RSS they add is divided by their number.
 *
 * Run: `node --expose-gc --import tsx bench/context-build.ts [--count 2000] [--runs 3]
 *       [--keep 10000] [--json]`
 */

import { execFileSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { parseCertificate } from '../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../src/core/generate.js';
import { toPem } from '../src/core/pem.js';
import { TLS_PROTOCOL_OPTIONS } from '../src/runtime/identity.js';

const argv = process.argv.slice(2);
const get = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};
const count = Number(get('count', '2000'));
const runs = Number(get('runs', '3'));
const keep = Number(get('keep', '10000'));

let pinned = false;
try {
  execFileSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' });
  pinned = true;
} catch {}

const now = new Date();
const caKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
const ca = parseCertificate(
  await createSelfSignedCa({ key: caKey, subject: { CN: 'Context CA' }, days: 30, now }),
);
const leaf = await generateKeyPair({ type: 'ec', curve: 'P-256' });
const certs: string[] = [];
for (let i = 0; i < count; i++) {
  const der = await issueCertificate({
    issuer: { certificate: ca, key: caKey },
    publicKey: leaf.publicKey,
    subject: { CN: `h${i}.context.test` },
    sans: { dns: [`h${i}.context.test`] },
    days: 7,
    now,
  });
  certs.push(toPem('CERTIFICATE', der));
}
const pkcs8 = leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const sec1 = createPrivateKey(pkcs8).export({ type: 'sec1', format: 'pem' }) as string;

const variants: Record<string, (cert: string) => unknown> = {
  'empty context': () => createSecureContext({}),
  'key only (PKCS#8)': () => createSecureContext({ key: pkcs8 }),
  'key only (SEC1)': () => createSecureContext({ key: sec1 }),
  'certificate only': (cert) => createSecureContext({ cert }),
  'key + certificate': (cert) => createSecureContext({ key: pkcs8, cert }),
  'key + certificate + runtime options (buildSecureContext)': (cert) =>
    createSecureContext({ ...TLS_PROTOCOL_OPTIONS, key: pkcs8, cert }),
};

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const usPerBuild: Record<string, number[]> = {};
for (let run = 0; run < runs; run++) {
  for (const [name, build] of Object.entries(variants)) {
    const t0 = performance.now();
    for (const cert of certs) build(cert);
    const us = ((performance.now() - t0) * 1000) / certs.length;
    usPerBuild[name] = [...(usPerBuild[name] ?? []), us];
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const rss0 = process.memoryUsage().rss;
const held: unknown[] = [];
const build = variants['key + certificate + runtime options (buildSecureContext)']!;
for (let i = 0; i < keep; i++) held.push(build(certs[i % certs.length]!));
gc?.();
const rssPerContextKb = (process.memoryUsage().rss - rss0) / held.length / 1024;

const report = {
  node: process.version,
  openssl: process.versions.openssl,
  pinned,
  certificates: `${count} distinct ECDSA P-256 leaves, one shared key`,
  microsecondsPerBuild: Object.fromEntries(
    Object.entries(usPerBuild).map(([name, v]) => [name, Math.round(median(v))]),
  ),
  heldContexts: held.length,
  rssPerContextKb: Math.round(rssPerContextKb * 10) / 10,
  gcExposed: gc !== undefined,
};
console.log(argv.includes('--json') ? JSON.stringify(report) : JSON.stringify(report, null, 2));
