/**
 * bench/latency: the wall-clock claims the tests no longer make (issue 12), measured here
 * on purpose, with medians of several runs and ratios against a baseline of the same run:
 *
 * - how soon a commit by another process reaches `Store.watch` (SQLite, default 50 ms
 *   poll), p50 / p99 / max over many commits;
 * - how long each hostile input takes to be refused, against reading one ordinary input
 *   of the same kind (a certificate, a PKCS#12 file, a small file);
 * - the slowest x509-limbo `denial-of-service` case, against the median case of the suite.
 *
 * Run: `npm run bench:latency` (add `-- --write` to update BENCHMARKS.md). BENCH_RUNS (5)
 * and BENCH_COMMITS (100 per run) change the sample sizes.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadSuite, runCase } from '../scripts/limbo.js';
import { parseCertificate } from '../src/core/certificate.js';
import { readChildren, readTlv, type Tlv } from '../src/core/der.js';
import { isCoreError } from '../src/core/errors.js';
import { parsePemBlocks } from '../src/core/pem.js';
import { readPkcs7Certificates } from '../src/core/pkcs7.js';
import { readPkcs12 } from '../src/core/pkcs12.js';
import { readInputFile } from '../src/service/read-input-file.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { writeBenchmarksSection } from './benchmarks-section.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const COMMITS = Number(process.env.BENCH_COMMITS ?? 100);
/** Not a multiple of the 50 ms poll, so commits land at every phase of it. */
const GAP_MS = 37;
const WRITER = join(import.meta.dirname, '../test/store/fixtures/writer.ts');
const ROOT = join(import.meta.dirname, '..');

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

// --- watch across processes --------------------------------------------------------------

interface WatchRun {
  p50: number;
  p99: number;
  max: number;
  coalesced: number;
}

/** One run: a writer process commits COUNT changes GAP_MS apart; this process watches. */
async function watchRun(): Promise<WatchRun> {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-latency-'));
  const path = join(dir, 'certkeeper.db');
  const masterKey = randomBytes(32);
  const store = await openSqliteStore({ path, masterKey });
  try {
    const seen: { revision: number; at: number }[] = [];
    let onSeen = () => {};
    store.watch((revision) => {
      seen.push({ revision, at: performance.timeOrigin + performance.now() });
      onSeen();
    });
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER], {
      cwd: ROOT,
      env: {
        ...process.env,
        STORE_PATH: path,
        MASTER_KEY: masterKey.toString('hex'),
        COUNT: String(COMMITS),
        GAP_MS: String(GAP_MS),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const commits: { revision: number; at: number }[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line !== 'ready') commits.push(JSON.parse(line));
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`the writer exited with ${code}`);
    await new Promise<void>((resolve) => {
      onSeen = () => {
        if ((seen.at(-1)?.revision ?? 0) >= COMMITS) resolve();
      };
      onSeen();
    });
    const delays = commits.map((c) => seen.find((s) => s.revision >= c.revision)!.at - c.at);
    return {
      p50: percentile(delays, 50),
      p99: percentile(delays, 99),
      max: Math.max(...delays),
      coalesced: commits.length - seen.length,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- hostile inputs ----------------------------------------------------------------------

/** Mean milliseconds per call of `fn` over `reps` calls. */
async function msPer(fn: () => unknown, reps: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - start) / reps;
}

/** Awaits `fn` and requires it to fail with a coded error (a refusal, not a crash). */
async function refused(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (isCoreError(err) || (err as { code?: unknown })?.code === 'FileUnreadable') return;
    throw err;
  }
  throw new Error('a hostile input was accepted');
}

interface Row {
  name: string;
  ms: number;
  baseline: string;
  baselineMs: number;
  ratio: number;
}

/** Interleaves runs of the refusal and of its baseline; medians of RUNS runs. */
async function compare(
  name: string,
  fn: () => unknown,
  baselineName: string,
  baseline: () => unknown,
  reps: number,
): Promise<Row> {
  await msPer(() => refused(fn), 1); // warm-up
  await msPer(baseline, 3);
  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    base.push(await msPer(baseline, reps));
    ours.push(await msPer(() => refused(fn), reps));
  }
  const row = {
    name,
    ms: median(ours),
    baseline: baselineName,
    baselineMs: median(base),
    ratio: median(ours) / median(base),
  };
  console.error(
    `${name.padEnd(52)} ${row.ms.toFixed(3).padStart(9)} ms  ratio ${row.ratio.toFixed(3)}`,
  );
  return row;
}

/** A DER element with tag and content. */
function encode(tag: number, ...parts: Buffer[]): Buffer {
  const content = Buffer.concat(parts);
  const n = content.length;
  const length =
    n < 0x80
      ? Buffer.from([n])
      : Buffer.concat([Buffer.from([0x80 | Math.ceil(n.toString(16).length / 2)]), hexBytes(n)]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

function hexBytes(n: number): Buffer {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

/** The same PFX with its MAC iteration count replaced (as test/core/pkcs12.test.ts does). */
function withMacIterations(der: Buffer, iterations: number): Buffer {
  const bytes = (t: Tlv) => der.subarray(t.start, t.end);
  const [version, authSafe, mac] = readChildren(der, readTlv(der));
  const [digestInfo, salt] = readChildren(der, mac!);
  const int = hexBytes(iterations);
  const integer = encode(0x02, int[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), int]) : int);
  return encode(
    0x30,
    bytes(version!),
    bytes(authSafe!),
    encode(0x30, bytes(digestInfo!), bytes(salt!), integer),
  );
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

async function hostileRows(dir: string): Promise<Row[]> {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'leaf.key',
      '-subj',
      '/CN=bench.example',
      '-addext',
      'subjectAltName=DNS:bench.example',
      '-days',
      '365',
      '-out',
      'leaf.pem',
    ],
    dir,
  );
  // OpenSSL 3's defaults: PBES2 AES-256-CBC, 2,048 iterations, SHA-256 MAC.
  openssl(
    [
      'pkcs12',
      '-export',
      '-in',
      'leaf.pem',
      '-inkey',
      'leaf.key',
      '-passout',
      'pass:bench',
      '-out',
      'leaf.p12',
    ],
    dir,
  );
  const leafPemPath = join(dir, 'leaf.pem');
  const leafDer = parsePemBlocks(readFileSync(leafPemPath))[0]!.der;
  const p12 = readFileSync(join(dir, 'leaf.p12'));
  const parseOne = () => parseCertificate(leafDer);
  const openOne = () => readPkcs12(p12, 'bench');
  const readOne = () => readInputFile(leafPemPath);

  const garbage = Array.from({ length: 300 }, (_, i) => {
    const g = randomBytes(1 + ((i * 37) % 400));
    g[0] = 0x30;
    return g;
  });
  const noise = randomBytes(1 << 20);
  noise[0] = 0x30;
  const pfxNoise = Buffer.from(noise);
  Buffer.from('3083100000020103308380000006092a864886f70d010701', 'hex').copy(pfxNoise);
  const hugeMac = withMacIterations(p12, 2_000_000_000);
  let next = 0;

  writeFileSync(join(dir, 'sparse.bin'), '');
  truncateSync(join(dir, 'sparse.bin'), 3e9);
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  mkdirSync(join(dir, 'directory'));

  const cert = 'parse one certificate (DER)';
  const pfx = 'open one PKCS#12 (OpenSSL defaults)';
  const file = 'readInputFile of a 0.7 KB PEM file';
  return [
    await compare(
      'PKCS#7: random DER-like input (1–400 bytes), each',
      () => readPkcs7Certificates(garbage[next++ % garbage.length]!),
      cert,
      parseOne,
      300,
    ),
    await compare('PKCS#7: 1 MiB of noise', () => readPkcs7Certificates(noise), cert, parseOne, 20),
    await compare(
      'PKCS#12: MAC of 2,000,000,000 iterations',
      () => readPkcs12(hugeMac, 'bench'),
      pfx,
      openOne,
      20,
    ),
    await compare('PKCS#12: 1 MiB of noise', () => readPkcs12(noise, 'x'), pfx, openOne, 20),
    await compare(
      'PKCS#12: 1 MiB of noise behind a PFX header',
      () => readPkcs12(pfxNoise, 'x'),
      pfx,
      openOne,
      20,
    ),
    await compare(
      'readInputFile: sparse 3 GB file',
      () => readInputFile(join(dir, 'sparse.bin')),
      file,
      readOne,
      200,
    ),
    await compare('readInputFile: /dev/zero', () => readInputFile('/dev/zero'), file, readOne, 200),
    await compare(
      'readInputFile: FIFO with no writer',
      () => readInputFile(join(dir, 'fifo')),
      file,
      readOne,
      200,
    ),
    await compare(
      'readInputFile: a directory',
      () => readInputFile(join(dir, 'directory')),
      file,
      readOne,
      200,
    ),
  ];
}

// --- limbo -------------------------------------------------------------------------------

interface LimboResult {
  cases: number;
  medianCaseMs: number;
  perCase: Map<string, number>;
  maxMs: number;
  maxId: string;
}

/** RUNS passes over the whole SERVER suite; each case's time is the median of its passes. */
function limbo(): LimboResult | undefined {
  let cases: ReturnType<typeof loadSuite>;
  try {
    cases = loadSuite('limbo.json');
  } catch {
    return undefined;
  }
  const times = new Map<string, number[]>(cases.map((c) => [c.id, []]));
  for (const tc of cases) runCase(tc); // warm-up
  for (let i = 0; i < RUNS; i++) {
    for (const tc of cases) {
      const start = performance.now();
      runCase(tc);
      times.get(tc.id)!.push(performance.now() - start);
    }
  }
  const medians = new Map([...times].map(([id, t]) => [id, median(t)]));
  const hostile = cases.filter((t) => t.features?.includes('denial-of-service'));
  const perCase = new Map(hostile.map((t) => [t.id, medians.get(t.id)!]));
  const [maxId, maxMs] = [...perCase].sort((a, b) => b[1] - a[1])[0]!;
  return {
    cases: cases.length,
    medianCaseMs: median([...medians.values()]),
    perCase,
    maxMs,
    maxId,
  };
}

// --- main --------------------------------------------------------------------------------

async function main(): Promise<void> {
  const watchRuns: WatchRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await watchRun();
    console.error(
      `watch run ${i + 1}: p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms, max ${run.max.toFixed(1)} ms, ${run.coalesced} coalesced`,
    );
    watchRuns.push(run);
  }
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-latency-'));
  let rows: Row[];
  try {
    rows = await hostileRows(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lim = limbo();

  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(3));
  const watchTable = [
    '| commits by another process | p50 | p99 | max | commits delivered as a later one |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...watchRuns.map(
      (r, i) =>
        `| run ${i + 1} (${COMMITS} commits) | ${f(r.p50)} ms | ${f(r.p99)} ms | ${f(r.max)} ms | ${r.coalesced} |`,
    ),
    `| **median of ${RUNS} runs** | **${f(median(watchRuns.map((r) => r.p50)))} ms** | **${f(median(watchRuns.map((r) => r.p99)))} ms** | **${f(median(watchRuns.map((r) => r.max)))} ms** | |`,
  ].join('\n');
  const hostileTable = [
    '| hostile input, refused | ms | baseline | baseline ms | ratio |',
    '| --- | ---: | --- | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${f(r.ms)} | ${r.baseline} | ${f(r.baselineMs)} | ${r.ratio.toFixed(3)} |`,
    ),
  ].join('\n');
  const limboTable = lim
    ? [
        `| x509-limbo \`denial-of-service\` case | ms | ratio to the median case (${f(lim.medianCaseMs)} ms of ${lim.cases}) |`,
        '| --- | ---: | ---: |',
        ...[...lim.perCase].map(
          ([id, ms]) =>
            `| ${id === lim.maxId ? `**\`${id}\`** (the slowest)` : `\`${id}\``} | ${f(ms)} | ${(ms / lim.medianCaseMs).toFixed(1)} |`,
        ),
      ].join('\n')
    : '(x509-limbo corpus not found: skipped)';
  const out = [watchTable, '', hostileTable, '', limboTable].join('\n');
  console.log(out);

  if (process.argv.includes('--write')) {
    writeBenchmarksSection(
      'bench-latency',
      [
        '## bench/latency',
        '',
        `Command: \`npm run bench:latency -- --write\` (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${execFileSync('nproc').toString().trim()} cores; BENCH_RUNS=${RUNS}, BENCH_COMMITS=${COMMITS}).`,
        'The wall-clock claims that tests no longer make (issue 12): the tests assert the outcome and count the work; the time is measured here.',
        `Watch: a writer process (\`test/store/fixtures/writer.ts\`) commits ${COMMITS} changes ${GAP_MS} ms apart to a SQLite store that this process watches with the default 50 ms poll; a delay is from the writer's commit to the first delivery of that revision or a later one.`,
        `Refusals: mean time of one refusal, median of ${RUNS} runs interleaved with the baseline (reading one ordinary input of the same kind) in the same process. Limbo: each case's median of ${RUNS} passes over the whole SERVER suite, against the median case.`,
        '',
        watchTable,
        '',
        hostileTable,
        '',
        limboTable,
      ].join('\n'),
    );
  }
}

await main();
