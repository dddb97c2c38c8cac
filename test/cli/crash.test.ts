import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { LOCAL_SERVER_ALIAS } from '../../src/service/context.js';
import { importEntry } from '../../src/service/import-entry.js';
import { openDataDir } from '../../src/store/data-dir.js';
import type { Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { servedFingerprint } from '../support/serve.js';
import { REPO_ROOT, tempDir } from '../support/tools.js';

const CLI = join(REPO_ROOT, 'bin/certkeeper.js');
const KILLS = Number(process.env.CERTKEEPER_CRASH_KILLS ?? 50);

function startServer(dataDir: string): { child: ChildProcess; port: Promise<number> } {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const port = new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /serving https:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`server exited (${code ?? signal}) before serving`)),
    );
  });
  port.catch(() => undefined);
  return { child, port };
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** The fingerprint the store says the server must serve: the `server` binding, else the local CA's. */
async function expectedFingerprint(store: Store): Promise<string> {
  const alias =
    (await store.listBindings()).find((b) => b.name === 'server')?.alias ?? LOCAL_SERVER_ALIAS;
  return (await store.getEntry(alias))!.fingerprint!;
}

describe('crash safety', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  after(cleanup);

  it(`always serves a committed identity and loses nothing across ${KILLS} SIGKILLs`, {
    timeout: 600_000,
  }, async () => {
    const identities = await Promise.all(
      [0, 1, 2, 3].map((i) => makeHierarchy({ name: `Crash${i}`, hosts: ['localhost'] })),
    );
    // Everything that was ever committed as a server identity, and the last committed
    // fingerprint of every alias.
    const committed = new Map<string, string>();
    let operations = 0;
    let servedChecks = 0;
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };

    for (let round = 0; round < KILLS; round++) {
      const { child, port } = startServer(dataDir);
      const killEarly = round % 5 === 4;
      if (killEarly) {
        // Kill during start-up: local CA creation, migrations, ticket key.
        await new Promise((r) => setTimeout(r, 50 + random() * 400));
        await kill(child);
        continue;
      }
      const p = await port;
      const store = await openDataDir(dataDir, {});
      try {
        // What it serves right after start is a committed identity: the one the store binds.
        const served = await servedFingerprint(p);
        assert.equal(
          served,
          await expectedFingerprint(store),
          `round ${round}: serves what the store binds`,
        );
        servedChecks++;
        // A stream of imports and activations while the kill lands at a random moment.
        const killAt = performance.now() + random() * 300;
        const killed = new Promise<void>((resolve) =>
          setTimeout(() => void kill(child).then(resolve), killAt - performance.now()),
        );
        while (performance.now() < killAt + 50) {
          const alias = `site-${Math.floor(random() * 6)}`;
          const pki = identities[Math.floor(random() * identities.length)]!;
          const activate = random() < 0.5;
          await importEntry(
            { store, now: () => new Date(), trusted: [] },
            {
              alias,
              files: [
                {
                  name: 'b.pem',
                  bytes: Buffer.from(pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem),
                },
              ],
              // Every import on this store is committed before the next, so `committed`
              // knows which aliases exist; replacing an unknown one is AliasNotFound.
              replace: committed.has(alias),
              activate,
              principal: TEST_PRINCIPAL,
            },
          );
          committed.set(alias, pki.leaf.cert.sha256);
          operations++;
        }
        await killed;
      } finally {
        await store.close();
        await kill(child);
      }
    }

    // After every crash: the database is intact and no committed entry is lost.
    const db = new Database(join(dataDir, 'certkeeper.db'), { readonly: true });
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
    const store = await openDataDir(dataDir, {});
    try {
      for (const [alias, fingerprint] of committed) {
        assert.equal(
          (await store.getEntry(alias))?.fingerprint,
          fingerprint,
          `entry ${alias} kept its last committed certificate`,
        );
        assert.ok(await store.getPrivateKey(alias), `entry ${alias} kept its key`);
      }
      const { child, port } = startServer(dataDir);
      try {
        assert.equal(await servedFingerprint(await port), await expectedFingerprint(store));
      } finally {
        await kill(child);
      }
    } finally {
      await store.close();
    }
    assert.ok(operations > KILLS, `${operations} committed operations`);
    assert.ok(servedChecks >= KILLS * 0.8 - 1);
  });
});
