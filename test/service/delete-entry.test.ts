import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOCAL_CA_ALIAS, LOCAL_SERVER_ALIAS } from '../../src/service/context.js';
import { deleteEntry } from '../../src/service/delete-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import { ensureLocalCa, localServerNames } from '../../src/service/local-ca.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  bundleOf,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';

describe('deleteEntry', () => {
  let k: TestKeystore;
  let pki: Awaited<ReturnType<typeof makeHierarchy>>;
  const keyPair = () => [bundleOf(pki)];

  before(async () => {
    k = await testKeystore();
    pki = await makeHierarchy();
    await ensureLocalCa({
      store: k.ctx.store,
      now: new Date(),
      names: localServerNames('box'),
      commonName: 'box',
    });
  });
  after(() => k.cleanup());

  it('deletes an unbound entry and its key in one change, recording who did it', async () => {
    await importEntry(k.ctx, { alias: 'old', files: keyPair(), principal: TEST_PRINCIPAL });
    const before = await k.ctx.store.revision();
    const { revision } = await deleteEntry(k.ctx, { alias: 'old', principal: TEST_PRINCIPAL });
    assert.equal(revision, before + 1);
    assert.equal(await k.ctx.store.getEntry('old'), undefined);
    assert.equal(await k.ctx.store.getPrivateKey('old'), undefined);
    const [audit] = await k.ctx.store.listAudit({ limit: 1 });
    assert.equal(audit!.action, 'delete');
    assert.equal(audit!.target, 'old');
    assert.deepEqual(audit!.details.principal, { role: 'admin', source: 'test' });
  });

  it('says AliasNotFound for an alias that does not exist', async () => {
    await refusesWithoutWriting(
      k.ctx,
      () => deleteEntry(k.ctx, { alias: 'never-there', principal: TEST_PRINCIPAL }),
      'AliasNotFound',
    );
  });

  it('refuses a bound entry with AliasInUse and keeps it', async () => {
    await importEntry(k.ctx, {
      alias: 'served',
      files: keyPair(),
      activate: true,
      principal: TEST_PRINCIPAL,
    });
    const err = await refusesWithoutWriting(
      k.ctx,
      () => deleteEntry(k.ctx, { alias: 'served', principal: TEST_PRINCIPAL }),
      'AliasInUse',
    );
    assert.match(err.message, /server/);
    assert.ok(await k.ctx.store.getEntry('served'));
  });

  it("never deletes the local CA's entries", async () => {
    for (const alias of [LOCAL_CA_ALIAS, LOCAL_SERVER_ALIAS]) {
      await refusesWithoutWriting(
        k.ctx,
        () => deleteEntry(k.ctx, { alias, principal: TEST_PRINCIPAL }),
        'InvalidAlias',
      );
      assert.ok(await k.ctx.store.getEntry(alias), alias);
    }
  });

  it('refuses a stale expected revision with RevisionConflict', async () => {
    await importEntry(k.ctx, { alias: 'guarded', files: keyPair(), principal: TEST_PRINCIPAL });
    const seen = await k.ctx.store.revision();
    await importEntry(k.ctx, { alias: 'other', files: keyPair(), principal: TEST_PRINCIPAL });
    await refusesWithoutWriting(
      k.ctx,
      () =>
        deleteEntry(k.ctx, { alias: 'guarded', principal: TEST_PRINCIPAL, expectedRevision: seen }),
      'RevisionConflict',
    );
    assert.ok(await k.ctx.store.getEntry('guarded'));
  });

  it('refuses a write without a well-formed principal', async () => {
    await refusesWithoutWriting(
      k.ctx,
      () =>
        deleteEntry(k.ctx, {
          alias: 'guarded',
          principal: { actor: '', role: 'admin', source: 'test' },
        }),
      'InvalidPrincipal',
    );
    await refusesWithoutWriting(
      k.ctx,
      () =>
        deleteEntry(k.ctx, {
          alias: 'guarded',
          principal: { actor: 'mallory', role: 'root' as never, source: 'test' },
        }),
      'InvalidPrincipal',
    );
  });
});
