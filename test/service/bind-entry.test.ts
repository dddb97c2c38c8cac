import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bindEntry, unbindEntry } from '../../src/service/bind-entry.js';
import { LOCAL_CA_ALIAS, LOCAL_SERVER_ALIAS } from '../../src/service/context.js';
import { importEntry } from '../../src/service/import-entry.js';
import { ensureLocalCa, localServerNames } from '../../src/service/local-ca.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  bundleOf,
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';

const DAY = 86_400_000;

describe('bindEntry and unbindEntry', () => {
  let k: TestKeystore;
  const clock = { at: new Date() };
  const bindings = async () =>
    (await k.ctx.store.listBindings()).map((b) => `${b.name}=${b.alias}`).sort();

  before(async () => {
    k = await testKeystore({ now: () => clock.at });
    const pki = await makeHierarchy({ hosts: ['app.example.test'], leafDays: 90 });
    await ensureLocalCa({
      store: k.ctx.store,
      now: clock.at,
      names: localServerNames('box'),
      commonName: 'box',
    });
    await importEntry(k.ctx, {
      alias: 'web',
      files: [bundleOf(pki)],
      principal: TEST_PRINCIPAL,
    });
    await importEntry(k.ctx, {
      alias: 'corp-root',
      files: [file('root.pem', pki.root.certPem)],
      principal: TEST_PRINCIPAL,
    });
  });
  after(() => k.cleanup());

  it('binds a key pair as the server identity in one change', async () => {
    const { revision, binding } = await bindEntry(k.ctx, {
      alias: 'web',
      binding: 'server',
      principal: TEST_PRINCIPAL,
    });
    assert.equal(binding, 'server');
    const server = (await k.ctx.store.listBindings()).find((b) => b.name === 'server');
    assert.deepEqual([server?.alias, server?.revision], ['web', revision]);
    const [audit] = await k.ctx.store.listAudit({ limit: 1 });
    assert.equal(audit!.action, 'activate');
  });

  it('binds an SNI host under its canonical name', async () => {
    const { binding } = await bindEntry(k.ctx, {
      alias: 'web',
      binding: 'sni:APP.Example.Test.',
      principal: TEST_PRINCIPAL,
    });
    assert.equal(binding, 'sni:app.example.test');
    assert.ok((await bindings()).includes('sni:app.example.test=web'));
  });

  it('unbinds server, which returns the server identity to the local CA', async () => {
    const result = await unbindEntry(k.ctx, { binding: 'server', principal: TEST_PRINCIPAL });
    assert.equal(result.alias, 'web');
    assert.deepEqual(await bindings(), [`ca=${LOCAL_CA_ALIAS}`, 'sni:app.example.test=web']);
    const [audit] = await k.ctx.store.listAudit({ limit: 1 });
    assert.equal(audit!.action, 'deactivate');
  });

  it('unbinds an SNI host', async () => {
    await unbindEntry(k.ctx, { binding: 'sni:app.example.test', principal: TEST_PRINCIPAL });
    assert.deepEqual(await bindings(), [`ca=${LOCAL_CA_ALIAS}`]);
  });

  it('says BindingNotFound when nothing is bound there', async () => {
    await refusesWithoutWriting(
      k.ctx,
      () => unbindEntry(k.ctx, { binding: 'server', principal: TEST_PRINCIPAL }),
      'BindingNotFound',
    );
  });

  it('refuses a binding name other than server or sni:<host>', async () => {
    for (const [binding, code] of [
      ['ca', 'InvalidBinding'],
      ['default', 'InvalidBinding'],
      ['sni:not a host', 'InvalidHostname'],
      ['sni:', 'InvalidHostname'],
    ] as const) {
      await refusesWithoutWriting(
        k.ctx,
        () => bindEntry(k.ctx, { alias: 'web', binding, principal: TEST_PRINCIPAL }),
        code,
      );
    }
    await refusesWithoutWriting(
      k.ctx,
      () => unbindEntry(k.ctx, { binding: 'ca', principal: TEST_PRINCIPAL }),
      'InvalidBinding',
    );
  });

  it('refuses what cannot serve: a trusted entry, a missing alias, the local CA', async () => {
    const bind = (alias: string) => () =>
      bindEntry(k.ctx, { alias, binding: 'server', principal: TEST_PRINCIPAL });
    await refusesWithoutWriting(k.ctx, bind('corp-root'), 'EntryNotUsable');
    await refusesWithoutWriting(k.ctx, bind('nope'), 'AliasNotFound');
    await refusesWithoutWriting(k.ctx, bind(LOCAL_CA_ALIAS), 'InvalidAlias');
    await refusesWithoutWriting(k.ctx, bind(LOCAL_SERVER_ALIAS), 'InvalidAlias');
  });

  it('refuses an expired certificate with CertificateExpired', async () => {
    const now = clock.at;
    clock.at = new Date(now.getTime() + 400 * DAY);
    try {
      await refusesWithoutWriting(
        k.ctx,
        () => bindEntry(k.ctx, { alias: 'web', binding: 'server', principal: TEST_PRINCIPAL }),
        'CertificateExpired',
      );
    } finally {
      clock.at = now;
    }
  });

  it('refuses to bind or unbind server while a source pins it, but not an SNI host', async () => {
    await bindEntry(k.ctx, { alias: 'web', binding: 'server', principal: TEST_PRINCIPAL });
    k.pin.by = 'command-line flag';
    try {
      const err = await refusesWithoutWriting(
        k.ctx,
        () => bindEntry(k.ctx, { alias: 'web', binding: 'server', principal: TEST_PRINCIPAL }),
        'PinnedBySource',
      );
      assert.deepEqual(err.details, { source: 'command-line flag' });
      await refusesWithoutWriting(
        k.ctx,
        () => unbindEntry(k.ctx, { binding: 'server', principal: TEST_PRINCIPAL }),
        'PinnedBySource',
      );
      await bindEntry(k.ctx, {
        alias: 'web',
        binding: 'sni:other.example.test',
        principal: TEST_PRINCIPAL,
      });
    } finally {
      k.pin.by = undefined;
    }
  });

  it('refuses a stale expected revision with RevisionConflict', async () => {
    const stale = (await k.ctx.store.revision()) - 1;
    await refusesWithoutWriting(
      k.ctx,
      () =>
        bindEntry(k.ctx, {
          alias: 'web',
          binding: 'server',
          principal: TEST_PRINCIPAL,
          expectedRevision: stale,
        }),
      'RevisionConflict',
    );
    await refusesWithoutWriting(
      k.ctx,
      () =>
        unbindEntry(k.ctx, {
          binding: 'server',
          principal: TEST_PRINCIPAL,
          expectedRevision: stale,
        }),
      'RevisionConflict',
    );
  });
});
