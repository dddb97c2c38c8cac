import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApi, type TestApi } from '../support/api.js';

describe('API: users', () => {
  let api: TestApi;
  let admin: string;
  before(async () => {
    api = await startApi();
    admin = await api.loginAs('admin', 'boss');
  });
  after(() => api.close());

  it('creates a user with a one-time password that must be changed, sets and removes', async () => {
    const created = await api.call('POST', '/api/v1/users', {
      token: admin,
      json: { username: 'carol', role: 'operator' },
    });
    assert.equal(created.status, 201, created.text);
    const { oneTimePassword, mustChangePassword } = created.json();
    assert.equal(mustChangePassword, true);
    assert.ok(oneTimePassword.length >= 12);
    const listed = await api.call('GET', '/api/v1/users', { token: admin });
    assert.ok(listed.json().some((u: { username: string }) => u.username === 'carol'));
    assert.doesNotMatch(listed.text, /scrypt|hash/i);

    const again = await api.call('POST', '/api/v1/users', {
      token: admin,
      json: { username: 'carol', role: 'auditor', password: 'long enough passphrase' },
    });
    assert.equal(again.status, 409);
    assert.equal(again.json().code, 'UserExists');

    const set = await api.call('PUT', '/api/v1/users/carol/password', {
      token: admin,
      json: { password: 'an admin-set passphrase' },
    });
    assert.equal(set.status, 200, set.text);
    const login = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'carol', password: 'an admin-set passphrase' },
    });
    assert.equal(login.status, 201);

    const removed = await api.call('DELETE', '/api/v1/users/carol', { token: admin });
    assert.equal(removed.status, 200);
    const gone = await api.call('GET', '/api/v1/auth/session', { token: login.json().token });
    assert.equal(gone.status, 401, "the removed user's session ended");
  });

  it('never removes the last admin', async () => {
    const res = await api.call('DELETE', '/api/v1/users/boss', { token: admin });
    assert.equal(res.status, 409);
    assert.equal(res.json().code, 'LastAdmin');
  });
});
