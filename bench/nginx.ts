/**
 * nginx (Debian's nginx-light) as the outside reference of the TLS benchmarks: one worker
 * process pinned to a given core, the benchmark's certificate and key, TLS 1.2 and 1.3,
 * `ssl_session_cache shared:SSL:10m` with tickets on, and a static two-byte response.
 *
 * It runs from a temporary prefix directory with its own nginx.conf, pid file, error log
 * (warnings and worse) and access log; the access log holds one character per request,
 * `$ssl_session_reused` (`r` resumed, `.` full), buffered, so that the benchmark can count
 * the full and resumed handshakes nginx made, as it counts them in Node.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export const NGINX = '/usr/sbin/nginx';

export interface Nginx {
  port: number;
  masterPid: number;
  workerPid: number;
  version: string;
  /** CPU time (user + system) the worker has used, ms (10 ms resolution). */
  workerCpuMs(): number;
  /** Full and resumed handshakes logged since the last call (waits for the log buffer). */
  handshakesSinceLastCall(): Promise<{ full: number; resumed: number }>;
  /** Lines of the error log (warnings and worse). */
  errorLog(): string[];
  stop(): Promise<void>;
}

export function nginxVersion(): string | null {
  // `nginx -v` prints to stderr.
  const { stdout, stderr } = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(`${stdout ?? ''}${stderr ?? ''}`)?.[1] ?? null;
}

function nginxConf(dir: string, port: number, cpu: number): string {
  const affinity = (1 << cpu).toString(2);
  return `worker_processes 1;
worker_cpu_affinity ${affinity};
error_log ${join(dir, 'error.log')} warn;
events {
  worker_connections 4096;
}
http {
  log_format reused '$ssl_session_reused';
  access_log ${join(dir, 'access.log')} reused buffer=64k flush=100ms;
  client_body_temp_path ${join(dir, 'client_body')};
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${join(dir, 'cert.pem')};
    ssl_certificate_key ${join(dir, 'key.pem')};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    location / {
      default_type text/plain;
      return 200 "ok";
    }
  }
}
`;
}

function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** utime + stime of a process, ms. */
export function processCpuMs(pid: number, ticksPerSecond = clockTicksPerSecond()): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / ticksPerSecond;
}

async function waitForPort(port: number, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port} in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts nginx in `dir` (which must exist and be empty of a previous nginx) with
 * `certPem` (leaf first, then its chain) and `keyPem`, listening on 127.0.0.1:`port`,
 * master and worker pinned to `cpu` with taskset.
 */
export async function startNginx(options: {
  dir: string;
  port: number;
  cpu: number;
  certPem: string;
  keyPem: string;
}): Promise<Nginx> {
  const { dir, port, cpu } = options;
  const version = nginxVersion();
  if (!version) throw new Error(`${NGINX} is not installed`);
  writeFileSync(join(dir, 'cert.pem'), options.certPem);
  writeFileSync(join(dir, 'key.pem'), options.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'access.log'), '');
  writeFileSync(join(dir, 'error.log'), '');
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf(dir, port, cpu));
  const args = ['-p', dir, '-c', conf, '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`];
  const child = spawn('taskset', ['-c', String(cpu), NGINX, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    await waitForPort(port, child, 5000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}: ${stderr.trim()}`);
  }
  const masterPid = child.pid!;
  let children: number[] = [];
  for (let i = 0; i < 100 && children.length === 0; i++) {
    children = readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number)
      .filter((n) => n > 0);
    if (children.length === 0) await new Promise((r) => setTimeout(r, 20));
  }
  if (children.length !== 1) {
    child.kill('SIGKILL');
    throw new Error(`nginx has ${children.length} worker processes, not 1`);
  }
  const workerPid = children[0]!;
  const ticks = clockTicksPerSecond();
  const accessLog = join(dir, 'access.log');
  let logOffset = 0;
  return {
    port,
    masterPid,
    workerPid,
    version,
    workerCpuMs: () => processCpuMs(workerPid, ticks),
    async handshakesSinceLastCall() {
      // The access log buffer is flushed every 100 ms.
      await new Promise((r) => setTimeout(r, 250));
      const size = statSync(accessLog).size;
      const length = size - logOffset;
      const counts = { full: 0, resumed: 0 };
      if (length <= 0) return counts;
      const buffer = Buffer.alloc(length);
      const fd = openSync(accessLog, 'r');
      try {
        readSync(fd, buffer, 0, length, logOffset);
      } finally {
        closeSync(fd);
      }
      logOffset = size;
      for (const byte of buffer) {
        if (byte === 0x72) counts.resumed++;
        else if (byte === 0x2e) counts.full++;
      }
      return counts;
    },
    errorLog: () =>
      readFileSync(join(dir, 'error.log'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== ''),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}
