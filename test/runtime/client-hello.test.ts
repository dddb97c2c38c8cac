import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect } from 'node:tls';
import { MAX_CLIENT_HELLO_BYTES, serverNameOf } from '../../src/runtime/client-hello.js';

/** The first bytes a real Node TLS client sends, as a TCP server receives them. */
async function clientHello(servername?: string): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const received = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket: Socket) => {
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
      });
    });
  });
  const client = connect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}) });
  client.on('error', () => undefined);
  const bytes = await received;
  client.destroy();
  server.close();
  return bytes;
}

/** The same handshake message, split into records of at most `size` bytes of fragment. */
function splitRecords(hello: Buffer, size: number): Buffer {
  const handshake = hello.subarray(5);
  const records: Buffer[] = [];
  for (let at = 0; at < handshake.length; at += size) {
    const fragment = handshake.subarray(at, at + size);
    const header = Buffer.from([22, 3, 1, 0, 0]);
    header.writeUInt16BE(fragment.length, 3);
    records.push(header, fragment);
  }
  return Buffer.concat(records);
}

describe('the server name of a ClientHello', () => {
  it("reads the SNI host name of a real client's hello", async () => {
    assert.equal(serverNameOf(await clientHello('api.example.test')), 'api.example.test');
  });

  it('says null for a hello without SNI, and for bytes that are not TLS', async () => {
    assert.equal(serverNameOf(await clientHello()), null);
    assert.equal(serverNameOf(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), null);
  });

  it('asks for more bytes until the hello is complete, at every split', async () => {
    const hello = await clientHello('split.example.test');
    for (let cut = 0; cut < hello.length; cut++) {
      assert.equal(serverNameOf(hello.subarray(0, cut)), undefined, `cut at ${cut}`);
    }
    assert.equal(serverNameOf(hello), 'split.example.test');
  });

  it('reads a hello fragmented over several records', async () => {
    const hello = await clientHello('records.example.test');
    assert.equal(serverNameOf(splitRecords(hello, 100)), 'records.example.test');
    assert.equal(serverNameOf(splitRecords(hello, 100).subarray(0, 150)), undefined);
  });

  it('gives up (null) on a hello that claims more than a hello may be', () => {
    const header = Buffer.from([22, 3, 1, 0xff, 0xff, 1, 0xff, 0xff, 0xff]);
    const bytes = Buffer.concat([header, Buffer.alloc(MAX_CLIENT_HELLO_BYTES)]);
    assert.equal(serverNameOf(bytes), null);
  });
});
