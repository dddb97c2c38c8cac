/**
 * bench/sni-selection: what choosing each connection's context from its ClientHello
 * (`sniSelection: 'client-hello'`, the default, which serves an SNI identity of another key
 * type than the server's correctly) costs against Node's SNICallback (`'sni-callback'`,
 * which doesn't: nodejs/node#54235), per full TLS 1.3 handshake.
 *
 * A `TlsRuntime` with an ECDSA P-256 server identity and one ECDSA SNI binding (same key
 * type, so both modes serve the right certificate) runs in a child process pinned to CPU 0;
 * this process, pinned to CPU 1, makes full handshakes (no resumption, one `GET /` each,
 * 16 in flight) for `--seconds`, first for the SNI name, then for a name that falls to the
 * server identity. The modes alternate run by run (A B A B …) so drift hits both alike.
 * Reported per mode and name: handshakes per second, and the server's CPU per handshake
 * (its capacity); the ratios are client-hello / sni-callback, medians over `--runs`.
 *
 * Run: `npx tsx bench/sni-selection.ts [--runs 5] [--seconds 3]`
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:tls';
import { parseCertificate } from '../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../src/core/generate.js';
import { toPem } from '../src/core/pem.js';
import { identityFromPem } from '../src/runtime/identity.js';
import { TlsRuntime } from '../src/runtime/tls-runtime.js';

type Mode = 'client-hello' | 'sni-callback';
const SNI_NAME = 'sni.bench.test';
const OTHER_NAME = 'other.bench.test';
const IN_FLIGHT = 16;

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1]! : fallback;
};

if (process.env.SNI_SELECTION_SERVER) {
  await serve(process.env.SNI_SELECTION_SERVER as Mode);
} else {
  await measure(Number(arg('runs', '5')), Number(arg('seconds', '3')));
}

/** The child: a runtime in `mode`, answering CPU windows over IPC. */
async function serve(mode: Mode): Promise<void> {
  const now = new Date();
  const ca = await generateKeyPair({ type: 'ec', curve: 'P-256' });
  const caDer = await createSelfSignedCa({
    key: ca.privateKey,
    subject: { CN: 'Bench CA' },
    days: 30,
    now,
  });
  const issuer = { certificate: parseCertificate(caDer), key: ca.privateKey };
  const identity = async (name: string) => {
    const pair = await generateKeyPair({ type: 'ec', curve: 'P-256' });
    const der = await issueCertificate({
      issuer,
      publicKey: pair.publicKey,
      subject: { CN: name },
      sans: { dns: [name] },
      days: 7,
      now,
    });
    return identityFromPem({
      key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: toPem('CERTIFICATE', der),
      source: 'bench',
    });
  };
  const runtime = new TlsRuntime({
    host: '127.0.0.1',
    port: 0,
    sniSelection: mode,
    handler: (_req, res) => res.end('ok'),
  });
  await runtime.start({
    revision: 1,
    server: await identity('server.bench.test'),
    sni: new Map([[SNI_NAME, await identity(SNI_NAME)]]),
  });
  let cpu = process.cpuUsage();
  process.on('message', async (message: { type: string }) => {
    if (message.type === 'mark') {
      cpu = process.cpuUsage();
      process.send!({ type: 'marked' });
    } else if (message.type === 'cpu') {
      const used = process.cpuUsage(cpu);
      process.send!({ type: 'cpu', cpuMs: (used.user + used.system) / 1000 });
    } else if (message.type === 'stop') {
      await runtime.stop();
      process.exit(0);
    }
  });
  process.send!({ type: 'ready', port: runtime.address()!.port });
}

async function measure(runs: number, seconds: number): Promise<void> {
  const pinned = pin(process.pid, 1);
  const results: Record<string, { rate: number[]; cpuUs: number[] }> = {};
  for (let run = 0; run < runs; run++) {
    for (const mode of run % 2 === 0
      ? (['client-hello', 'sni-callback'] as const)
      : (['sni-callback', 'client-hello'] as const)) {
      const child = fork(new URL(import.meta.url).pathname, [], {
        env: { ...process.env, SNI_SELECTION_SERVER: mode },
        execArgv: ['--import', 'tsx'],
      });
      const ready = await message<{ port: number }>(child, 'ready');
      pin(child.pid!, 0);
      for (const servername of [SNI_NAME, OTHER_NAME]) {
        await window(ready.port, servername, 0.5); // warm-up
        child.send({ type: 'mark' });
        await message(child, 'marked');
        const done = await window(ready.port, servername, seconds);
        child.send({ type: 'cpu' });
        const { cpuMs } = await message<{ cpuMs: number }>(child, 'cpu');
        const key = `${mode} ${servername === SNI_NAME ? 'SNI name' : 'other name'}`;
        results[key] ??= { rate: [], cpuUs: [] };
        results[key].rate.push(done / seconds);
        results[key].cpuUs.push((cpuMs * 1000) / done);
      }
      child.send({ type: 'stop' });
      await once(child, 'exit');
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows = Object.entries(results).map(([key, r]) => ({
    case: key,
    handshakesPerSecond: Math.round(median(r.rate)),
    serverCpuUsPerHandshake: Math.round(median(r.cpuUs)),
  }));
  console.table(rows);
  for (const name of ['SNI name', 'other name']) {
    const a = results[`client-hello ${name}`]!;
    const b = results[`sni-callback ${name}`]!;
    const rateRatios = a.rate.map((x, i) => x / b.rate[i]!);
    const capacityRatios = a.cpuUs.map((x, i) => b.cpuUs[i]! / x);
    console.log(
      `${name}: client-hello / sni-callback rate ${median(rateRatios).toFixed(3)}, capacity ${median(capacityRatios).toFixed(3)} (median of ${runs}; ${pinned ? 'pinned' : 'NOT pinned: taskset missing'})`,
    );
  }
}

/** Full handshakes for `seconds`, IN_FLIGHT at a time; resolves how many completed. */
async function window(port: number, servername: string, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        servername,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      });
      socket.once('secureConnect', () =>
        socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      socket.on('data', () => undefined);
      socket.once('close', () => resolve());
      socket.once('error', reject);
    });
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await one();
        done++;
      }
    }),
  );
  return done;
}

async function message<T>(child: ChildProcess, type: string): Promise<T> {
  for (;;) {
    const [m] = (await once(child, 'message')) as [{ type: string } & T];
    if (m.type === type) return m;
  }
}

function pin(pid: number, cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
