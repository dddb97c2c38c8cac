/**
 * examples/embed.mjs, run as its own process the way an application would run it (it
 * imports `certkeeper` by the package's name): real HTTPS to the application's handler
 * and to the API under /certkeeper, then a certificate swapped through that API while
 * handshakes keep coming, without restarting it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { sha256Fingerprint } from '../../src/core/certificate.js';
import { makeHierarchy } from '../support/pki.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const run = promisify(execFile);
const EXAMPLE = join(REPO_ROOT, 'examples/embed.mjs');
const ADMIN_PASSWORD = 'embedded admin passphrase';

/** The fingerprint a fresh handshake without SNI is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(sha256Fingerprint(cert.raw));
    });
    socket.once('error', reject);
  });
}

/** Starts the example on a free port and resolves the port once it says it serves. */
function startExample(dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [EXAMPLE], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      CERTKEEPER_ADMIN_PASSWORD: ADMIN_PASSWORD,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /serving https:\/\/127\.0\.0\.1:(\d+)\//.exec(output);
      if (match) resolve({ child, port: Number(match[1]) });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the example exited (${code}):\n${output}`)));
  });
}

describe('examples/embed.mjs', { timeout: 120_000 }, () => {
  const work = tempDir('certkeeper-embed-');
  let child: ChildProcess | undefined;
  let port = 0;
  const agents: Agent[] = [];

  /** An HTTPS client that trusts only `rootPem` (nothing else, not even Node's roots). */
  const trusting = (rootPem: string) => {
    const agent = new Agent({ connect: { ca: rootPem } });
    agents.push(agent);
    return agent;
  };

  before(async () => {
    if (!existsSync(join(REPO_ROOT, 'dist/embed/index.js'))) {
      await run('npm', ['run', 'build'], { cwd: REPO_ROOT });
    }
    ({ child, port } = await startExample(join(work.dir, 'data')));
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await Promise.all(agents.map((a) => a.close()));
    work.cleanup();
  });

  it("serves the application's handler and the API under /certkeeper, then swaps live", async () => {
    const origin = `https://127.0.0.1:${port}`;
    // The first identity is the data directory's local CA: fetch its root, then trust only it.
    const rootRes = await request(`${origin}/certkeeper/ca/root.pem`, {
      dispatcher: new Agent({ connect: { rejectUnauthorized: false } }),
    });
    assert.equal(rootRes.statusCode, 200);
    const localRoot = await rootRes.body.text();
    const own = await request(`${origin}/`, { dispatcher: trusting(localRoot) });
    assert.equal(own.statusCode, 200);
    assert.deepEqual(await own.body.json(), { hello: 'from my app' });

    const api = trusting(localRoot);
    const call = async (
      method: 'GET' | 'POST' | 'PUT',
      path: string,
      json?: unknown,
      token?: string,
    ) => {
      const res = await request(`${origin}/certkeeper/api/v1${path}`, {
        method,
        dispatcher: api,
        headers: {
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
      const text = await res.body.text();
      return { status: res.statusCode, text, json: () => JSON.parse(text) };
    };
    const login = await call('POST', '/auth/session', {
      username: 'admin',
      password: ADMIN_PASSWORD,
    });
    assert.equal(login.status, 201, login.text);
    const token = login.json().token as string;
    const pki = await makeHierarchy({ name: 'Embedded', hosts: ['localhost'], ips: ['127.0.0.1'] });
    const imported = await call(
      'PUT',
      '/entries/web',
      { certificate: pki.leaf.certPem + pki.intermediate.certPem, privateKey: pki.leaf.keyPem },
      token,
    );
    assert.ok([200, 201].includes(imported.status), imported.text);

    // Handshakes one after another across the swap: every one of them must succeed.
    let stop = false;
    let handshakesDone = 0;
    let failures = 0;
    const handshakes = (async () => {
      while (!stop) {
        try {
          const fingerprint = await servedFingerprint(port);
          handshakesDone++;
          if (fingerprint === pki.leaf.cert.sha256) stop = true;
        } catch {
          failures++;
        }
      }
    })();
    const activated = await call('PUT', '/server/tls', { alias: 'web' }, token);
    assert.equal(activated.status, 200, activated.text);
    await handshakes;

    assert.equal(failures, 0, 'no handshake failed across the swap');
    assert.ok(handshakesDone > 0);
    assert.equal(await servedFingerprint(port), pki.leaf.cert.sha256, 'the new certificate');
    assert.equal(child!.exitCode, null, 'the same process, never restarted');
    // The application's handler now answers under the new identity, verified by its root.
    const after = await request(`${origin}/`, { dispatcher: trusting(pki.root.certPem) });
    assert.equal(after.statusCode, 200);
    assert.deepEqual(await after.body.json(), { hello: 'from my app' });
    const served = await call('GET', '/server/tls', undefined, token);
    assert.equal(served.json().alias, 'web', served.text);
  });
});
