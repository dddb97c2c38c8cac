import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { CodedError } from '../../src/core/errors.js';
import { authenticateSession } from '../../src/service/authenticate-session.js';
import { authenticateToken } from '../../src/service/authenticate-token.js';
import { changePassword } from '../../src/service/change-password.js';
import { changeRole } from '../../src/service/change-role.js';
import { createToken } from '../../src/service/create-token.js';
import { createUser } from '../../src/service/create-user.js';
import { listUsers } from '../../src/service/list-users.js';
import { login } from '../../src/service/login.js';
import type { Principal } from '../../src/service/principal.js';
import { removeUser } from '../../src/service/remove-user.js';
import type { UserRole } from '../../src/service/roles.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { refusesWithoutWriting, type TestKeystore, testKeystore } from '../support/service.js';

const as = (actor: string, role: Principal['role']): Principal => ({ actor, role, source: 'test' });
const passwordOf = (username: string) => `${username} secret passphrase`;

async function addUsers(k: TestKeystore, users: [string, UserRole][]): Promise<void> {
  for (const [username, role] of users) {
    await createUser(k.ctx, {
      username,
      role,
      password: passwordOf(username),
      principal: TEST_PRINCIPAL,
    });
  }
}

describe('changing a role', () => {
  let k: TestKeystore;
  const tokenFor = async (username: string, role: UserRole) =>
    (
      await createToken(k.ctx, {
        name: `${username}-${role}`,
        role,
        username,
        principal: TEST_PRINCIPAL,
      })
    ).token;
  const authenticate = (token: string) => authenticateToken(k.ctx, { token, source: 'test' });
  const logsIn = (username: string) =>
    login(k.ctx, { username, password: passwordOf(username), source: 'test' });

  before(async () => {
    k = await testKeystore();
    await addUsers(k, [
      ['alice', 'admin'],
      ['bob', 'admin'],
      ['olga', 'operator'],
    ]);
  });
  after(() => k.cleanup());

  it('demotes an admin as one audited change, keeping the password, revoking the tokens above the new role and ending the sessions', async () => {
    const adminToken = await tokenFor('bob', 'admin');
    const operatorToken = await tokenFor('bob', 'operator');
    const auditorToken = await tokenFor('bob', 'auditor');
    const olgasToken = await tokenFor('olga', 'operator');
    const session = await logsIn('bob');
    const hashBefore = (await k.ctx.store.getUser('bob'))!.passwordHash;
    const before = await k.ctx.store.revision();

    const r = await changeRole(k.ctx, {
      username: 'bob',
      role: 'operator',
      principal: as('alice', 'admin'),
    });
    assert.deepEqual(r, {
      revision: before + 1,
      role: 'operator',
      previousRole: 'admin',
      changed: true,
      tokensRevoked: 1,
      sessionsEnded: 1,
    });
    const bob = (await k.ctx.store.getUser('bob'))!;
    assert.equal(bob.role, 'operator');
    assert.equal(bob.passwordHash, hashBefore, 'the password hash is untouched');
    assert.equal(bob.updatedRevision, before + 1);

    // The admin token is gone; the ones the new role covers still work, capped at it.
    await assert.rejects(authenticate(adminToken), { code: 'AuthenticationFailure' });
    assert.equal((await authenticate(operatorToken)).principal.role, 'operator');
    assert.equal((await authenticate(auditorToken)).principal.role, 'auditor');
    assert.equal((await authenticate(olgasToken)).principal.role, 'operator');
    await assert.rejects(
      authenticateSession(k.ctx, { token: session.sessionToken, source: 'test' }),
      { code: 'AuthenticationFailure' },
    );
    // A new login works with the same password, under the new role.
    assert.equal((await logsIn('bob')).role, 'operator');

    const audit = (await k.ctx.store.listAudit()).find((a) => a.revision === before + 1);
    assert.equal(audit!.revision, before + 1);
    assert.equal(audit!.action, 'change-role');
    assert.equal(audit!.target, 'user:bob');
    assert.equal(audit!.actor, 'alice');
    assert.equal(audit!.details.from, 'admin');
    assert.equal(audit!.details.to, 'operator');
    assert.equal(audit!.details.tokensRevoked, 1);
    assert.equal((audit!.details.revokedTokens as string[]).length, 1);
    assert.doesNotMatch(JSON.stringify(audit), /scrypt|passphrase/);
  });

  it('promotes without revoking anything, and a later demotion does not resurrect a revoked token', async () => {
    const r = await changeRole(k.ctx, {
      username: 'olga',
      role: 'admin',
      principal: TEST_PRINCIPAL,
    });
    assert.equal(r.changed, true);
    assert.equal(r.previousRole, 'operator');
    assert.equal(r.tokensRevoked, 0);
    const token = await tokenFor('olga', 'admin');
    assert.equal((await authenticate(token)).principal.role, 'admin');
    await changeRole(k.ctx, { username: 'olga', role: 'auditor', principal: TEST_PRINCIPAL });
    await changeRole(k.ctx, { username: 'olga', role: 'admin', principal: TEST_PRINCIPAL });
    await assert.rejects(authenticate(token), { code: 'AuthenticationFailure' });
  });

  it('answers the same role without writing: no revision, no audit record, no session ended', async () => {
    await logsIn('olga');
    const before = await k.ctx.store.revision();
    const audit = (await k.ctx.store.listAudit()).length;
    const r = await changeRole(k.ctx, {
      username: 'olga',
      role: 'admin',
      principal: as('alice', 'admin'),
    });
    assert.deepEqual(r, {
      revision: before,
      role: 'admin',
      previousRole: 'admin',
      changed: false,
      tokensRevoked: 0,
      sessionsEnded: 0,
    });
    assert.equal(await k.ctx.store.revision(), before);
    assert.equal((await k.ctx.store.listAudit()).length, audit);
    assert.equal(await k.ctx.store.deleteUserSessions('olga'), 1, 'the session was kept');
  });

  it('refuses a principal who is not an admin, an unknown user or role, and a stale revision, without writing', async () => {
    const change = (input: Record<string, unknown>) => () =>
      changeRole(k.ctx, {
        username: 'olga',
        role: 'operator',
        principal: TEST_PRINCIPAL,
        ...input,
      } as never);
    await refusesWithoutWriting(k.ctx, change({ principal: as('bob', 'operator') }), 'Forbidden');
    await refusesWithoutWriting(k.ctx, change({ principal: as('x', 'auditor') }), 'Forbidden');
    await refusesWithoutWriting(k.ctx, change({ username: 'nobody' }), 'UserNotFound');
    await refusesWithoutWriting(k.ctx, change({ role: 'root' }), 'InvalidRole');
    await refusesWithoutWriting(k.ctx, change({ role: 'system' }), 'InvalidRole');
    const current = await k.ctx.store.revision();
    await refusesWithoutWriting(
      k.ctx,
      change({ expectedRevision: current - 1 }),
      'RevisionConflict',
    );
    await refusesWithoutWriting(
      k.ctx,
      change({ role: 'admin', expectedRevision: current - 1 }),
      'RevisionConflict',
    );
    const r = await changeRole(k.ctx, {
      username: 'olga',
      role: 'operator',
      principal: TEST_PRINCIPAL,
      expectedRevision: current,
    });
    assert.equal(r.revision, current + 1);
  });

  it('never demotes the last admin (LastAdmin), itself included', async () => {
    assert.deepEqual(
      (await listUsers(k.ctx)).filter((u) => u.role === 'admin').map((u) => u.username),
      ['alice'],
    );
    for (const role of ['operator', 'auditor'] as const) {
      const err = await refusesWithoutWriting(
        k.ctx,
        () => changeRole(k.ctx, { username: 'alice', role, principal: as('alice', 'admin') }),
        'LastAdmin',
      );
      assert.match(err.message, /"alice" is the last admin and cannot be demoted/);
    }
    // With another admin, an admin may step down.
    await changeRole(k.ctx, { username: 'bob', role: 'admin', principal: as('alice', 'admin') });
    const r = await changeRole(k.ctx, {
      username: 'alice',
      role: 'auditor',
      principal: as('alice', 'admin'),
    });
    assert.equal(r.changed, true);
    assert.equal((await k.ctx.store.getUser('alice'))!.role, 'auditor');
  });
});

describe('changing a role while another admin acts at once', () => {
  let k: TestKeystore;
  beforeEach(async () => {
    k = await testKeystore();
    await addUsers(k, [
      ['alice', 'admin'],
      ['frank', 'admin'],
    ]);
  });
  afterEach(() => k.cleanup());

  /** Asserts exactly one succeeded, the other was refused with LastAdmin, and one admin is left. */
  async function oneAdminLeft(results: PromiseSettledResult<unknown>[]): Promise<void> {
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refused = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    assert.ok(refused instanceof CodedError, String(refused));
    assert.equal(refused.code, 'LastAdmin', refused.message);
    const admins = (await listUsers(k.ctx)).filter((u) => u.role === 'admin');
    assert.equal(admins.length, 1);
  }

  it('lets only one of the only two admins demoting each other succeed', async () => {
    const before = await k.ctx.store.revision();
    await oneAdminLeft(
      await Promise.allSettled([
        changeRole(k.ctx, { username: 'alice', role: 'operator', principal: as('frank', 'admin') }),
        changeRole(k.ctx, { username: 'frank', role: 'auditor', principal: as('alice', 'admin') }),
      ]),
    );
    assert.equal(await k.ctx.store.revision(), before + 1, 'one change, not two');
  });

  it('lets only one of a demotion and a removal of the only two admins succeed', async () => {
    await oneAdminLeft(
      await Promise.allSettled([
        changeRole(k.ctx, { username: 'alice', role: 'operator', principal: as('frank', 'admin') }),
        removeUser(k.ctx, { username: 'frank', principal: as('alice', 'admin') }),
      ]),
    );
  });

  it('lets only one of the only two admins removing each other succeed', async () => {
    await oneAdminLeft(
      await Promise.allSettled([
        removeUser(k.ctx, { username: 'alice', principal: as('frank', 'admin') }),
        removeUser(k.ctx, { username: 'frank', principal: as('alice', 'admin') }),
      ]),
    );
  });

  it('keeps a role changed while the password is set, and the password set while the role changes', async () => {
    await addUsers(k, [['olga', 'admin']]);
    const results = await Promise.allSettled([
      changeRole(k.ctx, { username: 'olga', role: 'auditor', principal: as('alice', 'admin') }),
      changePassword(k.ctx, {
        username: 'olga',
        newPassword: 'olga newer passphrase',
        principal: as('frank', 'admin'),
      }),
    ]);
    const olga = (await k.ctx.store.getUser('olga'))!;
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(olga.role, 'auditor', 'the password change did not write back the old role');
    if (results[1]!.status === 'fulfilled') {
      await login(k.ctx, { username: 'olga', password: 'olga newer passphrase', source: 'test' });
    } else {
      assert.equal((results[1].reason as CodedError<string>).code, 'RevisionConflict');
      await login(k.ctx, { username: 'olga', password: passwordOf('olga'), source: 'test' });
    }
  });

  it('leaves no token above its user when a token is created while the user is demoted', async () => {
    await addUsers(k, [['olga', 'admin']]);
    // The demotion commits right after createToken read olga as an admin: a real second
    // write at a chosen instant, so the race is the same on every run.
    const { store } = k.ctx;
    const getUser = store.getUser.bind(store);
    store.getUser = async (username) => {
      store.getUser = getUser;
      const read = await getUser(username);
      await changeRole(k.ctx, { username, role: 'operator', principal: as('frank', 'admin') });
      return read;
    };
    await assert.rejects(
      createToken(k.ctx, {
        name: 'ci',
        role: 'admin',
        username: 'olga',
        principal: as('alice', 'admin'),
      }),
      (err: unknown) => {
        assert.ok(err instanceof CodedError && err.code === 'RevisionConflict', String(err));
        assert.match(err.message, /"olga" is now operator, not admin/);
        return true;
      },
    );
    assert.equal((await k.ctx.store.getUser('olga'))!.role, 'operator');
    assert.deepEqual(
      (await k.ctx.store.listTokens()).filter((t) => t.username === 'olga'),
      [],
      'no admin token of an operator',
    );
  });

  it('refuses a demotion when the user was given another role meanwhile', async () => {
    await addUsers(k, [['olga', 'admin']]);
    const results = await Promise.allSettled([
      changeRole(k.ctx, { username: 'olga', role: 'operator', principal: as('alice', 'admin') }),
      changeRole(k.ctx, { username: 'olga', role: 'auditor', principal: as('frank', 'admin') }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refused = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    assert.equal((refused as CodedError<string>).code, 'RevisionConflict');
    const won = (
      results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{
        role: UserRole;
      }>
    ).value;
    assert.equal((await k.ctx.store.getUser('olga'))!.role, won.role);
  });
});
