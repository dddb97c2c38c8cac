import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { sendProblem } from '../../src/api/problem.js';
import { CORE_ERROR_CODES, CoreError } from '../../src/core/errors.js';
import { RUNTIME_ERROR_CODES, RuntimeError } from '../../src/runtime/identity.js';
import { SERVICE_ERROR_CODES, ServiceError } from '../../src/service/errors.js';
import { STORE_ERROR_CODES, StoreError } from '../../src/store/store.js';

/** A throwaway app whose one route throws `err`. */
async function problemFor(err: unknown) {
  const app = Fastify();
  app.setErrorHandler((e, _req, reply) => sendProblem(reply, e));
  app.get('/', async () => {
    throw err;
  });
  const res = await app.inject({ method: 'GET', url: '/' });
  await app.close();
  return { status: res.statusCode, type: res.headers['content-type'], body: res.json() };
}

describe('problem+json', () => {
  it('gives every typed error of every layer a status and its own code', async () => {
    const all: [Record<string, string>, new (code: never, message: string) => Error][] = [
      [CORE_ERROR_CODES, CoreError as never],
      [STORE_ERROR_CODES, StoreError as never],
      [SERVICE_ERROR_CODES, ServiceError as never],
      [RUNTIME_ERROR_CODES, RuntimeError as never],
    ];
    for (const [catalogue, ErrorType] of all) {
      for (const code of Object.keys(catalogue)) {
        const { status, type, body } = await problemFor(
          new ErrorType(code as never, `because ${code}`),
        );
        assert.match(String(type), /^application\/problem\+json/);
        assert.equal(body.code, code);
        assert.equal(body.status, status);
        assert.ok(status >= 400 && status < 600, `${code} → ${status}`);
        if (status < 500) assert.equal(body.detail, `because ${code}`);
      }
    }
  });

  it('maps the codes a client acts on to their HTTP meaning', async () => {
    const statusOf = async (err: Error) => (await problemFor(err)).status;
    assert.equal(await statusOf(new CoreError('WrongPassword', 'x')), 401);
    assert.equal(await statusOf(new CoreError('InputTooLarge', 'x')), 413);
    assert.equal(await statusOf(new CoreError('UnsupportedFormat', 'x')), 415);
    assert.equal(await statusOf(new CoreError('KeyMismatch', 'x')), 422);
    assert.equal(await statusOf(new ServiceError('PinnedBySource', 'x')), 409);
    assert.equal(await statusOf(new StoreError('AliasNotFound', 'x')), 404);
    assert.equal(await statusOf(new StoreError('RevisionConflict', 'x')), 412);
  });

  it('names the client errors Fastify raises itself', async () => {
    const fastifyError = (statusCode: number) => Object.assign(new Error('x'), { statusCode });
    assert.equal((await problemFor(fastifyError(404))).body.code, 'NotFound');
    assert.equal((await problemFor(fastifyError(413))).body.code, 'PayloadTooLarge');
    assert.equal((await problemFor(fastifyError(400))).body.code, 'BadRequest');
  });

  it('hides the detail of an unexpected error behind a request id', async () => {
    const { status, body } = await problemFor(new Error('/secret/path/to/key.pem exploded'));
    assert.equal(status, 500);
    assert.equal(body.code, 'InternalError');
    assert.ok(!JSON.stringify(body).includes('/secret/path'));
    assert.match(body.detail, /request/);
  });
});
