/**
 * bench/core: throughput of the core library, as operations per second and as a ratio
 * against Node's bare `new X509Certificate()` on the same certificate, measured in
 * the same process and interleaved with it. Medians of several runs (the machine is
 * noisy). Run: `npm run bench:core` (add `-- --write` to update BENCHMARKS.md).
 *
 * To compare two versions, save the table of several runs of each (`npm run -s bench:core >
 * before-1.md`…) and summarise them: `npx tsx bench/core.ts --summarise
 * --before=before-1.md,… --after=after-1.md,… [--write]` gives each operation's median over
 * the runs, before and after (ratios, since the machine's speed varies between runs).
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPair as nodeGenerateKeyPair, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseCertificate } from '../src/core/certificate.js';
import { describeCertificate } from '../src/core/describe.js';
import { generateKeyPair, type KeySpec } from '../src/core/generate.js';
import { parsePemBlocks } from '../src/core/pem.js';
import { readPkcs12 } from '../src/core/pkcs12.js';
import { readMaterial } from '../src/core/read.js';
import { validateServerChain } from '../src/core/validate.js';
import { writeBenchmarksSection } from './benchmarks-section.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 600);

/** Ops/s of one timed run: calls `fn` until `ms` have passed. */
async function opsPerSecond(fn: () => unknown, ms: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    await fn();
    n++;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Row {
  name: string;
  ops: number;
  baseline: number;
  ratio: number;
}

/** Interleaves runs of `fn` and of the baseline, so both see the same machine state. */
async function compare(
  name: string,
  fn: () => unknown,
  baseline: () => unknown,
  ms = RUN_MS,
): Promise<Row> {
  const ours: number[] = [];
  const base: number[] = [];
  // Warm-up as long as a run: the first operation measured otherwise pays for the JIT's
  // tiering in its first runs (its ratio varied 0.32–0.40 between identical runs).
  await opsPerSecond(fn, ms);
  await opsPerSecond(baseline, ms);
  for (let i = 0; i < RUNS; i++) {
    base.push(await opsPerSecond(baseline, ms));
    ours.push(await opsPerSecond(fn, ms));
  }
  const row = {
    name,
    ops: median(ours),
    baseline: median(base),
    ratio: median(ours) / median(base),
  };
  console.error(
    `${name.padEnd(48)} ${row.ops.toFixed(1).padStart(10)} ops/s  ratio ${row.ratio.toFixed(4)}`,
  );
  return row;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

function makeFixtures(dir: string): void {
  const ext = (name: string, text: string) => writeFileSync(join(dir, name), text);
  ext(
    'ca.ext',
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  ext(
    'leaf.ext',
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.example\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'root.key',
      '-subj',
      '/CN=Bench Root',
      '-days',
      '3650',
      '-out',
      'root.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ],
    dir,
  );
  openssl(
    ['req', ...ec, '-keyout', 'int.key', '-subj', '/CN=Bench Intermediate', '-out', 'int.csr'],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'int.csr',
      '-CA',
      'root.pem',
      '-CAkey',
      'root.key',
      '-CAcreateserial',
      '-days',
      '3650',
      '-extfile',
      'ca.ext',
      '-out',
      'int.pem',
    ],
    dir,
  );
  openssl(
    ['req', ...ec, '-keyout', 'leaf.key', '-subj', '/CN=bench.example', '-out', 'leaf.csr'],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'int.pem',
      '-CAkey',
      'int.key',
      '-CAcreateserial',
      '-days',
      '3650',
      '-extfile',
      'leaf.ext',
      '-out',
      'leaf.pem',
    ],
    dir,
  );
  const p12 = (out: string, extra: string[]) =>
    openssl(
      [
        'pkcs12',
        '-export',
        '-in',
        'leaf.pem',
        '-inkey',
        'leaf.key',
        '-certfile',
        'int.pem',
        '-passout',
        'pass:bench',
        '-out',
        out,
        ...extra,
      ],
      dir,
    );
  p12('modern.p12', []);
  p12('legacy.p12', ['-legacy']);
  p12('none.p12', ['-certpbe', 'NONE', '-keypbe', 'NONE']);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-bench-'));
  const rows: Row[] = [];
  try {
    makeFixtures(dir);
    const leafPem = readFileSync(join(dir, 'leaf.pem'), 'utf8');
    const leafDer = parsePemBlocks(leafPem)[0]!.der;
    const bare = () => new X509Certificate(leafPem);

    rows.push(
      await compare(
        'parse PEM certificate',
        () => parseCertificate(parsePemBlocks(leafPem)[0]!.der),
        bare,
      ),
    );
    rows.push(
      await compare(
        'parse + describe PEM certificate',
        () => describeCertificate(parseCertificate(parsePemBlocks(leafPem)[0]!.der)),
        bare,
      ),
    );
    rows.push(await compare('parse DER certificate', () => parseCertificate(leafDer), bare));

    const root = parseCertificate(parsePemBlocks(readFileSync(join(dir, 'root.pem')))[0]!.der);
    const int = parseCertificate(parsePemBlocks(readFileSync(join(dir, 'int.pem')))[0]!.der);
    const leaf = parseCertificate(leafDer);
    const time = new Date();
    rows.push(
      await compare(
        'validate 3-certificate chain (parsed)',
        () => {
          const r = validateServerChain(leaf, {
            trusted: [root],
            intermediates: [int],
            time,
            host: 'bench.example',
          });
          if (!r.valid) throw new Error(JSON.stringify(r.problems));
        },
        bare,
      ),
    );
    const bundle = Buffer.from(
      readFileSync(join(dir, 'leaf.pem'), 'utf8') + readFileSync(join(dir, 'int.pem'), 'utf8'),
    );
    rows.push(
      await compare(
        'read PEM bundle + validate 3-certificate chain',
        async () => {
          const m = await readMaterial(bundle);
          const [l, i] = m.certificates.map((c) => c.certificate);
          const r = validateServerChain(l!, {
            trusted: [root],
            intermediates: [i!],
            time,
            host: 'bench.example',
          });
          if (!r.valid) throw new Error('invalid');
        },
        bare,
      ),
    );

    for (const [file, label] of [
      ['modern.p12', 'PBES2 AES-256-CBC, SHA-256 MAC'],
      ['legacy.p12', 'legacy RC2-40 + 3DES, SHA-1 MAC'],
      ['none.p12', 'no encryption, SHA-256 MAC'],
    ] as const) {
      const der = readFileSync(join(dir, file));
      rows.push(await compare(`open PKCS#12 (${label})`, () => readPkcs12(der, 'bench'), bare));
    }

    const specs: [string, KeySpec, Parameters<typeof nodeGenerateKeyPair>][] = [
      ['ECDSA P-256', { type: 'ec', curve: 'P-256' }, ['ec', { namedCurve: 'P-256' }] as never],
      ['ECDSA P-384', { type: 'ec', curve: 'P-384' }, ['ec', { namedCurve: 'P-384' }] as never],
      ['Ed25519', { type: 'ed25519' }, ['ed25519', {}] as never],
      ['RSA 2048', { type: 'rsa', bits: 2048 }, ['rsa', { modulusLength: 2048 }] as never],
      ['RSA 3072', { type: 'rsa', bits: 3072 }, ['rsa', { modulusLength: 3072 }] as never],
      ['RSA 4096', { type: 'rsa', bits: 4096 }, ['rsa', { modulusLength: 4096 }] as never],
    ];
    const gen = promisify(nodeGenerateKeyPair) as (type: string, opts: object) => Promise<unknown>;
    for (const [label, spec, nodeArgs] of specs) {
      // Key generation is compared with Node's own generateKeyPair (its floor), since
      // X509Certificate parsing is no meaningful baseline for it.
      const ms = label.startsWith('RSA') ? 3000 : RUN_MS;
      rows.push(
        await compare(
          `generate ${label} (vs Node generateKeyPair)`,
          () => generateKeyPair(spec),
          () => gen(nodeArgs[0] as string, nodeArgs[1] as object),
          ms,
        ),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const table = [
    '| operation | ops/s | baseline ops/s | ratio |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.ops.toFixed(1)} | ${r.baseline.toFixed(1)} | ${r.ratio.toFixed(3)} |`,
    ),
  ].join('\n');
  console.log(table);
  if (process.argv.includes('--write')) {
    writeBenchmarksSection(
      'bench-core',
      [
        '## bench/core',
        '',
        `Command: \`BENCH_RUNS=${RUNS} BENCH_RUN_MS=${RUN_MS} npm run bench:core -- --write\` (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${execFileSync('nproc').toString().trim()} cores).`,
        `Each figure is the median of ${RUNS} runs of ${RUN_MS} ms (3 s for RSA key generation), interleaved with the baseline in the same process.`,
        "The baseline is Node's bare `new X509Certificate(pem)` on the same leaf certificate, except for key generation, whose baseline is Node's own `crypto.generateKeyPair` for the same key type.",
        '',
        table,
      ].join('\n'),
    );
  }
}

/** The rows of a table printed by `main`. */
function readTable(path: string): Row[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => line.split('|').map((cell) => cell.trim()))
    .filter((cells) => cells.length === 6 && /^[\d.]+$/.test(cells[2]!))
    .map(([, name, ops, baseline, ratio]) => ({
      name: name!,
      ops: Number(ops),
      baseline: Number(baseline),
      ratio: Number(ratio),
    }));
}

/** Per operation, the median over several saved runs before and after a change. */
function summarise(before: string[], after: string[]): void {
  const runs = (paths: string[]) => paths.map(readTable);
  const [b, a] = [runs(before), runs(after)];
  const medianOf = (tables: Row[][], name: string, field: 'ops' | 'ratio') =>
    median(tables.map((t) => t.find((r) => r.name === name)?.[field] ?? Number.NaN));
  const lines = b[0]!.map((row) => {
    const rb = medianOf(b, row.name, 'ratio');
    const ra = medianOf(a, row.name, 'ratio');
    const ob = medianOf(b, row.name, 'ops');
    const oa = medianOf(a, row.name, 'ops');
    const change = `${ra >= rb ? '+' : ''}${(((ra - rb) / rb) * 100).toFixed(0)} %`;
    return `| ${row.name} | ${ob.toFixed(1)} | ${rb.toFixed(3)} | ${oa.toFixed(1)} | ${ra.toFixed(3)} | ${change} |`;
  });
  const table = [
    '| operation | before ops/s | before ratio | after ops/s | after ratio | ratio change |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...lines,
  ].join('\n');
  console.log(table);
  if (process.argv.includes('--write')) {
    writeBenchmarksSection(
      'bench-core',
      [
        '## bench/core',
        '',
        `Commands: \`npm run -s bench:core > before-N.md\` on the old code and \`npm run -s bench:core > after-N.md\` on the new, alternating, ${before.length} and ${after.length} times (BENCH_RUNS=${RUNS} BENCH_RUN_MS=${RUN_MS}), then \`npx tsx bench/core.ts --summarise --before=before-1.md,… --after=after-1.md,… --write\` (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${execFileSync('nproc').toString().trim()} cores, shared with other work: absolute ops/s vary between runs, ratios less).`,
        `Each run's figure is the median of ${RUNS} runs of ${RUN_MS} ms (3 s for RSA key generation), interleaved with the baseline in the same process; the table gives, per operation, the median of those figures over the runs.`,
        "The baseline is Node's bare `new X509Certificate(pem)` on the same leaf certificate, except for key generation, whose baseline is Node's own `crypto.generateKeyPair` for the same key type.",
        '',
        table,
      ].join('\n'),
    );
  }
}

const listArg = (name: string) =>
  process.argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3)
    .split(',') ?? [];

if (process.argv.includes('--summarise')) {
  summarise(listArg('before'), listArg('after'));
} else {
  await main();
}
