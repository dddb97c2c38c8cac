import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bindEntry } from '../../src/service/bind-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import { startApi, type TestApi } from '../support/api.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { bundleOf } from '../support/service.js';

describe('API: keystore entries', () => {
  let api: TestApi;
  let operator: string;
  let auditor: string;
  let fingerprint: string;
  before(async () => {
    api = await startApi();
    const pki = await makeHierarchy({ hosts: ['www.example.com'] });
    fingerprint = pki.leaf.cert.sha256;
    for (const alias of ['web', 'mail', 'bound']) {
      await importEntry(api.keystore.ctx, {
        alias,
        files: [bundleOf(pki)],
        principal: TEST_PRINCIPAL,
      });
    }
    await bindEntry(api.keystore.ctx, {
      alias: 'bound',
      binding: 'sni:www.example.com',
      principal: TEST_PRINCIPAL,
    });
    operator = await api.loginAs('operator');
    auditor = await api.loginAs('auditor');
  });
  after(() => api.close());

  it('lists and describes entries with their bindings and an ETag, never a key', async () => {
    const list = await api.call('GET', '/api/v1/entries', { token: auditor });
    assert.equal(list.status, 200);
    const aliases = list.json().map((e: { alias: string }) => e.alias);
    assert.deepEqual(
      aliases.filter((a: string) => !a.startsWith('certkeeper-')),
      ['bound', 'mail', 'web'],
    );
    assert.doesNotMatch(list.text, /PRIVATE KEY|privateKey"/);
    const one = await api.call('GET', '/api/v1/entries/bound', { token: auditor });
    assert.equal(one.status, 200);
    const entry = one.json();
    assert.equal(entry.kind, 'key-pair');
    assert.equal(entry.status, 'valid');
    assert.equal(entry.hasPrivateKey, true);
    assert.deepEqual(entry.bindings, ['sni:www.example.com']);
    assert.equal(entry.certificate.fingerprints.sha256, fingerprint);
    assert.deepEqual(entry.certificate.subjectAltNames.dns, ['www.example.com']);
    assert.equal(entry.chain.length, 1);
    assert.equal(one.headers.etag, `"${entry.revision}"`);
  });

  it('filters by kind and status, and refuses a filter it does not know', async () => {
    const pending = await api.call('GET', '/api/v1/entries?kind=pending', { token: auditor });
    assert.deepEqual(pending.json(), []);
    const expiring = await api.call(
      'GET',
      '/api/v1/entries?status=expiring&expiringWithinDays=3650',
      {
        token: auditor,
      },
    );
    assert.ok(expiring.json().some((e: { alias: string }) => e.alias === 'web'));
    const bad = await api.call('GET', '/api/v1/entries?kind=secret', { token: auditor });
    assert.equal(bad.status, 400);
    assert.equal(bad.json().code, 'BadRequest');
  });

  it('answers an unknown alias with 404 AliasNotFound', async () => {
    const res = await api.call('GET', '/api/v1/entries/nope', { token: auditor });
    assert.equal(res.status, 404);
    assert.equal(res.json().code, 'AliasNotFound');
  });

  it('deletes only with the current ETag: a stale If-Match is 412 and changes nothing', async () => {
    const { etag } = (await api.call('GET', '/api/v1/entries/mail', { token: operator })).headers;
    const before = await api.keystore.ctx.store.revision();
    const stale = await api.call('DELETE', '/api/v1/entries/mail', {
      token: operator,
      headers: { 'if-match': `"${Number(String(etag).replaceAll('"', '')) - 1}"` },
    });
    assert.equal(stale.status, 412);
    assert.equal(stale.json().code, 'RevisionConflict');
    assert.equal(await api.keystore.ctx.store.revision(), before);
    const garbled = await api.call('DELETE', '/api/v1/entries/mail', {
      token: operator,
      headers: { 'if-match': 'yesterday' },
    });
    assert.equal(garbled.status, 400);
    const done = await api.call('DELETE', '/api/v1/entries/mail', {
      token: operator,
      headers: { 'if-match': String(etag) },
    });
    assert.equal(done.status, 200, done.text);
    assert.equal((await api.call('GET', '/api/v1/entries/mail', { token: operator })).status, 404);
  });

  it('refuses to delete a bound entry (409) and an auditor any entry (403)', async () => {
    const bound = await api.call('DELETE', '/api/v1/entries/bound', { token: operator });
    assert.equal(bound.status, 409);
    assert.equal(bound.json().code, 'AliasInUse');
    const forbidden = await api.call('DELETE', '/api/v1/entries/web', { token: auditor });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.json().code, 'Forbidden');
    assert.equal((await api.call('GET', '/api/v1/entries/web', { token: auditor })).status, 200);
  });
});

describe('API: the audit log', () => {
  let api: TestApi;
  before(async () => {
    api = await startApi();
  });
  after(() => api.close());

  it('pages through every record newest first, and verifies the chain', async () => {
    const admin = await api.loginAs('admin');
    for (let i = 0; i < 5; i++) await api.loginAs('auditor');
    const all = await api.keystore.ctx.store.listAudit();
    const seen: number[] = [];
    let before: number | null = null;
    do {
      const query: string = before === null ? '?limit=3' : `?limit=3&before=${before}`;
      const page = await api.call('GET', `/api/v1/audit${query}`, { token: admin });
      assert.equal(page.status, 200, page.text);
      const body = page.json();
      assert.ok(body.records.length <= 3);
      seen.push(...body.records.map((r: { seq: number }) => r.seq));
      before = body.next;
    } while (before !== null);
    assert.deepEqual(
      seen,
      all.map((r) => r.seq),
    );
    const verification = await api.call('GET', '/api/v1/audit/verification', { token: admin });
    assert.deepEqual(verification.json(), { ok: true, records: all.length });
  });

  it('refuses a page size over the limit', async () => {
    const admin = await api.loginAs('admin');
    const res = await api.call('GET', '/api/v1/audit?limit=100000', { token: admin });
    assert.equal(res.status, 400);
  });
});
