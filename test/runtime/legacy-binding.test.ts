/**
 * A store written by an earlier version may hold an SNI binding the host name policy now
 * refuses for new bindings (`sni:*.lan`): it must still serve and be removable.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { bindEntry, unbindEntry } from '../../src/service/bind-entry.js';
import { ServiceError } from '../../src/service/errors.js';
import { importEntry } from '../../src/service/import-entry.js';
import { localServerNames } from '../../src/service/local-ca.js';
import { openDataDir, STORE_FILE } from '../../src/store/data-dir.js';
import type { Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { tempDir } from '../support/tools.js';
import { handshake } from './fixtures.js';

describe('a binding an older version wrote (sni:*.lan)', () => {
  const { dir, cleanup } = tempDir();
  let store: Store;
  let supervisor: Supervisor | undefined;
  let fingerprint: string;

  before(async () => {
    const pki = await makeHierarchy({ name: 'Lan', hosts: ['x.lan'] });
    fingerprint = new X509Certificate(pki.leaf.certPem).fingerprint256;
    const first = await openDataDir(dir, {});
    await importEntry(
      { store: first, now: () => new Date(), trusted: [] },
      {
        alias: 'lan',
        files: [
          {
            name: 'b',
            bytes: Buffer.from(pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem),
          },
        ],
        sniHosts: ['x.lan'],
        principal: TEST_PRINCIPAL,
      },
    );
    await first.close();
    // What the reviewer did: the previous version accepted this name, this one would not.
    const db = new Database(join(dir, STORE_FILE));
    try {
      const changed = db
        .prepare("UPDATE bindings SET name = 'sni:*.lan' WHERE name = 'sni:x.lan'")
        .run().changes;
      assert.equal(changed, 1);
    } finally {
      db.close();
    }
    store = await openDataDir(dir, {});
  });
  after(async () => {
    await supervisor?.stop();
    await store.close();
    cleanup();
  });

  it('is served: the supervisor starts and answers a name under it with its entry', async () => {
    supervisor = new Supervisor({
      store,
      sources: { dataDir: dir, flags: {}, config: {}, env: {}, strict: false },
      localNames: localServerNames('legacy.test'),
      commonName: 'legacy.test',
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    await supervisor.start();
    assert.deepEqual([...supervisor.runtime.current!.sni.keys()], ['*.lan']);
    const seen = await handshake(supervisor.runtime.address()!.port, { servername: 'x.lan' });
    assert.equal(seen.fingerprint, fingerprint);
  });

  it('is refused as a new binding, with the policy named', async () => {
    await assert.rejects(
      bindEntry(
        { store, now: () => new Date(), trusted: [] },
        { alias: 'lan', binding: 'sni:*.lan', principal: TEST_PRINCIPAL },
      ),
      (err: unknown) =>
        err instanceof ServiceError &&
        err.code === 'InvalidHostname' &&
        /public suffix "lan"/.test(err.message),
    );
  });

  it('can be unbound', async () => {
    const result = await unbindEntry(
      { store, now: () => new Date(), trusted: [] },
      { binding: 'sni:*.lan', principal: TEST_PRINCIPAL },
    );
    assert.equal(result.alias, 'lan');
    assert.deepEqual(
      (await store.listBindings()).map((b) => b.name).filter((n) => n.startsWith('sni:')),
      [],
    );
  });
});
