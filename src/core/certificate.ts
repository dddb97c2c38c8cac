import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import { asn1ParseError, readChildren, readTlv, TAG, tlvBytes } from './der.js';
import { type DistinguishedName, describeName } from './distinguished-name.js';
import { CoreError } from './errors.js';

// The name types stay importable from here, where a certificate's fields are declared.
export type { DistinguishedName, NameAttribute } from './distinguished-name.js';

/** An extension as found in the certificate, still encoded. */
export interface RawExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

/**
 * A parsed X.509 certificate.
 *
 * ```asn1
 * Certificate ::= SEQUENCE {
 *   tbsCertificate       TBSCertificate,
 *   signatureAlgorithm   AlgorithmIdentifier,
 *   signatureValue       BIT STRING }
 * ```
 *
 * `tbsDer` is the exact byte range that was signed, so a signature verifies even when
 * the encoding is not canonical DER.
 */
export interface Certificate {
  der: Buffer;
  tbsDer: Buffer;
  asn: asn.Certificate;
  subject: DistinguishedName;
  issuer: DistinguishedName;
  /** Serial number as upper-case hex, without leading zero bytes beyond the sign. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** DER of the SubjectPublicKeyInfo. */
  spkiDer: Buffer;
  signatureAlgorithmOid: string;
  /** DER of the signatureAlgorithm AlgorithmIdentifier (with its parameters). */
  signatureAlgorithmDer: Buffer;
  signature: Buffer;
  extensions: RawExtension[];
  /** SHA-256 of the DER, upper-case hex with colons. */
  sha256: string;
  sha1: string;
  version: number;
}

/** Colon-separated upper-case hex, the way browsers and OpenSSL print fingerprints. */
export function formatFingerprint(digest: Buffer): string {
  return digest.toString('hex').toUpperCase().match(/../g)!.join(':');
}

/**
 * The validity period of a DER or PEM certificate, read with Node's native parser: for
 * the hot paths (activation, every swap) that need only the dates, not a full decode.
 * A certificate Node can't read is `MalformedInput`.
 */
export function readValidity(certificate: Uint8Array | string): {
  notBefore: Date;
  notAfter: Date;
} {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certificate);
  } catch (cause) {
    throw new CoreError('MalformedInput', 'The certificate cannot be read.', { cause });
  }
  return { notBefore: new Date(x509.validFrom), notAfter: new Date(x509.validTo) };
}

/** SHA-256 fingerprint of DER bytes, colon-separated. */
export function sha256Fingerprint(der: Uint8Array): string {
  return formatFingerprint(createHash('sha256').update(der).digest());
}

/**
 * Parses one DER certificate. Anything that is not a well-formed certificate is a
 * `MalformedInput` (or `UnsupportedFormat` when it isn't a SEQUENCE at all).
 */
export function parseCertificate(der: Uint8Array): Certificate {
  const bytes = Buffer.from(der);
  const outer = readTlv(bytes);
  if (outer.tag !== TAG.SEQUENCE) {
    throw new CoreError('UnsupportedFormat', 'The data is not an X.509 certificate.');
  }
  let parsed: asn.Certificate;
  try {
    parsed = AsnConvert.parse(tlvBytes(bytes, outer), asn.Certificate);
  } catch (cause) {
    throw asn1ParseError(
      cause,
      'The certificate',
      'The certificate is damaged and cannot be read.',
    );
  }
  const [tbs, sigAlg] = readChildren(bytes, outer);
  if (!tbs || !sigAlg) throw new CoreError('MalformedInput', 'The certificate is incomplete.');
  const tbsChildren = readChildren(bytes, tbs);
  // TBSCertificate: [0] version?, serial, signature, issuer, validity, subject, spki, ...
  const hasVersion = tbsChildren[0]?.tag === TAG.CONTEXT_0;
  const at = (i: number) => {
    const child = tbsChildren[i + (hasVersion ? 1 : 0)];
    if (!child) throw new CoreError('MalformedInput', 'The certificate is incomplete.');
    return tlvBytes(bytes, child);
  };
  const tbsAsn = parsed.tbsCertificate;
  let subject: DistinguishedName;
  let issuer: DistinguishedName;
  try {
    issuer = describeName(at(2));
    subject = describeName(at(4));
  } catch (cause) {
    throw new CoreError('MalformedInput', 'The certificate has a damaged name.', { cause });
  }
  const certBytes = tlvBytes(bytes, outer);
  return {
    der: certBytes,
    tbsDer: tlvBytes(bytes, tbs),
    asn: parsed,
    subject,
    issuer,
    serialHex: Buffer.from(tbsAsn.serialNumber).toString('hex').toUpperCase(),
    notBefore: tbsAsn.validity.notBefore.getTime(),
    notAfter: tbsAsn.validity.notAfter.getTime(),
    spkiDer: at(5),
    signatureAlgorithmOid: parsed.signatureAlgorithm.algorithm,
    signatureAlgorithmDer: tlvBytes(bytes, sigAlg),
    signature: Buffer.from(parsed.signatureValue),
    extensions: (tbsAsn.extensions ?? []).map((e) => ({
      oid: e.extnID,
      critical: e.critical,
      value: Buffer.from(e.extnValue.buffer),
    })),
    sha256: formatFingerprint(createHash('sha256').update(certBytes).digest()),
    sha1: formatFingerprint(createHash('sha1').update(certBytes).digest()),
    version: tbsAsn.version + 1,
  };
}

/** The certificate's public key as a Node KeyObject, or a typed error when Node can't load it. */
export function certificatePublicKey(cert: Certificate): KeyObject {
  try {
    return createPublicKey({ key: cert.spkiDer, format: 'der', type: 'spki' });
  } catch (cause) {
    const oid = cert.asn.tbsCertificate.subjectPublicKeyInfo.algorithm.algorithm;
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The certificate's public key (algorithm ${oid}) cannot be loaded.`,
      { cause },
    );
  }
}

/** The decoded value of the extension with this OID, or undefined when absent. */
export function getExtension<T>(
  cert: Pick<Certificate, 'extensions'>,
  oid: string,
  type: new () => T,
): T | undefined {
  const ext = cert.extensions.find((e) => e.oid === oid);
  if (!ext) return undefined;
  try {
    return AsnConvert.parse(ext.value, type);
  } catch (cause) {
    throw asn1ParseError(
      cause,
      `The certificate's extension ${oid}`,
      `The certificate's extension ${oid} is damaged.`,
    );
  }
}

/** True when subject and issuer are the same name (self-issued, RFC 5280 §6.1). */
export function isSelfIssued(cert: Certificate): boolean {
  return cert.subject.der.equals(cert.issuer.der);
}
