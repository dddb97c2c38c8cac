import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bindEntry, unbindEntry } from '../../src/service/bind-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import {
  confirmServer,
  pendingConfirmation,
  rollbackServer,
} from '../../src/service/server-identity.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  bundleOf,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';

describe('confirming and rolling back the server identity', () => {
  let k: TestKeystore;
  const clock = { at: new Date('2026-06-01T12:00:00Z') };
  const served = async () =>
    (await k.ctx.store.listBindings()).find((b) => b.name === 'server')?.alias ?? null;

  before(async () => {
    k = await testKeystore({ now: () => clock.at });
    for (const alias of ['a', 'b', 'c']) {
      const pki = await makeHierarchy({
        name: alias,
        hosts: [`${alias}.example.test`],
        now: clock.at,
      });
      await importEntry(k.ctx, {
        alias,
        files: [bundleOf(pki)],
        principal: TEST_PRINCIPAL,
      });
    }
  });
  after(() => k.cleanup());

  it('has nothing to confirm or roll back before any activation', async () => {
    await refusesWithoutWriting(
      k.ctx,
      () => confirmServer(k.ctx, { principal: TEST_PRINCIPAL }),
      'NothingToConfirm',
    );
    await refusesWithoutWriting(
      k.ctx,
      () => rollbackServer(k.ctx, { principal: TEST_PRINCIPAL }),
      'NothingToRollBack',
    );
  });

  it('stores the deadline with the activation, and a confirmation clears it', async () => {
    const r = await bindEntry(k.ctx, {
      alias: 'a',
      binding: 'server',
      principal: TEST_PRINCIPAL,
      confirmWithinSeconds: 90,
    });
    assert.equal(r.confirmBefore, '2026-06-01T12:01:30.000Z');
    assert.deepEqual(await pendingConfirmation(k.ctx), {
      alias: 'a',
      previous: null,
      deadline: '2026-06-01T12:01:30.000Z',
    });
    await confirmServer(k.ctx, { principal: TEST_PRINCIPAL });
    assert.equal(await pendingConfirmation(k.ctx), undefined);
    await refusesWithoutWriting(
      k.ctx,
      () => confirmServer(k.ctx, { principal: TEST_PRINCIPAL }),
      'NothingToConfirm',
    );
    assert.equal(await served(), 'a');
  });

  it('rolls back to what was served before the last activation, and back again', async () => {
    await bindEntry(k.ctx, { alias: 'b', binding: 'server', principal: TEST_PRINCIPAL });
    const back = await rollbackServer(k.ctx, { principal: TEST_PRINCIPAL });
    assert.equal(back.restored, 'a');
    assert.equal(await served(), 'a');
    const [record] = await k.ctx.store.listAudit({ limit: 1 });
    assert.deepEqual(
      [record!.action, record!.details.from, record!.details.to],
      ['rollback', 'b', 'a'],
    );
    assert.deepEqual(record!.after, {
      'binding:server': (await k.ctx.store.getEntry('a'))!.fingerprint,
    });
    await rollbackServer(k.ctx, { principal: TEST_PRINCIPAL });
    assert.equal(await served(), 'b');
  });

  it('rolls a pending activation back to its own previous identity, and to the local CA', async () => {
    await bindEntry(k.ctx, {
      alias: 'c',
      binding: 'server',
      principal: TEST_PRINCIPAL,
      confirmWithinSeconds: 10,
    });
    assert.equal((await rollbackServer(k.ctx, { principal: TEST_PRINCIPAL })).restored, 'b');
    assert.equal(await pendingConfirmation(k.ctx), undefined);
    await unbindEntry(k.ctx, { binding: 'server', principal: TEST_PRINCIPAL });
    await bindEntry(k.ctx, {
      alias: 'c',
      binding: 'server',
      principal: TEST_PRINCIPAL,
      confirmWithinSeconds: 10,
    });
    assert.equal((await rollbackServer(k.ctx, { principal: TEST_PRINCIPAL })).restored, null);
    assert.equal(await served(), null, 'the local CA serves again');
  });

  it('refuses a confirmation window out of range, or for an SNI binding', async () => {
    for (const confirmWithinSeconds of [0, -1, 1.5, 86_401]) {
      await refusesWithoutWriting(
        k.ctx,
        () =>
          bindEntry(k.ctx, {
            alias: 'a',
            binding: 'server',
            principal: TEST_PRINCIPAL,
            confirmWithinSeconds,
          }),
        'InvalidConfirmationWindow',
      );
    }
    await refusesWithoutWriting(
      k.ctx,
      () =>
        bindEntry(k.ctx, {
          alias: 'a',
          binding: 'sni:a.example.test',
          principal: TEST_PRINCIPAL,
          confirmWithinSeconds: 5,
        }),
      'InvalidConfirmationWindow',
    );
  });

  it('loses to a writer that changed the server binding since it was read', async () => {
    await bindEntry(k.ctx, { alias: 'a', binding: 'server', principal: TEST_PRINCIPAL });
    const revision = await k.ctx.store.revision();
    await bindEntry(k.ctx, { alias: 'b', binding: 'server', principal: TEST_PRINCIPAL });
    await refusesWithoutWriting(
      k.ctx,
      () => rollbackServer(k.ctx, { principal: TEST_PRINCIPAL, expectedRevision: revision }),
      'RevisionConflict',
    );
  });
});
