import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { applyChanges, type ChangeOperation } from '../../src/service/apply-changes.js';
import { bindEntry } from '../../src/service/bind-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import type { Principal } from '../../src/service/principal.js';
import { PENDING_CONFIRMATION_SETTING } from '../../src/service/server-identity.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  bundleOf,
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';

type Pki = Awaited<ReturnType<typeof makeHierarchy>>;

describe('applyChanges: several writes as one change, or none', () => {
  let k: TestKeystore;
  let one: Pki;
  let two: Pki;
  let n = 0;
  /** A fresh alias per test, so the tests don't depend on each other's writes. */
  const alias = (name: string) => `${name}-${++n}`;
  const bindings = async () =>
    Object.fromEntries((await k.ctx.store.listBindings()).map((b) => [b.name, b.alias]));
  const apply = (operations: ChangeOperation[], principal: Principal = TEST_PRINCIPAL) =>
    applyChanges(k.ctx, { operations, principal });

  before(async () => {
    k = await testKeystore();
    one = await makeHierarchy({ name: 'One', hosts: ['one.example.test'] });
    two = await makeHierarchy({ name: 'Two', hosts: ['two.example.test'] });
  });
  after(() => k.cleanup());
  beforeEach(() => {
    k.pin.by = undefined;
  });

  it('imports, binds and activates a new entry at one revision, with one audit record', async () => {
    const web = alias('web');
    const before = await k.ctx.store.revision();
    const result = await apply([
      { op: 'import', alias: web, files: [bundleOf(one)] },
      { op: 'bind', hostname: 'One.Example.Test', alias: web },
      { op: 'activate', alias: web, confirmWithinSeconds: 60 },
    ]);
    assert.equal(result.revision, before + 1);
    assert.equal(await k.ctx.store.revision(), before + 1);
    assert.deepEqual(
      result.operations.map((o) => o.op),
      ['import', 'bind', 'activate'],
    );
    assert.equal(
      result.operations[0]!.op === 'import' && result.operations[0]!.fingerprint,
      one.leaf.cert.sha256,
    );
    assert.equal(result.changesServed, true);
    const bound = await bindings();
    assert.equal(bound['sni:one.example.test'], web);
    assert.equal(bound.server, web);
    const entry = await k.ctx.store.getEntry(web);
    assert.equal(entry?.updatedRevision, before + 1);
    const pending = (await k.ctx.store.getSetting(PENDING_CONFIRMATION_SETTING)) as {
      alias: string;
    };
    assert.equal(pending.alias, web);
    const audit = await k.ctx.store.listAudit({ limit: 2 });
    assert.equal(audit[0]!.revision, before + 1);
    assert.equal(audit[0]!.action, 'changes');
    assert.deepEqual(
      (audit[0]!.details.operations as { op: string; target: string }[]).map((o) => [
        o.op,
        o.target,
      ]),
      [
        ['import', web],
        ['bind', web],
        ['activate', web],
      ],
    );
    assert.notEqual(audit[1]?.revision, before + 1, 'one record for the whole batch');
  });

  it('writes nothing when the third operation has a key of another certificate', async () => {
    const a = alias('a');
    const b = alias('b');
    const err = await refusesWithoutWriting(
      k.ctx,
      () =>
        apply([
          { op: 'import', alias: a, files: [bundleOf(one)] },
          { op: 'bind', hostname: 'one.example.test', alias: a },
          {
            op: 'import',
            alias: b,
            files: [file('cert.pem', two.leaf.certPem), file('key.pem', one.leaf.keyPem)],
          },
        ]),
      'KeyMismatch',
    );
    assert.equal(err.details?.operation, 2);
    assert.match(err.message, /^Operation 2 \(import\): /);
    assert.equal(await k.ctx.store.getEntry(a), undefined, 'the first import is not applied');
    assert.notEqual((await bindings())['sni:one.example.test'], a);
  });

  it('writes nothing when the third operation names an unknown alias', async () => {
    const a = alias('a');
    const err = await refusesWithoutWriting(
      k.ctx,
      () =>
        apply([
          { op: 'import', alias: a, files: [bundleOf(two)] },
          { op: 'bind', hostname: 'two.example.test', alias: a },
          { op: 'activate', alias: 'nobody-has-this' },
        ]),
      'AliasNotFound',
    );
    assert.deepEqual([err.details?.operation, err.details?.op], [2, 'activate']);
    assert.equal(await k.ctx.store.getEntry(a), undefined);
  });

  it('refuses a stale ifMatch (the entry changed since) with RevisionConflict', async () => {
    const a = alias('a');
    await importEntry(k.ctx, { alias: a, files: [bundleOf(one)], principal: TEST_PRINCIPAL });
    const seen = (await k.ctx.store.getEntry(a))!.updatedRevision;
    await importEntry(k.ctx, {
      alias: a,
      files: [bundleOf(two)],
      replace: true,
      principal: TEST_PRINCIPAL,
    });
    const err = await refusesWithoutWriting(
      k.ctx,
      () =>
        apply([
          { op: 'bind', hostname: 'two.example.test', alias: a },
          { op: 'delete', alias: a, entryRevision: seen },
        ]),
      'RevisionConflict',
    );
    assert.equal(err.details?.operation, 1);
    // The entry's current revision is accepted.
    const current = (await k.ctx.store.getEntry(a))!.updatedRevision;
    await apply([
      { op: 'import', alias: a, files: [bundleOf(one)], replace: true, entryRevision: current },
    ]);
    assert.equal((await k.ctx.store.getEntry(a))!.fingerprint, one.leaf.cert.sha256);
  });

  it('refuses an auditor with Forbidden, naming the operation and the privilege it needs', async () => {
    const auditor: Principal = { actor: 'eve', role: 'auditor', source: 'test' };
    const err = await refusesWithoutWriting(
      k.ctx,
      () => apply([{ op: 'unbind', hostname: 'one.example.test' }], auditor),
      'Forbidden',
    );
    assert.equal(err.details?.operation, 0);
    assert.equal(err.details?.needed, 'server:manage');
  });

  it('refuses an empty list with InvalidChange', async () => {
    await refusesWithoutWriting(k.ctx, () => apply([]), 'InvalidChange');
  });

  it('lets a later operation see an earlier one: unbind, then delete what was bound', async () => {
    const a = alias('a');
    await importEntry(k.ctx, { alias: a, files: [bundleOf(two)], principal: TEST_PRINCIPAL });
    await bindEntry(k.ctx, {
      alias: a,
      binding: 'sni:two.example.test',
      principal: TEST_PRINCIPAL,
    });
    // Alone, the delete is refused: the entry is bound.
    const alone = await refusesWithoutWriting(
      k.ctx,
      () => apply([{ op: 'delete', alias: a }]),
      'AliasInUse',
    );
    assert.equal(alone.details?.operation, 0);
    const result = await apply([
      { op: 'unbind', hostname: 'two.example.test' },
      { op: 'delete', alias: a },
    ]);
    assert.deepEqual(result.operations, [
      { op: 'unbind', hostname: 'two.example.test', alias: a, binding: 'sni:two.example.test' },
      { op: 'delete', alias: a },
    ]);
    assert.equal(await k.ctx.store.getEntry(a), undefined);
    assert.equal((await bindings())['sni:two.example.test'], undefined);
  });

  it('replaces an entry deleted earlier in the batch as a new one, and refuses a pinned activation', async () => {
    const a = alias('a');
    await importEntry(k.ctx, { alias: a, files: [bundleOf(one)], principal: TEST_PRINCIPAL });
    const result = await apply([
      { op: 'delete', alias: a },
      { op: 'import', alias: a, files: [bundleOf(two)] },
    ]);
    assert.equal(result.operations[1]!.op === 'import' && result.operations[1]!.action, 'import');
    assert.equal(result.changesServed, false);
    assert.equal((await k.ctx.store.getEntry(a))!.fingerprint, two.leaf.cert.sha256);
    k.pin.by = 'the --cert flag';
    const err = await refusesWithoutWriting(
      k.ctx,
      () =>
        apply([
          { op: 'bind', hostname: 'two.example.test', alias: a },
          { op: 'activate', alias: a },
        ]),
      'PinnedBySource',
    );
    assert.equal(err.details?.operation, 1);
  });

  it('is refused whole when another writer came first between planning and writing', async () => {
    const a = alias('a');
    const store = k.ctx.store;
    // Another writer creates the alias after the batch was planned, before it is written.
    const racing = {
      ...k.ctx,
      store: new Proxy(store, {
        get(target, name) {
          if (name === 'applyChange') {
            return async (change: Parameters<typeof store.applyChange>[0]) => {
              await importEntry(k.ctx, {
                alias: a,
                files: [bundleOf(two)],
                principal: TEST_PRINCIPAL,
              });
              return target.applyChange(change);
            };
          }
          const value = Reflect.get(target, name);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    };
    const before = await store.revision();
    await assert.rejects(
      applyChanges(racing, {
        principal: TEST_PRINCIPAL,
        operations: [
          { op: 'import', alias: a, files: [bundleOf(one)] },
          { op: 'bind', hostname: 'one.example.test', alias: a },
        ],
      }),
      (err: { code: string; details?: Record<string, unknown> }) =>
        err.code === 'AliasInUse' && err.details?.operation === 0,
    );
    assert.equal(await store.revision(), before + 1, "only the other writer's change");
    assert.equal((await store.getEntry(a))!.fingerprint, two.leaf.cert.sha256);
    assert.notEqual((await bindings())['sni:one.example.test'], a);
  });

  it('refuses a change that sets one binding twice (InvalidChange), naming the second operation', async () => {
    const a = alias('a');
    const b = alias('b');
    const err = await refusesWithoutWriting(
      k.ctx,
      () =>
        apply([
          { op: 'import', alias: a, files: [bundleOf(one)] },
          { op: 'import', alias: b, files: [bundleOf(one)] },
          { op: 'activate', alias: a },
          { op: 'activate', alias: b },
        ]),
      'InvalidChange',
    );
    assert.equal(err.details?.operation, 3);
  });
});
