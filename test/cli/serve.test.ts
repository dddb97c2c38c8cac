import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import pino from 'pino';
import type { RunningServer } from '../../src/cli/serve.js';
import { sha256Fingerprint } from '../../src/core/certificate.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { requestJson, servedFingerprint, startTestServer } from '../support/serve.js';
import { corruptStoredKey } from '../support/store-damage.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'bin/certkeeper.js');

/** The first admin's password in these tests (`CERTKEEPER_ADMIN_PASSWORD`). */
const ADMIN_PASSWORD = 'serve test admin passphrase';

/** Logs in as the first admin: a bearer token for the API. */
async function adminToken(port: number): Promise<string> {
  const res = await requestJson(port, '/api/v1/auth/session', {
    method: 'POST',
    json: { username: 'admin', password: ADMIN_PASSWORD },
  });
  assert.equal(res.status, 201, res.body);
  return JSON.parse(res.body).token;
}

/** Polls `check` until it holds; `ms` only stops a hang (a loaded machine is slow). */
async function waitFor(check: () => Promise<boolean>, ms = 30_000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < ms) {
    if (await check()) return performance.now() - start;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`condition not met within ${ms} ms`);
}

describe('certkeeper serve, in process', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  let server: RunningServer;
  let port: number;

  before(async () => {
    ({ server, port } = await startTestServer(['--data-dir', dataDir], {
      CERTKEEPER_ADMIN_PASSWORD: ADMIN_PASSWORD,
    }));
  });
  after(async () => {
    await server.stop();
    cleanup();
  });

  it('serves the local CA certificate at once and says so', async () => {
    const status = server.supervisor.status()!;
    assert.equal(status.source, 'local-ca');
    assert.equal(await servedFingerprint(port), status.fingerprint);
    assert.equal((await requestJson(port, '/api/v1/server/tls')).status, 401, 'needs credentials');
    const api = await requestJson(port, '/api/v1/server/tls', { token: await adminToken(port) });
    assert.equal(api.status, 200);
    const body = JSON.parse(api.body);
    assert.equal(body.fingerprint, status.fingerprint);
    assert.equal(body.pendingConfirmation, null);
    assert.equal(body.expired, false);
    assert.deepEqual(body.refused, []);
    assert.match(String(api.headers['strict-transport-security']), /max-age=\d+/);
  });

  it('publishes the local CA without authentication, and the served chain ends at it', async () => {
    const res = await requestJson(port, '/ca/root.pem');
    assert.equal(res.status, 200);
    const caDer = parsePemBlocks(res.body)[0]!.der;
    const { X509Certificate } = await import('node:crypto');
    const ca = new X509Certificate(caDer);
    const socket = await new Promise<ReturnType<typeof connect>>((resolve, reject) => {
      const s = connect(
        { host: '127.0.0.1', port, servername: 'localhost', ca: ca.toString() },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    assert.equal(socket.authorized, true);
    socket.destroy();
  });

  it('answers unknown routes with problem+json', async () => {
    const res = await requestJson(port, '/nope');
    assert.equal(res.status, 404);
    assert.match(String(res.headers['content-type']), /application\/problem\+json/);
    assert.equal(JSON.parse(res.body).code, 'NotFound');
  });

  it('follows an import by another process within 250 ms', async () => {
    const pki = await makeHierarchy({ name: 'Imported', hosts: ['localhost'] });
    writeFileSync(join(dir, 'chain.pem'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(join(dir, 'key.pem'), pki.leaf.keyPem);
    await run(process.execPath, [
      CLI,
      'import',
      'web',
      join(dir, 'chain.pem'),
      join(dir, 'key.pem'),
      '--activate',
      '--data-dir',
      dataDir,
    ]);
    // How soon (commit to served, by another process) is measured by bench/swap-under-load.
    await waitFor(async () => (await servedFingerprint(port)) === pki.leaf.cert.sha256);
    assert.equal(server.supervisor.status()!.source, 'keystore');
  });

  it('serves SNI bindings, exact and wildcard, and the server identity to other names', async () => {
    const server0 = await servedFingerprint(port);
    const api = await makeHierarchy({
      name: 'Sni',
      hosts: ['api.example.test', '*.apps.example.test'],
    });
    writeFileSync(
      join(dir, 'sni.pem'),
      api.leaf.certPem + api.intermediate.certPem + api.leaf.keyPem,
    );
    await run(process.execPath, [
      CLI,
      'import',
      'api',
      join(dir, 'sni.pem'),
      '--sni',
      'api.example.test',
      '--sni',
      '*.apps.example.test',
      '--data-dir',
      dataDir,
    ]);
    await waitFor(
      async () => (await servedFingerprint(port, 'api.example.test')) === api.leaf.cert.sha256,
    );
    assert.equal(await servedFingerprint(port, 'one.apps.example.test'), api.leaf.cert.sha256);
    assert.equal(
      await servedFingerprint(port, 'a.b.apps.example.test'),
      server0,
      'a wildcard covers one label',
    );
    assert.equal(await servedFingerprint(port, 'other.example.test'), server0);
    assert.equal(await servedFingerprint(port), server0, 'no SNI: the server identity');
  });

  it('rolls back an entry whose stored key was corrupted, and records why', async () => {
    const before = await servedFingerprint(port);
    const pki = await makeHierarchy({ name: 'Broken', hosts: ['localhost'] });
    writeFileSync(
      join(dir, 'broken.pem'),
      pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem,
    );
    await run(process.execPath, [
      CLI,
      'import',
      'broken',
      join(dir, 'broken.pem'),
      '--data-dir',
      dataDir,
    ]);
    corruptStoredKey(dataDir, 'broken');
    const { bindEntry } = await import('../../src/service/bind-entry.js');
    await bindEntry(
      { store: server.store, now: () => new Date(), trusted: [] },
      { alias: 'broken', binding: 'server', principal: TEST_PRINCIPAL },
    );
    await waitFor(
      async () => (await server.store.listAudit({ limit: 1 }))[0]?.action === 'rollback',
    );
    const rollback = (await server.store.listAudit({ limit: 1 }))[0]!;
    assert.equal(rollback.details.code, 'StoreCorrupt');
    assert.equal(
      (await server.store.listBindings()).find((b) => b.name === 'server')?.alias,
      'web',
    );
    assert.equal(await servedFingerprint(port), before, 'the previous identity keeps serving');
  });

  it('renews the local CA certificate when the clock reaches two thirds of its life', async () => {
    const { Supervisor } = await import('../../src/runtime/supervisor.js');
    const { localServerNames, renewalTime } = await import('../../src/service/local-ca.js');
    const { parseCertificate } = await import('../../src/core/certificate.js');
    const { openDataDir } = await import('../../src/store/data-dir.js');
    const d = tempDir();
    let now = new Date('2027-03-01T00:00:00Z');
    const store = await openDataDir(d.dir, {});
    const supervisor = new Supervisor({
      store,
      sources: { dataDir: d.dir, flags: {}, config: {}, env: {}, strict: false },
      localNames: localServerNames('renew.test'),
      commonName: 'renew.test',
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      clock: { now: () => now },
    });
    try {
      await supervisor.start();
      const p = supervisor.runtime.address()!.port;
      const first = await servedFingerprint(p);
      const entry = await store.getEntry('certkeeper-local-server');
      const cert = parseCertificate(parsePemBlocks(entry!.certificatePem!)[0]!.der);
      now = new Date(renewalTime(cert).getTime() - 60_000);
      await supervisor.renewNow();
      assert.equal(await servedFingerprint(p), first, 'not renewed before it is due');
      now = renewalTime(cert);
      await supervisor.renewNow();
      await waitFor(async () => (await servedFingerprint(p)) !== first);
      assert.equal(
        (await store.listAudit({ limit: 5 })).some((a) => a.action === 'renew'),
        true,
      );
    } finally {
      await supervisor.stop();
      await store.close();
      d.cleanup();
    }
  });
});

describe('certkeeper serve, across restarts', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  after(cleanup);

  it('creates the data directory 0700 and the master key 0600', async () => {
    const { server } = await startTestServer(['--data-dir', dataDir]);
    await server.stop();
    const { statSync } = await import('node:fs');
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'master.key')).mode & 0o777, 0o600);
  });

  it('resumes a TLS 1.3 session after a restart, with the same certificate', async () => {
    // TLS 1.3 tickets arrive after the handshake, so wait for one on the first connection;
    // on the resumed one, the handshake itself says whether the ticket was accepted.
    const handshake = (port: number, session?: Buffer) =>
      new Promise<{ session?: Buffer; reused: boolean; fingerprint?: string }>(
        (resolve, reject) => {
          const socket = connect({
            host: '127.0.0.1',
            port,
            rejectUnauthorized: false,
            ...(session ? { session } : {}),
          });
          socket.once('error', reject);
          socket.once('secureConnect', () => {
            // A resumed TLS 1.3 session carries no peer certificate on the client side.
            const raw = socket.getPeerCertificate().raw;
            const result = {
              reused: socket.isSessionReused(),
              ...(raw ? { fingerprint: sha256Fingerprint(raw) } : {}),
            };
            if (session) {
              socket.destroy();
              resolve(result);
            } else {
              socket.once('session', (s: Buffer) => {
                socket.destroy();
                resolve({ ...result, session: s });
              });
            }
          });
        },
      );
    const previous = await startTestServer(['--data-dir', dataDir]);
    const first = await handshake(previous.port);
    await previous.server.stop();
    const { server, port } = await startTestServer(['--data-dir', dataDir]);
    try {
      const again = await handshake(port, first.session!);
      assert.equal(again.reused, true, 'the ticket key survived the restart');
      const served = await servedFingerprint(port);
      assert.equal(served, first.fingerprint, 'the local certificate survived the restart');
    } finally {
      await server.stop();
    }
  });
});

describe('each file source, over a real TLS handshake', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('serves the flags, the config file and the environment, each in its turn', async () => {
    const pki = await makeHierarchy({ name: 'Files', hosts: ['localhost'] });
    writeFileSync(join(dir, 'chain.pem'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(join(dir, 'key.pem'), pki.leaf.keyPem);
    writeFileSync(
      join(dir, 'certkeeper.yaml'),
      'tls:\n  certificate: chain.pem\n  privateKey: key.pem\n',
    );
    const cases: [string, string[], Record<string, string>][] = [
      ['flag', ['-z', join(dir, 'chain.pem'), '-k', join(dir, 'key.pem')], {}],
      ['config', ['--config', join(dir, 'certkeeper.yaml')], {}],
      [
        'environment',
        [],
        { CERTKEEPER_SSL_CERT: join(dir, 'chain.pem'), CERTKEEPER_SSL_KEY: join(dir, 'key.pem') },
      ],
    ];
    for (const [source, flags, env] of cases) {
      const { server, port } = await startTestServer(
        ['--data-dir', join(dir, source), ...flags],
        env,
      );
      try {
        assert.equal(await servedFingerprint(port), pki.leaf.cert.sha256, source);
        assert.equal(server.supervisor.status()!.source, source);
        assert.match(server.supervisor.pinnedBy() ?? '', /./, `${source} pins the server identity`);
      } finally {
        await server.stop();
      }
    }
  });
});

describe('certkeeper serve, as a process', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  let child: ChildProcess;
  let port: number;
  let stderr = '';

  before(async () => {
    child = spawn(
      process.execPath,
      [CLI, 'serve', '--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CERTKEEPER_ADMIN_PASSWORD: ADMIN_PASSWORD },
      },
    );
    child.stderr!.on('data', (c) => (stderr += c));
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c) => {
        out += c;
        const m = /serving https:\/\/[^:]+:(\d+)\//.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
  });
  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    cleanup();
  });

  it('logs the chosen source with its fingerprint', () => {
    assert.match(
      stderr,
      /Setting up HTTPS certificate from .* \(via local CA\) sha256=([0-9A-F]{2}:){31}[0-9A-F]{2}/,
    );
  });

  it('re-runs the source lookup on SIGHUP and swaps to the default location', async () => {
    const pki = await makeHierarchy({ name: 'Hup', hosts: ['localhost'] });
    mkdirSync(join(dataDir, 'ssl'), { recursive: true });
    writeFileSync(join(dataDir, 'ssl/server.crt'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(join(dataDir, 'ssl/server.key'), pki.leaf.keyPem);
    child.kill('SIGHUP');
    await waitFor(async () => (await servedFingerprint(port)) === pki.leaf.cert.sha256);
    const status = JSON.parse(
      (await requestJson(port, '/api/v1/server/tls', { token: await adminToken(port) })).body,
    );
    assert.equal(status.source, 'default-location');
    assert.match(stderr, /via default location lookup/);
  });

  it('exits 0 on SIGTERM', async () => {
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
  });
});
