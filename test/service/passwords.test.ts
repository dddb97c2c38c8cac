import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServiceError } from '../../src/service/errors.js';
import {
  checkPasswordPolicy,
  hashPassword,
  SCRYPT_HASHER,
  verifyPassword,
} from '../../src/service/passwords.js';

describe('passwords', () => {
  it('hashes with scrypt N=2^15 r=8 p=1, a 16-byte salt and a 32-byte key, and verifies', async () => {
    const hash = await hashPassword('correct horse battery');
    const [scheme, N, r, p, salt, key, ...rest] = hash.split('$');
    assert.deepEqual([scheme, N, r, p, rest], ['scrypt', '32768', '8', '1', []]);
    assert.equal(Buffer.from(salt!, 'base64url').length, 16);
    assert.equal(Buffer.from(key!, 'base64url').length, 32);
    assert.match(salt! + key!, /^[A-Za-z0-9_-]+$/, 'base64url without padding');
    assert.equal(await verifyPassword('correct horse battery', hash), true);
    assert.equal(await verifyPassword('correct horse batterY', hash), false);
  });

  it('salts each hash anew', async () => {
    const [a, b] = await Promise.all([
      hashPassword('same password!'),
      hashPassword('same password!'),
    ]);
    assert.notEqual(a, b);
  });

  it('says false for a malformed hash or one whose parameters would cost too much', async () => {
    const good = await hashPassword('correct horse battery');
    const parts = good.split('$');
    for (const bad of [
      '',
      'plain',
      `bcrypt$${parts.slice(1).join('$')}`,
      parts.slice(0, 5).join('$'),
      [parts[0], 2 ** 24, ...parts.slice(2)].join('$'), // 16 GiB of memory
      [parts[0], 1000, ...parts.slice(2)].join('$'), // not a power of two
      [...parts.slice(0, 5), 'AAAA'].join('$'), // a 3-byte key
    ]) {
      assert.equal(await verifyPassword('correct horse battery', bad), false, bad);
    }
  });

  it('verifies the dummy hash of an unknown user at the same cost, and it opens nothing', async () => {
    const dummy = await SCRYPT_HASHER.dummyHash();
    assert.equal(dummy, await SCRYPT_HASHER.dummyHash(), 'made once');
    assert.deepEqual(dummy.split('$').slice(0, 4), ['scrypt', '32768', '8', '1']);
    assert.equal(await verifyPassword('', dummy), false);
  });

  it('asks for 12 to 1024 characters that are not the user name', () => {
    const refuses = (password: string, code: string) =>
      assert.throws(
        () => checkPasswordPolicy(password, 'alice.smith'),
        (err: unknown) => err instanceof ServiceError && err.code === code,
        password,
      );
    refuses('short', 'PasswordTooShort');
    refuses('elevenchars', 'PasswordTooShort');
    refuses('x'.repeat(1025), 'PasswordTooLong');
    refuses('Alice.Smith', 'PasswordTooShort');
    assert.throws(
      () => checkPasswordPolicy('Alice.Smith.Home', 'alice.smith.home'),
      (err: unknown) => err instanceof ServiceError && err.code === 'PasswordMatchesUsername',
    );
    checkPasswordPolicy('twelve chars', 'alice.smith');
    checkPasswordPolicy('x'.repeat(1024), 'alice.smith');
    // Characters, not bytes or UTF-16 units: twelve emoji are twelve characters.
    checkPasswordPolicy('🔑'.repeat(12), 'alice.smith');
    refuses('🔑'.repeat(11), 'PasswordTooShort');
  });
});
