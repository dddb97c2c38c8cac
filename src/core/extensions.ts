/**
 * Decoding of the X.509 v3 extensions that path validation and certificate
 * descriptions need, into plain values. Each decoder reads the extension's DER
 * strictly (definite lengths, no trailing bytes, the SIZE (1..MAX) rules of
 * RFC 5280) and throws a `MalformedInput` `CoreError` when it is damaged.
 * Absent extensions give `undefined`.
 */
import type { Certificate, RawExtension } from './certificate.js';
import { decodeOid, readChildren, readTlv, type Tlv, tlvBytes, tlvContent } from './der.js';
import { describeName } from './distinguished-name.js';
import { CoreError } from './errors.js';
import { ipBytesToText } from './ip-address.js';

export const OID = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  policyMappings: '2.5.29.33',
  authorityKeyIdentifier: '2.5.29.35',
  policyConstraints: '2.5.29.36',
  extKeyUsage: '2.5.29.37',
  inhibitAnyPolicy: '2.5.29.54',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

/** Well-known extended key usages by name; other purposes are written as dotted OIDs. */
export const EKU_OIDS: Record<string, string> = {
  anyExtendedKeyUsage: '2.5.29.37.0',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  OCSPSigning: '1.3.6.1.5.5.7.3.9',
};

const EKU_NAMES: Record<string, string> = Object.fromEntries(
  Object.entries(EKU_OIDS).map(([name, oid]) => [oid, name]),
);

/** The OID of an extended key usage given by name (`serverAuth`) or as a dotted OID. */
export function ekuOid(nameOrOid: string): string {
  const oid = EKU_OIDS[nameOrOid] ?? nameOrOid;
  if (!/^\d+(\.\d+)+$/.test(oid)) {
    throw new CoreError(
      'InvalidGenerationRequest',
      `"${nameOrOid}" is not a known extended key usage.`,
    );
  }
  return oid;
}

/** The display name of an extended key usage OID (`serverAuth`), or the OID itself. */
export function ekuName(oid: string): string {
  return EKU_NAMES[oid] ?? oid;
}

export const KEY_USAGE_BITS = [
  'digitalSignature',
  'contentCommitment',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageName = (typeof KEY_USAGE_BITS)[number];

export interface BasicConstraintsValue {
  ca: boolean;
  /** Absent when the extension has no pathLenConstraint. */
  pathLength?: number;
  critical: boolean;
}

/** One GeneralName (RFC 5280 §4.2.1.6), decoded but not yet judged. */
export type GeneralName =
  | { kind: 'dns'; value: string }
  | { kind: 'ip'; bytes: Buffer }
  | { kind: 'email'; value: string }
  | { kind: 'uri'; value: string }
  | { kind: 'dn'; der: Buffer }
  | { kind: 'other'; typeId: string }
  | { kind: 'x400' }
  | { kind: 'edi' }
  | { kind: 'rid'; oid: string };

export interface SubjectAltNames {
  dns: string[];
  /** Canonical text: dotted decimal for IPv4, RFC 5952 for IPv6. */
  ip: string[];
  email: string[];
  uri: string[];
  /** Directory names as `dirName:<RFC 4514>`, other names as `otherName:<oid>`, etc. */
  other: string[];
}

export interface AuthorityKeyIdentifierValue {
  /** Upper-case hex, absent when the extension carries only issuer and serial. */
  keyId?: string;
  hasIssuer: boolean;
  hasSerial: boolean;
  critical: boolean;
}

export interface GeneralSubtree {
  base: GeneralName;
  minimum: number;
  maximum?: number;
}

export interface NameConstraintsValue {
  permitted: GeneralSubtree[];
  excluded: GeneralSubtree[];
  critical: boolean;
}

/** The raw extension with this OID, or undefined. */
export function findExtension(cert: Pick<Certificate, 'extensions'>, oid: string) {
  return cert.extensions.find((e) => e.oid === oid);
}

/**
 * ```asn1
 * BasicConstraints ::= SEQUENCE {
 *   cA                      BOOLEAN DEFAULT FALSE,
 *   pathLenConstraint       INTEGER (0..MAX) OPTIONAL }
 * ```
 */
export function basicConstraintsOf(cert: Pick<Certificate, 'extensions'>) {
  const ext = findExtension(cert, OID.basicConstraints);
  if (!ext) return undefined;
  return decodeBasicConstraints(ext);
}

function decodeBasicConstraints(ext: RawExtension): BasicConstraintsValue {
  const { buf, root } = top(ext, 0x30);
  const children = kids(buf, root);
  let i = 0;
  let ca = false;
  if (children[i]?.tag === 0x01) {
    ca = decodeBoolean(buf, children[i]!);
    i++;
  }
  let pathLength: number | undefined;
  if (children[i]?.tag === 0x02) {
    pathLength = decodeSmallUnsigned(buf, children[i]!, 'pathLenConstraint');
    i++;
  }
  if (i !== children.length) throw damaged('basicConstraints');
  return pathLength === undefined
    ? { ca, critical: ext.critical }
    : { ca, pathLength, critical: ext.critical };
}

/** ```asn1 KeyUsage ::= BIT STRING { digitalSignature (0), … decipherOnly (8) }``` */
export function keyUsageOf(cert: Pick<Certificate, 'extensions'>): KeyUsageName[] | undefined {
  const ext = findExtension(cert, OID.keyUsage);
  if (!ext) return undefined;
  const { buf, root } = top(ext, 0x03);
  const content = tlvContent(buf, root);
  if (content.length < 1 || content[0]! > 7 || (content.length === 1 && content[0] !== 0)) {
    throw damaged('keyUsage');
  }
  const bits = content.subarray(1);
  const names: KeyUsageName[] = [];
  KEY_USAGE_BITS.forEach((name, bit) => {
    const byte = bits[bit >> 3];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) names.push(name);
  });
  return names;
}

/**
 * ```asn1 ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId```
 * Names for well-known purposes (`serverAuth`), dotted OIDs for the others.
 */
export function extendedKeyUsageOf(cert: Pick<Certificate, 'extensions'>): string[] | undefined {
  const ext = findExtension(cert, OID.extKeyUsage);
  if (!ext) return undefined;
  return decodeExtendedKeyUsageOids(ext).map(ekuName);
}

/** The EKU extension's purposes as dotted OIDs. */
export function extendedKeyUsageOidsOf(cert: Pick<Certificate, 'extensions'>) {
  const ext = findExtension(cert, OID.extKeyUsage);
  return ext ? decodeExtendedKeyUsageOids(ext) : undefined;
}

function decodeExtendedKeyUsageOids(ext: RawExtension): string[] {
  const { buf, root } = top(ext, 0x30);
  const children = kids(buf, root);
  if (children.length === 0) throw damaged('extKeyUsage', 'it lists no purpose');
  return children.map((c) => {
    if (c.tag !== 0x06) throw damaged('extKeyUsage');
    return decodeOid(tlvContent(buf, c));
  });
}

/** ```asn1 SubjectAltName ::= GeneralNames  -- SEQUENCE SIZE (1..MAX) OF GeneralName``` */
export function subjectAltNameListOf(
  cert: Pick<Certificate, 'extensions'>,
): GeneralName[] | undefined {
  const ext = findExtension(cert, OID.subjectAltName);
  if (!ext) return undefined;
  const { buf, root } = top(ext, 0x30);
  const children = kids(buf, root);
  if (children.length === 0) throw damaged('subjectAltName', 'it lists no name');
  return children.map((c) => decodeGeneralName(buf, c, 'subjectAltName'));
}

/** The subject alternative names grouped by kind, as plain strings. */
export function subjectAltNamesOf(cert: Pick<Certificate, 'extensions'>): SubjectAltNames {
  const out: SubjectAltNames = { dns: [], ip: [], email: [], uri: [], other: [] };
  for (const name of subjectAltNameListOf(cert) ?? []) {
    switch (name.kind) {
      case 'dns':
        out.dns.push(name.value);
        break;
      case 'ip':
        out.ip.push(ipBytesToText(name.bytes));
        break;
      case 'email':
        out.email.push(name.value);
        break;
      case 'uri':
        out.uri.push(name.value);
        break;
      default:
        out.other.push(generalNameToString(name));
    }
  }
  return out;
}

/** ```asn1 SubjectKeyIdentifier ::= KeyIdentifier  -- OCTET STRING``` as upper-case hex. */
export function subjectKeyIdOf(cert: Pick<Certificate, 'extensions'>): string | undefined {
  const ext = findExtension(cert, OID.subjectKeyIdentifier);
  if (!ext) return undefined;
  const { buf, root } = top(ext, 0x04);
  return tlvContent(buf, root).toString('hex').toUpperCase();
}

/** The keyIdentifier of the authorityKeyIdentifier, upper-case hex. */
export function authorityKeyIdOf(cert: Pick<Certificate, 'extensions'>): string | undefined {
  return authorityKeyIdentifierOf(cert)?.keyId;
}

/**
 * ```asn1
 * AuthorityKeyIdentifier ::= SEQUENCE {
 *   keyIdentifier             [0] KeyIdentifier           OPTIONAL,
 *   authorityCertIssuer       [1] GeneralNames            OPTIONAL,
 *   authorityCertSerialNumber [2] CertificateSerialNumber OPTIONAL  }
 * ```
 */
export function authorityKeyIdentifierOf(
  cert: Pick<Certificate, 'extensions'>,
): AuthorityKeyIdentifierValue | undefined {
  const ext = findExtension(cert, OID.authorityKeyIdentifier);
  if (!ext) return undefined;
  const { buf, root } = top(ext, 0x30);
  const out: AuthorityKeyIdentifierValue = {
    hasIssuer: false,
    hasSerial: false,
    critical: ext.critical,
  };
  let last = -1;
  for (const c of kids(buf, root)) {
    const n = c.tag & 0x1f;
    if ((c.tag & 0xc0) !== 0x80 || n <= last || n > 2) throw damaged('authorityKeyIdentifier');
    last = n;
    if (n === 0) out.keyId = tlvContent(buf, c).toString('hex').toUpperCase();
    if (n === 1) out.hasIssuer = true;
    if (n === 2) out.hasSerial = true;
  }
  return out;
}

/**
 * ```asn1
 * NameConstraints ::= SEQUENCE {
 *   permittedSubtrees       [0]     GeneralSubtrees OPTIONAL,
 *   excludedSubtrees        [1]     GeneralSubtrees OPTIONAL }
 * GeneralSubtrees ::= SEQUENCE SIZE (1..MAX) OF GeneralSubtree
 * GeneralSubtree ::= SEQUENCE {
 *   base                    GeneralName,
 *   minimum         [0]     BaseDistance DEFAULT 0,
 *   maximum         [1]     BaseDistance OPTIONAL }
 * ```
 * A constraint with neither subtree, or with an empty one, is damaged (RFC 5280
 * §4.2.1.10, CA/B BR 7.1.2.5.2).
 */
export function nameConstraintsOf(
  cert: Pick<Certificate, 'extensions'>,
): NameConstraintsValue | undefined {
  const ext = findExtension(cert, OID.nameConstraints);
  if (!ext) return undefined;
  const { buf, root } = top(ext, 0x30);
  const out: NameConstraintsValue = { permitted: [], excluded: [], critical: ext.critical };
  const children = kids(buf, root);
  if (children.length === 0) throw damaged('nameConstraints', 'it has no subtrees');
  let last = -1;
  for (const c of children) {
    const n = c.tag & 0x1f;
    if (c.tag !== 0xa0 + n || n <= last || n > 1) throw damaged('nameConstraints');
    last = n;
    const subtrees = kids(buf, c);
    if (subtrees.length === 0) throw damaged('nameConstraints', 'a list of subtrees is empty');
    for (const st of subtrees) {
      if (st.tag !== 0x30) throw damaged('nameConstraints');
      const parts = kids(buf, st);
      if (!parts[0]) throw damaged('nameConstraints');
      const subtree: GeneralSubtree = {
        base: decodeGeneralName(buf, parts[0], 'nameConstraints'),
        minimum: 0,
      };
      for (const p of parts.slice(1)) {
        if (p.tag === 0x80) subtree.minimum = decodeSmallUnsigned(buf, p, 'minimum');
        else if (p.tag === 0x81) subtree.maximum = decodeSmallUnsigned(buf, p, 'maximum');
        else throw damaged('nameConstraints');
      }
      (n === 0 ? out.permitted : out.excluded).push(subtree);
    }
  }
  return out;
}

/**
 * Checks that authorityInfoAccess is well formed:
 * ```asn1
 * AuthorityInfoAccessSyntax ::= SEQUENCE SIZE (1..MAX) OF AccessDescription
 * AccessDescription ::= SEQUENCE { accessMethod OBJECT IDENTIFIER, accessLocation GeneralName }
 * ```
 * Returns the access locations as `method → name` pairs.
 */
export function authorityInfoAccessOf(cert: Pick<Certificate, 'extensions'>) {
  const ext = findExtension(cert, OID.authorityInfoAccess);
  if (!ext) return undefined;
  const { buf, root } = top(ext, 0x30);
  const children = kids(buf, root);
  if (children.length === 0) throw damaged('authorityInfoAccess', 'it lists no access method');
  return children.map((c) => {
    const parts = c.tag === 0x30 ? kids(buf, c) : [];
    if (parts.length !== 2 || parts[0]!.tag !== 0x06) throw damaged('authorityInfoAccess');
    return {
      method: decodeOid(tlvContent(buf, parts[0]!)),
      location: decodeGeneralName(buf, parts[1]!, 'authorityInfoAccess'),
    };
  });
}

/** The certificate's extension OIDs that occur more than once (RFC 5280 §4.2 forbids it). */
export function duplicateExtensionOids(cert: Pick<Certificate, 'extensions'>): string[] {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const e of cert.extensions) {
    if (seen.has(e.oid)) dups.add(e.oid);
    seen.add(e.oid);
  }
  return [...dups];
}

/** A GeneralName as one line of text, e.g. `DNS:example.com`, `dirName:CN=foo`. */
export function generalNameToString(name: GeneralName): string {
  switch (name.kind) {
    case 'dns':
      return `DNS:${name.value}`;
    case 'ip':
      return `IP:${ipBytesToText(name.bytes)}`;
    case 'email':
      return `email:${name.value}`;
    case 'uri':
      return `URI:${name.value}`;
    case 'dn':
      return `dirName:${dnToString(name.der)}`;
    case 'other':
      return `otherName:${name.typeId}`;
    case 'rid':
      return `registeredID:${name.oid}`;
    default:
      return name.kind;
  }
}

/** One attribute of a Name, with its value as text and its DER string tag. */
export interface DnAttribute {
  oid: string;
  value: string;
}

/**
 * A DER Name as its RDNs, each a set of attributes.
 * ```asn1
 * Name ::= SEQUENCE OF RelativeDistinguishedName
 * RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
 * AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }
 * ```
 */
export function decodeNameRdns(der: Uint8Array): DnAttribute[][] {
  const buf = Buffer.from(der);
  const root = strictTlv(buf, 0, 'a name');
  if (root.tag !== 0x30 || root.end !== buf.length) throw damaged('a name');
  return kids(buf, root).map((rdn) => {
    if (rdn.tag !== 0x31) throw damaged('a name');
    const atvs = kids(buf, rdn);
    if (atvs.length === 0) throw damaged('a name', 'an RDN is empty');
    return atvs.map((atv) => {
      const parts = atv.tag === 0x30 ? kids(buf, atv) : [];
      if (parts.length !== 2 || parts[0]!.tag !== 0x06) throw damaged('a name');
      return {
        oid: decodeOid(tlvContent(buf, parts[0]!)),
        value: decodeDirectoryString(buf, parts[1]!),
      };
    });
  });
}

function dnToString(der: Buffer): string {
  try {
    return describeName(der).rfc4514;
  } catch {
    return '(damaged name)';
  }
}

function decodeDirectoryString(buf: Buffer, tlv: Tlv): string {
  const content = tlvContent(buf, tlv);
  switch (tlv.tag) {
    case 0x0c: // UTF8String
      return content.toString('utf8');
    case 0x1e: {
      // BMPString: UTF-16 big-endian
      const swapped = Buffer.from(content);
      if (swapped.length % 2 === 0) swapped.swap16();
      return swapped.toString('utf16le');
    }
    case 0x1c: {
      // UniversalString: UTF-32 big-endian
      let s = '';
      for (let i = 0; i + 3 < content.length; i += 4) {
        s += String.fromCodePoint(content.readUInt32BE(i) & 0x10ffff);
      }
      return s;
    }
    default:
      // PrintableString, IA5String, TeletexString (read as Latin-1), others.
      return content.toString('latin1');
  }
}

function decodeGeneralName(buf: Buffer, tlv: Tlv, where: string): GeneralName {
  const n = tlv.tag & 0x1f;
  const constructed = (tlv.tag & 0x20) !== 0;
  if ((tlv.tag & 0xc0) !== 0x80) throw damaged(where, 'a general name has a wrong tag');
  const content = tlvContent(buf, tlv);
  switch (n) {
    case 0: {
      const parts = constructed ? kids(buf, tlv) : [];
      if (parts.length !== 2 || parts[0]!.tag !== 0x06 || parts[1]!.tag !== 0xa0) {
        throw damaged(where, 'an otherName is malformed');
      }
      return { kind: 'other', typeId: decodeOid(tlvContent(buf, parts[0]!)) };
    }
    case 1:
    case 2:
    case 6: {
      if (constructed) throw damaged(where, 'a name is not a plain string');
      const value = content.toString('latin1');
      return n === 1
        ? { kind: 'email', value }
        : n === 2
          ? { kind: 'dns', value }
          : { kind: 'uri', value };
    }
    case 3:
      return { kind: 'x400' };
    case 4: {
      const parts = constructed ? kids(buf, tlv) : [];
      if (parts.length !== 1 || parts[0]!.tag !== 0x30) {
        throw damaged(where, 'a directoryName is malformed');
      }
      const der = Buffer.from(tlvBytes(buf, parts[0]!));
      decodeNameRdns(der);
      return { kind: 'dn', der };
    }
    case 5:
      return { kind: 'edi' };
    case 7:
      if (constructed) throw damaged(where, 'an iPAddress is not an octet string');
      return { kind: 'ip', bytes: Buffer.from(content) };
    case 8:
      if (constructed) throw damaged(where, 'a registeredID is malformed');
      return { kind: 'rid', oid: decodeOid(content) };
    default:
      throw damaged(where, 'a general name has an unknown tag');
  }
}

/** Reads a definite-length element, refusing BER indefinite lengths. */
function strictTlv(buf: Buffer, offset: number, where: string): Tlv {
  let tlv: Tlv;
  try {
    tlv = readTlv(buf, offset);
  } catch (cause) {
    throw new CoreError('MalformedInput', `The ${where} is damaged.`, { cause });
  }
  if (tlv.indefinite) throw damaged(where, 'it uses an indefinite length');
  return tlv;
}

function kids(buf: Buffer, parent: Tlv): Tlv[] {
  if ((parent.tag & 0x20) === 0) throw damaged('extension', 'a primitive element has children');
  let children: Tlv[];
  try {
    children = readChildren(buf, parent);
  } catch (cause) {
    throw new CoreError('MalformedInput', 'An extension is damaged.', { cause });
  }
  if (children.some((c) => c.indefinite)) throw damaged('extension', 'it is not DER');
  return children;
}

/** The single top-level element of an extension's value, which must fill it exactly. */
function top(ext: RawExtension, tag: number): { buf: Buffer; root: Tlv } {
  const buf = ext.value;
  const where = `extension ${ext.oid}`;
  const root = strictTlv(buf, 0, where);
  if (root.tag !== tag || root.end !== buf.length) throw damaged(where);
  return { buf, root };
}

function decodeBoolean(buf: Buffer, tlv: Tlv): boolean {
  const c = tlvContent(buf, tlv);
  if (c.length !== 1) throw damaged('a BOOLEAN');
  return c[0] !== 0;
}

function decodeSmallUnsigned(buf: Buffer, tlv: Tlv, what: string): number {
  const c = tlvContent(buf, tlv);
  if (c.length === 0 || c.length > 4 || c[0]! & 0x80) throw damaged(what);
  return c.reduce((acc, b) => acc * 256 + b, 0);
}

function damaged(where: string, why?: string): CoreError {
  return new CoreError(
    'MalformedInput',
    why ? `The ${where} is damaged: ${why}.` : `The ${where} is damaged.`,
  );
}
