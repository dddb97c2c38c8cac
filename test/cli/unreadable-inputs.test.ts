import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeHierarchy } from '../support/pki.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const CLI = join(REPO_ROOT, 'bin/certkeeper.js');
/** Long enough for a loaded machine; a read that blocks or grows without end is killed. */
const TIMEOUT_MS = 30_000;
const NOBODY = 65534;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a separate process, killed if it outlives TIMEOUT_MS. */
function certkeeper(args: string[], options: { uid?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        timeout: TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 1 << 20,
        env: { ...process.env, CERTKEEPER_DEBUG: '' },
        ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
      },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; killed?: boolean }) | null;
        if (e?.killed)
          reject(new Error(`certkeeper ${args.join(' ')} was killed after the timeout`));
        else resolve({ code: typeof e?.code === 'number' ? e.code : e ? null : 0, stdout, stderr });
      },
    );
  });
}

/** Exit code 1 and exactly one line on stderr, with the code and the path, and no stack. */
function assertOneLine(run: Run, code: string, path: string): void {
  assert.equal(run.code, 1, run.stderr);
  const lines = run.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr:\n${run.stderr}`);
  assert.ok(lines[0]!.startsWith(`${code}: `), lines[0]);
  assert.ok(lines[0]!.includes(path), `${lines[0]} names ${path}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
}

describe('certkeeper refuses inputs it must not read, in one line', () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  const dataDir = at('data');
  after(cleanup);

  before(async () => {
    const pki = await makeHierarchy({ name: 'Unreadable', hosts: ['localhost'] });
    writeFileSync(at('leaf.pem'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(at('leaf.key'), pki.leaf.keyPem);
    mkdirSync(at('a-directory'));
    execFileSync('mkfifo', [at('a-fifo')]);
    writeFileSync(at('sparse-3g.bin'), '');
    truncateSync(at('sparse-3g.bin'), 3e9);
  });

  const cases: { what: string; path: () => string; code: string }[] = [
    { what: 'a directory', path: () => at('a-directory'), code: 'FileUnreadable' },
    { what: 'a FIFO with no writer', path: () => at('a-fifo'), code: 'FileUnreadable' },
    { what: '/dev/zero', path: () => '/dev/zero', code: 'FileUnreadable' },
    { what: 'a sparse 3 GB file', path: () => at('sparse-3g.bin'), code: 'InputTooLarge' },
    { what: 'a missing file', path: () => at('missing.pem'), code: 'FileUnreadable' },
  ];

  for (const c of cases) {
    it(`inspect: ${c.what}`, async () => {
      assertOneLine(await certkeeper(['inspect', c.path()]), c.code, c.path());
    });

    it(`import: ${c.what}, and writes nothing`, async () => {
      const run = await certkeeper([
        'import',
        'web',
        at('leaf.pem'),
        c.path(),
        '--data-dir',
        dataDir,
      ]);
      assertOneLine(run, c.code, c.path());
      assert.ok(!existsSync(dataDir), 'every file is read before the data directory is opened');
    });
  }

  it('--password-file and --ca: a device and a FIFO', async () => {
    assertOneLine(
      await certkeeper(['inspect', at('leaf.pem'), '--password-file', '/dev/zero']),
      'FileUnreadable',
      '/dev/zero',
    );
    assertOneLine(
      await certkeeper(['import', 'web', at('leaf.pem'), '--password-file', at('a-fifo')]),
      'FileUnreadable',
      at('a-fifo'),
    );
    assertOneLine(
      await certkeeper(['inspect', at('leaf.pem'), '--ca', at('a-fifo')]),
      'FileUnreadable',
      at('a-fifo'),
    );
    assertOneLine(
      await certkeeper(['inspect', at('leaf.pem'), '--ca', at('sparse-3g.bin')]),
      'InputTooLarge',
      at('sparse-3g.bin'),
    );
  });

  // serve --config keeps the exit code of a usage error (2, with the usage after the
  // line); the line itself names the file and the reason.
  for (const c of cases.filter((c) => c.what !== 'a missing file')) {
    it(`serve --config: ${c.what}, refused in one line before anything starts`, async () => {
      const run = await certkeeper(['serve', '--config', c.path(), '--data-dir', dataDir]);
      assert.equal(run.code, 2, run.stderr);
      const line = run.stderr.split('\n')[0]!;
      assert.ok(line.startsWith('certkeeper: cannot use the config file ('), line);
      assert.ok(line.includes(`(${c.code})`), line);
      assert.ok(line.includes(c.path()), `${line} names ${c.path()}`);
      assert.equal(run.stderr.split('\n')[1], '', 'the usage text follows after a blank line');
      assert.ok(!existsSync(dataDir), 'nothing was started');
    });
  }

  it('serve --config: a file that is not YAML is still a usage error (exit 2)', async () => {
    writeFileSync(at('broken.yaml'), 'port: [8443\n');
    const run = await certkeeper(['serve', '--config', at('broken.yaml'), '--data-dir', dataDir]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /is not valid YAML/);
    assert.ok(!existsSync(dataDir), 'nothing was started');
  });

  it('a --ca file that holds no certificate is NoCertificate, naming it', async () => {
    assertOneLine(
      await certkeeper(['inspect', at('leaf.pem'), '--ca', at('leaf.key')]),
      'NoCertificate',
      at('leaf.key'),
    );
  });

  it('a file it may not read (as root: run as nobody, whom chmod 000 does stop)', async () => {
    const { dir: open, cleanup: remove } = tempDir();
    try {
      chmodSync(open, 0o755);
      const secret = join(open, 'secret.pem');
      writeFileSync(secret, 'x');
      chmodSync(secret, 0o000);
      const uid = process.getuid?.() === 0 ? NOBODY : undefined;
      const run = await certkeeper(['inspect', secret], uid === undefined ? {} : { uid });
      assertOneLine(run, 'FileUnreadable', secret);
      assert.match(run.stderr, /permission denied/);
    } finally {
      remove();
    }
  });
});
