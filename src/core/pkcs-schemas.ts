import { EncryptedContentInfo } from '@peculiar/asn1-cms';
import { MacData } from '@peculiar/asn1-pfx';
import { EncryptedPrivateKeyInfo, PrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { DigestInfo } from '@peculiar/asn1-rsa';
import {
  AsnParser,
  AsnProp,
  AsnPropTypes,
  AsnType,
  AsnTypeTypes,
  BitString,
} from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { Any, OctetString as Asn1OctetString } from 'asn1js';
import { asn1ParseError } from './der.js';
import { CoreError } from './errors.js';

/**
 * The ASN.1 schemas that reading and writing PKCS#5, #7, #8 and #12 need beyond what the
 * @peculiar packages declare (asn1-pkcs5 and asn1-ecc are not dependencies), and the one
 * way those structures are decoded: {@link decode}. The decorators are applied by hand,
 * as this project does not compile legacy decorators.
 *
 * BER matters here: PKCS#12 from streaming encoders (old Windows, Netscape, Java) uses
 * indefinite lengths, which asn1js reads, and OCTET STRINGs cut into chunks, which
 * asn1-schema's OctetString reads as empty. So every OCTET STRING this module declares is
 * a {@link BerOctetString}, and the package classes holding one are subclassed with it.
 */

/**
 * How asn1js reads these inputs. Octet strings are opened when their type says so, not on
 * a guess (asn1js otherwise tries every one as nested BER, certificates in cert bags
 * included). A keystore's bag list costs about 15 elements a bag, so a few hundred
 * trusted certificates would pass the default bound of 10,000; the input cap (1 MiB)
 * already bounds the work, and depth and content length keep their defaults.
 */
const BER_OPTIONS = { parseEmbedded: false, maxNodes: 200_000 };

/**
 * `bytes` decoded as `type`. Any failure is a `CoreError`: `InputTooLarge` past one of
 * the decoder's bounds, else `MalformedInput` with `damaged`, by default
 * "The <what> is damaged: an element is missing or of the wrong type." (`damagedSentence`).
 */
export function decode<T>(
  bytes: ArrayBuffer | ArrayBufferView | null | undefined,
  type: new () => T,
  what: string,
  damaged = damagedSentence(what),
): T {
  try {
    if (!bytes) throw new Error('the element is absent');
    return AsnParser.parse(bytes, type, { berOptions: BER_OPTIONS });
  } catch (cause) {
    throw asn1ParseError(cause, `The ${what}`, damaged);
  }
}

/** The value of an OCTET STRING element (an `ANY` as asn1-schema gives it), BER too. */
export function octets(
  der: ArrayBuffer | null | undefined,
  what: string,
  damaged = damagedSentence(what),
): Buffer {
  return Buffer.from(decode(der, BerOctetString, what, damaged).buffer);
}

/** `MalformedInput` for a `what` that {@link decode} could read but lacks an element. */
export function damaged(what: string): CoreError {
  return new CoreError('MalformedInput', damagedSentence(what));
}

function damagedSentence(what: string): string {
  return `The ${what} is damaged: an element is missing or of the wrong type.`;
}

/** `bytes` decoded as `type`, or undefined: for a sniff or a plausibility check. */
export function tryDecode<T>(
  bytes: ArrayBuffer | ArrayBufferView,
  type: new () => T,
): T | undefined {
  try {
    return AsnParser.parse(bytes, type, { berOptions: BER_OPTIONS });
  } catch {
    return undefined;
  }
}

/**
 * A non-negative INTEGER as a JavaScript number (asn1-schema gives a decimal string from
 * four bytes up); negative or past 2^53 is `MalformedInput`.
 */
export function safeInteger(value: number | string, what: string): number {
  const big = BigInt(value);
  if (big < 0n) {
    throw new CoreError('MalformedInput', `The ${what} has an empty or negative number.`);
  }
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CoreError('MalformedInput', `The ${what} has a number that is too large.`);
  }
  return Number(big);
}

/** The view on an asn1js element that {@link BerOctetString} and {@link Outline} read. */
interface Asn1Element {
  valueBeforeDecodeView: Uint8Array;
  idBlock: { isConstructed: boolean; tagClass: number; tagNumber: number };
  valueBlock: { value?: unknown; valueHexView?: Uint8Array };
}

const childrenOf = (asn: Asn1Element): Asn1Element[] =>
  asn.idBlock.isConstructed && Array.isArray(asn.valueBlock.value)
    ? (asn.valueBlock.value as Asn1Element[])
    : [];

/**
 * An OCTET STRING, primitive or BER-constructed (chunks, possibly nested), as its value.
 * Its schema matches any element, since asn1js compares the constructed bit; `fromASN`
 * then refuses anything but an OCTET STRING.
 */
export class BerOctetString {
  buffer = new ArrayBuffer(0);

  toSchema(name: string): Any {
    return new Any({ name });
  }

  toASN(): Asn1OctetString {
    return new Asn1OctetString({ valueHex: this.buffer });
  }

  fromASN(asn: unknown): this {
    const element = asn as Asn1Element;
    if (element.idBlock?.tagClass !== 1 || element.idBlock.tagNumber !== 4) {
      throw new TypeError('An OCTET STRING was expected.');
    }
    const chunks: Uint8Array[] = [];
    const collect = (e: Asn1Element) => {
      if (!e.idBlock.isConstructed) chunks.push(e.valueBlock.valueHexView ?? new Uint8Array());
      else for (const child of childrenOf(e)) collect(child);
    };
    collect(element);
    this.buffer = new Uint8Array(Buffer.concat(chunks)).buffer;
    return this;
  }
}

/**
 * Any element as its encoding, its first identifier octet and its children: enough for a
 * sniff to tell structures apart, and to see whether an element fills its input.
 */
export class Outline {
  /** The element's encoding as read, header included (BER end-of-contents too). */
  der: Uint8Array = new Uint8Array();
  /** The first identifier octet, e.g. 0x30 for a SEQUENCE. */
  tag = 0;
  children: Outline[] = [];

  fromASN(asn: unknown): this {
    const element = asn as Asn1Element;
    this.der = element.valueBeforeDecodeView;
    this.tag = this.der[0] ?? 0;
    this.children = childrenOf(element).map((child) => new Outline().fromASN(child));
    return this;
  }

  toASN(): never {
    throw new Error('An outline is read, never written.');
  }
}

/** The outline of `bytes` when one element fills them exactly, else undefined. */
export function outlineOf(bytes: Uint8Array): Outline | undefined {
  const outline = tryDecode(bytes, Outline);
  return outline && outline.der.byteLength === bytes.byteLength ? outline : undefined;
}

// ---------------------------------------------------------------------------------------
// The package classes, their OCTET STRINGs read as BER too

/** DigestInfo (RFC 8017), its digest possibly BER-constructed. */
export class BerDigestInfo extends DigestInfo {}
AsnProp({ type: BerOctetString })(BerDigestInfo.prototype, 'digest');

/**
 * ```asn1
 * MacData ::= SEQUENCE {                 -- RFC 7292 §4
 *   mac        DigestInfo,
 *   macSalt    OCTET STRING,
 *   iterations INTEGER DEFAULT 1 }
 * ```
 */
export class BerMacData extends MacData {}
AsnProp({ type: BerDigestInfo })(BerMacData.prototype, 'mac');
AsnProp({ type: BerOctetString })(BerMacData.prototype, 'macSalt');

/**
 * ```asn1
 * EncryptedPrivateKeyInfo ::= SEQUENCE {     -- RFC 5208 §6, PKCS#12's pkcs8ShroudedKeyBag
 *   encryptionAlgorithm AlgorithmIdentifier,
 *   encryptedData       OCTET STRING }
 * ```
 */
export class BerEncryptedPrivateKeyInfo extends EncryptedPrivateKeyInfo {}
AsnProp({ type: BerOctetString })(BerEncryptedPrivateKeyInfo.prototype, 'encryptedData');

/**
 * ```asn1
 * OneAsymmetricKey ::= SEQUENCE {            -- RFC 5958 §2; v1 is PrivateKeyInfo
 *   version             INTEGER { v1(0), v2(1) },
 *   privateKeyAlgorithm AlgorithmIdentifier,
 *   privateKey          OCTET STRING,
 *   attributes          [0] IMPLICIT Attributes OPTIONAL,
 *   publicKey           [1] IMPLICIT BIT STRING OPTIONAL }
 * ```
 */
export class OneAsymmetricKey extends PrivateKeyInfo {
  publicKey?: BitString;
}
AsnProp({ type: BitString, context: 1, implicit: true, optional: true })(
  OneAsymmetricKey.prototype,
  'publicKey',
);

// ---------------------------------------------------------------------------------------
// EC private keys (RFC 5915, RFC 5480)

/**
 * ```asn1
 * ECParameters ::= CHOICE {
 *   namedCurve     OBJECT IDENTIFIER,
 *   implicitCurve  NULL,
 *   specifiedCurve SpecifiedECDomain }     -- explicit parameters, which certkeeper refuses
 * ```
 */
export class EcParameters {
  namedCurve?: string;
  implicitCurve?: null;
  specifiedCurve?: ArrayBuffer;
}
AsnType({ type: AsnTypeTypes.Choice })(EcParameters);
AsnProp({ type: AsnPropTypes.ObjectIdentifier })(EcParameters.prototype, 'namedCurve');
AsnProp({ type: AsnPropTypes.Null })(EcParameters.prototype, 'implicitCurve');
AsnProp({ type: AsnPropTypes.Any })(EcParameters.prototype, 'specifiedCurve');

/**
 * ```asn1
 * ECPrivateKey ::= SEQUENCE {
 *   version    INTEGER { ecPrivkeyVer1(1) },
 *   privateKey OCTET STRING,
 *   parameters [0] ECParameters {{ NamedCurve }} OPTIONAL,
 *   publicKey  [1] BIT STRING OPTIONAL }
 * ```
 */
export class EcPrivateKey {
  version: number | string = 1;
  privateKey = new BerOctetString();
  parameters?: EcParameters;
  publicKey?: BitString;
}
AsnProp({ type: AsnPropTypes.Integer })(EcPrivateKey.prototype, 'version');
AsnProp({ type: BerOctetString })(EcPrivateKey.prototype, 'privateKey');
AsnProp({ type: EcParameters, context: 0, optional: true })(EcPrivateKey.prototype, 'parameters');
AsnProp({ type: BitString, context: 1, optional: true })(EcPrivateKey.prototype, 'publicKey');

// ---------------------------------------------------------------------------------------
// PKCS#5 (RFC 8018), scrypt (RFC 7914), PBMAC1 (RFC 9579)

/**
 * ```asn1
 * PBEParameter ::= SEQUENCE {              -- PBES1; PKCS#12's pkcs-12PbeParams likewise
 *   salt           OCTET STRING,
 *   iterationCount INTEGER }
 * ```
 */
export class PbeParameter {
  salt = new BerOctetString();
  iterationCount: number | string = 0;
}
AsnProp({ type: BerOctetString })(PbeParameter.prototype, 'salt');
AsnProp({ type: AsnPropTypes.Integer })(PbeParameter.prototype, 'iterationCount');

/**
 * ```asn1
 * PBES2-params ::= SEQUENCE {
 *   keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},     -- PBKDF2 or scrypt
 *   encryptionScheme  AlgorithmIdentifier {{PBES2-Encs}} }    -- e.g. aes256-CBC, its IV as parameters
 * ```
 */
export class Pbes2Params {
  keyDerivationFunc = new AlgorithmIdentifier();
  encryptionScheme = new AlgorithmIdentifier();
  constructor(params: Partial<Pbes2Params> = {}) {
    Object.assign(this, params);
  }
}
AsnProp({ type: AlgorithmIdentifier })(Pbes2Params.prototype, 'keyDerivationFunc');
AsnProp({ type: AlgorithmIdentifier })(Pbes2Params.prototype, 'encryptionScheme');

/**
 * ```asn1
 * PBKDF2-params ::= SEQUENCE {
 *   salt           CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
 *   iterationCount INTEGER (1..MAX),
 *   keyLength      INTEGER (1..MAX) OPTIONAL,
 *   prf            AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1 }
 * ```
 */
export class Pbkdf2Params {
  /** The encoded CHOICE: an OCTET STRING (`specified`), else `otherSource`. */
  salt: ArrayBuffer = new ArrayBuffer(0);
  iterationCount: number | string = 0;
  keyLength?: number | string;
  prf?: AlgorithmIdentifier;
  constructor(params: Partial<Pbkdf2Params> = {}) {
    Object.assign(this, params);
  }
}
AsnProp({ type: AsnPropTypes.Any })(Pbkdf2Params.prototype, 'salt');
AsnProp({ type: AsnPropTypes.Integer })(Pbkdf2Params.prototype, 'iterationCount');
AsnProp({ type: AsnPropTypes.Integer, optional: true })(Pbkdf2Params.prototype, 'keyLength');
AsnProp({ type: AlgorithmIdentifier, optional: true })(Pbkdf2Params.prototype, 'prf');

/**
 * ```asn1
 * scrypt-params ::= SEQUENCE {
 *   salt                     OCTET STRING,
 *   costParameter            INTEGER (1..MAX),
 *   blockSize                INTEGER (1..MAX),
 *   parallelizationParameter INTEGER (1..MAX),
 *   keyLength                INTEGER (1..MAX) OPTIONAL }
 * ```
 */
export class ScryptParams {
  salt = new BerOctetString();
  costParameter: number | string = 0;
  blockSize: number | string = 0;
  parallelizationParameter: number | string = 0;
  keyLength?: number | string;
}
AsnProp({ type: BerOctetString })(ScryptParams.prototype, 'salt');
AsnProp({ type: AsnPropTypes.Integer })(ScryptParams.prototype, 'costParameter');
AsnProp({ type: AsnPropTypes.Integer })(ScryptParams.prototype, 'blockSize');
AsnProp({ type: AsnPropTypes.Integer })(ScryptParams.prototype, 'parallelizationParameter');
AsnProp({ type: AsnPropTypes.Integer, optional: true })(ScryptParams.prototype, 'keyLength');

/**
 * ```asn1
 * RC2-CBC-Parameter ::= SEQUENCE {
 *   rc2ParameterVersion INTEGER OPTIONAL,   -- the effective key bits, encoded (RFC 8018 App. B.2.3)
 *   iv                  OCTET STRING (SIZE(8)) }
 * ```
 */
export class Rc2CbcParameter {
  rc2ParameterVersion?: number | string;
  iv = new BerOctetString();
}
AsnProp({ type: AsnPropTypes.Integer, optional: true })(
  Rc2CbcParameter.prototype,
  'rc2ParameterVersion',
);
AsnProp({ type: BerOctetString })(Rc2CbcParameter.prototype, 'iv');

/**
 * ```asn1
 * PBMAC1-params ::= SEQUENCE {
 *   keyDerivationFunc AlgorithmIdentifier {{PBMAC1-KDFs}},    -- PBKDF2
 *   messageAuthScheme AlgorithmIdentifier {{PBMAC1-MACs}} }   -- e.g. hmacWithSHA256
 * ```
 */
export class Pbmac1Params {
  keyDerivationFunc = new AlgorithmIdentifier();
  messageAuthScheme = new AlgorithmIdentifier();
}
AsnProp({ type: AlgorithmIdentifier })(Pbmac1Params.prototype, 'keyDerivationFunc');
AsnProp({ type: AlgorithmIdentifier })(Pbmac1Params.prototype, 'messageAuthScheme');

// ---------------------------------------------------------------------------------------
// PKCS#7 / CMS

/**
 * ```asn1
 * EncryptedData ::= SEQUENCE {            -- PKCS#7 / RFC 5652 §8
 *   version              CMSVersion,      -- 0 without unprotectedAttrs
 *   encryptedContentInfo EncryptedContentInfo,
 *   unprotectedAttrs     [1] IMPLICIT UnprotectedAttributes OPTIONAL }
 * ```
 *
 * asn1-cms's EncryptedContentInfo reads the `[0] IMPLICIT` content in both BER forms.
 */
export class EncryptedData {
  version: number | string = 0;
  encryptedContentInfo = new EncryptedContentInfo();
  constructor(params: Partial<EncryptedData> = {}) {
    Object.assign(this, params);
  }
}
AsnProp({ type: AsnPropTypes.Integer })(EncryptedData.prototype, 'version');
AsnProp({ type: EncryptedContentInfo })(EncryptedData.prototype, 'encryptedContentInfo');
