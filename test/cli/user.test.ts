import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main } from '../../src/cli/main.js';
import { createToken } from '../../src/service/create-token.js';
import { openKeystore } from '../../src/service/keystore.js';
import { login } from '../../src/service/login.js';
import { CLI_PRINCIPAL } from '../../src/service/principal.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tools.js';

describe('certkeeper user', () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  const dataDir = at('data');
  after(cleanup);

  /** Runs `certkeeper user` in-process on the test's data directory. */
  const cli = (...argv: string[]) => runCli(['user', ...argv], { CERTKEEPER_DATA_DIR: dataDir });

  /** Logs in on the data directory as the API would. */
  async function logsIn(username: string, password: string) {
    const ks = await openKeystore(dataDir, {});
    try {
      return await login(ks, { username, password, source: '127.0.0.1' });
    } finally {
      await ks.close();
    }
  }

  before(async () => {
    await (await openKeystore(dataDir, {}, { create: true })).close();
    writeFileSync(at('alice.pass'), 'alice secret passphrase\n');
    writeFileSync(at('new.pass'), 'alice newer passphrase\r\n');
    writeFileSync(at('short.pass'), 'short\n');
  });

  it('adds a user with the password of a file', async () => {
    const r = await cli('add', 'alice', '--role', 'admin', '--password-file', at('alice.pass'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Created user "alice" \(admin\) at revision \d+\n$/);
    const s = await logsIn('alice', 'alice secret passphrase');
    assert.equal(s.mustChangePassword, false);
  });

  it('adds a user with a one-time password printed once, to be changed', async () => {
    const r = await cli('add', 'bob', '--role', 'operator', '--data-dir', dataDir);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^Created user "bob" \(operator\)/);
    assert.match(lines[1]!, /^One-time password for "bob"/);
    const password = lines[2]!;
    assert.match(password, /^[A-Za-z0-9_-]{20}$/);
    assert.equal((await logsIn('bob', password)).mustChangePassword, true);
  });

  it('lists users without passwords, as a table or JSON', async () => {
    const table = await cli('list');
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^USER +ROLE +MUST CHANGE PASSWORD +CREATED$/);
    assert.match(lines[1]!, /^alice +admin +no +\d{4}-/);
    assert.match(lines[2]!, /^bob +operator +yes +\d{4}-/);
    const json = await cli('list', '--json');
    const users = JSON.parse(json.stdout) as { username: string }[];
    assert.deepEqual(
      users.map((u) => u.username),
      ['alice', 'bob'],
    );
    assert.doesNotMatch(json.stdout + table.stdout, /scrypt|passphrase/);
  });

  it('sets a password from a file and ends the sessions', async () => {
    await logsIn('alice', 'alice secret passphrase');
    const r = await cli('passwd', 'alice', '--password-file', at('new.pass'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Set the password of "alice" at revision \d+; 2 sessions ended\n$/);
    assert.equal((await logsIn('alice', 'alice newer passphrase')).mustChangePassword, false);
  });

  it("changes a user's role, revoking the tokens above it and ending the sessions, never the last admin's", async () => {
    const promoted = await cli('role', 'bob', 'admin');
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(
      promoted.stdout,
      /^Changed the role of "bob" from operator to admin at revision \d+; 0 API tokens revoked, 1 session ended\n$/,
    );
    await logsIn('alice', 'alice newer passphrase'); // her second session, with the one above
    const ks = await openKeystore(dataDir, {});
    try {
      for (const role of ['admin', 'auditor'] as const) {
        await createToken(ks, { name: role, role, username: 'alice', principal: CLI_PRINCIPAL });
      }
    } finally {
      await ks.close();
    }
    const demoted = await cli('role', 'alice', 'auditor');
    assert.equal(demoted.code, 0, demoted.stderr);
    assert.match(
      demoted.stdout,
      /^Changed the role of "alice" from admin to auditor at revision \d+; 1 API token revoked, 2 sessions ended\n$/,
    );
    const again = await cli('role', 'alice', 'auditor');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '"alice" is auditor already; nothing changed\n');
    assert.equal((await logsIn('alice', 'alice newer passphrase')).role, 'auditor');

    const last = await cli('role', 'bob', 'operator');
    assert.equal(last.code, 1);
    assert.match(last.stderr, /^LastAdmin: .*"bob".*\n$/);
    assert.match((await cli('role', 'bob', 'root')).stderr, /^InvalidRole: /);
    assert.match((await cli('role', 'nobody', 'admin')).stderr, /^UserNotFound: /);
    const usage = await cli('role', 'bob');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /NAME ROLE/);
    assert.equal((await cli('role', 'bob', 'admin', 'extra')).code, 2);
    assert.equal((await cli('remove', 'bob', 'admin')).code, 2, 'only role takes a third word');
    const help = await cli('--help');
    assert.match(help.stdout, /user role NAME ROLE/);

    // As before, for the tests below: alice the only admin, bob an operator.
    assert.equal((await cli('role', 'alice', 'admin')).code, 0);
    assert.equal((await cli('role', 'bob', 'operator')).code, 0);
  });

  it('says what is wrong in one line, with the code', async () => {
    const short = await cli('passwd', 'alice', '--password-file', at('short.pass'));
    assert.equal(short.code, 1);
    assert.match(short.stderr, /^PasswordTooShort: .*12 characters.*\n$/);
    const role = await cli('add', 'carol', '--role', 'root');
    assert.match(role.stderr, /^InvalidRole: /);
    const exists = await cli('add', 'alice', '--role', 'admin');
    assert.match(exists.stderr, /^UserExists: /);
    const missing = await cli('remove', 'nobody');
    assert.match(missing.stderr, /^UserNotFound: /);
    const file = await cli('add', 'carol', '--role', 'admin', '--password-file', at('none'));
    assert.match(file.stderr, /^FileUnreadable: /);
    const last = await cli('remove', 'alice');
    assert.equal(last.code, 1);
    assert.match(last.stderr, /^LastAdmin: .*"alice".*\n$/);
    const usage = await cli('add', 'carol');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--role/);
    assert.equal((await cli('frobnicate')).code, 2);
    const noDir = await main(
      ['user', 'list', '--data-dir', at('typo')],
      { stdout: { write: () => 0 }, stderr: { write: () => 0 } },
      {},
    );
    assert.equal(noDir, 1);
  });

  it('removes a user', async () => {
    const r = await cli('remove', 'bob');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Removed user "bob" at revision \d+\n$/);
    assert.doesNotMatch((await cli('list')).stdout, /bob/);
  });
});
