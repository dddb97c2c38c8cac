import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { DATA_POLICY } from '../../src/api/security-headers.js';
import { type ApiAnswer, startApi, type TestApi } from '../support/api.js';

/** Sends raw bytes over TLS and reads the whole answer until the server closes. */
async function raw(api: TestApi, bytes: string): Promise<string> {
  const url = new URL(api.origin);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      // The certificate is not what these tests are about; undici's calls check it.
      rejectUnauthorized: false,
    });
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.once('secureConnect', () => socket.write(bytes));
  });
}

/** The status, headers (lower-cased) and parsed body of a raw HTTP answer. */
function parse(answer: string) {
  const [head, body] = [
    answer.slice(0, answer.indexOf('\r\n\r\n')),
    answer.slice(answer.indexOf('\r\n\r\n') + 4),
  ];
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((l) => [
      l.slice(0, l.indexOf(':')).toLowerCase(),
      l.slice(l.indexOf(':') + 1).trim(),
    ]),
  );
  return {
    status: Number(statusLine!.split(' ')[1]),
    headers,
    body: body ? JSON.parse(body) : undefined,
  };
}

function assertSecurityHeaders(headers: Record<string, unknown>) {
  assert.match(String(headers['strict-transport-security']), /max-age=\d+/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.match(String(headers['content-security-policy']), /frame-ancestors 'none'/);
}

function assertProblem(res: ApiAnswer, status: number, code: string) {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.equal(body.type, `urn:certkeeper:problem:${code}`);
  assert.ok(typeof body.detail === 'string' && body.detail.length > 0);
  assertSecurityHeaders(res.headers);
}

describe('HTTP errors are problem+json with the security headers', () => {
  let api: TestApi;
  before(async () => {
    api = await startApi({
      serverOptions: {
        headersTimeout: 500,
        requestTimeout: 1000,
        connectionsCheckingInterval: 100,
      },
    });
  });
  after(() => api.close());

  it('answers an unknown path with 404 NotFound', async () => {
    assertProblem(await api.call('GET', '/api/v1/nothing-here'), 404, 'NotFound');
  });

  it('answers a wrong method on an existing path with 405 and Allow', async () => {
    const res = await api.call('PATCH', '/api/v1/server/tls');
    assertProblem(res, 405, 'MethodNotAllowed');
    assert.equal(res.headers.allow, 'GET, HEAD, PUT, OPTIONS');
    const post = await api.call('PUT', '/api/v1/auth/session');
    assertProblem(post, 405, 'MethodNotAllowed');
    assert.equal(post.headers.allow, 'GET, HEAD, POST, DELETE, OPTIONS');
  });

  it('answers OPTIONS with 204 and Allow', async () => {
    const res = await api.call('OPTIONS', '/api/v1/tokens');
    assert.equal(res.status, 204);
    assert.equal(res.headers.allow, 'GET, HEAD, POST, OPTIONS');
  });

  it('answers a body of another media type with 415', async () => {
    const res = await api.call('POST', '/api/v1/auth/session', {
      body: 'admin:secret',
      headers: { 'content-type': 'text/plain' },
    });
    assertProblem(res, 415, 'UnsupportedMediaType');
    assert.match(res.json().detail, /\(text\/plain\) is not accepted here: send application\/json/);
  });

  it('answers a body over 1 MiB with 413', async () => {
    const res = await api.call('POST', '/api/v1/auth/session', {
      body: JSON.stringify({ username: 'x', password: 'y'.repeat(1 << 20) }),
      headers: { 'content-type': 'application/json' },
    });
    assertProblem(res, 413, 'PayloadTooLarge');
  });

  it('answers malformed JSON and a body against the schema with 400', async () => {
    const bad = await api.call('POST', '/api/v1/auth/session', {
      body: '{"username": ',
      headers: { 'content-type': 'application/json' },
    });
    assertProblem(bad, 400, 'BadRequest');
    const missing = await api.call('POST', '/api/v1/auth/session', { json: { username: 'a' } });
    assertProblem(missing, 400, 'BadRequest');
    assert.match(missing.json().detail, /password/);
  });

  it('refuses a body of the wrong JSON type or with a field the route does not take, converting and dropping nothing', async () => {
    const typed = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 123, password: 'a password' },
    });
    assertProblem(typed, 400, 'BadRequest');
    assert.equal(typed.json().detail, 'body/username must be string');
    const listed = await api.call('POST', '/api/v1/auth/session', {
      json: { username: ['admin'], password: 'a password' },
    });
    assertProblem(listed, 400, 'BadRequest');
    const extra = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'admin', password: 'a password', remember: true },
    });
    assertProblem(extra, 400, 'BadRequest');
    assert.equal(extra.json().detail, 'body has a field "remember" this route does not take');
    const token = await api.loginAs('operator');
    // A misspelt subject field is named, not dropped (a CSR without its CN).
    const typo = await api.call('POST', '/api/v1/csrs', {
      token,
      json: {
        alias: 'typo',
        subject: { cn: 'typo.example' },
        sans: ['DNS:typo.example'],
        keyType: 'ec-p256',
      },
    });
    assertProblem(typo, 400, 'BadRequest');
    assert.match(typo.json().detail, /^body\/subject has a field "cn"/);
    assert.equal((await api.call('GET', '/api/v1/csrs/typo', { token })).status, 404);
    const query = await api.call('GET', '/api/v1/entries?color=blue', { token });
    assertProblem(query, 400, 'InvalidQuery');
    assert.match(query.json().detail, /"color"/);
  });

  it('takes path parameters as long as a host name, and answers a longer one with 400', async () => {
    const token = await api.loginAs('operator');
    const alias = 'a'.repeat(128);
    assertProblem(
      await api.call('GET', `/api/v1/entries/${alias}`, { token }),
      404,
      'AliasNotFound',
    );
    const host = `${'h'.repeat(60)}.${'o'.repeat(60)}.${'s'.repeat(60)}.example.com`;
    assertProblem(
      await api.call('DELETE', `/api/v1/bindings/${host}`, { token }),
      404,
      'BindingNotFound',
    );
    const tooLong = await api.call('GET', `/api/v1/entries/${'a'.repeat(300)}`, { token });
    assertProblem(tooLong, 400, 'BadRequest');
    assert.match(tooLong.json().detail, /longer than 256 characters/);
  });

  it('answers what the HTTP parser rejects as problem+json with HSTS', async () => {
    const cases: [string, number, string][] = [
      ['FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'MethodNotImplemented'],
      ['GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 400, 'BadRequest'],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400, 'BadRequest'],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HeadersTooLarge'],
      ['GET /healthz HTTP/1.1\r\n\r\n', 400, 'BadRequest'],
    ];
    for (const [request, status, code] of cases) {
      const answer = parse(await raw(api, request));
      assert.equal(
        answer.status,
        status,
        `${JSON.stringify(request.slice(0, 40))} → ${answer.status}`,
      );
      assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
      assert.equal(answer.body.code, code);
      assert.equal(answer.body.status, status);
      assertSecurityHeaders(answer.headers);
      assert.equal(answer.headers['content-security-policy'], DATA_POLICY, 'as a route answers');
    }
  });

  it('answers headers that never finish with 408 RequestTimeout', async () => {
    const answer = parse(await raw(api, 'GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    assert.equal(answer.status, 408);
    assert.equal(answer.body.code, 'RequestTimeout');
    assert.equal(answer.body.detail, 'The request headers did not arrive in time.');
    assertSecurityHeaders(answer.headers);
  });

  it('gives a successful data answer the security headers and no-store', async () => {
    const res = await api.call('GET', '/healthz');
    assert.equal(res.status, 200);
    assertSecurityHeaders(res.headers);
    assert.equal(res.headers['cache-control'], 'no-store');
  });
});
