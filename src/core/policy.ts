/**
 * The security policy for keys and signatures in a validated chain. The defaults
 * are those of the CA/Browser Forum Baseline Requirements (§6.1.5, §7.1.3): RSA of
 * at least 2048 bits, the NIST curves P-256/P-384/P-521, no MD5 or SHA-1 signatures.
 * A caller may relax or tighten each value per call.
 */
import type { KeyObject } from 'node:crypto';
import type { Certificate } from './certificate.js';
import { decodeOid, readChildren, readTlv, tlvContent } from './der.js';

export interface Policy {
  /** Smallest RSA modulus, in bits. */
  minRsaBits: number;
  /** Named curves an EC key may use: 'P-256', 'P-384', 'P-521'. */
  allowedCurves: string[];
  allowEd25519: boolean;
  allowEd448: boolean;
  /** Digests a signature below the trust anchor may not use; a root's self-signature is not checked. */
  forbiddenSignatureHashes: string[];
  /** Longest validity a leaf may have, in days. */
  maxValidityDays?: number;
  /**
   * Require the key identifiers RFC 5280 §4.2.1.1–2 mandates: an authority key identifier
   * (with its keyIdentifier) on every certificate not issued by itself, a subject key
   * identifier on every CA. Old private CAs often lack them; relax this to accept them.
   */
  requireKeyIdentifiers: boolean;
}

/**
 * The longest validity certkeeper issues a TLS server certificate for, in days (CA/B BR
 * 6.3.2; counted inclusively, so 398 days is 398 × 24 h less one second).
 */
export const SERVER_CERTIFICATE_MAX_DAYS = 398;

export const DEFAULT_POLICY: Policy = Object.freeze({
  minRsaBits: 2048,
  allowedCurves: Object.freeze(['P-256', 'P-384', 'P-521']) as string[],
  allowEd25519: true,
  allowEd448: false,
  forbiddenSignatureHashes: Object.freeze(['md5', 'sha1']) as string[],
  requireKeyIdentifiers: true,
}) as Policy;

/** The default policy with the given values replaced. */
export function resolvePolicy(overrides?: Partial<Policy>): Policy {
  const out: Policy = {
    ...DEFAULT_POLICY,
    allowedCurves: [...DEFAULT_POLICY.allowedCurves],
    forbiddenSignatureHashes: [...DEFAULT_POLICY.forbiddenSignatureHashes],
  };
  for (const [key, value] of Object.entries(overrides ?? {})) {
    if (value !== undefined) (out as unknown as Record<string, unknown>)[key] = value;
  }
  return out;
}

const CURVES: Record<string, string> = {
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.2.840.10045.3.1.1': 'P-192',
  '1.3.132.0.33': 'P-224',
  '1.3.132.0.10': 'secp256k1',
};

const SPKI_RSA = '1.2.840.113549.1.1.1';
const SPKI_RSA_PSS = '1.2.840.113549.1.1.10';
const SPKI_EC = '1.2.840.10045.2.1';
const SPKI_ED25519 = '1.3.101.112';
const SPKI_ED448 = '1.3.101.113';

/**
 * What the policy judges of a public key, read from the SubjectPublicKeyInfo itself: Node
 * refuses to load some keys (explicit curves) that the policy must still name.
 * Not `keys.ts`'s `KeyDescription`, which describes a loaded key for people.
 */
export interface PublicKeyProfile {
  /** 'RSA', 'RSA-PSS', 'EC', 'Ed25519', 'Ed448', 'DSA' or the algorithm OID. */
  type: string;
  /** Modulus bits for RSA. */
  bits?: number;
  /** Curve name for EC ('P-256'…), or the curve OID; 'explicit' for explicit parameters. */
  curve?: string;
}

/** Describes the certificate's public key; `key` supplies the RSA modulus length. */
export function describePublicKey(cert: Certificate, key?: KeyObject): PublicKeyProfile {
  const spki = cert.spkiDer;
  const outer = readTlv(spki);
  const [alg] = readChildren(spki, outer);
  if (!alg) return { type: 'unknown' };
  const [oidTlv, params] = readChildren(spki, alg);
  if (!oidTlv) return { type: 'unknown' };
  const oid = decodeOid(tlvContent(spki, oidTlv));
  const bits = key?.asymmetricKeyDetails?.modulusLength;
  switch (oid) {
    case SPKI_RSA:
      return bits === undefined ? { type: 'RSA' } : { type: 'RSA', bits };
    case SPKI_RSA_PSS:
      return bits === undefined ? { type: 'RSA-PSS' } : { type: 'RSA-PSS', bits };
    case SPKI_EC: {
      if (params?.tag !== 0x06) return { type: 'EC', curve: 'explicit' };
      const curveOid = decodeOid(tlvContent(spki, params));
      return { type: 'EC', curve: CURVES[curveOid] ?? curveOid };
    }
    case SPKI_ED25519:
      return { type: 'Ed25519' };
    case SPKI_ED448:
      return { type: 'Ed448' };
    case '1.2.840.10040.4.1':
      return { type: 'DSA' };
    default:
      return { type: oid };
  }
}

/**
 * Why the key is not acceptable under the policy, as one sentence, or undefined when
 * it is. RSA moduli must also be a multiple of 8 bits (CA/B BR 6.1.5).
 */
export function keyPolicyProblem(key: PublicKeyProfile, policy: Policy): string | undefined {
  switch (key.type) {
    case 'RSA':
    case 'RSA-PSS':
      if (key.bits === undefined) return 'The RSA key cannot be read.';
      if (key.bits < policy.minRsaBits) {
        return `The RSA key has ${key.bits} bits; at least ${policy.minRsaBits} are required.`;
      }
      if (key.bits % 8 !== 0) {
        return `The RSA key has ${key.bits} bits, which is not a multiple of 8.`;
      }
      return undefined;
    case 'EC':
      if (key.curve === 'explicit') {
        return 'The EC key spells out its curve parameters instead of naming the curve.';
      }
      if (!key.curve || !policy.allowedCurves.includes(key.curve)) {
        return `The EC key uses the curve ${key.curve}, which is not allowed (allowed: ${policy.allowedCurves.join(', ')}).`;
      }
      return undefined;
    case 'Ed25519':
      return policy.allowEd25519 ? undefined : 'Ed25519 keys are not allowed.';
    case 'Ed448':
      return policy.allowEd448 ? undefined : 'Ed448 keys are not allowed.';
    default:
      return `${key.type} keys are not allowed.`;
  }
}
