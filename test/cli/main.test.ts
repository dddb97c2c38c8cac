import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reportError } from '../../src/cli/main.js';
import { CoreError } from '../../src/core/errors.js';
import { ServiceError } from '../../src/service/errors.js';

function report(err: unknown, env: Record<string, string | undefined> = {}) {
  let stderr = '';
  const code = reportError(
    err,
    { stdout: { write: () => undefined }, stderr: { write: (t: string) => (stderr += t) } },
    env,
  );
  return { code, stderr };
}

describe('the CLI reports an error that ends a command', () => {
  it('prints a coded error of any layer as CODE: sentence, exit 1', () => {
    assert.deepEqual(report(new CoreError('ChainIncomplete', 'The issuer is missing.')), {
      code: 1,
      stderr: 'ChainIncomplete: The issuer is missing.\n',
    });
    assert.deepEqual(report(new ServiceError('PinnedBySource', 'It\nis pinned.')), {
      code: 1,
      stderr: 'PinnedBySource: It is pinned.\n',
    });
  });

  it('prints any other error as one line without its stack, exit 1', () => {
    const err = new TypeError('Cannot read properties of undefined\n  (reading "x")');
    const r = report(err);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'certkeeper: unexpected error: Cannot read properties of undefined (reading "x")\n',
    );
    assert.equal(
      report('a string was thrown').stderr,
      'certkeeper: unexpected error: a string was thrown\n',
    );
  });

  it('prints the stack when CERTKEEPER_DEBUG=1 asks for it', () => {
    const r = report(new Error('boom'), { CERTKEEPER_DEBUG: '1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^certkeeper: unexpected error: Error: boom\n\s+at /);
  });
});
