/**
 * bench/sni-scale: a `TlsRuntime` with 1, 10,000 and 100,000 SNI bindings — how long
 * `start()` takes, the process's RSS, and the full-handshake rate against the 1-binding
 * case; then the same for `certkeeper serve` itself, a `Supervisor` over a SQLite store.
 *
 * What is generated (honestly): one CA and ONE shared ECDSA P-256 leaf key; a pool of
 * `--pool` (default 10,000) distinct leaf certificates issued with core/generate for that
 * key. The 10,000 case binds one name per certificate; the 100,000 case binds 10 names
 * per certificate (10,000 distinct fingerprints, so at most 10,000 distinct contexts).
 * Every binding gets its own copy of its certificate PEM, so memory is that of 100,000
 * stored PEMs; the private key is one shared string (a distinct P-256 key would add
 * ~0.25 KB per binding, an RSA-2048 key ~1.7 KB).
 *
 * Each scale runs in a fresh server process pinned to CPU 0; the load generator (this
 * file with `--client`) is pinned to CPU 1: `tls.connect` with SNI, full TLS 1.3
 * handshakes, one `GET /`, 16 in flight. Two name distributions: "hot" (500 names, whose
 * contexts fit the 1,000-entry LRU after warm-up) and "uniform" over all names (at 10k
 * and 100k mostly LRU misses: every such handshake builds a context). The Node client
 * can saturate its core before the server does, so the server's CPU time per handshake
 * is reported too, and its ratio is the capacity ratio. Medians over `--runs`.
 *
 * The store path (`--store-scales`, default 1, 10,000 and 100,000; `--store-runs` runs
 * each, default 1, medians over them; fresh process on CPU 0): what `certkeeper serve`
 * does with that many SNI bindings in its data directory. The bindings are written to a
 * temporary SQLite store, 10,000 per change: every binding `sni:<name>` has its own
 * alias and its own key-pair entry (its own row, its own copy of the certificate PEM and
 * its own sealed copy of the key), but all entries hold the SAME P-256 key and the pool's
 * certificates (at 100,000, 10 entries per certificate). Then `Supervisor.start()` is
 * timed (it reads one row per binding, `listBoundEntries`, and makes a reference per
 * binding; keys and certificates are read on the first handshake for a name), RSS after
 * it, and one unrelated change (a new binding of an existing entry) from commit to
 * applied. Then the process keeps serving and gets the same warm-up, hot and uniform
 * windows as the runtime scales. The runtime's context cache is keyed by entry (alias and
 * revision), not by content, so here every binding is a distinct context even where
 * entries share a certificate: a uniform miss reads the entry and its key from SQLite,
 * decrypts the key and builds a context. Ratios are against the smallest store scale
 * (the 1-entry store by default). Handshake failures (client errors or non-200 answers)
 * and errors the supervisor logged are counted and reported.
 *
 * `--cache N` sets the runtime's SNI context cache (`contextCacheSize`, the `sniCacheSize`
 * setting; default 1,000; the store path uses it too); `--prewarm` builds a context for
 * every distinct identity (up to N) before the runtime windows, timed, as a server that
 * has run for a while would have them: at N ≥ the number of distinct certificates the
 * uniform case then stops missing, at the memory cost of N contexts (RSS after the
 * prewarm is reported). The report ends with the issue's targets for the largest scale
 * of each path, each marked met or not.
 *
 * Run: `npm run bench:sni -- [--runs 3] [--seconds 3] [--pool 10000]
 *       [--scales 1,10000,100000] [--cache 1000] [--prewarm]
 *       [--store-scales 1,10000,100000] [--store-runs 1] [--json]`
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { parseCertificate } from '../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../src/core/generate.js';
import { toPem } from '../src/core/pem.js';
import type { ContextCacheStats } from '../src/runtime/context-cache.js';
import type { Identity, RuntimeLogger } from '../src/runtime/identity.js';
import { TlsRuntime } from '../src/runtime/tls-runtime.js';
import { openDataDir } from '../src/store/data-dir.js';
import type { Mutation } from '../src/store/store.js';
import { benchSupervisor, okHandler } from './bench-supervisor.js';

const HOT_NAMES = 500;
const name = (i: number): string => `h${i}.scale.test`;

interface Pool {
  keyPem: string;
  certs: { pem: string; fingerprint: string }[];
}

// ---------------------------------------------------------------------------------------
// Load generator (child)

interface LoadCommand {
  type: 'load';
  port: number;
  ms: number;
  names: number;
  concurrency: number;
  /** Connect once to each name in order, then stop (the warm-up), instead of at random until `ms`. */
  sweep?: boolean;
}

function runClient(): void {
  process.on('message', async (message: LoadCommand) => {
    if (message.type !== 'load') return;
    let handshakes = 0;
    let failures = 0;
    const started = performance.now();
    const deadline = started + message.ms;
    let swept = 0;
    const pick = (): number =>
      message.sweep ? swept++ : Math.floor(Math.random() * message.names);
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const socket = connect({
          host: '127.0.0.1',
          port: message.port,
          servername: name(pick()),
          rejectUnauthorized: false,
        });
        let response = '';
        socket.setEncoding('utf8');
        socket.once('secureConnect', () => {
          handshakes++;
          socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        });
        socket.on('data', (d: string) => (response += d));
        socket.once('end', () => {
          if (!response.startsWith('HTTP/1.1 200')) failures++;
          socket.destroy();
          resolve();
        });
        socket.once('error', () => {
          failures++;
          socket.destroy();
          resolve();
        });
      });
    const worker = async (): Promise<void> => {
      if (message.sweep) {
        while (swept < message.names) await one();
      } else {
        while (performance.now() < deadline) await one();
      }
    };
    await Promise.all(Array.from({ length: message.concurrency }, worker));
    process.send!({ type: 'loaded', handshakes, failures, ms: performance.now() - started });
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------
// Server (child)

async function runServer(
  poolFile: string,
  bindings: number,
  cacheSize: number,
  prewarm: boolean,
): Promise<void> {
  const pool = JSON.parse(readFileSync(poolFile, 'utf8')) as Pool;
  const perCert = Math.max(1, Math.ceil(bindings / pool.certs.length));
  const serverCert = pool.certs[0]!;
  const server: Identity = {
    keyPem: pool.keyPem,
    certPem: serverCert.pem,
    fingerprint: serverCert.fingerprint,
    source: 'bench',
  };
  const t0 = performance.now();
  const sni = new Map<string, Identity>();
  for (let i = 0; i < bindings; i++) {
    const cert = pool.certs[Math.floor(i / perCert) % pool.certs.length]!;
    sni.set(name(i), {
      keyPem: pool.keyPem,
      // A copy per binding, as a store read would give.
      certPem: Buffer.from(cert.pem).toString(),
      fingerprint: cert.fingerprint,
      alias: `a${i}`,
      source: 'keystore',
    });
  }
  const stateMs = performance.now() - t0;
  global.gc?.();
  const t1 = performance.now();
  const runtime = new TlsRuntime({
    host: '127.0.0.1',
    port: 0,
    handler: okHandler,
    contextCacheSize: cacheSize,
  });
  const started = await runtime.start({ revision: 1, server, sni });
  const readyMs = performance.now() - t1;
  const { rss: rssReady, heapUsed } = process.memoryUsage();
  // --prewarm: a context for every distinct identity the cache can hold, as a server
  // that has run for a while has (a uniform window alone is too short to fill a big cache).
  let prewarmMs = 0;
  let rssPrewarmed = rssReady;
  if (prewarm) {
    const p0 = performance.now();
    let built = 0;
    for (const identity of sni.values()) {
      if (built >= cacheSize) break;
      if (runtime.contexts.has(identity)) continue;
      runtime.contexts.get(identity);
      built++;
    }
    prewarmMs = performance.now() - p0;
    global.gc?.();
    rssPrewarmed = process.memoryUsage().rss;
  }
  process.send!({
    type: 'ready',
    port: runtime.address()!.port,
    ok: started.ok,
    stateMs,
    readyMs,
    rssReady,
    heapUsed,
    prewarmMs,
    rssPrewarmed,
  } satisfies ReadyMessage);
  answerWindows(
    () => runtime.contexts.stats(),
    () => runtime.stop(),
  );
}

/** What a server child sends once it serves. */
interface ReadyMessage {
  type: 'ready';
  port: number;
  ok: boolean;
  /** Building the in-memory state (runtime path only). */
  stateMs?: number;
  /** `TlsRuntime.start()`, or `Supervisor.start()` on the store path. */
  readyMs: number;
  rssReady: number;
  heapUsed: number;
  prewarmMs?: number;
  rssPrewarmed?: number;
  /** The store path's own figures. */
  store?: StoreSample;
}

/** What a server child answers after a window. */
interface CpuMessage {
  type: 'cpu';
  cpuMs: number;
  rss: number;
  rssAfterGc: number;
  contexts: ContextCacheStats;
  /** Errors logged so far (store path: the supervisor's logger). */
  errors?: number;
}

/**
 * The server side of the window protocol, shared by both paths: `mark` starts a CPU
 * window, `cpu` ends it (CPU time, RSS before and after a GC, the context cache's
 * counters), `stop` stops serving and exits.
 */
function answerWindows(
  contexts: () => ContextCacheStats,
  stop: () => Promise<void>,
  errors?: () => number,
): void {
  let cpu = process.cpuUsage();
  process.on('message', async (message: { type: string }) => {
    if (message.type === 'mark') {
      cpu = process.cpuUsage();
      process.send!({ type: 'marked' });
    } else if (message.type === 'cpu') {
      const used = process.cpuUsage(cpu);
      const rss = process.memoryUsage().rss;
      global.gc?.();
      process.send!({
        type: 'cpu',
        cpuMs: (used.user + used.system) / 1000,
        rss,
        rssAfterGc: process.memoryUsage().rss,
        contexts: contexts(),
        ...(errors ? { errors: errors() } : {}),
      } satisfies CpuMessage);
    } else if (message.type === 'stop') {
      await stop();
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------------------------------
// Store path (child)

interface StoreSample {
  bindings: number;
  writeMs: number;
  startMs: number;
  startOk: boolean;
  sniNames: number;
  rssStartedMb: number;
  /** One more binding: from its commit to the runtime having applied the new state. */
  followMs: number;
  /** Errors logged by the supervisor up to the first window. */
  errors: number;
}

async function runStoreServer(
  poolFile: string,
  bindings: number,
  cacheSize: number,
): Promise<void> {
  const pool = JSON.parse(readFileSync(poolFile, 'utf8')) as Pool;
  const keyDer = createPrivateKey(pool.keyPem).export({ type: 'pkcs8', format: 'der' });
  const perCert = Math.max(1, Math.ceil(bindings / pool.certs.length));
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-sni-store-'));
  // However the process ends (stop, a crash, the parent gone), the store goes with it.
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  process.on('disconnect', () => process.exit(0));
  const dataDir = join(dir, 'data');
  const store = await openDataDir(dataDir, {}, { create: true });
  const w0 = performance.now();
  for (let from = 0; from < bindings; from += 10_000) {
    const mutations: Mutation[] = [];
    for (let i = from; i < Math.min(bindings, from + 10_000); i++) {
      const cert = pool.certs[Math.floor(i / perCert) % pool.certs.length]!;
      mutations.push(
        {
          type: 'putEntry',
          entry: {
            alias: `a${i}`,
            kind: 'key-pair',
            certificatePem: cert.pem,
            chainPem: '',
            privateKeyDer: keyDer,
            fingerprint: cert.fingerprint,
          },
        },
        { type: 'bind', name: `sni:${name(i)}`, alias: `a${i}` },
      );
    }
    await store.applyChange({ actor: 'bench', action: 'import', mutations });
  }
  const writeMs = performance.now() - w0;
  let errors = 0;
  const logger: RuntimeLogger = {
    info() {},
    warn() {},
    error() {
      errors++;
    },
  };
  const supervisor = benchSupervisor(store, dataDir, logger, { contextCacheSize: cacheSize });
  global.gc?.();
  const s0 = performance.now();
  const started = await supervisor.start();
  const startMs = performance.now() - s0;
  const { rss: rssStarted, heapUsed } = process.memoryUsage();
  const runtime = supervisor.runtime;
  const sniNames = runtime.current?.sni.size ?? 0;
  const apply = runtime.apply;
  const applied = new Promise<void>((resolve) => {
    runtime.apply = (state) => {
      const result = apply.call(runtime, state);
      void result.then(() => resolve());
      return result;
    };
  });
  const f0 = performance.now();
  await store.applyChange({
    actor: 'bench',
    action: 'activate',
    mutations: [{ type: 'bind', name: 'sni:one-more.scale.test', alias: 'a0' }],
  });
  await applied;
  const followMs = performance.now() - f0;
  runtime.apply = apply;
  const sample: StoreSample = {
    bindings,
    writeMs,
    startMs,
    startOk: started.ok,
    sniNames,
    rssStartedMb: rssStarted / 2 ** 20,
    followMs,
    errors,
  };
  // Keeps serving: the parent drives the same windows as for the runtime scales.
  process.send!({
    type: 'ready',
    port: runtime.address()!.port,
    ok: started.ok,
    readyMs: startMs,
    rssReady: rssStarted,
    heapUsed,
    store: sample,
  } satisfies ReadyMessage);
  answerWindows(
    () => runtime.contexts.stats(),
    async () => {
      await supervisor.stop();
      await store.close();
    },
    () => errors,
  );
}

// ---------------------------------------------------------------------------------------
// Parent

async function makePool(size: number): Promise<Pool> {
  const now = new Date();
  const caKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
  const ca = parseCertificate(
    await createSelfSignedCa({ key: caKey, subject: { CN: 'Scale CA' }, days: 30, now }),
  );
  const leaf = await generateKeyPair({ type: 'ec', curve: 'P-256' });
  const certs: Pool['certs'] = [];
  for (let i = 0; i < size; i++) {
    const der = await issueCertificate({
      issuer: { certificate: ca, key: caKey },
      publicKey: leaf.publicKey,
      subject: { CN: name(i) },
      sans: { dns: [name(i)] },
      days: 7,
      now,
    });
    certs.push({ pem: toPem('CERTIFICATE', der), fingerprint: parseCertificate(der).sha256 });
  }
  return { keyPem: leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certs };
}

function pin(pid: number, cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The next message of this type from the child; throws if the child exits first. */
async function next<T extends { type: string }>(child: ChildProcess, type: string): Promise<T> {
  const done = new AbortController();
  const exited = once(child, 'exit', { signal: done.signal }).then(([code, signal]) => {
    throw new Error(`the child exited (${signal ?? code}) while waiting for "${type}"`);
  });
  exited.catch(() => {});
  try {
    for (;;) {
      const [message] = (await Promise.race([once(child, 'message'), exited])) as [T];
      if (message.type === type) return message;
    }
  } finally {
    done.abort();
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (v: number, d = 1): number => Math.round(v * 10 ** d) / 10 ** d;
const sum = (values: number[]): number => values.reduce((n, x) => n + x, 0);

/** One handshake window, from the client's count and the server's CPU time. */
interface WindowFigures {
  rate: number;
  cpuUsPerHandshake: number;
  cpuShare: number;
  /** Connections that failed (handshake error, reset, or no `200` answer). */
  failures: number;
  /** Context cache lookups in the window that missed. */
  missShare: number;
  /** Contexts that could not be loaded or built in the window. */
  contextFailures: number;
}

/** What the warm-up, hot and uniform windows measure, on either path. */
interface Windows {
  warmUpFailures: number;
  hot: WindowFigures;
  uniform: WindowFigures;
  rssAfterMb: number;
  rssAfterGcMb: number;
  /** Errors the server logged up to the end (store path only). */
  errors: number | undefined;
}

/**
 * Drives one serving child through the windows: a warm-up over the hot names (it fills
 * the LRU with them), a hot window, and a uniform window over all `names`.
 */
async function measureWindows(
  server: ChildProcess,
  client: ChildProcess,
  port: number,
  names: number,
  seconds: number,
): Promise<Windows> {
  const window = async (over: number, sweep = false) => {
    server.send({ type: 'mark' });
    await next(server, 'marked');
    client.send({
      type: 'load',
      port,
      ms: seconds * 1000,
      names: over,
      concurrency: 16,
      sweep,
    } satisfies LoadCommand);
    const load = await next<{
      type: string;
      handshakes: number;
      failures: number;
      ms: number;
    }>(client, 'loaded');
    server.send({ type: 'cpu' });
    const cpu = await next<CpuMessage>(server, 'cpu');
    return { load, cpu };
  };
  const figures = (
    w: Awaited<ReturnType<typeof window>>,
    before: ContextCacheStats,
  ): WindowFigures => {
    const after = w.cpu.contexts;
    const lookups = after.misses + after.hits - before.misses - before.hits;
    return {
      rate: (w.load.handshakes * 1000) / w.load.ms,
      cpuUsPerHandshake: (w.cpu.cpuMs * 1000) / Math.max(1, w.load.handshakes),
      cpuShare: w.cpu.cpuMs / w.load.ms,
      failures: w.load.failures,
      missShare: (after.misses - before.misses) / Math.max(1, lookups),
      contextFailures: after.failures - before.failures,
    };
  };
  // Warm-up: one handshake per hot name, so the hot window measures a filled cache.
  const warm = await window(Math.min(HOT_NAMES, names), true);
  const hot = await window(Math.min(HOT_NAMES, names));
  const uniform = await window(names);
  return {
    warmUpFailures: warm.load.failures,
    hot: figures(hot, warm.cpu.contexts),
    uniform: figures(uniform, hot.cpu.contexts),
    rssAfterMb: uniform.cpu.rss / 2 ** 20,
    rssAfterGcMb: uniform.cpu.rssAfterGc / 2 ** 20,
    errors: uniform.cpu.errors,
  };
}

interface Sample extends Windows {
  stateMs: number;
  readyMs: number;
  rssReadyMb: number;
  heapUsedMb: number;
  prewarmMs: number;
  rssPrewarmedMb: number;
}

interface StoreRun extends Windows {
  store: StoreSample;
  heapUsedMb: number;
}

/** Unrounded ratios of a scale against the baseline scale's hot window (medians). */
function ratios(s: Windows[], base: Windows[]) {
  const baseRate = median(base.map((x) => x.hot.rate));
  const baseCpu = median(base.map((x) => x.hot.cpuUsPerHandshake));
  const of = (f: (x: Windows) => WindowFigures) => ({
    rate: median(s.map((x) => f(x).rate)) / baseRate,
    capacity: baseCpu / median(s.map((x) => f(x).cpuUsPerHandshake)),
  });
  return { hot: of((x) => x.hot), uniform: of((x) => x.uniform) };
}

/**
 * The hot and uniform figures of a scale (medians over its runs, failures summed), with
 * ratios against the baseline scale's hot rate and server CPU per handshake.
 */
function windowReport(s: Windows[], base: Windows[]) {
  const r = ratios(s, base);
  const one = (f: (x: Windows) => WindowFigures, ratio: { rate: number; capacity: number }) => {
    const m = (g: (w: WindowFigures) => number, d = 1): number =>
      round(median(s.map((x) => g(f(x)))), d);
    return {
      handshakesPerSecond: m((w) => w.rate),
      rateRatio: round(ratio.rate, 3),
      serverCpuUsPerHandshake: m((w) => w.cpuUsPerHandshake),
      serverCpuShare: m((w) => w.cpuShare, 2),
      capacityRatio: round(ratio.capacity, 3),
      lruMissShare: m((w) => w.missShare, 3),
      failures: sum(s.map((x) => f(x).failures)),
      contextFailures: sum(s.map((x) => f(x).contextFailures)),
    };
  };
  return { hot: one((x) => x.hot, r.hot), uniform: one((x) => x.uniform, r.uniform) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const get = (flag: string, fallback: string): string => {
    const i = argv.indexOf(`--${flag}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
  };
  const runs = Number(get('runs', '3'));
  const seconds = Number(get('seconds', '3'));
  const poolSize = Number(get('pool', '10000'));
  const scales = get('scales', '1,10000,100000').split(',').map(Number);
  const cacheSize = Number(get('cache', '1000'));
  const prewarm = argv.includes('--prewarm');
  const storeScales = get('store-scales', '1,10000,100000')
    .split(',')
    .filter((x) => x.trim() !== '' && x !== '0')
    .map(Number);
  const storeRuns = Number(get('store-runs', '1'));
  const file = new URL(import.meta.url).pathname;

  const g0 = performance.now();
  const pool = await makePool(poolSize);
  const generateMs = performance.now() - g0;
  const poolFile = join(tmpdir(), `certkeeper-sni-scale-${process.pid}.json`);
  writeFileSync(poolFile, JSON.stringify(pool));

  const client = fork(file, ['--client'], { execArgv: ['--import', 'tsx'] });
  await new Promise((r) => setTimeout(r, 50));
  const pinned = pin(client.pid!, 1);

  const samples = new Map<number, Sample[]>(scales.map((s) => [s, []]));
  const storeSamples = new Map<number, StoreRun[]>(storeScales.map((s) => [s, []]));
  try {
    for (let run = 0; run < runs; run++) {
      for (const scale of scales) {
        const args = ['--server', poolFile, String(scale), String(cacheSize), String(prewarm)];
        const server = fork(file, args, {
          execArgv: ['--import', 'tsx', '--expose-gc'],
        });
        pin(server.pid!, 0);
        const ready = await next<ReadyMessage>(server, 'ready');
        if (!ready.ok) throw new Error(`the ${scale} runtime's probe failed`);
        const windows = await measureWindows(server, client, ready.port, scale, seconds);
        samples.get(scale)!.push({
          ...windows,
          stateMs: ready.stateMs ?? 0,
          readyMs: ready.readyMs,
          rssReadyMb: ready.rssReady / 2 ** 20,
          heapUsedMb: ready.heapUsed / 2 ** 20,
          prewarmMs: ready.prewarmMs ?? 0,
          rssPrewarmedMb: (ready.rssPrewarmed ?? ready.rssReady) / 2 ** 20,
        });
        server.send({ type: 'stop' });
        await once(server, 'exit');
      }
    }
    for (let run = 0; run < storeRuns; run++) {
      for (const scale of storeScales) {
        const args = ['--store-server', poolFile, String(scale), String(cacheSize)];
        const server = fork(file, args, {
          execArgv: ['--import', 'tsx', '--expose-gc'],
        });
        pin(server.pid!, 0);
        const ready = await next<ReadyMessage>(server, 'ready');
        // The sample also holds the store's own figures; a failed start probe is reported.
        const windows = await measureWindows(server, client, ready.port, scale, seconds);
        storeSamples.get(scale)!.push({
          ...windows,
          store: ready.store!,
          heapUsedMb: ready.heapUsed / 2 ** 20,
        });
        server.send({ type: 'stop' });
        await once(server, 'exit');
      }
    }
  } finally {
    client.disconnect();
    rmSync(poolFile, { force: true });
  }

  const base = samples.get(scales[0]!)!;
  const largest = Math.max(...scales);
  const top = samples.get(largest)!;
  const med = (f: (x: Sample) => number): number => median(top.map(f));
  const topRatios = ratios(top, base);
  const target = (value: number, limit: number, atLeast = false) => ({
    value: round(value, atLeast ? 3 : 1),
    target: `${atLeast ? '>=' : '<'} ${limit}`,
    met: atLeast ? value >= limit : value < limit,
  });

  // The store path: ratios against its smallest scale, targets at its largest.
  const storeBase = storeScales.length ? Math.min(...storeScales) : undefined;
  const storeLargest = storeScales.length ? Math.max(...storeScales) : undefined;
  const storeReport = (scale: number) => {
    const s = storeSamples.get(scale)!;
    const m = (f: (x: StoreRun) => number, d = 1): number => round(median(s.map(f)), d);
    const startMs = median(s.map((x) => x.store.startMs));
    return {
      bindings: scale,
      runs: s.length,
      writeSeconds: m((x) => x.store.writeMs / 1000),
      supervisorStartSeconds: round(startMs / 1000, 2),
      startMs: round(startMs),
      startOk: s.every((x) => x.store.startOk),
      sniNamesServed: m((x) => x.store.sniNames, 0),
      rssStartedMb: m((x) => x.store.rssStartedMb),
      heapUsedStartedMb: m((x) => x.heapUsedMb),
      rssAfterLoadMb: m((x) => x.rssAfterMb),
      rssAfterLoadAndGcMb: m((x) => x.rssAfterGcMb),
      oneMoreBindingCommitToAppliedSeconds: m((x) => x.store.followMs / 1000, 2),
      followMs: m((x) => x.store.followMs),
      startMsPerBinding: round(startMs / scale, 2),
      ...windowReport(s, storeSamples.get(storeBase!)!),
      warmUpFailures: sum(s.map((x) => x.warmUpFailures)),
      errorsLogged: sum(s.map((x) => x.errors ?? x.store.errors)),
    };
  };
  const storePath = storeScales.map(storeReport);
  const storeTop = storeLargest === undefined ? undefined : storeSamples.get(storeLargest)!;
  const storeTopRatios = storeTop && ratios(storeTop, storeSamples.get(storeBase!)!);
  const storeTopStartMs = storeTop && median(storeTop.map((x) => x.store.startMs));

  const report = {
    node: process.version,
    openssl: process.versions.openssl,
    nproc: Number(execFileSync('nproc', ['--all'], { encoding: 'utf8' }).trim()),
    cpu: /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? null,
    contextCacheSize: cacheSize,
    prewarm,
    pool: `${poolSize} distinct ECDSA P-256 leaf certificates, one shared key, generated in ${round(generateMs / 1000)} s`,
    load: `Node tls.connect, SNI, full TLS 1.3 handshakes + GET /, 16 in flight, ${seconds} s windows, pinned: ${pinned}`,
    runs,
    scales: Object.fromEntries(
      scales.map((scale) => {
        const s = samples.get(scale)!;
        const m = (f: (x: Sample) => number, d = 1): number => round(median(s.map(f)), d);
        return [
          scale,
          {
            bindings: scale,
            distinctCertificates: Math.min(scale, poolSize),
            stateBuildMs: m((x) => x.stateMs),
            readyMs: m((x) => x.readyMs),
            rssReadyMb: m((x) => x.rssReadyMb),
            rssReadyOverOneBindingMb: round(
              median(s.map((x) => x.rssReadyMb)) - median(base.map((x) => x.rssReadyMb)),
            ),
            heapUsedReadyMb: m((x) => x.heapUsedMb),
            ...(prewarm
              ? {
                  prewarmSeconds: m((x) => x.prewarmMs / 1000, 2),
                  rssPrewarmedMb: m((x) => x.rssPrewarmedMb),
                }
              : {}),
            rssAfterLoadMb: m((x) => x.rssAfterMb),
            rssAfterLoadAndGcMb: m((x) => x.rssAfterGcMb),
            ...windowReport(s, base),
            warmUpFailures: sum(s.map((x) => x.warmUpFailures)),
          },
        ];
      }),
    ),
    storeRuns,
    storeSetup: `a temporary SQLite store; one alias, key-pair entry and sni: binding per name, all entries holding the same P-256 key and the pool's ${poolSize} certificates; Supervisor with contextCacheSize ${cacheSize}`,
    storeRatiosAgainstBindings: storeBase ?? null,
    storePath,
    targets: {
      bindings: largest,
      readyMs: target(
        med((x) => x.readyMs),
        5000,
      ),
      ...(storeTop && storeTopRatios && storeTopStartMs !== undefined
        ? {
            storePathStartMs: {
              ...target(storeTopStartMs, 5000),
              measuredAt: storeLargest,
              ...(storeLargest! < largest
                ? {
                    linearEstimateAtLargestMs: round((storeTopStartMs / storeLargest!) * largest),
                  }
                : {}),
            },
            storePathRssMb: {
              ...target(
                Math.max(
                  median(storeTop.map((x) => x.store.rssStartedMb)),
                  median(storeTop.map((x) => x.rssAfterMb)),
                ),
                300,
              ),
              measuredAt: storeLargest,
              of: 'the larger of RSS after Supervisor.start() and after the uniform window',
            },
            storePathHotRateRatio: {
              ...target(storeTopRatios.hot.rate, 0.9, true),
              measuredAt: storeLargest,
              against: storeBase,
            },
            storePathUniformRateRatio: {
              value: round(storeTopRatios.uniform.rate, 3),
              capacityRatio: round(storeTopRatios.uniform.capacity, 3),
              measuredAt: storeLargest,
              against: storeBase,
            },
          }
        : {}),
      rssReadyMb: target(
        med((x) => x.rssReadyMb),
        300,
      ),
      rssAfterLoadMb: target(
        med((x) => x.rssAfterMb),
        300,
      ),
      hotRateRatio: target(topRatios.hot.rate, 0.9, true),
      uniformRateRatio: target(topRatios.uniform.rate, 0.9, true),
      uniformCapacityRatio: target(topRatios.uniform.capacity, 0.9, true),
    },
  };
  console.log(argv.includes('--json') ? JSON.stringify(report) : JSON.stringify(report, null, 2));
}

if (process.argv.includes('--client')) {
  runClient();
} else if (process.argv.includes('--store-server')) {
  const i = process.argv.indexOf('--store-server');
  await runStoreServer(
    process.argv[i + 1]!,
    Number(process.argv[i + 2]),
    Number(process.argv[i + 3] ?? 1000),
  );
} else if (process.argv.includes('--server')) {
  const i = process.argv.indexOf('--server');
  await runServer(
    process.argv[i + 1]!,
    Number(process.argv[i + 2]),
    Number(process.argv[i + 3]),
    process.argv[i + 4] === 'true',
  );
} else {
  await main();
}
