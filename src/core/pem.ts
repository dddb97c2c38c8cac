import { CoreError } from './errors.js';

/** One `-----BEGIN X-----` … `-----END X-----` block of a PEM file (RFC 7468). */
export interface PemBlock {
  /** The label between BEGIN and the dashes, e.g. `CERTIFICATE`, `RSA PRIVATE KEY`. */
  label: string;
  /** RFC 1421 headers such as `Proc-Type` and `DEK-Info` (traditional encrypted keys). */
  headers: Record<string, string>;
  /** The base64-decoded body. */
  der: Buffer;
  /** The block exactly as found, with normalised line ends, for APIs that want PEM text. */
  text: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 #]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const BASE64_LINE = /^[A-Za-z0-9+/=]*$/;

/** True when the bytes look like PEM text: they contain a BEGIN line. */
export function looksLikePem(bytes: Uint8Array): boolean {
  // Search only a bounded prefix so that a large binary input is not decoded whole.
  const head = Buffer.from(bytes.subarray(0, Math.min(bytes.length, 1 << 20))).toString('latin1');
  return head.includes('-----BEGIN ');
}

/**
 * Every PEM block in the text, in order. Text before, between and after blocks is
 * ignored (OpenSSL's `-text` output, comments); CRLF line ends are accepted.
 * A block whose body is not base64 is a `MalformedInput`.
 */
export function parsePemBlocks(input: string | Uint8Array): PemBlock[] {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    const label = match[1]!;
    const lines = match[2]!.split(/\r?\n/).map((l) => l.trim());
    const headers: Record<string, string> = {};
    let i = 0;
    // RFC 1421 headers come first and end with an empty line.
    if (lines[0]?.includes(':')) {
      for (; i < lines.length && lines[i] !== ''; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        if (colon < 0) break;
        headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
      }
    }
    const body = lines.slice(i).filter((l) => l !== '');
    if (!body.every((l) => BASE64_LINE.test(l))) {
      throw new CoreError(
        'MalformedInput',
        `The PEM block "${label}" does not contain base64 data.`,
      );
    }
    const der = Buffer.from(body.join(''), 'base64');
    if (der.length === 0) {
      throw new CoreError('MalformedInput', `The PEM block "${label}" is empty.`);
    }
    blocks.push({ label, headers, der, text: match[0].replace(/\r\n/g, '\n') });
  }
  return blocks;
}

/** PEM text for DER bytes under a label, 64 characters a line. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
