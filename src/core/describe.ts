import {
  type Certificate,
  certificatePublicKey,
  type DistinguishedName,
  isSelfIssued,
  type NameAttribute,
} from './certificate.js';
import { isCoreError } from './errors.js';
import {
  authorityKeyIdOf,
  basicConstraintsOf,
  extendedKeyUsageOf,
  keyUsageOf,
  subjectAltNamesOf,
  subjectKeyIdOf,
} from './extensions.js';
import { describeKey, type KeyDescription } from './keys.js';
import { signatureAlgorithmName, verifyCertificateSignature } from './signature.js';

/** A name as plain JSON. */
export interface NameDescription {
  rfc4514: string;
  attributes: NameAttribute[];
}

/** A certificate as plain JSON: everything an admin needs to recognise it, no key material. */
export interface CertificateDescription {
  version: number;
  subject: NameDescription;
  issuer: NameDescription;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  subjectAltNames: { dns: string[]; ip: string[]; email: string[]; uri: string[] };
  publicKey: KeyDescription | { type: 'unsupported'; algorithm: string };
  signatureAlgorithm: string;
  fingerprints: { sha256: string; sha1: string };
  keyUsage: string[] | null;
  extendedKeyUsage: string[] | null;
  basicConstraints: { ca: boolean; pathLength: number | null } | null;
  subjectKeyIdentifier: string | null;
  authorityKeyIdentifier: string | null;
  selfSigned: boolean;
}

function nameJson(name: DistinguishedName): NameDescription {
  return { rfc4514: name.rfc4514, attributes: name.attributes };
}

/** True when the certificate is self-issued and its signature verifies with its own key. */
export function isSelfSigned(cert: Certificate): boolean {
  if (!isSelfIssued(cert)) return false;
  try {
    return verifyCertificateSignature(cert, certificatePublicKey(cert));
  } catch (err) {
    if (isCoreError(err)) return false;
    throw err;
  }
}

/** Describes a certificate as plain JSON. */
export function describeCertificate(cert: Certificate): CertificateDescription {
  let publicKey: CertificateDescription['publicKey'];
  try {
    publicKey = describeKey(certificatePublicKey(cert));
  } catch (err) {
    if (!isCoreError(err)) throw err;
    publicKey = {
      type: 'unsupported',
      algorithm: cert.asn.tbsCertificate.subjectPublicKeyInfo.algorithm.algorithm,
    };
  }
  const sans = subjectAltNamesOf(cert);
  const bc = basicConstraintsOf(cert);
  return {
    version: cert.version,
    subject: nameJson(cert.subject),
    issuer: nameJson(cert.issuer),
    serialNumber: cert.serialHex,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    subjectAltNames: { dns: sans.dns, ip: sans.ip, email: sans.email, uri: sans.uri },
    publicKey,
    signatureAlgorithm: signatureAlgorithmName(cert.signatureAlgorithmOid),
    fingerprints: { sha256: cert.sha256, sha1: cert.sha1 },
    keyUsage: keyUsageOf(cert) ?? null,
    extendedKeyUsage: extendedKeyUsageOf(cert) ?? null,
    basicConstraints: bc ? { ca: bc.ca, pathLength: bc.pathLength ?? null } : null,
    subjectKeyIdentifier: subjectKeyIdOf(cert) ?? null,
    authorityKeyIdentifier: authorityKeyIdOf(cert) ?? null,
    selfSigned: isSelfSigned(cert),
  };
}
