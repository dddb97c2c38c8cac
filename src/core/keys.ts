import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  type PrivateKeyInput,
  sign,
  verify,
} from 'node:crypto';
import { type Certificate, certificatePublicKey, sha256Fingerprint } from './certificate.js';
import { readChildren, readTlv, TAG, type Tlv } from './der.js';
import { CoreError, isCoreError } from './errors.js';
import { type PbeScheme, parsePbeAlgorithm, pbePassword, WorkBudget } from './pbe.js';
import { type PemBlock, toPem } from './pem.js';
import {
  BerEncryptedPrivateKeyInfo,
  decode,
  EcParameters,
  EcPrivateKey,
  OneAsymmetricKey,
} from './pkcs-schemas.js';

/**
 * How a private key was stored:
 * - `pkcs1`: RFC 8017 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`);
 * - `sec1`: RFC 5915 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`);
 * - `pkcs8`: RFC 5208/5958 `PrivateKeyInfo`/`OneAsymmetricKey` (`BEGIN PRIVATE KEY`);
 * - `encrypted-pkcs8`: RFC 5208 `EncryptedPrivateKeyInfo` (`BEGIN ENCRYPTED PRIVATE KEY`);
 * - `traditional-encrypted`: a PKCS#1/SEC1/DSA PEM block with RFC 1421 `Proc-Type: 4,ENCRYPTED`;
 * - `dsa-traditional`: OpenSSL's `DSAPrivateKey` (`BEGIN DSA PRIVATE KEY`), unencrypted.
 */
export type KeyFormat =
  | 'pkcs1'
  | 'sec1'
  | 'pkcs8'
  | 'encrypted-pkcs8'
  | 'traditional-encrypted'
  | 'dsa-traditional';

/** How to read one key: `budget` bounds the key derivation of an encrypted PKCS#8 key. */
export interface KeyReadOptions {
  /** Shared by every key and PKCS#12 file of one input; a fresh one when absent. */
  budget?: WorkBudget;
}

export interface ParsedPrivateKey {
  key: KeyObject;
  format: KeyFormat;
  encrypted: boolean;
}

export interface KeyDescription {
  type: 'rsa' | 'rsa-pss' | 'ec' | 'ed25519' | 'ed448' | 'dsa';
  /** Modulus length for RSA and DSA, field size for the known EC curves. */
  bits?: number;
  curve?: 'P-256' | 'P-384' | 'P-521' | string;
  /** Colon hex of SHA-256 over the SubjectPublicKeyInfo DER. */
  publicKeySha256: string;
}

type KeyType = KeyDescription['type'];
const KEY_TYPES: ReadonlySet<string> = new Set<KeyType>([
  'rsa',
  'rsa-pss',
  'ec',
  'ed25519',
  'ed448',
  'dsa',
]);

/** Key algorithm OIDs (PKCS#8 privateKeyAlgorithm) and what we call them. */
const KEY_ALGORITHM_OIDS: Record<string, string> = {
  '1.2.840.113549.1.1.1': 'RSA',
  '1.2.840.113549.1.1.10': 'RSA-PSS',
  '1.2.840.10045.2.1': 'EC',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
  '1.2.840.10040.4.1': 'DSA',
  '1.3.101.110': 'X25519',
  '1.3.101.111': 'X448',
};
const EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/** OpenSSL curve names → the names we show; unknown names are shown as OpenSSL spells them. */
const CURVES: Record<string, { name: string; bits: number }> = {
  prime256v1: { name: 'P-256', bits: 256 },
  secp384r1: { name: 'P-384', bits: 384 },
  secp521r1: { name: 'P-521', bits: 521 },
  secp256k1: { name: 'secp256k1', bits: 256 },
  brainpoolP256r1: { name: 'brainpoolP256r1', bits: 256 },
  brainpoolP384r1: { name: 'brainpoolP384r1', bits: 384 },
  brainpoolP512r1: { name: 'brainpoolP512r1', bits: 512 },
};
const KNOWN_CURVE_OIDS: ReadonlySet<string> = new Set([
  '1.2.840.10045.3.1.7',
  '1.3.132.0.34',
  '1.3.132.0.35',
  '1.3.132.0.10',
  '1.3.36.3.3.2.8.1.1.7',
  '1.3.36.3.3.2.8.1.1.11',
  '1.3.36.3.3.2.8.1.1.13',
]);

/** RFC 1421 DEK-Info ciphers that only OpenSSL's legacy provider offers. */
const LEGACY_DEK = /^(DES-(CBC|ECB|CFB|OFB)|DESX|RC2|RC4|RC5|BF|CAST|IDEA|SEED)/;

const PRIVATE_LABELS: ReadonlySet<string> = new Set([
  'PRIVATE KEY',
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
  'DSA PRIVATE KEY',
  'ENCRYPTED PRIVATE KEY',
]);
const TRADITIONAL_LABELS: ReadonlySet<string> = new Set([
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
  'DSA PRIVATE KEY',
]);

/**
 * A private key from one PEM block: labels `PRIVATE KEY`, `RSA PRIVATE KEY`,
 * `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY` and `DSA PRIVATE KEY`, the traditional ones
 * optionally encrypted with RFC 1421 headers:
 *
 * ```
 * Proc-Type: 4,ENCRYPTED
 * DEK-Info: AES-128-CBC,<hex IV>
 * ```
 */
export async function parsePrivateKeyPem(
  block: PemBlock,
  password?: string,
  options: KeyReadOptions = {},
): Promise<ParsedPrivateKey> {
  const label = block.label;
  if (!PRIVATE_LABELS.has(label)) throw notPrivateKeyLabel(label);
  const procType = block.headers['Proc-Type'];
  if (procType === undefined) return parsePrivateKeyDer(block.der, password, options);
  if (!TRADITIONAL_LABELS.has(label) || !/^4\s*,\s*ENCRYPTED$/i.test(procType)) {
    throw new CoreError(
      'MalformedInput',
      `The "${label}" PEM block has a Proc-Type header ("${procType}") that is not "4,ENCRYPTED".`,
    );
  }
  const dekInfo = block.headers['DEK-Info'];
  const cipher = dekInfo?.split(',')[0]?.trim().toUpperCase();
  if (!cipher) {
    throw new CoreError(
      'MalformedInput',
      `The encrypted "${label}" PEM block has no DEK-Info header naming its cipher.`,
    );
  }
  if (LEGACY_DEK.test(cipher)) throw legacyCipher(cipher);
  if (password === undefined) throw passwordRequired();
  const key = load({ key: block.text, format: 'pem', passphrase: password }, true);
  return { key: checkLoadedKey(key), format: 'traditional-encrypted', encrypted: true };
}

/**
 * A private key from DER, its structure sniffed. An EncryptedPrivateKeyInfo is opened
 * under any scheme `pbe.ts` knows (PBES2, PBES1, PKCS#12 PBE), its key derivation charged
 * to `options.budget`:
 *
 * ```asn1
 * RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv, otherPrimeInfos OPTIONAL }
 * ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET STRING,
 *                             parameters [0] ECParameters OPTIONAL, publicKey [1] BIT STRING OPTIONAL }
 * OneAsymmetricKey ::= SEQUENCE { version, privateKeyAlgorithm AlgorithmIdentifier,
 *                                 privateKey OCTET STRING, attributes [0] OPTIONAL, publicKey [1] OPTIONAL }
 * EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier,
 *                                        encryptedData OCTET STRING }
 * DSAPrivateKey ::= SEQUENCE { version INTEGER (0), p, q, g, y, x }   -- OpenSSL
 * ```
 */
export async function parsePrivateKeyDer(
  der: Uint8Array,
  password?: string,
  options: KeyReadOptions = {},
): Promise<ParsedPrivateKey> {
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const format = sniffPrivateKeyDer(bytes);
  if (format === undefined) throw notAPrivateKey(bytes);
  switch (format) {
    case 'encrypted-pkcs8': {
      const plain = await decryptPrivateKeyInfo(
        bytes,
        password,
        options.budget ?? new WorkBudget(),
      );
      return { key: loadPkcs8(plain), format, encrypted: true };
    }
    case 'pkcs8':
      return { key: loadPkcs8(bytes), format, encrypted: false };
    case 'sec1': {
      const curve = sec1Curve(bytes);
      if (curve.explicit) throw explicitCurve();
      const key = load({ key: bytes, format: 'der', type: 'sec1' }, false, {
        oid: EC_PUBLIC_KEY,
        curveOid: curve.oid,
        explicitCurve: false,
      });
      return { key: checkLoadedKey(key), format, encrypted: false };
    }
    case 'pkcs1': {
      const key = load({ key: bytes, format: 'der', type: 'pkcs1' }, false);
      return { key: checkLoadedKey(key), format, encrypted: false };
    }
    case 'dsa-traditional': {
      // Node has no DER type for OpenSSL's DSAPrivateKey; its PEM form is understood.
      const key = load({ key: toPem('DSA PRIVATE KEY', bytes), format: 'pem' }, false);
      return { key: checkLoadedKey(key), format, encrypted: false };
    }
    case 'traditional-encrypted':
      // Only PEM carries the RFC 1421 headers; the sniff never returns this for DER.
      throw notAPrivateKey(bytes);
  }
}

const PKCS8_DAMAGED = 'The encrypted PKCS#8 private key is damaged.';

/**
 * The PrivateKeyInfo inside an EncryptedPrivateKeyInfo, decrypted by the code that opens
 * PKCS#12 shrouded key bags (`pbe.ts`): PBES2 with PBKDF2 or scrypt, PBES1, PKCS#12 PBE.
 * The scheme is read first, so an unknown algorithm or a count over the cap is refused
 * before a password is asked for or any key derived; the derivation is charged to `budget`.
 */
async function decryptPrivateKeyInfo(
  der: Buffer,
  password: string | undefined,
  budget: WorkBudget,
): Promise<Buffer> {
  const what = 'encrypted private key';
  let scheme: PbeScheme;
  let ciphertext: Buffer;
  try {
    const info = decode(der, BerEncryptedPrivateKeyInfo, what, PKCS8_DAMAGED);
    scheme = parsePbeAlgorithm(info.encryptionAlgorithm, what);
    ciphertext = Buffer.from(info.encryptedData.buffer);
  } catch (cause) {
    if (isCoreError(cause)) throw cause;
    throw new CoreError('MalformedInput', PKCS8_DAMAGED, { cause });
  }
  if (password === undefined) throw passwordRequired();
  const plain = await scheme.decrypt(pbePassword(password), ciphertext, budget);
  // Bad padding, or (a stream cipher has none) bytes that are not a PrivateKeyInfo.
  if (!plain || sniffPrivateKeyDer(plain) !== 'pkcs8') throw wrongPassword();
  return plain;
}

/** An unencrypted PKCS#8 PrivateKeyInfo as a checked Node key. */
function loadPkcs8(der: Buffer): KeyObject {
  const algorithm = pkcs8Algorithm(der);
  checkKeyAlgorithm(algorithm);
  return checkLoadedKey(load({ key: der, format: 'der', type: 'pkcs8' }, false, algorithm));
}

/**
 * Cheap sniff of the DER private-key structures above, with the one it is. Never throws.
 * It reads the outer SEQUENCE's children only (der.ts), so damage deeper inside (a bad
 * salt, a truncated key) still reaches the parser, which says the key is damaged or the
 * password wrong, instead of "not a private key".
 */
export function sniffPrivateKeyDer(der: Uint8Array): KeyFormat | undefined {
  let kids: Tlv[];
  try {
    const outer = readTlv(der);
    if (outer.tag !== TAG.SEQUENCE || outer.end !== der.length) return undefined;
    kids = readChildren(der, outer);
  } catch {
    return undefined;
  }
  const [k0, k1, k2] = kids;
  if (!k0 || !k1) return undefined;
  if (kids.length === 2 && k0.tag === TAG.SEQUENCE && k1.tag === TAG.OCTET_STRING) {
    return 'encrypted-pkcs8';
  }
  if (k0.tag !== TAG.INTEGER) return undefined;
  const version = k0.end - k0.contentStart === 1 ? der[k0.contentStart] : undefined;
  if (k1.tag === TAG.SEQUENCE && k2?.tag === TAG.OCTET_STRING && (version === 0 || version === 1)) {
    return 'pkcs8';
  }
  if (k1.tag === TAG.OCTET_STRING && version === 1) return 'sec1';
  const integers = kids.findIndex((k) => k.tag !== TAG.INTEGER);
  const leadingIntegers = integers < 0 ? kids.length : integers;
  if (leadingIntegers >= 9 && (version === 0 || version === 1)) return 'pkcs1';
  if (kids.length === 6 && leadingIntegers === 6 && version === 0) return 'dsa-traditional';
  return undefined;
}

/** Describes a public or private key — never any key material. */
export function describeKey(key: KeyObject): KeyDescription {
  if (key.type === 'secret') {
    throw new CoreError('UnsupportedAlgorithm', 'A secret key is not a public or private key.');
  }
  const type = key.asymmetricKeyType;
  if (!type || !KEY_TYPES.has(type)) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The key type ${type ?? 'unknown'} is not supported; use RSA, EC, Ed25519, Ed448 or DSA.`,
    );
  }
  const description: KeyDescription = {
    type: type as KeyType,
    publicKeySha256: sha256Fingerprint(spkiOf(key)),
  };
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss' || type === 'dsa') {
    if (details.modulusLength !== undefined) description.bits = details.modulusLength;
  } else if (type === 'ec' && details.namedCurve) {
    const known = CURVES[details.namedCurve];
    description.curve = known?.name ?? details.namedCurve;
    if (known) description.bits = known.bits;
  }
  return description;
}

/**
 * True when the private key is the one whose public half the certificate carries.
 * Compares the SubjectPublicKeyInfo that Node exports for both, and for EC keys the
 * curve and point, so point compression and parameter encodings don't matter.
 */
export function matchKeyToCertificate(key: KeyObject, cert: Certificate): boolean {
  const certKey = certificatePublicKey(cert);
  if (key.type === 'secret') return false;
  if (key.asymmetricKeyType !== certKey.asymmetricKeyType) return false;
  if (spkiOf(key).equals(spkiOf(certKey))) return true;
  if (key.asymmetricKeyType !== 'ec') return false;
  try {
    const a = publicOf(key).export({ format: 'jwk' });
    const b = certKey.export({ format: 'jwk' });
    return a.crv === b.crv && a.x === b.x && a.y === b.y;
  } catch {
    return false;
  }
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

function spkiOf(key: KeyObject): Buffer {
  try {
    return publicOf(key).export({ type: 'spki', format: 'der' });
  } catch (cause) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The ${key.asymmetricKeyType ?? 'unknown'} public key cannot be exported.`,
      { cause },
    );
  }
}

interface KeyAlgorithm {
  oid: string;
  curveOid?: string | undefined;
  explicitCurve: boolean;
}

/** The privateKeyAlgorithm of an unencrypted PKCS#8 structure (curve too, for EC). */
function pkcs8Algorithm(der: Buffer): KeyAlgorithm {
  const damaged = 'The PKCS#8 private key is damaged.';
  const key = decode(der, OneAsymmetricKey, 'PKCS#8 private key', damaged);
  const { algorithm: oid, parameters } = key.privateKeyAlgorithm;
  if (oid !== EC_PUBLIC_KEY) return { oid, explicitCurve: false };
  if (parameters) {
    const curve = ecCurve(decode(parameters, EcParameters, 'PKCS#8 private key', damaged));
    if (curve.oid !== undefined || curve.explicit) {
      return { oid, curveOid: curve.oid, explicitCurve: curve.explicit };
    }
  }
  // No named curve in the AlgorithmIdentifier: the inner ECPrivateKey may carry one.
  const curve = sec1Curve(Buffer.from(key.privateKey.buffer), damaged);
  return { oid, curveOid: curve.oid, explicitCurve: curve.explicit };
}

function checkKeyAlgorithm(algorithm: KeyAlgorithm): void {
  const name = KEY_ALGORITHM_OIDS[algorithm.oid];
  if (name === undefined) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The private key uses the unknown algorithm ${algorithm.oid}.`,
    );
  }
  if (name === 'X25519' || name === 'X448') {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The private key is an ${name} key, which can only agree keys and cannot sign for TLS.`,
    );
  }
  if (algorithm.explicitCurve) throw explicitCurve();
}

/** The curve of an RFC 5915 ECPrivateKey: its [0] parameters, a named OID or explicit. */
function sec1Curve(
  der: Uint8Array,
  damaged = 'The EC private key is damaged.',
): { oid: string | undefined; explicit: boolean } {
  const { parameters } = decode(der, EcPrivateKey, 'EC private key', damaged);
  return parameters ? ecCurve(parameters) : { oid: undefined, explicit: false };
}

/** A named curve's OID, or whether the parameters spell the curve out. */
function ecCurve(parameters: EcParameters): { oid: string | undefined; explicit: boolean } {
  if (parameters.namedCurve !== undefined) return { oid: parameters.namedCurve, explicit: false };
  return { oid: undefined, explicit: parameters.specifiedCurve !== undefined };
}

/** Loads with Node, translating OpenSSL's failures into our codes. */
function load(input: PrivateKeyInput, encrypted: boolean, algorithm?: KeyAlgorithm): KeyObject {
  try {
    return createPrivateKey(input);
  } catch (cause) {
    const code = (cause as { code?: string }).code ?? '';
    if (encrypted) {
      if (code === 'ERR_OSSL_EVP_UNSUPPORTED' || code === 'ERR_OSSL_PEM_UNSUPPORTED_ENCRYPTION') {
        throw new CoreError(
          'UnsupportedAlgorithm',
          'The private key is encrypted with a cipher that Node’s OpenSSL does not offer (a legacy cipher such as DES or RC2); re-encrypt it with AES-256.',
          { cause },
        );
      }
      // Only encrypted traditional PEM gets here, and only with a password (the caller asks
      // for one first); OpenSSL's cancelled prompt would mean none reached it.
      if (code === 'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED') throw passwordRequired(cause);
      // "bad decrypt", or a decryption that "worked" but produced garbage.
      throw wrongPassword(cause);
    }
    if (algorithm?.oid === EC_PUBLIC_KEY && code === 'ERR_OSSL_UNSUPPORTED') {
      const curve = algorithm.curveOid;
      if (curve === undefined || !KNOWN_CURVE_OIDS.has(curve)) {
        throw new CoreError(
          'UnsupportedAlgorithm',
          `The EC private key uses the unsupported curve ${curve ?? '(not named)'}; use P-256 or P-384.`,
          { cause },
        );
      }
    }
    throw new CoreError('MalformedInput', 'The private key is damaged and cannot be read.', {
      cause,
    });
  }
}

/** Checks that hold whatever the container: a supported type, a named curve, a sound RSA key. */
export function checkLoadedKey(key: KeyObject): KeyObject {
  const type = key.asymmetricKeyType ?? 'unknown';
  if (!KEY_TYPES.has(type)) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The private key is an ${type} key, which certkeeper cannot use; use RSA, EC or Ed25519.`,
    );
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (!curve || curve === 'UNDEF') throw explicitCurve();
    // OpenSSL keeps explicit parameters even when they match a named curve; so do we refuse.
    const exported = key.export({ type: 'pkcs8', format: 'der' });
    if (pkcs8Algorithm(exported).explicitCurve) throw explicitCurve();
  }
  if (type === 'rsa' || type === 'rsa-pss') rsaSelfTest(key);
  return key;
}

/**
 * OpenSSL loads RSA keys without checking them (`rsa-bad-1025-q-is-2.pem` has q = 2);
 * one signature and its verification prove the parameters are consistent.
 */
function rsaSelfTest(key: KeyObject): void {
  const hash = key.asymmetricKeyDetails?.hashAlgorithm ?? 'sha256';
  const data = Buffer.from('certkeeper key self-test');
  let ok = false;
  try {
    const signature = sign(hash, data, key);
    ok = verify(hash, data, createPublicKey(key), signature);
  } catch (cause) {
    throw invalidRsa(cause);
  }
  if (!ok) throw invalidRsa();
}

function invalidRsa(cause?: unknown): CoreError {
  return new CoreError(
    'MalformedInput',
    'The RSA private key is invalid: its numbers are inconsistent and it cannot sign.',
    cause === undefined ? undefined : { cause },
  );
}

function explicitCurve(): CoreError {
  return new CoreError(
    'UnsupportedAlgorithm',
    'The EC private key spells out its curve parameters instead of naming a standard curve, which is not supported.',
  );
}

function legacyCipher(name: string): CoreError {
  return new CoreError(
    'UnsupportedAlgorithm',
    `The private key is encrypted with ${name}, a legacy cipher that Node’s OpenSSL refuses; re-encrypt it with AES-256.`,
  );
}

function wrongPassword(cause?: unknown): CoreError {
  return new CoreError(
    'WrongPassword',
    'The password does not open the private key.',
    cause === undefined ? undefined : { cause },
  );
}

function passwordRequired(cause?: unknown): CoreError {
  return new CoreError(
    'PasswordRequired',
    'The private key is encrypted; give its password.',
    cause === undefined ? undefined : { cause },
  );
}

function notPrivateKeyLabel(label: string): CoreError {
  if (/PUBLIC KEY$/.test(label)) return publicKeyError();
  if (/PARAMETERS$/.test(label)) return parametersError();
  return new CoreError('UnsupportedFormat', `The PEM block "${label}" is not a private key.`);
}

/**
 * Says what the DER is when it isn't a private key: a public key, parameters, or unknown.
 * Like the sniff, it reads the outer SEQUENCE's children only, so deep damage does not
 * change the answer.
 */
function notAPrivateKey(der: Uint8Array): CoreError {
  const tags = outerTags(der);
  if (tags !== undefined) {
    if (tags.length === 2 && tags[0] === TAG.SEQUENCE && tags[1] === TAG.BIT_STRING) {
      return publicKeyError();
    }
    if (tags.length === 2 && tags.every((t) => t === TAG.INTEGER)) return publicKeyError();
    if (tags.length === 3 && tags.every((t) => t === TAG.INTEGER)) return parametersError();
    if (tags.length === 3 && tags[0] === TAG.SEQUENCE && tags[2] === TAG.BIT_STRING) {
      return new CoreError(
        'UnsupportedFormat',
        'This is a certificate or certificate request, not a private key.',
      );
    }
  }
  // Not even ASN.1, or no structure we know: the general sentence.
  return new CoreError('UnsupportedFormat', 'The data is not a private key certkeeper can read.');
}

/** The tags of the outer SEQUENCE's children, or undefined when the DER is not one. */
function outerTags(der: Uint8Array): number[] | undefined {
  try {
    const outer = readTlv(der);
    if (outer.tag !== TAG.SEQUENCE) return undefined;
    return readChildren(der, outer).map((k) => k.tag);
  } catch {
    return undefined;
  }
}

function publicKeyError(): CoreError {
  return new CoreError('UnsupportedFormat', 'This is a public key, not a private key.');
}

function parametersError(): CoreError {
  return new CoreError('UnsupportedFormat', 'This holds only key parameters, not a private key.');
}
