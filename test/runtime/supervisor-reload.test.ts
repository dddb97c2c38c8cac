/**
 * A reload asked for through the keystore whose source lookup fails (here `--strict-tls`
 * and a broken source) is answered as failed, so that `certkeeper reload` can say why.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { reportReload } from '../../src/cli/served-report.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { localServerNames } from '../../src/service/local-ca.js';
import { requestReload } from '../../src/service/reload-sources.js';
import { listServedNodes } from '../../src/service/served-status.js';
import { openDataDir } from '../../src/store/data-dir.js';
import type { Store } from '../../src/store/store.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { tempDir } from '../support/tools.js';

describe('a reload through the keystore that fails', () => {
  const { dir, cleanup } = tempDir();
  const env: Record<string, string | undefined> = {};
  let store: Store;
  let supervisor: Supervisor;

  before(async () => {
    store = await openDataDir(dir, {});
    supervisor = new Supervisor({
      store,
      sources: { dataDir: dir, flags: {}, config: {}, env, strict: true },
      localNames: localServerNames('reload.test'),
      commonName: 'reload.test',
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

  it('is reported with its error, and the node goes on following the store', async () => {
    const served = supervisor.status()!.fingerprint;
    // Under --strict-tls a broken source is fatal to the lookup: the reload throws.
    env.CERTKEEPER_SSL_CERT = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    env.CERTKEEPER_SSL_KEY = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    const ctx = { store, now: () => new Date(), trusted: [] };
    const request = await requestReload(ctx, { principal: TEST_PRINCIPAL });
    for (let waited = 0; waited < 5000; waited += 20) {
      if ((supervisor.status()?.reconciledRevision ?? 0) >= request.revision) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(supervisor.status()!.reconciledRevision >= request.revision, 'the node follows on');
    assert.equal(supervisor.status()!.fingerprint, served, 'what served keeps serving');
    const reload = supervisor.nodeStatus()!.lastReload;
    assert.equal(reload?.requestedAt, request.at);
    assert.ok(reload?.error, 'the reload is answered as failed');
    assert.notEqual(reload.error.code, 'Unexpected', 'the broken source names its code');
    assert.match(reload.error.message, /CERTKEEPER_SSL_CERT|environment/i);

    // What `certkeeper reload` makes of it: exit 1, naming the error.
    const nodes = await listServedNodes(ctx);
    assert.equal(nodes.length, 1);
    let stdout = '';
    let stderr = '';
    const io: Parameters<typeof reportReload>[3] = {
      stdout: {
        write: (t: string) => {
          stdout += t;
        },
      },
      stderr: {
        write: (t: string) => {
          stderr += t;
        },
      },
    };
    const status = reportReload([{ node: nodes[0]!, outcome: 'served' }], request, 30, io);
    assert.equal(status, 1);
    assert.equal(stdout, '');
    assert.match(
      stderr,
      new RegExp(`could not reload its certificate sources \\(${reload.error.code}: `),
    );
  });
});
