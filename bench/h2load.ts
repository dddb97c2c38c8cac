/**
 * h2load (Debian's nghttp2-client) as a handshake load generator for the TLS benchmarks.
 *
 * Every request is sent with `Connection: close` over HTTP/1.1 (`--h1`), so every request
 * is a new TCP connection and a new TLS handshake. Whether that handshake is full or
 * resumed depends on how h2load is run, because an h2load client keeps the TLS session of
 * its previous connection and offers it on its next one (checked on the server side: a
 * run of `-c 8 -n 8000` against nginx logged 7,992 resumed sessions and 8 full ones):
 *
 * - `full`: `-c N -n N`: N clients make one connection each, so every handshake is a full
 *   one (a client has no session to offer on its first connection). The runs are short,
 *   so `loops` of them overlap to keep the server busy while a new h2load starts.
 * - `resumed`: `-c N -n M` with M ≫ N: each client makes M/N connections in a row and
 *   resumes its session on all but its first (N/M of the handshakes are full). M is sized
 *   from the rate of the previous run so that a run lasts until the window's end (the
 *   first run of a window makes `requests`), to keep restarts (and their full handshakes)
 *   few.
 *
 * h2load 1.52's `-D` (duration) never ends when the server closes each connection, so a
 * window is a series of runs until its time is up; the last run may overshoot the window,
 * and the rate is counted over the real elapsed time.
 *
 * The process that calls `drive` should be pinned to the load generator's core (h2load
 * inherits its affinity).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface DriveCommand {
  port: number;
  /** Sent as SNI (`--connect-to` keeps the URI's host name for SNI); null: connect to 127.0.0.1 without SNI. */
  servername: string | null;
  mode: 'full' | 'resumed';
  seconds: number;
  /** h2load runs in parallel. */
  loops: number;
  /** Clients (concurrent connections) per run. */
  clients: number;
  /** Requests (= connections) of a window's first run; equal to `clients` in `full` mode. */
  requests: number;
  /** TLS 1.3 suite offered, so that every server negotiates the same one. */
  tls13Cipher: string;
}

/** The counts of all runs added up, and what the runs negotiated. */
export interface DriveResult extends Omit<H2loadSummary, 'protocol' | 'cipher' | 'tempKey'> {
  ms: number;
  runs: number;
  /** Runs that exited non-zero or printed no summary. */
  brokenRuns: string[];
  protocols: string[];
  ciphers: string[];
  tempKeys: string[];
}

export interface H2loadSummary {
  requests: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  /** Responses with a status other than 2xx. */
  non2xx: number;
  protocol: string | null;
  cipher: string | null;
  tempKey: string | null;
}

/** The counts of one h2load run's summary, or null when it printed none. */
export function parseH2load(output: string): H2loadSummary | null {
  const requests =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      output,
    );
  if (!requests) return null;
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
  const n = (i: number): number => Number(requests[i]);
  return {
    requests: n(1),
    succeeded: n(4),
    failed: n(5),
    errored: n(6),
    timeout: n(7),
    non2xx: status ? Number(status[2]) + Number(status[3]) + Number(status[4]) : 0,
    protocol: /TLS Protocol: (\S+)/.exec(output)?.[1] ?? null,
    cipher: /Cipher: (\S+)/.exec(output)?.[1] ?? null,
    tempKey: /Server Temp Key: (.+)/.exec(output)?.[1]?.trim() ?? null,
  };
}

export function h2loadArgs(command: DriveCommand, requests = command.requests): string[] {
  if (command.mode === 'full') requests = command.clients;
  const args = ['--h1', '-c', String(command.clients), '-n', String(requests)];
  args.push('-H', 'Connection: close', `--tls13-ciphers=${command.tls13Cipher}`);
  // A connection silent for 10 s counts as a timeout instead of hanging the run.
  args.push('-N', '10s');
  if (command.servername) {
    args.push(`--connect-to=127.0.0.1:${command.port}`, `https://${command.servername}/`);
  } else {
    args.push(`https://127.0.0.1:${command.port}/`);
  }
  return args;
}

async function runOnce(args: string[]): Promise<{ summary: H2loadSummary | null; note: string }> {
  const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  // 'close', not 'exit': the output may still be in the pipes when the process exits.
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(killer);
  const summary = parseH2load(out);
  const note =
    code === 0 && summary
      ? ''
      : `exit ${code}: ${out
          .split('\n')
          .filter((l) => !/^progress:/.test(l))
          .join(' ')
          .slice(0, 300)}`;
  return { summary, note };
}

/** Runs h2load for `seconds` (see the file comment) and adds up its summaries. */
export async function drive(command: DriveCommand): Promise<DriveResult> {
  const result: DriveResult = {
    ms: 0,
    runs: 0,
    requests: 0,
    succeeded: 0,
    failed: 0,
    errored: 0,
    timeout: 0,
    non2xx: 0,
    brokenRuns: [],
    protocols: [],
    ciphers: [],
    tempKeys: [],
  };
  const note = (list: string[], value: string | null): void => {
    if (value && !list.includes(value)) list.push(value);
  };
  const started = performance.now();
  const deadline = started + command.seconds * 1000;
  const loop = async (): Promise<void> => {
    let requests = command.requests;
    do {
      const runStarted = performance.now();
      const { summary, note: problem } = await runOnce(h2loadArgs(command, requests));
      const now = performance.now();
      if (summary && summary.succeeded > 0 && now < deadline) {
        const perMs = summary.succeeded / (now - runStarted);
        const fill = Math.round(perMs * (deadline - now));
        requests = Math.max(
          command.clients * 10,
          Math.ceil(fill / command.clients) * command.clients,
        );
      }
      result.runs++;
      if (problem) result.brokenRuns.push(problem);
      if (!summary) continue;
      result.requests += summary.requests;
      result.succeeded += summary.succeeded;
      result.failed += summary.failed;
      result.errored += summary.errored;
      result.timeout += summary.timeout;
      result.non2xx += summary.non2xx;
      note(result.protocols, summary.protocol);
      note(result.ciphers, summary.cipher);
      note(result.tempKeys, summary.tempKey);
    } while (performance.now() < deadline);
  };
  await Promise.all(Array.from({ length: command.loops }, loop));
  result.ms = performance.now() - started;
  return result;
}
