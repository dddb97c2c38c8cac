/**
 * Name constraints (RFC 5280 §4.2.1.10), applied the way the web PKI validators
 * (rustls-webpki, Go crypto/x509) apply them:
 *
 * - dNSName: `example.com` covers `example.com` and every name below it. A constraint
 *   with a wildcard or a leading period is malformed (the period form is for URIs).
 *   A wildcard SAN `*.X` is inside a permitted subtree when `X` is, and clashes with an
 *   excluded subtree when `X` is inside it or when one of the names the wildcard could
 *   stand for is the excluded name (CVE-2025-61727).
 * - iPAddress: address and contiguous mask (8 or 16+16 bytes), compared with a SAN of
 *   the same family.
 * - rfc822Name: a mailbox, a host, or `.domain`; applied to SANs and to the subject's
 *   emailAddress attributes.
 * - uniformResourceIdentifier: a host or `.domain`, compared with the URI's host.
 * - directoryName: an RDN prefix of the subject (when not empty) and of directoryName SANs.
 * - Other forms (otherName, x400Address, ediPartyName, registeredID) are not processed:
 *   a certificate carrying a name of such a form under such a constraint is refused.
 *
 * A name that is malformed (a SAN that is not a DNS name, an IP SAN of the wrong length)
 * is outside every subtree of its form. Work is bounded: a chain that needs more than
 * `NAME_CONSTRAINT_BUDGET` comparisons is refused, as webpki does.
 */
import type { Certificate } from './certificate.js';
import {
  type DnAttribute,
  decodeNameRdns,
  type GeneralName,
  type GeneralSubtree,
  generalNameToString,
  type NameConstraintsValue,
  subjectAltNameListOf,
} from './extensions.js';
import { isValidDnsName, isValidDnsPattern } from './hostname.js';

/** Most name-against-subtree comparisons one validation may make. */
export const NAME_CONSTRAINT_BUDGET = 250_000;

/** The remaining comparisons of one validation, shared over the whole chain. */
export interface NameConstraintBudget {
  remaining: number;
}

/** The names of one certificate that name constraints apply to. */
export interface ConstrainedNames {
  san: GeneralName[];
  /** The subject's RDNs, empty when the subject is empty. */
  subject: DnAttribute[][];
  /** emailAddress attributes of the subject. */
  subjectEmails: string[];
}

const EMAIL_ADDRESS = '1.2.840.113549.1.9.1';

/** The names of a certificate that name constraints look at. Throws on a damaged SAN. */
export function constrainedNamesOf(cert: Certificate): ConstrainedNames {
  const subject = decodeNameRdns(cert.subject.der);
  return {
    san: subjectAltNameListOf(cert) ?? [],
    subject,
    subjectEmails: subject.flat().flatMap((a) => (a.oid === EMAIL_ADDRESS ? [a.value] : [])),
  };
}

/** Why a NameConstraints value is malformed, or undefined when it is usable. */
export function nameConstraintsProblem(nc: NameConstraintsValue): string | undefined {
  for (const subtree of [...nc.permitted, ...nc.excluded]) {
    if (subtree.minimum !== 0 || subtree.maximum !== undefined) {
      return 'A name constraint uses minimum or maximum, which RFC 5280 forbids.';
    }
    const base = subtree.base;
    if (base.kind === 'dns' && base.value !== '' && !isValidDnsName(base.value)) {
      return `The DNS name constraint "${base.value}" is not a valid DNS name.`;
    }
    if (base.kind === 'ip' && !ipMask(base.bytes)) {
      return 'An IP address name constraint is not an address with a contiguous mask.';
    }
    if ((base.kind === 'email' || base.kind === 'uri') && /[\s]/.test(base.value)) {
      return `The name constraint "${base.value}" is malformed.`;
    }
  }
  return undefined;
}

class BudgetExceeded extends Error {}

/**
 * Why the names violate the constraints, as one sentence, or undefined when they
 * don't. `nc` must have passed `nameConstraintsProblem`.
 */
export function nameConstraintViolation(
  nc: NameConstraintsValue,
  names: ConstrainedNames,
  budget: NameConstraintBudget,
): string | undefined {
  try {
    return findViolation(nc, names, budget);
  } catch (err) {
    if (err instanceof BudgetExceeded) {
      return `Checking the name constraints needs more than ${NAME_CONSTRAINT_BUDGET} comparisons.`;
    }
    throw err;
  }
}

type Kind = GeneralName['kind'];

function findViolation(
  nc: NameConstraintsValue,
  names: ConstrainedNames,
  budget: NameConstraintBudget,
): string | undefined {
  const permitted = groupByKind(nc.permitted);
  const excluded = groupByKind(nc.excluded);
  const candidates: GeneralName[] = [...names.san];
  for (const value of names.subjectEmails) candidates.push({ kind: 'email', value });
  for (const name of candidates) {
    const why = checkName(name, permitted, excluded, budget, describeName(name));
    if (why) return why;
  }
  if (names.subject.length > 0) {
    const why = checkDn(
      names.subject,
      permitted.get('dn'),
      excluded.get('dn'),
      budget,
      'the subject',
    );
    if (why) return why;
  }
  return undefined;
}

function checkName(
  name: GeneralName,
  permitted: Map<Kind, GeneralSubtree[]>,
  excluded: Map<Kind, GeneralSubtree[]>,
  budget: NameConstraintBudget,
  label: string,
): string | undefined {
  const allow = permitted.get(name.kind);
  const deny = excluded.get(name.kind);
  if (!allow && !deny) return undefined;
  switch (name.kind) {
    case 'dns':
      return checkWith(name.value, allow, deny, budget, label, dnsPermitted, dnsExcluded);
    case 'ip':
      return checkWith(name.bytes, allow, deny, budget, label, ipWithin, ipWithin);
    case 'email':
      return checkWith(name.value, allow, deny, budget, label, emailWithin, emailWithin);
    case 'uri':
      return checkWith(name.value, allow, deny, budget, label, uriWithin, uriWithin);
    case 'dn':
      return checkDn(decodeNameRdns(name.der), allow, deny, budget, label);
    default:
      return `The name ${label} is of a form whose constraints certkeeper does not process.`;
  }
}

function checkWith<T>(
  value: T,
  allow: GeneralSubtree[] | undefined,
  deny: GeneralSubtree[] | undefined,
  budget: NameConstraintBudget,
  label: string,
  permits: (value: T, base: GeneralName) => boolean | undefined,
  excludes: (value: T, base: GeneralName) => boolean | undefined,
): string | undefined {
  for (const subtree of deny ?? []) {
    spend(budget);
    const hit = excludes(value, subtree.base);
    if (hit === undefined) return `The name ${label} is malformed, so it can't be checked.`;
    if (hit) return `The name ${label} is in an excluded subtree.`;
  }
  if (allow) {
    let inside = false;
    for (const subtree of allow) {
      spend(budget);
      const hit = permits(value, subtree.base);
      if (hit === undefined) return `The name ${label} is malformed, so it can't be checked.`;
      if (hit) {
        inside = true;
        break;
      }
    }
    if (!inside) return `The name ${label} is outside every permitted subtree.`;
  }
  return undefined;
}

function checkDn(
  rdns: DnAttribute[][],
  allow: GeneralSubtree[] | undefined,
  deny: GeneralSubtree[] | undefined,
  budget: NameConstraintBudget,
  label: string,
): string | undefined {
  const within = (_: unknown, base: GeneralName) =>
    base.kind === 'dn' ? dnWithin(rdns, decodeNameRdns(base.der)) : false;
  return checkWith(rdns, allow, deny, budget, label, within, within);
}

function spend(budget: NameConstraintBudget): void {
  budget.remaining--;
  if (budget.remaining < 0) throw new BudgetExceeded();
}

function groupByKind(subtrees: GeneralSubtree[]): Map<Kind, GeneralSubtree[]> {
  const map = new Map<Kind, GeneralSubtree[]>();
  for (const s of subtrees) {
    const list = map.get(s.base.kind);
    if (list) list.push(s);
    else map.set(s.base.kind, [s]);
  }
  return map;
}

function describeName(name: GeneralName): string {
  return name.kind === 'ip' ? generalNameToString(name) : `"${generalNameToString(name)}"`;
}

/** `name` is inside the DNS subtree `base` (which is a valid name or empty). */
function dnsWithinName(name: string, base: string): boolean {
  const b = base.toLowerCase();
  return b === '' || name === b || name.endsWith(`.${b}`);
}

function dnsPermitted(value: string, base: GeneralName): boolean | undefined {
  if (base.kind !== 'dns') return false;
  if (!isValidDnsPattern(value)) return undefined;
  const name = value.toLowerCase();
  // `*.X` stands for names directly below X: all inside the subtree iff X is.
  return dnsWithinName(name.startsWith('*.') ? name.slice(2) : name, base.value);
}

function dnsExcluded(value: string, base: GeneralName): boolean | undefined {
  if (base.kind !== 'dns') return false;
  if (!isValidDnsPattern(value)) return undefined;
  const name = value.toLowerCase();
  if (!name.startsWith('*.')) return dnsWithinName(name, base.value);
  const parent = name.slice(2);
  if (dnsWithinName(parent, base.value)) return true;
  // The wildcard could stand for the excluded name itself (one label below X).
  const b = base.value.toLowerCase();
  const dot = b.indexOf('.');
  return dot > 0 && b.slice(dot + 1) === parent;
}

/** The prefix length of an address-and-mask constraint, or undefined when malformed. */
function ipMask(bytes: Buffer): { addr: Buffer; mask: Buffer } | undefined {
  if (bytes.length !== 8 && bytes.length !== 32) return undefined;
  const half = bytes.length / 2;
  const mask = bytes.subarray(half);
  let seenZero = false;
  for (const byte of mask) {
    for (let bit = 7; bit >= 0; bit--) {
      const set = (byte >> bit) & 1;
      if (set && seenZero) return undefined;
      if (!set) seenZero = true;
    }
  }
  return { addr: bytes.subarray(0, half), mask };
}

function ipWithin(addr: Buffer, base: GeneralName): boolean | undefined {
  if (base.kind !== 'ip') return false;
  if (addr.length !== 4 && addr.length !== 16) return undefined;
  const range = ipMask(base.bytes);
  if (!range || range.addr.length !== addr.length) return false;
  for (let i = 0; i < addr.length; i++) {
    if ((addr[i]! & range.mask[i]!) !== (range.addr[i]! & range.mask[i]!)) return false;
  }
  return true;
}

function emailWithin(value: string, base: GeneralName): boolean | undefined {
  if (base.kind !== 'email') return false;
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return undefined;
  const host = value.slice(at + 1).toLowerCase();
  const c = base.value;
  if (c.includes('@')) {
    const cat = c.lastIndexOf('@');
    return value.slice(0, at) === c.slice(0, cat) && host === c.slice(cat + 1).toLowerCase();
  }
  if (c.startsWith('.')) return host.endsWith(c.toLowerCase());
  return host === c.toLowerCase();
}

function uriWithin(value: string, base: GeneralName): boolean | undefined {
  if (base.kind !== 'uri') return false;
  const m = value.match(/^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i);
  const host = m?.[1]?.toLowerCase();
  if (!host) return undefined;
  const c = base.value.toLowerCase();
  if (c.startsWith('.')) return host.endsWith(c);
  return host === c;
}

/** The constraint's RDNs are a prefix of the name's (RFC 5280 §7.1 comparison, simplified). */
function dnWithin(name: DnAttribute[][], base: DnAttribute[][]): boolean {
  if (base.length > name.length) return false;
  return base.every((rdn, i) => rdnEqual(rdn, name[i]!));
}

function rdnEqual(a: DnAttribute[], b: DnAttribute[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x) =>
    b.some((y) => x.oid === y.oid && normalise(x.value) === normalise(y.value)),
  );
}

/** RFC 4518-style string preparation, reduced to case folding and space squeezing. */
function normalise(value: string): string {
  return value.trim().replace(/\s+/g, ' ').toLowerCase();
}
