/**
 * The one behavioural suite of the `Store` interface. Every adapter runs it unchanged:
 *
 *     storeSuite('sqlite', async () => ({ store, reopen, cleanup }));
 *
 * `open` makes a new, empty store for each test. `reopen`, when given, opens another
 * handle on the same data (the first may still be open, as when the CLI writes while the
 * server runs); tests that need it skip without it. Nothing here knows which adapter runs.
 */
import assert from 'node:assert/strict';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type BindingChanges,
  type ChangeInput,
  type EntryRecord,
  isStoreError,
  type Mutation,
  type Store,
  type StoreError,
  type StoreErrorCode,
} from '../../src/store/store.js';
import {
  keyPairEntry,
  type Material,
  makeMaterial,
  pendingEntry,
  trustedEntry,
} from './material.js';

export interface OpenedStore {
  store: Store;
  reopen: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

/** Rejects with a StoreError of `code`, and returns it. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: StoreErrorCode,
): Promise<StoreError> {
  let caught: StoreError | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isStoreError(err), `expected a StoreError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    caught = err;
    return true;
  });
  return caught!;
}

function change(mutations: Mutation[], extra: Partial<ChangeInput> = {}): ChangeInput {
  return { actor: 'test', action: 'test', mutations, ...extra };
}

const ENTRY_FIELDS = [
  'alias',
  'chainPem',
  'certificatePem',
  'createdAt',
  'createdRevision',
  'csrPem',
  'fingerprint',
  'hasPrivateKey',
  'kind',
  'updatedAt',
  'updatedRevision',
].sort();

export function storeSuite(name: string, open: () => Promise<OpenedStore>): void {
  describe(`Store (${name})`, () => {
    let a: Material;
    let b: Material;
    let ctx: OpenedStore;
    let store: Store;
    const extraStores: Store[] = [];

    /** Another handle on the same data, closed after the test. Every adapter must offer one. */
    async function second(): Promise<Store> {
      const other = await ctx.reopen();
      extraStores.push(other);
      return other;
    }

    before(async () => {
      [a, b] = await Promise.all([makeMaterial('a.example'), makeMaterial('b.example')]);
    });
    beforeEach(async () => {
      ctx = await open();
      store = ctx.store;
    });
    afterEach(async () => {
      for (const s of extraStores.splice(0)) await s.close();
      await store.close();
      await ctx.cleanup();
    });

    describe('revisions', () => {
      it('starts empty at revision 0', async () => {
        assert.equal(await store.revision(), 0);
        assert.deepEqual(await store.listEntries(), []);
        assert.deepEqual(await store.listBindings(), []);
        assert.deepEqual(await store.listAudit(), []);
      });

      it('gives each change the next revision', async () => {
        for (let i = 1; i <= 3; i++) {
          const revision = await store.applyChange(
            change([{ type: 'putSecret', name: `s${i}`, value: Buffer.from([i]) }]),
          );
          assert.equal(revision, i);
          assert.equal(await store.revision(), i);
        }
      });

      it('records a change without mutations as a revision of its own', async () => {
        const revision = await store.applyChange(change([], { action: 'probe-failed' }));
        assert.equal(revision, 1);
        assert.equal((await store.listAudit())[0]?.action, 'probe-failed');
      });
    });

    describe('entries', () => {
      it('round-trips a key-pair entry, its private key byte-identical', async () => {
        const revision = await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('web', a, b.certificatePem) }]),
        );
        const entry = await store.getEntry('web');
        assert.ok(entry);
        assert.equal(entry.alias, 'web');
        assert.equal(entry.kind, 'key-pair');
        assert.equal(entry.certificatePem, a.certificatePem);
        assert.equal(entry.chainPem, b.certificatePem);
        assert.equal(entry.csrPem, null);
        assert.equal(entry.hasPrivateKey, true);
        assert.equal(entry.fingerprint, a.fingerprint);
        assert.equal(entry.createdRevision, revision);
        assert.equal(entry.updatedRevision, revision);
        assert.ok(!Number.isNaN(Date.parse(entry.createdAt)), entry.createdAt);
        assert.equal(entry.updatedAt, entry.createdAt);
        const key = await store.getPrivateKey('web');
        assert.ok(key && Buffer.isBuffer(key));
        assert.ok(key.equals(a.keyDer), 'the private key comes back byte-identical');
      });

      it('lists entries by alias without ever exposing key bytes', async () => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('zeta', a) },
            { type: 'putEntry', entry: pendingEntry('alpha', b) },
            { type: 'putEntry', entry: trustedEntry('root', b) },
          ]),
        );
        const entries = await store.listEntries();
        assert.deepEqual(
          entries.map((e) => [e.alias, e.kind, e.hasPrivateKey]),
          [
            ['alpha', 'pending', true],
            ['root', 'trusted', false],
            ['zeta', 'key-pair', true],
          ],
        );
        assert.deepEqual(
          (await store.listEntries({ kind: 'trusted' })).map((e) => e.alias),
          ['root'],
        );
        assert.deepEqual(
          await store.listEntries({ kind: 'key-pair' }).then((l) => l.map((e) => e.alias)),
          ['zeta'],
        );
        const single = (await store.getEntry('zeta')) as EntryRecord;
        for (const e of [...entries, single]) {
          assert.deepEqual(Object.keys(e).sort(), ENTRY_FIELDS);
          for (const value of Object.values(e)) assert.ok(!(value instanceof Uint8Array));
        }
        const text = JSON.stringify([entries, single]);
        for (const m of [a, b]) {
          assert.ok(!text.includes(m.keyDer.toString('base64').slice(20, 60)));
          assert.ok(!text.includes(m.secretBytes.toString('hex')));
        }
      });

      it('pages entries after an alias, at most a limit, in the order of the aliases bytes', async () => {
        // Byte order, not a locale's: digits, then upper case, then lower case; '-' < '.' < '_'.
        const kinds = {
          zeta: 'key-pair',
          a_1: 'trusted',
          'a.1': 'key-pair',
          a: 'trusted',
          B: 'key-pair',
          '0x': 'trusted',
          'a-1': 'key-pair',
          Z9: 'trusted',
        } as const;
        await store.applyChange(
          change(
            Object.entries(kinds).map(([alias, kind]) => ({
              type: 'putEntry',
              entry: kind === 'trusted' ? trustedEntry(alias, a) : keyPairEntry(alias, a),
            })),
          ),
        );
        const ordered = ['0x', 'B', 'Z9', 'a', 'a-1', 'a.1', 'a_1', 'zeta'];
        const aliases = (entries: EntryRecord[]) => entries.map((e) => e.alias);
        assert.deepEqual(aliases(await store.listEntries()), ordered);

        const walked: string[][] = [];
        let after: string | undefined;
        for (;;) {
          const page = aliases(await store.listEntries({ limit: 3, ...(after ? { after } : {}) }));
          if (page.length === 0) break;
          walked.push(page);
          after = page.at(-1);
        }
        assert.deepEqual(walked, [ordered.slice(0, 3), ordered.slice(3, 6), ordered.slice(6)]);

        // An alias that is no entry's starts the page where it would sort.
        assert.deepEqual(aliases(await store.listEntries({ after: 'a0', limit: 5 })), [
          'a_1',
          'zeta',
        ]);
        assert.deepEqual(aliases(await store.listEntries({ after: 'zzz' })), []);
        assert.deepEqual(aliases(await store.listEntries({ after: 'A' })), ordered.slice(1));
        assert.deepEqual(aliases(await store.listEntries({ kind: 'trusted', after: 'B' })), [
          'Z9',
          'a',
          'a_1',
        ]);
        assert.deepEqual(
          aliases(await store.listEntries({ kind: 'key-pair', after: 'B', limit: 2 })),
          ['a-1', 'a.1'],
        );
        for (const limit of [0, -1, 1.5, Number.NaN]) {
          await assert.rejects(store.listEntries({ limit }), RangeError, `limit ${limit}`);
        }
      });

      it('keeps a trusted entry without a key', async () => {
        await store.applyChange(change([{ type: 'putEntry', entry: trustedEntry('root', a) }]));
        const entry = await store.getEntry('root');
        assert.equal(entry?.fingerprint, a.fingerprint);
        assert.equal(entry?.hasPrivateKey, false);
        assert.equal(await store.getPrivateKey('root'), undefined);
      });

      it('replaces a pending entry by its key-pair, keeping its creation', async () => {
        const created = await store.applyChange(
          change([{ type: 'putEntry', entry: pendingEntry('csr1', a) }]),
        );
        const pending = await store.getEntry('csr1');
        assert.equal(pending?.kind, 'pending');
        assert.equal(pending?.csrPem, a.csrPem);
        assert.equal(pending?.certificatePem, null);
        assert.equal(pending?.fingerprint, null);
        assert.ok((await store.getPrivateKey('csr1'))?.equals(a.keyDer));

        const completed = await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('csr1', a) }]),
        );
        const entry = await store.getEntry('csr1');
        assert.equal(entry?.kind, 'key-pair');
        assert.equal(entry?.csrPem, null);
        assert.equal(entry?.certificatePem, a.certificatePem);
        assert.equal(entry?.createdRevision, created);
        assert.equal(entry?.updatedRevision, completed);
        assert.equal(entry?.createdAt, pending?.createdAt);
        assert.ok((await store.getPrivateKey('csr1'))?.equals(a.keyDer));
      });

      it('deletes an unbound entry, and refuses to delete a missing one', async () => {
        await store.applyChange(change([{ type: 'putEntry', entry: keyPairEntry('old', a) }]));
        await store.applyChange(change([{ type: 'deleteEntry', alias: 'old' }]));
        assert.equal(await store.getEntry('old'), undefined);
        assert.equal(await store.getPrivateKey('old'), undefined);
        await rejectsWith(
          store.applyChange(change([{ type: 'deleteEntry', alias: 'old' }])),
          'AliasNotFound',
        );
        assert.equal(await store.revision(), 2);
      });

      it('answers undefined for names it does not hold', async () => {
        assert.equal(await store.getEntry('nope'), undefined);
        assert.equal(await store.getPrivateKey('nope'), undefined);
        assert.equal(await store.getSecret('nope'), undefined);
      });

      it('keeps aliases apart that differ only in case or spacing', async () => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('Web', a) },
            { type: 'putEntry', entry: keyPairEntry('web', b) },
            { type: 'putEntry', entry: keyPairEntry('web ', a) },
          ]),
        );
        assert.ok((await store.getPrivateKey('web'))?.equals(b.keyDer));
        assert.ok((await store.getPrivateKey('Web'))?.equals(a.keyDer));
        assert.equal((await store.listEntries()).length, 3);
      });
    });

    describe('bindings', () => {
      it('binds, rebinds and unbinds, each binding carrying its revision', async () => {
        const r1 = await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('one', a) },
            { type: 'putEntry', entry: keyPairEntry('two', b) },
            { type: 'bind', name: 'server', alias: 'one' },
            { type: 'bind', name: 'sni:*.example.com', alias: 'two' },
          ]),
        );
        assert.deepEqual(await store.listBindings(), [
          { name: 'server', alias: 'one', revision: r1 },
          { name: 'sni:*.example.com', alias: 'two', revision: r1 },
        ]);
        const r2 = await store.applyChange(
          change([{ type: 'bind', name: 'server', alias: 'two' }]),
        );
        const r3 = await store.applyChange(change([{ type: 'unbind', name: 'sni:*.example.com' }]));
        assert.equal(r3, r2 + 1);
        assert.deepEqual(await store.listBindings(), [
          { name: 'server', alias: 'two', revision: r2 },
        ]);
      });

      it("holds and removes SNI names by syntax alone: the host name policy is the service's", async () => {
        // Names an older version wrote, which the service refuses for new bindings.
        const names = ['sni:*.lan', 'sni:*.com', 'sni:_svc.example.com'];
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('one', a) },
            ...names.map((name) => ({ type: 'bind' as const, name, alias: 'one' })),
          ]),
        );
        assert.deepEqual((await store.listBindings()).map((b) => b.name).sort(), [...names].sort());
        await store.applyChange(change(names.map((name) => ({ type: 'unbind' as const, name }))));
        assert.deepEqual(await store.listBindings(), []);
      });

      it('lists each binding with the revision and fingerprint of its entry', async () => {
        const r1 = await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('one', a) },
            { type: 'putEntry', entry: keyPairEntry('two', b) },
            { type: 'bind', name: 'server', alias: 'one' },
            { type: 'bind', name: 'sni:a.example.com', alias: 'two' },
          ]),
        );
        const one = await store.getEntry('one');
        const r2 = await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('two', a) }]),
        );
        const two = await store.getEntry('two');
        assert.deepEqual(await store.listBoundEntries(), [
          {
            name: 'server',
            alias: 'one',
            revision: r1,
            entryRevision: r1,
            fingerprint: one?.fingerprint,
          },
          {
            name: 'sni:a.example.com',
            alias: 'two',
            revision: r1,
            entryRevision: r2,
            fingerprint: two?.fingerprint,
          },
        ]);
        assert.notEqual(one?.fingerprint, undefined);

        // What changed after a revision: entry "two" was replaced at r2.
        const names = (c: BindingChanges) => c.changed.map((b) => b.name);
        assert.deepEqual(names(await store.listBindingChanges(r1)), ['sni:a.example.com']);
        assert.deepEqual(await store.listBindingChanges(r2), {
          revision: r2,
          total: 2,
          changed: [],
        });
        const r3 = await store.applyChange(
          change([{ type: 'bind', name: 'server', alias: 'two' }]),
        );
        const afterRebind = await store.listBindingChanges(r2);
        assert.deepEqual(
          afterRebind.changed.map((b) => [b.name, b.alias, b.revision]),
          [['server', 'two', r3]],
        );
        assert.equal(afterRebind.revision, r3);
        const r4 = await store.applyChange(change([{ type: 'unbind', name: 'sni:a.example.com' }]));
        assert.deepEqual(await store.listBindingChanges(r3), {
          revision: r4,
          total: 1,
          changed: [],
        });
      });

      it('refuses to bind a missing alias with AliasNotFound', async () => {
        await rejectsWith(
          store.applyChange(change([{ type: 'bind', name: 'server', alias: 'ghost' }])),
          'AliasNotFound',
        );
        assert.equal(await store.revision(), 0);
      });

      it('binds only key-pair entries', async () => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: pendingEntry('pending', a) },
            { type: 'putEntry', entry: trustedEntry('root', b) },
          ]),
        );
        for (const alias of ['pending', 'root']) {
          await rejectsWith(
            store.applyChange(change([{ type: 'bind', name: 'server', alias }])),
            'InvalidMutation',
          );
        }
      });

      it('refuses to turn a bound entry into one that can not serve', async () => {
        const bound = await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('live', a) },
            { type: 'bind', name: 'server', alias: 'live' },
          ]),
        );
        for (const entry of [pendingEntry('live', b), trustedEntry('live', b)]) {
          await rejectsWith(
            store.applyChange(change([{ type: 'putEntry', entry }])),
            'InvalidMutation',
          );
        }
        assert.equal(await store.revision(), bound);
        assert.equal((await store.getEntry('live'))?.kind, 'key-pair');
        const replaced = await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('live', b) }]),
        );
        assert.equal((await store.getEntry('live'))?.updatedRevision, replaced);
      });

      it('refuses to delete a bound entry with AliasInUse and changes nothing', async () => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('live', a) },
            { type: 'bind', name: 'server', alias: 'live' },
            { type: 'bind', name: 'sni:www.example.com', alias: 'live' },
          ]),
        );
        const before = {
          revision: await store.revision(),
          entries: await store.listEntries(),
          bindings: await store.listBindings(),
          audit: await store.listAudit(),
        };
        const err = await rejectsWith(
          store.applyChange(
            change([
              { type: 'putSecret', name: 'x', value: Buffer.from('x') },
              { type: 'deleteEntry', alias: 'live' },
            ]),
          ),
          'AliasInUse',
        );
        // The change's own check names what holds the entry (a foreign key alone can't).
        assert.deepEqual(err.details, {
          alias: 'live',
          bindings: ['server', 'sni:www.example.com'],
        });
        assert.deepEqual(
          {
            revision: await store.revision(),
            entries: await store.listEntries(),
            bindings: await store.listBindings(),
            audit: await store.listAudit(),
          },
          before,
        );
        assert.equal(await store.getSecret('x'), undefined);
        assert.ok((await store.getPrivateKey('live'))?.equals(a.keyDer));
      });

      it('deletes an entry unbound in the same change', async () => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('live', a) },
            { type: 'bind', name: 'server', alias: 'live' },
          ]),
        );
        await store.applyChange(
          change([
            { type: 'unbind', name: 'server' },
            { type: 'deleteEntry', alias: 'live' },
          ]),
        );
        assert.deepEqual(await store.listEntries(), []);
        assert.deepEqual(await store.listBindings(), []);
      });

      it('refuses to remove a binding that does not exist', async () => {
        await rejectsWith(
          store.applyChange(change([{ type: 'unbind', name: 'server' }])),
          'InvalidMutation',
        );
      });
    });

    describe('atomic changes', () => {
      it('refuses a change made for another revision with RevisionConflict', async () => {
        await store.applyChange(change([], { expectedRevision: 0 }));
        await rejectsWith(
          store.applyChange(
            change([{ type: 'putEntry', entry: keyPairEntry('late', a) }], { expectedRevision: 0 }),
          ),
          'RevisionConflict',
        );
        assert.equal(await store.getEntry('late'), undefined);
        assert.equal(await store.revision(), 1);
        assert.equal(await store.applyChange(change([], { expectedRevision: 1 })), 2);
      });

      it('lets exactly one of two changes for the same revision win', async () => {
        const results = await Promise.allSettled(
          ['x', 'y'].map((alias) =>
            store.applyChange(
              change([{ type: 'putEntry', entry: keyPairEntry(alias, a) }], {
                expectedRevision: 0,
              }),
            ),
          ),
        );
        assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isStoreError(failed.reason, 'RevisionConflict'));
        assert.equal((await store.listEntries()).length, 1);
      });

      it('writes none of a change whose third mutation fails against the stored state', async () => {
        await rejectsWith(
          store.applyChange(
            change([
              { type: 'putEntry', entry: keyPairEntry('first', a) },
              { type: 'bind', name: 'server', alias: 'first' },
              { type: 'deleteEntry', alias: 'ghost' },
            ]),
          ),
          'AliasNotFound',
        );
        assert.equal(await store.revision(), 0);
        assert.deepEqual(await store.listEntries(), []);
        assert.deepEqual(await store.listBindings(), []);
        assert.deepEqual(await store.listAudit(), []);
      });

      it('writes none of a change whose third mutation is nonsense', async () => {
        await rejectsWith(
          store.applyChange(
            change([
              { type: 'putEntry', entry: keyPairEntry('first', a) },
              { type: 'putSecret', name: 'k', value: Buffer.from('v') },
              {
                type: 'putEntry',
                entry: { ...pendingEntry('odd', b), certificatePem: b.certificatePem },
              },
            ]),
          ),
          'InvalidMutation',
        );
        assert.equal(await store.revision(), 0);
        assert.deepEqual(await store.listEntries(), []);
        assert.equal(await store.getSecret('k'), undefined);
      });

      it('refuses nonsense with InvalidMutation', async () => {
        const nonsense: [string, Mutation[] | ChangeInput][] = [
          [
            'a pending entry with a certificate',
            [
              {
                type: 'putEntry',
                entry: { ...pendingEntry('p', a), certificatePem: a.certificatePem },
              },
            ],
          ],
          [
            'a pending entry without its CSR',
            [{ type: 'putEntry', entry: { ...pendingEntry('p', a), csrPem: null } }],
          ],
          [
            'a key-pair without its key',
            [{ type: 'putEntry', entry: { ...keyPairEntry('k', a), privateKeyDer: null } }],
          ],
          [
            'a key-pair without its certificate',
            [{ type: 'putEntry', entry: { ...keyPairEntry('k', a), certificatePem: null } }],
          ],
          [
            'a key-pair keeping a CSR',
            [{ type: 'putEntry', entry: { ...keyPairEntry('k', a), csrPem: a.csrPem } }],
          ],
          [
            'a trusted entry with a key',
            [{ type: 'putEntry', entry: { ...trustedEntry('t', a), privateKeyDer: a.keyDer } }],
          ],
          [
            'an unknown kind',
            [{ type: 'putEntry', entry: { ...keyPairEntry('k', a), kind: 'other' as 'trusted' } }],
          ],
          [
            'a key that is not PKCS#8 DER',
            [
              {
                type: 'putEntry',
                entry: { ...keyPairEntry('k', a), privateKeyDer: Buffer.from('not a key') },
              },
            ],
          ],
          [
            'a key in the certificate field',
            [
              {
                type: 'putEntry',
                entry: {
                  ...keyPairEntry('k', a),
                  certificatePem: `${a.certificatePem}-----BEGIN PRIVATE KEY-----\n${a.keyDer.toString('base64')}\n-----END PRIVATE KEY-----\n`,
                },
              },
            ],
          ],
          [
            'a key in the chain field',
            [
              {
                type: 'putEntry',
                entry: {
                  ...keyPairEntry('k', a),
                  chainPem: `-----BEGIN PRIVATE KEY-----\n${a.keyDer.toString('base64')}\n-----END PRIVATE KEY-----\n`,
                },
              },
            ],
          ],
          [
            'two certificates as the certificate',
            [
              {
                type: 'putEntry',
                entry: {
                  ...keyPairEntry('k', a),
                  certificatePem: a.certificatePem + b.certificatePem,
                },
              },
            ],
          ],
          [
            'a fingerprint of another certificate',
            [{ type: 'putEntry', entry: { ...keyPairEntry('k', a), fingerprint: b.fingerprint } }],
          ],
          ['an empty alias', [{ type: 'putEntry', entry: keyPairEntry('', a) }]],
          [
            'an alias with a control character',
            [{ type: 'putEntry', entry: keyPairEntry('a\nb', a) }],
          ],
          [
            'a binding name of no known form',
            [{ type: 'bind', name: 'sni:Upper.Example', alias: 'x' }],
          ],
          [
            'a binding name with an inner wildcard',
            [{ type: 'bind', name: 'sni:www.*.example.com', alias: 'x' }],
          ],
          ['an unknown mutation type', [{ type: 'explode' } as unknown as Mutation]],
          [
            'a secret that is not bytes',
            [{ type: 'putSecret', name: 's', value: 'text' as unknown as Buffer }],
          ],
          ['bytes in the audit details', change([], { details: { key: a.keyDer } })],
          ['no actor', change([], { actor: '' })],
          ['a negative expected revision', change([], { expectedRevision: -1 })],
        ];
        for (const [what, input] of nonsense) {
          const c = Array.isArray(input) ? change(input) : input;
          await assert.rejects(store.applyChange(c), (err: unknown) => {
            assert.ok(isStoreError(err, 'InvalidMutation'), `${what}: got ${String(err)}`);
            return true;
          });
        }
        assert.equal(await store.revision(), 0);
      });
    });

    describe('audit', () => {
      it('records one row per change, newest first, after a revision, limited', async () => {
        await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('web', a) }], {
            actor: 'cli',
            action: 'import',
            target: 'web',
            details: { files: ['a.pem'], n: 1 },
          }),
        );
        await store.applyChange(
          change([{ type: 'bind', name: 'server', alias: 'web' }], {
            actor: 'api:admin',
            action: 'activate',
            target: 'server',
          }),
        );
        await store.applyChange(
          change([{ type: 'unbind', name: 'server' }], { action: 'deactivate' }),
        );
        await rejectsWith(
          store.applyChange(change([{ type: 'unbind', name: 'server' }])),
          'InvalidMutation',
        );

        const audit = await store.listAudit();
        assert.deepEqual(
          audit.map((r) => [r.revision, r.actor, r.action, r.target]),
          [
            [3, 'test', 'deactivate', null],
            [2, 'api:admin', 'activate', 'server'],
            [1, 'cli', 'import', 'web'],
          ],
        );
        assert.deepEqual(audit[2]?.details, { files: ['a.pem'], n: 1 });
        assert.deepEqual(audit[0]?.details, {});
        for (const r of audit) assert.ok(!Number.isNaN(Date.parse(r.at)), r.at);
        assert.deepEqual(
          (await store.listAudit({ afterRevision: 1 })).map((r) => r.revision),
          [3, 2],
        );
        assert.deepEqual(
          (await store.listAudit({ limit: 1 })).map((r) => r.revision),
          [3],
        );
        assert.deepEqual(await store.listAudit({ afterRevision: 3 }), []);
      });
    });

    describe('preconditions', () => {
      it('checks each precondition inside the transaction and writes nothing when one fails', async () => {
        const r1 = await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('web', a) }]),
        );
        const put = (preconditions: ChangeInput['preconditions']) =>
          store.applyChange(
            change([{ type: 'putEntry', entry: keyPairEntry('web', b) }], { preconditions }),
          );
        await rejectsWith(put([{ type: 'entryAbsent', alias: 'web' }]), 'AliasInUse');
        await rejectsWith(put([{ type: 'entryExists', alias: 'nope' }]), 'AliasNotFound');
        await rejectsWith(
          put([{ type: 'entryRevision', alias: 'web', revision: r1 + 7 }]),
          'RevisionConflict',
        );
        await rejectsWith(
          put([{ type: 'bindingIs', name: 'server', alias: 'web' }]),
          'RevisionConflict',
        );
        await rejectsWith(put([{ type: 'userExists', username: 'ghost' }]), 'UserNotFound');
        assert.equal(await store.revision(), r1);
        assert.equal((await store.getEntry('web'))?.fingerprint, a.fingerprint);
        const r2 = await put([
          { type: 'entryExists', alias: 'web' },
          { type: 'entryRevision', alias: 'web', revision: r1 },
          { type: 'bindingIs', name: 'server', alias: null },
          { type: 'userAbsent', username: 'ghost' },
        ]);
        assert.equal(r2, r1 + 1);
        assert.equal((await store.getEntry('web'))?.fingerprint, b.fingerprint);
      });

      it('refuses a precondition on a missing entry, a taken username or a moved binding', async () => {
        const r1 = await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('one', a) },
            { type: 'putEntry', entry: keyPairEntry('two', b) },
            { type: 'bind', name: 'server', alias: 'two' },
            {
              type: 'putUser',
              user: {
                username: 'ann',
                role: 'admin',
                passwordHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
                mustChangePassword: false,
              },
            },
          ]),
        );
        const guarded = (preconditions: ChangeInput['preconditions']) =>
          store.applyChange(
            change([{ type: 'bind', name: 'server', alias: 'one' }], { preconditions }),
          );
        await rejectsWith(
          guarded([{ type: 'entryRevision', alias: 'gone', revision: r1 }]),
          'AliasNotFound',
        );
        await rejectsWith(guarded([{ type: 'userAbsent', username: 'ann' }]), 'UserExists');
        await rejectsWith(
          guarded([{ type: 'bindingIs', name: 'server', alias: 'one' }]),
          'RevisionConflict',
        );
        await rejectsWith(
          guarded([{ type: 'bindingIs', name: 'server', alias: null }]),
          'RevisionConflict',
        );
        assert.equal(await store.revision(), r1);
        assert.equal((await store.listBindings())[0]?.alias, 'two');
        const r2 = await guarded([
          { type: 'userExists', username: 'ann' },
          { type: 'bindingIs', name: 'server', alias: 'two' },
          { type: 'bindingIs', name: 'ca', alias: null },
        ]);
        assert.equal(r2, r1 + 1);
        assert.equal((await store.listBindings())[0]?.alias, 'one');
      });

      it('lets exactly one of two writers racing with the same entry revision win', async () => {
        const r1 = await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('web', a) }]),
        );
        const other = await second();
        const guarded = (s: Store, m: Material) =>
          s.applyChange(
            change([{ type: 'putEntry', entry: keyPairEntry('web', m) }], {
              preconditions: [{ type: 'entryRevision', alias: 'web', revision: r1 }],
            }),
          );
        const results = await Promise.allSettled([guarded(store, a), guarded(other, b)]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isStoreError(lost.reason, 'RevisionConflict'));
        assert.equal(await store.revision(), r1 + 1);
      });
    });

    describe('the audit chain', () => {
      it('appends every change and every event to one hash chain, with fingerprints before and after', async () => {
        await store.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('web', a) }], { source: '192.0.2.7' }),
        );
        await store.applyChange(change([{ type: 'bind', name: 'server', alias: 'web' }]));
        const seq = await store.appendAudit({
          actor: 'api:eve',
          source: '198.51.100.1',
          action: 'login',
          outcome: 'denied',
          details: { reason: 'wrong password' },
        });
        await store.applyChange(change([{ type: 'putEntry', entry: keyPairEntry('web', b) }]));
        const records = await store.listAudit();
        assert.deepEqual(
          records.map((r) => [r.seq, r.revision, r.action, r.outcome]),
          [
            [4, 3, 'test', 'applied'],
            [3, null, 'login', 'denied'],
            [2, 2, 'test', 'applied'],
            [1, 1, 'test', 'applied'],
          ],
        );
        assert.equal(seq, 3);
        assert.equal(records[3]!.source, '192.0.2.7');
        assert.deepEqual(records[3]!.before, { web: null });
        assert.deepEqual(records[3]!.after, { web: a.fingerprint });
        assert.deepEqual(records[2]!.after, { 'binding:server': a.fingerprint });
        assert.deepEqual(records[0]!.before, { web: a.fingerprint });
        assert.deepEqual(records[0]!.after, { web: b.fingerprint });
        for (let i = 0; i < records.length - 1; i++) {
          assert.equal(records[i]!.prevHash, records[i + 1]!.hash);
        }
        assert.deepEqual(await store.verifyAudit(), { ok: true, records: 4 });
        assert.deepEqual(
          (await store.listAudit({ beforeSeq: 3, limit: 1 })).map((r) => r.seq),
          [2],
        );
        assert.deepEqual(
          (await store.listAudit({ afterRevision: 2 })).map((r) => r.seq),
          [4, 3],
        );
        assert.equal(await store.revision(), 3, 'an event takes no revision');
      });

      it('records the fingerprint each entry and binding had before its first touch and after the last', async () => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('old', a) },
            { type: 'bind', name: 'server', alias: 'old' },
            { type: 'bind', name: 'sni:a.example.com', alias: 'old' },
          ]),
        );
        await store.applyChange(
          change([
            { type: 'unbind', name: 'server' },
            { type: 'unbind', name: 'sni:a.example.com' },
            { type: 'deleteEntry', alias: 'old' },
            { type: 'putEntry', entry: keyPairEntry('new', a) },
            { type: 'putEntry', entry: keyPairEntry('new', b) },
            { type: 'bind', name: 'server', alias: 'new' },
            { type: 'putEntry', entry: pendingEntry('csr', a) },
          ]),
        );
        const [record] = await store.listAudit({ limit: 1 });
        assert.deepEqual(record?.before, {
          'binding:server': a.fingerprint,
          'binding:sni:a.example.com': a.fingerprint,
          old: a.fingerprint,
          new: null,
          csr: null,
        });
        assert.deepEqual(record?.after, {
          'binding:server': b.fingerprint,
          'binding:sni:a.example.com': null,
          old: null,
          new: b.fingerprint,
          csr: null,
        });
        const seq = await store.appendAudit({ actor: 'x', action: 'export', outcome: 'done' });
        const [event] = await store.listAudit({ limit: 1 });
        assert.deepEqual([event?.seq, event?.before, event?.after], [seq, {}, {}]);
      });

      it('refuses an event without an outcome, and bytes in its details', async () => {
        await rejectsWith(
          store.appendAudit({ actor: 'x', action: 'y', outcome: '' }),
          'InvalidMutation',
        );
        await rejectsWith(
          store.appendAudit({
            actor: 'x',
            action: 'y',
            outcome: 'done',
            details: { key: Buffer.from('secret') },
          }),
          'InvalidMutation',
        );
        assert.deepEqual(await store.verifyAudit(), { ok: true, records: 0 });
      });
    });

    describe('users, tokens and settings', () => {
      const hash = 'scrypt$16384$8$1$c2FsdA$aGFzaA';
      it('keeps users, tokens and settings under the revision, and a user removal ends their sessions and tokens', async () => {
        const r1 = await store.applyChange(
          change([
            {
              type: 'putUser',
              user: {
                username: 'ann',
                role: 'admin',
                passwordHash: hash,
                mustChangePassword: true,
              },
            },
            {
              type: 'putToken',
              token: {
                id: 'tok1',
                name: 'deploy',
                role: 'operator',
                username: 'ann',
                secretHash: 'h1',
                expiresAt: null,
              },
            },
            { type: 'putSetting', name: 'pending-confirmation', value: { deadline: 'x', n: 1 } },
          ]),
        );
        const ann = await store.getUser('ann');
        assert.equal(ann?.role, 'admin');
        assert.equal(ann?.mustChangePassword, true);
        assert.equal(ann?.createdRevision, r1);
        assert.deepEqual(
          (await store.listTokens()).map((t) => [t.id, t.role, t.username]),
          [['tok1', 'operator', 'ann']],
        );
        assert.deepEqual(await store.getSetting('pending-confirmation'), { deadline: 'x', n: 1 });
        const now = new Date().toISOString();
        await store.putSession({
          idHash: 's1',
          username: 'ann',
          role: 'admin',
          source: null,
          createdAt: now,
          lastUsedAt: now,
          idleExpiresAt: now,
          expiresAt: now,
        });
        await rejectsWith(
          store.applyChange(
            change([
              {
                type: 'putUser',
                user: {
                  username: 'bob',
                  role: 'admin',
                  passwordHash: 'plain',
                  mustChangePassword: false,
                },
              },
            ]),
          ),
          'InvalidMutation',
        );
        await rejectsWith(
          store.applyChange(change([{ type: 'deleteUser', username: 'ghost' }])),
          'UserNotFound',
        );
        await rejectsWith(
          store.applyChange(change([{ type: 'deleteToken', id: 'ghost' }])),
          'TokenNotFound',
        );
        const r2 = await store.applyChange(
          change([
            { type: 'deleteUser', username: 'ann' },
            { type: 'deleteSetting', name: 'pending-confirmation' },
          ]),
        );
        assert.equal(r2, r1 + 1);
        assert.equal(await store.getUser('ann'), undefined);
        assert.equal(await store.getSession('s1'), undefined);
        assert.deepEqual(await store.listTokens(), []);
        assert.equal(await store.getSetting('pending-confirmation'), undefined);
      });
    });

    describe('user removal', () => {
      const user = (username: string): Mutation => ({
        type: 'putUser',
        user: {
          username,
          role: 'operator',
          passwordHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
          mustChangePassword: false,
        },
      });
      const token = (id: string, username: string): Mutation => ({
        type: 'putToken',
        token: {
          id,
          name: id,
          role: 'operator',
          username,
          secretHash: `hash-${id}`,
          expiresAt: null,
        },
      });
      const session = (idHash: string, username: string) => {
        const at = new Date(Date.UTC(2030, 0, 1)).toISOString();
        return store.putSession({
          idHash,
          username,
          role: 'operator',
          source: null,
          createdAt: at,
          lastUsedAt: at,
          idleExpiresAt: at,
          expiresAt: at,
        });
      };

      it('ends the sessions and tokens of the removed user only', async () => {
        await store.applyChange(
          change([
            user('ann'),
            user('bob'),
            token('ann-1', 'ann'),
            token('ann-2', 'ann'),
            token('bob-1', 'bob'),
          ]),
        );
        await session('s-ann', 'ann');
        await session('s-bob', 'bob');
        await store.applyChange(change([{ type: 'deleteUser', username: 'ann' }]));
        assert.deepEqual(
          (await store.listUsers()).map((u) => u.username),
          ['bob'],
        );
        assert.deepEqual(
          (await store.listTokens()).map((t) => t.id),
          ['bob-1'],
        );
        assert.equal(await store.getSession('s-ann'), undefined);
        assert.equal((await store.getSession('s-bob'))?.username, 'bob');
      });

      it('deletes a token by id, and refuses a token or user removed already', async () => {
        await store.applyChange(change([user('bob'), token('bob-1', 'bob')]));
        const r = await store.applyChange(change([{ type: 'deleteToken', id: 'bob-1' }]));
        assert.equal(await store.getToken('bob-1'), undefined);
        await rejectsWith(
          store.applyChange(change([{ type: 'deleteToken', id: 'bob-1' }])),
          'TokenNotFound',
        );
        await store.applyChange(change([{ type: 'deleteUser', username: 'bob' }]));
        await rejectsWith(
          store.applyChange(change([{ type: 'deleteUser', username: 'bob' }])),
          'UserNotFound',
        );
        assert.equal(await store.revision(), r + 1);
      });
    });

    describe('user roles', () => {
      const hash = 'scrypt$16384$8$1$c2FsdA$aGFzaA';
      const admin = (username: string): Mutation => ({
        type: 'putUser',
        user: { username, role: 'admin', passwordHash: hash, mustChangePassword: true },
      });

      it('changes only the role, keeping the password hash, and refuses a missing user', async () => {
        const r1 = await store.applyChange(change([admin('ann')]));
        const r2 = await store.applyChange(
          change([{ type: 'setUserRole', username: 'ann', role: 'auditor' }]),
        );
        assert.equal(r2, r1 + 1);
        const ann = await store.getUser('ann');
        assert.equal(ann?.role, 'auditor');
        assert.equal(ann?.passwordHash, hash);
        assert.equal(ann?.mustChangePassword, true);
        assert.equal(ann?.createdRevision, r1);
        assert.equal(ann?.updatedRevision, r2);
        await rejectsWith(
          store.applyChange(change([{ type: 'setUserRole', username: 'ghost', role: 'admin' }])),
          'UserNotFound',
        );
        await rejectsWith(
          store.applyChange(
            change([{ type: 'setUserRole', username: 'ann', role: 'root' as 'admin' }]),
          ),
          'InvalidMutation',
        );
        assert.equal(await store.revision(), r2);
      });

      it('checks userHasRole inside the transaction: UserNotFound, or RevisionConflict for another role', async () => {
        const r1 = await store.applyChange(change([admin('ann')]));
        const guarded = (preconditions: ChangeInput['preconditions']) =>
          store.applyChange(change([], { preconditions }));
        await rejectsWith(
          guarded([{ type: 'userHasRole', username: 'ghost', role: 'admin' }]),
          'UserNotFound',
        );
        const moved = await rejectsWith(
          guarded([{ type: 'userHasRole', username: 'ann', role: 'operator' }]),
          'RevisionConflict',
        );
        assert.match(moved.message, /"ann" is now admin, not operator/);
        await rejectsWith(
          guarded([{ type: 'userHasRole', username: 'ann', role: 'owner' as 'admin' }]),
          'InvalidMutation',
        );
        assert.equal(await store.revision(), r1);
        assert.equal(
          await guarded([{ type: 'userHasRole', username: 'ann', role: 'admin' }]),
          r1 + 1,
        );
      });

      it('lets only one of two writers demoting each other, each guarded by the other still an admin, win', async () => {
        await store.applyChange(change([admin('ann'), admin('bob')]));
        const other = await second();
        const demote = (s: Store, username: string, keeper: string) =>
          s.applyChange(
            change([{ type: 'setUserRole', username, role: 'operator' }], {
              preconditions: [
                { type: 'userHasRole', username, role: 'admin' },
                { type: 'userHasRole', username: keeper, role: 'admin' },
              ],
            }),
          );
        const results = await Promise.allSettled([
          demote(store, 'ann', 'bob'),
          demote(other, 'bob', 'ann'),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isStoreError(lost.reason, 'RevisionConflict'), String(lost.reason));
        const admins = (await store.listUsers()).filter((u) => u.role === 'admin');
        assert.equal(admins.length, 1);
      });
    });

    describe('records outside the revision', () => {
      it('keeps sessions, login failures, node status and runtime secrets without a revision, an audit record or a wake-up', async () => {
        const woken: number[] = [];
        const unwatch = store.watch((r) => woken.push(r));
        const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
        await store.putSession({
          idHash: 'h',
          username: 'ann',
          role: 'operator',
          source: '192.0.2.1',
          createdAt: t(0),
          lastUsedAt: t(0),
          idleExpiresAt: t(10),
          expiresAt: t(100),
        });
        assert.equal(await store.touchSession('h', t(5), t(20)), true);
        assert.equal((await store.getSession('h'))?.idleExpiresAt, t(20));
        assert.equal(await store.touchSession('gone', t(5), t(20)), false);
        assert.equal(await store.deleteExpiredSessions(t(19)), 0);
        assert.equal(await store.deleteExpiredSessions(t(20)), 1);
        assert.equal(await store.deleteSession('h'), false);

        for (const [idHash, username] of [
          ['a1', 'ann'],
          ['a2', 'ann'],
          ['a3', 'ann'],
          ['b1', 'bob'],
        ] as const) {
          await store.putSession({
            idHash,
            username,
            role: 'operator',
            source: null,
            createdAt: t(0),
            lastUsedAt: t(0),
            idleExpiresAt: t(50),
            expiresAt: t(100),
          });
        }
        assert.equal(await store.deleteUserSessions('ann', 'a2'), 2);
        assert.equal(await store.getSession('a1'), undefined);
        assert.ok(await store.getSession('a2'), 'the session that asked stays');
        assert.ok(await store.getSession('b1'), "another user's session stays");
        assert.equal(await store.deleteUserSessions('ann'), 1);
        assert.equal(await store.deleteUserSessions('bob'), 1);
        assert.equal(await store.deleteUserSessions('nobody'), 0);

        await store.recordLoginFailure('user:ann', t(1));
        await store.recordLoginFailure('user:ann', t(2));
        await store.recordLoginFailure('addr:192.0.2.1', t(2));
        assert.equal(await store.countLoginFailures('user:ann', t(2)), 1);
        assert.equal(await store.countLoginFailures('user:ann', t(0)), 2);
        await store.clearLoginFailures('user:ann');
        assert.equal(await store.countLoginFailures('user:ann', t(0)), 0);
        await store.recordLoginFailure('user:bob', t(3));
        assert.equal(await store.deleteLoginFailuresBefore(t(2)), 0, 'at t(2) is not before it');
        assert.equal(await store.deleteLoginFailuresBefore(t(3)), 1);
        assert.equal(await store.countLoginFailures('addr:192.0.2.1', t(0)), 0);
        assert.equal(await store.countLoginFailures('user:bob', t(0)), 1);

        await store.putNodeStatus('node-1', { servedRevision: 4, pinnedBy: null });
        await store.putNodeStatus('node-1', { servedRevision: 5, pinnedBy: 'flag' });
        const status = await store.listNodeStatus();
        assert.deepEqual(
          status.map((s) => [s.node, s.status]),
          [['node-1', { servedRevision: 5, pinnedBy: 'flag' }]],
        );
        await store.deleteNodeStatus('node-1');
        assert.deepEqual(await store.listNodeStatus(), []);

        await store.putRuntimeSecret('tls-ticket-key', Buffer.from([1, 2, 3]));
        assert.deepEqual([...((await store.getRuntimeSecret('tls-ticket-key')) ?? [])], [1, 2, 3]);
        assert.equal(await store.getSecret('tls-ticket-key'), undefined, 'not a revisioned secret');

        assert.equal(await store.revision(), 0);
        assert.deepEqual(await store.listAudit(), []);
        await sleep(150);
        unwatch();
        assert.deepEqual(woken, []);
      });
    });

    describe('secrets', () => {
      it('round-trips secrets byte-identical and replaces them', async () => {
        const value = Buffer.from([0, 1, 2, 255, 254, 0]);
        await store.applyChange(
          change([
            { type: 'putSecret', name: 'ticket-keys', value },
            { type: 'putSecret', name: 'empty', value: Buffer.alloc(0) },
          ]),
        );
        assert.ok((await store.getSecret('ticket-keys'))?.equals(value));
        assert.equal((await store.getSecret('empty'))?.length, 0);
        await store.applyChange(
          change([{ type: 'putSecret', name: 'ticket-keys', value: Buffer.from('new') }]),
        );
        assert.equal((await store.getSecret('ticket-keys'))?.toString(), 'new');
      });

      it('keeps a secret and an entry of the same name apart', async () => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('same', a) },
            { type: 'putSecret', name: 'same', value: Buffer.from('secret') },
          ]),
        );
        assert.ok((await store.getPrivateKey('same'))?.equals(a.keyDer));
        assert.equal((await store.getSecret('same'))?.toString(), 'secret');
      });
    });

    describe('watch', () => {
      it('fires once per commit with the new revision, not for a failed change', async () => {
        const seen: number[] = [];
        store.watch((revision) => seen.push(revision));
        const r1 = await store.applyChange(change([]));
        assert.deepEqual(seen, [r1], 'fires by the time applyChange resolves');
        await rejectsWith(
          store.applyChange(change([], { expectedRevision: 0 })),
          'RevisionConflict',
        );
        const r2 = await store.applyChange(
          change([{ type: 'putSecret', name: 's', value: Buffer.from('v') }]),
        );
        await sleep(150);
        assert.deepEqual(seen, [r1, r2]);
      });

      it('calls every listener, and stops calling one that unsubscribed', async () => {
        const first: number[] = [];
        const second: number[] = [];
        const stop = store.watch((r) => first.push(r));
        store.watch((r) => second.push(r));
        await store.applyChange(change([]));
        stop();
        await store.applyChange(change([]));
        assert.deepEqual(first, [1]);
        assert.deepEqual(second, [1, 2]);
      });

      it('keeps calling the others when one listener throws', async () => {
        const seen: number[] = [];
        store.watch(() => {
          throw new Error('listener failure (expected by the test)');
        });
        store.watch((r) => seen.push(r));
        assert.equal(await store.applyChange(change([])), 1);
        assert.deepEqual(seen, [1]);
      });

      // How soon (p50/p99) is measured by `npm run bench:latency`, not asserted here.
      it('sees a commit made through another handle, and what it wrote', async () => {
        const other = await second();
        let resolveSeen: (revision: number) => void;
        const seen = new Promise<number>((resolve) => {
          resolveSeen = resolve;
        });
        store.watch((revision) => resolveSeen(revision));
        const revision = await other.applyChange(
          change([{ type: 'putEntry', entry: keyPairEntry('cli', a) }]),
        );
        // Waits for the event; the 30 s guard only stops a hang.
        const guard = new AbortController();
        try {
          const hang = sleep(30_000, -1, { signal: guard.signal });
          assert.equal(await Promise.race([seen, hang]), revision);
        } finally {
          guard.abort();
        }
        assert.ok((await store.getPrivateKey('cli'))?.equals(a.keyDer));
      });

      it('stops watching on close, and refuses calls after it', async (_t) => {
        const other = await second();
        const seen: number[] = [];
        store.watch((r) => seen.push(r));
        await store.close();
        await other.applyChange(change([]));
        await sleep(250);
        assert.deepEqual(seen, []);
        await rejectsWith(store.applyChange(change([])), 'StoreUnavailable');
        await rejectsWith(store.revision(), 'StoreUnavailable');
        await store.close(); // a second close is harmless
      });
    });

    describe('persistence', () => {
      it('keeps every entry, binding, secret and audit row across a reopen', async (_t) => {
        await store.applyChange(
          change([
            { type: 'putEntry', entry: keyPairEntry('web', a) },
            { type: 'bind', name: 'server', alias: 'web' },
            { type: 'putSecret', name: 's', value: Buffer.from('v') },
          ]),
        );
        const entries = await store.listEntries();
        await store.close();
        const other = await second();
        assert.equal(await other.revision(), 1);
        assert.deepEqual(await other.listEntries(), entries);
        assert.deepEqual(await other.listBindings(), [
          { name: 'server', alias: 'web', revision: 1 },
        ]);
        assert.ok((await other.getPrivateKey('web'))?.equals(a.keyDer));
        assert.equal((await other.getSecret('s'))?.toString(), 'v');
        assert.equal((await other.listAudit()).length, 1);
      });
    });
  });
}
