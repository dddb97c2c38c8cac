/**
 * Issue 13: a bundle whose expired cross-signed intermediate comes before the valid one.
 * Root A (valid) and old root B; intermediate I signed by A, and I' — the same subject and
 * key — cross-signed by B and expired, first in the file. `openssl verify` accepts it with
 * A; so must `inspect`, an import and `serve -z`, each choosing I and saying I' was left out.
 * Made by openssl at test time; the TLS check is `openssl s_client` on loopback.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificate } from '../../src/core/certificate.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { importEntry } from '../../src/service/import-entry.js';
import { runCli } from '../support/cli.js';
import { CA_SECTION, leafSection, opensslPki, ROOT_SECTION } from '../support/openssl-pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { startTestServer } from '../support/serve.js';
import { file, testKeystore } from '../support/service.js';
import { needs, tool } from '../support/tools.js';

/** Runs the CLI in-process and captures what it prints. */
const cli = (...argv: string[]) => runCli(argv, process.env);

describe('an expired cross-signed intermediate before the valid one', {
  skip: needs('openssl'),
}, () => {
  const pki = opensslPki({
    root: ROOT_SECTION,
    ca: CA_SECTION,
    leaf: leafSection('DNS:localhost,IP:127.0.0.1'),
  });
  const f = pki.at;
  const pemOf = (name: string) => readFileSync(f(`${name}.pem`), 'utf8');
  const sha256Of = (name: string) =>
    parseCertificate(parsePemBlocks(readFileSync(f(`${name}.pem`)))[0]!.der).sha256;

  before(async () => {
    await pki.selfSigned('rootA', '/CN=Root A', 'root', { days: 3650 });
    await pki.selfSigned('rootB', '/CN=Old Root B', 'root', { days: 3650 });
    await pki.issue('int', '/CN=Issuing CA', 'rootA', 'ca', { days: 365 });
    await pki.issue('leaf', '/CN=localhost', 'int', 'leaf');
    // I': int's own request signed by root B; `-days -1` makes it end a day before it starts.
    await tool('openssl', [
      'x509',
      '-req',
      '-in',
      f('int.csr'),
      '-CA',
      f('rootB.pem'),
      '-CAkey',
      f('rootB.key'),
      '-set_serial',
      '0x4242',
      '-days',
      '-1',
      '-extfile',
      f('ext.cnf'),
      '-extensions',
      'ca',
      '-out',
      f('intX.pem'),
    ]);
    writeFileSync(f('bundle.pem'), pemOf('leaf') + pemOf('intX') + pemOf('int'));
    // The premise: openssl accepts the bundle with root A.
    await tool('openssl', [
      'verify',
      '-CAfile',
      f('rootA.pem'),
      '-untrusted',
      f('bundle.pem'),
      f('leaf.pem'),
    ]);
  });
  after(pki.cleanup);

  it('inspect says valid, exits 0 and names the intermediate it left out', async () => {
    const r = await cli(
      'inspect',
      '--json',
      '--ca',
      f('rootA.pem'),
      f('bundle.pem'),
      f('leaf.key'),
    );
    const report = JSON.parse(r.stdout);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(report.validation.valid, true, JSON.stringify(report.validation.problems));
    const idOf = (name: string) =>
      report.certificates.find(
        (c: { fingerprints: { sha256: string } }) => c.fingerprints.sha256 === sha256Of(name),
      )?.id;
    assert.deepEqual(report.chain.order.slice(0, 2), [idOf('leaf'), idOf('int')]);
    assert.deepEqual(
      report.chain.leftOut.map((l: { certificate: string; code: string }) => [
        l.certificate,
        l.code,
      ]),
      [[idOf('intX'), 'CertificateExpired']],
    );
    const text = await cli('inspect', '--ca', f('rootA.pem'), f('bundle.pem'), f('leaf.key'));
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /: valid$/m);
    assert.match(
      text.stdout,
      /left out .*"CN=Old Root B" \(expired .*in favour of the one issued by "CN=Root A"/,
    );
  });

  it('an import stores the valid intermediate and warns that the expired one was left out', async () => {
    const ks = await testKeystore();
    try {
      await importEntry(ks.ctx, {
        alias: 'root-a',
        files: [file('rootA.pem', pemOf('rootA'))],
        principal: TEST_PRINCIPAL,
      });
      const r = await importEntry(ks.ctx, {
        alias: 'web',
        files: [file('bundle.pem', pemOf('bundle')), file('leaf.key', readFileSync(f('leaf.key')))],
        activate: true,
        principal: TEST_PRINCIPAL,
      });
      const stored = parsePemBlocks(r.entry.chainPem).map((b) => parseCertificate(b.der).sha256);
      assert.deepEqual(stored, [sha256Of('int')]);
      assert.deepEqual(
        r.warnings.map((w) => [w.code, w.certificate]),
        [['CertificateExpired', sha256Of('intX')]],
      );
      assert.match(
        r.warnings[0]!.message,
        /was left out in favour of the one issued by "CN=Root A"/,
      );
    } finally {
      await ks.cleanup();
    }
  });

  it('serve -z sends the valid intermediate, and openssl s_client verifies it against root A', async () => {
    const { server, port } = await startTestServer([
      '--data-dir',
      join(pki.dir, 'data'),
      '-z',
      f('bundle.pem'),
      '-k',
      f('leaf.key'),
    ]);
    try {
      const out = await tool(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          '-servername',
          'localhost',
          '-CAfile',
          f('rootA.pem'),
          '-verify_return_error',
          '-showcerts',
        ],
        '',
      );
      assert.match(out, /Verify return code: 0 \(ok\)/);
      const served = parsePemBlocks(out).map((b) => parseCertificate(b.der).sha256);
      assert.deepEqual(served, [sha256Of('leaf'), sha256Of('int')]);
    } finally {
      await server.stop();
    }
  });
});
