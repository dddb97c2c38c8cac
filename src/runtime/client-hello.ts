/**
 * The server name of a TLS ClientHello, read from the first bytes a client sends, before
 * any TLS object exists. The runtime needs it to pick the connection's context up front:
 * with Node, a context chosen later by `SNICallback` only adds its certificate to the
 * ones the listener's default context already put in the connection, and OpenSSL then
 * picks among them by the client's signature algorithms, so an RSA SNI identity behind
 * an ECDSA server identity would be served the ECDSA one (nodejs/node#54235).
 *
 * ```
 * TLSPlaintext  { ContentType type = 22; ProtocolVersion; uint16 length; fragment }
 * Handshake     { HandshakeType msg_type = 1; uint24 length; ClientHello }
 * ClientHello   { ProtocolVersion; Random[32]; opaque session_id<0..32>;
 *                 CipherSuite cipher_suites<2..2^16-2>; opaque compression<1..2^8-1>;
 *                 Extension extensions<8..2^16-1> }            (RFC 8446 §4.1.2)
 * ServerNameList { ServerName server_name_list<1..2^16-1> }   (RFC 6066 §3)
 * ServerName    { NameType name_type = 0; opaque HostName<1..2^16-1> }
 * ```
 */

/** A ClientHello never needs more than this (records of up to 16 KiB, plus headers). */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024 + 5;

/** `undefined`: more bytes are needed. Otherwise the name, or null (none, or not TLS). */
export type ServerNameResult = string | null | undefined;

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME_EXTENSION = 0;
const HOST_NAME = 0;

/** The SNI host name of the ClientHello at the start of `bytes` (see `ServerNameResult`). */
export function serverNameOf(bytes: Buffer): ServerNameResult {
  const handshake = handshakeBytes(bytes);
  if (handshake === null || handshake === undefined) return handshake;
  if (handshake.length >= 1 && handshake[0] !== CLIENT_HELLO) return null;
  if (handshake.length < 4) return bytes.length >= MAX_CLIENT_HELLO_BYTES ? null : undefined;
  const length = handshake.readUIntBE(1, 3);
  if (handshake.length < 4 + length) {
    return bytes.length >= MAX_CLIENT_HELLO_BYTES ? null : undefined;
  }
  return serverNameInHello(handshake.subarray(4, 4 + length));
}

/** The handshake bytes of the leading records; undefined when incomplete, null when not TLS. */
function handshakeBytes(bytes: Buffer): Buffer | null | undefined {
  const fragments: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes[at] !== HANDSHAKE) return at === 0 ? null : Buffer.concat(fragments);
    if (bytes.length < at + 5) break;
    const length = bytes.readUInt16BE(at + 3);
    if (bytes.length < at + 5 + length) {
      fragments.push(bytes.subarray(at + 5));
      break;
    }
    fragments.push(bytes.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return fragments.length === 0 ? undefined : Buffer.concat(fragments);
}

function serverNameInHello(hello: Buffer): string | null {
  let at = 2 + 32;
  if (hello.length < at + 1) return null;
  at += 1 + hello[at]!;
  if (hello.length < at + 2) return null;
  at += 2 + hello.readUInt16BE(at);
  if (hello.length < at + 1) return null;
  at += 1 + hello[at]!;
  if (hello.length < at + 2) return null;
  const end = Math.min(hello.length, at + 2 + hello.readUInt16BE(at));
  at += 2;
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    at += 4;
    if (type === SERVER_NAME_EXTENSION) return hostNameIn(hello.subarray(at, at + length));
    at += length;
  }
  return null;
}

function hostNameIn(list: Buffer): string | null {
  let at = 2;
  while (at + 3 <= list.length) {
    const type = list[at]!;
    const length = list.readUInt16BE(at + 1);
    at += 3;
    if (type === HOST_NAME && at + length <= list.length) {
      return list.subarray(at, at + length).toString('latin1');
    }
    at += length;
  }
  return null;
}
