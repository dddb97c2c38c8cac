import { ContentInfo, id_signedData, SignedData } from '@peculiar/asn1-cms';
import { AsnConvert } from '@peculiar/asn1-schema';
import type * as asn from '@peculiar/asn1-x509';
import { type Certificate, parseCertificate } from './certificate.js';
import { readTlv, TAG, type Tlv, tlvBytes } from './der.js';
import { CoreError } from './errors.js';

/** PKCS#7 / CMS content types that are not certificate bundles, named for the error. */
const OTHER_CONTENT_TYPES: Record<string, string> = {
  '1.2.840.113549.1.7.1': 'PKCS#7 data',
  '1.2.840.113549.1.7.3': 'PKCS#7 enveloped data (an encrypted message)',
  '1.2.840.113549.1.7.4': 'PKCS#7 signed-and-enveloped data',
  '1.2.840.113549.1.7.5': 'PKCS#7 digested data',
  '1.2.840.113549.1.7.6': 'PKCS#7 encrypted data',
  '1.2.840.113549.1.9.16.1.2': 'CMS authenticated data',
  '1.2.840.113549.1.9.16.1.9': 'CMS compressed data',
  '1.2.840.113549.1.9.16.1.23': 'CMS authenticated-enveloped data (an encrypted message)',
};

const asBuffer = (der: Uint8Array) => Buffer.from(der.buffer, der.byteOffset, der.byteLength);

/** OBJECT IDENTIFIER 1.2.840.113549.1.7 (PKCS#7), tag and length included, without its last arc. */
const PKCS7_OID_PREFIX = Buffer.from('06092a864886f70d0107', 'hex');

/**
 * The offset of a ContentInfo's contentType OID, read from the header alone
 * (`30 len 06 …`), or -1: a truncated or damaged ContentInfo is still recognised, and
 * then reported as damaged instead of as an unknown format.
 */
function contentTypeOffset(der: Uint8Array): number {
  if (der[0] !== TAG.SEQUENCE || der[1] === undefined) return -1;
  const first = der[1];
  // Short form, BER indefinite (0x80), or a long form of up to 4 length bytes.
  const at = first <= 0x80 ? 2 : first <= 0x84 ? 2 + (first & 0x7f) : -1;
  return at > 0 && der[at] === TAG.OID ? at : -1;
}

/** The ContentInfo, or undefined when the data does not decode as one. */
function contentInfo(buf: Buffer): ContentInfo | undefined {
  try {
    return AsnConvert.parse(buf, ContentInfo);
  } catch {
    return undefined;
  }
}

/** Sniff: DER (or BER) ContentInfo whose contentType is signedData (1.2.840.113549.1.7.2). */
export function isPkcs7(der: Uint8Array): boolean {
  return contentTypeOffset(der) > 0 && contentInfo(asBuffer(der))?.contentType === id_signedData;
}

/**
 * Sniff: the header of a ContentInfo of any PKCS#7 content type (data, signed,
 * enveloped…), so that `readPkcs7Certificates` can say what a non-bundle holds, or that
 * it is damaged, instead of "unknown format".
 */
export function isPkcs7ContentInfo(der: Uint8Array): boolean {
  const at = contentTypeOffset(der);
  if (at < 0) return false;
  const oid = der.subarray(at, at + PKCS7_OID_PREFIX.length);
  return PKCS7_OID_PREFIX.equals(oid) && der.length > at + PKCS7_OID_PREFIX.length;
}

/**
 * The certificates of a certs-only (degenerate) SignedData, in file order. PEM labels PKCS7 / CMS / CERTIFICATE … are handled by the caller, which passes the DER.
 *
 * ```asn1
 * ContentInfo ::= SEQUENCE {
 *   contentType OBJECT IDENTIFIER,                 -- signedData 1.2.840.113549.1.7.2
 *   content     [0] EXPLICIT ANY DEFINED BY contentType }
 *
 * SignedData ::= SEQUENCE {
 *   version           INTEGER,
 *   digestAlgorithms  SET OF AlgorithmIdentifier,
 *   encapContentInfo  SEQUENCE { eContentType OBJECT IDENTIFIER, eContent [0] EXPLICIT OCTET STRING OPTIONAL },
 *   certificates      [0] IMPLICIT SET OF CertificateChoices OPTIONAL,
 *   crls              [1] IMPLICIT RevocationInfoChoices OPTIONAL,
 *   signerInfos       SET OF SignerInfo }          -- empty in a certs-only bundle
 *
 * CertificateChoices ::= CHOICE {
 *   certificate Certificate,                       -- the only choice we read
 *   extendedCertificate [0], v1AttrCert [1], v2AttrCert [2], other [3] }
 * ```
 *
 * BER (indefinite lengths, as in many `.p7b` files) is accepted. Certificates of a
 * signed message are returned too; its signature is not checked. Other content types,
 * such as enveloped data, are `UnsupportedFormat`; damage is `MalformedInput`.
 */
export function readPkcs7Certificates(der: Uint8Array): Certificate[] {
  try {
    return readCertificates(asBuffer(der));
  } catch (cause) {
    if (cause instanceof CoreError) throw cause;
    throw new CoreError('MalformedInput', 'The PKCS#7 data is damaged and cannot be read.', {
      cause,
    });
  }
}

function readCertificates(buf: Buffer): Certificate[] {
  if (contentTypeOffset(buf) < 0) {
    throw new CoreError('UnsupportedFormat', 'The data is not PKCS#7 (CMS) content.');
  }
  const info = contentInfo(buf);
  if (!info) {
    throw new CoreError('MalformedInput', 'The PKCS#7 data is damaged and cannot be read.');
  }
  if (info.contentType !== id_signedData) {
    const name = OTHER_CONTENT_TYPES[info.contentType];
    throw new CoreError(
      'UnsupportedFormat',
      name
        ? `The data is ${name}, not a certificate bundle.`
        : `The data is PKCS#7 content of an unknown type (OID ${info.contentType}), not a certificate bundle.`,
    );
  }
  if (info.content.byteLength === 0) {
    throw new CoreError('MalformedInput', 'The PKCS#7 signed data has no content.');
  }
  let signedData: SignedData;
  try {
    signedData = AsnConvert.parse(info.content, SignedData);
  } catch (cause) {
    throw new CoreError('MalformedInput', 'The PKCS#7 signed data is damaged.', { cause });
  }
  const certificates: Certificate[] = [];
  let from = 0;
  for (const choice of signedData.certificates ?? []) {
    if (!choice.certificate) continue; // attribute certificates and other formats
    const tlv = locate(buf, choice.certificate, from);
    certificates.push(parseCertificate(tlvBytes(buf, tlv), choice.certificate));
    from = tlv.end;
  }
  return certificates;
}

/**
 * Where a decoded certificate sits in `buf`, at or after `from`: found by its exact
 * to-be-signed bytes, which the decoder keeps, and the SEQUENCE header (2 to 6 bytes)
 * just before them. Re-encoding the decoded certificate instead could change bytes
 * that are not DER, and with them the fingerprint and the signed data.
 */
function locate(buf: Buffer, certificate: asn.Certificate, from: number): Tlv {
  const tbs = certificate.tbsCertificateRaw;
  const at = tbs ? buf.indexOf(Buffer.from(tbs), from) : -1;
  for (let header = 2; at >= 0 && header <= 6 && at - header >= from; header++) {
    try {
      const tlv = readTlv(buf, at - header);
      if (tlv.tag === TAG.SEQUENCE && tlv.contentStart === at) return tlv;
    } catch {
      // Not the header: try one byte further back.
    }
  }
  throw new CoreError('MalformedInput', 'A certificate in the PKCS#7 data is damaged.');
}
