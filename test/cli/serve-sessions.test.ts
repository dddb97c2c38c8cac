import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/cli/serve.js';
import { loadServeConfig } from '../../src/cli/serve-config.js';
import { requestJson, startTestServer } from '../support/serve.js';
import { tempDir } from '../support/tools.js';

const ADMIN_PASSWORD = 'session lifetime test passphrase';

/** Logs in as the first admin: the session answer. */
async function login(port: number): Promise<{ expiresAt: string; idleExpiresAt: string }> {
  const res = await requestJson(port, '/api/v1/auth/session', {
    method: 'POST',
    json: { username: 'admin', password: ADMIN_PASSWORD },
  });
  return JSON.parse(res.body);
}

describe('certkeeper serve: API session lifetimes from the config file', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  let server: RunningServer;
  let port: number;
  before(async () => {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dataDir, 'certkeeper.yaml'), 'sessionIdleMinutes: 5\nsessionMaxHours: 2\n');
    ({ server, port } = await startTestServer(['--data-dir', dataDir], {
      CERTKEEPER_ADMIN_PASSWORD: ADMIN_PASSWORD,
    }));
  });
  after(async () => {
    await server.stop();
    cleanup();
  });

  it('ends a session after sessionIdleMinutes unused and sessionMaxHours at the latest', async () => {
    const before = Date.now();
    const session = await login(port);
    const idle = (Date.parse(session.idleExpiresAt) - before) / 60_000;
    const absolute = (Date.parse(session.expiresAt) - before) / 3_600_000;
    assert.ok(idle > 4.9 && idle < 5.1, `idle limit ${idle} min`);
    assert.ok(absolute > 1.99 && absolute < 2.01, `absolute limit ${absolute} h`);
  });

  it('refuses a lifetime of 0', async () => {
    writeFileSync(join(dir, 'zero.yaml'), 'sessionIdleMinutes: 0\n');
    await assert.rejects(
      loadServeConfig(['--data-dir', dataDir, '--config', join(dir, 'zero.yaml')], {}),
      /sessionIdleMinutes must be at least 1/,
    );
  });
});
