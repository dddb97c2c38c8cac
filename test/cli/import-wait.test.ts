import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/cli/serve.js';
import { runCli } from '../support/cli.js';
import { makeHierarchy } from '../support/pki.js';
import { startTestServer } from '../support/serve.js';
import { tempDir } from '../support/tools.js';

/** Runs the CLI in-process. */
const cli = (...argv: string[]) => runCli(argv);

describe('certkeeper import with a server running on the data directory', () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  const dataDir = at('data');
  let server: RunningServer;

  before(async () => {
    for (const name of ['web', 'next']) {
      const pki = await makeHierarchy({ name, hosts: [`${name}.example.test`] });
      writeFileSync(at(`${name}.pem`), pki.leaf.certPem + pki.intermediate.certPem);
      writeFileSync(at(`${name}.key`), pki.leaf.keyPem);
    }
    ({ server } = await startTestServer(['--data-dir', dataDir]));
  });
  after(async () => {
    await server.stop();
    cleanup();
  });

  it('waits until the server serves the change, and says so', async () => {
    const r = await cli(
      'import',
      'web',
      at('web.pem'),
      at('web.key'),
      '--activate',
      '--data-dir',
      dataDir,
    );
    assert.equal(r.code, 0, r.stderr);
    const revision = Number(/at revision (\d+)/.exec(r.stdout)?.[1]);
    assert.match(
      r.stdout,
      new RegExp(`Served by https://127\\.0\\.0\\.1:\\d+/ \\(revision ${revision}\\)`),
    );
    // It waited: the server had caught up with the revision before the command returned.
    assert.ok(server.supervisor.status()!.reconciledRevision >= revision);
    assert.equal(server.supervisor.status()!.alias, 'web');
  });

  it('says the server refused the change, why, and exits 1', async () => {
    // The server's own handle reads a damaged key for "next": it can't serve it.
    const getPrivateKey = server.store.getPrivateKey.bind(server.store);
    server.store.getPrivateKey = async (alias) =>
      alias === 'next' ? Buffer.from('damaged') : getPrivateKey(alias);
    try {
      const r = await cli(
        'import',
        'next',
        at('next.pem'),
        at('next.key'),
        '--activate',
        '--data-dir',
        dataDir,
      );
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        /^Refused by https:\/\/127\.0\.0\.1:\d+\/: server = "next": \w+: .+ it keeps serving what it served before\.$/m,
      );
      assert.equal(server.supervisor.status()!.alias, 'web', 'the last good identity serves');
    } finally {
      server.store.getPrivateKey = getPrivateKey;
    }
  });

  it('does not wait with --no-wait', async () => {
    const r = await cli(
      'import',
      'spare',
      at('web.pem'),
      at('web.key'),
      '--no-wait',
      '--data-dir',
      dataDir,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /Served by/);
  });
});

describe('certkeeper import --activate while a file source pins the running server', () => {
  it('is refused with PinnedBySource naming the source, and changes nothing', async () => {
    const { dir, cleanup } = tempDir();
    const at = (name: string) => join(dir, name);
    const pki = await makeHierarchy({ name: 'pin', hosts: ['pin.example.test'] });
    writeFileSync(at('pin.pem'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(at('pin.key'), pki.leaf.keyPem);
    const { server } = await startTestServer([
      '--data-dir',
      at('data'),
      '-z',
      at('pin.pem'),
      '-k',
      at('pin.key'),
    ]);
    try {
      const before = await server.store.revision();
      const r = await cli(
        'import',
        'web',
        at('pin.pem'),
        at('pin.key'),
        '--activate',
        '--data-dir',
        at('data'),
      );
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^PinnedBySource: .*command-line flag \(certificate file .*pin\.pem\)/,
      );
      assert.equal(await server.store.revision(), before);
      // Without --activate the import is not the pin's business.
      const plain = await cli(
        'import',
        'web',
        at('pin.pem'),
        at('pin.key'),
        '--data-dir',
        at('data'),
      );
      assert.equal(plain.code, 0, plain.stderr);
    } finally {
      await server.stop();
      cleanup();
    }
  });

  it('lets the import through once the pinned server has stopped', async () => {
    const { dir, cleanup } = tempDir();
    const at = (name: string) => join(dir, name);
    const pki = await makeHierarchy({ name: 'gone', hosts: ['gone.example.test'] });
    writeFileSync(at('gone.pem'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(at('gone.key'), pki.leaf.keyPem);
    const { server } = await startTestServer([
      '--data-dir',
      at('data'),
      '-z',
      at('gone.pem'),
      '-k',
      at('gone.key'),
    ]);
    await server.stop();
    try {
      const r = await cli(
        'import',
        'web',
        at('gone.pem'),
        at('gone.key'),
        '--activate',
        '--data-dir',
        at('data'),
      );
      assert.equal(r.code, 0, r.stderr);
    } finally {
      cleanup();
    }
  });
});
