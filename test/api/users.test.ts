import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { changeRole } from '../../src/service/change-role.js';
import { PASSWORD, startApi, type TestApi } from '../support/api.js';
import { TEST_PRINCIPAL } from '../support/principal.js';

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

  it('answers an unknown role with InvalidRole when creating a user or a token, as a role change does', async () => {
    for (const [path, json] of [
      ['/api/v1/users', { username: 'frank', role: 'root', password: 'long enough passphrase' }],
      ['/api/v1/tokens', { name: 'rooted', role: 'root' }],
    ] as const) {
      const res = await api.call('POST', path, { token: admin, json });
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      assert.equal(res.json().code, 'InvalidRole', path);
      assert.match(res.json().detail, /admin, operator, auditor/);
    }
    assert.equal(await api.keystore.ctx.store.getUser('frank'), undefined);
  });

  it("changes a user's role: privileges follow at once, a demoted admin's admin token and session no longer do an admin thing", async () => {
    const dana = await api.loginAs('admin', 'dana');
    const tokenOf = async (role: string) => {
      const res = await api.call('POST', '/api/v1/tokens', {
        token: dana,
        json: { name: `dana-${role}`, role },
      });
      assert.equal(res.status, 201, res.text);
      return res.json().token as string;
    };
    const adminToken = await tokenOf('admin');
    const operatorToken = await tokenOf('operator');
    const newUser = (token: string, username: string) =>
      api.call('POST', '/api/v1/users', {
        token,
        json: { username, role: 'auditor', password: 'long enough passphrase' },
      });
    assert.equal((await newUser(adminToken, 'before-demotion')).status, 201);

    const changed = await api.call('PUT', '/api/v1/users/dana/role', {
      token: admin,
      json: { role: 'operator' },
    });
    assert.equal(changed.status, 200, changed.text);
    const answer = changed.json();
    assert.deepEqual(
      { ...answer, revision: typeof answer.revision },
      {
        revision: 'number',
        role: 'operator',
        previousRole: 'admin',
        changed: true,
        tokensRevoked: 1,
        sessionsEnded: 1,
      },
    );
    for (const token of [adminToken, dana]) {
      const refused = await newUser(token, 'after-demotion');
      assert.equal(refused.status, 401, refused.text);
      assert.equal(refused.json().code, 'AuthenticationFailure');
    }
    const capped = await newUser(operatorToken, 'after-demotion');
    assert.equal(capped.status, 403);
    assert.equal(capped.json().code, 'Forbidden');
    assert.equal((await api.call('GET', '/api/v1/entries', { token: operatorToken })).status, 200);
    const relogin = await api.call('POST', '/api/v1/auth/session', {
      json: { username: 'dana', password: PASSWORD },
    });
    assert.equal(relogin.status, 201, 'the password is kept');
    assert.equal(relogin.json().role, 'operator');

    const again = await api.call('PUT', '/api/v1/users/dana/role', {
      token: admin,
      json: { role: 'operator' },
    });
    assert.equal(again.status, 200);
    assert.equal(again.json().changed, false);
    assert.equal(again.json().revision, answer.revision, 'no new revision');
    const listed = await api.call('GET', '/api/v1/users', { token: admin });
    assert.equal(
      listed.json().find((u: { username: string }) => u.username === 'dana').role,
      'operator',
    );
  });

  it('answers each error of a role change with its code', async () => {
    const refusals: [string, unknown, string | undefined, number, string][] = [
      ['nobody', { role: 'auditor' }, admin, 404, 'UserNotFound'],
      ['boss', { role: 'root' }, admin, 400, 'InvalidRole'],
      ['boss', { role: 'operator' }, admin, 409, 'LastAdmin'],
      ['boss', { role: 'operator' }, await api.loginAs('operator'), 403, 'Forbidden'],
      ['boss', { role: 'operator' }, undefined, 401, 'Unauthenticated'],
      ['boss', {}, admin, 400, 'BadRequest'],
    ];
    for (const [username, json, token, status, code] of refusals) {
      const res = await api.call('PUT', `/api/v1/users/${username}/role`, {
        json,
        ...(token === undefined ? {} : { token }),
      });
      assert.equal(res.status, status, `${code}: ${res.text}`);
      assert.equal(res.json().code, code);
    }
    const boss = (await api.keystore.ctx.store.getUser('boss'))!;
    assert.equal(boss.role, 'admin');

    // Another admin gives erin another role between the route's read and its commit: a
    // real second write at a chosen instant, the only way to make the race deterministic.
    await api.loginAs('admin', 'erin');
    const { ctx } = api.keystore;
    const listTokens = ctx.store.listTokens.bind(ctx.store);
    ctx.store.listTokens = async () => {
      ctx.store.listTokens = listTokens;
      await changeRole(ctx, { username: 'erin', role: 'auditor', principal: TEST_PRINCIPAL });
      return listTokens();
    };
    const raced = await api.call('PUT', '/api/v1/users/erin/role', {
      token: admin,
      json: { role: 'operator' },
    });
    assert.equal(raced.status, 412, raced.text);
    assert.equal(raced.json().code, 'RevisionConflict');
    assert.equal((await ctx.store.getUser('erin'))!.role, 'auditor');
  });

  it('never removes the last admin', async () => {
    const res = await api.call('DELETE', '/api/v1/users/boss', { token: admin });
    assert.equal(res.status, 409);
    assert.equal(res.json().code, 'LastAdmin');
  });
});
