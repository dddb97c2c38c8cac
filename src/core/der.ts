import { CoreError } from './errors.js';

/** One ASN.1 BER/DER element: tag byte, where its contents start and end. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the element (past the end-of-contents octets when indefinite). */
  end: number;
  /** True for a BER indefinite-length element (PKCS#7 and PKCS#12 from older tools). */
  indefinite: boolean;
}

const MAX_DEPTH = 64;

/**
 * Reads the element at `offset`. Long tags, lengths past the buffer and nesting
 * deeper than 64 are `MalformedInput`, so hostile input can't make us loop or recurse
 * without bound.
 */
export function readTlv(buf: Uint8Array, offset = 0, depth = 0): Tlv {
  if (depth > MAX_DEPTH) throw malformed('nesting is too deep');
  if (offset + 2 > buf.length) throw malformed('it ends in the middle of an element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed('it uses a multi-byte tag');
  let pos = offset + 1;
  const first = buf[pos++]!;
  if (first === 0x80) {
    if ((tag & 0x20) === 0) throw malformed('a primitive element has an indefinite length');
    // Indefinite length: walk the children until the end-of-contents octets 00 00.
    let child = pos;
    for (;;) {
      if (child + 2 > buf.length) throw malformed('an indefinite-length element is not closed');
      if (buf[child] === 0 && buf[child + 1] === 0) {
        return { tag, start: offset, contentStart: pos, end: child + 2, indefinite: true };
      }
      child = readTlv(buf, child, depth + 1).end;
    }
  }
  let length = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n > 4) throw malformed('an element length is too large');
    length = 0;
    for (let i = 0; i < n; i++) {
      if (pos >= buf.length) throw malformed('it ends inside a length');
      length = length * 256 + buf[pos++]!;
    }
  }
  const end = pos + length;
  if (end > buf.length) throw malformed('an element is longer than the input');
  return { tag, start: offset, contentStart: pos, end, indefinite: false };
}

/** The direct children of a constructed element. */
export function readChildren(buf: Uint8Array, parent: Tlv, depth = 0): Tlv[] {
  const children: Tlv[] = [];
  const stop = parent.indefinite ? parent.end - 2 : parent.end;
  for (let pos = parent.contentStart; pos < stop; ) {
    const child = readTlv(buf, pos, depth + 1);
    children.push(child);
    pos = child.end;
  }
  return children;
}

/** The bytes of an element, header included. */
export function tlvBytes(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start);
}

/** The content bytes of a definite-length element. */
export function tlvContent(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.contentStart, tlv.end - tlv.contentStart);
}

/** Dotted-decimal form of an OBJECT IDENTIFIER's content bytes. */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw malformed('an object identifier is empty');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw malformed('an object identifier arc is too large');
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  return arcs.join('.');
}

/** What asn1js (under @peculiar/asn1-schema) says when an input passes one of its bounds. */
const ASN1JS_LIMITS: [RegExp, string][] = [
  [/node count/, 'it has too many ASN.1 elements (thousands of names, for instance)'],
  [/nesting depth/, 'it nests ASN.1 elements more than 100 deep'],
];

/**
 * The error for a failed @peculiar/asn1-schema parse of `what` (e.g. 'The certificate'):
 * over one of the decoder's bounds is `InputTooLarge`, too large or complex to read,
 * which is not damage; any other failure is `MalformedInput` with the sentence `damaged`.
 * An element that claims over 16 MiB (the decoder's bound on one length) is damage too:
 * no input certkeeper reads is that large, so its length field is wrong.
 */
export function asn1ParseError(cause: unknown, what: string, damaged: string): CoreError {
  const text = cause instanceof Error ? cause.message : String(cause);
  const limit = /Maximum ASN\.1/.test(text) && ASN1JS_LIMITS.find(([re]) => re.test(text));
  if (limit) {
    return new CoreError('InputTooLarge', `${what} is too large or complex to read: ${limit[1]}.`, {
      cause,
    });
  }
  return new CoreError('MalformedInput', damaged, { cause });
}

function malformed(why: string): CoreError {
  return new CoreError('MalformedInput', `The ASN.1 data is damaged: ${why}.`);
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
  CONTEXT_0: 0xa0,
  CONTEXT_1: 0xa1,
} as const;
