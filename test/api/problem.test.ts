import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import pino from 'pino';
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
        else assert.ok(!body.detail.includes('because'), `${code}: a 5xx hides its detail`);
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

  it('answers a store or runtime fault with a 5xx, never a 400 with its internal message', async () => {
    const statusOf = async (err: Error) => (await problemFor(err)).status;
    for (const code of ['StoreCorrupt', 'MasterKeyMissing', 'StoreUnavailable'] as const) {
      assert.ok((await statusOf(new StoreError(code, 'x'))) >= 500, code);
    }
    for (const code of [
      'ContextBuildFailed',
      'ProbeFailed',
      'InvalidState',
      'NotRunning',
    ] as const) {
      assert.ok((await statusOf(new RuntimeError(code, 'x'))) >= 500, code);
    }
  });

  it('hides a 5xx behind its request id, and logs the error and its cause under that id', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const app = Fastify({ loggerInstance: pino(destination).child({ layer: 'api' }) });
    app.setErrorHandler((e, _req, reply) => sendProblem(reply, e));
    app.get('/entries/web', async () => {
      throw new StoreError(
        'StoreCorrupt',
        'The entry "web" in /srv/certkeeper/data/certkeeper.db does not match its fingerprint.',
        { cause: new Error('ASN.1 length overruns the buffer') },
      );
    });
    const res = await app.inject({ method: 'GET', url: '/entries/web' });
    await app.close();

    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    const body = res.json();
    assert.equal(body.code, 'StoreCorrupt');
    assert.equal(body.status, 503);
    assert.ok(body.requestId, 'the answer names its request id');
    assert.ok(body.detail.includes(body.requestId), 'the detail points to the log entry');
    for (const internal of ['/srv/certkeeper', 'fingerprint', 'ASN.1', '"web"']) {
      assert.ok(!res.body.includes(internal), `the answer leaks ${internal}`);
    }

    const logged = lines.find((l) => l.reqId === body.requestId && l.level === 50);
    assert.ok(logged, `an error entry with request id ${body.requestId} in the log`);
    assert.equal(logged.layer, 'api');
    assert.equal(logged.code, 'StoreCorrupt');
    const err = logged.err as { message: string; stack: string; code: string };
    assert.equal(err.code, 'StoreCorrupt');
    assert.match(err.message, /\/srv\/certkeeper\/data\/certkeeper\.db/);
    assert.match(err.stack, /caused by: Error: ASN\.1 length overruns the buffer/);
  });

  it('hides the detail of an unexpected error behind a request id', async () => {
    const { status, body } = await problemFor(new Error('/secret/path/to/key.pem exploded'));
    assert.equal(status, 500);
    assert.equal(body.code, 'InternalError');
    assert.ok(!JSON.stringify(body).includes('/secret/path'));
    assert.match(body.detail, /request/);
  });
});
