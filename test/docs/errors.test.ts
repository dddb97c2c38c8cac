import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { API_ERROR_CODES, isErrorCode, STATUS } from '../../src/api/problem.js';
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

/** The rows `| \`Code\` | … |` of a markdown section, as their trimmed cells. */
function rows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((l) => /^\| `\w+` \|/.test(l))
    .map((l) =>
      l
        .split('|')
        .map((c) => c.trim())
        .filter(Boolean),
    );
}

describe('error catalogues', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/errors.md'), 'utf8');
  const [current, retiredSection] = doc.split(/^## Retired codes$/m);
  const documented = new Map(rows(current!).map((cells) => [cells[0]!.slice(1, -1), cells]));
  const retired = rows(retiredSection ?? '').map((cells) => cells[0]!.slice(1, -1));

  it('puts no code in two catalogues', () => {
    const owner = new Map<string, string>();
    for (const [layer, catalogue] of Object.entries(CATALOGUES)) {
      for (const code of Object.keys(catalogue)) {
        assert.equal(
          owner.get(code),
          undefined,
          `${code} is in both ${owner.get(code)} and ${layer}`,
        );
        owner.set(code, layer);
      }
    }
  });

  it('gives every code of every layer one HTTP status, and no status to a code that is not', () => {
    for (const code of ALL_CODES) {
      assert.ok(isErrorCode(code), `${code} has no status in api/problem.ts STATUS`);
      const status = STATUS[code as keyof typeof STATUS];
      assert.ok(Number.isInteger(status) && status >= 400 && status < 600, `${code} → ${status}`);
    }
    for (const code of Object.keys(STATUS)) assert.ok(ALL_CODES.has(code), `${code} is not a code`);
  });

  it('makes every fault of the store or the runtime a 5xx', () => {
    /** The store codes that describe the client's request, not a broken store. */
    const clientsToFix = new Set([
      'RevisionConflict',
      'AliasNotFound',
      'AliasInUse',
      'InvalidMutation',
      'UserNotFound',
      'UserExists',
      'TokenNotFound',
    ]);
    for (const code of Object.keys(STORE_ERROR_CODES)) {
      if (clientsToFix.has(code)) continue;
      assert.ok(STATUS[code as keyof typeof STATUS] >= 500, `store fault ${code} is not a 5xx`);
    }
    for (const code of Object.keys(RUNTIME_ERROR_CODES)) {
      assert.ok(STATUS[code as keyof typeof STATUS] >= 500, `runtime fault ${code} is not a 5xx`);
    }
  });

  it('documents every code of every layer with what happened and how to fix it', () => {
    for (const code of ALL_CODES) {
      const cells = documented.get(code);
      assert.ok(cells, `docs/errors.md has no row for ${code}`);
      assert.equal(cells.length, 3, `${code}: expected code, what happened, how to fix`);
      assert.ok(cells[2]!.length > 10, `${code}: the "how to fix" cell is empty`);
    }
  });

  it('documents no code that does not exist', () => {
    for (const code of documented.keys()) assert.ok(ALL_CODES.has(code), `${code} is not a code`);
  });

  it('never reuses a retired code', () => {
    assert.ok(retired.includes('InvalidRequest'), 'docs/errors.md lists the retired codes');
    for (const code of retired) {
      assert.ok(!ALL_CODES.has(code), `${code} is retired and must not be a code again`);
    }
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
