import { constants, type KeyObject, verify } from 'node:crypto';
import { RsaSaPssParams } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CoreError } from './errors.js';

/** What a signature algorithm OID means: its display name and how Node verifies it. */
export interface SignatureAlgorithm {
  oid: string;
  name: string;
  /** Digest name for Node, null for EdDSA (the algorithm hashes itself). */
  hash: string | null;
  keyType: 'rsa' | 'rsa-pss' | 'ec' | 'ed25519' | 'ed448' | 'dsa';
}

const ALGORITHMS: SignatureAlgorithm[] = [
  { oid: '1.2.840.113549.1.1.4', name: 'md5WithRSAEncryption', hash: 'md5', keyType: 'rsa' },
  { oid: '1.2.840.113549.1.1.3', name: 'md4WithRSAEncryption', hash: 'md4', keyType: 'rsa' },
  { oid: '1.2.840.113549.1.1.5', name: 'sha1WithRSAEncryption', hash: 'sha1', keyType: 'rsa' },
  { oid: '1.2.840.113549.1.1.14', name: 'sha224WithRSAEncryption', hash: 'sha224', keyType: 'rsa' },
  { oid: '1.2.840.113549.1.1.11', name: 'sha256WithRSAEncryption', hash: 'sha256', keyType: 'rsa' },
  { oid: '1.2.840.113549.1.1.12', name: 'sha384WithRSAEncryption', hash: 'sha384', keyType: 'rsa' },
  { oid: '1.2.840.113549.1.1.13', name: 'sha512WithRSAEncryption', hash: 'sha512', keyType: 'rsa' },
  { oid: '1.2.840.113549.1.1.10', name: 'rsassaPss', hash: 'sha1', keyType: 'rsa-pss' },
  { oid: '1.2.840.10045.4.1', name: 'ecdsa-with-SHA1', hash: 'sha1', keyType: 'ec' },
  { oid: '1.2.840.10045.4.3.1', name: 'ecdsa-with-SHA224', hash: 'sha224', keyType: 'ec' },
  { oid: '1.2.840.10045.4.3.2', name: 'ecdsa-with-SHA256', hash: 'sha256', keyType: 'ec' },
  { oid: '1.2.840.10045.4.3.3', name: 'ecdsa-with-SHA384', hash: 'sha384', keyType: 'ec' },
  { oid: '1.2.840.10045.4.3.4', name: 'ecdsa-with-SHA512', hash: 'sha512', keyType: 'ec' },
  { oid: '1.3.101.112', name: 'Ed25519', hash: null, keyType: 'ed25519' },
  { oid: '1.3.101.113', name: 'Ed448', hash: null, keyType: 'ed448' },
  { oid: '1.2.840.10040.4.3', name: 'dsa-with-SHA1', hash: 'sha1', keyType: 'dsa' },
  { oid: '2.16.840.1.101.3.4.3.1', name: 'dsa-with-SHA224', hash: 'sha224', keyType: 'dsa' },
  { oid: '2.16.840.1.101.3.4.3.2', name: 'dsa-with-SHA256', hash: 'sha256', keyType: 'dsa' },
];

const HASH_OIDS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** A certificate's (or CRL's) signed bytes and signature, as parsed. */
export interface SignedCertificate {
  tbsDer: Buffer;
  signatureAlgorithmOid: string;
  asn: { signatureAlgorithm: { parameters?: ArrayBuffer | null } };
  signature: Buffer;
}

/** True when the certificate's signature verifies with its issuer's public key. */
export function verifyCertificateSignature(cert: SignedCertificate, issuerKey: KeyObject): boolean {
  return verifySignature(
    cert.tbsDer,
    cert.signatureAlgorithmOid,
    cert.asn.signatureAlgorithm.parameters ?? undefined,
    cert.signature,
    issuerKey,
  );
}

/** The digest a signature algorithm uses ('sha256'…), reading RSA-PSS parameters; undefined for EdDSA or unknown. */
export function signatureDigest(
  oid: string,
  params: ArrayBuffer | null | undefined,
): string | undefined {
  const alg = signatureAlgorithmFor(oid);
  if (!alg) return undefined;
  if (alg.keyType !== 'rsa-pss') return alg.hash ?? undefined;
  if (!params) return 'sha1';
  try {
    return HASH_OIDS[AsnConvert.parse(params, RsaSaPssParams).hashAlgorithm.algorithm];
  } catch {
    return undefined;
  }
}

/** The signature algorithm an OID names, or undefined when we don't know it. */
export function signatureAlgorithmFor(oid: string): SignatureAlgorithm | undefined {
  return ALGORITHMS.find((a) => a.oid === oid);
}

/** Display name of a signature algorithm OID (the OID itself when unknown). */
export function signatureAlgorithmName(oid: string): string {
  return signatureAlgorithmFor(oid)?.name ?? oid;
}

/**
 * True when `signature` over `data` verifies with `publicKey` under the algorithm
 * (OID and, for RSA-PSS, DER-encoded parameters). An unknown or unavailable
 * algorithm is an `UnsupportedAlgorithm` error, never a silent false.
 */
export function verifySignature(
  data: Uint8Array,
  algorithmOid: string,
  algorithmParams: ArrayBuffer | undefined,
  signature: Uint8Array,
  publicKey: KeyObject,
): boolean {
  const alg = signatureAlgorithmFor(algorithmOid);
  if (!alg) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The signature algorithm ${algorithmOid} is not supported.`,
    );
  }
  const keyType = publicKey.asymmetricKeyType;
  const compatible =
    keyType === alg.keyType ||
    (alg.keyType === 'rsa-pss' && keyType === 'rsa') ||
    (alg.keyType === 'rsa' && keyType === 'rsa');
  if (!compatible) return false;
  try {
    if (alg.keyType === 'rsa-pss') {
      const params = algorithmParams
        ? AsnConvert.parse(algorithmParams, RsaSaPssParams)
        : new RsaSaPssParams();
      const hash = HASH_OIDS[params.hashAlgorithm.algorithm];
      if (!hash) {
        throw new CoreError(
          'UnsupportedAlgorithm',
          'The RSA-PSS signature uses an unsupported hash.',
        );
      }
      return verify(
        hash,
        data,
        {
          key: publicKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: params.saltLength,
        },
        signature,
      );
    }
    if (alg.keyType === 'ec' || alg.keyType === 'dsa') {
      return verify(alg.hash, data, { key: publicKey, dsaEncoding: 'der' }, signature);
    }
    return verify(alg.hash, data, publicKey, signature);
  } catch (cause) {
    if (cause instanceof CoreError) throw cause;
    // Node or OpenSSL refuses a digest it doesn't offer, by code: MD4 without the legacy
    // provider (ERR_OSSL_EVP_UNSUPPORTED), MD2 (ERR_CRYPTO_INVALID_DIGEST), SHAKE or SM3
    // with RSA (ERR_OSSL_DIGEST_NOT_ALLOWED).
    const code = (cause as { code?: string }).code ?? '';
    if (code.includes('UNSUPPORTED') || code.includes('DIGEST')) {
      throw new CoreError(
        'UnsupportedAlgorithm',
        `The signature algorithm ${alg.name} is not available.`,
        { cause },
      );
    }
    // Malformed signatures (a bad DER ECDSA value, wrong length) simply don't verify.
    return false;
  }
}
