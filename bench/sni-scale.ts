/**
 * bench/sni-scale: a `TlsRuntime` with 1, 10,000 and 100,000 SNI bindings — how long
 * `start()` takes, the process's RSS, and the full-handshake rate against the 1-binding
 * case.
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
 * The store path (`--store-scales`, default 1,000 and 10,000; one run each, fresh process
 * on CPU 0): what `certkeeper serve` does with that many SNI bindings in its data
 * directory. The bindings are written to a temporary SQLite store (one entry per binding,
 * the pool's certificates and key, 10,000 per change), then `Supervisor.start()` is timed
 * (it reads every binding's entry, decrypts its key and parses its certificate), and then
 * one unrelated change (a new binding of an existing entry) from commit to applied: the
 * supervisor rebuilds the whole state on every revision. The runtime figures above start
 * from a state built in memory and leave this out.
 *
 * `--cache N` sets the runtime's SNI context cache (`contextCacheSize`, the `sniCacheSize`
 * setting; default 1,000); `--prewarm` builds a context for every distinct identity (up to
 * N) before the windows, timed, as a server that has run for a while would have them: at
 * N ≥ the number of distinct certificates the uniform case then stops missing, at the
 * memory cost of N contexts (RSS after the prewarm is reported). The report ends with the
 * issue's targets for the largest scale, each marked met or not.
 *
 * Run: `npm run bench:sni -- [--runs 3] [--seconds 3] [--pool 10000]
 *       [--scales 1,10000,100000] [--cache 1000] [--prewarm] [--store-scales 1000,10000]
 *       [--json]`
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { openDataDir } from '../src/cli/data-dir.js';
import { parseCertificate } from '../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../src/core/generate.js';
import { toPem } from '../src/core/pem.js';
import type { Identity } from '../src/runtime/identity.js';
import { Supervisor } from '../src/runtime/supervisor.js';
import { TlsRuntime } from '../src/runtime/tls-runtime.js';
import type { Mutation } from '../src/store/store.js';

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
}

function runClient(): void {
  process.on('message', async (message: LoadCommand) => {
    if (message.type !== 'load') return;
    let handshakes = 0;
    let failures = 0;
    const started = performance.now();
    const deadline = started + message.ms;
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const socket = connect({
          host: '127.0.0.1',
          port: message.port,
          servername: name(Math.floor(Math.random() * message.names)),
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
      while (performance.now() < deadline) await one();
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
  const handler: RequestListener = (_req, res) => {
    res.setHeader('content-length', 2);
    res.end('ok');
  };
  const t1 = performance.now();
  const runtime = new TlsRuntime({
    host: '127.0.0.1',
    port: 0,
    handler,
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
  });
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
        contexts: runtime.contexts.stats(),
      });
    } else if (message.type === 'stop') {
      await runtime.stop();
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
  errors: number;
}

async function runStoreServer(poolFile: string, bindings: number): Promise<void> {
  const pool = JSON.parse(readFileSync(poolFile, 'utf8')) as Pool;
  const keyDer = createPrivateKey(pool.keyPem).export({ type: 'pkcs8', format: 'der' });
  const perCert = Math.max(1, Math.ceil(bindings / pool.certs.length));
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-sni-store-'));
  try {
    const dataDir = join(dir, 'data');
    const store = await openDataDir(dataDir, {});
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
    const supervisor = new Supervisor({
      store,
      sources: { dataDir, flags: {}, config: {}, env: {}, strict: false },
      localNames: { dns: ['localhost'], ip: ['127.0.0.1'] },
      commonName: 'localhost',
      host: '127.0.0.1',
      port: 0,
      logger: {
        info() {},
        warn() {},
        error() {
          errors++;
        },
      },
    });
    global.gc?.();
    const s0 = performance.now();
    const started = await supervisor.start();
    const startMs = performance.now() - s0;
    const rssStartedMb = process.memoryUsage().rss / 2 ** 20;
    const runtime = supervisor.runtime;
    const sniNames = runtime.current?.sni.size ?? 0;
    const applied = new Promise<void>((resolve) => {
      const apply = runtime.apply.bind(runtime);
      runtime.apply = (state) => {
        const result = apply(state);
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
    const sample: StoreSample = {
      bindings,
      writeMs,
      startMs,
      startOk: started.ok,
      sniNames,
      rssStartedMb,
      followMs,
      errors,
    };
    await supervisor.stop();
    await store.close();
    process.send!({ type: 'store', sample });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
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

async function next<T extends { type: string }>(child: ChildProcess, type: string): Promise<T> {
  for (;;) {
    const [message] = (await once(child, 'message')) as [T];
    if (message.type === type) return message;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (v: number, d = 1): number => Math.round(v * 10 ** d) / 10 ** d;

interface Sample {
  stateMs: number;
  readyMs: number;
  rssReadyMb: number;
  rssAfterMb: number;
  rssAfterGcMb: number;
  heapUsedMb: number;
  prewarmMs: number;
  rssPrewarmedMb: number;
  hot: { rate: number; cpuUsPerHandshake: number; cpuShare: number; failures: number };
  uniform: {
    rate: number;
    cpuUsPerHandshake: number;
    cpuShare: number;
    failures: number;
    missShare: number;
  };
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
  const storeScales = get('store-scales', '1000,10000')
    .split(',')
    .filter((x) => x.trim() !== '' && x !== '0')
    .map(Number);
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
  const storeSamples: StoreSample[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      for (const scale of scales) {
        const args = ['--server', poolFile, String(scale), String(cacheSize), String(prewarm)];
        const server = fork(file, args, {
          execArgv: ['--import', 'tsx', '--expose-gc'],
        });
        pin(server.pid!, 0);
        const ready = await next<{
          type: string;
          port: number;
          ok: boolean;
          stateMs: number;
          readyMs: number;
          rssReady: number;
          heapUsed: number;
          prewarmMs: number;
          rssPrewarmed: number;
        }>(server, 'ready');
        if (!ready.ok) throw new Error(`the ${scale} runtime's probe failed`);
        const window = async (names: number) => {
          server.send({ type: 'mark' });
          await next(server, 'marked');
          client.send({
            type: 'load',
            port: ready.port,
            ms: seconds * 1000,
            names,
            concurrency: 16,
          });
          const load = await next<{
            type: string;
            handshakes: number;
            failures: number;
            ms: number;
          }>(client, 'loaded');
          server.send({ type: 'cpu' });
          const cpu = await next<{
            type: string;
            cpuMs: number;
            rss: number;
            rssAfterGc: number;
            contexts: { misses: number; hits: number };
          }>(server, 'cpu');
          return { load, cpu };
        };
        // Warm-up: fills the LRU with the hot names.
        await window(Math.min(HOT_NAMES, scale));
        const hot = await window(Math.min(HOT_NAMES, scale));
        const before = hot.cpu.contexts;
        const uniform = await window(scale);
        const after = uniform.cpu.contexts;
        const lookups = after.misses + after.hits - before.misses - before.hits;
        samples.get(scale)!.push({
          stateMs: ready.stateMs,
          readyMs: ready.readyMs,
          rssReadyMb: ready.rssReady / 2 ** 20,
          rssAfterMb: uniform.cpu.rss / 2 ** 20,
          rssAfterGcMb: uniform.cpu.rssAfterGc / 2 ** 20,
          heapUsedMb: ready.heapUsed / 2 ** 20,
          prewarmMs: ready.prewarmMs,
          rssPrewarmedMb: ready.rssPrewarmed / 2 ** 20,
          hot: {
            rate: (hot.load.handshakes * 1000) / hot.load.ms,
            cpuUsPerHandshake: (hot.cpu.cpuMs * 1000) / hot.load.handshakes,
            cpuShare: hot.cpu.cpuMs / hot.load.ms,
            failures: hot.load.failures,
          },
          uniform: {
            rate: (uniform.load.handshakes * 1000) / uniform.load.ms,
            cpuUsPerHandshake: (uniform.cpu.cpuMs * 1000) / uniform.load.handshakes,
            cpuShare: uniform.cpu.cpuMs / uniform.load.ms,
            failures: uniform.load.failures,
            missShare: (after.misses - before.misses) / Math.max(1, lookups),
          },
        });
        server.send({ type: 'stop' });
        await once(server, 'exit');
      }
    }
    for (const scale of storeScales) {
      const server = fork(file, ['--store-server', poolFile, String(scale)], {
        execArgv: ['--import', 'tsx', '--expose-gc'],
      });
      pin(server.pid!, 0);
      storeSamples.push(
        (await next<{ type: string; sample: StoreSample }>(server, 'store')).sample,
      );
      await once(server, 'exit');
    }
  } finally {
    client.disconnect();
    rmSync(poolFile, { force: true });
  }

  const base = samples.get(scales[0]!)!;
  const baseRate = median(base.map((s) => s.hot.rate));
  const baseCpu = median(base.map((s) => s.hot.cpuUsPerHandshake));
  const largest = Math.max(...scales);
  const storeLargest = storeSamples.reduce<StoreSample | undefined>(
    (a, b) => (a && a.bindings > b.bindings ? a : b),
    undefined,
  );
  const top = samples.get(largest)!;
  const med = (f: (x: Sample) => number): number => median(top.map(f));
  const target = (value: number, limit: number, atLeast = false) => ({
    value: round(value, atLeast ? 3 : 1),
    target: `${atLeast ? '>=' : '<'} ${limit}`,
    met: atLeast ? value >= limit : value < limit,
  });
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
            hot: {
              handshakesPerSecond: m((x) => x.hot.rate),
              rateRatio: round(median(s.map((x) => x.hot.rate)) / baseRate, 3),
              serverCpuUsPerHandshake: m((x) => x.hot.cpuUsPerHandshake),
              serverCpuShare: m((x) => x.hot.cpuShare, 2),
              capacityRatio: round(baseCpu / median(s.map((x) => x.hot.cpuUsPerHandshake)), 3),
              failures: s.reduce((n, x) => n + x.hot.failures, 0),
            },
            uniform: {
              handshakesPerSecond: m((x) => x.uniform.rate),
              rateRatio: round(median(s.map((x) => x.uniform.rate)) / baseRate, 3),
              serverCpuUsPerHandshake: m((x) => x.uniform.cpuUsPerHandshake),
              serverCpuShare: m((x) => x.uniform.cpuShare, 2),
              capacityRatio: round(baseCpu / median(s.map((x) => x.uniform.cpuUsPerHandshake)), 3),
              lruMissShare: m((x) => x.uniform.missShare, 3),
              failures: s.reduce((n, x) => n + x.uniform.failures, 0),
            },
          },
        ];
      }),
    ),
    storePath: storeSamples.map((x) => ({
      bindings: x.bindings,
      writeSeconds: round(x.writeMs / 1000),
      supervisorStartSeconds: round(x.startMs / 1000, 2),
      startOk: x.startOk,
      sniNamesServed: x.sniNames,
      rssStartedMb: round(x.rssStartedMb),
      oneMoreBindingCommitToAppliedSeconds: round(x.followMs / 1000, 2),
      startMsPerBinding: round(x.startMs / x.bindings, 2),
      errorsLogged: x.errors,
    })),
    targets: {
      bindings: largest,
      readyMs: target(
        med((x) => x.readyMs),
        5000,
      ),
      ...(storeLargest
        ? {
            storePathStartMs: {
              ...target(storeLargest.startMs, 5000),
              measuredAt: storeLargest.bindings,
              ...(storeLargest.bindings < largest
                ? {
                    linearEstimateAtLargestMs: round(
                      (storeLargest.startMs / storeLargest.bindings) * largest,
                    ),
                  }
                : {}),
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
      hotRateRatio: target(med((x) => x.hot.rate) / baseRate, 0.9, true),
      uniformRateRatio: target(med((x) => x.uniform.rate) / baseRate, 0.9, true),
      uniformCapacityRatio: target(baseCpu / med((x) => x.uniform.cpuUsPerHandshake), 0.9, true),
    },
  };
  console.log(argv.includes('--json') ? JSON.stringify(report) : JSON.stringify(report, null, 2));
}

if (process.argv.includes('--client')) {
  runClient();
} else if (process.argv.includes('--store-server')) {
  const i = process.argv.indexOf('--store-server');
  await runStoreServer(process.argv[i + 1]!, Number(process.argv[i + 2]));
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
