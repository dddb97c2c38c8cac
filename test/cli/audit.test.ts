import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { runCli } from '../support/cli.js';
import { makeHierarchy } from '../support/pki.js';
import { tempDir } from '../support/tools.js';

describe('certkeeper audit', () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  const dataDir = at('data');
  after(cleanup);

  /** Runs the CLI in-process on the test's data directory. */
  const cli = (...argv: string[]) => runCli([...argv, '--data-dir', dataDir]);

  before(async () => {
    for (const name of ['one', 'two', 'three']) {
      const pki = await makeHierarchy({ name, hosts: [`${name}.example.test`] });
      writeFileSync(
        at(`${name}.pem`),
        pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem,
      );
      const r = await cli('import', name, at(`${name}.pem`), '--init');
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('lists the latest records, newest first, one JSON object a line', async () => {
    const r = await cli('audit', 'list', '--limit', '2');
    assert.equal(r.code, 0, r.stderr);
    const records = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((x) => [x.seq, x.action, x.target]),
      [
        [3, 'import', 'three'],
        [2, 'import', 'two'],
      ],
    );
  });

  it('says the chain is intact, then names the first record altered on disk', async () => {
    const intact = await cli('audit', 'verify');
    assert.equal(intact.code, 0, intact.stderr);
    assert.match(intact.stdout, /intact: 3 records/);
    const db = new Database(join(dataDir, 'certkeeper.db'));
    try {
      db.prepare(`UPDATE audit_log SET target = 'someone-else' WHERE seq = 2`).run();
    } finally {
      db.close();
    }
    const broken = await cli('audit', 'verify');
    assert.equal(broken.code, 1);
    assert.match(
      broken.stderr,
      /^AuditChainBroken: the audit log is broken at record 2: record 2 was altered/,
    );
    assert.equal(broken.stderr.trim().split('\n').length, 1);
  });

  it('is a usage error without verify or list', async () => {
    assert.equal((await cli('audit')).code, 2);
    assert.equal((await cli('audit', 'erase')).code, 2);
  });
});
