import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createNetServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:tls';
import type { Identity } from '../../src/runtime/identity.js';
import { loopbackFor, probeListener, probeOnce } from '../../src/runtime/probe.js';
import { makeCa, makeIdentity } from './fixtures.js';

describe('loopbackFor', () => {
  it('reaches wildcard listeners through loopback and others directly', () => {
    assert.equal(loopbackFor('0.0.0.0'), '127.0.0.1');
    assert.equal(loopbackFor('::'), '::1');
    assert.equal(loopbackFor('127.0.0.1'), '127.0.0.1');
    assert.equal(loopbackFor('192.0.2.7'), '192.0.2.7');
    assert.equal(loopbackFor('::1'), '::1');
  });
});

describe('probeOnce / probeListener', () => {
  let a: Identity;
  let b: Identity;
  let server: Server;
  let port: number;
  const names: (string | null)[] = [];

  before(async () => {
    const ca = await makeCa();
    [a, b] = await Promise.all([makeIdentity(ca, ['a.test']), makeIdentity(ca, ['b.test'])]);
    server = createServer({
      key: a.keyPem,
      cert: a.certPem,
      SNICallback: (name, cb) => {
        names.push(name);
        cb(null, undefined);
      },
    });
    server.on('secureConnection', (s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('reports the served fingerprint, with and without SNI', async () => {
    names.length = 0;
    const checks = await probeListener({
      host: '127.0.0.1',
      port,
      targets: [
        { servername: null, expected: a.fingerprint, binding: 'server' },
        { servername: 'x.test', expected: a.fingerprint, binding: 'sni:x.test' },
        { servername: 'y.test', expected: b.fingerprint, binding: 'sni:y.test' },
      ],
    });
    assert.deepEqual(
      checks.map((c) => [c.binding, c.ok, c.served, c.error]),
      [
        ['server', true, a.fingerprint, null],
        ['sni:x.test', true, a.fingerprint, null],
        ['sni:y.test', false, a.fingerprint, 'FingerprintMismatch'],
      ],
    );
    assert.deepEqual(names.sort(), ['x.test', 'y.test'], 'no SNI was sent for the server check');
  });

  it('reports a refused connection and a listener that never answers', async () => {
    const closed = createNetServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await probeOnce('127.0.0.1', closedPort, {
      servername: null,
      expected: a.fingerprint,
      binding: 'server',
    });
    assert.deepEqual([refused.ok, refused.served, refused.error], [false, null, 'ECONNREFUSED']);

    const held = new Set<Socket>();
    const silent = createNetServer((socket) => held.add(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const silentPort = (silent.address() as { port: number }).port;
    const timedOut = await probeOnce(
      '127.0.0.1',
      silentPort,
      { servername: null, expected: a.fingerprint, binding: 'server' },
      100,
    );
    assert.deepEqual([timedOut.ok, timedOut.error], [false, 'Timeout after 100 ms']);
    for (const socket of held) socket.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });
});
