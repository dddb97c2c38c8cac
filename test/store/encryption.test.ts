import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { type SealContext, Sealer } from '../../src/store/encryption.js';
import { isStoreError } from '../../src/store/store.js';

const entry = (alias: string): SealContext => ({ kind: 'entry-key', alias });

function assertCorrupt(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isStoreError(err, 'StoreCorrupt'), String(err));
    return true;
  });
}

describe('Sealer (AES-256-GCM at rest)', () => {
  const sealer = new Sealer(randomBytes(32));
  const plain = randomBytes(121);

  it('opens what it sealed, byte-identical', () => {
    const sealed = sealer.seal(plain, entry('web'));
    assert.ok(sealer.open(sealed, entry('web')).equals(plain));
    assert.ok(sealer.open(sealer.seal(Buffer.alloc(0), entry('e')), entry('e')).length === 0);
  });

  it('lays out version, IV, tag and ciphertext, with a fresh IV each time', () => {
    const one = sealer.seal(plain, entry('web'));
    const two = sealer.seal(plain, entry('web'));
    assert.equal(one.length, 1 + 12 + 16 + plain.length);
    assert.equal(one[0], 1);
    assert.ok(!one.subarray(1, 13).equals(two.subarray(1, 13)));
    assert.equal(one.indexOf(plain.subarray(0, 16)), -1);
  });

  it('refuses a value moved to another row', () => {
    const sealed = sealer.seal(plain, entry('web'));
    assertCorrupt(() => sealer.open(sealed, entry('other')));
    assertCorrupt(() => sealer.open(sealed, { kind: 'secret', name: 'web' }));
  });

  it('refuses a value altered anywhere, truncated or of another version', () => {
    const sealed = sealer.seal(plain, entry('web'));
    for (const at of [0, 1, 12, 13, 28, 29, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at]! ^= 0x01;
      assertCorrupt(() => sealer.open(bad, entry('web')));
    }
    assertCorrupt(() => sealer.open(sealed.subarray(0, 20), entry('web')));
    assertCorrupt(() => sealer.open(sealed.subarray(0, sealed.length - 1), entry('web')));
  });

  it('refuses a value sealed under another master key', () => {
    const other = new Sealer(randomBytes(32));
    assertCorrupt(() => other.open(sealer.seal(plain, entry('web')), entry('web')));
  });

  it('recognises its own key check value and no other', () => {
    const check = sealer.keyCheck();
    assert.ok(sealer.matchesKeyCheck(check));
    assert.ok(!new Sealer(randomBytes(32)).matchesKeyCheck(check));
    assert.ok(!sealer.matchesKeyCheck(sealer.seal(Buffer.from('x'), { kind: 'key-check' })));
    assert.ok(!sealer.matchesKeyCheck(Buffer.alloc(3)));
  });

  it('needs a 32-byte master key', () => {
    for (const key of [randomBytes(16), randomBytes(31), randomBytes(33)]) {
      assert.throws(
        () => new Sealer(key),
        (err: unknown) => isStoreError(err, 'MasterKeyInvalid'),
      );
    }
  });

  it('is unusable once destroyed', () => {
    const s = new Sealer(randomBytes(32));
    const sealed = s.seal(plain, entry('web'));
    s.destroy();
    assertCorrupt(() => s.open(sealed, entry('web')));
  });
});
