import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { makeHierarchy } from '../support/pki.js';
import { tempDir } from '../support/tools.js';

describe('certkeeper import says what happened, and only that', () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  const dataDir = at('data');
  after(cleanup);

  /** Runs the CLI in-process on the test's data directory (created if need be). */
  const cli = (...argv: string[]) => runCli([...argv, '--data-dir', dataDir, '--init']);

  before(async () => {
    const pki = await makeHierarchy({ name: 'CliImport', hosts: ['localhost'] });
    writeFileSync(at('leaf.pem'), pki.leaf.certPem);
    writeFileSync(at('chain.pem'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(at('leaf.key'), pki.leaf.keyPem);
    writeFileSync(at('root.pem'), pki.root.certPem);
    writeFileSync(at('garbage.bin'), 'this is not a certificate');
  });

  it('a server certificate without its key is NoPrivateKey, not a trusted entry', async () => {
    for (const file of ['leaf.pem', 'chain.pem']) {
      const r = await cli('import', 'web', at(file));
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^NoPrivateKey: ${at(file)}: .*add the key file\\.\\n$`));
      assert.equal(r.stdout, '');
    }
    // Nothing was stored under the alias: importing it with its key is a first import.
    const ok = await cli('import', 'web', at('chain.pem'), at('leaf.key'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^Imported "web" \(key-pair\) at revision \d+/);
  });

  it('a CA certificate without a key is a trusted entry', async () => {
    const r = await cli('import', 'corp-root', at('root.pem'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Imported "corp-root" \(trusted\)/);
  });

  it('an alias in use says so and points to --replace', async () => {
    const r = await cli('import', 'web', at('chain.pem'), at('leaf.key'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^AliasInUse: .*"web".* \(use --replace\)\n$/);
    const renewed = await cli('import', 'web', at('chain.pem'), at('leaf.key'), '--replace');
    assert.equal(renewed.code, 0, renewed.stderr);
  });

  it('--replace of an unknown alias is AliasNotFound and creates nothing', async () => {
    const r = await cli('import', 'nobody-here', at('chain.pem'), at('leaf.key'), '--replace');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^AliasNotFound: .*"nobody-here".* \(leave out --replace\)\n$/);
    const again = await cli('import', 'nobody-here', at('chain.pem'), at('leaf.key'), '--replace');
    assert.match(again.stderr, /^AliasNotFound: /, 'the first attempt created nothing');
  });

  it('an error in one file names that file', async () => {
    const r = await cli('import', 'mixed', at('chain.pem'), at('garbage.bin'), at('leaf.key'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^UnsupportedFormat: ${at('garbage.bin')}: `));
  });
});
