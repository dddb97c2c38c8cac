import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ensureInitialAdmin } from '../../src/service/initial-admin.js';
import { login } from '../../src/service/login.js';
import { type TestKeystore, testKeystore } from '../support/service.js';

describe('ensureInitialAdmin', () => {
  let k: TestKeystore | undefined;
  afterEach(() => k?.cleanup());
  const logged: { details: Record<string, unknown>; message: string }[] = [];
  const log = {
    info: (details: Record<string, unknown>, message: string) => logged.push({ details, message }),
  };

  it('creates admin with a one-time password to change, returned and never logged', async () => {
    k = await testKeystore();
    logged.length = 0;
    const r = await ensureInitialAdmin(k.ctx, { env: {}, log });
    assert.ok(r.created);
    assert.equal(r.username, 'admin');
    assert.match(r.oneTimePassword!, /^[A-Za-z0-9_-]{20}$/);
    const admin = (await k.ctx.store.getUser('admin'))!;
    assert.deepEqual([admin.role, admin.mustChangePassword], ['admin', true]);
    const [audit] = await k.ctx.store.listAudit({ limit: 1 });
    assert.deepEqual(
      [audit!.actor, audit!.action, audit!.target],
      ['runtime', 'create-user', 'user:admin'],
    );
    const said = JSON.stringify([logged, await k.ctx.store.listAudit()]);
    assert.equal(logged.length, 1);
    assert.ok(!said.includes(r.oneTimePassword!), 'the password is in no log or audit record');
    const s = await login(k.ctx, { username: 'admin', password: r.oneTimePassword!, source: 'x' });
    assert.equal(s.mustChangePassword, true);
    assert.deepEqual(await ensureInitialAdmin(k.ctx, { env: {}, log }), { created: false });
  });

  it('takes CERTKEEPER_ADMIN_PASSWORD without forcing a change', async () => {
    k = await testKeystore();
    const env = { CERTKEEPER_ADMIN_PASSWORD: 'from the environment' };
    const r = await ensureInitialAdmin(k.ctx, { env });
    assert.deepEqual(r, { created: true, username: 'admin' });
    const s = await login(k.ctx, {
      username: 'admin',
      password: 'from the environment',
      source: 'x',
    });
    assert.equal(s.mustChangePassword, false);
  });

  it('refuses a CERTKEEPER_ADMIN_PASSWORD that breaks the policy, creating nothing', async () => {
    k = await testKeystore();
    await assert.rejects(
      ensureInitialAdmin(k.ctx, { env: { CERTKEEPER_ADMIN_PASSWORD: 'admin' } }),
      {
        code: 'PasswordTooShort',
      },
    );
    assert.deepEqual(await k.ctx.store.listUsers(), []);
  });

  it('leaves a store with users alone, and two starts at once create one admin', async () => {
    k = await testKeystore();
    const results = await Promise.all([
      ensureInitialAdmin(k.ctx, { env: {} }),
      ensureInitialAdmin(k.ctx, { env: {} }),
    ]);
    assert.deepEqual(results.map((r) => r.created).sort(), [false, true]);
    assert.equal((await k.ctx.store.listUsers()).length, 1);
    const env = { CERTKEEPER_ADMIN_PASSWORD: 'a later attempt' };
    assert.deepEqual(await ensureInitialAdmin(k.ctx, { env }), { created: false });
  });
});
