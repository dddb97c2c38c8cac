/** IP literal text to bytes and back: the one parser and printer of IP addresses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ipBytesToText, parseIpLiteral } from '../../src/core/ip-address.js';

describe('parseIpLiteral', () => {
  it('reads dotted IPv4 and IPv6 text, with an IPv4 tail', () => {
    assert.deepEqual([...parseIpLiteral('192.0.2.1')!], [192, 0, 2, 1]);
    assert.equal(
      parseIpLiteral('2001:db8::1')!.toString('hex'),
      '20010db8000000000000000000000001',
    );
    assert.equal(
      parseIpLiteral('::ffff:192.0.2.1')!.toString('hex'),
      '00000000000000000000ffffc0000201',
    );
    assert.equal(parseIpLiteral('::')!.toString('hex'), '0'.repeat(32));
  });

  it('refuses leading zeros, short forms, zone ids and names', () => {
    for (const bad of ['192.168.001.001', '1.2.3', '0x7f.1', 'fe80::1%eth0', 'example.com', '']) {
      assert.equal(parseIpLiteral(bad), undefined, bad);
    }
  });
});

describe('ipBytesToText', () => {
  it('writes IPv6 as RFC 5952 says: lower case, longest zero run compressed, first if tied', () => {
    const text = (t: string) => ipBytesToText(parseIpLiteral(t)!);
    assert.equal(text('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(text('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(text('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(text('0:0:0:0:0:0:0:0'), '::');
  });

  it('writes IPv4 dotted and other lengths as hex', () => {
    assert.equal(ipBytesToText(Uint8Array.from([10, 0, 0, 1])), '10.0.0.1');
    assert.equal(ipBytesToText(Uint8Array.from([1, 2, 3])), '0x010203');
  });
});
