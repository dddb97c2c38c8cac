import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const CLI = join(REPO_ROOT, 'bin/certkeeper.js');
/** A server that can't start must exit at once; kill it if it keeps running. */
const TIMEOUT_MS = 30_000;
const NOBODY = 65534;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function serve(args: string[], dataDir: string, uid?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, 'serve', '--data-dir', dataDir, ...args],
      {
        timeout: TIMEOUT_MS,
        killSignal: 'SIGKILL',
        env: { ...process.env, CERTKEEPER_DEBUG: '', CERTKEEPER_LOG_LEVEL: 'info' },
        ...(uid === undefined ? {} : { uid, gid: uid }),
      },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; killed?: boolean }) | null;
        if (e?.killed) reject(new Error(`certkeeper serve ${args.join(' ')} did not exit`));
        else resolve({ code: typeof e?.code === 'number' ? e.code : e ? null : 0, stdout, stderr });
      },
    );
  });
}

/** The lines of stderr that are not pino's JSON log records. */
function messages(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter(Boolean)
    .filter((line) => {
      try {
        return typeof JSON.parse(line)?.level !== 'number';
      } catch {
        return true;
      }
    });
}

/** Exit code 1, one line for a person on stderr that starts with `code`, and no stack. */
function assertOneLine(run: Run, code: string): string {
  assert.equal(run.code, 1, run.stderr);
  const lines = messages(run.stderr);
  assert.equal(lines.length, 1, `one line for a person on stderr:\n${run.stderr}`);
  assert.ok(lines[0]!.startsWith(`${code}: `), lines[0]);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(run.stdout, /serving/, 'never claims to serve');
  return lines[0]!;
}

describe('certkeeper serve fails to start in one line', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  let taken: Server;
  let port: number;

  before(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((resolve) => taken.close(resolve));
    cleanup();
  });

  it('says AddressInUse with the port and address when another process listens there', async () => {
    const run = await serve(['--port', String(port), '--host', '127.0.0.1'], dataDir);
    const line = assertOneLine(run, 'AddressInUse');
    assert.equal(
      line,
      `AddressInUse: port ${port} on 127.0.0.1 is in use by another process; stop it or choose another with --port`,
    );
  });

  it('says ListenFailed for an address this machine does not have', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of a test machine.
    const run = await serve(['--port', String(port), '--host', '192.0.2.1'], dataDir);
    assert.match(assertOneLine(run, 'ListenFailed'), /192\.0\.2\.1 .*--host/);
  });

  it('says ListenFailed for a privileged port without the privilege', async (t) => {
    const unprivilegedFrom = Number(
      readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'),
    );
    if (unprivilegedFrom <= 1) {
      t.skip('SKIPPED: this machine has no privileged ports (ip_unprivileged_port_start <= 1)');
      return;
    }
    // As root, run the server as nobody, whom the privileged port does stop.
    const asRoot = process.getuid?.() === 0;
    const shared = join(dir, 'shared');
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(dir, 0o755);
    chmodSync(shared, 0o777);
    const run = await serve(
      ['--port', '1', '--host', '127.0.0.1'],
      join(shared, 'data'),
      asRoot ? NOBODY : undefined,
    );
    assert.match(assertOneLine(run, 'ListenFailed'), /port 1 on 127\.0\.0\.1 .*--port/);
  });
});
