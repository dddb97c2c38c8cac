import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { registerHousekeeping } from '../../src/api/housekeeping.js';
import { testKeystore } from '../support/service.js';

const MINUTE = 60_000;

describe('API housekeeping', () => {
  it('deletes expired sessions and failed logins out of their window at start and on every turn', async () => {
    let now = Date.UTC(2026, 5, 1, 12, 0, 0);
    const k = await testKeystore({ now: () => new Date(now) });
    const at = (ms: number) => new Date(now + ms).toISOString();
    const session = (idHash: string, idleExpiresAt: string) =>
      k.ctx.store.putSession({
        idHash,
        username: 'admin',
        role: 'admin',
        source: null,
        createdAt: at(-60 * MINUTE),
        lastUsedAt: at(-60 * MINUTE),
        idleExpiresAt,
        expiresAt: at(600 * MINUTE),
      });
    const app = Fastify();
    try {
      await session('expired', at(-1));
      await session('live', at(10 * MINUTE));
      await k.ctx.store.recordLoginFailure('addr:192.0.2.1', at(-16 * MINUTE));
      await k.ctx.store.recordLoginFailure('addr:192.0.2.1', at(-1 * MINUTE));
      registerHousekeeping(app, k.ctx, {}, 50);
      await app.ready();
      assert.equal(await k.ctx.store.getSession('expired'), undefined);
      assert.ok(await k.ctx.store.getSession('live'));
      const since = new Date(0).toISOString();
      assert.equal(await k.ctx.store.countLoginFailures('addr:192.0.2.1', since), 1);

      // Time passes: the next turn of the timer takes what expired since.
      now += 20 * MINUTE;
      const deadline = Date.now() + 10_000;
      while ((await k.ctx.store.getSession('live')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(await k.ctx.store.getSession('live'), undefined);
      assert.equal(await k.ctx.store.countLoginFailures('addr:192.0.2.1', since), 0);
    } finally {
      await app.close();
      await k.cleanup();
    }
  });
});
