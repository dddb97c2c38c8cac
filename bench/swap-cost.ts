/**
 * CPU time one swap costs the server process, with no load: commit (in process), follow,
 * build, install, probe. `npx tsx bench/swap-cost.ts [--swaps 60] [--key rsa|ec]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApplyResult } from '../src/runtime/tls-runtime.js';
import { bindEntry } from '../src/service/bind-entry.js';
import type { Principal } from '../src/service/principal.js';
import { benchSupervisor } from './bench-supervisor.js';
import { makeMaterial, openBenchDataDir } from './swap-material.js';

const BENCH_PRINCIPAL: Principal = { actor: 'bench', role: 'admin', source: 'bench' };

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1]! : fallback;
};
const swaps = Number(arg('swaps', '60'));
const keyType = arg('key', 'rsa');

const tmp = await mkdtemp(join(tmpdir(), 'ck-swap-cost-'));
try {
  const material = await makeMaterial(4, keyType === 'ec' ? 'ec' : 'rsa');
  const { dataDir, ctx, aliases } = await openBenchDataDir(tmp, material);
  const store = ctx.store;
  const quiet = {
    info() {},
    warn() {},
    error(o: object, m: string) {
      console.error(m, o);
    },
  };
  const supervisor = benchSupervisor(store, dataDir, quiet);
  await supervisor.start();
  const applied: ((r: ApplyResult) => void)[] = [];
  const apply = supervisor.runtime.apply.bind(supervisor.runtime);
  supervisor.runtime.apply = (state) => {
    const r = apply(state);
    r.then((x) => applied.shift()?.(x));
    return r;
  };
  const perSwap: number[] = [];
  for (let i = 0; i < swaps; i++) {
    const done = new Promise<ApplyResult>((resolve) => applied.push(resolve));
    const before = process.cpuUsage();
    await bindEntry(ctx, {
      alias: aliases[(i + 1) % 4]!,
      binding: 'server',
      principal: BENCH_PRINCIPAL,
    });
    const result = await done;
    const used = process.cpuUsage(before);
    if (!result.ok) throw new Error('swap failed');
    perSwap.push((used.user + used.system) / 1000);
  }
  const tail = perSwap.slice(Math.floor(swaps / 3)).sort((a, b) => a - b);
  const median = tail[Math.floor(tail.length / 2)]!;
  console.log(
    JSON.stringify({
      key: keyType,
      swaps,
      firstMs: perSwap.slice(0, 5).map((x) => +x.toFixed(1)),
      medianMsAfterWarmup: +median.toFixed(2),
    }),
  );
  await supervisor.stop();
  await store.close();
} finally {
  await rm(tmp, { recursive: true, force: true });
}
