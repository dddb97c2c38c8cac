import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { changePassword } from '../../src/service/change-password.js';
import { createToken } from '../../src/service/create-token.js';
import { createUser } from '../../src/service/create-user.js';
import { openKeystore } from '../../src/service/keystore.js';
import { login } from '../../src/service/login.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { tempDir } from '../support/tools.js';

describe('passwords and secrets at rest', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('leaves no password, session token or API token secret in the data directory', async () => {
    const dataDir = join(dir, 'data');
    const ctx = await openKeystore(dataDir, {}, { create: true, trusted: [] });
    const secrets = [
      'first Passphrase 4 carol',
      'second Passphrase 4 carol',
      'wrong Passphrase 4 carol',
    ];
    await createUser(ctx, {
      username: 'carol',
      role: 'admin',
      password: secrets[0]!,
      principal: TEST_PRINCIPAL,
    });
    await changePassword(ctx, {
      username: 'carol',
      newPassword: secrets[1]!,
      principal: TEST_PRINCIPAL,
    });
    await assert.rejects(login(ctx, { username: 'carol', password: secrets[2]!, source: 'x' }), {
      code: 'AuthenticationFailure',
    });
    const session = await login(ctx, { username: 'carol', password: secrets[1]!, source: 'x' });
    const token = await createToken(ctx, {
      name: 'ci',
      role: 'admin',
      username: 'carol',
      principal: TEST_PRINCIPAL,
    });
    secrets.push(session.sessionToken.slice(4), token.token.slice(16));

    const scan = (when: string) => {
      const files = readdirSync(dataDir);
      assert.ok(files.includes('certkeeper.db'), files.join());
      for (const name of files) {
        const bytes = readFileSync(join(dataDir, name));
        for (const secret of secrets) {
          for (const encoding of ['utf8', 'utf16le'] as const) {
            assert.equal(
              bytes.indexOf(Buffer.from(secret, encoding)),
              -1,
              `${when}: ${name} holds ${secret}`,
            );
          }
        }
      }
    };
    scan('open (write-ahead log)');
    await ctx.close();
    scan('closed');
  });
});
