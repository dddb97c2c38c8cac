import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServeLogger, type RunningServer } from '../../src/cli/serve.js';
import type { SourceAttempt } from '../../src/runtime/sources.js';
import { makeHierarchy } from '../support/pki.js';
import {
  makeRefusedIdentities,
  REFUSED_KINDS,
  type RefusedIdentity,
  type RefusedKind,
} from '../support/refused-keys.js';
import { requestJson, servedFingerprint, startTestServer } from '../support/serve.js';
import { needs, REPO_ROOT, tempDir } from '../support/tools.js';

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

/** The first admin's password of the servers these tests start. */
const ADMIN_PASSWORD = 'serve startup test passphrase';

/** GET `path` as the first admin (the API needs credentials). */
async function getJson(port: number, path: string): Promise<Record<string, unknown>> {
  const session = await requestJson(port, '/api/v1/auth/session', {
    method: 'POST',
    json: { username: 'admin', password: ADMIN_PASSWORD },
  });
  const token = String(JSON.parse(session.body).token);
  return JSON.parse((await requestJson(port, path, { token })).body);
}

const FILE_SOURCES = ['flag', 'default-location', 'config', 'environment'] as const;
type FileSourceKind = (typeof FILE_SOURCES)[number];

/** The words the log line uses for each source (SOURCE_WORDS). */
const WORDS: Record<FileSourceKind, string> = {
  flag: 'command-line flag',
  'default-location': 'default location lookup',
  config: 'config file',
  environment: 'environment',
};

describe('certkeeper serve refuses a weak key at every file source', {
  skip: needs('openssl'),
}, () => {
  const { dir, cleanup } = tempDir();
  let refused: Record<RefusedKind, RefusedIdentity>;
  before(async () => {
    refused = await makeRefusedIdentities(dir);
  });
  after(cleanup);

  /**
   * Starts a server in process with `bad[source]` at each file source and `good` (if any)
   * at the flags, and the log lines it wrote (pino JSON, the real redacting logger).
   */
  async function start(
    name: string,
    bad: Partial<Record<FileSourceKind, { cert: string; key: string }>>,
  ): Promise<{ server: RunningServer; port: number; logs: Record<string, unknown>[] }> {
    // One data directory for every start: its local CA is made once.
    const dataDir = join(dir, 'data');
    rmSync(join(dataDir, 'ssl'), { recursive: true, force: true });
    const args = ['--data-dir', dataDir];
    const env: Record<string, string> = { CERTKEEPER_ADMIN_PASSWORD: ADMIN_PASSWORD };
    if (bad.flag) args.push('-z', bad.flag.cert, '-k', bad.flag.key);
    if (bad['default-location']) {
      mkdirSync(join(dataDir, 'ssl'), { recursive: true });
      copyFileSync(bad['default-location'].cert, join(dataDir, 'ssl/server.crt'));
      copyFileSync(bad['default-location'].key, join(dataDir, 'ssl/server.key'));
    }
    if (bad.config) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        `tls:\n  certificate: ${bad.config.cert}\n  privateKey: ${bad.config.key}\n`,
      );
      args.push('--config', file);
    }
    if (bad.environment) {
      env.CERTKEEPER_SSL_CERT = bad.environment.cert;
      env.CERTKEEPER_SSL_KEY = bad.environment.key;
    }
    const logs: Record<string, unknown>[] = [];
    const logger = createServeLogger(env, {
      write: (line: string) => void logs.push(JSON.parse(line)),
    });
    return { ...(await startTestServer(args, env, logger)), logs };
  }

  // Four starts, each with a weak key at every file source, rotated so that each source
  // meets each key once; the local CA serves every time.
  for (let round = 0; round < REFUSED_KINDS.length; round++) {
    const kinds = FILE_SOURCES.map((_, i) => REFUSED_KINDS[(i + round) % REFUSED_KINDS.length]!);
    it(`falls through ${kinds.join(', ')} at the four file sources to the local CA`, async () => {
      const bad = Object.fromEntries(FILE_SOURCES.map((s, i) => [s, refused[kinds[i]!]]));
      const { server, port, logs } = await start(`round-${round}`, bad);
      try {
        const status = server.supervisor.status()!;
        assert.equal(status.source, 'local-ca');
        assert.equal(await servedFingerprint(port), status.fingerprint, 'a real handshake');
        const api = (await getJson(port, '/api/v1/server/tls')) as { attempts: SourceAttempt[] };
        const node = server.supervisor.nodeStatus()!;
        for (const [i, source] of FILE_SOURCES.entries()) {
          const kind = kinds[i]!;
          const attempt = api.attempts.find((a) => a.source === source);
          assert.equal(attempt?.outcome, 'broken', `${source} ${kind}`);
          assert.equal(attempt.code, 'PolicyViolation', `${source} ${kind}: ${attempt.message}`);
          assert.deepEqual(
            node.refusedSources.find((a) => a.source === source),
            attempt,
            'the node status says it too',
          );
          const lines = logs.filter(
            (l) => l.source === source && typeof l.msg === 'string' && l.level === 50,
          );
          assert.equal(lines.length, 1, `one log line for ${source}`);
          const msg = String(lines[0]!.msg);
          assert.ok(msg.includes(`via ${WORDS[source]}`), msg);
          assert.ok(msg.includes(`PolicyViolation: ${attempt.message}`), msg);
          assert.ok(!msg.includes('\n'), 'one line');
        }
      } finally {
        await server.stop();
      }
    });
  }

  it('keeps the last good identity when a reload finds a weak key in its place', async () => {
    const pki = await makeHierarchy({ name: 'Reload', hosts: ['localhost'] });
    const cert = join(dir, 'reload.crt');
    const key = join(dir, 'reload.key');
    writeFileSync(cert, pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(key, pki.leaf.keyPem);
    const { server, port, logs } = await start('reload', { flag: { cert, key } });
    try {
      assert.equal(await servedFingerprint(port), pki.leaf.cert.sha256);
      // Its root is anchored nowhere: the warning an import gives is logged, not fatal.
      const warnings = server.supervisor
        .status()!
        .attempts.find((a) => a.source === 'flag')?.warnings;
      assert.ok(warnings?.length, 'the import warnings are shown');
      assert.ok(
        logs.some((l) => l.level === 40 && l.source === 'flag' && l.code === warnings[0]!.code),
        'and logged',
      );
      copyFileSync(refused.secp256k1.cert, cert);
      copyFileSync(refused.secp256k1.key, key);
      await server.supervisor.reload();
      assert.equal(await servedFingerprint(port), pki.leaf.cert.sha256, 'still the last good');
      const status = server.supervisor.status()!;
      assert.equal(status.source, 'flag');
      const flag = status.attempts.find((a) => a.source === 'flag');
      assert.deepEqual([flag?.outcome, flag?.code], ['broken', 'PolicyViolation']);
      assert.equal(server.supervisor.nodeStatus()!.refusedSources[0]?.source, 'flag');
    } finally {
      await server.stop();
    }
  });
});
