/**
 * Does a server certificate cover a host name? RFC 6125 / RFC 9525 matching as the
 * CA/Browser Forum Baseline Requirements and the browsers apply it:
 *
 * - A DNS host matches a `dNSName` SAN case-insensitively; a trailing dot on the host
 *   is ignored. SANs must be in the LDH "preferred name syntax" (RFC 5280 §4.2.1.6):
 *   a SAN with an underscore, a non-ASCII character or a trailing dot never matches.
 * - A wildcard is a `*` that forms the whole left-most label and stands for exactly one
 *   label (`*.example.com` covers `www.example.com`, not `a.b.example.com` nor
 *   `example.com`). Partial wildcards (`f*o.example.com`, `xn--*…`) are refused, as the
 *   BR definition of a Wildcard Domain Name has no place for them and RFC 9525 §6.3
 *   deprecates them. A wildcard directly under a public suffix (`*`, `*.com`,
 *   `*.co.uk`, and `*.s3.amazonaws.com` from the PSL's private section) covers nothing,
 *   as the BRs (3.2.2.6) forbid issuing it and the browsers refuse it.
 * - An IP host (v4 or v6, canonicalised) matches `iPAddress` SANs byte for byte, and
 *   never a `dNSName` or the common name.
 * - No fallback to the subject common name, whether or not there are SANs: browsers
 *   dropped it (Chrome 58, Firefox 48) and the BRs require every name in the SAN.
 *
 * `isValidDnsName` and `isValidDnsPattern` are the project's one definition of a host
 * name: issuance and CSRs (`generate.ts`), name constraints and new SNI bindings (the
 * service) all call them, so a name refused there is refused everywhere. What is already
 * stored is read with the syntax-only `isSniHostSyntax` (store, runtime), so a stricter
 * policy never locks a server out of a binding an older version wrote.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { Certificate } from './certificate.js';
import { CoreError } from './errors.js';
import { subjectAltNameListOf } from './extensions.js';
import { ipBytesToText, parseIpLiteral } from './ip-address.js';

export interface Host {
  kind: 'DNS' | 'IP';
  /** Lower-case DNS name without trailing dot, or canonical IP text. */
  value: string;
}

/** A label of letters, digits and inner hyphens (RFC 1123 "LDH"); no `_`, no `*`. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * True for a host name in preferred name syntax, letter case aside, e.g.
 * `www.example.com`: LDH labels of 1 to 63 characters, 253 in all, no trailing dot,
 * no `_` (it is for service labels such as `_acme-challenge`, never a host), and a last
 * label that is not all digits or `0x…` (a browser would read the name as an IPv4
 * address, and no top-level domain looks like that).
 */
export function isValidDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.toLowerCase().split('.');
  if (/^(0x[0-9a-f]*|\d+)$/.test(labels[labels.length - 1]!)) return false;
  return labels.every((label) => LABEL.test(label));
}

/**
 * True for a DNS name that may be presented in a certificate, bound or issued: a valid
 * DNS name, or `*.` followed by a valid DNS name that is not a public suffix.
 */
export function isValidDnsPattern(pattern: string): boolean {
  if (pattern.startsWith('*.')) {
    const rest = pattern.slice(2);
    return isValidDnsName(rest) && rest.includes('.') && !isPublicSuffix(rest);
  }
  return isValidDnsName(pattern);
}

/**
 * Why a DNS name can't be put in a certificate or a binding, as one sentence, or
 * undefined when `isValidDnsPattern` accepts it.
 */
export function dnsPatternProblem(pattern: string): string | undefined {
  if (isValidDnsPattern(pattern)) return undefined;
  const rest = pattern.startsWith('*.') ? pattern.slice(2) : undefined;
  if (rest !== undefined && isValidDnsName(rest)) {
    return `"${pattern}" is a wildcard directly under the public suffix "${rest}", which no certificate may name.`;
  }
  return `"${pattern}" is not a valid DNS name (use letters, digits and hyphens; IDNs as xn--).`;
}

/** A label as SNI bindings have always been stored: lower-case LDH, `_` tolerated. */
const BOUND_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const BOUND_HOST = new RegExp(`^(?:\\*\\.)?${BOUND_LABEL}(?:\\.${BOUND_LABEL})*$`);

/**
 * True for an SNI host a binding may hold: syntax only (lower-case labels, `_` allowed,
 * an optional `*.` over any name, 253 characters at most). The store and the runtime
 * check this, not `isValidDnsPattern`, so that bindings written under an older or
 * looser policy (`*.lan`, `_svc.example.com`) still serve and can be unbound; the policy
 * applies where a binding is made.
 */
export function isSniHostSyntax(name: string): boolean {
  return name.length <= 253 && BOUND_HOST.test(name);
}

const PSL_OPTIONS = {
  allowPrivateDomains: true,
  extractHostname: false,
  validateHostname: false,
  detectIp: false,
  mixedInputs: false,
} as const;

/**
 * True when the name is a public suffix of the Public Suffix List, ICANN or private
 * section (`com`, `co.uk`, `s3.amazonaws.com`), or a single label (an unknown
 * top-level domain is treated as a suffix, as the PSL's default rule says).
 */
export function isPublicSuffix(name: string): boolean {
  const lower = name.toLowerCase();
  if (!lower.includes('.')) return true;
  // The list (~140 KB of code) loads on the first wildcard, not in every program that
  // imports core: most runs of the CLI never check one.
  psl ??= createRequire(import.meta.url)('tldts') as typeof import('tldts');
  return psl.getPublicSuffix(lower, PSL_OPTIONS) === lower;
}

let psl: typeof import('tldts') | undefined;

/**
 * Parses a host given by a person or a client: a DNS name or an IP literal (IPv6 may
 * be in brackets). IPs are canonicalised (dotted decimal, RFC 5952); DNS names are
 * lower-cased without the trailing dot. Anything else is a `MalformedInput`.
 */
export function parseHost(host: string): Host {
  let h = host.trim();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  const bytes = parseIpLiteral(h);
  if (bytes) return { kind: 'IP', value: ipBytesToText(bytes) };
  if (h.endsWith('.')) h = h.slice(0, -1);
  const lower = h.toLowerCase();
  if (!isValidDnsName(lower)) {
    throw new CoreError('MalformedInput', `"${host}" is not a valid DNS name or IP address.`);
  }
  return { kind: 'DNS', value: lower };
}

/**
 * True when the DNS pattern (a SAN `dNSName`) covers the DNS host. The host must
 * already be parsed (lower case, no trailing dot).
 */
export function dnsPatternMatches(pattern: string, host: string): boolean {
  if (!isValidDnsPattern(pattern)) return false;
  const p = pattern.toLowerCase();
  if (!p.startsWith('*.')) return p === host;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === p.slice(2);
}

/** True when the certificate's subjectAltName covers the host (see the module comment). */
export function certificateCoversHost(cert: Certificate, host: string): boolean {
  let parsed: Host;
  try {
    parsed = parseHost(host);
  } catch {
    return false;
  }
  let names: ReturnType<typeof subjectAltNameListOf>;
  try {
    names = subjectAltNameListOf(cert);
  } catch {
    return false;
  }
  return coversParsedHost(names ?? [], parsed);
}

/** The matching step of `certificateCoversHost`, for callers that already decoded the SAN. */
export function coversParsedHost(
  names: NonNullable<ReturnType<typeof subjectAltNameListOf>>,
  host: Host,
): boolean {
  if (host.kind === 'IP') {
    return names.some((n) => n.kind === 'ip' && ipBytesToText(n.bytes) === host.value);
  }
  return names.some((n) => n.kind === 'dns' && dnsPatternMatches(n.value, host.value));
}

/**
 * True when a subject common name reads like a host name or an IP address: it has no
 * white space and has a dot or a colon, or is a number as legacy IPv4 parsers read
 * them (`0xC0A80101`). Other CNs ("Acme web server") are display text and are ignored.
 */
export function commonNameLooksLikeHost(cn: string): boolean {
  if (cn.length === 0 || /\s/.test(cn)) return false;
  return /[.:]/.test(cn) || LEGACY_IPV4.test(cn);
}

/** IPv4 as inet_aton reads it: 1 to 4 parts, each decimal, octal (0…) or hex (0x…). */
const LEGACY_IPV4 = /^(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)(\.(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)){0,3}$/i;

/**
 * Why a host-like common name contradicts the subjectAltName (CA/B BR 7.1.4.3), or
 * undefined. The BR rule is that a CN repeats one SAN character for character; we
 * enforce it where a CN could make a client or a person believe in an identity the SAN
 * does not grant:
 * - an IP address in any notation must be the canonical text (RFC 3986 dotted decimal,
 *   RFC 5952) of an iPAddress SAN;
 * - a DNS name must be a byte-for-byte copy when it equals a SAN but for letter case
 *   or when it is not ASCII (a U-label instead of the SAN's A-label), and when it names
 *   another host of the same zone as a SAN (`notinsan.example.com` beside
 *   `valid.example.com`).
 * A DNS CN outside the zones of the SANs (CN=example.com beside foo.bar.example.com or
 * *.example.com, or beside IP SANs only) is tolerated: it is the usual shape of
 * certificates from private CAs and test generators, x509-limbo's own included.
 */
export function commonNameProblem(
  cn: string,
  san: NonNullable<ReturnType<typeof subjectAltNameListOf>>,
): string | undefined {
  if (!commonNameLooksLikeHost(cn)) return undefined;
  const dns = san.flatMap((n) => (n.kind === 'dns' ? [n.value] : []));
  if (dns.includes(cn)) return undefined;
  const ipLike = isIP(cn) !== 0 || LEGACY_IPV4.test(cn);
  if (ipLike) {
    const texts = san.flatMap((n) => (n.kind === 'ip' ? [ipBytesToText(n.bytes)] : []));
    return texts.includes(cn)
      ? undefined
      : `The common name "${cn}" is not the canonical text of one of the certificate's IP addresses.`;
  }
  const lower = cn.toLowerCase();
  if (!/^[\x21-\x7e]*$/.test(cn)) {
    return `The common name "${cn}" is not ASCII, so it can't repeat a subjectAltName.`;
  }
  if (dns.some((d) => d.toLowerCase() === lower)) {
    return `The common name "${cn}" differs from its subjectAltName in letter case.`;
  }
  const parent = (name: string) => name.slice(name.indexOf('.') + 1).toLowerCase();
  if (lower.includes('.') && dns.some((d) => d.includes('.') && parent(d) === parent(lower))) {
    return `The common name "${cn}" names a host that is not among the subjectAltNames.`;
  }
  return undefined;
}
