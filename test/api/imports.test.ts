import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FormData } from 'undici';
import { startApi, type TestApi } from '../support/api.js';
import { makeMultiKeyKeystore } from '../support/keystore.js';
import { makeHierarchy } from '../support/pki.js';
import { needsCorpus, PYCA, tempDir, tool } from '../support/tools.js';

/** A multipart body of `file` parts (and fields), as undici sends it. */
async function multipart(
  files: [string, string | Uint8Array][],
  fields: Record<string, string> = {},
): Promise<{ body: Uint8Array; headers: Record<string, string> }> {
  const form = new FormData();
  for (const [name, content] of files) form.append('file', new Blob([content]), name);
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = new Response(form);
  const body = Buffer.from(await response.arrayBuffer());
  return { body, headers: { 'content-type': response.headers.get('content-type')! } };
}

describe('API: importing entries', () => {
  let api: TestApi;
  let operator: string;
  let pki: Awaited<ReturnType<typeof makeHierarchy>>;
  before(async () => {
    api = await startApi();
    operator = await api.loginAs('operator');
    pki = await makeHierarchy({ hosts: ['shop.example'] });
  });
  after(() => api.close());

  /** PUT with a multipart body built from files. */
  const putFiles = async (
    alias: string,
    files: [string, string | Uint8Array][],
    fields = {},
    headers = {},
  ) => {
    const form = await multipart(files, fields);
    return api.call('PUT', `/api/v1/entries/${alias}`, {
      token: operator,
      body: form.body,
      headers: { ...form.headers, ...headers },
    });
  };

  it('imports from JSON and answers the entry, its ETag and 201', async () => {
    const res = await api.call('PUT', '/api/v1/entries/json-one', {
      token: operator,
      json: {
        certificate: pki.leaf.certPem,
        privateKey: pki.leaf.keyPem,
        chain: [pki.intermediate.certPem],
      },
    });
    assert.equal(res.status, 201, res.text);
    const body = res.json();
    assert.equal(body.entry.certificate.fingerprints.sha256, pki.leaf.cert.sha256);
    assert.equal(body.entry.chain.length, 1);
    assert.equal(res.headers.etag, `"${body.entry.revision}"`);
    assert.doesNotMatch(res.text, /PRIVATE KEY/);
  });

  it('imports multipart files in any order, key first, and a PKCS#12 with its password', async () => {
    const res = await putFiles('multi', [
      ['key.pem', pki.leaf.keyPem],
      ['chain.pem', pki.intermediate.certPem],
      ['cert.pem', pki.leaf.certPem],
    ]);
    assert.equal(res.status, 201, res.text);
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(
        join(dir, 'in.pem'),
        pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem,
      );
      await tool('openssl', [
        'pkcs12',
        '-export',
        '-passout',
        'pass:secret words',
        '-in',
        join(dir, 'in.pem'),
        '-out',
        join(dir, 'b.p12'),
      ]);
      const p12 = readFileSync(join(dir, 'b.p12'));
      const wrong = await putFiles('p12', [['b.p12', p12]], { password: 'not it' });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.json().code, 'WrongPassword');
      const right = await putFiles('p12', [['b.p12', p12]], { password: 'secret words' });
      assert.equal(right.status, 201, right.text);
      assert.equal(right.json().entry.certificate.fingerprints.sha256, pki.leaf.cert.sha256);
      const viaJson = await api.call('PUT', '/api/v1/entries/p12-json', {
        token: operator,
        json: { pkcs12: p12.toString('base64'), password: 'secret words' },
      });
      assert.equal(viaJson.status, 201, viaJson.text);
    } finally {
      cleanup();
    }
  });

  it('takes one key entry of a keystore with several, by its alias', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const keystore = await makeMultiKeyKeystore(dir);
      const bytes = readFileSync(keystore.path);
      const none = await putFiles('ks', [['keystore.p12', bytes]], { password: keystore.password });
      assert.equal(none.status, 422);
      assert.equal(none.json().code, 'KeyAliasRequired');
      for (const { alias } of keystore.entries) assert.match(none.json().detail, new RegExp(alias));
      const unknown = await putFiles('ks', [['keystore.p12', bytes]], {
        password: keystore.password,
        keyAlias: 'nope',
      });
      assert.equal(unknown.json().code, 'KeyAliasNotFound');
      const chosen = keystore.entries[0]!;
      const res = await putFiles('ks', [['keystore.p12', bytes]], {
        password: keystore.password,
        keyAlias: chosen.alias,
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json().entry.certificate.subject.rfc4514, chosen.subject);
    } finally {
      cleanup();
    }
  });

  it('creates only with If-None-Match: *, replaces only the ETag it names', async () => {
    const created = await putFiles('guarded', [
      ['b.pem', pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem],
    ]);
    assert.equal(created.status, 201);
    const tag = String(created.headers.etag);
    const again = await putFiles(
      'guarded',
      [['b.pem', pki.leaf.certPem + pki.leaf.keyPem]],
      {},
      { 'if-none-match': '*' },
    );
    assert.equal(again.status, 409);
    assert.equal(again.json().code, 'AliasInUse');
    const revision = await api.keystore.ctx.store.revision();
    const stale = await putFiles(
      'guarded',
      [['b.pem', pki.leaf.certPem + pki.leaf.keyPem]],
      {},
      { 'if-match': '"1"' },
    );
    assert.equal(stale.status, 412);
    assert.equal(await api.keystore.ctx.store.revision(), revision, 'a 412 changes nothing');
    const replaced = await putFiles(
      'guarded',
      [['b.pem', pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem]],
      {},
      { 'if-match': tag },
    );
    assert.equal(replaced.status, 200, replaced.text);
    assert.notEqual(replaced.headers.etag, tag);
  });

  it('races two replacements on one ETag: exactly one wins, the other gets 412', async () => {
    const created = await putFiles('raced', [
      ['b.pem', pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem],
    ]);
    const tag = String(created.headers.etag);
    const results = await Promise.all(
      [0, 1].map(() =>
        putFiles(
          'raced',
          [['b.pem', pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem]],
          {},
          { 'if-match': tag },
        ),
      ),
    );
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 412]);
  });

  it("refuses a key that is not the certificate's, changing nothing", async () => {
    const other = await makeHierarchy({ hosts: ['other.example'] });
    const revision = await api.keystore.ctx.store.revision();
    const res = await putFiles('mismatch', [
      ['c.pem', pki.leaf.certPem],
      ['k.pem', other.leaf.keyPem],
    ]);
    assert.equal(res.status, 422);
    assert.equal(res.json().code, 'KeyMismatch');
    assert.equal(await api.keystore.ctx.store.revision(), revision);
  });

  it('preflights an upload and changes nothing', async () => {
    const revision = await api.keystore.ctx.store.revision();
    const form = await multipart([['b.pem', pki.leaf.certPem + pki.leaf.keyPem]]);
    const res = await api.call('POST', '/api/v1/preflight', {
      token: operator,
      body: form.body,
      headers: form.headers,
    });
    assert.equal(res.status, 200, res.text);
    const body = res.json();
    assert.equal(body.action, 'import');
    assert.deepEqual(body.hostnames.dns, ['shop.example']);
    assert.ok(body.warnings.some((w: { code: string }) => w.code === 'ChainIncomplete'));
    assert.equal(await api.keystore.ctx.store.revision(), revision);
  });

  it('refuses an empty upload, another part name and a file over 1 MiB', async () => {
    const empty = await api.call('PUT', '/api/v1/entries/empty', { token: operator, json: {} });
    assert.equal(empty.json().code, 'EmptyUpload');
    const form = new FormData();
    form.append('certificate', new Blob([pki.leaf.certPem]), 'c.pem');
    const response = new Response(form);
    const wrongName = await api.call('PUT', '/api/v1/entries/wrong', {
      token: operator,
      body: Buffer.from(await response.arrayBuffer()),
      headers: { 'content-type': response.headers.get('content-type')! },
    });
    assert.equal(wrongName.status, 400);
    const big = await putFiles('big', [['big.pem', 'x'.repeat((1 << 20) + 10)]]);
    assert.equal(big.status, 413);
  });
});

describe('API: bad input never answers 5xx nor changes anything', () => {
  const skip = needsCorpus(PYCA);
  let api: TestApi;
  let operator: string;
  before(async () => {
    api = await startApi();
    operator = await api.loginAs('operator');
    const csr = await api.call('POST', '/api/v1/csrs', {
      token: operator,
      json: {
        alias: 'pending',
        subject: { CN: 'p.example' },
        sans: ['DNS:p.example'],
        keyType: 'ec-p256',
      },
    });
    assert.equal(csr.status, 201, csr.text);
  });
  after(() => api.close());

  /**
   * Sends `bytes` to import, preflight and CSR completion; a refusal must be 4xx and leave
   * the revision as it was.
   */
  async function probe(name: string, bytes: Uint8Array): Promise<number> {
    const form = await multipart([[name, bytes]], { password: 'cryptography' });
    const before = await api.keystore.ctx.store.revision();
    const put = await api.call('PUT', '/api/v1/entries/probe', {
      token: operator,
      body: form.body,
      headers: { ...form.headers, 'if-none-match': '*' },
    });
    assert.ok(put.status < 500, `${name}: import answered ${put.status} ${put.text}`);
    if (put.status >= 400) {
      assert.equal(
        await api.keystore.ctx.store.revision(),
        before,
        `${name}: a refusal changed nothing`,
      );
    } else {
      await api.call('DELETE', '/api/v1/entries/probe', { token: operator });
    }
    const pre = await api.call('POST', '/api/v1/preflight', {
      token: operator,
      body: form.body,
      headers: form.headers,
    });
    assert.ok(pre.status < 500, `${name}: preflight answered ${pre.status} ${pre.text}`);
    return put.status;
  }

  it('on truncated, bit-flipped and oversized inputs', async () => {
    const pki = await makeHierarchy({ hosts: ['bad.example'] });
    const good = Buffer.from(pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem);
    const der = pki.leaf.cert.der;
    const inputs: [string, Uint8Array][] = [];
    for (const cut of [1, 10, 100, der.length >> 1, der.length - 1])
      inputs.push([`der-cut-${cut}`, der.subarray(0, cut)]);
    for (const cut of [30, good.length >> 1, good.length - 40])
      inputs.push([`pem-cut-${cut}`, good.subarray(0, cut)]);
    for (let i = 0; i < 24; i++) {
      const flipped = Buffer.from(der);
      const at = (i * 7919) % flipped.length;
      flipped[at] = flipped[at]! ^ (1 << (i % 8));
      inputs.push([`der-flip-${at}`, flipped]);
    }
    inputs.push(
      ['zeros', Buffer.alloc(4096)],
      ['nested', Buffer.from(`${'0\x82\xff\xff'.repeat(200)}`, 'latin1')],
    );
    for (const [name, bytes] of inputs) await probe(name, bytes);
  });

  it('on every file of the pyca vectors', { skip }, async () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(path);
      }
    };
    for (const dir of ['asymmetric', 'pkcs12', 'pkcs7', 'x509']) walk(join(PYCA, dir));
    assert.ok(files.length > 1000, `the corpus has its files (${files.length})`);
    const statuses = new Map<number, number>();
    for (const file of files) {
      const status = await probe(file.slice(PYCA.length + 1), readFileSync(file));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    assert.ok(statuses.size > 1, `several outcomes: ${JSON.stringify([...statuses])}`);
  });
});
