import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { ContentInfo, EncryptedContent, EncryptedContentInfo } from '@peculiar/asn1-cms';
import {
  AuthenticatedSafe,
  CertBag,
  MacData,
  PFX,
  PKCS8ShroudedKeyBag,
  PKCS12Attribute,
  SafeBag,
  SafeContents,
} from '@peculiar/asn1-pfx';
import { EncryptedData as EncryptedPrivateKeyData } from '@peculiar/asn1-pkcs8';
import { DigestInfo } from '@peculiar/asn1-rsa';
import { AsnConvert, AsnProp, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, DirectoryString } from '@peculiar/asn1-x509';
import { type Certificate, parseCertificate } from './certificate.js';
import { TAG } from './der.js';
import { CoreError } from './errors.js';
import { checkLoadedKey } from './keys.js';
import {
  DIGEST_OIDS,
  encryptPbes2Aes256,
  KDF_ID,
  MAX_ITERATIONS,
  OID as PBE_OID,
  type PbePassword,
  type PbeScheme,
  PRF_OIDS,
  parsePbeAlgorithm,
  pbePassword,
  pbkdf2Async,
  pkcs12Kdf,
  pkcs12KdfBlocks,
  readPbkdf2,
  WorkBudget,
} from './pbe.js';
import {
  BerEncryptedPrivateKeyInfo,
  BerMacData,
  damaged,
  decode,
  EncryptedData,
  OneAsymmetricKey,
  type Outline,
  octets,
  outlineOf,
  Pbes2Params,
  Pbkdf2Params,
  Pbmac1Params,
  safeInteger,
  tryDecode,
} from './pkcs-schemas.js';

/** A private key found in a PKCS#12 file. */
export interface Pkcs12Key {
  /** The private key. */
  key: KeyObject;
  friendlyName?: string;
  /** The localKeyId attribute, lower-case hex. */
  localKeyId?: string;
}

/** A certificate found in a PKCS#12 file. */
export interface Pkcs12Certificate {
  certificate: Certificate;
  friendlyName?: string;
  /** The localKeyId attribute, lower-case hex. */
  localKeyId?: string;
}

/** Everything a PKCS#12 file holds, and how it was protected. */
export interface Pkcs12Contents {
  /** Keys in file order. */
  keys: Pkcs12Key[];
  /** Certificates in file order. */
  certificates: Pkcs12Certificate[];
  /** key index ↔ certificate index, paired by localKeyId, else friendlyName, else matching public key */
  pairs: { key: number; certificate: number; by: 'localKeyId' | 'friendlyName' | 'publicKey' }[];
  /** The MAC (`digest` is the Node hash name, e.g. `sha256`, or `pbmac1-hmacWithSHA256`), or none. */
  integrity: { kind: 'mac'; digest: string; iterations: number } | { kind: 'none' };
  /**
   * One line per protected part, in file order: each encrypted cert container and each
   * shrouded key bag gets its scheme, e.g. 'PBES2 (PBKDF2 hmacWithSHA256, aes-256-cbc,
   * 2048 iterations)', 'pbeWithSHAAnd40BitRC2-CBC', 'pbeWithSHAAnd3-KeyTripleDES-CBC';
   * each unencrypted container that holds bags in the clear gets 'none'.
   */
  encryption: string[];
  /** how the password was used: 'given', 'none' (absent), 'empty' (two zero bytes BMPString) */
  password: 'given' | 'none' | 'empty';
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  dsa: '1.2.840.10040.4.1',
} as const;

const KEY_ALGORITHMS: Record<string, string> = {
  '1.2.840.113549.1.1.1': 'RSA',
  '1.2.840.113549.1.1.10': 'RSA-PSS',
  '1.2.840.10045.2.1': 'EC',
  '1.2.840.10040.4.1': 'DSA',
  '1.3.101.110': 'X25519',
  '1.3.101.111': 'X448',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
};

/** How deep safeContentsBag may nest SafeContents inside SafeContents. */
const MAX_BAG_DEPTH = 8;

const asBuffer = (der: Uint8Array) => Buffer.from(der.buffer, der.byteOffset, der.byteLength);

/** OBJECT IDENTIFIER 1.2.840.113549.1.7 (PKCS#7), tag and length included, without its last arc. */
const PKCS7_OID_PREFIX = Buffer.from('06092a864886f70d0107', 'hex');

/** Cheap sniff: the DER looks like a PFX (SEQUENCE { INTEGER 3, ContentInfo, ... }). */
export function isPkcs12(der: Uint8Array): boolean {
  // Only the header is read, so that a truncated or damaged PFX is still recognised
  // (and reported as damaged by readPkcs12) and a large input costs nothing here.
  // 30 len 02 01 03 30 len 06 09 <pkcs7 data or signedData>
  let pos = 0;
  const skipLength = () => {
    const first = der[pos++];
    if (first === undefined) return false;
    if (first <= 0x80) return true; // short form, or BER indefinite
    pos += first & 0x7f;
    return (first & 0x7f) <= 4;
  };
  if (der[pos++] !== TAG.SEQUENCE || !skipLength()) return false;
  if (der[pos++] !== TAG.INTEGER || der[pos++] !== 1 || der[pos++] !== 3) return false;
  if (der[pos++] !== TAG.SEQUENCE || !skipLength()) return false;
  const oid = Buffer.from(der.subarray(pos, pos + PKCS7_OID_PREFIX.length + 1));
  return (
    oid.length === PKCS7_OID_PREFIX.length + 1 &&
    oid.subarray(0, PKCS7_OID_PREFIX.length).equals(PKCS7_OID_PREFIX) &&
    (oid[PKCS7_OID_PREFIX.length] === 1 || oid[PKCS7_OID_PREFIX.length] === 2)
  );
}

type PasswordForm = Pkcs12Contents['password'];

interface Candidate {
  form: PasswordForm;
  password: PbePassword;
}

/**
 * The passwords to try, in order. Like OpenSSL, "no password" tries the absent password
 * (zero bytes) and then the empty one (BMPString `00 00`); the empty string tries them the
 * other way round. A non-empty password is tried alone.
 */
function candidatesFor(password: string | undefined): Candidate[] {
  const none: Candidate = { form: 'none', password: pbePassword(null) };
  const empty: Candidate = { form: 'empty', password: pbePassword('') };
  if (password === undefined) return [none, empty];
  if (password === '') return [empty, none];
  return [{ form: 'given', password: pbePassword(password) }];
}

function passwordError(password: string | undefined): CoreError {
  return password === undefined
    ? new CoreError(
        'PasswordRequired',
        'The PKCS#12 file is protected by a password and none was given.',
      )
    : new CoreError('WrongPassword', 'The password does not open the PKCS#12 file.');
}

interface Attributes {
  friendlyName?: string;
  localKeyId?: string;
}

interface RawBag extends Attributes {
  der: Buffer;
}

/**
 * Opens a PFX (RFC 7292), as written by OpenSSL (default, `-legacy`, `-nomac`,
 * `-certpbe NONE -keypbe NONE`), Java's keytool, pyca and others, in DER or BER.
 *
 * ```asn1
 * PFX ::= SEQUENCE {
 *   version    INTEGER {v3(3)}(v3,...),
 *   authSafe   ContentInfo,          -- data (password integrity) or signedData (not supported)
 *   macData    MacData OPTIONAL }
 *
 * MacData ::= SEQUENCE {
 *   mac        DigestInfo,           -- HMAC over the authSafe content octets
 *   macSalt    OCTET STRING,
 *   iterations INTEGER DEFAULT 1 }
 * -- The MAC key comes from the PKCS#12 KDF (App. B, ID 3) over the password's BMPString,
 * -- or from PBKDF2 over its UTF-8 bytes when the digest algorithm is PBMAC1 (RFC 9579).
 *
 * AuthenticatedSafe ::= SEQUENCE OF ContentInfo
 *   -- data: an OCTET STRING holding SafeContents in the clear
 *   -- encryptedData: EncryptedData, whose decrypted content is SafeContents
 *   -- envelopedData: public-key privacy mode (not supported)
 *
 * EncryptedData ::= SEQUENCE {                                  -- PKCS#7 / RFC 5652
 *   version INTEGER,
 *   encryptedContentInfo SEQUENCE {
 *     contentType                OBJECT IDENTIFIER,
 *     contentEncryptionAlgorithm AlgorithmIdentifier,           -- a PBE scheme
 *     encryptedContent           [0] IMPLICIT OCTET STRING OPTIONAL } }
 *
 * SafeContents ::= SEQUENCE OF SafeBag
 *
 * SafeBag ::= SEQUENCE {
 *   bagId         OBJECT IDENTIFIER,
 *   bagValue      [0] EXPLICIT ANY DEFINED BY bagId,
 *   bagAttributes SET OF PKCS12Attribute OPTIONAL }             -- friendlyName, localKeyId
 * -- keyBag: PrivateKeyInfo; pkcs8ShroudedKeyBag: EncryptedPrivateKeyInfo;
 * -- certBag: CertBag ::= SEQUENCE { certId OBJECT IDENTIFIER, certValue [0] EXPLICIT ANY }
 * --   with certId x509Certificate and an OCTET STRING holding the DER certificate;
 * -- safeContentsBag: SafeContents (nested); crlBag, secretBag: ignored.
 * ```
 *
 * The MAC is checked first and settles the password. Without a MAC, a wrong password is
 * seen as bad padding or as decrypted bytes that don't parse. Every failure is a
 * `CoreError`: `PasswordRequired`, `WrongPassword`, `UnsupportedAlgorithm`,
 * `MalformedInput` or `UnsupportedFormat`. The key-derivation work is charged to
 * `options.budget` (a fresh {@link WorkBudget} unless given; a caller passes one to see
 * what an input cost, in iterations).
 */
export async function readPkcs12(
  der: Uint8Array,
  password: string | undefined,
  options: { budget?: WorkBudget } = {},
): Promise<Pkcs12Contents> {
  try {
    return await new PfxReader(asBuffer(der), password, options.budget).read();
  } catch (cause) {
    if (cause instanceof CoreError) throw cause;
    throw new CoreError('MalformedInput', 'The PKCS#12 file is damaged and cannot be read.', {
      cause,
    });
  }
}

/** A MacData, read. */
interface Mac {
  /** For `integrity.digest`. */
  name: string;
  iterations: number;
  expected: Buffer;
  /** HMAC-key derivation for one password candidate; the hash names the HMAC. */
  hash: string;
  deriveKey(candidate: Candidate, budget: WorkBudget): Promise<Buffer>;
}

function readMacData(macData: BerMacData): Mac {
  const what = 'PKCS#12 MAC';
  const alg = macData.mac.digestAlgorithm;
  const expected = Buffer.from(macData.mac.digest.buffer);
  const salt = Buffer.from(macData.macSalt.buffer);
  const iterations = safeInteger(macData.iterations, what);
  if (alg.algorithm === PBE_OID.pbmac1) {
    const params = decode(alg.parameters, Pbmac1Params, what);
    const kdf = readPbkdf2(params.keyDerivationFunc, what);
    const schemeOid = params.messageAuthScheme.algorithm;
    const scheme = PRF_OIDS[schemeOid];
    if (!scheme) {
      throw new CoreError(
        'UnsupportedAlgorithm',
        `The PKCS#12 MAC uses an algorithm certkeeper does not know (OID ${schemeOid}).`,
      );
    }
    const keyLength = kdf.keyLength;
    if (keyLength === undefined || keyLength < 1 || keyLength > 1024) {
      throw new CoreError('MalformedInput', 'The PKCS#12 MAC has no valid PBKDF2 key length.');
    }
    return {
      name: `pbmac1-${scheme.name}`,
      iterations: kdf.iterations,
      expected,
      hash: scheme.hash,
      async deriveKey(candidate, budget) {
        budget.spend(kdf.iterations * Math.ceil(keyLength / 20));
        return pbkdf2Async(
          candidate.password.utf8,
          kdf.salt,
          kdf.iterations,
          keyLength,
          kdf.prf.hash,
        );
      },
    };
  }
  const hash = DIGEST_OIDS[alg.algorithm];
  if (!hash) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The PKCS#12 MAC uses a digest certkeeper does not know (OID ${alg.algorithm}).`,
    );
  }
  if (iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new CoreError(
      iterations < 1 ? 'MalformedInput' : 'UnsupportedAlgorithm',
      `The PKCS#12 MAC uses ${iterations.toLocaleString('en-US')} iterations; certkeeper accepts 1 to ${MAX_ITERATIONS.toLocaleString('en-US')}.`,
    );
  }
  const length = createHash(hash).digest().length;
  return {
    name: hash,
    iterations,
    expected,
    hash,
    async deriveKey(candidate, budget) {
      budget.spend(iterations * pkcs12KdfBlocks(hash, length));
      return pkcs12Kdf(hash, candidate.password.bmp, salt, KDF_ID.mac, iterations, length);
    },
  };
}

/** One read of one PFX: the password candidates, the work budget, what was found. */
class PfxReader {
  readonly #buf: Buffer;
  readonly #password: string | undefined;
  readonly #budget: WorkBudget;
  /** Password candidates, the one that last worked first. */
  #order: Candidate[];
  /** True once the MAC verified: then a failure after decryption is damage, not a wrong password. */
  #verified = false;
  #used: PasswordForm | undefined;
  readonly #keys: RawBag[] = [];
  readonly #certs: RawBag[] = [];
  readonly #encryption: string[] = [];

  constructor(buf: Buffer, password: string | undefined, budget = new WorkBudget()) {
    this.#buf = buf;
    this.#budget = budget;
    this.#password = password;
    this.#order = candidatesFor(password);
  }

  async read(): Promise<Pkcs12Contents> {
    const buf = this.#buf;
    if (!isPkcs12(buf)) {
      throw new CoreError('UnsupportedFormat', 'The data is not a PKCS#12 (PFX) file.');
    }
    const pfx = decode(buf, Pfx, 'PKCS#12 file', 'The PKCS#12 file is damaged and cannot be read.');
    const authSafeType = pfx.authSafe.contentType;
    if (authSafeType === OID.signedData) {
      throw new CoreError(
        'UnsupportedAlgorithm',
        'The PKCS#12 file uses public-key integrity mode (a signature instead of a password MAC), which certkeeper does not support.',
      );
    }
    if (authSafeType !== OID.data) {
      throw new CoreError(
        'UnsupportedFormat',
        `The PKCS#12 file's content has an unknown type (OID ${authSafeType}).`,
      );
    }
    const authSafe = octets(pfx.authSafe.content, 'PKCS#12 file');

    let integrity: Pkcs12Contents['integrity'] = { kind: 'none' };
    if (pfx.macData instanceof BerMacData) {
      const mac = readMacData(pfx.macData);
      integrity = { kind: 'mac', digest: mac.name, iterations: mac.iterations };
      const match = await this.#findMacPassword(mac, authSafe);
      if (!match) throw passwordError(this.#password);
      this.#verified = true;
      this.#use(match);
    }

    await this.#readAuthenticatedSafe(authSafe);

    const keys = this.#keys.map((k) => withAttributes({ key: loadPrivateKey(k.der) }, k));
    const certificates = this.#certs.map((c) =>
      withAttributes({ certificate: parseCertificate(c.der) }, c),
    );
    return {
      keys,
      certificates,
      pairs: pair(keys, certificates),
      integrity,
      encryption: this.#encryption,
      password: this.#used ?? this.#order[0]!.form,
    };
  }

  async #findMacPassword(mac: Mac, authSafe: Buffer): Promise<Candidate | undefined> {
    for (const candidate of this.#order) {
      const key = await mac.deriveKey(candidate, this.#budget);
      const actual = createHmac(mac.hash, key).update(authSafe).digest();
      if (actual.length === mac.expected.length && timingSafeEqual(actual, mac.expected)) {
        return candidate;
      }
    }
    return undefined;
  }

  #use(candidate: Candidate): void {
    this.#used ??= candidate.form;
    this.#order = [candidate, ...this.#order.filter((c) => c !== candidate)];
  }

  /**
   * Decrypts with the password candidates, the last one that worked first. Plaintext with
   * good padding that `plausible` rejects counts as a wrong password, unless no candidate
   * does better and the MAC verified: then the content is damaged, and the caller's
   * parser says so.
   */
  async #decrypt(
    scheme: PbeScheme,
    ciphertext: Buffer,
    plausible: (plain: Buffer) => boolean,
  ): Promise<Buffer> {
    let damaged: { candidate: Candidate; plain: Buffer } | undefined;
    for (const candidate of this.#order) {
      const plain = await scheme.decrypt(candidate.password, ciphertext, this.#budget);
      if (plain && plausible(plain)) {
        this.#use(candidate);
        return plain;
      }
      if (plain && this.#verified) damaged ??= { candidate, plain };
    }
    if (damaged) {
      this.#use(damaged.candidate);
      return damaged.plain;
    }
    throw passwordError(this.#password);
  }

  async #readAuthenticatedSafe(authSafe: Buffer): Promise<void> {
    const what = 'PKCS#12 content';
    for (const info of decode(authSafe, AuthenticatedSafe, what)) {
      const type = info.contentType;
      if (type === OID.data) {
        const clear = await this.#readSafeContents(octets(info.content, what), 0);
        if (clear > 0) this.#encryption.push('none');
      } else if (type === OID.encryptedData) {
        await this.#readEncryptedData(info.content);
      } else if (type === OID.envelopedData) {
        throw new CoreError(
          'UnsupportedAlgorithm',
          'The PKCS#12 file encrypts a part with a public key (enveloped data) instead of a password, which certkeeper does not support.',
        );
      } else {
        throw new CoreError(
          'UnsupportedFormat',
          `The PKCS#12 file contains a part of an unknown type (OID ${type}).`,
        );
      }
    }
  }

  async #readEncryptedData(content: ArrayBuffer): Promise<void> {
    const what = 'PKCS#12 encrypted content';
    const info = decode(content, EncryptedData, what).encryptedContentInfo;
    const scheme = parsePbeAlgorithm(info.contentEncryptionAlgorithm, what);
    this.#encryption.push(scheme.description);
    const encrypted = info.encryptedContent;
    if (!encrypted) return;
    // [0] IMPLICIT OCTET STRING: primitive, or BER's constructed form in chunks.
    const ciphertext = encrypted.value
      ? Buffer.from(encrypted.value.buffer)
      : Buffer.concat((encrypted.constructedValue ?? []).map((c) => Buffer.from(c.buffer)));
    const plain = await this.#decrypt(scheme, ciphertext, looksLikeSafeContents);
    await this.#readSafeContents(plain, 0);
  }

  /** Reads the bags; returns how many were stored in the clear. */
  async #readSafeContents(buf: Buffer, depth: number): Promise<number> {
    const what = 'PKCS#12 bag list';
    let clear = 0;
    for (const bag of decode(buf, SafeContents, what)) {
      const value = bag.bagValue;
      if (!value) throw damaged(what);
      const attributes = readAttributes(bag.bagAttributes);
      switch (bag.bagId) {
        case OID.keyBag:
          // A PrivateKeyInfo, handed to Node as it is (OpenSSL reads BER too).
          clear++;
          this.#keys.push({ der: Buffer.from(value), ...attributes });
          break;
        case OID.pkcs8ShroudedKeyBag: {
          const keyWhat = 'encrypted private key';
          const shrouded = decode(value, BerEncryptedPrivateKeyInfo, keyWhat);
          const scheme = parsePbeAlgorithm(shrouded.encryptionAlgorithm, keyWhat);
          this.#encryption.push(scheme.description);
          const ciphertext = Buffer.from(shrouded.encryptedData.buffer);
          const der = await this.#decrypt(scheme, ciphertext, looksLikePrivateKeyInfo);
          this.#keys.push({ der, ...attributes });
          break;
        }
        case OID.certBag: {
          clear++;
          const certBag = decode(value, CertBag, what);
          // Only X.509 certificates; SDSI certificates are skipped.
          if (certBag.certId !== OID.x509Certificate) break;
          const der = octets(certBag.certValue, 'PKCS#12 certificate bag');
          this.#certs.push({ der, ...attributes });
          break;
        }
        case OID.safeContentsBag:
          if (depth >= MAX_BAG_DEPTH) {
            throw new CoreError('MalformedInput', 'The PKCS#12 file nests its bags too deeply.');
          }
          clear += await this.#readSafeContents(Buffer.from(value), depth + 1);
          break;
        default:
          // crlBag, secretBag (Java's secret keys) and unknown bags are not ours to use.
          break;
      }
    }
    return clear;
  }
}

/**
 * PFX, its MacData's OCTET STRINGs read in BER's constructed form too. asn1-pfx's class
 * starts with an empty MacData, so a MacData read from the file is the one that is a
 * BerMacData.
 */
class Pfx extends PFX {}
AsnProp({ type: BerMacData, optional: true })(Pfx.prototype, 'macData');

/** friendlyName (BMPString) and localKeyId (OCTET STRING) from a bag's attributes. */
function readAttributes(bagAttributes: PKCS12Attribute[] | undefined): Attributes {
  const attributes: Attributes = {};
  for (const { attrId, attrValues } of bagAttributes ?? []) {
    const [value] = attrValues;
    if (!value) continue;
    if (attrId === OID.friendlyName) {
      // A BMPString; UTF8String and the other directory strings are read too.
      const name = tryDecode(value, DirectoryString)?.toString();
      if (name !== undefined) attributes.friendlyName = name.replace(/\0+$/, '');
    } else if (attrId === OID.localKeyId) {
      attributes.localKeyId = octets(value, 'PKCS#12 bag attribute').toString('hex');
    }
  }
  return attributes;
}

function withAttributes<T extends object>(base: T, attributes: Attributes): T & Attributes {
  const out: T & Attributes = { ...base };
  if (attributes.friendlyName !== undefined) out.friendlyName = attributes.friendlyName;
  if (attributes.localKeyId !== undefined) out.localKeyId = attributes.localKeyId;
  return out;
}

const tagsOf = (outline: Outline | undefined) => outline?.children.map((c) => c.tag) ?? [];

/** Decrypted bytes that fill one SafeContents (a SEQUENCE OF SafeBag, each an OID and a [0]). */
function looksLikeSafeContents(plain: Buffer): boolean {
  const top = outlineOf(plain);
  return (
    top?.tag === TAG.SEQUENCE &&
    top.children.every((bag) => {
      const [id, value] = tagsOf(bag);
      return bag.tag === TAG.SEQUENCE && id === TAG.OID && value === TAG.CONTEXT_0;
    })
  );
}

/** Decrypted bytes that fill one PrivateKeyInfo (version, algorithm, key). */
function looksLikePrivateKeyInfo(plain: Buffer): boolean {
  const top = outlineOf(plain);
  const [version, algorithm, key] = tagsOf(top);
  return (
    top?.tag === TAG.SEQUENCE &&
    version === TAG.INTEGER &&
    algorithm === TAG.SEQUENCE &&
    key === TAG.OCTET_STRING
  );
}

/**
 * A PKCS#8 PrivateKeyInfo as a Node key, or a typed error naming the algorithm. A key that
 * loads then passes the checks every private key passes (type, named curve, RSA self-test).
 */
function loadPrivateKey(der: Buffer): KeyObject {
  return checkLoadedKey(loadPkcs8(der));
}

function loadPkcs8(der: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (cause) {
    const algorithm = tryDecode(der, OneAsymmetricKey)?.privateKeyAlgorithm;
    const oid = algorithm?.algorithm;
    if (oid === undefined) {
      throw new CoreError('MalformedInput', 'A private key in the PKCS#12 file is damaged.', {
        cause,
      });
    }
    if (oid === OID.dsa && algorithm?.parameters == null) {
      throw new CoreError(
        'UnsupportedAlgorithm',
        "The PKCS#12 file's DSA key inherits its domain parameters from its issuer, which certkeeper does not support.",
        { cause },
      );
    }
    const name = KEY_ALGORITHMS[oid];
    throw new CoreError(
      'UnsupportedAlgorithm',
      name
        ? `The ${name} private key in the PKCS#12 file cannot be loaded: it is damaged or uses parameters certkeeper does not support.`
        : `The PKCS#12 file holds a private key of an algorithm certkeeper does not know (OID ${oid}).`,
      { cause },
    );
  }
}

/** Pairs keys with certificates: localKeyId first, then friendlyName, then the public key. */
function pair(keys: Pkcs12Key[], certificates: Pkcs12Certificate[]): Pkcs12Contents['pairs'] {
  const pairs: Pkcs12Contents['pairs'] = [];
  const taken = new Set<number>();
  const certSpki = new Map<number, Buffer | null>();
  const spkiOf = (j: number): Buffer | null => {
    if (!certSpki.has(j)) certSpki.set(j, normalizedSpki(certificates[j]!.certificate.spkiDer));
    return certSpki.get(j)!;
  };
  keys.forEach((k, i) => {
    const free = (j: number) => !taken.has(j);
    let j = k.localKeyId
      ? certificates.findIndex((c, n) => free(n) && c.localKeyId === k.localKeyId)
      : -1;
    let by: Pkcs12Contents['pairs'][number]['by'] = 'localKeyId';
    if (j < 0 && k.friendlyName !== undefined) {
      j = certificates.findIndex((c, n) => free(n) && c.friendlyName === k.friendlyName);
      by = 'friendlyName';
    }
    if (j < 0) {
      const mine = spkiDer(k.key);
      j = mine ? certificates.findIndex((_, n) => free(n) && spkiOf(n)?.equals(mine)) : -1;
      by = 'publicKey';
    }
    if (j >= 0) {
      taken.add(j);
      pairs.push({ key: i, certificate: j, by });
    }
  });
  return pairs;
}

/** A certificate's SubjectPublicKeyInfo as OpenSSL re-encodes it, for comparison. */
function normalizedSpki(der: Buffer): Buffer | null {
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' }).export({
      type: 'spki',
      format: 'der',
    });
  } catch {
    return null;
  }
}

/** The public half of a private key as SubjectPublicKeyInfo DER. */
function spkiDer(key: KeyObject): Buffer | null {
  try {
    return createPublicKey(key).export({ type: 'spki', format: 'der' });
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Writing

/** Exports key + certificates (leaf first) as a PFX: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC for both the key bag and the cert bags, MAC HMAC-SHA256, random salts, iterations default 2048 (option). */
export async function writePkcs12(input: {
  key: KeyObject;
  certificates: Certificate[];
  password: string;
  friendlyName?: string;
  iterations?: number;
}): Promise<Buffer> {
  const { key, certificates, password, friendlyName } = input;
  const iterations = input.iterations ?? 2048;
  if (typeof password !== 'string' || password === '') {
    throw new CoreError('InvalidGenerationRequest', 'A PKCS#12 export needs a non-empty password.');
  }
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new CoreError(
      'InvalidGenerationRequest',
      `The iteration count must be a whole number from 1 to ${MAX_ITERATIONS.toLocaleString('en-US')}.`,
    );
  }
  if (key?.type !== 'private') {
    throw new CoreError('InvalidGenerationRequest', 'A PKCS#12 export needs a private key.');
  }
  const leaf = certificates[0];
  // Refuse to write a file whose key and leaf don't belong together.
  if (leaf && !normalizedSpki(leaf.spkiDer)?.equals(spkiDer(key) ?? Buffer.alloc(0))) {
    throw new CoreError('KeyMismatch', 'The private key does not belong to the first certificate.');
  }
  let keyDer: Buffer;
  try {
    keyDer = key.export({ type: 'pkcs8', format: 'der' });
  } catch (cause) {
    throw new CoreError('UnsupportedAlgorithm', 'This private key cannot be exported as PKCS#8.', {
      cause,
    });
  }
  const pw = pbePassword(password);

  // OpenSSL's convention: the key and its certificate share localKeyId = SHA-1(certificate).
  const attributes: PKCS12Attribute[] = [];
  if (friendlyName !== undefined) {
    attributes.push(attribute(OID.friendlyName, new DirectoryString({ bmpString: friendlyName })));
  }
  if (leaf) {
    attributes.push(
      attribute(OID.localKeyId, new OctetString(createHash('sha1').update(leaf.der).digest())),
    );
  }
  const bagAttributes = attributes.length > 0 ? derSetOrder(attributes) : undefined;

  const parts: ContentInfo[] = [];
  if (certificates.length > 0) {
    const bags = certificates.map(
      (c, i) =>
        new SafeBag({
          bagId: OID.certBag,
          bagValue: AsnConvert.serialize(
            new CertBag({
              certId: OID.x509Certificate,
              certValue: AsnConvert.serialize(new OctetString(c.der)),
            }),
          ),
          ...(i === 0 && bagAttributes ? { bagAttributes } : {}),
        }),
    );
    const plain = Buffer.from(AsnConvert.serialize(new SafeContents(bags)));
    const enc = await encryptPbes2Aes256(plain, pw, iterations);
    const encryptedData = new EncryptedData({
      encryptedContentInfo: new EncryptedContentInfo({
        contentType: OID.data,
        contentEncryptionAlgorithm: pbes2Algorithm(enc),
        encryptedContent: new EncryptedContent({ value: new OctetString(enc.ciphertext) }),
      }),
    });
    parts.push(
      new ContentInfo({
        contentType: OID.encryptedData,
        content: AsnConvert.serialize(encryptedData),
      }),
    );
  }
  const encKey = await encryptPbes2Aes256(keyDer, pw, iterations);
  const keyBag = new SafeBag({
    bagId: OID.pkcs8ShroudedKeyBag,
    bagValue: AsnConvert.serialize(
      new PKCS8ShroudedKeyBag({
        encryptionAlgorithm: pbes2Algorithm(encKey),
        encryptedData: new EncryptedPrivateKeyData(encKey.ciphertext),
      }),
    ),
    ...(bagAttributes ? { bagAttributes } : {}),
  });
  parts.push(dataContentInfo(AsnConvert.serialize(new SafeContents([keyBag]))));
  const authSafe = Buffer.from(AsnConvert.serialize(new AuthenticatedSafe(parts)));

  const macSalt = randomBytes(16);
  const macKey = await pkcs12Kdf('sha256', pw.bmp, macSalt, KDF_ID.mac, iterations, 32);
  const mac = createHmac('sha256', macKey).update(authSafe).digest();
  const pfx = new PFX({
    version: 3,
    authSafe: dataContentInfo(authSafe),
    macData: new MacData({
      mac: new DigestInfo({
        digestAlgorithm: new AlgorithmIdentifier({ algorithm: PBE_OID.sha256, parameters: null }),
        digest: new OctetString(mac),
      }),
      macSalt: new OctetString(macSalt),
      iterations,
    }),
  });
  return Buffer.from(AsnConvert.serialize(pfx));
}

/** A ContentInfo of type data: an OCTET STRING holding `content`. */
function dataContentInfo(content: ArrayBuffer | Buffer): ContentInfo {
  return new ContentInfo({
    contentType: OID.data,
    content: AsnConvert.serialize(new OctetString(content)),
  });
}

/** A bag attribute with one value. */
function attribute(attrId: string, value: object): PKCS12Attribute {
  // PKCS12Attribute's constructor drops its argument (asn1-pfx 2.x calls
  // `Object.assign(params)`), so the fields are set on the instance.
  return Object.assign(new PKCS12Attribute(), {
    attrId,
    attrValues: [AsnConvert.serialize(value)],
  });
}

/** The attributes in DER's order for a SET OF: by their encodings (X.690 11.6). */
function derSetOrder(attributes: PKCS12Attribute[]): PKCS12Attribute[] {
  const encoded = attributes.map((a) => ({ a, der: Buffer.from(AsnConvert.serialize(a)) }));
  return encoded.sort((x, y) => Buffer.compare(x.der, y.der)).map((e) => e.a);
}

/** AlgorithmIdentifier of PBES2 with PBKDF2 (HMAC-SHA256) and AES-256-CBC (RFC 8018). */
function pbes2Algorithm(enc: {
  salt: Buffer;
  iv: Buffer;
  iterations: number;
}): AlgorithmIdentifier {
  const hmacWithSHA256 = new AlgorithmIdentifier({
    algorithm: PBE_OID.hmacWithSHA256,
    parameters: null,
  });
  const kdf = new AlgorithmIdentifier({
    algorithm: PBE_OID.pbkdf2,
    parameters: AsnConvert.serialize(
      new Pbkdf2Params({
        salt: AsnConvert.serialize(new OctetString(enc.salt)),
        iterationCount: enc.iterations,
        prf: hmacWithSHA256,
      }),
    ),
  });
  const cipher = new AlgorithmIdentifier({
    algorithm: PBE_OID.aes256Cbc,
    parameters: AsnConvert.serialize(new OctetString(enc.iv)),
  });
  return new AlgorithmIdentifier({
    algorithm: PBE_OID.pbes2,
    parameters: AsnConvert.serialize(
      new Pbes2Params({ keyDerivationFunc: kdf, encryptionScheme: cipher }),
    ),
  });
}
