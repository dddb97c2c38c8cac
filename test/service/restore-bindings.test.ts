import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bindEntry } from '../../src/service/bind-entry.js';
import { deleteEntry } from '../../src/service/delete-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import { RUNTIME_PRINCIPAL } from '../../src/service/principal.js';
import { restoreRefusedBindings } from '../../src/service/restore-bindings.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { bundleOf, type TestKeystore, testKeystore } from '../support/service.js';

describe('restoreRefusedBindings, the runtime’s rollback', () => {
  let k: TestKeystore;
  const bound = async (name: string) =>
    (await k.ctx.store.listBindings()).find((b) => b.name === name)?.alias ?? null;

  before(async () => {
    k = await testKeystore();
    for (const alias of ['good', 'bad', 'gone']) {
      const pki = await makeHierarchy({ name: alias, hosts: [`${alias}.example.test`] });
      await importEntry(k.ctx, {
        alias,
        files: [bundleOf(pki)],
        principal: TEST_PRINCIPAL,
      });
    }
  });
  after(() => k.cleanup());

  it('puts the refused binding back in one change made only at the refused revision', async () => {
    await bindEntry(k.ctx, { alias: 'good', binding: 'server', principal: TEST_PRINCIPAL });
    const refused = await bindEntry(k.ctx, {
      alias: 'bad',
      binding: 'server',
      principal: TEST_PRINCIPAL,
      confirmWithinSeconds: 60,
    });
    const revision = await restoreRefusedBindings(k.ctx, {
      refusedRevision: refused.revision,
      bindings: [{ name: 'server', refused: 'bad', served: 'good' }],
      principal: RUNTIME_PRINCIPAL,
    });
    assert.equal(revision, refused.revision + 1);
    assert.equal(await bound('server'), 'good');
    assert.equal(await k.ctx.store.getSetting('server-confirmation'), undefined);
    const [record] = await k.ctx.store.listAudit({ limit: 1 });
    assert.deepEqual(
      [record!.action, record!.actor, record!.details.refusedRevision],
      ['rollback', 'runtime', refused.revision],
    );
  });

  it('writes nothing when the store moved on, or when there is nothing to put back', async () => {
    const refused = await bindEntry(k.ctx, {
      alias: 'bad',
      binding: 'sni:x.example.test',
      principal: TEST_PRINCIPAL,
    });
    await bindEntry(k.ctx, {
      alias: 'good',
      binding: 'sni:y.example.test',
      principal: TEST_PRINCIPAL,
    });
    const now = await k.ctx.store.revision();
    assert.equal(
      await restoreRefusedBindings(k.ctx, {
        refusedRevision: refused.revision,
        bindings: [{ name: 'sni:x.example.test', refused: 'bad', served: null }],
        principal: RUNTIME_PRINCIPAL,
      }),
      undefined,
    );
    assert.equal(
      await restoreRefusedBindings(k.ctx, {
        refusedRevision: now,
        bindings: [{ name: 'server', refused: 'good', served: 'good' }],
        principal: RUNTIME_PRINCIPAL,
      }),
      undefined,
    );
    assert.equal(await k.ctx.store.revision(), now);
  });

  it('unbinds when the entry served before was deleted since', async () => {
    await bindEntry(k.ctx, {
      alias: 'gone',
      binding: 'sni:z.example.test',
      principal: TEST_PRINCIPAL,
    });
    const refused = await bindEntry(k.ctx, {
      alias: 'bad',
      binding: 'sni:z.example.test',
      principal: TEST_PRINCIPAL,
    });
    await deleteEntry(k.ctx, { alias: 'gone', principal: TEST_PRINCIPAL });
    assert.equal(await k.ctx.store.getEntry('gone'), undefined);
    const now = await k.ctx.store.revision();
    await restoreRefusedBindings(k.ctx, {
      refusedRevision: now,
      bindings: [{ name: 'sni:z.example.test', refused: 'bad', served: 'gone' }],
      principal: RUNTIME_PRINCIPAL,
    });
    assert.equal(await bound('sni:z.example.test'), null);
    assert.ok(refused.revision < now);
  });
});
