import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeOid, readChildren, readTlv } from '../../src/core/der.js';
import { isCoreError } from '../../src/core/errors.js';
import { decode, OneAsymmetricKey } from '../../src/core/pkcs-schemas.js';

describe('DER reader', () => {
  it('reads definite and BER indefinite lengths', () => {
    const definite = Buffer.from('3006020101020102', 'hex');
    const tlv = readTlv(definite);
    assert.equal(tlv.end, 8);
    assert.equal(readChildren(definite, tlv).length, 2);
    const indefinite = Buffer.from('30800201010201020000', 'hex');
    const ber = readTlv(indefinite);
    assert.equal(ber.indefinite, true);
    assert.equal(ber.end, indefinite.length);
    assert.equal(readChildren(indefinite, ber).length, 2);
  });

  it('decodes object identifiers', () => {
    assert.equal(decodeOid(Buffer.from('2a864886f70d010101', 'hex')), '1.2.840.113549.1.1.1');
    assert.equal(decodeOid(Buffer.from('550403', 'hex')), '2.5.4.3');
  });

  it('rejects lengths past the end and unclosed indefinite lengths as MalformedInput', () => {
    for (const hex of ['3005020101', '3080020101', '30', '3084ffffffff00']) {
      assert.throws(
        () => readTlv(Buffer.from(hex, 'hex')),
        (e) => isCoreError(e, 'MalformedInput'),
        hex,
      );
    }
  });

  it('refuses nesting deeper than its bound instead of overflowing the stack', () => {
    const deep = Buffer.concat([
      Buffer.alloc(20000, 0x30).fill(Buffer.from([0x30, 0x80])),
      Buffer.alloc(20000),
    ]);
    assert.throws(
      () => readTlv(deep),
      (e) => isCoreError(e, 'MalformedInput'),
    );
  });

  it('answers random input with a value or a typed error', () => {
    for (let i = 0; i < 2000; i++) {
      const buf = randomBytes(1 + (i % 64));
      buf[0] = 0x30;
      try {
        readTlv(buf);
      } catch (e) {
        assert.ok(isCoreError(e, 'MalformedInput'), String(e));
      }
    }
  });

  it('calls an element that claims more than 16 MiB damaged, not too large (no input is that large)', () => {
    for (const hex of ['30847fffffff020100', '300902847fffffff000000']) {
      assert.throws(
        () => decode(Buffer.from(hex, 'hex'), OneAsymmetricKey, 'private key'),
        (e: unknown) => {
          assert.ok(isCoreError(e, 'MalformedInput'), String(e));
          assert.match(e.message, /^The private key is damaged/);
          return true;
        },
      );
    }
  });
});
