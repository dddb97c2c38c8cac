import { createPublicKey, type KeyObject } from 'node:crypto';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import type { RawExtension } from './certificate.js';
import { readChildren, readTlv, TAG, type Tlv, tlvBytes } from './der.js';
import { type DistinguishedName, describeName, type NameAttribute } from './distinguished-name.js';
import { CoreError, isCoreError } from './errors.js';
import { describeKey, type KeyDescription } from './keys.js';
import { signatureAlgorithmName, verifySignature } from './signature.js';

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
/** Microsoft's pre-PKCS#9 extension request attribute, still sent by old Windows tools. */
const MS_EXTENSION_REQUEST = '1.3.6.1.4.1.311.2.1.14';
const CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';
const SUBJECT_ALT_NAME = '2.5.29.17';

/**
 * A parsed PKCS#10 certificate request (RFC 2986). The exact signed bytes are kept in
 * `infoDer`, so a signature verifies even when the encoding is not canonical DER.
 *
 * ```asn1
 * CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo CertificationRequestInfo,
 *   signatureAlgorithm       AlgorithmIdentifier,
 *   signature                BIT STRING }
 * CertificationRequestInfo ::= SEQUENCE {
 *   version       INTEGER { v1(0) },
 *   subject       Name,
 *   subjectPKInfo SubjectPublicKeyInfo,
 *   attributes    [0] IMPLICIT SET OF Attribute }
 * ```
 */
export interface Csr {
  der: Buffer;
  infoDer: Buffer;
  subject: DistinguishedName;
  spkiDer: Buffer;
  signatureAlgorithmOid: string;
  signatureAlgorithmDer: Buffer;
  signature: Buffer;
  /** The extensions of the extensionRequest attribute (PKCS#9), in order. */
  extensions: RawExtension[];
  /** Every attribute with the DER of each of its values. */
  attributes: { oid: string; values: Buffer[] }[];
}

/** A certificate request as plain JSON: never the challenge password itself. */
export interface CsrDescription {
  subject: { rfc4514: string; attributes: NameAttribute[] };
  sans: { dns: string[]; ip: string[]; email: string[]; uri: string[] };
  key: KeyDescription;
  signatureAlgorithm: string;
  /** null when the algorithm is not available here (MD4, for example). */
  signatureValid: boolean | null;
  /** Whether a challengePassword attribute is present; its value is never shown. */
  challengePassword?: boolean;
}

/**
 * Parses one DER PKCS#10 request (PEM labels `CERTIFICATE REQUEST` and
 * `NEW CERTIFICATE REQUEST` are the caller's business). A version other than v1(0), a
 * damaged structure or a repeated extension is `MalformedInput`.
 */
export function parseCsr(der: Uint8Array): Csr {
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const outer = readTlv(bytes);
  if (outer.tag !== TAG.SEQUENCE) {
    throw new CoreError('UnsupportedFormat', 'The data is not a certificate request.');
  }
  const [info, sigAlg, sigValue] = readChildren(bytes, outer);
  if (
    info?.tag !== TAG.SEQUENCE ||
    sigAlg?.tag !== TAG.SEQUENCE ||
    sigValue?.tag !== TAG.BIT_STRING
  ) {
    throw malformed('it is not a signed request');
  }
  const [version, subject, spki, attributes] = readChildren(bytes, info);
  if (
    version?.tag !== TAG.INTEGER ||
    subject?.tag !== TAG.SEQUENCE ||
    spki?.tag !== TAG.SEQUENCE ||
    (attributes !== undefined && attributes.tag !== TAG.CONTEXT_0)
  ) {
    throw malformed('its request information is incomplete');
  }
  const versionValue = integerValue(bytes, version);
  if (versionValue !== 0) {
    throw new CoreError(
      'MalformedInput',
      `The certificate request's version field is ${versionValue ?? '(too large)'}, but only 0 (version 1) is defined.`,
    );
  }
  const csrBytes = tlvBytes(bytes, outer);
  let parsed: CertificationRequest;
  try {
    parsed = AsnConvert.parse(csrBytes, CertificationRequest);
  } catch (cause) {
    throw malformed('its structure cannot be decoded', cause);
  }
  let subjectName: DistinguishedName;
  try {
    subjectName = describeName(tlvBytes(bytes, subject));
  } catch (cause) {
    throw malformed('its subject name is damaged', cause);
  }
  // Array.from: the ASN.1 arrays' own map() would return their subclass, not plain arrays.
  const attrs = Array.from(parsed.certificationRequestInfo.attributes, (a) => ({
    oid: a.type,
    values: Array.from(a.values, (v) => Buffer.from(v)),
  }));
  return {
    der: csrBytes,
    infoDer: tlvBytes(bytes, info),
    subject: subjectName,
    spkiDer: tlvBytes(bytes, spki),
    signatureAlgorithmOid: parsed.signatureAlgorithm.algorithm,
    signatureAlgorithmDer: tlvBytes(bytes, sigAlg),
    signature: Buffer.from(parsed.signature),
    extensions: requestedExtensions(attrs),
    attributes: attrs,
  };
}

/** Describes a request: subject, requested SANs, key, and whether its signature verifies. */
export function describeCsr(csr: Csr): CsrDescription {
  const publicKey = csrPublicKey(csr);
  return {
    subject: { rfc4514: csr.subject.rfc4514, attributes: csr.subject.attributes },
    sans: requestedSans(csr),
    key: describeKey(publicKey),
    signatureAlgorithm: signatureAlgorithmName(csr.signatureAlgorithmOid),
    signatureValid: csrSignatureValid(csr, publicKey),
    challengePassword: csr.attributes.some((a) => a.oid === CHALLENGE_PASSWORD),
  };
}

/** The request's public key, or `UnsupportedAlgorithm` when Node can't load it. */
export function csrPublicKey(csr: Csr): KeyObject {
  try {
    return createPublicKey({ key: csr.spkiDer, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      "The certificate request's public key cannot be loaded: its algorithm is not supported.",
      { cause },
    );
  }
}

/**
 * True when the request is signed by its own key, false when not, null when the
 * signature algorithm is not available here (MD4 needs OpenSSL's legacy provider).
 */
export function csrSignatureValid(csr: Csr, publicKey = csrPublicKey(csr)): boolean | null {
  let params: ArrayBuffer | undefined;
  try {
    params =
      AsnConvert.parse(csr.signatureAlgorithmDer, asn.AlgorithmIdentifier).parameters ?? undefined;
  } catch (cause) {
    throw malformed('its signature algorithm is damaged', cause);
  }
  try {
    return verifySignature(
      csr.infoDer,
      csr.signatureAlgorithmOid,
      params,
      csr.signature,
      publicKey,
    );
  } catch (err) {
    if (isCoreError(err, 'UnsupportedAlgorithm')) return null;
    throw err;
  }
}

/** The DNS names, IP addresses, e-mail addresses and URIs of the requested SAN extension. */
function requestedSans(csr: Csr): CsrDescription['sans'] {
  const sans: CsrDescription['sans'] = { dns: [], ip: [], email: [], uri: [] };
  const ext = csr.extensions.find((e) => e.oid === SUBJECT_ALT_NAME);
  if (!ext) return sans;
  let names: asn.SubjectAlternativeName;
  try {
    names = AsnConvert.parse(ext.value, asn.SubjectAlternativeName);
  } catch (cause) {
    throw malformed('its subjectAltName extension is damaged', cause);
  }
  for (const name of names) {
    if (name.dNSName !== undefined) sans.dns.push(name.dNSName);
    else if (name.iPAddress !== undefined) sans.ip.push(name.iPAddress);
    else if (name.rfc822Name !== undefined) sans.email.push(name.rfc822Name);
    else if (name.uniformResourceIdentifier !== undefined) {
      sans.uri.push(name.uniformResourceIdentifier);
    }
  }
  return sans;
}

/** The extensions of the (single) extensionRequest attribute; a repeated OID is damage. */
function requestedExtensions(attributes: Csr['attributes']): RawExtension[] {
  const requests = attributes.filter(
    (a) => a.oid === EXTENSION_REQUEST || a.oid === MS_EXTENSION_REQUEST,
  );
  if (requests.length === 0) return [];
  const [request] = requests;
  if (requests.length > 1 || request!.values.length !== 1) {
    throw malformed('it has more than one extension request');
  }
  let extensions: asn.Extensions;
  try {
    extensions = AsnConvert.parse(request!.values[0]!, asn.Extensions);
  } catch (cause) {
    throw malformed('its extension request is damaged', cause);
  }
  const seen = new Set<string>();
  return Array.from(extensions, (e) => {
    if (seen.has(e.extnID)) {
      throw malformed(`it requests the extension ${e.extnID} twice`);
    }
    seen.add(e.extnID);
    return { oid: e.extnID, critical: e.critical, value: Buffer.from(e.extnValue.buffer) };
  });
}

function integerValue(der: Uint8Array, tlv: Tlv): number | undefined {
  const length = tlv.end - tlv.contentStart;
  if (length < 1 || length > 4) return undefined;
  let value = 0;
  for (let i = tlv.contentStart; i < tlv.end; i++) value = value * 256 + der[i]!;
  return value;
}

function malformed(why: string, cause?: unknown): CoreError {
  return new CoreError(
    'MalformedInput',
    `The certificate request is damaged: ${why}.`,
    cause === undefined ? undefined : { cause },
  );
}
