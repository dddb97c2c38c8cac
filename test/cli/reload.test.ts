import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { handshake } from '../runtime/fixtures.js';
import { runCli } from '../support/cli.js';
import { makeHierarchy } from '../support/pki.js';
import { startTestServer } from '../support/serve.js';
import { tempDir } from '../support/tools.js';

/** A server in process on the data directory `data` whose flags name `flag.pem` and `flag.key`. */
const serveFlagFiles = (at: (name: string) => string) =>
  startTestServer(['--data-dir', at('data'), '-z', at('flag.pem'), '-k', at('flag.key')]);

describe('certkeeper reload', () => {
  it('makes the running server read its certificate files again, as SIGHUP does, and says it did', async () => {
    const { dir, cleanup } = tempDir();
    const at = (name: string) => join(dir, name);
    const write = async (name: string) => {
      const pki = await makeHierarchy({ name, hosts: ['reload.example.test'] });
      writeFileSync(at('flag.pem'), pki.leaf.certPem + pki.intermediate.certPem);
      writeFileSync(at('flag.key'), pki.leaf.keyPem);
      return pki.leaf.cert.sha256;
    };
    const first = await write('first');
    const { server, port } = await serveFlagFiles(at);
    try {
      assert.equal((await handshake(port)).fingerprint, first);
      const second = await write('second');
      const r = await runCli(['reload', '--data-dir', at('data')]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^Asked the running servers to reload their certificate sources \(revision \d+\)\.\nServed by https:\/\/127\.0\.0\.1:\d+\//,
      );
      assert.match(r.stdout, /\) from certificate file .*flag\.pem.*, sha256 [0-9A-F:]+\.\n$/i);
      assert.equal(r.stderr, '');
      assert.equal((await handshake(port)).fingerprint, second);
      assert.equal(server.supervisor.status()!.source, 'flag');

      // A key that no longer matches: the server keeps its last good certificate, and
      // the command says so and fails instead of reporting it served.
      const other = await makeHierarchy({ name: 'other', hosts: ['reload.example.test'] });
      writeFileSync(at('flag.key'), other.leaf.keyPem);
      const broken = await runCli(['reload', '--data-dir', at('data')]);
      assert.equal(broken.code, 1, broken.stdout);
      assert.doesNotMatch(broken.stdout, /Served by/);
      assert.match(
        broken.stderr,
        /^https:\/\/127\.0\.0\.1:\d+\/ did not take the reload: .*flag\.pem.*, which is broken \(KeyMismatch: .*\); it keeps serving the last good certificate it read from there \(sha256 [0-9A-F:]+\)\.\n$/i,
      );
      assert.equal((await handshake(port)).fingerprint, second);
    } finally {
      await server.stop();
      cleanup();
    }
  });

  it('names a source it passed over and fails, then serves the source once it is fixed', async () => {
    const { dir, cleanup } = tempDir();
    const at = (name: string) => join(dir, name);
    const pki = await makeHierarchy({ name: 'fixed', hosts: ['reload.example.test'] });
    const other = await makeHierarchy({ name: 'other', hosts: ['reload.example.test'] });
    writeFileSync(at('flag.pem'), pki.leaf.certPem + pki.intermediate.certPem);
    writeFileSync(at('flag.key'), other.leaf.keyPem);
    const { server, port } = await serveFlagFiles(at);
    try {
      assert.equal(server.supervisor.status()!.source, 'local-ca');
      const passed = await runCli(['reload', '--data-dir', at('data')]);
      assert.equal(passed.code, 1);
      assert.match(passed.stdout, /Served by https:\/\/127\.0\.0\.1:\d+\/ \(revision \d+\) from /);
      assert.match(passed.stderr, /passed over .*flag\.pem.*, which is broken \(KeyMismatch: /i);

      writeFileSync(at('flag.key'), pki.leaf.keyPem);
      const fixed = await runCli(['reload', '--data-dir', at('data')]);
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.equal(fixed.stderr, '');
      assert.match(fixed.stdout, /from certificate file .*flag\.pem/i);
      assert.equal((await handshake(port)).fingerprint, pki.leaf.cert.sha256);
    } finally {
      await server.stop();
      cleanup();
    }
  });

  it('says so when no server runs on the data directory, and writes nothing', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const init = await runCli(['user', 'list', '--data-dir', join(dir, 'data')]);
      assert.notEqual(init.code, 0, 'the data directory does not exist yet');
      const pki = await makeHierarchy({ name: 'x', hosts: ['x.example.test'] });
      writeFileSync(
        join(dir, 'x.pem'),
        pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem,
      );
      assert.equal(
        (
          await runCli([
            'import',
            'x',
            join(dir, 'x.pem'),
            '--init',
            '--data-dir',
            join(dir, 'data'),
          ])
        ).code,
        0,
      );
      const r = await runCli(['reload', '--data-dir', join(dir, 'data')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /No server is running/);
      const audit = await runCli(['audit', 'list', '--data-dir', join(dir, 'data')]);
      assert.doesNotMatch(audit.stdout, /"action":"reload"/);
    } finally {
      cleanup();
    }
  });
});
