import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createUser } from '../../src/service/create-user.js';
import { PASSWORD, SERVING_LOCAL_CA, startApi, type TestApi } from '../support/api.js';
import { TEST_PRINCIPAL } from '../support/principal.js';

/** The `session_id` cookie of a login answer, as sent back (`session_id=…`). */
function sessionCookie(setCookie: string | string[] | undefined): string {
  const header = [setCookie ?? []].flat().find((c) => c.startsWith('session_id='));
  assert.ok(header, 'the login sets the session_id cookie');
  return header.split(';')[0]!;
}

describe('API authentication', () => {
  let api: TestApi;
  before(async () => {
    api = await startApi({ tlsStatus: () => SERVING_LOCAL_CA });
  });
  after(() => api.close());

  it('answers 401 Unauthenticated without credentials, also for GET /api/v1/server/tls', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/server/tls'],
      ['GET', '/api/v1/tokens'],
      ['GET', '/api/v1/auth/session'],
    ] as const) {
      const res = await api.call(method, path);
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.json().code, 'Unauthenticated');
    }
  });

  it('leaves the health routes, the CA certificate, the docs and the document public', async () => {
    assert.equal((await api.call('GET', '/healthz')).status, 200);
    assert.equal((await api.call('GET', '/readyz')).status, 200);
    assert.equal((await api.call('GET', '/api/openapi.json')).status, 200);
    const docs = await api.call('GET', '/api/docs/');
    assert.equal(docs.status, 200);
    assert.match(docs.text, /swagger/i);
    // No local CA in this keystore yet: a 404 problem, not a 401.
    assert.equal((await api.call('GET', '/ca/root.pem')).json().code, 'NotFound');
  });

  it('logs in with JSON or a form: a Secure, HttpOnly, SameSite=Strict cookie and a bearer token', async () => {
    await createUser(api.keystore.ctx, {
      username: 'alice',
      role: 'operator',
      password: PASSWORD,
      principal: TEST_PRINCIPAL,
    });
    const json = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'alice', password: PASSWORD },
    });
    assert.equal(json.status, 201);
    const body = json.json();
    assert.equal(body.user, 'alice');
    assert.equal(body.role, 'operator');
    assert.match(body.token, /^cks_/);
    assert.ok(Date.parse(body.expiresAt) > Date.now());
    const setCookie = [json.headers['set-cookie']].flat().join('\n');
    assert.match(setCookie, /session_id=cks_/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /Secure/);
    assert.match(setCookie, /SameSite=Strict/);

    const form = await api.call('POST', '/api/v1/auth/session', {
      body: new URLSearchParams({ username: 'alice', password: PASSWORD }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 201);

    const viaBearer = await api.call('GET', '/api/v1/auth/session', { token: body.token });
    assert.deepEqual(
      { user: viaBearer.json().user, role: viaBearer.json().role, via: viaBearer.json().via },
      { user: 'alice', role: 'operator', via: 'session' },
    );
    const viaCookie = await api.call('GET', '/api/v1/server/tls', {
      headers: { cookie: sessionCookie(form.headers['set-cookie']) },
    });
    assert.equal(viaCookie.status, 200);
    assert.equal(viaCookie.json().source, 'local-ca');
  });

  it('answers an unknown user and a wrong password alike', async () => {
    const wrong = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'alice', password: 'not the password at all' },
    });
    const unknown = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'nobody', password: 'not the password at all' },
    });
    for (const res of [wrong, unknown]) {
      assert.equal(res.status, 401);
      assert.equal(res.json().code, 'AuthenticationFailure');
    }
    const { requestId: _a, ...a } = wrong.json();
    const { requestId: _b, ...b } = unknown.json();
    assert.deepEqual(a, b);
  });

  it('limits failed logins per user: the right password is refused past the limit', async () => {
    await createUser(api.keystore.ctx, {
      username: 'mallory-target',
      role: 'auditor',
      password: PASSWORD,
      principal: TEST_PRINCIPAL,
    });
    const attempt = (password: string) =>
      api.call('POST', '/api/v1/auth/session', {
        json: { username: 'mallory-target', password },
      });
    for (let i = 0; i < 5; i++) assert.equal((await attempt(`guess number ${i}`)).status, 401);
    const limited = await attempt(PASSWORD);
    assert.equal(limited.status, 429);
    assert.equal(limited.json().code, 'TooManyAttempts');
    assert.ok(Number(limited.headers['retry-after']) > 0, 'says when to retry');
  });

  it('refuses a cookie-authenticated write without the same Origin or the CSRF header', async () => {
    const login = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'alice', password: PASSWORD },
    });
    const cookie = sessionCookie(login.headers['set-cookie']);
    const crossSite = await api.call('DELETE', '/api/v1/auth/session', {
      headers: { cookie, origin: 'https://evil.example' },
    });
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.json().code, 'CrossSiteRequest');
    const noOrigin = await api.call('DELETE', '/api/v1/auth/session', { headers: { cookie } });
    assert.equal(noOrigin.json().code, 'CrossSiteRequest');
    // Still logged in: the refused logout changed nothing.
    assert.equal(
      (await api.call('GET', '/api/v1/auth/session', { headers: { cookie } })).status,
      200,
    );
    const sameOrigin = await api.call('DELETE', '/api/v1/auth/session', {
      headers: { cookie, origin: api.origin },
    });
    assert.equal(sameOrigin.status, 204);
    assert.match([sameOrigin.headers['set-cookie']].flat().join(), /session_id=;/);
    const after = await api.call('GET', '/api/v1/auth/session', { headers: { cookie } });
    assert.equal(after.status, 401);
    assert.equal(after.json().code, 'AuthenticationFailure');
  });

  it('logs out a bearer session; the token stops working', async () => {
    const token = await api.loginAs('auditor');
    assert.equal((await api.call('DELETE', '/api/v1/auth/session', { token })).status, 204);
    assert.equal((await api.call('GET', '/api/v1/auth/session', { token })).status, 401);
  });

  it('holds a user with a generated password to changing it first', async () => {
    const created = await createUser(api.keystore.ctx, {
      username: 'newbie',
      role: 'operator',
      principal: TEST_PRINCIPAL,
    });
    const login = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'newbie', password: created.oneTimePassword },
    });
    assert.equal(login.json().mustChangePassword, true);
    const token = login.json().token;
    const held = await api.call('GET', '/api/v1/server/tls', { token });
    assert.equal(held.status, 403);
    assert.equal(held.json().code, 'PasswordChangeRequired');
    const wrong = await api.call('POST', '/api/v1/auth/password', {
      token,
      json: { currentPassword: 'not it at all, no', newPassword: 'a brand new passphrase' },
    });
    assert.equal(wrong.json().code, 'CurrentPasswordWrong');
    const changed = await api.call('POST', '/api/v1/auth/password', {
      token,
      json: { currentPassword: created.oneTimePassword, newPassword: 'a brand new passphrase' },
    });
    assert.equal(changed.status, 200, changed.text);
    assert.equal((await api.call('GET', '/api/v1/server/tls', { token })).status, 200);
  });
});

describe('API tokens', () => {
  let api: TestApi;
  before(async () => {
    api = await startApi({ tlsStatus: () => SERVING_LOCAL_CA });
  });
  after(() => api.close());

  it('creates a token shown once, which then authenticates, lists without its secret and revokes', async () => {
    const session = await api.loginAs('operator', 'olga');
    const created = await api.call('POST', '/api/v1/tokens', {
      token: session,
      json: { name: 'deploy-script', role: 'auditor', expiresInDays: 30 },
    });
    assert.equal(created.status, 201, created.text);
    const { token, id } = created.json();
    assert.match(token, /^ckt_/);
    const me = await api.call('GET', '/api/v1/auth/session', { token });
    assert.deepEqual(
      { user: me.json().user, role: me.json().role, via: me.json().via },
      { user: 'olga', role: 'auditor', via: 'token' },
    );
    const list = await api.call('GET', '/api/v1/tokens', { token: session });
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json().map((t: { id: string }) => t.id),
      [id],
    );
    assert.ok(!list.text.includes(token.slice(-20)), 'the list never holds the secret');
    assert.equal(
      (await api.call('DELETE', `/api/v1/tokens/${id}`, { token: session })).status,
      204,
    );
    const revoked = await api.call('GET', '/api/v1/auth/session', { token });
    assert.equal(revoked.status, 401);
    assert.equal(revoked.json().code, 'AuthenticationFailure');
  });

  it('never makes a token that outranks its creator', async () => {
    const session = await api.loginAs('operator');
    const res = await api.call('POST', '/api/v1/tokens', {
      token: session,
      json: { name: 'escalate', role: 'admin' },
    });
    assert.equal(res.status, 403);
    assert.equal(res.json().code, 'RoleTooHigh');
  });

  it("shows others their own tokens only, and an admin everyone's", async () => {
    const mine = await api.loginAs('auditor', 'ana');
    const admin = await api.loginAs('admin', 'root-ish');
    await api.call('POST', '/api/v1/tokens', { token: mine, json: { name: 'a', role: 'auditor' } });
    await api.call('POST', '/api/v1/tokens', { token: admin, json: { name: 'b', role: 'admin' } });
    const users = (res: { json(): { username: string }[] }) =>
      [...new Set(res.json().map((t) => t.username))].sort();
    assert.deepEqual(users(await api.call('GET', '/api/v1/tokens', { token: mine })), ['ana']);
    assert.ok(users(await api.call('GET', '/api/v1/tokens', { token: admin })).includes('ana'));
    const other = await api.call('POST', '/api/v1/tokens', {
      token: mine,
      json: { name: 'for-someone-else', role: 'auditor', username: 'root-ish' },
    });
    assert.equal(other.status, 403);
    assert.equal(other.json().code, 'Forbidden');
  });

  it("does not let an API token change its user's password", async () => {
    const session = await api.loginAs('operator', 'tess');
    const { token } = (
      await api.call('POST', '/api/v1/tokens', {
        token: session,
        json: { name: 't', role: 'operator' },
      })
    ).json();
    const res = await api.call('POST', '/api/v1/auth/password', {
      token,
      json: { currentPassword: PASSWORD, newPassword: 'another long passphrase' },
    });
    assert.equal(res.status, 403);
    assert.equal(res.json().code, 'Forbidden');
  });

  it('answers an unknown token id with 404 TokenNotFound', async () => {
    const session = await api.loginAs('admin');
    const res = await api.call('DELETE', '/api/v1/tokens/nope', { token: session });
    assert.equal(res.status, 404);
    assert.equal(res.json().code, 'TokenNotFound');
  });
});
