import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CoreError, type CoreErrorCode, isCoreError } from '../../src/core/errors.js';

const run = promisify(execFile);

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The public test corpora (`../shared/corpora` beside the checkout, or $CERTKEEPER_CORPORA). */
export const CORPORA = process.env.CERTKEEPER_CORPORA ?? resolve(REPO_ROOT, '../shared/corpora');
export const PYCA = join(CORPORA, 'pyca-vectors');
export const LIMBO = join(CORPORA, 'x509-limbo');

/** True when CI demands that no test skips for a missing component. */
export const REQUIRE_ALL = process.env.CERTKEEPER_REQUIRE_ALL === '1';

function has(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A `skip` option for node:test: false when the system command exists; otherwise a
 * loud reason, or, under CERTKEEPER_REQUIRE_ALL=1, a thrown error so nothing skips in CI.
 */
export function needs(command: string): false | string {
  if (has(command)) return false;
  const reason = `SKIPPED: needs \`${command}\`, which is not installed`;
  if (REQUIRE_ALL) throw new Error(`${reason} (CERTKEEPER_REQUIRE_ALL=1)`);
  console.warn(reason);
  return reason;
}

/**
 * A `skip` option for a test that needs a corpus file or folder: false when it exists;
 * otherwise a loud reason naming the path and CERTKEEPER_CORPORA, or, under
 * CERTKEEPER_REQUIRE_ALL=1, a thrown error so nothing skips in CI.
 */
export function needsCorpus(path: string): false | string {
  if (existsSync(path)) return false;
  const reason = `SKIPPED: the corpus ${path} is missing (fetch the public corpora, see README, and set CERTKEEPER_CORPORA to their folder; now ${CORPORA})`;
  if (REQUIRE_ALL) throw new Error(`${reason} (CERTKEEPER_REQUIRE_ALL=1)`);
  console.warn(reason);
  return reason;
}

/** Asserts that `fn` throws a CoreError with `code`, and returns it. */
export function assertCoreError(fn: () => unknown, code: CoreErrorCode): CoreError {
  let caught: CoreError | undefined;
  assert.throws(fn, (err: unknown) => {
    assert.ok(isCoreError(err), `expected a CoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    caught = err;
    return true;
  });
  return caught!;
}

/** Runs openssl (or keytool…) with arguments; resolves stdout, rejects with stderr. */
export async function tool(command: string, args: string[], input?: string): Promise<string> {
  if (input !== undefined) {
    return new Promise((resolvePromise, reject) => {
      const child = execFile(command, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${command} ${args.join(' ')}: ${stderr}`));
        else resolvePromise(stdout);
      });
      child.stdin?.end(input);
    });
  }
  try {
    const { stdout } = await run(command, args, { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`${command} ${args.join(' ')}: ${e.stderr ?? String(err)}`);
  }
}

/** A fresh temporary directory, removed when the returned cleanup runs. */
export function tempDir(prefix = 'certkeeper-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
