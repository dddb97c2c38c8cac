/**
 * bench/swap-under-load: new TLS connections as fast as a load generator on the other
 * core can make them, against three servers in the same run, on the same core, with the
 * same certificate and the same load generator:
 *
 * - nginx (Debian's package): one worker, `ssl_session_cache shared:SSL:10m`, tickets
 *   on, a static response (bench/nginx.ts): the outside reference;
 * - a bare `https.createServer` with the static certificate and Node's defaults;
 * - the certkeeper runtime as `certkeeper serve` runs it: a `Supervisor` following an
 *   SQLite store in a temporary data directory, whose `server` binding is re-pointed at
 *   another entry `--swaps` times per mode while the load runs. Half of the commits are
 *   made in the server process (as the API would), half by another process on the same
 *   data directory (as `certkeeper import --activate` would), alternately.
 *
 * The servers run in this process (pinned to CPU 0) and in nginx (pinned to CPU 0). On
 * CPU 1: h2load (bench/h2load.ts), HTTP/1.1 with `Connection: close`, so one TLS
 * handshake per request: `full` windows make every handshake a full one, `resumed` windows
 * resume the client's TLS 1.3 session on all but the first connection of each client; the
 * share of resumed handshakes is counted on the server side (Node: `isSessionReused()`;
 * nginx: `$ssl_session_reused` in its access log). Also on CPU 1: a sampler (this file,
 * `--sampler`), one Node connection at a time with full handshakes, reporting each new
 * certificate fingerprint it sees; and the committer (`--committer`).
 *
 * Windows rotate through the three servers so that they see the same noise; figures are
 * medians over `--windows` windows per server and mode. Each window reports the load
 * generator's handshake rate, and the server's CPU time per handshake (from
 * `process.cpuUsage()`, or the nginx worker's /proc stat), because with one client core
 * the load generator can saturate before the server does: the busy share of each core is
 * reported so that this can be seen.
 *
 * Commit to served, per swap: from the commit (the store transaction returned, in the
 * process that made it) to (a) the swap (the listener's new default context installed:
 * handshakes from here on get the new certificate), (b) the first handshake the server
 * completed on a connection accepted after the swap (usually its self-probe's; its
 * certificate is checked), (c) the first full handshake of the sampler with the new
 * certificate. (b) and (c) include the time the observing handshake waited in the
 * server's queue behind the load's connections.
 *
 * `--explain` adds bare servers with one of the runtime's differences each, and a runtime
 * that does not swap (see `explainTargets`); `--modes full` or `--modes resumed` runs one
 * mode only. Before the windows, eight in-process swaps with no load give the CPU one swap
 * costs the server process.
 *
 * Run: `npm run bench:swap -- [--seconds 4] [--windows 5] [--swaps 50] [--key rsa|ec]
 *       [--no-sni] [--explain] [--modes full,resumed] [--json] [--out FILE]`
 *       (`--full-loops 2 --full-clients 100 --resumed-loops 2 --resumed-clients 32
 *       --resumed-requests 1600` shape the h2load runs)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import {
  type Identity,
  type RuntimeLogger,
  TLS_PROTOCOL_OPTIONS,
} from '../src/runtime/identity.js';
import { SessionIdCache } from '../src/runtime/ticket-keys.js';
import { type ApplyResult, TlsRuntime } from '../src/runtime/tls-runtime.js';
import { bindEntry } from '../src/service/bind-entry.js';
import type { ServiceContext } from '../src/service/context.js';
import type { Principal } from '../src/service/principal.js';
import { openDataDir } from '../src/store/data-dir.js';
import type { Store } from '../src/store/store.js';
import { benchSupervisor, okHandler } from './bench-supervisor.js';
import { type DriveCommand, type DriveResult, drive } from './h2load.js';
import { type Nginx, startNginx } from './nginx.js';
import { makeMaterial, openBenchDataDir, SERVERNAME } from './swap-material.js';

const BENCH_PRINCIPAL: Principal = { actor: 'bench', role: 'admin', source: 'bench' };

const TLS13_CIPHER = 'TLS_AES_128_GCM_SHA256';
const SAMPLER_PAUSE_MS = 10;

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

// ---------------------------------------------------------------------------------------
// Children (all pinned to CPU 1)

interface SampleCommand {
  type: 'sample';
  port: number;
  ms: number;
  servername: string | null;
}

interface SampleStats {
  handshakes: number;
  failedHandshakes: number;
  failedRequests: number;
  errors: Record<string, number>;
}

/** One connection at a time, full handshakes, `GET /`; reports each new fingerprint. */
function runSampler(): void {
  process.on('message', async (message: SampleCommand) => {
    if (message.type !== 'sample') return;
    process.send!({ type: 'sampled', stats: await sample(message) });
  });
  process.on('disconnect', () => process.exit(0));
}

async function sample(command: SampleCommand): Promise<SampleStats> {
  const stats: SampleStats = { handshakes: 0, failedHandshakes: 0, failedRequests: 0, errors: {} };
  let lastFingerprint = '';
  const deadline = performance.now() + command.ms;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      let handshaken = false;
      let response = '';
      let settled = false;
      const socket = connect({
        host: '127.0.0.1',
        port: command.port,
        ...(command.servername ? { servername: command.servername } : {}),
        rejectUnauthorized: false,
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
      socket.once('secureConnect', () => {
        handshaken = true;
        stats.handshakes++;
        const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
        if (fingerprint !== lastFingerprint) {
          lastFingerprint = fingerprint;
          process.send!({ type: 'fingerprint', fingerprint, at: wallMs() });
        }
        socket.write(`GET / HTTP/1.1\r\nHost: ${SERVERNAME}\r\nConnection: close\r\n\r\n`);
      });
      socket.on('data', (chunk: string) => {
        response += chunk;
      });
      socket.once('end', () => finish());
      socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    });
  while (performance.now() < deadline) {
    await one();
    // A pause, to leave the load generator's core to h2load.
    await new Promise((r) => setTimeout(r, SAMPLER_PAUSE_MS));
  }
  return stats;
}

/** Runs h2load windows for the parent. */
function runDriver(): void {
  process.on('message', async (message: { type: string; command: DriveCommand }) => {
    if (message.type !== 'drive') return;
    process.send!({ type: 'driven', result: await drive(message.command) });
  });
  process.on('disconnect', () => process.exit(0));
}

/** Activates entries on the data directory, as `certkeeper import --activate` would. */
async function runCommitter(dataDir: string): Promise<void> {
  const store = await openDataDir(dataDir, {});
  const ctx: ServiceContext = { store, now: () => new Date(), trusted: [] };
  process.on('message', async (message: { type: string; id: number; alias: string }) => {
    if (message.type !== 'commit') return;
    const { revision } = await bindEntry(ctx, {
      alias: message.alias,
      binding: 'server',
      principal: BENCH_PRINCIPAL,
    });
    process.send!({ type: 'committed', id: message.id, revision, at: wallMs() });
  });
  process.on('disconnect', () => {
    void store.close().then(() => process.exit(0));
  });
  process.send!({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------
// Parent

interface Options {
  seconds: number;
  windows: number;
  swaps: number;
  key: 'rsa' | 'ec';
  sni: boolean;
  explain: boolean;
  modes: Mode[];
  json: boolean;
  out: string | null;
  full: { loops: number; clients: number };
  resumed: { loops: number; clients: number; requests: number };
}

function parseArgs(argv: string[]): Options {
  const get = (name: string, fallback: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
  };
  const key = get('key', 'rsa');
  if (key !== 'rsa' && key !== 'ec') throw new Error('--key is rsa or ec');
  return {
    seconds: Number(get('seconds', '4')),
    windows: Number(get('windows', '5')),
    swaps: Number(get('swaps', '50')),
    key,
    sni: !argv.includes('--no-sni'),
    explain: argv.includes('--explain'),
    modes: get('modes', 'full,resumed')
      .split(',')
      .filter((m): m is Mode => m === 'full' || m === 'resumed'),
    json: argv.includes('--json'),
    out: get('out', '') || null,
    full: { loops: Number(get('full-loops', '2')), clients: Number(get('full-clients', '100')) },
    resumed: {
      loops: Number(get('resumed-loops', '2')),
      clients: Number(get('resumed-clients', '32')),
      requests: Number(get('resumed-requests', '1600')),
    },
  };
}

function pinSelf(cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function child(role: string, args: string[] = []): ChildProcess {
  return spawn(
    'taskset',
    [
      '-c',
      '1',
      process.execPath,
      '--import',
      'tsx',
      new URL(import.meta.url).pathname,
      role,
      ...args,
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
}

async function next<T extends { type: string }>(from: ChildProcess, type: string): Promise<T> {
  for (;;) {
    const [message] = (await once(from, 'message')) as [T];
    if (message.type === type) return message;
  }
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Busy and total jiffies of each CPU, from /proc/stat. */
function cpuTimes(): { busy: number; total: number; steal: number }[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const f = l.trim().split(/\s+/).slice(1).map(Number);
      const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
      const idle = f[3]! + f[4]!;
      return { busy: total - idle, total, steal: f[7]! };
    });
}

/** nginx, bare, runtime, and with `--explain` the bare variants. */
type ServerName = string;
type Mode = 'full' | 'resumed';

interface Target {
  name: ServerName;
  port: number;
  cpuMs(): number;
  handshakes(): Promise<{ full: number; resumed: number }>;
  tlsErrors(): Record<string, number>;
}

interface WindowResult {
  server: ServerName;
  mode: Mode;
  ms: number;
  load: DriveResult;
  /** Handshakes per second made by h2load (succeeded requests over the window). */
  rate: number;
  /** Handshakes the server counted (h2load's, the sampler's and the self-probe's). */
  serverHandshakes: number;
  resumedShare: number;
  serverCpuMs: number;
  serverCpuUsPerHandshake: number;
  cpuBusy: number[];
  steal: number[];
  sampler: SampleStats;
  tlsErrors: Record<string, number>;
  swaps: number;
}

interface Swap {
  n: number;
  mode: Mode;
  kind: 'in-process' | 'other-process';
  alias: string;
  fingerprint: string;
  requestedAt: number;
  commitAt?: number;
  /** In-process: how long `bindEntry` held this process (store reads, commit, fsync). */
  activateMs?: number;
  installedAt?: number;
  servedAt?: number;
  sampledAt?: number;
}

interface Event {
  fingerprint: string;
  at: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const pinned = pinSelf(0);
  const tmp = mkdtempSync(join(tmpdir(), 'certkeeper-swap-'));
  const cleanup: (() => Promise<void> | void)[] = [
    () => rmSync(tmp, { recursive: true, force: true }),
  ];
  try {
    await run(options, tmp, pinned, cleanup);
  } finally {
    for (const step of cleanup.reverse()) await step();
  }
}

async function run(
  options: Options,
  tmp: string,
  pinned: boolean,
  cleanup: (() => Promise<void> | void)[],
): Promise<void> {
  const t0 = performance.now();
  const material = await makeMaterial(4, options.key);
  // The data directory: four key pairs, bench-0 bound as `server`.
  const { dataDir, ctx, aliases, fingerprints } = await openBenchDataDir(tmp, material);
  const store: Store = ctx.store;
  cleanup.push(() => store.close());

  // In-process commits: the time the transaction returned (before the store tells its
  // watchers, which run later on the event loop).
  let lastCommitAt = 0;
  const applyChange = store.applyChange.bind(store);
  store.applyChange = (change) => {
    const result = applyChange(change);
    lastCommitAt = wallMs();
    return result;
  };

  const errors: string[] = [];
  const logger: RuntimeLogger = {
    info() {},
    warn(_obj, msg) {
      errors.push(`warn: ${msg}`);
    },
    error(obj, msg) {
      errors.push(`error: ${msg} ${JSON.stringify(obj).slice(0, 300)}`);
    },
  };
  const supervisor = benchSupervisor(store, dataDir, logger);
  const started = await supervisor.start();
  cleanup.push(() => supervisor.stop());
  const runtime = supervisor.runtime;
  const served = runtime.current!.server;
  if (!started.ok || served.fingerprint !== fingerprints.get('bench-0')) {
    throw new Error(`the runtime did not start on bench-0: ${JSON.stringify(started)}`);
  }

  // Instrumentation of the runtime: swaps, apply results, first handshakes per certificate.
  const installs: Event[] = [];
  const servedEvents: Event[] = [];
  // The swap installed last, until a handshake on a connection accepted after it completes:
  // that handshake got the new certificate (checked, once per swap). Per connection this
  // costs a WeakMap entry while a swap awaits its first handshake, not a certificate parse.
  let awaiting: Event | undefined;
  const acceptedAt = new WeakMap<object, number>();
  const fingerprintOfCert = new Map<string, string>();
  const originalSetSecureContext = runtime.server.setSecureContext.bind(runtime.server);
  runtime.server.setSecureContext = (context: SecureContextOptions) => {
    originalSetSecureContext(context);
    const at = wallMs();
    const cert = String(context.cert);
    let fingerprint = fingerprintOfCert.get(cert);
    if (!fingerprint) {
      fingerprint = new X509Certificate(cert).fingerprint256;
      fingerprintOfCert.set(cert, fingerprint);
    }
    awaiting = { fingerprint, at };
    installs.push(awaiting);
  };
  runtime.server.on('connection', (raw: object) => {
    if (awaiting) acceptedAt.set(raw, wallMs());
  });
  runtime.server.on('secureConnection', (socket: TLSSocket) => {
    if (!awaiting) return;
    const raw = (socket as unknown as { _parent?: object })._parent;
    const accepted = raw ? acceptedAt.get(raw) : undefined;
    if (accepted === undefined || accepted < awaiting.at) return;
    const fingerprint = socket.getX509Certificate()?.fingerprint256 ?? '';
    servedEvents.push({ fingerprint, at: wallMs() });
    if (fingerprint !== awaiting.fingerprint) {
      errors.push(`a handshake after the swap to ${awaiting.fingerprint} served ${fingerprint}`);
    }
    awaiting = undefined;
  });
  const applyResults: ApplyResult[] = [];
  const apply = runtime.apply.bind(runtime);
  runtime.apply = (state) => {
    const result = apply(state);
    result.then(
      (r) => applyResults.push(r),
      () => undefined,
    );
    return result;
  };

  // The bare server and nginx serve what the runtime serves at start (the store's bench-0:
  // the leaf without the self-signed root, as `importEntry` keeps it).
  const bare: Server = createHttpsServer({ key: served.keyPem, cert: served.certPem }, okHandler);
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  cleanup.push(() => new Promise<void>((r) => bare.close(() => r())));

  const nginxDir = join(tmp, 'nginx');
  mkdirSync(nginxDir);
  const nginx: Nginx = await startNginx({
    dir: nginxDir,
    port: await freePort(),
    cpu: 0,
    certPem: served.certPem,
    keyPem: served.keyPem,
  });
  cleanup.push(() => nginx.stop());

  // Server-side counts for the Node servers.
  const nodeCounter = (server: Server) => {
    const counts = { full: 0, resumed: 0 };
    const tlsErrors: Record<string, number> = {};
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.isSessionReused()) counts.resumed++;
      else counts.full++;
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      tlsErrors[code] = (tlsErrors[code] ?? 0) + 1;
    });
    return {
      async handshakes() {
        const taken = { ...counts };
        counts.full = 0;
        counts.resumed = 0;
        return taken;
      },
      tlsErrors() {
        const taken = { ...tlsErrors };
        for (const k of Object.keys(tlsErrors)) delete tlsErrors[k];
        return taken;
      },
    };
  };
  const processCpuMs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const targets: Record<ServerName, Target> = {
    ...(options.explain ? await explainTargets(served, nodeCounter, processCpuMs, cleanup) : {}),
    nginx: {
      name: 'nginx',
      port: nginx.port,
      cpuMs: () => nginx.workerCpuMs(),
      handshakes: () => nginx.handshakesSinceLastCall(),
      tlsErrors: () => ({}),
    },
    bare: {
      name: 'bare',
      port: (bare.address() as { port: number }).port,
      cpuMs: processCpuMs,
      ...nodeCounter(bare),
    },
    runtime: {
      name: 'runtime',
      port: runtime.address()!.port,
      cpuMs: processCpuMs,
      ...nodeCounter(runtime.server),
    },
  };

  // The children on CPU 1.
  const sampler = child('--sampler');
  const driver = child('--driver');
  const committer = child('--committer', [dataDir]);
  cleanup.push(() => {
    for (const c of [sampler, driver, committer]) if (c.connected) c.disconnect();
  });
  await next(committer, 'ready');
  const sampled: Event[] = [];
  sampler.on('message', (m: { type: string; fingerprint?: string; at?: number }) => {
    if (m.type === 'fingerprint') sampled.push({ fingerprint: m.fingerprint!, at: m.at! });
  });
  const setupMs = performance.now() - t0;

  // Swaps: alternately committed here and by the committer, at an even pace over a window.
  const swaps: Swap[] = [];
  let current = 0;
  let commitId = 0;
  const commit = async (mode: Mode): Promise<void> => {
    current = (current + 1) % aliases.length;
    const alias = aliases[current]!;
    const fingerprint = fingerprints.get(alias)!;
    const kind = swaps.length % 2 === 0 ? 'in-process' : 'other-process';
    const swap: Swap = { n: swaps.length, mode, kind, alias, fingerprint, requestedAt: wallMs() };
    swaps.push(swap);
    if (kind === 'in-process') {
      const t = performance.now();
      await bindEntry(ctx, { alias, binding: 'server', principal: BENCH_PRINCIPAL });
      swap.activateMs = performance.now() - t;
      swap.commitAt = lastCommitAt;
    } else {
      const id = ++commitId;
      committer.send({ type: 'commit', id, alias });
      for (;;) {
        const m = await next<{ type: string; id: number; at: number }>(committer, 'committed');
        if (m.id === id) {
          swap.commitAt = m.at;
          break;
        }
      }
    }
  };
  const swapAlong = async (mode: Mode, count: number): Promise<void> => {
    const every = (options.seconds * 1000) / (count + 1);
    for (let i = 0; i < count; i++) {
      await new Promise((r) => setTimeout(r, every));
      await commit(mode);
    }
  };

  const servername = options.sni ? SERVERNAME : null;
  const command = (target: Target, mode: Mode, seconds: number): DriveCommand => ({
    port: target.port,
    servername,
    mode,
    seconds,
    tls13Cipher: TLS13_CIPHER,
    ...(mode === 'full'
      ? { loops: options.full.loops, clients: options.full.clients, requests: options.full.clients }
      : options.resumed),
  });

  const window = async (
    target: Target,
    mode: Mode,
    seconds: number,
    swapCount: number,
  ): Promise<WindowResult> => {
    await target.handshakes();
    target.tlsErrors();
    const cpu0 = target.cpuMs();
    const times0 = cpuTimes();
    const w0 = performance.now();
    driver.send({ type: 'drive', command: command(target, mode, seconds) });
    sampler.send({ type: 'sample', port: target.port, ms: seconds * 1000, servername });
    const [driven, sample] = await Promise.all([
      next<{ type: string; result: DriveResult }>(driver, 'driven'),
      next<{ type: string; stats: SampleStats }>(sampler, 'sampled'),
      swapCount > 0 ? swapAlong(mode, swapCount) : Promise.resolve(),
    ]);
    const ms = performance.now() - w0;
    const times1 = cpuTimes();
    const serverCpuMs = target.cpuMs() - cpu0;
    const counts = await target.handshakes();
    const serverHandshakes = counts.full + counts.resumed;
    const load = driven.result;
    return {
      server: target.name,
      mode,
      ms,
      load,
      rate: (load.succeeded * 1000) / load.ms,
      serverHandshakes,
      resumedShare: counts.resumed / Math.max(1, serverHandshakes),
      serverCpuMs,
      serverCpuUsPerHandshake: (serverCpuMs * 1000) / Math.max(1, serverHandshakes),
      cpuBusy: times1.map((t, i) => (t.busy - times0[i]!.busy) / (t.total - times0[i]!.total)),
      steal: times1.map((t, i) => (t.steal - times0[i]!.steal) / (t.total - times0[i]!.total)),
      sampler: sample.stats,
      tlsErrors: target.tlsErrors(),
      swaps: swapCount,
    };
  };

  // The CPU one swap costs the server process with no load: in-process commits (the
  // commit itself included), each awaited until its probe has settled.
  const idleSwaps = 8;
  const idleCpu = process.cpuUsage();
  const idleStart = performance.now();
  for (let i = 0; i < idleSwaps; i++) {
    current = (current + 1) % aliases.length;
    const settled = applyResults.length;
    await bindEntry(ctx, {
      alias: aliases[current]!,
      binding: 'server',
      principal: BENCH_PRINCIPAL,
    });
    while (applyResults.length === settled) await new Promise((r) => setTimeout(r, 1));
  }
  const idleUsed = process.cpuUsage(idleCpu);
  const idleSwap = {
    swaps: idleSwaps,
    cpuMsPerSwap: round((idleUsed.user + idleUsed.system) / 1000 / idleSwaps, 2),
    wallMsPerSwap: round((performance.now() - idleStart) / idleSwaps, 1),
  };
  applyResults.length = 0;

  const order: ServerName[] = Object.keys(targets).sort(
    (a, b) => rank(a) - rank(b) || a.localeCompare(b),
  );
  // Warm-up: JIT, nginx's caches, the kernel's.
  for (const name of order) await window(targets[name]!, 'full', 2, 0);

  const results: WindowResult[] = [];
  const perWindow = Math.floor(options.swaps / options.windows);
  for (const mode of options.modes) {
    for (let w = 0; w < options.windows; w++) {
      const swapCount = perWindow + (w < options.swaps - perWindow * options.windows ? 1 : 0);
      for (let k = 0; k < order.length; k++) {
        const name = order[(w + k) % order.length]!;
        results.push(
          await window(targets[name]!, mode, options.seconds, name === 'runtime' ? swapCount : 0),
        );
      }
    }
  }
  // Let the last probe finish.
  await new Promise((r) => setTimeout(r, 500));

  // Commit-to-served: the first event with the swap's fingerprint after its commit and
  // before the next commit of the same fingerprint.
  const firstAfter = (events: Event[], swap: Swap): number | undefined => {
    const later = swaps.find((s) => s.n > swap.n && s.fingerprint === swap.fingerprint);
    const until = later?.commitAt ?? Number.POSITIVE_INFINITY;
    const e = events.find(
      (e) => e.fingerprint === swap.fingerprint && e.at > swap.commitAt! && e.at < until,
    );
    return e ? e.at - swap.commitAt! : undefined;
  };
  for (const swap of swaps) {
    swap.installedAt = firstAfter(installs, swap);
    swap.servedAt = firstAfter(servedEvents, swap);
    swap.sampledAt = firstAfter(sampled, swap);
  }

  const report = buildReport(options, {
    pinned,
    setupMs,
    results,
    swaps,
    applyResults,
    errors,
    nginx,
    sni: servername,
    idleSwap,
  });
  const text = options.json ? JSON.stringify(report) : JSON.stringify(report, null, 2);
  if (options.out) writeFileSync(options.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(text);
}

function rank(name: ServerName): number {
  return name === 'nginx' ? 0 : name === 'bare' ? 1 : name === 'runtime' ? 3 : 2;
}

type Counter = Pick<Target, 'handshakes' | 'tlsErrors'>;

/**
 * `--explain`: bare servers with one of the runtime's differences each, to tell what the
 * runtime's handshakes cost over a bare server's:
 * - `bare+options`: the runtime's protocol options (`TLS_PROTOCOL_OPTIONS`, session timeout);
 * - `bare+sni`: an `SNICallback` that hands back one prebuilt context (what the runtime
 *   does for a name without its own binding);
 * - `bare+sessions`: the runtime's TLS 1.2 session-id cache (`newSession` / `resumeSession`
 *   listeners, which Node calls for every session OpenSSL makes, TLS 1.3 tickets included);
 * - `bare+runtime`: a `TlsRuntime` serving the same identity without swaps (all of the
 *   above, and its connection tracking), so that `runtime` over it is the cost of swapping.
 */
async function explainTargets(
  served: Identity,
  counter: (server: Server) => Counter,
  cpuMs: () => number,
  cleanup: (() => Promise<void> | void)[],
): Promise<Record<ServerName, Target>> {
  const context = createSecureContext({ key: served.keyPem, cert: served.certPem });
  const variants: Record<string, () => Server> = {
    'bare+options': () =>
      createHttpsServer(
        {
          ...TLS_PROTOCOL_OPTIONS,
          sessionTimeout: 12 * 3600,
          key: served.keyPem,
          cert: served.certPem,
        },
        okHandler,
      ),
    'bare+sni': () =>
      createHttpsServer(
        {
          key: served.keyPem,
          cert: served.certPem,
          SNICallback: (_name, callback) => callback(null, context),
        },
        okHandler,
      ),
    'bare+sessions': () => {
      const server = createHttpsServer({ key: served.keyPem, cert: served.certPem }, okHandler);
      new SessionIdCache(10_000).attach(server);
      return server;
    },
  };
  const targets: Record<ServerName, Target> = {};
  const idle = new TlsRuntime({ host: '127.0.0.1', port: 0, handler: okHandler });
  const started = await idle.start({ revision: 1, server: served, sni: new Map() });
  if (!started.ok) throw new Error('the idle runtime did not start');
  cleanup.push(() => idle.stop());
  targets['bare+runtime'] = {
    name: 'bare+runtime',
    port: idle.address()!.port,
    cpuMs,
    ...counter(idle.server),
  };
  for (const [name, make] of Object.entries(variants)) {
    const server = make();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    targets[name] = {
      name,
      port: (server.address() as { port: number }).port,
      cpuMs,
      ...counter(server),
    };
  }
  return targets;
}

function buildReport(
  options: Options,
  data: {
    pinned: boolean;
    setupMs: number;
    results: WindowResult[];
    swaps: Swap[];
    applyResults: ApplyResult[];
    errors: string[];
    nginx: Nginx;
    sni: string | null;
    idleSwap: { swaps: number; cpuMsPerSwap: number; wallMsPerSwap: number };
  },
) {
  const { results, swaps } = data;
  const latency = (values: (number | undefined)[]) => {
    const v = values.filter((x): x is number => x !== undefined);
    return {
      measured: v.length,
      of: values.length,
      p50: round(percentile(v, 50), 1),
      p99: round(percentile(v, 99), 1),
      max: round(Math.max(...v), 1),
    };
  };
  const commitToServed = Object.fromEntries(
    (['in-process', 'other-process'] as const).map((kind) => {
      const s = swaps.filter((x) => x.kind === kind);
      return [
        kind,
        {
          swapped: latency(s.map((x) => x.installedAt)),
          firstServerHandshake: latency(s.map((x) => x.servedAt)),
          firstSamplerHandshake: latency(s.map((x) => x.sampledAt)),
        },
      ];
    }),
  );
  const failures = (server: ServerName) => {
    const w = results.filter((r) => r.server === server);
    const tls: Record<string, number> = {};
    for (const r of w) for (const [k, v] of Object.entries(r.tlsErrors)) tls[k] = (tls[k] ?? 0) + v;
    const samplerErrors: Record<string, number> = {};
    for (const r of w) {
      for (const [k, v] of Object.entries(r.sampler.errors))
        samplerErrors[k] = (samplerErrors[k] ?? 0) + v;
    }
    return {
      h2loadRequests: w.reduce((n, r) => n + r.load.requests, 0),
      h2loadFailed: w.reduce((n, r) => n + r.load.failed + r.load.errored + r.load.timeout, 0),
      h2loadNon2xx: w.reduce((n, r) => n + r.load.non2xx, 0),
      h2loadBrokenRuns: w.flatMap((r) => r.load.brokenRuns),
      serverTlsClientErrors: tls,
      samplerHandshakes: w.reduce((n, r) => n + r.sampler.handshakes, 0),
      samplerFailedHandshakes: w.reduce((n, r) => n + r.sampler.failedHandshakes, 0),
      samplerFailedRequests: w.reduce((n, r) => n + r.sampler.failedRequests, 0),
      samplerErrors,
    };
  };
  const modes = Object.fromEntries(
    options.modes.map((mode) => {
      const of = (server: ServerName) =>
        results.filter((r) => r.mode === mode && r.server === server);
      const stat = (server: ServerName) => {
        const w = of(server);
        return {
          handshakesPerSecond: round(median(w.map((r) => r.rate))),
          perWindow: w.map((r) => round(r.rate)),
          serverCpuUsPerHandshake: round(median(w.map((r) => r.serverCpuUsPerHandshake))),
          serverCpuShare: round(median(w.map((r) => r.serverCpuMs / r.ms)), 2),
          resumedShare: round(median(w.map((r) => r.resumedShare)), 3),
          cpu0Busy: round(median(w.map((r) => r.cpuBusy[0] ?? 0)), 2),
          cpu1Busy: round(median(w.map((r) => r.cpuBusy[1] ?? 0)), 2),
          steal: round(median(w.map((r) => Math.max(...r.steal))), 3),
        };
      };
      const names = [...new Set(results.map((r) => r.server))];
      const s: Record<ServerName, ReturnType<typeof stat>> = Object.fromEntries(
        names.map((n) => [n, stat(n)]),
      );
      const ratio = (a: ServerName, b: ServerName) => ({
        rate: round(s[a]!.handshakesPerSecond / s[b]!.handshakesPerSecond, 3),
        // Server CPU per handshake of b over a's: the ratio of what each core could do.
        capacity: round(s[b]!.serverCpuUsPerHandshake / s[a]!.serverCpuUsPerHandshake, 3),
        rateMedianOfWindows: round(
          median(of(a).map((r, i) => r.rate / (of(b)[i]?.rate ?? Number.NaN))),
          3,
        ),
      });
      const variants = Object.fromEntries(
        names.filter((n) => n.startsWith('bare+')).map((n) => [n, ratio(n, 'bare')]),
      );
      return [
        mode,
        {
          ...s,
          runtimeOverBare: ratio('runtime', 'bare'),
          runtimeOverNginx: ratio('runtime', 'nginx'),
          bareOverNginx: ratio('bare', 'nginx'),
          ...(Object.keys(variants).length ? { variantsOverBare: variants } : {}),
        },
      ];
    }),
  );
  return {
    node: process.version,
    openssl: process.versions.openssl,
    nginx: data.nginx.version,
    h2load: h2loadVersion(),
    nproc: Number(execFileSync('nproc', ['--all'], { encoding: 'utf8' }).trim()),
    cpu: /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? null,
    key:
      options.key === 'rsa'
        ? 'RSA-2048 leaf (the chain as imported: leaf only, the self-signed root dropped)'
        : 'ECDSA P-256 leaf (leaf only)',
    tls: {
      protocols: [...new Set(results.flatMap((r) => r.load.protocols))],
      ciphers: [...new Set(results.flatMap((r) => r.load.ciphers))],
      keyExchange: [...new Set(results.flatMap((r) => r.load.tempKeys))],
      sni: data.sni,
    },
    load: {
      generator: `h2load --h1 -H 'Connection: close' --tls13-ciphers=${TLS13_CIPHER}${data.sni ? ` --connect-to=127.0.0.1:PORT https://${data.sni}/` : ' https://127.0.0.1:PORT/'}`,
      full: `${options.full.loops} runs in parallel of -c ${options.full.clients} -n ${options.full.clients} (one connection per client: all full handshakes)`,
      resumed: `${options.resumed.loops} runs in parallel of -c ${options.resumed.clients} -n ${options.resumed.requests} (each client resumes its session after its first connection)`,
      sampler: `Node tls.connect, one at a time with ${SAMPLER_PAUSE_MS} ms pauses, full handshakes`,
      pinned: { servers: data.pinned ? 'CPU 0' : 'no', load: 'CPU 1 (taskset)' },
    },
    windows: options.windows,
    windowSeconds: options.seconds,
    setupSeconds: round(data.setupMs / 1000),
    swaps: {
      count: swaps.length,
      perMode: options.swaps,
      applied: data.applyResults.length,
      ok: data.applyResults.filter((r) => r.ok).length,
      idle: data.idleSwap,
      inProcessActivateMs: latency(swaps.map((x) => x.activateMs).filter((x) => x !== undefined)),
      probeMsP50: round(
        median(data.applyResults.map((r) => r.probe?.ms ?? Number.NaN).filter(Number.isFinite)),
      ),
      runtimeLog: data.errors,
    },
    failures: {
      runtimeDuringSwaps: failures('runtime'),
      bare: failures('bare'),
      nginx: { ...failures('nginx'), errorLog: data.nginx.errorLog() },
    },
    commitToServedMs: commitToServed,
    handshakes: modes,
  };
}

function h2loadVersion(): string | null {
  try {
    return (
      /nghttp2\/(\S+)/.exec(execFileSync('h2load', ['--version'], { encoding: 'utf8' }))?.[1] ??
      null
    );
  } catch {
    return null;
  }
}

if (process.argv.includes('--sampler')) {
  runSampler();
} else if (process.argv.includes('--driver')) {
  runDriver();
} else if (process.argv.includes('--committer')) {
  await runCommitter(process.argv[process.argv.indexOf('--committer') + 1]!);
} else {
  await main();
}
