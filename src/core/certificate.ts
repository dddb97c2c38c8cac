import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import { asn1ParseError, readChildren, readTlv, TAG, tlvBytes } from './der.js';
import { type DistinguishedName, describeDecodedName } from './distinguished-name.js';
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
 *
 * The schema decode is the only decode, and it happens here, so damage is found here.
 * What is derived from it (names, fingerprints, byte ranges, extensions…) is computed on
 * first use and kept: most callers read a few fields of many certificates. A caller that
 * has already decoded these very bytes with the schema (PKCS#7 decodes the certificates
 * of a bundle with it) passes that decode as `decoded`.
 */
export function parseCertificate(der: Uint8Array, decoded?: asn.Certificate): Certificate {
  const bytes = Buffer.from(der);
  const outer = readTlv(bytes);
  if (outer.tag !== TAG.SEQUENCE) {
    throw new CoreError('UnsupportedFormat', 'The data is not an X.509 certificate.');
  }
  const certBytes = tlvBytes(bytes, outer);
  let parsed: asn.Certificate;
  try {
    parsed = decoded ?? AsnConvert.parse(certBytes, asn.Certificate);
  } catch (cause) {
    throw asn1ParseError(
      cause,
      'The certificate',
      'The certificate is damaged and cannot be read.',
    );
  }
  // The exact bytes of the signed parts, located (not decoded) by their headers, so a
  // signature verifies even when the encoding is not canonical DER. The schema decode
  // succeeded, so these elements are there.
  const [tbs, sigAlg] = readChildren(certBytes, readTlv(certBytes));
  if (!tbs || !sigAlg) throw new CoreError('MalformedInput', 'The certificate is incomplete.');
  const tbsChildren = readChildren(certBytes, tbs);
  // TBSCertificate: [0] version?, serial, signature, issuer, validity, subject, spki, ...
  const skip = tbsChildren[0]?.tag === TAG.CONTEXT_0 ? 1 : 0;
  const at = (i: number) => {
    const child = tbsChildren[i + skip];
    if (!child) throw new CoreError('MalformedInput', 'The certificate is incomplete.');
    return tlvBytes(certBytes, child);
  };
  const issuerDer = at(2);
  const subjectDer = at(4);
  const spkiDer = at(5);
  const tbsAsn = parsed.tbsCertificate;
  const hash = (algorithm: string) =>
    formatFingerprint(createHash(algorithm).update(certBytes).digest());

  const subject = memo(() => describeDecodedName(tbsAsn.subject, subjectDer));
  const issuer = memo(() => describeDecodedName(tbsAsn.issuer, issuerDer));
  const serialHex = memo(() => Buffer.from(tbsAsn.serialNumber).toString('hex').toUpperCase());
  const notBefore = memo(() => tbsAsn.validity.notBefore.getTime());
  const notAfter = memo(() => tbsAsn.validity.notAfter.getTime());
  const signature = memo(() => Buffer.from(parsed.signatureValue));
  const extensions = memo(() =>
    (tbsAsn.extensions ?? []).map((e) => ({
      oid: e.extnID,
      critical: e.critical,
      value: Buffer.from(e.extnValue.buffer),
    })),
  );
  const sha256 = memo(() => hash('sha256'));
  const sha1 = memo(() => hash('sha1'));
  return {
    der: certBytes,
    tbsDer: tlvBytes(certBytes, tbs),
    asn: parsed,
    get subject() {
      return subject();
    },
    get issuer() {
      return issuer();
    },
    get serialHex() {
      return serialHex();
    },
    get notBefore() {
      return notBefore();
    },
    get notAfter() {
      return notAfter();
    },
    spkiDer,
    signatureAlgorithmOid: parsed.signatureAlgorithm.algorithm,
    signatureAlgorithmDer: tlvBytes(certBytes, sigAlg),
    get signature() {
      return signature();
    },
    get extensions() {
      return extensions();
    },
    get sha256() {
      return sha256();
    },
    get sha1() {
      return sha1();
    },
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

/** A function that computes `compute()` on its first call and returns that value ever after. */
function memo<T>(compute: () => T): () => T {
  let done = false;
  let value: T | undefined;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value as T;
  };
}

/** True when subject and issuer are the same name (self-issued, RFC 5280 §6.1). */
export function isSelfIssued(cert: Certificate): boolean {
  return cert.subject.der.equals(cert.issuer.der);
}
