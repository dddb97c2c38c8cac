/**
 * IP addresses as text and as the bytes of an `iPAddress` GeneralName: the one place
 * that reads an IP literal given by a person or a client, and the one place that writes
 * the canonical text (dotted decimal, RFC 5952 for IPv6).
 */
import { isIP } from 'node:net';

/**
 * The bytes of a strict IP literal: IPv4 as four decimal octets without leading zeros,
 * or IPv6 text (an IPv4 tail allowed, no zone id). Undefined for anything else.
 */
export function parseIpLiteral(text: string): Buffer | undefined {
  const kind = isIP(text);
  if (kind === 4) {
    const parts = text.split('.');
    if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return Buffer.from(parts.map(Number));
  }
  if (kind === 6) {
    if (text.includes('%')) return undefined;
    return ipv6Bytes(text);
  }
  return undefined;
}

function ipv6Bytes(text: string): Buffer {
  let t = text.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = t.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    t = `${t.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = t.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

/** Canonical text of an iPAddress: dotted decimal, or RFC 5952 for IPv6; hex otherwise. */
export function ipBytesToText(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return `0x${Buffer.from(bytes).toString('hex')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952 §4.2: compress the longest run (of two or more) of zero groups, the first if tied.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
