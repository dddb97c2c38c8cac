/**
 * Run by tls-runtime.test.ts as a child process: starts a runtime, makes handshakes
 * (one kept open), swaps, rotates the ticket key, stops — and must then exit on its own,
 * with no `process.exit`, proving that `stop()` leaves no socket or timer behind.
 */

import { TlsRuntime } from '../../src/runtime/tls-runtime.js';
import { handshake, makeCa, makeIdentity, openConnection } from './fixtures.js';

const ca = await makeCa();
const [a, b, c] = await Promise.all(
  ['a.example.test', 'b.example.test', 'c.example.test'].map((n) => makeIdentity(ca, [n])),
);
const runtime = new TlsRuntime({ host: '127.0.0.1', port: 0, stopGraceMs: 100 });
const started = await runtime.start({
  revision: 1,
  server: a!,
  sni: new Map([['c.example.test', c!]]),
});
if (!started.ok) throw new Error('start failed');
const port = runtime.address()!.port;
await handshake(port, { servername: 'c.example.test' });
const open = await openConnection(port);
await runtime.apply({ revision: 2, server: b!, sni: new Map() });
await runtime.ticketKeys.rotate();
await handshake(port);
await runtime.stop();
open.socket.on('close', () => console.log('stopped'));
