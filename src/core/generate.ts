import {
  createHash,
  createPublicKey,
  type KeyObject,
  generateKeyPair as nodeGenerateKeyPair,
  randomBytes,
  sign,
} from 'node:crypto';
import { promisify } from 'node:util';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import { type Certificate, getExtension } from './certificate.js';
import { type Csr, csrPublicKey, csrSignatureValid } from './csr.js';
import { CoreError } from './errors.js';
import { ekuName } from './extensions.js';
import { dnsPatternProblem } from './hostname.js';
import { ipBytesToText, parseIpLiteral } from './ip-address.js';
import { matchKeyToCertificate } from './keys.js';
import { SERVER_CERTIFICATE_MAX_DAYS } from './policy.js';

const generateKeyPairAsync = promisify(nodeGenerateKeyPair);

/** The keys certkeeper generates. */
export type KeySpec =
  | { type: 'rsa'; bits: 2048 | 3072 | 4096 }
  | { type: 'ec'; curve: 'P-256' | 'P-384' }
  | { type: 'ed25519' };

export interface SubjectFields {
  CN?: string;
  O?: string;
  OU?: string;
  C?: string;
  ST?: string;
  L?: string;
  emailAddress?: string;
}

export interface SubjectAltNames {
  dns?: string[];
  ip?: string[];
}

/**
 * A fresh key pair, generated on libuv's thread pool so the event loop keeps running
 * (an RSA-4096 key takes a second or more).
 */
export async function generateKeyPair(
  spec: KeySpec,
): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  const s = spec as { type?: unknown; bits?: unknown; curve?: unknown };
  if (s?.type === 'rsa') {
    if (s.bits !== 2048 && s.bits !== 3072 && s.bits !== 4096) {
      throw invalid('An RSA key must have 2048, 3072 or 4096 bits.');
    }
    return generateKeyPairAsync('rsa', { modulusLength: s.bits, publicExponent: 0x10001 });
  }
  if (s?.type === 'ec') {
    const namedCurve = s.curve === 'P-256' ? 'prime256v1' : s.curve === 'P-384' ? 'secp384r1' : '';
    if (!namedCurve) throw invalid('An EC key must use the curve P-256 or P-384.');
    return generateKeyPairAsync('ec', { namedCurve });
  }
  if (s?.type === 'ed25519') return generateKeyPairAsync('ed25519');
  throw invalid('The key type must be rsa, ec or ed25519.');
}

/**
 * A DER PKCS#10 request signed by `key` (SHA-256 for RSA and P-256, SHA-384 for P-384,
 * SHA-512 for P-521, pure EdDSA), the SANs in a PKCS#9 extensionRequest attribute.
 * Invalid subject fields or names are `InvalidGenerationRequest`.
 */
export async function createCsr(input: {
  key: KeyObject;
  subject: SubjectFields;
  sans?: SubjectAltNames;
}): Promise<Buffer> {
  const key = requirePrivateKey(input.key, 'The CSR');
  const algorithm = signingAlgorithm(key);
  const subject = buildName(input.subject);
  const extensions = sanExtensions(validateSans(input.sans), subject.length === 0);
  if (subject.length === 0 && extensions.length === 0) {
    throw invalid('A CSR needs a subject field or at least one subject alternative name.');
  }
  const info = new CertificationRequestInfo({
    version: 0,
    subject,
    subjectPKInfo: spkiOf(key),
  });
  if (extensions.length > 0) {
    info.attributes.push(
      new asn.Attribute({
        type: EXTENSION_REQUEST,
        values: [AsnConvert.serialize(new asn.Extensions(extensions))],
      }),
    );
  }
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const request = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: algorithm.id,
    signature: toArrayBuffer(signWith(key, algorithm, infoDer)),
  });
  return Buffer.from(AsnConvert.serialize(request));
}

/**
 * A self-signed CA certificate (DER): basicConstraints critical cA=true (optional
 * pathLen), keyUsage critical keyCertSign + cRLSign, a subject key identifier, a random
 * positive 16-byte serial, valid from `now` − 1 minute for `days` days. With `permitted`,
 * critical nameConstraints allow only those DNS names (and their subdomains, RFC 5280
 * §4.2.1.10) and those exact IP addresses.
 */
export async function createSelfSignedCa(input: {
  key: KeyObject;
  subject: SubjectFields;
  days: number;
  now: Date;
  pathLength?: number;
  permitted?: SubjectAltNames;
}): Promise<Buffer> {
  const key = requirePrivateKey(input.key, 'The CA certificate');
  const algorithm = signingAlgorithm(key);
  const subject = buildName(input.subject);
  if (subject.length === 0) throw invalid('A CA certificate needs a subject.');
  const { notBefore, notAfter } = validity(input.now, input.days);
  const pathLength = validatePathLength(input.pathLength);
  const spki = spkiOf(key);
  const extensions = [
    ...caExtensions(pathLength),
    extension(asn.id_ce_subjectKeyIdentifier, false, new asn.SubjectKeyIdentifier(keyId(spki))),
  ];
  if (input.permitted !== undefined) extensions.push(nameConstraintsExtension(input.permitted));
  return signCertificate(key, algorithm, {
    issuer: subject,
    subject,
    spki,
    notBefore,
    notAfter,
    extensions,
  });
}

/**
 * A TLS server certificate (or, with `isCa`, an intermediate) issued by a CA. Subject
 * and SANs are given or taken from a CSR, whose signature is verified first
 * (`SignatureInvalid`).
 *
 * A server certificate follows the CA/Browser Forum profile (BR 7.1.2.7): at least one
 * DNS or IP SAN, a common name (if any) that repeats one of them, EKU serverAuth (+
 * clientAuth when asked or when the CSR asks), keyUsage critical digitalSignature (+
 * keyEncipherment for RSA), basicConstraints critical cA=false, and at most
 * `SERVER_CERTIFICATE_MAX_DAYS` of validity. What a CSR asks that such a certificate can't
 * carry is refused, never dropped: cA=TRUE or keyCertSign, e-mail, URI or other SAN kinds,
 * other purposes, OCSP must-staple, an unknown critical extension (other non-critical
 * requests, such as a Windows template name, don't change what is issued). An
 * intermediate gets cA=true (optional pathLen) and keyUsage keyCertSign + cRLSign. Both
 * get an SKI, an AKI equal to the issuer's SKI, a random serial, and a validity capped
 * by the issuer's notAfter. Every refusal is `InvalidGenerationRequest`.
 */
export async function issueCertificate(input: {
  issuer: { certificate: Certificate; key: KeyObject };
  publicKey?: KeyObject;
  csr?: Csr;
  subject?: SubjectFields;
  sans?: SubjectAltNames;
  days: number;
  now: Date;
  isCa?: boolean;
  pathLength?: number;
  clientAuth?: boolean;
}): Promise<Buffer> {
  const issuerCert = input.issuer?.certificate;
  if (!issuerCert) throw invalid('The issuer certificate is missing.');
  const issuerKey = requirePrivateKey(input.issuer.key, 'The issuer');
  if (!matchKeyToCertificate(issuerKey, issuerCert)) {
    throw new CoreError(
      'KeyMismatch',
      "The issuer's private key does not belong to its certificate.",
    );
  }
  const isCa = input.isCa === true;
  checkIssuerMayIssue(issuerCert, isCa);
  const algorithm = signingAlgorithm(issuerKey);

  const subjectKey = subjectPublicKey(input.publicKey, input.csr);
  const requested = input.csr ? requestedProfile(input.csr, isCa) : { clientAuth: false };
  const subject = input.subject
    ? buildName(input.subject)
    : input.csr
      ? AsnConvert.parse(input.csr.subject.der, asn.Name)
      : new asn.Name();
  const sans = validateSans(input.sans ?? (input.csr ? csrSans(input.csr) : undefined));
  const sanExts = sanExtensions(sans, subject.length === 0);
  if (subject.length === 0 && sanExts.length === 0) {
    throw invalid('A certificate needs a subject field or at least one subject alternative name.');
  }
  if (!isCa) {
    if (sanExts.length === 0) {
      throw invalid(
        `A server certificate needs at least one DNS name or IP address as a subject alternative name${input.csr && !input.sans ? ', and the CSR names none' : ''}.`,
      );
    }
    checkCommonNames(subject, sans);
    if (input.days > SERVER_CERTIFICATE_MAX_DAYS) {
      throw invalid(
        `A server certificate may be valid for at most ${SERVER_CERTIFICATE_MAX_DAYS} days (CA/B BR 6.3.2), not ${input.days}.`,
      );
    }
  }

  const { notBefore, notAfter: wanted } = validity(input.now, input.days);
  if (issuerCert.notAfter.getTime() <= input.now.getTime()) {
    throw new CoreError(
      'CertificateExpired',
      `The issuer "${issuerCert.subject.rfc4514}" expired on ${issuerCert.notAfter.toISOString()}.`,
    );
  }
  const notAfter = new Date(Math.min(wanted.getTime(), issuerCert.notAfter.getTime()));

  const spki = spkiOf(subjectKey);
  const issuerSpki = AsnConvert.parse(issuerCert.spkiDer, asn.SubjectPublicKeyInfo);
  const issuerKeyId = subjectKeyIdentifier(issuerCert) ?? keyId(issuerSpki);
  const extensions: asn.Extension[] = [];
  if (isCa) {
    const pathLength = validatePathLength(input.pathLength);
    extensions.push(...caExtensions(pathLength));
  } else {
    if (input.pathLength !== undefined) {
      throw invalid('A path length only applies to a CA certificate.');
    }
    let usage = asn.KeyUsageFlags.digitalSignature;
    if (subjectKey.asymmetricKeyType === 'rsa') usage |= asn.KeyUsageFlags.keyEncipherment;
    const purposes = [asn.id_kp_serverAuth];
    if (input.clientAuth || requested.clientAuth) purposes.push(asn.id_kp_clientAuth);
    extensions.push(
      extension(asn.id_ce_basicConstraints, true, new asn.BasicConstraints({ cA: false })),
      extension(asn.id_ce_keyUsage, true, new asn.KeyUsage(usage)),
      extension(asn.id_ce_extKeyUsage, false, new asn.ExtendedKeyUsage(purposes)),
    );
  }
  extensions.push(
    extension(asn.id_ce_subjectKeyIdentifier, false, new asn.SubjectKeyIdentifier(keyId(spki))),
    extension(
      asn.id_ce_authorityKeyIdentifier,
      false,
      new asn.AuthorityKeyIdentifier({ keyIdentifier: new asn.KeyIdentifier(issuerKeyId) }),
    ),
    ...sanExts,
  );
  return signCertificate(issuerKey, algorithm, {
    issuer: AsnConvert.parse(issuerCert.subject.der, asn.Name),
    subject,
    spki,
    notBefore,
    notAfter,
    extensions,
  });
}

// ---------------------------------------------------------------------------------------

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';

/** RDN order of the subject, most general first (the order OpenSSL writes). */
const SUBJECT_FIELDS: { field: keyof SubjectFields; oid: string; max: number }[] = [
  { field: 'C', oid: '2.5.4.6', max: 2 },
  { field: 'ST', oid: '2.5.4.8', max: 128 },
  { field: 'L', oid: '2.5.4.7', max: 128 },
  { field: 'O', oid: '2.5.4.10', max: 64 },
  { field: 'OU', oid: '2.5.4.11', max: 64 },
  { field: 'CN', oid: '2.5.4.3', max: 64 },
  { field: 'emailAddress', oid: '1.2.840.113549.1.9.1', max: 255 },
];
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A Name from the fields: PrintableString where valid, else UTF8String; C always Printable. */
function buildName(fields: SubjectFields | undefined): asn.Name {
  if (fields === null || typeof fields !== 'object') {
    throw invalid('The subject must be an object of fields such as CN and O.');
  }
  const known = new Set<string>(SUBJECT_FIELDS.map((f) => f.field));
  for (const name of Object.keys(fields)) {
    if (!known.has(name)) {
      throw invalid(
        `The subject field "${name}" is not supported; use CN, O, OU, C, ST, L or emailAddress.`,
      );
    }
  }
  const rdns: asn.RelativeDistinguishedName[] = [];
  for (const { field, oid, max } of SUBJECT_FIELDS) {
    const raw = fields[field];
    if (raw === undefined) continue;
    if (typeof raw !== 'string') throw invalid(`The subject field ${field} must be text.`);
    const value = raw.trim();
    if (value.length === 0) throw invalid(`The subject field ${field} is empty.`);
    if (value.length > max) {
      throw invalid(`The subject field ${field} is longer than ${max} characters.`);
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse.
    if (/[\u0000-\u001f\u007f]/.test(value)) {
      throw invalid(`The subject field ${field} contains control characters.`);
    }
    let attributeValue: asn.AttributeValue;
    if (field === 'C') {
      if (!/^[A-Za-z]{2}$/.test(value)) {
        throw invalid('The country (C) must be a two-letter ISO 3166 code such as "DE".');
      }
      attributeValue = new asn.AttributeValue({ printableString: value.toUpperCase() });
    } else if (field === 'emailAddress') {
      if (!/^[\x21-\x7e]+@[\x21-\x7e]+$/.test(value)) {
        throw invalid('The subject emailAddress must be an ASCII e-mail address.');
      }
      attributeValue = new asn.AttributeValue({ ia5String: value });
    } else if (PRINTABLE.test(value)) {
      attributeValue = new asn.AttributeValue({ printableString: value });
    } else {
      attributeValue = new asn.AttributeValue({ utf8String: value });
    }
    rdns.push(
      new asn.RelativeDistinguishedName([
        new asn.AttributeTypeAndValue({ type: oid, value: attributeValue }),
      ]),
    );
  }
  return new asn.Name(rdns);
}

/** Validated, de-duplicated SANs: DNS names (LDH labels, leftmost `*` allowed) and IPs. */
function validateSans(sans: SubjectAltNames | undefined): { dns: string[]; ip: string[] } {
  if (sans === undefined) return { dns: [], ip: [] };
  if (sans === null || typeof sans !== 'object') {
    throw invalid('The subject alternative names must be an object with dns and ip lists.');
  }
  for (const name of Object.keys(sans)) {
    if (name !== 'dns' && name !== 'ip') {
      throw invalid(`The subject alternative name kind "${name}" is not supported; use dns or ip.`);
    }
  }
  const dns: string[] = [];
  for (const raw of list(sans.dns, 'dns')) {
    const name = raw.toLowerCase();
    const problem = dnsPatternProblem(name);
    if (problem) throw invalid(problem);
    if (!dns.includes(name)) dns.push(name);
  }
  const ip: string[] = [];
  for (const raw of list(sans.ip, 'ip')) {
    const bytes = parseIpLiteral(raw);
    if (!bytes) throw invalid(`"${raw}" is not a valid IPv4 or IPv6 address.`);
    const normal = formatIp(bytes);
    if (!ip.includes(normal)) ip.push(normal);
  }
  return { dns, ip };
}

function list(value: unknown, kind: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw invalid(`The ${kind} names must be a list of text.`);
  }
  return value;
}

/** Dotted IPv4 or the full eight-group IPv6 form (which @peculiar's converter parses). */
function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}

/** The SAN extension for the names, critical when the subject is empty (RFC 5280 §4.2.1.6). */
function sanExtensions(
  sans: { dns: string[]; ip: string[] },
  subjectEmpty: boolean,
): asn.Extension[] {
  const names = [
    ...sans.dns.map((dNSName) => new asn.GeneralName({ dNSName })),
    ...sans.ip.map((iPAddress) => new asn.GeneralName({ iPAddress })),
  ];
  if (names.length === 0) return [];
  return [extension(SUBJECT_ALT_NAME, subjectEmpty, new asn.SubjectAlternativeName(names))];
}

/**
 * The DNS and IP SANs a CSR requests. Any other kind (e-mail, URI, directory name…) is
 * refused: a TLS server certificate carries only DNS names and IP addresses (CA/B BR
 * 7.1.2.7.12), and dropping a name the requester asked for would surprise them later.
 */
function csrSans(csr: Csr): SubjectAltNames | undefined {
  const ext = csr.extensions.find((e) => e.oid === SUBJECT_ALT_NAME);
  if (!ext) return undefined;
  let names: asn.SubjectAlternativeName;
  try {
    names = AsnConvert.parse(ext.value, asn.SubjectAlternativeName);
  } catch (cause) {
    throw new CoreError('MalformedInput', "The CSR's subjectAltName extension is damaged.", {
      cause,
    });
  }
  const dns: string[] = [];
  const ip: string[] = [];
  for (const name of names) {
    if (name.dNSName !== undefined) dns.push(name.dNSName);
    else if (name.iPAddress !== undefined) ip.push(name.iPAddress);
    else throw invalid(`The CSR asks for ${unsupportedSan(name)}, ${ONLY_DNS_AND_IP}.`);
  }
  return { dns, ip };
}

const ONLY_DNS_AND_IP =
  "which a TLS server certificate can't carry (CA/B BR 7.1.2.7.12 allows only DNS names and IP addresses)";

function unsupportedSan(name: asn.GeneralName): string {
  if (name.rfc822Name !== undefined) return `the e-mail address SAN "${name.rfc822Name}"`;
  if (name.uniformResourceIdentifier !== undefined) {
    return `the URI SAN "${name.uniformResourceIdentifier}"`;
  }
  if (name.directoryName !== undefined) return 'a directory name SAN';
  if (name.registeredID !== undefined) return `the registered ID SAN ${name.registeredID}`;
  if (name.otherName !== undefined) return `an otherName SAN (${name.otherName.typeId})`;
  return 'a SAN of an unsupported kind';
}

const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
const EXT_KEY_USAGE = '2.5.29.37';
const SUBJECT_KEY_ID = '2.5.29.14';
const TLS_FEATURE = '1.3.6.1.5.5.7.1.24';

/**
 * What the CSR's requested extensions ask beyond its names: clientAuth is carried; a CA
 * (for a leaf), another purpose, must-staple or an unknown critical extension is refused.
 * The requested key usage follows the key type and is not copied.
 */
function requestedProfile(csr: Csr, isCa: boolean): { clientAuth: boolean } {
  let clientAuth = false;
  for (const ext of csr.extensions) {
    const parse = <T>(type: new () => T, label: string): T => {
      try {
        return AsnConvert.parse(ext.value, type);
      } catch (cause) {
        throw new CoreError('MalformedInput', `The CSR's ${label} extension is damaged.`, {
          cause,
        });
      }
    };
    switch (ext.oid) {
      case SUBJECT_ALT_NAME:
      case SUBJECT_KEY_ID:
        break;
      case BASIC_CONSTRAINTS:
        if (!isCa && parse(asn.BasicConstraints, 'basicConstraints').cA) {
          throw invalid(
            'The CSR asks for a CA certificate (basicConstraints CA:TRUE), but only an end-entity server certificate is issued from it.',
          );
        }
        break;
      case KEY_USAGE: {
        const usage = parse(asn.KeyUsage, 'keyUsage');
        const caUsage = usage
          .toJSON()
          .filter((u) => u === 'keyCertSign' || u === 'crlSign')
          .map((u) => (u === 'crlSign' ? 'cRLSign' : u));
        if (!isCa && caUsage.length > 0) {
          throw invalid(
            `The CSR asks for the key usage ${caUsage.join(' and ')}, which only a CA certificate may have.`,
          );
        }
        break;
      }
      case EXT_KEY_USAGE:
        if (isCa) break;
        for (const oid of parse(asn.ExtendedKeyUsage, 'extendedKeyUsage')) {
          if (oid === asn.id_kp_clientAuth) clientAuth = true;
          else if (oid !== asn.id_kp_serverAuth) {
            throw invalid(
              `The CSR asks for the extended key usage ${ekuName(oid)}, which a TLS server certificate can't carry (CA/B BR 7.1.2.7.10 allows serverAuth and clientAuth).`,
            );
          }
        }
        break;
      case TLS_FEATURE:
        throw invalid(
          'The CSR asks for OCSP must-staple, which this CA cannot honour: it runs no OCSP responder.',
        );
      default:
        if (ext.critical) {
          throw invalid(
            `The CSR asks for the critical extension ${ext.oid}, which is not supported.`,
          );
        }
    }
  }
  return { clientAuth };
}

/**
 * A server certificate's common name must repeat one of its SANs exactly (CA/B BR
 * 7.1.4.3): a DNS name as written (lower case), an IP address in its canonical text.
 */
function checkCommonNames(subject: asn.Name, sans: { dns: string[]; ip: string[] }): void {
  for (const rdn of subject) {
    for (const attr of rdn) {
      if (attr.type !== COMMON_NAME) continue;
      const cn = attr.value.toString();
      const bytes = parseIpLiteral(cn);
      const ipText = bytes === undefined ? undefined : ipBytesToText(bytes);
      const among =
        bytes === undefined
          ? sans.dns.includes(cn)
          : ipText === cn && sans.ip.includes(formatIp(bytes));
      if (!among) {
        throw invalid(
          `The common name "${cn}" is not one of the subject alternative names${ipText && ipText !== cn ? ` (write it as ${ipText})` : cn.toLowerCase() !== cn && sans.dns.includes(cn.toLowerCase()) ? ' (write it in lower case)' : ''}; a server certificate's CN must repeat one exactly (CA/B BR 7.1.4.3).`,
        );
      }
    }
  }
}

const COMMON_NAME = '2.5.4.3';

/**
 * Critical nameConstraints permitting exactly these DNS names (with their subdomains, as
 * RFC 5280 defines a dNSName subtree) and these IP addresses (address/full mask).
 */
function nameConstraintsExtension(permitted: SubjectAltNames): asn.Extension {
  const names = validateSans(permitted);
  if (names.dns.length === 0 && names.ip.length === 0) {
    throw invalid('Name constraints need at least one DNS name or IP address to permit.');
  }
  if (names.dns.some((n) => n.startsWith('*.'))) {
    throw invalid('A name constraint permits a DNS name and its subdomains; give it without "*."');
  }
  const subtrees = [
    ...names.dns.map((dNSName) => new asn.GeneralName({ dNSName })),
    ...names.ip.map(
      (ip) => new asn.GeneralName({ iPAddress: `${ip}/${ip.includes(':') ? 128 : 32}` }),
    ),
  ].map((base) => new asn.GeneralSubtree({ base }));
  return extension(
    asn.id_ce_nameConstraints,
    true,
    new asn.NameConstraints({ permittedSubtrees: new asn.GeneralSubtrees(subtrees) }),
  );
}

/** basicConstraints (critical, cA, optional path length) and keyUsage keyCertSign + cRLSign. */
function caExtensions(pathLength: { pathLenConstraint?: number }): asn.Extension[] {
  return [
    extension(
      asn.id_ce_basicConstraints,
      true,
      new asn.BasicConstraints({ cA: true, ...pathLength }),
    ),
    extension(
      asn.id_ce_keyUsage,
      true,
      new asn.KeyUsage(asn.KeyUsageFlags.keyCertSign | asn.KeyUsageFlags.cRLSign),
    ),
  ];
}

function extension(oid: string, critical: boolean, value: object): asn.Extension {
  return new asn.Extension({
    extnID: oid,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

interface SigningAlgorithm {
  id: asn.AlgorithmIdentifier;
  hash: string | null;
  ecdsa: boolean;
}

/** How `key` signs: SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521, pure EdDSA. */
function signingAlgorithm(key: KeyObject): SigningAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    return {
      id: new asn.AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.11', parameters: null }),
      hash: 'sha256',
      ecdsa: false,
    };
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const choice =
      curve === 'prime256v1'
        ? { oid: '1.2.840.10045.4.3.2', hash: 'sha256' }
        : curve === 'secp384r1'
          ? { oid: '1.2.840.10045.4.3.3', hash: 'sha384' }
          : curve === 'secp521r1'
            ? { oid: '1.2.840.10045.4.3.4', hash: 'sha512' }
            : undefined;
    if (!choice)
      throw invalid(
        `An EC key on the curve ${curve ?? '(unnamed)'} cannot sign here; use P-256 or P-384.`,
      );
    return {
      id: new asn.AlgorithmIdentifier({ algorithm: choice.oid }),
      hash: choice.hash,
      ecdsa: true,
    };
  }
  if (type === 'ed25519' || type === 'ed448') {
    const oid = type === 'ed25519' ? '1.3.101.112' : '1.3.101.113';
    return { id: new asn.AlgorithmIdentifier({ algorithm: oid }), hash: null, ecdsa: false };
  }
  throw invalid(`A ${type ?? 'secret'} key cannot sign here; use an RSA, EC or Ed25519 key.`);
}

function signWith(key: KeyObject, algorithm: SigningAlgorithm, data: Buffer): Buffer {
  try {
    return sign(algorithm.hash, data, algorithm.ecdsa ? { key, dsaEncoding: 'der' } : key);
  } catch (cause) {
    throw invalid('The key could not sign: it is not a usable private key.', cause);
  }
}

function signCertificate(
  key: KeyObject,
  algorithm: SigningAlgorithm,
  parts: {
    issuer: asn.Name;
    subject: asn.Name;
    spki: asn.SubjectPublicKeyInfo;
    notBefore: Date;
    notAfter: Date;
    extensions: asn.Extension[];
  },
): Buffer {
  const tbs = new asn.TBSCertificate({
    version: asn.Version.v3,
    serialNumber: toArrayBuffer(serialNumber()),
    signature: algorithm.id,
    issuer: parts.issuer,
    validity: new asn.Validity({ notBefore: parts.notBefore, notAfter: parts.notAfter }),
    subject: parts.subject,
    subjectPublicKeyInfo: parts.spki,
    extensions: new asn.Extensions(parts.extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const certificate = new asn.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm.id,
    signatureValue: toArrayBuffer(signWith(key, algorithm, tbsDer)),
  });
  return Buffer.from(AsnConvert.serialize(certificate));
}

/** 16 random bytes, first bit clear (positive) and second set (no leading zero to strip). */
function serialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
function keyId(spki: asn.SubjectPublicKeyInfo): Buffer {
  return createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
}

/**
 * From one minute before `now` (clock skew) for exactly `days` days counted from
 * notBefore, both ends inclusive as RFC 5280 §4.1.2.5 and CA/B BR 1.6.1 count them: so
 * notAfter is one second short of `days` × 24 h after notBefore, and "398 days" is 398.
 */
function validity(now: Date, days: number): { notBefore: Date; notAfter: Date } {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw invalid('The current time ("now") is not a valid date.');
  }
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 36_500) {
    throw invalid('The validity must be a whole number of days from 1 to 36500.');
  }
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * 86_400_000 - 1000) };
}

function validatePathLength(pathLength: number | undefined): { pathLenConstraint?: number } {
  if (pathLength === undefined) return {};
  if (!Number.isInteger(pathLength) || pathLength < 0 || pathLength > 16) {
    throw invalid('The path length must be a whole number from 0 to 16.');
  }
  return { pathLenConstraint: pathLength };
}

/**
 * The issuer must be a CA; an intermediate needs room under its path length (a limit
 * of 0 allows no CA below it; a longer path is the validator's business).
 */
function checkIssuerMayIssue(issuer: Certificate, isCa: boolean): void {
  const constraints = getExtension(issuer, asn.id_ce_basicConstraints, asn.BasicConstraints);
  if (!constraints?.cA) {
    throw new CoreError(
      'NotACertificateAuthority',
      `The certificate "${issuer.subject.rfc4514}" is not a CA, so it cannot issue certificates.`,
    );
  }
  const limit = constraints.pathLenConstraint;
  if (isCa && limit === 0) {
    throw new CoreError(
      'PathLengthExceeded',
      `The CA "${issuer.subject.rfc4514}" has path length 0, so it cannot issue another CA.`,
    );
  }
}

function subjectKeyIdentifier(cert: Certificate): Buffer | undefined {
  const value = getExtension(cert, asn.id_ce_subjectKeyIdentifier, asn.SubjectKeyIdentifier);
  return value ? Buffer.from(value.buffer) : undefined;
}

/** The public key to certify: exactly one of `publicKey` or a CSR whose signature verifies. */
function subjectPublicKey(publicKey: KeyObject | undefined, csr: Csr | undefined): KeyObject {
  if (publicKey && csr) throw invalid('Give either a public key or a CSR, not both.');
  if (csr) {
    const valid = csrSignatureValid(csr);
    if (valid === null) {
      throw new CoreError(
        'UnsupportedAlgorithm',
        "The CSR's signature algorithm is not supported, so the request cannot be trusted.",
      );
    }
    if (!valid) {
      throw new CoreError(
        'SignatureInvalid',
        'The CSR signature does not verify: it was altered or signed by another key.',
      );
    }
    return csrPublicKey(csr);
  }
  if (!publicKey) throw invalid('Give the public key to certify, or a CSR.');
  if (publicKey.type === 'secret') throw invalid('A secret key cannot be certified.');
  return publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
}

function requirePrivateKey(key: KeyObject | undefined, what: string): KeyObject {
  if (!key || typeof key !== 'object' || (key as KeyObject).type !== 'private') {
    throw invalid(`${what} needs a private key to sign with.`);
  }
  return key;
}

function spkiOf(key: KeyObject): asn.SubjectPublicKeyInfo {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return AsnConvert.parse(
    publicKey.export({ type: 'spki', format: 'der' }),
    asn.SubjectPublicKeyInfo,
  );
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function invalid(message: string, cause?: unknown): CoreError {
  return new CoreError(
    'InvalidGenerationRequest',
    message,
    cause === undefined ? undefined : { cause },
  );
}
