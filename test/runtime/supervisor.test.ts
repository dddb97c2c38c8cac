import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { openDataDir } from '../../src/cli/data-dir.js';
import { localServerNames } from '../../src/runtime/local-ca.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { importEntry } from '../../src/service/import-entry.js';
import type { Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { tempDir } from '../support/tools.js';

describe('the supervisor following the store', () => {
  const { dir, cleanup } = tempDir();
  let store: Store;
  let supervisor: Supervisor;

  before(async () => {
    store = await openDataDir(dir, {});
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
        actor: 'test',
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
        actor: 'test',
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
});
