import { type Certificate, parseCertificate } from './certificate.js';
import { decodeOid, readChildren, readTlv, TAG, type Tlv, tlvBytes, tlvContent } from './der.js';
import { CoreError } from './errors.js';

const SIGNED_DATA = '1.2.840.113549.1.7.2';

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

/** The contentType OID and the `[0]` content of a ContentInfo, or undefined when it isn't one. */
function contentInfo(buf: Buffer): { type: string; content: Tlv | undefined } | undefined {
  const outer = readTlv(buf);
  if (outer.tag !== TAG.SEQUENCE) return undefined;
  const [typeTlv, content] = readChildren(buf, outer);
  if (typeTlv?.tag !== TAG.OID) return undefined;
  return { type: decodeOid(tlvContent(buf, typeTlv)), content };
}

/** Sniff: DER (or BER) ContentInfo whose contentType is signedData (1.2.840.113549.1.7.2). */
export function isPkcs7(der: Uint8Array): boolean {
  try {
    return contentInfo(asBuffer(der))?.type === SIGNED_DATA;
  } catch {
    return false;
  }
}

/**
 * Sniff: a ContentInfo of any PKCS#7 content type (data, signed, enveloped…), so that
 * `readPkcs7Certificates` can say what a non-bundle holds instead of "unknown format".
 */
export function isPkcs7ContentInfo(der: Uint8Array): boolean {
  try {
    return contentInfo(asBuffer(der))?.type.startsWith('1.2.840.113549.1.7.') ?? false;
  } catch {
    return false;
  }
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
  const info = contentInfo(buf);
  if (!info) {
    throw new CoreError('UnsupportedFormat', 'The data is not PKCS#7 (CMS) content.');
  }
  if (info.type !== SIGNED_DATA) {
    const name = OTHER_CONTENT_TYPES[info.type];
    throw new CoreError(
      'UnsupportedFormat',
      name
        ? `The data is ${name}, not a certificate bundle.`
        : `The data is PKCS#7 content of an unknown type (OID ${info.type}), not a certificate bundle.`,
    );
  }
  if (info.content?.tag !== TAG.CONTEXT_0) {
    throw new CoreError('MalformedInput', 'The PKCS#7 signed data has no content.');
  }
  const [signedData] = readChildren(buf, info.content);
  if (signedData?.tag !== TAG.SEQUENCE) {
    throw new CoreError('MalformedInput', 'The PKCS#7 signed data is damaged.');
  }
  const fields = readChildren(buf, signedData);
  // version, digestAlgorithms, encapContentInfo, then the optional [0] certificates.
  if (
    fields[0]?.tag !== TAG.INTEGER ||
    fields[1]?.tag !== TAG.SET ||
    fields[2]?.tag !== TAG.SEQUENCE
  ) {
    throw new CoreError('MalformedInput', 'The PKCS#7 signed data is damaged.');
  }
  const certificates = fields[3]?.tag === TAG.CONTEXT_0 ? fields[3] : undefined;
  if (!certificates) return [];
  return readChildren(buf, certificates)
    .filter((choice) => choice.tag === TAG.SEQUENCE)
    .map((choice) => parseCertificate(tlvBytes(buf, choice)));
}
