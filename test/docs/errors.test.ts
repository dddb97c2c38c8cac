import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { API_ERROR_CODES } from '../../src/api/problem.js';
import { CORE_ERROR_CODES, CoreError, isCoreError } from '../../src/core/errors.js';
import { RUNTIME_ERROR_CODES } from '../../src/runtime/identity.js';
import { SERVICE_ERROR_CODES } from '../../src/service/errors.js';
import { STORE_ERROR_CODES } from '../../src/store/store.js';
import { REPO_ROOT } from '../support/tools.js';

const CATALOGUES: Record<string, Record<string, string>> = {
  core: CORE_ERROR_CODES,
  store: STORE_ERROR_CODES,
  service: SERVICE_ERROR_CODES,
  runtime: RUNTIME_ERROR_CODES,
  api: API_ERROR_CODES,
};
const ALL_CODES = new Set(Object.values(CATALOGUES).flatMap((c) => Object.keys(c)));

describe('error catalogues', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/errors.md'), 'utf8');

  it('documents every code of every layer with what happened and how to fix it', () => {
    for (const code of ALL_CODES) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.ok(row, `docs/errors.md has no row for ${code}`);
      const cells = row
        .split('|')
        .map((c) => c.trim())
        .filter(Boolean);
      assert.equal(cells.length, 3, `${code}: expected code, what happened, how to fix`);
      assert.ok(cells[2]!.length > 10, `${code}: the "how to fix" cell is empty`);
    }
  });

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
    for (const code of documented) assert.ok(ALL_CODES.has(code!), `${code} is not a code`);
  });

  it('carries the code, the cause and details', () => {
    const cause = new Error('inner');
    const err = new CoreError('ChainIncomplete', 'x', { cause, details: { issuer: 'CN=a' } });
    assert.equal(err.code, 'ChainIncomplete');
    assert.equal(err.cause, cause);
    assert.deepEqual(err.details, { issuer: 'CN=a' });
    assert.ok(isCoreError(err, 'ChainIncomplete'));
    assert.ok(!isCoreError(err, 'KeyMismatch'));
    assert.ok(!isCoreError(new Error('x')));
  });
});
