import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  readdirSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { LOCAL_CA_ALIAS } from '../../src/service/context.js';
import { localServerNames } from '../../src/service/local-ca.js';
import { openDataDir, STORE_FILE } from '../../src/store/data-dir.js';
import { makeHierarchy } from '../support/pki.js';
import { flipStoredPemByte } from '../support/store-damage.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const CLI = join(REPO_ROOT, 'bin/certkeeper.js');

/** Runs the built CLI to its end; resolves its exit code and output. */
async function certkeeper(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      timeout: 60_000,
      killSignal: 'SIGTERM',
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * Runs `serve` until it says it is serving (then SIGTERM), or until it exits: the
 * output either way. The 60 s only stops a hang: a loaded machine starts slowly.
 */
async function serveUntilServing(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const hang = setTimeout(() => child.kill('SIGTERM'), 60_000);
  child.stdout.on('data', (c) => {
    stdout += c;
    if (/certkeeper is serving/.test(stdout)) child.kill('SIGTERM');
  });
  await new Promise((resolve) => child.once('close', resolve));
  clearTimeout(hang);
  return { stdout, stderr };
}

/** Asserts that `serve` on `dataDir` refuses to start: exit 1, one line `CODE: …`, no stack. */
async function serveRefuses(dataDir: string, code: string): Promise<string> {
  const run = await certkeeper([
    'serve',
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--host',
    '127.0.0.1',
  ]);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, '', 'it never served');
  const lines = run.stderr.trimEnd().split('\n');
  const line = lines.find((l) => l.startsWith(`${code}: `));
  assert.ok(line, `expected a "${code}: …" line, got:\n${run.stderr}`);
  assert.ok(!/^\s+at /m.test(run.stderr), `no stack trace:\n${run.stderr}`);
  return line;
}

describe('a data directory under faults, through the CLI', () => {
  const { dir, cleanup } = tempDir();
  let chainAndKey: string;
  before(async () => {
    const pki = await makeHierarchy({ name: 'Faults', hosts: ['localhost'] });
    chainAndKey = join(dir, 'web.pem');
    writeFileSync(chainAndKey, pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem);
  });
  after(cleanup);

  /** A data directory as a first `serve` leaves it: store, master key, local CA. */
  async function servedDataDir(name: string): Promise<string> {
    const dataDir = join(dir, name);
    const store = await openDataDir(dataDir, {}, { create: true });
    const { ensureLocalCa } = await import('../../src/service/local-ca.js');
    await ensureLocalCa({
      store,
      now: new Date(),
      names: localServerNames('localhost'),
      commonName: 'localhost',
    });
    await store.close();
    return dataDir;
  }

  it('serve refuses a truncated store beside its master key (StoreMissing), leaving it as it is', async () => {
    const dataDir = await servedDataDir('truncated');
    const db = join(dataDir, STORE_FILE);
    truncateSync(db);
    const files = readdirSync(dataDir).sort();
    const line = await serveRefuses(dataDir, 'StoreMissing');
    assert.ok(line.includes(db), line);
    assert.equal(statSync(db).size, 0, 'the store file is untouched');
    assert.deepEqual(readdirSync(dataDir).sort(), files);
  });

  it('serve refuses a deleted store beside its master key (StoreMissing), creating none', async () => {
    const dataDir = await servedDataDir('deleted');
    unlinkSync(join(dataDir, STORE_FILE));
    await serveRefuses(dataDir, 'StoreMissing');
    assert.equal(existsSync(join(dataDir, STORE_FILE)), false);
  });

  it('serve keeps serving with a damaged local CA (StoreCorrupt naming it, logged), re-issues none, and local-ca reissue replaces it', async () => {
    const dataDir = await servedDataDir('flipped');
    flipStoredPemByte(join(dataDir, STORE_FILE), LOCAL_CA_ALIAS, 'certificate_pem', 'case');
    const store = await openDataDir(dataDir, {});
    const revision = await store.revision();
    const served = (await store.listBoundEntries()).length;
    await store.close();
    // The local CA's server certificate is intact: it still serves, and the damage is said.
    const run = await serveUntilServing([
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ]);
    assert.match(run.stdout, /certkeeper is serving/);
    assert.match(
      run.stderr,
      new RegExp(`"code":"StoreCorrupt".*${LOCAL_CA_ALIAS}.*local-ca reissue`),
    );
    const after = await openDataDir(dataDir, {});
    let now: number;
    try {
      // The first start made its admin user; nothing touched the local CA.
      const since = await after.listAudit({ afterRevision: revision });
      assert.deepEqual(
        since.map((r) => r.action),
        ['create-user'],
        'no new CA was issued',
      );
      now = await after.revision();
    } finally {
      await after.close();
    }
    const reissued = await certkeeper(['local-ca', 'reissue', '--data-dir', dataDir]);
    assert.equal(reissued.code, 0, reissued.stderr);
    assert.match(
      reissued.stdout,
      new RegExp(`^Reissued the local CA at revision ${now + 1}: sha256=`),
    );
    const fixed = await openDataDir(dataDir, {});
    try {
      assert.ok((await fixed.getEntry(LOCAL_CA_ALIAS))?.certificatePem);
      assert.equal((await fixed.listBoundEntries()).length, served);
      const [record] = await fixed.listAudit({ limit: 1 });
      assert.deepEqual([record!.action, record!.actor], ['reissue-local-ca', 'cli']);
    } finally {
      await fixed.close();
    }
  });

  it('serve refuses to start when the damaged local CA was all it had to serve (StoreCorrupt)', async () => {
    const dataDir = await servedDataDir('nothing-left');
    flipStoredPemByte(
      join(dataDir, STORE_FILE),
      'certkeeper-local-server',
      'certificate_pem',
      'case',
    );
    const line = await serveRefuses(dataDir, 'StoreCorrupt');
    assert.ok(line.includes('certkeeper-local-server'), line);
  });

  it('import refuses a data directory that does not exist (DataDirMissing), creating nothing', async () => {
    const dataDir = join(dir, 'nowhere', 'data');
    const run = await certkeeper(['import', 'web', chainAndKey, '--data-dir', dataDir]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^DataDirMissing: .*--init/m);
    assert.equal(existsSync(join(dir, 'nowhere')), false);
  });

  it('import --init creates the data directory and a new store', async () => {
    const dataDir = join(dir, 'init', 'data');
    const run = await certkeeper(['import', 'web', chainAndKey, '--data-dir', dataDir, '--init']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Imported "web" \(key-pair\) at revision 1/);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    const again = await certkeeper(['import', 'web2', chainAndKey, '--data-dir', dataDir]);
    assert.equal(again.code, 0, again.stderr);
  });
});
