import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { bindEntry } from '../../src/service/bind-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import { localServerNames } from '../../src/service/local-ca.js';
import { openDataDir } from '../../src/store/data-dir.js';
import type { AuditRecord, Mutation, Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { corruptStoredKey } from '../support/store-damage.js';
import { tempDir } from '../support/tools.js';
import { handshake } from './fixtures.js';

describe('the supervisor following the store', () => {
  const { dir, cleanup } = tempDir();
  let store: Store;
  let supervisor: Supervisor;
  /** The aliases whose private key the store handed out, in order. */
  const keyReads: string[] = [];

  before(async () => {
    store = await openDataDir(dir, {});
    const getPrivateKey = store.getPrivateKey.bind(store);
    store.getPrivateKey = (alias) => {
      keyReads.push(alias);
      return getPrivateKey(alias);
    };
    const ctx = { store, now: () => new Date(), trusted: [] };
    for (let i = 0; i < 20; i++) {
      const pki = await makeHierarchy({ name: `Sni${i}`, hosts: [`h${i}.example.test`] });
      await importEntry(ctx, {
        alias: `site-${i}`,
        files: [
          {
            name: 'b',
            bytes: Buffer.from(pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem),
          },
        ],
        sniHosts: [`h${i}.example.test`],
        principal: TEST_PRINCIPAL,
      });
    }
    supervisor = new Supervisor({
      store,
      sources: { dataDir: dir, flags: {}, config: {}, env: {}, strict: false },
      localNames: localServerNames('sup.test'),
      commonName: 'sup.test',
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    await supervisor.start();
    // At start only the self-probe's sample of SNI names (8) had their keys read.
    assert.equal(keyReads.filter((a) => a.startsWith('site-')).length, 8);
  });
  after(async () => {
    await supervisor.stop();
    await store.close();
    cleanup();
  });

  it('reloads only the SNI identities whose entry changed', async () => {
    const before = supervisor.runtime.current!;
    assert.equal(before.sni.size, 20);
    const renewed = await makeHierarchy({ name: 'Renewed', hosts: ['h3.example.test'] });
    await importEntry(
      { store, now: () => new Date(), trusted: [] },
      {
        alias: 'site-3',
        files: [
          {
            name: 'b',
            bytes: Buffer.from(
              renewed.leaf.certPem + renewed.intermediate.certPem + renewed.leaf.keyPem,
            ),
          },
        ],
        replace: true,
        principal: TEST_PRINCIPAL,
      },
    );
    await supervisor.reload();
    const after = supervisor.runtime.current!;
    assert.ok(after.revision > before.revision);
    assert.equal(after.sni.get('h3.example.test')!.fingerprint, renewed.leaf.cert.sha256);
    for (const [name, identity] of before.sni) {
      if (name === 'h3.example.test') continue;
      assert.equal(after.sni.get(name), identity, `${name} was not reloaded`);
    }
  });

  it('follows unbinds and rebinds, and keeps the SNI map while no SNI binding changed', async () => {
    const before = supervisor.runtime.current!;
    const change = (mutations: Mutation[]) =>
      store.applyChange({ actor: 'test', action: 'test', mutations });
    await change([{ type: 'bind', name: 'sni:h1.example.test', alias: 'site-2' }]);
    await change([{ type: 'unbind', name: 'sni:h7.example.test' }]);
    await supervisor.reload();
    const after = supervisor.runtime.current!;
    assert.equal(after.sni.size, before.sni.size - 1);
    assert.equal(after.sni.has('h7.example.test'), false);
    const site2 = (await store.getEntry('site-2'))!.fingerprint;
    assert.equal(after.sni.get('h1.example.test')!.fingerprint, site2);
    assert.equal(supervisor.runtime.resolve('h7.example.test'), after.server);

    const unrelated = await makeHierarchy({ name: 'Unrelated', hosts: ['u.example.test'] });
    await importEntry(
      { store, now: () => new Date(), trusted: [] },
      {
        alias: 'unrelated',
        files: [{ name: 'b', bytes: Buffer.from(unrelated.leaf.certPem + unrelated.leaf.keyPem) }],
        principal: TEST_PRINCIPAL,
      },
    );
    await supervisor.reload();
    assert.equal(supervisor.runtime.current!.sni, after.sni, 'no SNI binding changed');
  });

  it('reads an SNI key on the first handshake for its name, and only then', async () => {
    const port = supervisor.runtime.address()!.port;
    const i = [...Array(20).keys()].find((n) => !keyReads.includes(`site-${n}`))!;
    const expected = (await store.getEntry(`site-${i}`))!.fingerprint;
    const reads = keyReads.length;
    const name = `h${i}.example.test`;
    assert.equal((await handshake(port, { servername: name })).fingerprint, expected);
    assert.deepEqual(keyReads.slice(reads), [`site-${i}`]);
    const upper = name.toUpperCase();
    assert.equal((await handshake(port, { servername: upper })).fingerprint, expected);
    assert.deepEqual(keyReads.slice(reads), [`site-${i}`], 'the second handshake used the cache');
  });

  it('rolls back an SNI binding whose stored key was corrupted, and records why', async () => {
    const ctx = { store, now: () => new Date(), trusted: [] };
    const pki = await makeHierarchy({ name: 'Broken', hosts: ['broken.example.test'] });
    await importEntry(ctx, {
      alias: 'broken',
      files: [
        {
          name: 'b',
          bytes: Buffer.from(pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem),
        },
      ],
      principal: TEST_PRINCIPAL,
    });
    corruptStoredKey(dir, 'broken');

    const served = supervisor.runtime.current!;
    const rollbacks = supervisor.counters().rollbacks;
    await bindEntry(ctx, {
      alias: 'broken',
      binding: 'sni:broken.example.test',
      principal: TEST_PRINCIPAL,
    });
    // The supervisor follows the change by itself; the rollback is the next revision.
    let rollback: AuditRecord | undefined;
    for (let waited = 0; waited < 3000 && rollback?.action !== 'rollback'; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      [rollback] = await store.listAudit({ limit: 1 });
    }
    assert.equal(rollback?.action, 'rollback');
    assert.equal(rollback?.details.code, 'ProbeFailed');
    assert.deepEqual(
      (rollback!.details.failures as { binding: string }[]).map((f) => f.binding),
      ['sni:broken.example.test'],
    );
    assert.deepEqual(
      (await store.listBindings()).filter((b) => b.name === 'sni:broken.example.test'),
      [],
      'the binding the probe refused is gone from the store',
    );
    assert.equal(supervisor.runtime.current!.sni.size, served.sni.size);
    assert.equal(supervisor.counters().rollbacks, rollbacks + 1, 'the rollback it wrote counts');
  });

  it('counts no rollback when a refused identity left nothing to put back', async () => {
    const ctx = { store, now: () => new Date(), trusted: [] };
    const rollbacks = supervisor.counters().rollbacks;
    const audited = (await store.listAudit({ limit: 1 }))[0]!.seq;
    // A renewal under the same alias whose stored key is damaged: the binding already names
    // the entry that keeps serving (its old identity), so the store has nothing to undo.
    const renewed = await makeHierarchy({ name: 'Renewed9', hosts: ['h9.example.test'] });
    await importEntry(ctx, {
      alias: 'site-9',
      files: [
        {
          name: 'b',
          bytes: Buffer.from(
            renewed.leaf.certPem + renewed.intermediate.certPem + renewed.leaf.keyPem,
          ),
        },
      ],
      replace: true,
      principal: TEST_PRINCIPAL,
    });
    corruptStoredKey(dir, 'site-9');
    await supervisor.reload();
    // SNI keys are read on the first handshake for the name: this one finds the damage.
    await handshake(supervisor.runtime.address()!.port, { servername: 'h9.example.test' }).catch(
      () => undefined,
    );
    let refused = false;
    for (let waited = 0; waited < 3000 && !refused; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      refused = (supervisor.status()?.refused ?? []).some(
        (r) => r.binding === 'sni:h9.example.test',
      );
    }
    assert.ok(refused, 'the damaged renewal is refused');
    assert.equal(supervisor.counters().rollbacks, rollbacks, 'nothing was written, nothing counts');
    assert.ok(
      (await store.listAudit({ limit: 5 })).every(
        (r) => r.seq <= audited || r.action !== 'rollback',
      ),
      'no rollback was recorded',
    );
  });
});
