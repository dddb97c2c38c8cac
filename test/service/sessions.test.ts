import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { authenticateSession } from '../../src/service/authenticate-session.js';
import { createUser } from '../../src/service/create-user.js';
import { ServiceError } from '../../src/service/errors.js';
import { expireSessions, forgetOldLoginFailures } from '../../src/service/expire-sessions.js';
import { login } from '../../src/service/login.js';
import { logout } from '../../src/service/logout.js';
import { type PasswordHasher, SCRYPT_HASHER } from '../../src/service/passwords.js';
import { removeUser } from '../../src/service/remove-user.js';
import { sessionIdHash } from '../../src/service/session-token.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { type TestKeystore, testKeystore } from '../support/service.js';

const MINUTE = 60_000;
const PASSWORD = 'alice secret passphrase';

describe('sessions', () => {
  let k: TestKeystore;
  let t = Date.UTC(2026, 2, 1, 9, 0, 0);
  const advance = (ms: number) => {
    t += ms;
  };
  /** The hashes `verify` was asked about, in order. */
  const verified: string[] = [];
  const hasher: PasswordHasher = {
    ...SCRYPT_HASHER,
    verify: (password, hash) => {
      verified.push(hash);
      return SCRYPT_HASHER.verify(password, hash);
    },
  };
  const policy = { hasher };
  const alice = (password = PASSWORD, source = '192.0.2.1') =>
    login(k.ctx, { username: 'alice', password, source }, policy);
  const refused = async (promise: Promise<unknown>, code: string) => {
    let caught: ServiceError | undefined;
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.code, code);
      caught = err;
      return true;
    });
    return caught!;
  };
  const auth = (token: string, source = '192.0.2.9') =>
    authenticateSession(k.ctx, { token, source }, policy);

  before(async () => {
    k = await testKeystore({ now: () => new Date(t) });
    for (const [username, role] of [
      ['alice', 'admin'],
      ['bob', 'operator'],
    ] as const) {
      await createUser(k.ctx, {
        username,
        role,
        password: `${username} secret passphrase`,
        principal: TEST_PRINCIPAL,
      });
    }
  });
  beforeEach(() => {
    // Each test starts after the failure window of the one before.
    advance(60 * MINUTE);
    verified.length = 0;
  });
  after(() => k.cleanup());

  it('logs in with a session outside the revision: no change, one audit event', async () => {
    const revision = await k.ctx.store.revision();
    const s = await alice();
    assert.match(s.sessionToken, /^cks_[A-Za-z0-9_-]{43}$/);
    assert.equal(s.expiresAt, new Date(t + 12 * 60 * MINUTE).toISOString());
    assert.equal(s.idleExpiresAt, new Date(t + 30 * MINUTE).toISOString());
    assert.deepEqual([s.username, s.role, s.mustChangePassword], ['alice', 'admin', false]);
    const a = await auth(s.sessionToken);
    assert.deepEqual(a.principal, { actor: 'alice', role: 'admin', source: '192.0.2.9' });
    assert.equal(await logout(k.ctx, { token: s.sessionToken, source: '192.0.2.1' }), true);
    assert.equal(
      await k.ctx.store.revision(),
      revision,
      'login, use and logout change no revision',
    );
    const events = (await k.audited()).slice(-2);
    assert.deepEqual(
      events.map((e) => [e.action, e.outcome, e.actor, e.target, e.revision]),
      [
        ['login', 'done', 'alice', 'user:alice', null],
        ['logout', 'done', 'alice', 'user:alice', null],
      ],
    );
    // Only the hash of the secret is stored.
    const stored = await k.ctx.store.getSession(sessionIdHash(s.sessionToken)!);
    assert.equal(stored, undefined, 'logged out');
    assert.equal(await logout(k.ctx, { token: s.sessionToken, source: 'x' }), false);
  });

  it('says AuthenticationFailure alike for a wrong password and an unknown user, verifying a hash for both', async () => {
    const stored = (await k.ctx.store.getUser('alice'))!.passwordHash;
    const wrong = await refused(alice('not the password'), 'AuthenticationFailure');
    const unknown = await refused(
      login(k.ctx, { username: 'mallory', password: PASSWORD, source: '192.0.2.1' }, policy),
      'AuthenticationFailure',
    );
    const invalidName = await refused(
      login(k.ctx, { username: 'not a name!', password: PASSWORD, source: '192.0.2.1' }, policy),
      'AuthenticationFailure',
    );
    assert.equal(wrong.message, unknown.message);
    assert.equal(wrong.message, invalidName.message);
    const dummy = await SCRYPT_HASHER.dummyHash();
    assert.deepEqual(verified, [stored, dummy, dummy]);
    assert.notEqual(dummy, stored);
  });

  it('audits each failure as denied, naming a known user but never a password or an unknown name', async () => {
    await refused(alice('wrong password one'), 'AuthenticationFailure');
    await refused(
      login(k.ctx, {
        username: 'alicesecret',
        password: 'wrong password two',
        source: '192.0.2.3',
      }),
      'AuthenticationFailure',
    );
    const [known, unknown] = (await k.audited()).slice(-2);
    assert.deepEqual(
      [known!.action, known!.outcome, known!.actor, known!.target, known!.source],
      ['login', 'denied', 'alice', 'user:alice', '192.0.2.1'],
    );
    assert.deepEqual(
      [unknown!.actor, unknown!.target, unknown!.source, unknown!.details.reason],
      ['unknown', null, '192.0.2.3', 'unknown-user'],
    );
    const all = JSON.stringify(await k.ctx.store.listAudit());
    assert.doesNotMatch(all, /wrong password|alicesecret|secret passphrase/);
  });

  it('limits failures per user name, even from many addresses, and says when to retry', async () => {
    for (let i = 0; i < 5; i++) {
      await refused(alice('not the password', `198.51.100.${i}`), 'AuthenticationFailure');
      advance(1000);
    }
    advance(5000); // the first failure was 10 s ago
    const err = await refused(alice(PASSWORD, '203.0.113.1'), 'TooManyAttempts');
    const retry = err.details!.retryAfterSeconds as number;
    assert.equal(retry, 891, 'the first failure leaves the 15-minute window after 890 s');
    advance((retry - 1) * 1000);
    await refused(alice(PASSWORD, '203.0.113.1'), 'TooManyAttempts');
    advance(1000);
    await alice(PASSWORD, '203.0.113.1');
    // Refused attempts verify nothing: the right password was never even checked.
    assert.equal(verified.length, 6);
  });

  it('limits failures per address, whatever the user name (more of them than per user)', async () => {
    const names = Array.from({ length: 20 }, (_, i) => (i === 3 ? 'alice' : `u${i}`));
    for (const [i, name] of names.entries()) {
      if (i === 5) {
        // Past the per-user limit, an address still has room: one person's typos behind
        // a shared address don't lock out the others.
        await alice(PASSWORD, '192.0.2.66');
      }
      await refused(
        login(
          k.ctx,
          { username: name, password: 'guess guess guess', source: '192.0.2.66' },
          policy,
        ),
        'AuthenticationFailure',
      );
    }
    await refused(alice(PASSWORD, '192.0.2.66'), 'TooManyAttempts');
    await refused(
      login(k.ctx, { username: 'bob', password: 'bob secret passphrase', source: '192.0.2.66' }),
      'TooManyAttempts',
    );
    await alice(PASSWORD, '192.0.2.67');
  });

  it("clears the user's failures on success", async () => {
    for (let i = 0; i < 4; i++)
      await refused(alice('nope nope nope', `10.0.0.${i}`), 'AuthenticationFailure');
    await alice(PASSWORD, '10.0.1.1');
    for (let i = 0; i < 4; i++)
      await refused(alice('nope nope nope', `10.0.2.${i}`), 'AuthenticationFailure');
    await alice(PASSWORD, '10.0.3.1');
  });

  it('ends a session left idle for 30 minutes, and each use moves that limit', async () => {
    const s = await alice();
    advance(29 * MINUTE);
    assert.equal(
      (await auth(s.sessionToken)).idleExpiresAt,
      new Date(t + 30 * MINUTE).toISOString(),
    );
    advance(29 * MINUTE);
    await auth(s.sessionToken);
    advance(30 * MINUTE);
    await refused(auth(s.sessionToken), 'AuthenticationFailure');
    assert.equal(
      await k.ctx.store.getSession(sessionIdHash(s.sessionToken)!),
      undefined,
      'deleted',
    );
  });

  it('ends a session 12 hours after login however much it is used', async () => {
    const s = await alice();
    for (let used = 0; used < 12 * 60 - 20; used += 20) {
      advance(20 * MINUTE);
      const a = await auth(s.sessionToken);
      assert.ok(a.idleExpiresAt <= s.expiresAt, 'the idle limit never passes the absolute one');
    }
    advance(20 * MINUTE);
    await refused(auth(s.sessionToken), 'AuthenticationFailure');
  });

  it('takes the limits from the policy', async () => {
    const s = await login(
      k.ctx,
      { username: 'alice', password: PASSWORD, source: 'x' },
      { sessionIdleMs: 2 * MINUTE, sessionAbsoluteMs: 5 * MINUTE },
    );
    assert.equal(s.idleExpiresAt, new Date(t + 2 * MINUTE).toISOString());
    advance(2 * MINUTE);
    await refused(auth(s.sessionToken), 'AuthenticationFailure');
  });

  it('writes a use at most once a minute', async () => {
    const s = await alice();
    const idHash = sessionIdHash(s.sessionToken)!;
    const loggedIn = (await k.ctx.store.getSession(idHash))!.lastUsedAt;
    advance(30_000);
    await auth(s.sessionToken);
    assert.equal((await k.ctx.store.getSession(idHash))!.lastUsedAt, loggedIn, 'not written');
    advance(30_000);
    await auth(s.sessionToken);
    assert.equal((await k.ctx.store.getSession(idHash))!.lastUsedAt, new Date(t).toISOString());
  });

  it('refuses a token that is not one, and a session whose user was removed', async () => {
    for (const token of ['', 'cks_short', `ckt_${'a'.repeat(55)}`, `cks_${'A'.repeat(43)}`]) {
      await refused(auth(token), 'AuthenticationFailure');
    }
    await createUser(k.ctx, {
      username: 'gone',
      role: 'auditor',
      password: 'gone secret passphrase',
      principal: TEST_PRINCIPAL,
    });
    const s = await login(k.ctx, {
      username: 'gone',
      password: 'gone secret passphrase',
      source: 'x',
    });
    await removeUser(k.ctx, { username: 'gone', principal: TEST_PRINCIPAL });
    await refused(auth(s.sessionToken), 'AuthenticationFailure');
  });

  it('deletes expired sessions on expireSessions', async () => {
    advance(13 * 60 * MINUTE); // every earlier session is past its limits
    await expireSessions(k.ctx);
    const s = await alice();
    advance(31 * MINUTE);
    const fresh = await alice();
    assert.equal(await expireSessions(k.ctx), 1);
    assert.equal(await k.ctx.store.getSession(sessionIdHash(s.sessionToken)!), undefined);
    await auth(fresh.sessionToken);
  });

  it('forgets failed logins once they leave the window, and only those', async () => {
    await forgetOldLoginFailures(k.ctx, policy); // what earlier tests left
    for (let i = 0; i < 3; i++) {
      await refused(alice('not the password', `198.51.100.${i}`), 'AuthenticationFailure');
    }
    advance(10 * MINUTE);
    for (let i = 0; i < 2; i++) {
      await refused(alice('not the password', `198.51.100.${i}`), 'AuthenticationFailure');
    }
    // Each failure counts under the user and under its address: 3 × 2 rows are 15 min old.
    advance(5 * MINUTE + 1);
    assert.equal(await forgetOldLoginFailures(k.ctx, policy), 6);
    assert.equal(await forgetOldLoginFailures(k.ctx, policy), 0);
    const since = new Date(0).toISOString();
    assert.equal(await k.ctx.store.countLoginFailures('user:alice', since), 2, 'the recent stay');
    assert.equal(await forgetOldLoginFailures(k.ctx, { failureWindowMs: 5 * MINUTE }), 4);
  });
});
