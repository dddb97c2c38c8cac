import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApi, type TestApi } from '../support/api.js';
import { tempDir, tool } from '../support/tools.js';

describe('API: CSRs, export and the truststore', () => {
  let api: TestApi;
  let operator: string;
  let admin: string;
  const { dir, cleanup } = tempDir();
  const ca = { key: join(dir, 'ca.key'), cert: join(dir, 'ca.pem') };

  /** Signs `csrPem` with the test CA (openssl), as a CA would: the leaf certificate PEM. */
  async function sign(csrPem: string, name: string): Promise<string> {
    const csr = join(dir, `${name}.csr`);
    const out = join(dir, `${name}.pem`);
    const ext = join(dir, `${name}.ext`);
    writeFileSync(csr, csrPem);
    writeFileSync(
      ext,
      'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:app.example\n',
    );
    await tool('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      ext,
      '-out',
      out,
    ]);
    return readFileSync(out, 'utf8');
  }

  before(async () => {
    api = await startApi();
    operator = await api.loginAs('operator');
    admin = await api.loginAs('admin');
    await tool('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      ca.key,
      '-out',
      ca.cert,
      '-days',
      '90',
      '-subj',
      '/CN=Test Issuing CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  });
  after(async () => {
    await api.close();
    cleanup();
  });

  it('creates pending CSRs side by side, downloads them as PEM and DER, completes one', async () => {
    const create = (alias: string) =>
      api.call('POST', '/api/v1/csrs', {
        token: operator,
        json: {
          alias,
          subject: { CN: 'app.example', O: 'Example' },
          sans: ['DNS:app.example'],
          keyType: 'ec-p256',
        },
      });
    const first = await create('app-2026');
    assert.equal(first.status, 201, first.text);
    assert.equal(first.headers.location, '/api/v1/csrs/app-2026');
    assert.deepEqual(first.json().csr.sans.dns, ['app.example']);
    assert.equal((await create('app-spare')).status, 201);

    const pem = await api.call('GET', '/api/v1/csrs/app-2026', { token: operator });
    assert.equal(pem.status, 200);
    assert.match(pem.text, /^-----BEGIN CERTIFICATE REQUEST-----/);
    const der = await api.call('GET', '/api/v1/csrs/app-2026', {
      token: operator,
      headers: { accept: 'application/pkcs10' },
    });
    assert.equal(der.headers['content-type'], 'application/pkcs10');
    assert.doesNotMatch(der.text, /BEGIN/);

    const certificate = await sign(pem.text, 'app');
    const other = await sign(
      (await api.call('GET', '/api/v1/csrs/app-spare', { token: operator })).text,
      'spare',
    );
    const wrongKey = await api.call('POST', '/api/v1/csrs/app-2026/certificate', {
      token: operator,
      json: { certificate: other, chain: readFileSync(ca.cert, 'utf8') },
    });
    assert.equal(wrongKey.status, 422);
    assert.equal(wrongKey.json().code, 'KeyMismatch');
    const done = await api.call('POST', '/api/v1/csrs/app-2026/certificate', {
      token: operator,
      json: { certificate, chain: readFileSync(ca.cert, 'utf8') },
    });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json().entry.kind, 'key-pair');
    assert.equal(done.json().entry.hasPrivateKey, true);
    // The other CSR is still pending, untouched.
    const spare = await api.call('GET', '/api/v1/entries/app-spare', { token: operator });
    assert.equal(spare.json().kind, 'pending');
    const notPending = await api.call('GET', '/api/v1/csrs/app-2026', { token: operator });
    assert.equal(notPending.status, 409);
    assert.equal(notPending.json().code, 'EntryNotUsable');
  });

  it('refuses a bad key type and a bad SAN with their codes', async () => {
    const badKey = await api.call('POST', '/api/v1/csrs', {
      token: operator,
      json: {
        alias: 'x',
        subject: { CN: 'x.example' },
        sans: ['DNS:x.example'],
        keyType: 'dsa-1024',
      },
    });
    assert.equal(badKey.status, 400);
    assert.equal(badKey.json().code, 'InvalidKeyType');
    assert.match(badKey.json().detail, /rsa-2048, .*ed25519/);
    const badSan = await api.call('POST', '/api/v1/csrs', {
      token: operator,
      json: { alias: 'y', subject: { CN: 'y.example' }, sans: ['URL:nope'], keyType: 'ec-p256' },
    });
    assert.equal(badSan.status, 400);
    assert.equal(badSan.json().code, 'InvalidSubjectAltName');
  });

  it('exports a key pair as a PKCS#12 for an admin only, which openssl opens with the password', async () => {
    const forbidden = await api.call('POST', '/api/v1/entries/app-2026/export', {
      token: operator,
      json: { password: 'export passphrase' },
    });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.json().code, 'Forbidden');
    const { request } = await import('undici');
    const res = await request(`${api.origin}/api/v1/entries/app-2026/export`, {
      method: 'POST',
      dispatcher: api.agent,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'export passphrase' }),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/x-pkcs12');
    const p12 = join(dir, 'export.p12');
    writeFileSync(p12, Buffer.from(await res.body.arrayBuffer()));
    const info = await tool('openssl', [
      'pkcs12',
      '-in',
      p12,
      '-passin',
      'pass:export passphrase',
      '-nodes',
      '-nokeys',
    ]);
    assert.match(info, /subject=.*app\.example/);
    const audit = await api.keystore.ctx.store.listAudit({ limit: 5 });
    assert.ok(audit.some((r) => r.action === 'export-pkcs12' && r.target === 'app-2026'));
  });

  it('lists trusted CA certificates in the truststore', async () => {
    const imported = await api.call('PUT', '/api/v1/entries/test-ca', {
      token: operator,
      json: { certificate: readFileSync(ca.cert, 'utf8') },
    });
    assert.equal(imported.status, 201, imported.text);
    const list = await api.call('GET', '/api/v1/truststore', { token: operator });
    assert.deepEqual(
      list.json().map((e: { alias: string }) => e.alias),
      ['test-ca'],
    );
  });
});
