import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { login } from '../../src/service/login.js';
import { startTestServer } from '../support/serve.js';
import { tempDir } from '../support/tools.js';

describe('certkeeper serve creates the first admin', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('on its first start only, and never logs the password', async () => {
    const dataDir = join(dir, 'data');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    let { server } = await startTestServer(['--data-dir', dataDir], {}, logger);
    try {
      const admin = server.initialAdmin;
      assert.ok(admin.created && admin.oneTimePassword);
      const s = await login(server.keystore, {
        username: 'admin',
        password: admin.oneTimePassword,
        source: '127.0.0.1',
      });
      assert.equal(s.mustChangePassword, true);
      const log = lines.join('');
      assert.match(log, /created the initial admin/);
      assert.ok(!log.includes(admin.oneTimePassword), 'the log never has the password');
    } finally {
      await server.stop();
    }
    ({ server } = await startTestServer(
      ['--data-dir', dataDir],
      { CERTKEEPER_ADMIN_PASSWORD: 'too late now!' },
      logger,
    ));
    try {
      assert.deepEqual(server.initialAdmin, { created: false });
    } finally {
      await server.stop();
    }
  });
});
