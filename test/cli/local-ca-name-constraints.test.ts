import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseCertificate } from '../../src/core/certificate.js';
import { nameConstraintsOf } from '../../src/core/extensions.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { LOCAL_CA_ALIAS } from '../../src/service/context.js';
import { openDataDir } from '../../src/store/data-dir.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const CLI = join(REPO_ROOT, 'bin/certkeeper.js');

/** Runs the built CLI to its end. */
async function certkeeper(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      timeout: 30_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: e.stdout + e.stderr };
  }
}

/** Runs `serve` until it says it is serving (then stops it) or until it exits by itself. */
function serveUntilServing(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: 'pipe' });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (/certkeeper is serving/.test(output)) child.kill('SIGTERM');
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('localCa.nameConstraints', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  const serve = () =>
    serveUntilServing(['--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1']);
  after(cleanup);

  async function storedCa() {
    const store = await openDataDir(dataDir, {});
    try {
      const entry = await store.getEntry(LOCAL_CA_ALIAS);
      return parseCertificate(parsePemBlocks(entry!.certificatePem!)[0]!.der);
    } finally {
      await store.close();
    }
  }

  it('is off by default: the first local CA carries no name constraints', async () => {
    const run = await serve();
    assert.match(run.output, /certkeeper is serving/);
    assert.equal(nameConstraintsOf(await storedCa()), undefined);
  });

  it('turned on for an existing CA, logs how to re-issue it; reissue adds the constraints', async () => {
    writeFileSync(join(dataDir, 'certkeeper.yaml'), 'localCa:\n  nameConstraints: true\n');
    const before = await storedCa();
    const run = await serve();
    assert.match(run.output, /certkeeper is serving/);
    assert.match(
      run.output,
      /carries no name constraints although localCa\.nameConstraints is on.*certkeeper local-ca reissue --name-constraints/,
    );
    assert.equal((await storedCa()).sha256, before.sha256, 'the CA is never re-issued on its own');

    const reissued = await certkeeper([
      'local-ca',
      'reissue',
      '--name-constraints',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(reissued.code, 0, reissued.output);
    const ca = await storedCa();
    const nc = nameConstraintsOf(ca);
    assert.equal(nc?.critical, true);
    assert.ok(nc.permitted.some((s) => s.base.kind === 'dns' && s.base.value === 'localhost'));
    assert.notEqual(ca.subject.rfc4514, before.subject.rfc4514);

    const again = await serve();
    assert.match(again.output, /certkeeper is serving/);
    assert.doesNotMatch(again.output, /name constraints/);
  });

  it('refuses a value that is not true or false, as a usage error', async () => {
    writeFileSync(join(dataDir, 'certkeeper.yaml'), 'localCa:\n  nameConstraints: yes please\n');
    const run = await serve();
    assert.equal(run.code, 2, run.output);
    assert.match(run.output, /localCa\.nameConstraints/);
  });
});
