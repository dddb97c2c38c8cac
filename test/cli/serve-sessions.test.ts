import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { type RunningServer, startServer } from '../../src/cli/serve.js';
import { loadServeConfig, type ServeConfig } from '../../src/cli/serve-config.js';
import { tempDir } from '../support/tools.js';

const ADMIN_PASSWORD = 'session lifetime test passphrase';

/** Logs in as the first admin: the session answer. */
function login(port: number): Promise<{ expiresAt: string; idleExpiresAt: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/v1/auth/session',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        rejectUnauthorized: false,
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(JSON.parse(body)));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }));
  });
}

describe('certkeeper serve: API session lifetimes from the config file', () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  let server: RunningServer;
  let port: number;
  before(async () => {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dataDir, 'certkeeper.yaml'), 'sessionIdleMinutes: 5\nsessionMaxHours: 2\n');
    const config = (await loadServeConfig(
      ['--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1'],
      {},
    )) as ServeConfig;
    server = await startServer(
      config,
      { CERTKEEPER_ADMIN_PASSWORD: ADMIN_PASSWORD },
      pino({ level: 'silent' }),
    );
    port = server.supervisor.runtime.address()!.port;
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
