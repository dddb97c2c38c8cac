import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type CoreErrorCode, isCoreError } from '../../src/core/errors.js';
import { type Pkcs12Contents, readPkcs12 } from '../../src/core/pkcs12.js';
import { keyEntriesOf, pickKeyEntry } from '../../src/core/pkcs12-entries.js';
import { readMaterial } from '../../src/core/read.js';
import { type MultiKeyKeystore, makeMultiKeyKeystore } from '../support/keystore.js';
import { needs, tempDir } from '../support/tools.js';

const skip = needs('keytool') || needs('openssl');

/** Asserts that `fn` fails with a CoreError of `code`, and returns its message. */
async function failsWith(fn: () => unknown, code: CoreErrorCode): Promise<string> {
  let message = '';
  await assert.rejects(
    async () => fn(),
    (err) => {
      assert.ok(isCoreError(err), `expected a CoreError, got ${(err as Error)?.stack ?? err}`);
      assert.equal(err.code, code, err.message);
      message = err.message;
      return true;
    },
  );
  return message;
}

describe('key entries of a keystore with several keys', { skip }, () => {
  const { dir, cleanup } = tempDir();
  let keystore: MultiKeyKeystore;
  let bytes: Buffer;
  let contents: Pkcs12Contents;
  before(async () => {
    keystore = await makeMultiKeyKeystore(dir);
    bytes = readFileSync(keystore.path);
    contents = await readPkcs12(bytes, keystore.password);
  });
  after(cleanup);

  it("names each key entry by keytool's alias and pairs it with its own certificate", () => {
    const entries = keyEntriesOf(contents);
    assert.deepEqual(
      entries.map((e) => [e.alias, e.certificate?.certificate.subject.rfc4514]),
      keystore.entries.map((e) => [e.alias, e.subject]),
    );
    for (const e of entries) {
      const fromKey = createPublicKey(e.key.key).export({ type: 'spki', format: 'der' });
      const fromCert = createPublicKey({
        key: e.certificate!.certificate.spkiDer,
        format: 'der',
        type: 'spki',
      }).export({ type: 'spki', format: 'der' });
      assert.deepEqual(fromKey, fromCert, `${e.alias}: the key belongs to its certificate`);
    }
  });

  it("picks one entry by alias and leaves out the other entries' certificates", () => {
    const picked = pickKeyEntry(contents, 'api');
    assert.deepEqual(
      picked.keys.map((k) => k.friendlyName),
      ['api'],
    );
    // The OpenSSL CA that came with "api" belongs to no key entry, so it stays.
    assert.deepEqual(
      picked.certificates.map((c) => c.certificate.subject.rfc4514),
      ['CN=api.example', 'CN=Api-CA'],
    );
  });

  it('matches an alias ignoring case, as keytool does', () => {
    assert.deepEqual(
      pickKeyEntry(contents, 'ADMIN').keys.map((k) => k.friendlyName),
      ['admin'],
    );
  });

  it('refuses to guess: no alias is KeyAliasRequired, naming every alias', async () => {
    const message = await failsWith(() => pickKeyEntry(contents, undefined), 'KeyAliasRequired');
    assert.match(message, /3 key entries \("web", "admin", "api"\)/);
  });

  it('an alias the keystore does not have is KeyAliasNotFound, naming the ones it has', async () => {
    const message = await failsWith(() => pickKeyEntry(contents, 'mail'), 'KeyAliasNotFound');
    assert.match(message, /"mail".*"web", "admin", "api"/);
  });

  it('names at most five aliases, then counts the rest', async () => {
    // The keystore's own keys, seen under eight aliases.
    const keys = Array.from({ length: 8 }, (_, i) => ({
      ...contents.keys[i % 3]!,
      friendlyName: `entry-${i + 1}`,
    }));
    const many: Pkcs12Contents = { ...contents, keys, pairs: [] };
    const message = await failsWith(() => pickKeyEntry(many, undefined), 'KeyAliasRequired');
    assert.match(message, /"entry-5" and 3 more\)/);
    assert.doesNotMatch(message, /entry-6/);
  });

  it('readMaterial reads the chosen entry only, and says which one among all', async () => {
    const m = await readMaterial(bytes, { password: keystore.password, keyAlias: 'web' });
    assert.deepEqual(
      m.keys.map((k) => k.alias),
      ['web'],
    );
    const subjects = m.certificates.map((c) => c.certificate.subject.rfc4514);
    assert.ok(subjects.includes('CN=web.example'));
    assert.ok(!subjects.includes('CN=admin.example'), "another entry's certificate leaked");
    assert.ok(!subjects.includes('CN=api.example'), "another entry's certificate leaked");
    assert.deepEqual(
      m.pkcs12?.keyEntries.map((e) => [e.alias, e.key.type, e.subject, e.chosen]),
      [
        ['web', 'ec', 'CN=web.example', true],
        ['admin', 'rsa', 'CN=admin.example', false],
        ['api', 'ec', 'CN=api.example', false],
      ],
    );
  });

  it('readMaterial without an alias is KeyAliasRequired, unless it is asked for all entries', async () => {
    const message = await failsWith(
      () => readMaterial(bytes, { password: keystore.password }),
      'KeyAliasRequired',
    );
    assert.match(message, /"web", "admin", "api"/);
    const all = await readMaterial(bytes, { password: keystore.password, allKeyEntries: true });
    assert.deepEqual(
      all.keys.map((k) => k.alias),
      ['web', 'admin', 'api'],
    );
    assert.equal(all.certificates.length, 4);
  });

  it('readMaterial with an unknown alias is KeyAliasNotFound', async () => {
    await failsWith(
      () => readMaterial(bytes, { password: keystore.password, keyAlias: 'nope' }),
      'KeyAliasNotFound',
    );
  });

  it('a key alias for a private key outside a keystore is KeyAliasNotFound', async () => {
    const pem = readFileSync(`${dir}/api.key`);
    await failsWith(() => readMaterial(pem, { keyAlias: 'api' }), 'KeyAliasNotFound');
    // A certificate alone (a chain file beside the keystore) has no key to pick.
    const chain = await readMaterial(readFileSync(`${dir}/ca.pem`), { keyAlias: 'api' });
    assert.equal(chain.certificates.length, 1);
  });
});
