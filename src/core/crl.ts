/**
 * Certificate revocation lists (RFC 5280 §5, §6.3), for revocation checks during
 * path validation.
 *
 * ```asn1
 * CertificateList  ::=  SEQUENCE  {
 *   tbsCertList          TBSCertList,
 *   signatureAlgorithm   AlgorithmIdentifier,
 *   signatureValue       BIT STRING  }
 * TBSCertList  ::=  SEQUENCE  {
 *   version                 Version OPTIONAL,  -- if present, MUST be v2
 *   signature               AlgorithmIdentifier,
 *   issuer                  Name,
 *   thisUpdate              Time,
 *   nextUpdate              Time OPTIONAL,
 *   revokedCertificates     SEQUENCE OF SEQUENCE  {
 *        userCertificate         CertificateSerialNumber,
 *        revocationDate          Time,
 *        crlEntryExtensions      Extensions OPTIONAL } OPTIONAL,
 *   crlExtensions           [0]  EXPLICIT Extensions OPTIONAL }
 * ```
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import type { Certificate } from './certificate.js';
import { readChildren, readTlv, TAG, tlvBytes } from './der.js';
import { type DistinguishedName, describeName } from './distinguished-name.js';
import { CoreError } from './errors.js';
import { keyUsageOf } from './extensions.js';
import { verifySignature } from './signature.js';

const CRL_NUMBER = '2.5.29.20';
const DELTA_CRL_INDICATOR = '2.5.29.27';
const ISSUING_DISTRIBUTION_POINT = '2.5.29.28';
const AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
const ENTRY_REASON = '2.5.29.21';
const ENTRY_INVALIDITY_DATE = '2.5.29.24';

/** A parsed CRL. Serial numbers are upper-case hex without leading zero bytes. */
export interface Crl {
  der: Buffer;
  tbsDer: Buffer;
  issuer: DistinguishedName;
  thisUpdate: Date;
  nextUpdate?: Date;
  revokedSerials: Set<string>;
  extensions: { oid: string; critical: boolean }[];
  /** Critical entry extensions we don't understand, by OID. */
  unknownCriticalEntryExtensions: string[];
  signatureAlgorithmOid: string;
  signatureAlgorithmDer: Buffer;
  innerSignatureAlgorithmDer: Buffer;
  signatureParams: ArrayBuffer | undefined;
  signature: Buffer;
}

/** Parses a DER CRL; a damaged one is a `MalformedInput`. */
export function parseCrl(der: Uint8Array): Crl {
  const bytes = Buffer.from(der);
  let parsed: asn.CertificateList;
  let tbs: Buffer;
  let sigAlg: Buffer;
  let innerSigAlg: Buffer;
  let issuerDer: Buffer;
  try {
    const outer = readTlv(bytes);
    if (outer.tag !== TAG.SEQUENCE || outer.end !== bytes.length) throw new Error('not a CRL');
    const [tbsTlv, sigTlv] = readChildren(bytes, outer);
    if (!tbsTlv || !sigTlv) throw new Error('incomplete');
    const fields = readChildren(bytes, tbsTlv);
    const off = fields[0]?.tag === TAG.INTEGER ? 1 : 0;
    if (!fields[off] || !fields[off + 1]) throw new Error('incomplete');
    tbs = tlvBytes(bytes, tbsTlv);
    sigAlg = tlvBytes(bytes, sigTlv);
    innerSigAlg = tlvBytes(bytes, fields[off]!);
    issuerDer = tlvBytes(bytes, fields[off + 1]!);
    parsed = AsnConvert.parse(bytes, asn.CertificateList);
  } catch (cause) {
    throw new CoreError('MalformedInput', 'The CRL is damaged and cannot be read.', { cause });
  }
  const t = parsed.tbsCertList;
  const unknownEntry = new Set<string>();
  const revokedSerials = new Set<string>();
  for (const entry of t.revokedCertificates ?? []) {
    revokedSerials.add(normaliseSerial(Buffer.from(entry.userCertificate)));
    for (const ext of entry.crlEntryExtensions ?? []) {
      if (ext.critical && ext.extnID !== ENTRY_REASON && ext.extnID !== ENTRY_INVALIDITY_DATE) {
        unknownEntry.add(ext.extnID);
      }
    }
  }
  const nextUpdate = t.nextUpdate?.getTime();
  return {
    der: bytes,
    tbsDer: tbs,
    issuer: describeName(issuerDer),
    thisUpdate: t.thisUpdate.getTime(),
    ...(nextUpdate ? { nextUpdate } : {}),
    revokedSerials,
    extensions: (t.crlExtensions ?? []).map((e) => ({ oid: e.extnID, critical: e.critical })),
    unknownCriticalEntryExtensions: [...unknownEntry],
    signatureAlgorithmOid: parsed.signatureAlgorithm.algorithm,
    signatureAlgorithmDer: sigAlg,
    innerSignatureAlgorithmDer: innerSigAlg,
    signatureParams: parsed.signatureAlgorithm.parameters ?? undefined,
    signature: Buffer.from(parsed.signature),
  };
}

/** A serial number's bytes as upper-case hex without redundant leading zero bytes. */
export function normaliseSerial(bytes: Uint8Array): string {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.subarray(i)).toString('hex').toUpperCase();
}

/** One finding of a revocation check: the code and a sentence. */
export interface RevocationFinding {
  code:
    | 'CertificateRevoked'
    | 'MalformedInput'
    | 'SignatureInvalid'
    | 'UsageNotAllowed'
    | 'ChainInvalid';
  message: string;
}

/**
 * Checks `cert`, issued by `issuer`, against the CRLs issued under the issuer's name.
 * A CRL covers the certificate when its issuer name is the certificate's issuer; such a
 * CRL must be usable (RFC 5280 §5 and §6.3.3): signed by the issuer's key, issuer
 * allowed to sign CRLs (cRLSign when keyUsage is present), current at `time`, carrying
 * a non-critical CRLNumber, no delta-CRL indicator and no critical extension we don't
 * process. A CRL that covers the certificate but can't be used is a finding too, since
 * the certificate's status is then unknown. CRLs of other issuers are ignored.
 */
export function checkRevocation(
  cert: Certificate,
  issuer: Certificate,
  crls: Crl[],
  time: Date,
  issuerKey: Parameters<typeof verifySignature>[4],
): RevocationFinding[] {
  const findings: RevocationFinding[] = [];
  const serial = normaliseSerial(Buffer.from(cert.asn.tbsCertificate.serialNumber));
  for (const crl of crls) {
    if (!crl.issuer.der.equals(cert.issuer.der)) continue;
    const unusable = crlProblem(crl, issuer, time, issuerKey);
    if (unusable) {
      findings.push(unusable);
      continue;
    }
    if (crl.revokedSerials.has(serial)) {
      findings.push({
        code: 'CertificateRevoked',
        message: `The certificate "${cert.subject.rfc4514}" (serial ${serial}) is listed as revoked by its issuer's CRL.`,
      });
    }
  }
  return findings;
}

function crlProblem(
  crl: Crl,
  issuer: Certificate,
  time: Date,
  issuerKey: Parameters<typeof verifySignature>[4],
): RevocationFinding | undefined {
  const who = `The CRL of "${crl.issuer.rfc4514}"`;
  if (!crl.signatureAlgorithmDer.equals(crl.innerSignatureAlgorithmDer)) {
    return { code: 'MalformedInput', message: `${who} names two different signature algorithms.` };
  }
  let verified = false;
  try {
    verified = verifySignature(
      crl.tbsDer,
      crl.signatureAlgorithmOid,
      crl.signatureParams,
      crl.signature,
      issuerKey,
    );
  } catch {
    verified = false;
  }
  if (!verified) {
    return { code: 'SignatureInvalid', message: `${who} is not signed by the issuer's key.` };
  }
  let usage: ReturnType<typeof keyUsageOf>;
  try {
    usage = keyUsageOf(issuer);
  } catch {
    return {
      code: 'MalformedInput',
      message: `${who} is signed by a certificate with a damaged key usage.`,
    };
  }
  if (usage && !usage.includes('cRLSign')) {
    return {
      code: 'UsageNotAllowed',
      message: `${who} is signed by a certificate whose key usage does not allow signing CRLs.`,
    };
  }
  const number = crl.extensions.filter((e) => e.oid === CRL_NUMBER);
  if (number.length !== 1) {
    return { code: 'MalformedInput', message: `${who} has no single CRLNumber extension.` };
  }
  if (number[0]!.critical) {
    return { code: 'MalformedInput', message: `${who} marks its CRLNumber critical.` };
  }
  for (const ext of crl.extensions) {
    if (ext.oid === DELTA_CRL_INDICATOR) {
      return { code: 'MalformedInput', message: `${who} is a delta CRL, which is not supported.` };
    }
    const known = [CRL_NUMBER, ISSUING_DISTRIBUTION_POINT, AUTHORITY_KEY_IDENTIFIER];
    if (ext.critical && !known.includes(ext.oid)) {
      return {
        code: 'MalformedInput',
        message: `${who} has a critical extension ${ext.oid} that is not supported.`,
      };
    }
  }
  if (crl.unknownCriticalEntryExtensions.length > 0) {
    return {
      code: 'MalformedInput',
      message: `${who} has critical entry extensions that are not supported.`,
    };
  }
  if (crl.thisUpdate.getTime() > time.getTime()) {
    return { code: 'ChainInvalid', message: `${who} is not valid yet at the validation time.` };
  }
  if (crl.nextUpdate && crl.nextUpdate.getTime() < time.getTime()) {
    return { code: 'ChainInvalid', message: `${who} is out of date at the validation time.` };
  }
  return undefined;
}
