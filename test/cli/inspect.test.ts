import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runCli } from '../support/cli.js';
import { opensslPki } from '../support/openssl-pki.js';
import { needs, needsCorpus, PYCA, REPO_ROOT, tool } from '../support/tools.js';

/** Runs the CLI in-process and captures what it prints. */
const cli = (...argv: string[]) => runCli(argv, process.env);

const skip = needs('openssl');

describe('certkeeper inspect', { skip }, () => {
  const pki = opensslPki({
    // openssl's default v3_ca plus keyUsage, spelled out so as not to depend on openssl.cnf.
    root: [
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign',
    ],
    ca: [
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
    leaf: [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = DNS:app.example.test,IP:10.0.0.7',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
    google: [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = DNS:www.google.com',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
    ],
  });
  const f = pki.at;
  after(pki.cleanup);

  before(async () => {
    await pki.selfSigned('root', '/CN=Inspect Root', 'root');
    await pki.issue('int', '/O=Inspect/CN=Inspect Intermediate', 'root', 'ca');
    await pki.issue('leaf', '/CN=app.example.test', 'int', 'leaf');
    // Deliberately out of order: root, leaf, intermediate.
    writeFileSync(
      f('bundle.pem'),
      [f('root.pem'), f('leaf.pem'), f('int.pem')].map((p) => readFileSync(p, 'utf8')).join(''),
    );
    await tool('openssl', [
      'pkcs12',
      '-export',
      '-in',
      f('leaf.pem'),
      '-inkey',
      f('leaf.key'),
      '-certfile',
      f('int.pem'),
      '-passout',
      'pass:s3cret',
      '-out',
      f('leaf.p12'),
    ]);
    writeFileSync(f('p12.pass'), 's3cret\n');
  });

  it('orders a shuffled bundle, pairs the key and validates for the host', async () => {
    const r = await cli(
      'inspect',
      f('leaf.key'),
      f('bundle.pem'),
      '--host',
      'app.example.test',
      '--ca',
      f('root.pem'),
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.certificates.length, 3);
    const leaf = report.certificates.find(
      (c: { subject: { rfc4514: string } }) => c.subject.rfc4514 === 'CN=app.example.test',
    );
    assert.deepEqual(report.keys[0].matches, [leaf.id]);
    assert.equal(report.chain.leaf, leaf.id);
    assert.equal(report.chain.order.length, 3);
    assert.equal(report.chain.complete, true);
    assert.equal(report.validation.valid, true);
    assert.equal(report.keys[0].curve, 'P-256');
    const d = createPrivateKey(readFileSync(f('leaf.key'))).export({ format: 'jwk' }).d!;
    for (const secret of [
      d,
      Buffer.from(d, 'base64url').toString('hex'),
      Buffer.from(d, 'base64url').toString('base64'),
    ]) {
      assert.ok(
        !r.stdout.toLowerCase().includes(secret.toLowerCase()),
        'no key material in the report',
      );
    }
  });

  it('prints a readable text report', async () => {
    const r = await cli('inspect', f('bundle.pem'), '--host', '10.0.0.7', '--ca', f('root.pem'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Chain: cert-\d -> cert-\d -> cert-\d/);
    assert.match(r.stdout, /Validation at .* for 10\.0\.0\.7: valid/);
    assert.match(r.stdout, /DNS:app\.example\.test, IP:10\.0\.0\.7/);
  });

  it('never trusts a root that came in the bundle: UntrustedRoot names it, --ca trusts it', async () => {
    // Issue 13: a leaf for a public name under a self-made root must not inspect as valid.
    await pki.selfSigned('evil-root', '/CN=Evil Root', 'root');
    await pki.issue('google', '/CN=www.google.com', 'evil-root', 'google');
    writeFileSync(
      f('evil-bundle.pem'),
      [f('google.pem'), f('evil-root.pem')].map((p) => readFileSync(p, 'utf8')).join(''),
    );
    const r = await cli('inspect', f('evil-bundle.pem'), '--host', 'www.google.com', '--json');
    assert.equal(r.code, 1, r.stdout);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.chain.complete, true);
    assert.equal(report.chain.anchoredBy, null);
    assert.equal(report.validation.valid, false);
    assert.deepEqual(
      report.validation.problems.map((p: { code: string }) => p.code),
      ['UntrustedRoot'],
    );
    assert.match(
      r.stderr,
      /^UntrustedRoot: Clients trust this certificate only if they already trust "CN=Evil Root".*--ca/m,
    );

    const text = await cli('inspect', f('evil-bundle.pem'), '--host', 'www.google.com');
    assert.equal(text.code, 1);
    assert.match(text.stdout, /Validation at .* for www\.google\.com: NOT valid/);

    const withCa = await cli(
      'inspect',
      f('evil-bundle.pem'),
      '--host',
      'www.google.com',
      '--ca',
      f('evil-root.pem'),
      '--json',
    );
    assert.equal(withCa.code, 0, withCa.stderr);
    const trusted = JSON.parse(withCa.stdout);
    assert.equal(trusted.validation.valid, true);
    assert.deepEqual(trusted.validation.problems, []);
    assert.match(trusted.chain.anchoredBy, /^cert-\d$/);
  });

  it('still finds the other problems of a chain that ends at an untrusted root', async () => {
    const r = await cli('inspect', f('bundle.pem'), '--at', '2099-01-01T00:00:00Z');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^CertificateExpired: /m);
    assert.match(r.stderr, /^UntrustedRoot: .*"CN=Inspect Root"/m);
  });

  it('names the missing intermediate and exits 1', async () => {
    const r = await cli('inspect', f('leaf.pem'), f('root.pem'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ChainIncomplete: .*Inspect Intermediate/m);
  });

  it('reports a host the certificate does not cover', async () => {
    const r = await cli('inspect', f('bundle.pem'), '--host', 'other.example.test');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^HostnameMismatch: /m);
  });

  it('reports a key that belongs to no certificate', async () => {
    await tool('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', f('stray.key')]);
    const r = await cli('inspect', f('bundle.pem'), f('stray.key'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^KeyMismatch: /m);
  });

  it('opens a PKCS#12 with --password-file and says WrongPassword for a wrong one', async () => {
    const ok = await cli(
      'inspect',
      f('leaf.p12'),
      f('root.pem'),
      '--ca',
      f('root.pem'),
      '--password-file',
      f('p12.pass'),
      '--json',
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).files[0].format, 'der-pkcs12');
    const bad = await cli('inspect', f('leaf.p12'), '--password', 'wrong');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^WrongPassword: /m);
    const none = await cli('inspect', f('leaf.p12'));
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^PasswordRequired: /m);
  });

  it('validates at a given instant with --at', async () => {
    const r = await cli('inspect', f('bundle.pem'), '--at', '2099-01-01T00:00:00Z');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^CertificateExpired: /m);
  });

  it('exits 1 with the code for garbage and a missing file', async () => {
    writeFileSync(f('garbage.bin'), Buffer.from('this is not a certificate'));
    const garbage = await cli('inspect', f('garbage.bin'));
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /^UnsupportedFormat: /m);
    const missing = await cli('inspect', f('nope.pem'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^FileUnreadable: .*nope\.pem.*does not exist/m);
  });

  it('exits 2 for usage errors', async () => {
    assert.equal((await cli('inspect')).code, 2);
    assert.equal((await cli('inspect', '--bogus', 'x')).code, 2);
    assert.equal((await cli('inspect', 'a', '--password', 'x', '--password-file', 'y')).code, 2);
    assert.equal((await cli('frobnicate')).code, 2);
  });

  const executableSample = join(PYCA, 'x509/cryptography.io.pem');
  it('runs as the built executable', { skip: needsCorpus(executableSample) }, async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [
      join(REPO_ROOT, 'bin/certkeeper.js'),
      'inspect',
      executableSample,
      '--at',
      '2018-01-01T00:00:00Z',
      '--json',
    ]).catch((e) => e);
    const report = JSON.parse(stdout);
    assert.equal(
      report.certificates[0].subject.attributes.find((a: { type: string }) => a.type === 'CN')
        .value,
      'www.cryptography.io',
    );
  });
});
