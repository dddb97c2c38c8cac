import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { isErrorCode, STATUS } from '../../src/api/problem.js';
import { type OpenApiDocument, startApi, type TestApi } from '../support/api.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const run = promisify(execFile);
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

describe('the OpenAPI document', () => {
  let api: TestApi;
  let document: OpenApiDocument;
  before(async () => {
    api = await startApi();
    const res = await api.call('GET', '/api/openapi.json');
    assert.equal(res.status, 200);
    document = res.json();
  });
  after(() => api.close());

  it('is OpenAPI 3.1 and passes redocly lint (recommended-strict)', async () => {
    assert.equal(document.openapi, '3.1.0');
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(document));
      const redocly = join(REPO_ROOT, 'node_modules/.bin/redocly');
      const config = join(REPO_ROOT, 'redocly.yaml');
      const { stdout, stderr } = await run(redocly, ['lint', '--config', config, file], {
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      }).catch((err) => {
        assert.fail(`redocly lint failed:\n${err.stdout}\n${err.stderr}`);
      });
      assert.match(`${stdout}${stderr}`, /valid/i);
      assert.doesNotMatch(`${stdout}${stderr}`, /You have \d+ warning/);
    } finally {
      cleanup();
    }
  });

  it('documents every operation with an id, a summary and its problem answers', () => {
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        assert.ok(
          op.operationId && !ids.has(op.operationId),
          `${method} ${path}: a unique operationId`,
        );
        ids.add(op.operationId);
        assert.ok(op.summary, `${method} ${path}: a summary`);
        const problems = Object.entries(op.responses).filter(
          ([, response]) => response.content?.['application/problem+json'],
        );
        assert.ok(problems.length > 0, `${method} ${path}: documents its errors`);
        for (const [status, response] of problems) {
          const codes =
            response.content?.['application/problem+json']?.schema.properties?.code?.enum ?? [];
          assert.ok(codes.length > 0, `${method} ${path} ${status}: lists its codes`);
          for (const code of codes) {
            assert.ok(isErrorCode(code), `${code} is a code`);
            assert.equal(
              STATUS[code],
              Number(status),
              `${method} ${path}: ${code} is ${STATUS[code]}`,
            );
          }
        }
      }
    }
    for (const path of [
      '/api/v1/auth/session',
      '/api/v1/tokens',
      '/api/v1/server/tls',
      '/healthz',
    ]) {
      assert.ok(document.paths[path], `${path} is documented`);
    }
  });

  it('lists every stable error code', () => {
    const listed = [...document.info.description.matchAll(/^- `(\w+)`: /gm)].map((m) => m[1]);
    assert.deepEqual(listed.sort(), Object.keys(STATUS).sort());
  });

  it('serves the interactive page that loads the document', async () => {
    const page = await api.call('GET', '/api/docs/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const initializer = await api.call('GET', '/api/docs/static/swagger-initializer.js');
    assert.equal(initializer.status, 200);
    assert.match(initializer.text, /json/);
  });
});
