/**
 * bench/api: the REST API over real HTTPS on loopback (issue 14), against the app built
 * by `buildApp` on a real keystore in a temp dir (test/support/api.ts's `startApi`):
 *
 * - requests per second for `GET /api/v1/entries` with 1,000 entries: one page (100), and
 *   the whole listing read by following its `Link: <…>; rel="next"` pages; and for an
 *   import (`PUT /api/v1/entries/{alias}`, a PEM certificate + chain + key), all with a
 *   bearer API token, against a cheap authenticated request (`GET /api/v1/auth/session`)
 *   in the same run;
 * - p50 / p99 / max latency of `GET /api/v1/auth/session` while RSA-4096 keys are being
 *   generated (`POST /api/v1/csrs`, one after another), against the same without key
 *   generation, in the same run. Target: p99 under 50 ms.
 *
 * The server runs in this process; the load comes from a child process (this file with
 * `--client`) through undici keep-alive pools, so a blocked server event loop cannot
 * stall the clock that measures it. Both share the machine's cores.
 *
 * Run: `npm run bench:api` (add `-- --write` to update BENCHMARKS.md). BENCH_RUNS (5),
 * BENCH_SECONDS (4 per window) and BENCH_ENTRIES (1000) change the sizes.
 */
import { type ChildProcess, execFile, fork } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { type Dispatcher, Pool } from 'undici';
import { generateKeyPair, issueCertificate } from '../src/core/generate.js';
import { toPem } from '../src/core/pem.js';
import { createToken } from '../src/service/create-token.js';
import { createUser } from '../src/service/create-user.js';
import { deleteEntry } from '../src/service/delete-entry.js';
import { importEntry } from '../src/service/import-entry.js';
import { DEFAULT_PAGE_SIZE } from '../src/service/read-entries.js';
import { PASSWORD, startApi } from '../test/support/api.js';
import { makeHierarchy } from '../test/support/pki.js';
import { TEST_PRINCIPAL } from '../test/support/principal.js';
import { file } from '../test/support/service.js';
import { writeBenchmarksSection } from './benchmarks-section.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 1000);
/** Leaf keys shared by the entries: generating 1,000 keys would only slow the setup. */
const LEAF_KEYS = 8;
/** Open-loop sampling: one cheap request every SAMPLE_MS, whatever the answers do. */
const SAMPLE_MS = 5;
const TARGET_P99_MS = 50;
const execFileAsync = promisify(execFile);

// --- the load generator (child process) -------------------------------------------------

interface ClientSetup {
  origin: string;
  ca: string;
  token: string;
}

type Job =
  | {
      kind: 'rate';
      method: 'GET' | 'PUT';
      path: string;
      /** PUT: bodies used in turn; each request gets its own alias `path` + n. */
      bodies?: string[];
      connections: number;
      ms: number;
      /** Go on past `ms` until this many requests have answered. */
      minCount?: number;
      /** GET: one "request" is a walk from `path` along the `rel="next"` links to the end. */
      follow?: boolean;
    }
  | { kind: 'latency'; path: string; keygen: boolean; tag: string; ms: number };

interface RateResult {
  count: number;
  ms: number;
  /** Bytes of body per request (per walk when following links). */
  bytes: number;
  /** Following links: the pages and the entries of the last walk. */
  pages: number;
  items: number;
  failures: Record<string, number>;
}

interface LatencyResult {
  latencies: number[];
  keys: number;
  keyMs: number[];
  failures: Record<string, number>;
}

async function client(): Promise<void> {
  process.send?.('started');
  const setup = await new Promise<ClientSetup>((resolve) => process.once('message', resolve));
  const pool = new Pool(setup.origin, { connections: 16, connect: { ca: setup.ca } });
  const keyPool = new Pool(setup.origin, { connections: 1, connect: { ca: setup.ca } });
  const auth = { authorization: `Bearer ${setup.token}` };
  process.on('message', async (job: Job) => {
    const result = job.kind === 'rate' ? await rate(job) : await latency(job);
    process.send?.(result);
  });
  process.send?.('ready');

  function fail(failures: Record<string, number>, what: string): void {
    failures[what] = (failures[what] ?? 0) + 1;
  }

  async function rate(job: Extract<Job, { kind: 'rate' }>): Promise<RateResult> {
    const failures: Record<string, number> = {};
    let count = 0;
    let bytes = 0;
    let n = 0;
    let pages = 0;
    let items = 0;
    const start = performance.now();
    const end = start + job.ms;
    let last = start;
    const minCount = job.minCount ?? 0;
    const worker = async () => {
      // A failure ends the window: the bench reports it instead of retrying for ever.
      while (performance.now() < end || (count < minCount && Object.keys(failures).length === 0)) {
        const i = n++;
        const body = job.bodies ? job.bodies[i % job.bodies.length] : undefined;
        let path: string | undefined = job.bodies ? `${job.path}${i}` : job.path;
        let walked = { bytes: 0, pages: 0, items: 0 };
        while (path !== undefined) {
          const t = performance.now();
          const res: Dispatcher.ResponseData | undefined = await pool
            .request({
              method: job.method,
              path,
              headers: body
                ? { ...auth, 'content-type': 'application/json', 'if-none-match': '*' }
                : auth,
              ...(body ? { body } : {}),
            })
            .catch((err: NodeJS.ErrnoException) => {
              fail(
                failures,
                `${err.code ?? err.message} after ${Math.round(performance.now() - t)} ms`,
              );
              return undefined;
            });
          if (!res) break;
          const text = await res.body.text();
          if (res.statusCode >= 300) {
            fail(failures, `${res.statusCode} ${text.slice(0, 120)}`);
            break;
          }
          walked.bytes += text.length;
          walked.pages++;
          path = undefined;
          if (job.follow) {
            walked.items += (JSON.parse(text) as unknown[]).length;
            path = /^<([^>]+)>; rel="next"$/.exec(String(res.headers.link ?? ''))?.[1];
          }
          if (path === undefined) {
            count++;
            bytes += walked.bytes;
            ({ pages, items } = walked);
            walked = { bytes: 0, pages: 0, items: 0 };
            last = performance.now();
          }
        }
      }
    };
    await Promise.all(Array.from({ length: job.connections }, worker));
    // Requests per second over the time they took: from the start to the last answer.
    return { count, ms: last - start, bytes: bytes / Math.max(count, 1), pages, items, failures };
  }

  async function latency(job: Extract<Job, { kind: 'latency' }>): Promise<LatencyResult> {
    const failures: Record<string, number> = {};
    let keys = 0;
    const keyMs: number[] = [];
    let stop = false;
    const keygen = async () => {
      while (!stop) {
        const t = performance.now();
        const res = await keyPool.request({
          method: 'POST',
          path: '/api/v1/csrs',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({
            alias: `rsa-${job.tag}-${keys}`,
            subject: { CN: 'bench.example.test' },
            sans: ['DNS:bench.example.test'],
            keyType: 'rsa-4096',
          }),
        });
        const text = await res.body.text();
        if (res.statusCode !== 201) fail(failures, `csr ${res.statusCode} ${text.slice(0, 120)}`);
        keys++;
        keyMs.push(performance.now() - t);
      }
    };
    const generating = job.keygen ? keygen() : Promise.resolve();
    // Let the first generation start before sampling.
    if (job.keygen) await new Promise((r) => setTimeout(r, 100));
    const latencies: number[] = [];
    const samples: Promise<void>[] = [];
    const start = performance.now();
    const count = Math.floor(job.ms / SAMPLE_MS);
    for (let i = 0; i < count; i++) {
      const due = start + i * SAMPLE_MS;
      // Never before it is due: skipping short waits sent requests up to 1 ms early, and a
      // fast answer then had a negative latency (a timer, counted in whole ms, may also wake
      // a little early).
      for (let wait = due - performance.now(); wait > 0; wait = due - performance.now()) {
        await new Promise((r) => setTimeout(r, wait));
      }
      samples.push(
        (async () => {
          const res = await pool.request({ method: 'GET', path: job.path, headers: auth });
          const text = await res.body.text();
          // From when it was due, not when it left: a late send is latency too.
          latencies.push(performance.now() - due);
          if (res.statusCode !== 200) fail(failures, `${res.statusCode} ${text.slice(0, 120)}`);
        })(),
      );
    }
    await Promise.all(samples);
    stop = true;
    await generating;
    return { latencies, keys, keyMs, failures };
  }
}

// --- the server side and the report -----------------------------------------------------

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

function ask<T>(child: ChildProcess, job: Job): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(job);
  });
}

/** Makes RSA-4096 keys with `openssl`, one after another, until stopped: how many it made. */
function opensslLoop(): { stop(): Promise<number> } {
  let stopped = false;
  let made = 0;
  const loop = (async () => {
    while (!stopped) {
      await execFileAsync('openssl', [
        'genpkey',
        '-algorithm',
        'RSA',
        '-pkeyopt',
        'rsa_keygen_bits:4096',
        '-out',
        '/dev/null',
      ]);
      made++;
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return made;
    },
  };
}

function checkNoFailures(what: string, failures: Record<string, number>): void {
  const list = Object.entries(failures);
  if (list.length > 0) {
    throw new Error(`${what}: failed requests: ${list.map(([k, n]) => `${n}× ${k}`).join('; ')}`);
  }
}

const fmt = (n: number, digits = 1) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const write = process.argv.includes('--write');
  // Other work on the machine shows here: this bench alone keeps about 2 cores busy.
  const loadBefore = loadavg()[0]!;
  // The server's own certificate, so the client can trust its root.
  const serving = await makeHierarchy({ name: 'Bench server', ips: ['127.0.0.1'] });
  const api = await startApi({
    serverOptions: {
      key: serving.leaf.keyPem,
      cert: serving.leaf.certPem + serving.intermediate.certPem,
    },
  });
  const child = fork(import.meta.filename, ['--client'], {
    execArgv: ['--import', 'tsx'],
    stdio: 'inherit',
  });
  let finished = false;
  child.on('exit', (code) => {
    if (finished) return;
    console.error(`the load generator exited with ${code}`);
    process.exit(1);
  });
  try {
    // A user and an API token made through the service: the API then checks the token.
    await createUser(api.keystore.ctx, {
      username: 'bench',
      role: 'admin',
      password: PASSWORD,
      principal: TEST_PRINCIPAL,
    });
    const { token } = await createToken(api.keystore.ctx, {
      name: 'bench',
      role: 'admin',
      username: 'bench',
      principal: TEST_PRINCIPAL,
    });

    // Entries: one hierarchy, LEAF_KEYS P-256 keys, ENTRIES leaf certificates.
    const setupStart = performance.now();
    const pki = await makeHierarchy({ name: 'Bench' });
    const keys = await Promise.all(
      Array.from({ length: LEAF_KEYS }, () => generateKeyPair({ type: 'ec', curve: 'P-256' })),
    );
    const bundles: { certPem: string; keyPem: string }[] = [];
    for (let i = 0; i < ENTRIES; i++) {
      const k = keys[i % LEAF_KEYS]!;
      const host = `host${i}.bench.example.test`;
      const der = await issueCertificate({
        issuer: { certificate: pki.intermediate.cert, key: pki.intermediate.key },
        publicKey: k.publicKey,
        subject: { CN: host },
        sans: { dns: [host], ip: [] },
        days: 90,
        now: new Date(),
      });
      bundles.push({
        certPem: toPem('CERTIFICATE', der),
        keyPem: k.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      });
    }
    for (const [i, b] of bundles.entries()) {
      await importEntry(api.keystore.ctx, {
        alias: `entry-${String(i).padStart(4, '0')}`,
        files: [file('bundle.pem', b.certPem + pki.intermediate.certPem + b.keyPem)],
        principal: TEST_PRINCIPAL,
      });
    }
    const setupSeconds = (performance.now() - setupStart) / 1000;
    console.error(`${ENTRIES} entries imported through importEntry in ${fmt(setupSeconds)} s`);

    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    child.send({ origin: api.origin, ca: serving.root.certPem, token } satisfies ClientSetup);
    await new Promise<void>((resolve) => child.once('message', () => resolve()));

    const putBodies = bundles.slice(0, 16).map((b) =>
      JSON.stringify({
        certificate: b.certPem,
        chain: pki.intermediate.certPem,
        privateKey: b.keyPem,
      }),
    );
    const ms = SECONDS * 1000;
    const jobs = {
      session: { kind: 'rate', method: 'GET', path: '/api/v1/auth/session', connections: 8, ms },
      // One at a time: a listing is computed on the event loop (see below), so more
      // connections only queue behind it, and past 5 s Node resets a waiting keep-alive one.
      page: {
        kind: 'rate',
        method: 'GET',
        path: '/api/v1/entries',
        connections: 1,
        ms,
        minCount: 3,
      },
      // Every entry, as a script reads them: the first page, then each `rel="next"`.
      walk: {
        kind: 'rate',
        method: 'GET',
        path: '/api/v1/entries',
        connections: 1,
        ms,
        minCount: 3,
        follow: true,
      },
      put: (run: string) =>
        ({
          kind: 'rate',
          method: 'PUT',
          path: `/api/v1/entries/put-${run}-`,
          bodies: putBodies,
          connections: 4,
          ms,
        }) satisfies Job,
    } as const;

    // The imports are deleted after each window, so every listing sees the same entries.
    const removeImported = async () => {
      for (const e of await api.keystore.ctx.store.listEntries()) {
        if (e.alias.startsWith('put-')) {
          await deleteEntry(api.keystore.ctx, { alias: e.alias, principal: TEST_PRINCIPAL });
        }
      }
    };
    // Warm-up (JIT, connections, caches); not counted. Imports go to `put-warm-<n>`.
    for (const job of [jobs.session, jobs.page, jobs.walk, jobs.put('warm')] as Extract<
      Job,
      { kind: 'rate' }
    >[]) {
      const r = await ask<RateResult>(child, { ...job, ms: 1000, minCount: 1 });
      checkNoFailures(`warm-up ${job.kind}`, r.failures);
      await removeImported();
    }

    let listed = 0;
    const cases = ['session', 'page', 'walk', 'put'] as const;
    const rates = Object.fromEntries(cases.map((c) => [c, [] as number[]])) as Record<
      (typeof cases)[number],
      number[]
    >;
    const stalls = Object.fromEntries(cases.map((c) => [c, [] as number[]])) as Record<
      (typeof cases)[number],
      number[]
    >;
    let pageBytes = 0;
    let walkBytes = 0;
    let walkPages = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const name of cases) {
        const job: Job = name === 'put' ? jobs.put(String(run)) : jobs[name];
        const loop = monitorEventLoopDelay({ resolution: 1 });
        loop.enable();
        const r = await ask<RateResult>(child, job);
        loop.disable();
        stalls[name].push(loop.max / 1e6);
        checkNoFailures(`${name} run ${run}`, r.failures);
        if (name === 'put') await removeImported();
        if (name === 'page') pageBytes = r.bytes;
        if (name === 'walk') {
          listed = (await api.keystore.ctx.store.listEntries()).length;
          // The walk must have read every entry once, or it measured something else.
          if (r.items !== listed) throw new Error(`the walk read ${r.items} of ${listed} entries`);
          walkBytes = r.bytes;
          walkPages = r.pages;
        }
        rates[name].push(r.count / (r.ms / 1000));
        console.error(
          `run ${run} ${name.padEnd(8)} ${fmt(r.count / (r.ms / 1000), 3)} req/s  loop delay max ${fmt(loop.max / 1e6, 0)} ms`,
        );
      }
    }

    // Three conditions per run, interleaved: nothing else; RSA-4096 keys generated through
    // the API (the case measured); the same keys generated by an unrelated `openssl`
    // process (a control: the CPU the generation takes, with no part in the server).
    const conditions = ['quiet', 'api', 'openssl'] as const;
    type Condition = (typeof conditions)[number];
    const stats = Object.fromEntries(
      conditions.map((c) => [
        c,
        {
          p50: [] as number[],
          p99: [] as number[],
          max: [] as number[],
          loopMax: [] as number[],
          loopP99: [] as number[],
        },
      ]),
    ) as Record<Condition, Record<'p50' | 'p99' | 'max' | 'loopMax' | 'loopP99', number[]>>;
    let samples = 0;
    let keysMade = 0;
    let opensslKeys = 0;
    const keyMs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      for (const condition of conditions) {
        // The server's own event loop: how long a timer waited beyond its time.
        const loop = monitorEventLoopDelay({ resolution: 1 });
        loop.enable();
        const external = condition === 'openssl' ? opensslLoop() : undefined;
        const r = await ask<LatencyResult>(child, {
          kind: 'latency',
          path: '/api/v1/auth/session',
          keygen: condition === 'api',
          tag: String(run),
          ms,
        });
        loop.disable();
        if (external) opensslKeys += await external.stop();
        checkNoFailures(`latency run ${run} ${condition}`, r.failures);
        if (condition === 'api' && r.keys === 0) {
          throw new Error('no RSA key was generated during the window');
        }
        const into = stats[condition];
        into.p50.push(percentile(r.latencies, 50));
        into.p99.push(percentile(r.latencies, 99));
        into.max.push(Math.max(...r.latencies));
        into.loopMax.push(loop.max / 1e6);
        into.loopP99.push(loop.percentile(99) / 1e6);
        samples += r.latencies.length;
        if (condition === 'api') {
          keysMade += r.keys;
          keyMs.push(...r.keyMs);
        }
        console.error(
          `run ${run} ${condition.padEnd(7)} p50 ${fmt(percentile(r.latencies, 50), 2)} ms  p99 ${fmt(percentile(r.latencies, 99), 2)} ms  max ${fmt(Math.max(...r.latencies), 2)} ms  loop delay p99 ${fmt(loop.percentile(99) / 1e6, 2)} max ${fmt(loop.max / 1e6, 2)} ms  keys ${r.keys}`,
        );
      }
    }
    const quiet = stats.quiet;
    const busy = stats.api;
    const control = stats.openssl;

    const m = {
      session: median(rates.session),
      page: median(rates.page),
      walk: median(rates.walk),
      put: median(rates.put),
      quietP99: median(quiet.p99),
      busyP99: median(busy.p99),
    };
    const verdict =
      m.busyP99 < TARGET_P99_MS
        ? `**met**: ${fmt(m.busyP99, 2)} ms < ${TARGET_P99_MS} ms`
        : `**missed**: ${fmt(m.busyP99, 2)} ms ≥ ${TARGET_P99_MS} ms`;
    const command = `npm run bench:api -- --write${RUNS !== 5 || SECONDS !== 4 || ENTRIES !== 1000 ? ` (BENCH_RUNS=${RUNS} BENCH_SECONDS=${SECONDS} BENCH_ENTRIES=${ENTRIES})` : ''}`;
    const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
    const load = `1-minute load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end`;
    const body = [
      '## bench/api',
      '',
      `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores, ${cpu}; ${load}).`,
      `The app built by \`buildApp\` over HTTPS (TLS 1.3, ECDSA P-256 server certificate) on 127.0.0.1, on a real keystore (SQLite) in a temp dir, as \`test/support/api.ts\` starts it; every request carries a bearer API token (\`ckt_…\`, role admin). The load comes from a child process through undici keep-alive pools. **Load generator and server share the machine's ${cpus().length} cores**, so every figure includes the client's cost and the machine's noise; ratios are against a baseline measured in the same run. Figures are medians of ${RUNS} runs of ${SECONDS} s, after a 1 s warm-up of each case.`,
      `Setup: ${ENTRIES} key-pair entries (leaves of one P-256 intermediate, ${LEAF_KEYS} P-256 keys shared among them) imported through \`importEntry\` in ${fmt(setupSeconds)} s.`,
      '',
      '| request | concurrency | req/s | ms per request (1 / rate) | baseline req/s | ratio | server loop delay max ms |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| \`GET /api/v1/auth/session\` (baseline) | 8 | ${fmt(m.session)} | ${fmt(1000 / m.session, 2)} | ${fmt(m.session)} | 1.000 | ${fmt(median(stalls.session), 0)} |`,
      `| \`GET /api/v1/entries\`, the first page: ${Math.min(DEFAULT_PAGE_SIZE, listed)} of ${listed} entries (${fmt(pageBytes / 1024, 0)} KB of JSON each) | 1 | ${fmt(m.page, 3)} | ${fmt(1000 / m.page, 1)} | ${fmt(m.session)} | ${(m.page / m.session).toPrecision(3)} | ${fmt(median(stalls.page), 0)} |`,
      `| all ${listed} entries, following \`Link: <…>; rel="next"\` from \`GET /api/v1/entries\` (${walkPages} requests, ${fmt(walkBytes / 1024 / 1024, 2)} MB of JSON in all); a request here is the whole walk | 1 | ${fmt(m.walk, 3)} | ${fmt(1000 / m.walk, 0)} | ${fmt(m.session)} | ${(m.walk / m.session).toPrecision(3)} | ${fmt(median(stalls.walk), 0)} |`,
      `| \`PUT /api/v1/entries/{alias}\`, a new alias each, JSON certificate + chain + key (PEM, P-256), \`If-None-Match: *\` | 4 | ${fmt(m.put)} | ${fmt(1000 / m.put, 1)} | ${fmt(m.session)} | ${(m.put / m.session).toFixed(3)} | ${fmt(median(stalls.put), 0)} |`,
      '',
      `Latency of \`GET /api/v1/auth/session\`, one request every ${SAMPLE_MS} ms (open loop, timed from when each was due), ${RUNS} windows of ${SECONDS} s with RSA-4096 keys being generated (\`POST /api/v1/csrs\`, keyType \`rsa-4096\`, one after another; ${keysMade} keys, median ${fmt(median(keyMs) / 1000, 2)} s each) interleaved with ${RUNS} windows without and ${RUNS} windows while \`openssl genpkey\` made RSA-4096 keys in another process (${opensslKeys} keys); ${samples} samples in all. "Server loop delay" is \`perf_hooks.monitorEventLoopDelay\` in the server's process over each window. Target: p99 under ${TARGET_P99_MS} ms while a key is generated — ${verdict}.`,
      '',
      '| condition | p50 ms | p99 ms | max ms | p99 / baseline p99 | server loop delay p99 ms | server loop delay max ms |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| no key generation (baseline) | ${fmt(median(quiet.p50), 2)} | ${fmt(m.quietP99, 2)} | ${fmt(median(quiet.max), 2)} | 1.00 | ${fmt(median(quiet.loopP99), 2)} | ${fmt(median(quiet.loopMax), 2)} |`,
      `| **RSA-4096 generated through the API** | ${fmt(median(busy.p50), 2)} | **${fmt(m.busyP99, 2)}** | ${fmt(median(busy.max), 2)} | **${(m.busyP99 / m.quietP99).toFixed(2)}** | ${fmt(median(busy.loopP99), 2)} | ${fmt(median(busy.loopMax), 2)} |`,
      `| RSA-4096 generated by an unrelated \`openssl\` process (control) | ${fmt(median(control.p50), 2)} | ${fmt(median(control.p99), 2)} | ${fmt(median(control.max), 2)} | ${(median(control.p99) / m.quietP99).toFixed(2)} | ${fmt(median(control.loopP99), 2)} | ${fmt(median(control.loopMax), 2)} |`,
      '',
      'Skipped cases: none (every request of every window must answer 2xx, or the bench stops).',
    ].join('\n');
    console.log(body);
    if (write) writeBenchmarksSection('api', body);
  } finally {
    finished = true;
    child.kill();
    await api.close();
  }
}

if (process.argv.includes('--client')) await client();
else await main();
