import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeHierarchy } from '../support/pki.js';
import { needs, REPO_ROOT, tempDir, tool } from '../support/tools.js';

const CLI = join(REPO_ROOT, 'bin/certkeeper.js');

/** Runs the built CLI with `input` on its standard input (a pipe). */
async function certkeeper(
  args: string[],
  input: string | Buffer,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  // The CLI may refuse before it has read everything: a closed pipe is not this test's error.
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  const [code] = await once(child, 'exit');
  return { code, stdout, stderr };
}

describe('certkeeper reads a pipe: "-" for standard input', { skip: needs('openssl') }, () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  after(cleanup);

  it('imports a PEM bundle from standard input, and inspects a PKCS#12 from it', async () => {
    const pki = await makeHierarchy({ name: 'piped', hosts: ['piped.example.test'] });
    const bundle = pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem;
    const imported = await certkeeper(
      ['import', 'piped', '-', '--init', '--no-wait', '--data-dir', at('data')],
      bundle,
    );
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /^Imported "piped" \(key-pair\)/);

    writeFileSync(at('leaf.pem'), pki.leaf.certPem);
    writeFileSync(at('leaf.key'), pki.leaf.keyPem);
    await tool('openssl', [
      'pkcs12',
      '-export',
      '-in',
      at('leaf.pem'),
      '-inkey',
      at('leaf.key'),
      '-out',
      at('leaf.p12'),
      '-passout',
      'pass:pipe secret',
    ]);
    const { readFileSync } = await import('node:fs');
    const inspected = await certkeeper(
      ['inspect', '-', '--password', 'pipe secret'],
      readFileSync(at('leaf.p12')),
    );
    assert.match(inspected.stdout, /^-: der-pkcs12\n/);
    assert.match(inspected.stdout, /key entry/);
  });

  it('reads --password-file from standard input', async () => {
    const r = await certkeeper(
      ['inspect', at('leaf.p12'), '--password-file', '-'],
      'pipe secret\nignored second line\n',
    );
    assert.match(r.stdout, /key entry/, r.stderr);
    const wrong = await certkeeper(['inspect', at('leaf.p12'), '--password-file', '-'], 'nope\n');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^WrongPassword: /m);
  });

  it('refuses "-" twice, and more than 1 MiB on the pipe, writing nothing', async () => {
    const twice = await certkeeper(['inspect', '-', '--password-file', '-'], 'x');
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /"-" \(standard input\) can be read only once/);
    const flood = await certkeeper(
      ['import', 'flood', '-', '--no-wait', '--data-dir', at('data')],
      Buffer.alloc(3 << 20, 0x41),
    );
    assert.equal(flood.code, 1);
    assert.match(flood.stderr, /^InputTooLarge: standard input is more than 1048576 bytes/);
    const list = await certkeeper(['audit', 'list', '--data-dir', at('data')], '');
    assert.doesNotMatch(list.stdout, /flood/);
  });
});
