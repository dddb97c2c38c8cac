import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { importEntry } from '../../src/service/import-entry.js';
import { startApi, type TestApi } from '../support/api.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { bundleOf } from '../support/service.js';

type Pki = Awaited<ReturnType<typeof makeHierarchy>>;

describe('API: POST /api/v1/changes, several writes as one change', () => {
  let api: TestApi;
  let operator: string;
  let auditor: string;
  let one: Pki;
  let two: Pki;
  const revision = () => api.keystore.ctx.store.revision();
  const bindings = async () =>
    Object.fromEntries((await api.keystore.ctx.store.listBindings()).map((b) => [b.name, b.alias]));
  const post = (operations: unknown, token = operator) =>
    api.call('POST', '/api/v1/changes', { token, json: { operations } });
  /** The JSON upload of a hierarchy's leaf: certificate, chain and key. */
  const upload = (pki: Pki) => ({
    certificate: pki.leaf.certPem,
    chain: [pki.intermediate.certPem],
    privateKey: pki.leaf.keyPem,
  });

  before(async () => {
    api = await startApi();
    operator = await api.loginAs('operator');
    auditor = await api.loginAs('auditor');
    one = await makeHierarchy({ name: 'One', hosts: ['one.example.test'] });
    two = await makeHierarchy({ name: 'Two', hosts: ['two.example.test'] });
  });
  after(() => api.close());

  it('imports, binds and activates at one revision, and answers what each operation did', async () => {
    const before = await revision();
    const res = await post([
      { op: 'import', alias: 'web', ...upload(one) },
      { op: 'bind', hostname: 'one.example.test', alias: 'web' },
      { op: 'activate', alias: 'web', confirmWithinSeconds: 120 },
    ]);
    assert.equal(res.status, 200, res.text);
    const body = res.json();
    assert.equal(body.revision, before + 1);
    assert.equal(await revision(), before + 1);
    assert.deepEqual(
      body.operations.map((o: { op: string }) => o.op),
      ['import', 'bind', 'activate'],
    );
    assert.equal(body.operations[0].fingerprint, one.leaf.cert.sha256);
    assert.equal(body.operations[1].binding, 'sni:one.example.test');
    assert.ok(Date.parse(body.operations[2].confirmBefore) > Date.now());
    assert.deepEqual(body.nodes, [], 'no server runs here to wait for');
    const bound = await bindings();
    assert.deepEqual([bound.server, bound['sni:one.example.test']], ['web', 'web']);
    const entry = await api.call('GET', '/api/v1/entries/web', { token: auditor });
    assert.equal(entry.headers.etag, `"${before + 1}"`);
  });

  it('writes nothing when the third operation fails: a key of another certificate', async () => {
    const before = await revision();
    const res = await post([
      { op: 'import', alias: 'mail', ...upload(two) },
      { op: 'bind', hostname: 'two.example.test', alias: 'mail' },
      {
        op: 'import',
        alias: 'other',
        certificate: two.leaf.certPem,
        privateKey: one.leaf.keyPem,
      },
    ]);
    assert.equal(res.status, 422, res.text);
    assert.equal(res.json().code, 'KeyMismatch');
    assert.match(res.json().detail, /^Operation 2 \(import\): /);
    assert.equal(await revision(), before);
    assert.equal((await api.call('GET', '/api/v1/entries/mail', { token: auditor })).status, 404);
    assert.equal((await bindings())['sni:two.example.test'], undefined);
  });

  it('writes nothing when the third operation names an unknown alias', async () => {
    const before = await revision();
    const res = await post([
      { op: 'import', alias: 'mail', ...upload(two) },
      { op: 'bind', hostname: 'two.example.test', alias: 'mail' },
      { op: 'bind', hostname: 'three.example.test', alias: 'nobody' },
    ]);
    assert.equal(res.status, 404, res.text);
    assert.equal(res.json().code, 'AliasNotFound');
    assert.match(res.json().detail, /^Operation 2 \(bind\): /);
    assert.equal(await revision(), before);
    assert.equal(await api.keystore.ctx.store.getEntry('mail'), undefined);
  });

  it('answers 412 to a stale ifMatch and applies the current one', async () => {
    await importEntry(api.keystore.ctx, {
      alias: 'api',
      files: [bundleOf(two)],
      principal: TEST_PRINCIPAL,
    });
    const { etag } = (await api.call('GET', '/api/v1/entries/api', { token: operator })).headers;
    const current = Number(String(etag).replaceAll('"', ''));
    const before = await revision();
    const stale = await post([
      { op: 'bind', hostname: 'two.example.test', alias: 'api' },
      { op: 'import', alias: 'api', ifMatch: `"${current - 1}"`, ...upload(two) },
    ]);
    assert.equal(stale.status, 412, stale.text);
    assert.equal(stale.json().code, 'RevisionConflict');
    assert.match(stale.json().detail, /^Operation 1 \(import\): /);
    assert.equal(await revision(), before);
    const fresh = await post([
      { op: 'bind', hostname: 'two.example.test', alias: 'api', ifMatch: current },
      { op: 'import', alias: 'api', ifMatch: String(etag), ...upload(two) },
    ]);
    assert.equal(fresh.status, 200, fresh.text);
    assert.equal(fresh.json().operations[1].action, 'replace');
    assert.equal((await bindings())['sni:two.example.test'], 'api');
  });

  it('answers 403 to an auditor and writes nothing', async () => {
    const before = await revision();
    const res = await post([{ op: 'delete', alias: 'api' }], auditor);
    assert.equal(res.status, 403);
    assert.equal(res.json().code, 'Forbidden');
    assert.equal(await revision(), before);
  });

  it('answers 400 to an empty list, an unknown op, a missing or foreign field', async () => {
    const before = await revision();
    for (const operations of [
      [],
      [{ op: 'rename', alias: 'api' }],
      [{ op: 'bind', alias: 'api' }],
      [{ op: 'unbind', hostname: 'two.example.test', alias: 'api' }],
    ]) {
      const res = await post(operations);
      assert.equal(res.status, 400, `${JSON.stringify(operations)}: ${res.text}`);
      assert.equal(res.json().code, 'BadRequest');
    }
    assert.equal(await revision(), before);
  });

  it('unbinds and deletes a bound entry in one change, which the delete alone may not', async () => {
    const alone = await post([{ op: 'delete', alias: 'api' }]);
    assert.equal(alone.status, 409);
    assert.equal(alone.json().code, 'AliasInUse');
    const res = await post([
      { op: 'unbind', hostname: 'two.example.test' },
      { op: 'delete', alias: 'api' },
    ]);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json().operations[0], {
      op: 'unbind',
      hostname: 'two.example.test',
      alias: 'api',
      binding: 'sni:two.example.test',
    });
    assert.equal((await api.call('GET', '/api/v1/entries/api', { token: operator })).status, 404);
  });
});
