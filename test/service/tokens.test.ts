import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { authenticateToken } from '../../src/service/authenticate-token.js';
import { createToken } from '../../src/service/create-token.js';
import { createUser } from '../../src/service/create-user.js';
import { listTokens } from '../../src/service/list-tokens.js';
import type { Principal } from '../../src/service/principal.js';
import { removeUser } from '../../src/service/remove-user.js';
import { revokeToken } from '../../src/service/revoke-token.js';
import { secretHash } from '../../src/service/secret-token.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { refusesWithoutWriting, type TestKeystore, testKeystore } from '../support/service.js';

const DAY = 86_400_000;
const as = (actor: string, role: Principal['role']): Principal => ({ actor, role, source: 'test' });

describe('API tokens', () => {
  let k: TestKeystore;
  let t = Date.UTC(2026, 2, 1, 9, 0, 0);
  const authenticate = (token: string) => authenticateToken(k.ctx, { token, source: '192.0.2.5' });

  before(async () => {
    k = await testKeystore({ now: () => new Date(t) });
    for (const [username, role] of [
      ['alice', 'admin'],
      ['olga', 'operator'],
      ['otto', 'operator'],
    ] as const) {
      await createUser(k.ctx, {
        username,
        role,
        password: `${username} secret passphrase`,
        principal: TEST_PRINCIPAL,
      });
    }
  });
  after(() => k.cleanup());

  it('shows the secret once and stores only its SHA-256', async () => {
    const before = await k.ctx.store.revision();
    const r = await createToken(k.ctx, {
      name: 'deploy',
      role: 'operator',
      username: 'olga',
      expiresInDays: 30,
      principal: as('olga', 'operator'),
    });
    assert.match(r.token, /^ckt_[A-Za-z0-9_-]{11}_[A-Za-z0-9_-]{43}$/);
    assert.equal(r.token.slice(4, 15), r.id);
    assert.equal(r.revision, before + 1);
    assert.equal(r.expiresAt, new Date(t + 30 * DAY).toISOString());
    const stored = (await k.ctx.store.getToken(r.id))!;
    assert.equal(stored.secretHash, secretHash(r.token.slice(16)));
    assert.match(stored.secretHash, /^[0-9a-f]{64}$/);
    const listed = await listTokens(k.ctx);
    assert.deepEqual(
      listed.map((l) => [l.id, l.name, l.role, l.username, l.expired]),
      [[r.id, 'deploy', 'operator', 'olga', false]],
    );
    const everything = JSON.stringify([listed, await k.ctx.store.listAudit()]);
    assert.ok(!everything.includes(r.token.slice(16)), 'the secret is nowhere');
    assert.ok(!everything.includes(stored.secretHash), 'nor its hash, outside the tokens table');
  });

  it('authenticates a token as token:<id> with its role, from where it is used', async () => {
    const r = await createToken(k.ctx, {
      name: 'reader',
      role: 'auditor',
      username: 'olga',
      principal: as('olga', 'operator'),
    });
    const a = await authenticate(r.token);
    assert.deepEqual(a.principal, { actor: `token:${r.id}`, role: 'auditor', source: '192.0.2.5' });
    assert.deepEqual([a.username, a.via, a.tokenId, a.expiresAt], ['olga', 'token', r.id, null]);
  });

  it('refuses text that is not a token, an unknown id and a wrong secret alike', async () => {
    const r = await createToken(k.ctx, {
      name: 'x',
      role: 'operator',
      username: 'olga',
      principal: as('olga', 'operator'),
    });
    const wrongSecret = `${r.token.slice(0, 16)}${'A'.repeat(43)}`;
    const unknownId = `ckt_${'B'.repeat(11)}${r.token.slice(15)}`;
    const messages = new Set<string>();
    for (const token of ['', 'Bearer x', r.token.slice(0, -1), wrongSecret, unknownId]) {
      await assert.rejects(authenticate(token), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'AuthenticationFailure', token);
        messages.add(err.message);
        return true;
      });
    }
    assert.equal(messages.size, 1, 'one sentence whatever was wrong');
  });

  it('stops a token at its expiry', async () => {
    const r = await createToken(k.ctx, {
      name: 'short-lived',
      role: 'operator',
      username: 'olga',
      expiresAt: new Date(t + DAY).toISOString(),
      principal: as('olga', 'operator'),
    });
    await authenticate(r.token);
    t += DAY;
    await assert.rejects(authenticate(r.token), { code: 'AuthenticationFailure' });
    assert.equal((await listTokens(k.ctx)).find((l) => l.id === r.id)!.expired, true);
  });

  it('never gives a token a role above its creator or its user (RoleTooHigh)', async () => {
    await refusesWithoutWriting(
      k.ctx,
      () =>
        createToken(k.ctx, {
          name: 'escalate',
          role: 'admin',
          username: 'olga',
          principal: as('olga', 'operator'),
        }),
      'RoleTooHigh',
    );
    await refusesWithoutWriting(
      k.ctx,
      () =>
        createToken(k.ctx, {
          name: 'for-olga',
          role: 'admin',
          username: 'olga',
          principal: as('alice', 'admin'),
        }),
      'RoleTooHigh',
    );
    const admin = await createToken(k.ctx, {
      name: 'root-ci',
      role: 'admin',
      username: 'alice',
      principal: as('alice', 'admin'),
    });
    assert.equal(admin.role, 'admin');
  });

  it("lets only an admin create or revoke another user's token (Forbidden)", async () => {
    await refusesWithoutWriting(
      k.ctx,
      () =>
        createToken(k.ctx, {
          name: 'for-otto',
          role: 'auditor',
          username: 'otto',
          principal: as('olga', 'operator'),
        }),
      'Forbidden',
    );
    const ottos = await createToken(k.ctx, {
      name: 'for-otto',
      role: 'auditor',
      username: 'otto',
      principal: as('alice', 'admin'),
    });
    await refusesWithoutWriting(
      k.ctx,
      () => revokeToken(k.ctx, { id: ottos.id, principal: as('olga', 'operator') }),
      'Forbidden',
    );
    await revokeToken(k.ctx, { id: ottos.id, principal: as('otto', 'operator') });
  });

  it('refuses a bad name, role, expiry or user without writing', async () => {
    const create = (input: Record<string, unknown>) => () =>
      createToken(k.ctx, {
        name: 'ok',
        role: 'operator',
        username: 'olga',
        principal: as('olga', 'operator'),
        ...input,
      } as never);
    await refusesWithoutWriting(k.ctx, create({ name: 'has space' }), 'InvalidTokenName');
    await refusesWithoutWriting(k.ctx, create({ name: '' }), 'InvalidTokenName');
    await refusesWithoutWriting(k.ctx, create({ role: 'system' }), 'InvalidRole');
    await refusesWithoutWriting(k.ctx, create({ expiresInDays: 0 }), 'InvalidExpiry');
    await refusesWithoutWriting(k.ctx, create({ expiresInDays: 1.5 }), 'InvalidExpiry');
    await refusesWithoutWriting(k.ctx, create({ expiresInDays: 3651 }), 'InvalidExpiry');
    await refusesWithoutWriting(k.ctx, create({ expiresAt: 'tomorrow' }), 'InvalidExpiry');
    await refusesWithoutWriting(
      k.ctx,
      create({ expiresAt: new Date(t - 1).toISOString() }),
      'InvalidExpiry',
    );
    await refusesWithoutWriting(
      k.ctx,
      create({ expiresAt: new Date(t + DAY).toISOString(), expiresInDays: 1 }),
      'InvalidExpiry',
    );
    await refusesWithoutWriting(
      k.ctx,
      create({ username: 'nobody', principal: TEST_PRINCIPAL }),
      'UserNotFound',
    );
  });

  it('revokes a token at once, and an unknown one is TokenNotFound', async () => {
    const r = await createToken(k.ctx, {
      name: 'to-revoke',
      role: 'operator',
      username: 'olga',
      principal: as('olga', 'operator'),
    });
    await authenticate(r.token);
    const before = await k.ctx.store.revision();
    const { revision } = await revokeToken(k.ctx, { id: r.id, principal: as('olga', 'operator') });
    assert.equal(revision, before + 1);
    await assert.rejects(authenticate(r.token), { code: 'AuthenticationFailure' });
    await refusesWithoutWriting(
      k.ctx,
      () => revokeToken(k.ctx, { id: r.id, principal: TEST_PRINCIPAL }),
      'TokenNotFound',
    );
    const [audit] = await k.ctx.store.listAudit({ limit: 1 });
    assert.deepEqual([audit!.action, audit!.target], ['revoke-token', `token:${r.id}`]);
  });

  it("acts no higher than its user's current role, and not at all once the user is removed", async () => {
    const r = await createToken(k.ctx, {
      name: 'ci',
      role: 'operator',
      username: 'otto',
      principal: as('otto', 'operator'),
    });
    assert.equal((await authenticate(r.token)).principal.role, 'operator');
    // Lower otto to auditor (no operation does it yet; the store's own mutation does).
    const otto = (await k.ctx.store.getUser('otto'))!;
    await k.ctx.store.applyChange({
      actor: 'test',
      action: 'test',
      mutations: [{ type: 'putUser', user: { ...otto, role: 'auditor' } }],
    });
    assert.equal((await authenticate(r.token)).principal.role, 'auditor');
    await removeUser(k.ctx, { username: 'otto', principal: TEST_PRINCIPAL });
    await assert.rejects(authenticate(r.token), { code: 'AuthenticationFailure' });
  });
});
