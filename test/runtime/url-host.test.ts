import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { urlHost } from '../../src/runtime/supervisor.js';

describe('urlHost', () => {
  it('shows a wildcard address as the host name, and an IPv6 address in brackets', () => {
    assert.equal(urlHost('0.0.0.0', 'box.example'), 'box.example');
    assert.equal(urlHost('::', 'box.example'), 'box.example');
    assert.equal(urlHost('::'), hostname().includes(':') ? `[${hostname()}]` : hostname());
    assert.equal(urlHost('127.0.0.1', 'box.example'), '127.0.0.1');
    assert.equal(urlHost('::1', 'box.example'), '[::1]');
  });
});
