/** SNI binding names follow core's one host name rule (`core/hostname.ts`). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { existingBinding, sniBinding, userBinding } from '../../src/service/binding-name.js';
import { ServiceError } from '../../src/service/errors.js';

function refusedAsInvalidHostname(host: string, pattern?: RegExp): void {
  assert.throws(
    () => sniBinding(host),
    (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.code, 'InvalidHostname', host);
      if (pattern) assert.match(err.message, pattern);
      return true;
    },
    host,
  );
}

describe('sniBinding', () => {
  it('keeps the lower-case name without its trailing dot, wildcards included', () => {
    assert.equal(sniBinding(' WWW.Example.COM. '), 'sni:www.example.com');
    assert.equal(sniBinding('*.Example.co.uk'), 'sni:*.example.co.uk');
    assert.equal(userBinding('sni:*.bucket.s3.amazonaws.com'), 'sni:*.bucket.s3.amazonaws.com');
  });

  it('refuses a wildcard directly under a public suffix, and says so', () => {
    for (const host of ['*.co.uk', '*.s3.amazonaws.com', '*.com']) {
      refusedAsInvalidHostname(host, /public suffix/);
    }
  });

  it('refuses underscores, inner wildcards and IP-like names, as certificates do', () => {
    for (const host of ['foo_bar.example.com', 'www.*.example.com', '192.0.2.1', '*', '']) {
      refusedAsInvalidHostname(host);
    }
  });
});

describe('existingBinding', () => {
  it('names a binding an older policy let in, so it can be removed', () => {
    assert.equal(existingBinding('sni:*.LAN.'), 'sni:*.lan');
    assert.equal(existingBinding('sni:_svc.example.com'), 'sni:_svc.example.com');
    assert.equal(existingBinding('server'), 'server');
  });

  it('still refuses what no binding can be', () => {
    for (const name of ['sni:www.*.example.com', 'sni:a b', 'ca', 'other']) {
      assert.throws(() => existingBinding(name), ServiceError, name);
    }
  });
});
