import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { changePassword } from '../../src/service/change-password.js';
import { createToken } from '../../src/service/create-token.js';
import { createUser } from '../../src/service/create-user.js';
import { listUsers } from '../../src/service/list-users.js';
import { login } from '../../src/service/login.js';
import type { Principal } from '../../src/service/principal.js';
import { removeUser } from '../../src/service/remove-user.js';
import { sessionIdHash } from '../../src/service/session-token.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { refusesWithoutWriting, type TestKeystore, testKeystore } from '../support/service.js';

const as = (actor: string, role: Principal['role']): Principal => ({
  actor,
  role,
  source: '192.0.2.7',
});

describe('users', () => {
  let k: TestKeystore;
  before(async () => {
    k = await testKeystore();
  });
  after(() => k.cleanup());

  it('creates a user as one change, storing only the scrypt hash and auditing no password', async () => {
    const before = await k.ctx.store.revision();
    const r = await createUser(k.ctx, {
      username: 'alice',
      role: 'admin',
      password: 'alice secret passphrase',
      principal: TEST_PRINCIPAL,
    });
    assert.deepEqual(r, {
      username: 'alice',
      role: 'admin',
      mustChangePassword: false,
      revision: before + 1,
    });
    const stored = await k.ctx.store.getUser('alice');
    assert.match(stored!.passwordHash, /^scrypt\$32768\$8\$1\$/);
    const [audit] = await k.ctx.store.listAudit({ limit: 1 });
    assert.equal(audit!.action, 'create-user');
    assert.equal(audit!.target, 'user:alice');
    assert.doesNotMatch(JSON.stringify(audit), /alice secret passphrase|scrypt\$/);
  });

  it('generates a one-time password without one, to be changed at first login', async () => {
    const r = await createUser(k.ctx, {
      username: 'bob',
      role: 'operator',
      principal: TEST_PRINCIPAL,
    });
    assert.equal(r.mustChangePassword, true);
    assert.match(r.oneTimePassword!, /^[A-Za-z0-9_-]{20}$/);
    const session = await login(k.ctx, {
      username: 'bob',
      password: r.oneTimePassword!,
      source: '192.0.2.1',
    });
    assert.equal(session.mustChangePassword, true);
  });

  it('refuses a bad name, role, password or an existing user without writing', async () => {
    const create = (input: Record<string, unknown>) => () =>
      createUser(k.ctx, {
        username: 'carol',
        role: 'auditor',
        password: 'carol secret passphrase',
        principal: TEST_PRINCIPAL,
        ...input,
      } as never);
    await refusesWithoutWriting(k.ctx, create({ username: '' }), 'InvalidUsername');
    await refusesWithoutWriting(k.ctx, create({ username: 'x'.repeat(65) }), 'InvalidUsername');
    await refusesWithoutWriting(k.ctx, create({ username: 'carol smith' }), 'InvalidUsername');
    await refusesWithoutWriting(k.ctx, create({ role: 'root' }), 'InvalidRole');
    await refusesWithoutWriting(k.ctx, create({ password: 'short' }), 'PasswordTooShort');
    await refusesWithoutWriting(k.ctx, create({ password: 'p'.repeat(1025) }), 'PasswordTooLong');
    await refusesWithoutWriting(
      k.ctx,
      create({ username: 'carol.is.here', password: 'CAROL.IS.HERE' }),
      'PasswordMatchesUsername',
    );
    await refusesWithoutWriting(k.ctx, create({ username: 'alice' }), 'UserExists');
    await refusesWithoutWriting(k.ctx, create({ principal: as('bob', 'operator') }), 'Forbidden');
    assert.equal(await k.ctx.store.getUser('carol'), undefined);
  });

  it('lists users without their hashes', async () => {
    const users = await listUsers(k.ctx);
    assert.deepEqual(
      users.map((u) => [u.username, u.role, u.mustChangePassword]),
      [
        ['alice', 'admin', false],
        ['bob', 'operator', true],
      ],
    );
    assert.doesNotMatch(JSON.stringify(users), /scrypt|passwordHash/);
  });

  describe('changing a password', () => {
    it('lets users change their own with the current one, clearing mustChangePassword and ending their other sessions', async () => {
      await changePassword(k.ctx, {
        username: 'bob',
        newPassword: 'bob first passphrase',
        principal: TEST_PRINCIPAL,
        mustChangePassword: true,
      });
      const here = await login(k.ctx, {
        username: 'bob',
        password: 'bob first passphrase',
        source: '192.0.2.1',
      });
      const elsewhere = await login(k.ctx, {
        username: 'bob',
        password: 'bob first passphrase',
        source: '192.0.2.2',
      });
      const r = await changePassword(k.ctx, {
        username: 'bob',
        currentPassword: 'bob first passphrase',
        newPassword: 'bob second passphrase',
        principal: as('bob', 'operator'),
        keepSession: here.sessionToken,
      });
      assert.equal(r.sessionsEnded, 1);
      const bob = await k.ctx.store.getUser('bob');
      assert.equal(bob!.mustChangePassword, false);
      assert.equal(bob!.role, 'operator');
      assert.ok(await k.ctx.store.getSession(sessionIdHash(here.sessionToken)!));
      assert.equal(await k.ctx.store.getSession(sessionIdHash(elsewhere.sessionToken)!), undefined);
      await assert.rejects(
        login(k.ctx, { username: 'bob', password: 'bob first passphrase', source: '192.0.2.1' }),
        { code: 'AuthenticationFailure' },
      );
      await login(k.ctx, {
        username: 'bob',
        password: 'bob second passphrase',
        source: '192.0.2.1',
      });
    });

    it('refuses a wrong or missing current password with CurrentPasswordWrong, audited without it', async () => {
      for (const currentPassword of ['not the password', undefined]) {
        await refusesWithoutWriting(
          k.ctx,
          () =>
            changePassword(k.ctx, {
              username: 'bob',
              ...(currentPassword === undefined ? {} : { currentPassword }),
              newPassword: 'bob third passphrase',
              principal: as('bob', 'operator'),
            }),
          'CurrentPasswordWrong',
        );
      }
      const denied = (await k.audited()).filter((r) => r.action === 'change-password');
      assert.equal(denied.length, 2);
      assert.equal(denied[0]!.outcome, 'denied');
      assert.doesNotMatch(JSON.stringify(denied), /not the password|third passphrase/);
    });

    it('lets an admin set it without the current one, ending every session of the user', async () => {
      await login(k.ctx, {
        username: 'bob',
        password: 'bob second passphrase',
        source: '192.0.2.1',
      });
      const r = await changePassword(k.ctx, {
        username: 'bob',
        newPassword: 'bob reset passphrase',
        principal: as('alice', 'admin'),
      });
      assert.ok(r.sessionsEnded >= 1);
      await login(k.ctx, {
        username: 'bob',
        password: 'bob reset passphrase',
        source: '192.0.2.1',
      });
    });

    it("refuses anyone else's change with Forbidden, and an unknown user with UserNotFound", async () => {
      await refusesWithoutWriting(
        k.ctx,
        () =>
          changePassword(k.ctx, {
            username: 'alice',
            newPassword: 'bob owns alice now',
            principal: as('bob', 'operator'),
          }),
        'Forbidden',
      );
      await refusesWithoutWriting(
        k.ctx,
        () =>
          changePassword(k.ctx, {
            username: 'nobody',
            newPassword: 'a long enough password',
            principal: TEST_PRINCIPAL,
          }),
        'UserNotFound',
      );
      await refusesWithoutWriting(
        k.ctx,
        () =>
          changePassword(k.ctx, {
            username: 'bob',
            newPassword: 'short',
            principal: TEST_PRINCIPAL,
          }),
        'PasswordTooShort',
      );
    });
  });

  describe('removing a user', () => {
    it('removes a user with their tokens and sessions in one change', async () => {
      await createUser(k.ctx, {
        username: 'dave',
        role: 'operator',
        password: 'dave secret passphrase',
        principal: TEST_PRINCIPAL,
      });
      await createToken(k.ctx, {
        name: 'ci',
        role: 'operator',
        username: 'dave',
        principal: TEST_PRINCIPAL,
      });
      await login(k.ctx, { username: 'dave', password: 'dave secret passphrase', source: 'x' });
      const before = await k.ctx.store.revision();
      const r = await removeUser(k.ctx, { username: 'dave', principal: TEST_PRINCIPAL });
      assert.deepEqual(r, { revision: before + 1, tokensRevoked: 1 });
      assert.equal(await k.ctx.store.getUser('dave'), undefined);
      assert.deepEqual(
        (await k.ctx.store.listTokens()).filter((t) => t.username === 'dave'),
        [],
      );
      assert.equal(await k.ctx.store.deleteUserSessions('dave'), 0, 'no session left');
    });

    it('never removes the last admin (LastAdmin), and removes an admin who is not the last', async () => {
      await refusesWithoutWriting(
        k.ctx,
        () => removeUser(k.ctx, { username: 'alice', principal: TEST_PRINCIPAL }),
        'LastAdmin',
      );
      await createUser(k.ctx, {
        username: 'erin',
        role: 'admin',
        password: 'erin secret passphrase',
        principal: TEST_PRINCIPAL,
      });
      await removeUser(k.ctx, { username: 'erin', principal: as('alice', 'admin') });
      await refusesWithoutWriting(
        k.ctx,
        () => removeUser(k.ctx, { username: 'alice', principal: as('alice', 'admin') }),
        'LastAdmin',
      );
    });

    it('lets only one of two admins removing each other at once succeed', async () => {
      await createUser(k.ctx, {
        username: 'frank',
        role: 'admin',
        password: 'frank secret passphrase',
        principal: TEST_PRINCIPAL,
      });
      const results = await Promise.allSettled([
        removeUser(k.ctx, { username: 'alice', principal: as('frank', 'admin') }),
        removeUser(k.ctx, { username: 'frank', principal: as('alice', 'admin') }),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      const admins = (await listUsers(k.ctx)).filter((u) => u.role === 'admin');
      assert.equal(admins.length, 1);
    });

    it('refuses an unknown user and a principal who is not an admin', async () => {
      await refusesWithoutWriting(
        k.ctx,
        () => removeUser(k.ctx, { username: 'nobody', principal: TEST_PRINCIPAL }),
        'UserNotFound',
      );
      await refusesWithoutWriting(
        k.ctx,
        () => removeUser(k.ctx, { username: 'bob', principal: as('bob', 'operator') }),
        'Forbidden',
      );
    });
  });
});
