/**
 * The API as a Fastify plugin inside an application's own server, under a prefix: its
 * routes, auth, problem answers, 405s and OpenAPI document move under the prefix, and the
 * application's own routes stay the application's.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { certkeeperApi } from '../../src/api/plugin.js';
import { createUser } from '../../src/service/create-user.js';
import { apiClient, type OpenApiDocument, PASSWORD, type TestApi } from '../support/api.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { type TestKeystore, testKeystore } from '../support/service.js';

describe('the certkeeperApi plugin, registered under /certkeeper by an application', () => {
  let app: FastifyInstance;
  let keystore: TestKeystore;
  let agent: Agent;
  let origin: string;
  /** Calls under the prefix, checked against the prefixed OpenAPI document. */
  let call: TestApi['call'];

  before(async () => {
    keystore = await testKeystore();
    const pki = await makeHierarchy({ ips: ['127.0.0.1'], hosts: ['localhost'] });
    app = Fastify({
      serverFactory: ((handler: never) =>
        createServer(
          { key: pki.leaf.keyPem, cert: pki.leaf.certPem + pki.intermediate.certPem },
          handler,
        )) as never,
    });
    app.get('/', async () => ({ app: 'mine' }));
    await app.register(certkeeperApi, {
      prefix: '/certkeeper',
      keystore: keystore.ctx,
      tlsStatus: () => undefined,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    origin = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    agent = new Agent({ connect: { ca: pki.root.certPem } });
    call = apiClient(`${origin}/certkeeper`, agent);
    await createUser(keystore.ctx, {
      username: 'ops',
      role: 'operator',
      password: PASSWORD,
      principal: TEST_PRINCIPAL,
    });
  });

  after(async () => {
    await app.close();
    await agent.close();
    await keystore.cleanup();
  });

  it("leaves the application's routes and unknown paths to the application", async () => {
    const own = await request(`${origin}/`, { dispatcher: agent });
    assert.equal(own.statusCode, 200, 'no certkeeper credentials needed');
    assert.deepEqual(await own.body.json(), { app: 'mine' });
    assert.equal(own.headers['content-security-policy'], undefined, 'no certkeeper headers');
    const unknown = await request(`${origin}/nowhere`, { dispatcher: agent });
    assert.equal(unknown.statusCode, 404);
    assert.match(String(unknown.headers['content-type']), /^application\/json/);
    await unknown.body.dump();
  });

  it('answers its routes, 404s and 405s under the prefix, as problem+json', async () => {
    assert.equal((await call('GET', '/healthz')).status, 200);
    const anonymous = await call('GET', '/api/v1/entries');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json().code, 'Unauthenticated');
    const unknown = await call('GET', '/api/v1/nowhere');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().code, 'NotFound');
    const wrongMethod = await call('DELETE', '/healthz');
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.json().code, 'MethodNotAllowed');
    assert.equal(wrongMethod.headers.allow, 'GET, HEAD, OPTIONS');
    assert.ok(wrongMethod.headers['content-security-policy'], 'its security headers');
  });

  it('documents its own paths, with the prefix as the server, and serves its docs page', async () => {
    const res = await call('GET', '/api/openapi.json');
    assert.equal(res.status, 200);
    const document = res.json() as OpenApiDocument & { servers: { url: string }[] };
    assert.deepEqual(document.servers, [{ url: '/certkeeper' }]);
    assert.ok(document.paths['/api/v1/entries']?.get, 'the API paths, without the prefix');
    assert.ok(!Object.keys(document.paths).some((p) => p === '/' || p.startsWith('/certkeeper')));
    const page = await call('GET', '/api/docs/');
    assert.equal(page.status, 200, 'the docs page is public under the prefix too');
    assert.match(String(page.headers['content-type']), /^text\/html/);
  });

  it('logs in, takes a cookie write from its own origin only, and links under the prefix', async () => {
    const login = await call('POST', '/api/v1/auth/session', {
      json: { username: 'ops', password: PASSWORD },
    });
    assert.equal(login.status, 201);
    const token = login.json().token as string;
    assert.equal((await call('GET', '/api/v1/entries', { token })).status, 200);
    const cookie = `session_id=${token}`;
    const json = { name: 'ci', role: 'auditor' };
    const foreign = await call('POST', '/api/v1/tokens', {
      json,
      headers: { cookie, origin: 'https://elsewhere.example' },
    });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.json().code, 'CrossSiteRequest');
    const same = await call('POST', '/api/v1/tokens', { json, headers: { cookie, origin } });
    assert.equal(same.status, 201, same.text);
    const csr = await call('POST', '/api/v1/csrs', {
      token,
      json: {
        alias: 'pending-web',
        subject: { CN: 'web.example.test' },
        sans: ['DNS:web.example.test'],
        keyType: 'ec-p256',
      },
    });
    assert.equal(csr.status, 201, csr.text);
    assert.equal(csr.headers.location, '/certkeeper/api/v1/csrs/pending-web', 'under the prefix');
  });
});
