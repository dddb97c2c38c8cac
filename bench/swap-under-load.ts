/**
 * bench/swap-under-load: new TLS connections as fast as a load generator on the other
 * core can make them, against a `TlsRuntime` whose certificate is swapped all along, and
 * against a bare `https.createServer` with a static certificate in the same run.
 *
 * The servers run in this process, pinned to CPU 0 (taskset). On CPU 1:
 * - the load: `--processes` (4) `openssl s_time` clients, each one connection at a time,
 *   `-new` (full handshakes) or `-reuse` (resumed, TLS 1.3 tickets), `-www /` (one
 *   request per connection), without SNI, so through the listener's default context
 *   (h2load is not on this machine; `--load node` uses a Node client instead);
 * - the sampler (this file with `--client`): one Node connection at a time with SNI (the
 *   SNI fallback path), full handshakes, reporting each new fingerprint it sees.
 * Windows alternate bare / runtime so both see the same noise; rates are medians over the
 * windows. In each runtime window the certificate (RSA-2048 by default) is swapped at an
 * even pace: `--swaps` over the full-handshake windows and as many over the resumed ones.
 *
 * Reported: failed handshakes (server-side `tlsClientError` by code, s_time aborts, the
 * sampler's) and failed requests (target 0); commit-to-served latency from calling
 * `apply()` to the first handshake with the new fingerprint, as seen by the sampler in
 * another process and by the server itself (its first completed handshake with the new
 * certificate, the probe's included), p50/p99; the synchronous part of `apply()` (build +
 * swap) and `apply()` with its probe; handshakes/s runtime vs bare, full and resumed
 * separately (target ratio ≥ 0.97), with the server's CPU use: below 1.0 the client core,
 * not the server, was the bottleneck, so the server CPU per handshake (capacity ratio) is
 * given too. nginx is reported as an outside reference only if installed.
 *
 * Run: `node --import tsx bench/swap-under-load.ts [--seconds 20] [--swaps 50]
 *       [--windows 5] [--processes 4] [--key rsa|ec] [--load stime|node] [--json]`
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { RequestListener } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { parseCertificate } from '../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../src/core/generate.js';
import { toPem } from '../src/core/pem.js';
import { type Identity, identityFromPem } from '../src/runtime/identity.js';
import { type RuntimeState, TlsRuntime } from '../src/runtime/tls-runtime.js';

// ---------------------------------------------------------------------------------------
// Load generator (child process)

interface RunCommand {
  port: number;
  ms: number;
  resume: boolean;
  concurrency: number;
}

interface RunStats {
  ms: number;
  handshakes: number;
  full: number;
  resumed: number;
  failedHandshakes: number;
  failedRequests: number;
  errors: Record<string, number>;
  clientCpuMs: number;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

function runClient(): void {
  process.on('message', async (message: { type: 'run' } & RunCommand) => {
    if (message.type !== 'run') return;
    const stats = await load(message);
    process.send!({ type: 'done', stats });
  });
  process.on('disconnect', () => process.exit(0));
}

async function load(command: RunCommand): Promise<RunStats> {
  const stats: RunStats = {
    ms: 0,
    handshakes: 0,
    full: 0,
    resumed: 0,
    failedHandshakes: 0,
    failedRequests: 0,
    errors: {},
    clientCpuMs: 0,
  };
  let session: Buffer | undefined;
  let lastFingerprint = '';
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + command.ms;

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      let handshaken = false;
      let response = '';
      let settled = false;
      const socket = connect({
        host: '127.0.0.1',
        port: command.port,
        servername: 'bench.example.test',
        rejectUnauthorized: false,
        ...(command.resume && session ? { session } : {}),
      });
      socket.setEncoding('utf8');
      const finish = (error?: string): void => {
        if (settled) return;
        settled = true;
        if (error) {
          stats.errors[error] = (stats.errors[error] ?? 0) + 1;
          if (handshaken) stats.failedRequests++;
          else stats.failedHandshakes++;
        } else if (!response.startsWith('HTTP/1.1 200')) {
          stats.failedRequests++;
          stats.errors.BadResponse = (stats.errors.BadResponse ?? 0) + 1;
        }
        socket.destroy();
        resolve();
      };
      if (command.resume) {
        socket.on('session', (s: Buffer) => {
          session = s;
        });
      }
      socket.once('secureConnect', () => {
        handshaken = true;
        stats.handshakes++;
        if (socket.isSessionReused()) {
          stats.resumed++;
        } else {
          stats.full++;
          const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
          if (fingerprint !== lastFingerprint) {
            lastFingerprint = fingerprint;
            process.send!({ type: 'fingerprint', fingerprint, at: wallMs() });
          }
        }
        socket.write('GET / HTTP/1.1\r\nHost: bench.example.test\r\nConnection: close\r\n\r\n');
      });
      socket.on('data', (chunk: string) => {
        response += chunk;
      });
      socket.once('end', () => finish());
      socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    });

  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: command.concurrency }, worker));
  stats.ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  stats.clientCpuMs = (used.user + used.system) / 1000;
  return stats;
}

// ---------------------------------------------------------------------------------------
// Server side (this process)

interface Options {
  seconds: number;
  swaps: number;
  windows: number;
  concurrency: number;
  key: 'rsa' | 'ec';
  load: 'stime' | 'node';
  processes: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string, fallback: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
  };
  const key = get('key', 'rsa');
  if (key !== 'rsa' && key !== 'ec') throw new Error('--key is rsa or ec');
  return {
    seconds: Number(get('seconds', '20')),
    swaps: Number(get('swaps', '50')),
    windows: Number(get('windows', '5')),
    concurrency: Number(get('concurrency', '16')),
    key,
    load: get('load', has('openssl') ? 'stime' : 'node') === 'node' ? 'node' : 'stime',
    processes: Number(get('processes', '4')),
    json: argv.includes('--json'),
  };
}

function has(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pin(pid: number, cpu: number): boolean {
  if (!has('taskset')) return false;
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function makeIdentities(count: number, key: 'rsa' | 'ec'): Promise<Identity[]> {
  const now = new Date();
  const caKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
  const caDer = await createSelfSignedCa({
    key: caKey,
    subject: { CN: 'Bench CA' },
    days: 30,
    now,
  });
  const ca = parseCertificate(caDer);
  const identities: Identity[] = [];
  for (let i = 0; i < count; i++) {
    const pair = await generateKeyPair(
      key === 'rsa' ? { type: 'rsa', bits: 2048 } : { type: 'ec', curve: 'P-256' },
    );
    const der = await issueCertificate({
      issuer: { certificate: ca, key: caKey },
      publicKey: pair.publicKey,
      subject: { CN: 'bench.example.test' },
      sans: { dns: ['bench.example.test'] },
      days: 7,
      now,
    });
    identities.push(
      identityFromPem({
        key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        cert: toPem('CERTIFICATE', der),
        chain: toPem('CERTIFICATE', caDer),
        source: 'bench',
        alias: `bench-${i}`,
      }),
    );
  }
  return identities;
}

const handler: RequestListener = (_req, res) => {
  res.setHeader('content-length', 2);
  res.end('ok');
};

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface Swap {
  fingerprint: string;
  calledAt: number;
  syncMs: number;
  applyMs?: number;
  ok?: boolean;
  /** Seen by the sampler (another process). */
  servedAfterMs?: number;
  /** Seen by the server: its first completed handshake with the new certificate. */
  serverServedMs?: number;
}

interface Window {
  /** Handshakes per second made by the load generator. */
  rate: number;
  /** Share of the load generator's handshakes that resumed a session. */
  resumedShare: number;
  /** The load generator's own failures (s_time stops at its first one). */
  loadFailures: string[];
  sampler: RunStats;
  /** CPU seconds per second used by this (the server) process. */
  serverCpu: number;
  /** Server CPU microseconds per handshake (load generator's and sampler's). */
  serverCpuUsPerHandshake: number;
}

/**
 * `openssl s_time` load: `processes` sequential clients in parallel on CPU 1, each doing
 * new (`-new`) or resumed (`-reuse`) handshakes plus `GET /` for `seconds`. Its output has
 * one character per connection (`*` new session, `r` reused) and a count line.
 */
async function stimeLoad(
  port: number,
  seconds: number,
  resume: boolean,
  processes: number,
): Promise<{ connections: number; resumed: number; wallMs: number; failures: string[] }> {
  const args = ['s_time', '-connect', `127.0.0.1:${port}`, resume ? '-reuse' : '-new'];
  args.push('-www', '/', '-time', String(seconds));
  const started = performance.now();
  const runs = await Promise.all(
    Array.from({ length: processes }, async () => {
      const child = has('taskset')
        ? spawn('taskset', ['-c', '1', 'openssl', ...args])
        : spawn('openssl', args);
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const [code] = (await once(child, 'exit')) as [number | null];
      const connections = Number(/(\d+) connections in \d+ real seconds/.exec(out)?.[1] ?? 0);
      const marks = /^[*r]+$/m.exec(out)?.[0] ?? '';
      const failed = code !== 0 || /ERROR/.test(out);
      return {
        connections,
        resumed: [...marks].filter((c) => c === 'r').length,
        failure: failed
          ? out
              .split('\n')
              .filter((l) => !/^[*r]*$/.test(l))
              .join(' ')
              .slice(0, 300)
          : null,
      };
    }),
  );
  return {
    connections: runs.reduce((n, r) => n + r.connections, 0),
    resumed: runs.reduce((n, r) => n + r.resumed, 0),
    wallMs: performance.now() - started,
    failures: runs.flatMap((r) => (r.failure ? [r.failure] : [])),
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const pinnedServer = pin(process.pid, 0);
  const identities = await makeIdentities(4, options.key);
  const [first] = identities as [Identity];

  const bare: Server = createHttpsServer({ key: first.keyPem, cert: first.certPem }, handler);
  const tlsErrors = { bare: {} as Record<string, number>, runtime: {} as Record<string, number> };
  const countTlsError = (side: 'bare' | 'runtime') => (err: NodeJS.ErrnoException) => {
    const key = err.code ?? err.message;
    tlsErrors[side][key] = (tlsErrors[side][key] ?? 0) + 1;
  };
  bare.on('tlsClientError', countTlsError('bare'));
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  const barePort = (bare.address() as { port: number }).port;

  const runtime = new TlsRuntime({ host: '127.0.0.1', port: 0, handler });
  const started = await runtime.start({ revision: 1, server: first, sni: new Map() });
  if (!started.ok) throw new Error('the runtime did not start');
  const runtimePort = runtime.address()!.port;
  runtime.server.on('tlsClientError', countTlsError('runtime'));

  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', new URL(import.meta.url).pathname, '--client'],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  await new Promise((r) => setTimeout(r, 50));
  const pinnedClient = pin(child.pid!, 1);

  const swaps: Swap[] = [];
  let pending: Swap | undefined;
  child.on('message', (message: { type: string; fingerprint?: string; at?: number }) => {
    if (message.type !== 'fingerprint' || !pending) return;
    if (message.fingerprint === pending.fingerprint && pending.servedAfterMs === undefined) {
      pending.servedAfterMs = message.at! - pending.calledAt;
    }
  });

  const nodeLoad = async (
    port: number,
    ms: number,
    resume: boolean,
    concurrency: number,
  ): Promise<RunStats> => {
    child.send({ type: 'run', port, ms, resume, concurrency });
    for (;;) {
      const [message] = (await once(child, 'message')) as [{ type: string; stats?: RunStats }];
      if (message.type === 'done') return message.stats!;
    }
  };

  const useStime = options.load === 'stime';
  const windowSeconds = Math.max(1, Math.round(options.seconds / options.windows));
  const windowMs = windowSeconds * 1000;

  /**
   * One window of load on `port`. The Node sampler (one connection at a time, full
   * handshakes with SNI) runs in every window, for the fingerprints and its failures;
   * the load proper is s_time (no SNI) or, with `--load node`, the Node client.
   */
  const loadWindow = async (
    port: number,
    resume: boolean,
    during?: () => Promise<void>,
  ): Promise<Window> => {
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    let rate: number;
    let resumedShare: number;
    let loadFailures: string[];
    let sampler: RunStats;
    const swapping = during?.();
    if (useStime) {
      const [load, sample] = await Promise.all([
        stimeLoad(port, windowSeconds, resume, options.processes),
        nodeLoad(port, windowMs, false, 1),
      ]);
      rate = (load.connections * 1000) / load.wallMs;
      resumedShare = load.resumed / Math.max(1, load.connections);
      loadFailures = load.failures;
      sampler = sample;
    } else {
      const load = await nodeLoad(port, windowMs, resume, options.concurrency);
      rate = (load.handshakes * 1000) / load.ms;
      resumedShare = load.resumed / Math.max(1, load.handshakes);
      loadFailures = Object.entries(load.errors).map(([k, v]) => `${k} x${v}`);
      sampler = load;
    }
    await swapping;
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    const elapsed = performance.now() - t0;
    const handshakes = (rate * elapsed) / 1000 + (useStime ? sampler.handshakes : 0);
    return {
      rate,
      resumedShare,
      loadFailures,
      sampler,
      serverCpu: cpuMs / elapsed,
      serverCpuUsPerHandshake: (cpuMs * 1000) / Math.max(1, handshakes),
    };
  };

  let revision = 1;
  let current = 0;
  const swapsPerWindow = Math.max(1, Math.round(options.swaps / options.windows));

  /** Swaps the runtime's certificate `swapsPerWindow` times at an even pace over a window. */
  const swapAlong = async (): Promise<void> => {
    const every = windowMs / (swapsPerWindow + 1);
    for (let i = 0; i < swapsPerWindow; i++) {
      await new Promise((r) => setTimeout(r, every));
      current = (current + 1) % identities.length;
      const next: RuntimeState = {
        revision: ++revision,
        server: identities[current]!,
        sni: new Map(),
      };
      const swap: Swap = { fingerprint: next.server.fingerprint, calledAt: wallMs(), syncMs: 0 };
      pending = swap;
      const t0 = performance.now();
      const watch = (socket: TLSSocket): void => {
        if (socket.getX509Certificate()?.fingerprint256 !== swap.fingerprint) return;
        swap.serverServedMs = performance.now() - t0;
        runtime.server.off('secureConnection', watch);
      };
      runtime.server.on('secureConnection', watch);
      const applying = runtime.apply(next);
      swap.syncMs = performance.now() - t0;
      const result = await applying;
      swap.applyMs = performance.now() - t0;
      swap.ok = result.ok;
      runtime.server.off('secureConnection', watch);
      swaps.push(swap);
    }
  };

  // Warm-up: JIT and both servers.
  await loadWindow(barePort, false);
  await loadWindow(runtimePort, false);

  const modes: Record<string, { bare: Window[]; runtime: Window[] }> = {};
  for (const resume of [false, true]) {
    const mode = resume ? 'resumed' : 'full';
    modes[mode] = { bare: [], runtime: [] };
    for (let w = 0; w < options.windows; w++) {
      modes[mode].bare.push(await loadWindow(barePort, resume));
      modes[mode].runtime.push(await loadWindow(runtimePort, resume, swapAlong));
    }
  }

  child.disconnect();
  await runtime.stop();
  await new Promise<void>((r) => bare.close(() => r()));

  const all = Object.values(modes).flatMap((m) => [...m.bare, ...m.runtime]);
  const samplerErrors: Record<string, number> = {};
  for (const w of all) {
    for (const [k, v] of Object.entries(w.sampler.errors))
      samplerErrors[k] = (samplerErrors[k] ?? 0) + v;
  }
  const served = swaps.map((s) => s.servedAfterMs).filter((v): v is number => v !== undefined);
  const serverServed = swaps
    .map((s) => s.serverServedMs)
    .filter((v): v is number => v !== undefined);
  const report = {
    node: process.version,
    openssl: process.versions.openssl,
    key:
      options.key === 'rsa'
        ? 'RSA-2048 leaf, chain leaf + P-256 CA'
        : 'ECDSA P-256 leaf, chain leaf + P-256 CA',
    protocol: 'TLS 1.3, one GET / per connection',
    load: useStime
      ? `openssl s_time x${options.processes} on CPU 1 (no SNI: the default context); h2load ${has('h2load') ? 'installed, not used' : 'not installed'}`
      : `Node tls.connect loop, ${options.concurrency} in flight, on CPU 1`,
    sampler:
      'Node tls.connect, one at a time, SNI bench.example.test (the SNI fallback path), full handshakes',
    nginx: has('nginx') ? 'installed, not scripted' : 'not installed: no outside reference',
    pinned: { server: pinnedServer, client: pinnedClient },
    windows: options.windows,
    windowSeconds,
    swaps: swaps.length,
    swapsOk: swaps.filter((s) => s.ok).length,
    failedHandshakes: {
      serverSide: tlsErrors,
      loadGenerator: all.flatMap((w) => w.loadFailures),
      sampler: all.reduce((n, w) => n + w.sampler.failedHandshakes, 0),
    },
    failedRequests: all.reduce((n, w) => n + w.sampler.failedRequests, 0),
    samplerErrors,
    samplerHandshakes: all.reduce((n, w) => n + w.sampler.handshakes, 0),
    commitToServedMs: {
      sampler: {
        measured: served.length,
        p50: round(percentile(served, 50)),
        p99: round(percentile(served, 99)),
        max: round(Math.max(...served)),
      },
      server: {
        measured: serverServed.length,
        p50: round(percentile(serverServed, 50)),
        p99: round(percentile(serverServed, 99)),
        max: round(Math.max(...serverServed)),
      },
    },
    applySyncMs: {
      p50: round(
        percentile(
          swaps.map((s) => s.syncMs),
          50,
        ),
        2,
      ),
      p99: round(
        percentile(
          swaps.map((s) => s.syncMs),
          99,
        ),
        2,
      ),
    },
    applyWithProbeMs: {
      p50: round(
        percentile(
          swaps.map((s) => s.applyMs ?? 0),
          50,
        ),
      ),
      p99: round(
        percentile(
          swaps.map((s) => s.applyMs ?? 0),
          99,
        ),
      ),
    },
    handshakesPerSecond: Object.fromEntries(
      Object.entries(modes).map(([mode, m]) => {
        const bareRates = m.bare.map((w) => w.rate);
        const runtimeRates = m.runtime.map((w) => w.rate);
        return [
          mode,
          {
            bare: round(median(bareRates)),
            runtime: round(median(runtimeRates)),
            ratio: round(median(runtimeRates) / median(bareRates), 3),
            ratioPerWindowPair: runtimeRates.map((r, i) => round(r / bareRates[i]!, 3)),
            resumedShare: {
              bare: round(median(m.bare.map((w) => w.resumedShare)), 3),
              runtime: round(median(m.runtime.map((w) => w.resumedShare)), 3),
            },
            serverCpu: {
              bare: round(median(m.bare.map((w) => w.serverCpu)), 2),
              runtime: round(median(m.runtime.map((w) => w.serverCpu)), 2),
            },
            serverCpuUsPerHandshake: {
              bare: round(median(m.bare.map((w) => w.serverCpuUsPerHandshake))),
              runtime: round(median(m.runtime.map((w) => w.serverCpuUsPerHandshake))),
              capacityRatio: round(
                median(m.bare.map((w) => w.serverCpuUsPerHandshake)) /
                  median(m.runtime.map((w) => w.serverCpuUsPerHandshake)),
                3,
              ),
            },
          },
        ];
      }),
    ),
  };
  console.log(options.json ? JSON.stringify(report) : JSON.stringify(report, null, 2));
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

if (process.argv.includes('--client')) {
  runClient();
} else {
  await main();
}
