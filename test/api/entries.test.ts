import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bindEntry } from '../../src/service/bind-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import { startApi, type TestApi } from '../support/api.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { bundleOf, file } from '../support/service.js';

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
    assert.equal(bad.json().code, 'InvalidQuery');
    for (const query of ['expiringWithinDays=abc', 'expiringWithinDays=0']) {
      const one = await api.call('GET', `/api/v1/entries/web?${query}`, { token: auditor });
      assert.equal(one.status, 400, query);
      assert.equal(one.json().code, 'InvalidQuery', query);
    }
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

describe('API: paging the entries', () => {
  const COUNT = 250;
  let api: TestApi;
  let auditor: string;
  /** Every alias in the store, in its order (the reserved `certkeeper-*` ones too). */
  let all: string[];
  const alias = (i: number) => `p-${String(i).padStart(3, '0')}`;
  /** Every tenth a trusted root, every tenth a leaf that ends in 10 days. */
  const trusted = (i: number) => i % 10 === 3;
  const expiring = (i: number) => i % 10 === 7;
  const aliases = (filter: (i: number) => boolean) =>
    Array.from({ length: COUNT }, (_, i) => i)
      .filter(filter)
      .map(alias);

  before(async () => {
    api = await startApi();
    const [pki, soon] = await Promise.all([
      makeHierarchy({ hosts: ['paged.example.test'] }),
      makeHierarchy({ name: 'Soon', hosts: ['soon.example.test'], leafDays: 10 }),
    ]);
    for (let i = 0; i < COUNT; i++) {
      await importEntry(api.keystore.ctx, {
        alias: alias(i),
        files: [
          trusted(i) ? file('root.pem', pki.root.certPem) : bundleOf(expiring(i) ? soon : pki),
        ],
        principal: TEST_PRINCIPAL,
      });
    }
    auditor = await api.loginAs('auditor');
    all = (await api.keystore.ctx.store.listEntries()).map((e) => e.alias);
    assert.ok(all.length >= COUNT);
    assert.deepEqual(all, [...all].sort(), 'the store orders aliases as JavaScript does');
  });
  after(() => api.close());

  /** Follows the `Link` chain from `path`: each page's aliases and each `next` link. */
  async function walk(path: string): Promise<{ pages: string[][]; links: string[] }> {
    const pages: string[][] = [];
    const links: string[] = [];
    let next: string | undefined = path;
    while (next !== undefined) {
      assert.ok(pages.length <= COUNT, 'the Link chain ends');
      const res = await api.call('GET', next, { token: auditor });
      assert.equal(res.status, 200, res.text);
      const body = res.json();
      assert.ok(Array.isArray(body), 'the body is a JSON array of entries');
      pages.push(body.map((e: { alias: string }) => e.alias));
      const link = res.headers.link;
      if (link === undefined) break;
      const match = /^<(\/[^>]*)>; rel="next"$/.exec(String(link));
      assert.ok(match, `a relative RFC 8288 next link: ${link}`);
      next = match[1]!;
      links.push(next);
    }
    return { pages, links };
  }

  /** Asserts every page but the last holds `limit` entries, and the last 1 to `limit`. */
  function assertFull(pages: string[][], limit: number): void {
    for (const page of pages.slice(0, -1)) assert.equal(page.length, limit);
    const last = pages.at(-1)!.length;
    assert.ok(last >= 1 && last <= limit, `the last page holds ${last}`);
  }

  it('pages through every entry once, in order, 100 at a time by default', async () => {
    const { pages, links } = await walk('/api/v1/entries');
    assert.deepEqual(pages.flat(), all);
    assert.equal(pages.length, Math.ceil(all.length / 100));
    assertFull(pages, 100);
    assert.deepEqual(
      links,
      pages.slice(0, -1).map((p) => `/api/v1/entries?limit=100&after=${p.at(-1)}`),
    );
  });

  it('pages through every entry once, in order, with limit=7', async () => {
    const { pages, links } = await walk('/api/v1/entries?limit=7');
    assert.deepEqual(pages.flat(), all);
    assert.equal(pages.length, Math.ceil(all.length / 7));
    assertFull(pages, 7);
    for (const link of links) assert.match(link, /^\/api\/v1\/entries\?limit=7&after=/);
  });

  it('filters before paging, and keeps the filters in the next link', async () => {
    const trustedPages = await walk('/api/v1/entries?kind=trusted&limit=7');
    assert.deepEqual(trustedPages.pages.flat(), aliases(trusted));
    assertFull(trustedPages.pages, 7);
    for (const link of trustedPages.links) assert.match(link, /[?&]kind=trusted&limit=7&after=/);

    const soonPages = await walk('/api/v1/entries?status=expiring&expiringWithinDays=30&limit=4');
    assert.deepEqual(soonPages.pages.flat(), aliases(expiring));
    assertFull(soonPages.pages, 4);
    for (const link of soonPages.links) {
      assert.match(link, /\?status=expiring&expiringWithinDays=30&limit=4&after=p-\d{3}$/);
    }

    const both = await walk('/api/v1/entries?limit=9&status=valid&kind=key-pair');
    assert.deepEqual(
      both.pages.flat(),
      aliases((i) => !trusted(i) && !expiring(i)),
    );
    assertFull(both.pages, 9);
    for (const link of both.links) assert.match(link, /\?kind=key-pair&status=valid&limit=9&/);
  });

  it('has no Link on the last page, even when it is full', async () => {
    const count = aliases(trusted).length;
    const exact = await api.call('GET', `/api/v1/entries?kind=trusted&limit=${count}`, {
      token: auditor,
    });
    assert.equal(exact.json().length, count);
    assert.equal(exact.headers.link, undefined);
    const one = await api.call('GET', `/api/v1/entries?kind=trusted&limit=${count - 1}`, {
      token: auditor,
    });
    assert.equal(one.json().length, count - 1);
    assert.ok(one.headers.link, 'one more follows');
    // The last expiring entry is followed by entries, none of which is expiring.
    const soon = aliases(expiring);
    const full = await api.call('GET', `/api/v1/entries?status=expiring&limit=${soon.length}`, {
      token: auditor,
    });
    assert.equal(full.json().at(-1).alias, soon.at(-1));
    assert.ok(all.at(-1)! > soon.at(-1)!, 'entries follow the last match');
    assert.equal(full.headers.link, undefined);
    const after = await api.call('GET', `/api/v1/entries?status=expiring&after=${alias(100)}`, {
      token: auditor,
    });
    assert.equal(after.json().at(-1).alias, soon.at(-1));
    assert.equal(after.headers.link, undefined);
  });

  it('starts after an alias that is no entry where it would sort', async () => {
    const res = await api.call('GET', `/api/v1/entries?limit=3&after=${alias(105)}.5`, {
      token: auditor,
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      res.json().map((e: { alias: string }) => e.alias),
      [alias(106), alias(107), alias(108)],
    );
    assert.equal(res.headers.link, `</api/v1/entries?limit=3&after=${alias(108)}>; rel="next"`);
    const past = await api.call('GET', '/api/v1/entries?after=zzz', { token: auditor });
    assert.deepEqual(past.json(), []);
    assert.equal(past.headers.link, undefined);
  });

  it('refuses a limit out of 1..1000, not an integer, or an empty after: 400 InvalidQuery', async () => {
    for (const query of ['limit=0', 'limit=1001', 'limit=abc', 'limit=1.5', 'after=']) {
      for (const path of ['/api/v1/entries', '/api/v1/truststore']) {
        const res = await api.call('GET', `${path}?${query}`, { token: auditor });
        assert.equal(res.status, 400, `${path}?${query}`);
        assert.equal(res.json().code, 'InvalidQuery', `${path}?${query}`);
      }
    }
    const most = await api.call('GET', '/api/v1/entries?limit=1000', { token: auditor });
    assert.deepEqual(
      most.json().map((e: { alias: string }) => e.alias),
      all,
    );
    assert.equal(most.headers.link, undefined);
  });

  it('pages the truststore the same way', async () => {
    const { pages, links } = await walk('/api/v1/truststore?limit=6');
    assert.deepEqual(pages.flat(), aliases(trusted));
    assertFull(pages, 6);
    assert.ok(links.length > 0);
    for (const link of links) assert.match(link, /^\/api\/v1\/truststore\?limit=6&after=p-\d{3}$/);
    const first = await walk('/api/v1/truststore');
    assert.deepEqual(first.pages, [aliases(trusted)]);
  });

  it('documents the Link header of both listings', async () => {
    const document = (await api.call('GET', '/api/openapi.json')).json();
    for (const path of ['/api/v1/entries', '/api/v1/truststore']) {
      const ok = document.paths[path].get.responses['200'];
      assert.equal(ok.headers?.Link?.schema?.type, 'string', path);
      assert.match(ok.headers.Link.description, /rel="next"/);
      const names = document.paths[path].get.parameters.map((p: { name: string }) => p.name);
      assert.ok(names.includes('limit') && names.includes('after'), path);
    }
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
    assert.equal(res.json().code, 'InvalidQuery');
    for (const query of ['limit=abc', 'before=0']) {
      const bad = await api.call('GET', `/api/v1/audit?${query}`, { token: admin });
      assert.equal(bad.status, 400, query);
      assert.equal(bad.json().code, 'InvalidQuery', query);
    }
  });
});
