import * as nodeCrypto from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  pbkdf2,
  randomBytes,
  scrypt,
} from 'node:crypto';
import type { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { CoreError } from './errors.js';
import { legacyDecrypt } from './legacy-ciphers.js';
import {
  decode,
  octets,
  PbeParameter,
  Pbes2Params,
  Pbkdf2Params,
  Rc2CbcParameter,
  ScryptParams,
  safeInteger,
} from './pkcs-schemas.js';

/**
 * Password-based encryption as PKCS#12 and PKCS#8 use it:
 *
 * - PKCS#12 PBE (RFC 7292 App. B and C): the SHA-1 key derivation over the password's
 *   BMPString, with RC2-40/128, 2- and 3-key triple DES, RC4-40/128;
 * - PBES2 (RFC 8018 §6.2) with PBKDF2 or scrypt (RFC 7914) over the password's UTF-8
 *   bytes and AES-CBC, triple DES, DES or RC2-CBC;
 * - PBES1 (RFC 8018 §6.1): PBKDF1 with MD5 or SHA-1 and DES or RC2.
 *
 * Key derivation never blocks the event loop for long: PBKDF2 and scrypt run in Node's
 * thread pool and the iterated hashes of PKCS#12 and PBKDF1 yield every few thousand
 * rounds. A scheme asking for more than {@link MAX_ITERATIONS} is refused when it is
 * read, before any work, and a {@link WorkBudget} bounds the total work one input can ask
 * for. Hashes and most ciphers are node:crypto; single DES, RC2 and RC4, which Node's
 * OpenSSL 3 lacks, come from `legacy-ciphers.ts`.
 */

/** The largest iteration count certkeeper accepts in a PBE scheme or a MAC. */
export const MAX_ITERATIONS = 10_000_000;

/** A password in the two encodings password-based schemes use. */
export interface PbePassword {
  /** PBES1, PBES2 and PBMAC1: the UTF-8 bytes of the password (OpenSSL's convention). */
  utf8: Buffer;
  /**
   * PKCS#12 PBE and MAC (RFC 7292 App. B.1): the BMPString, UTF-16BE followed by two
   * zero bytes. An absent password is zero bytes long; the empty password is `00 00`.
   */
  bmp: Buffer;
}

/** The password in both encodings; `null` is the absent password (not the empty one). */
export function pbePassword(password: string | null): PbePassword {
  if (password === null) return { utf8: Buffer.alloc(0), bmp: Buffer.alloc(0) };
  const utf16 = Buffer.from(password, 'utf16le').swap16();
  return { utf8: Buffer.from(password, 'utf8'), bmp: Buffer.concat([utf16, Buffer.alloc(2)]) };
}

/**
 * The key-derivation work one input may ask for, in units of work (one hash or PRF
 * iteration, or one of scrypt's Salsa20/8 cores) summed over every derivation (each try
 * of each password counts). Spending past it is an `UnsupportedAlgorithm` error, so any
 * input is answered in bounded time.
 */
export class WorkBudget {
  #remaining: number;
  readonly limit: number;

  constructor(limit = 4 * MAX_ITERATIONS) {
    this.limit = limit;
    this.#remaining = limit;
  }

  spend(iterations: number): void {
    if (iterations > this.#remaining) {
      throw new CoreError(
        'UnsupportedAlgorithm',
        `The input asks for more key-derivation work than certkeeper spends on one input (${this.limit.toLocaleString('en-US')} iterations in all).`,
      );
    }
    this.#remaining -= iterations;
  }

  /** The iterations spent so far: how a test or a bench sees the work an input caused. */
  get spent(): number {
    return this.limit - this.#remaining;
  }
}

/** A password-based encryption scheme read from an AlgorithmIdentifier. */
export interface PbeScheme {
  /** e.g. `PBES2 (PBKDF2 hmacWithSHA256, aes-256-cbc, 2048 iterations)`, `pbeWithSHAAnd3-KeyTripleDES-CBC`. */
  description: string;
  iterations: number;
  /**
   * Decrypts `ciphertext`. Resolves undefined when the padding is wrong, which is what a
   * wrong password looks like (a stream cipher has no padding, so it can't tell).
   */
  decrypt(
    password: PbePassword,
    ciphertext: Buffer,
    budget: WorkBudget,
  ): Promise<Buffer | undefined>;
}

// ---------------------------------------------------------------------------------------
// Reading parameters

/** The sentence for parameters whose IV or salt is not an OCTET STRING. */
function noOctets(what: string): string {
  return `The ${what} is damaged: an octet string is missing.`;
}

/** Refuses a zero count, and a count over the cap before any work; `kdf` names the function. */
function checkIterations(iterations: number, what: string, kdf: string): number {
  if (iterations < 1) {
    throw new CoreError('MalformedInput', `The ${what} has an iteration count of zero.`);
  }
  if (iterations > MAX_ITERATIONS) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The ${what} uses ${iterations.toLocaleString('en-US')} ${kdf} iterations; certkeeper allows at most ${MAX_ITERATIONS.toLocaleString('en-US')}.`,
    );
  }
  return iterations;
}

// ---------------------------------------------------------------------------------------
// Hashes and key derivation

/** Output length u and block length v (RFC 7292 App. B.2) of the hashes we derive keys with. */
const HASHES: Record<string, { u: number; v: number }> = {
  md5: { u: 16, v: 64 },
  sha1: { u: 20, v: 64 },
  sha224: { u: 28, v: 64 },
  sha256: { u: 32, v: 64 },
  sha384: { u: 48, v: 128 },
  sha512: { u: 64, v: 128 },
  'sha512-224': { u: 28, v: 128 },
  'sha512-256': { u: 32, v: 128 },
};

/** Digest OIDs (as in a MAC's DigestInfo) and the Node hash names. */
export const DIGEST_OIDS: Record<string, string> = {
  '1.2.840.113549.2.5': 'md5',
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.5': 'sha512-224',
  '2.16.840.1.101.3.4.2.6': 'sha512-256',
};

/** PBKDF2 pseudo-random functions (RFC 8018 App. B.1) and the Node hash names. */
export const PRF_OIDS: Record<string, { name: string; hash: string }> = {
  '1.2.840.113549.2.7': { name: 'hmacWithSHA1', hash: 'sha1' },
  '1.2.840.113549.2.8': { name: 'hmacWithSHA224', hash: 'sha224' },
  '1.2.840.113549.2.9': { name: 'hmacWithSHA256', hash: 'sha256' },
  '1.2.840.113549.2.10': { name: 'hmacWithSHA384', hash: 'sha384' },
  '1.2.840.113549.2.11': { name: 'hmacWithSHA512', hash: 'sha512' },
  '1.2.840.113549.2.12': { name: 'hmacWithSHA512-224', hash: 'sha512-224' },
  '1.2.840.113549.2.13': { name: 'hmacWithSHA512-256', hash: 'sha512-256' },
};

export const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  scrypt: '1.3.6.1.4.1.11591.4.11',
  pbmac1: '1.2.840.113549.1.5.14',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

// crypto.hash (Node ≥ 20.12) is a one-shot digest, about twice as fast as createHash.
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer })
  .hash;
const digest = (alg: string, data: Buffer): Buffer =>
  oneShot ? oneShot(alg, data, 'buffer') : createHash(alg).update(data).digest();

/** Rounds of an iterated hash between two yields to the event loop. */
const ROUNDS_PER_SLICE = 8192;

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** `count` applications of the hash to `input`, yielding to the event loop regularly. */
async function iterateHash(alg: string, input: Buffer, count: number): Promise<Buffer> {
  if (count < 1) return input;
  let value = digest(alg, input);
  for (let i = 1; i < count; i++) {
    value = digest(alg, value);
    if (i % ROUNDS_PER_SLICE === 0) await nextTick();
  }
  return value;
}

/** Which PKCS#12 key material to derive (RFC 7292 App. B.3). */
export const KDF_ID = { key: 1, iv: 2, mac: 3 } as const;

/** The blocks a PKCS#12 derivation of `length` bytes computes (for the work budget). */
export function pkcs12KdfBlocks(hashName: string, length: number): number {
  return Math.ceil(length / (HASHES[hashName]?.u ?? 20));
}

/**
 * The PKCS#12 key derivation (RFC 7292 App. B.2): `length` bytes from the password's
 * BMPString, the salt, a purpose ID (1 key, 2 IV, 3 MAC) and an iteration count.
 */
export async function pkcs12Kdf(
  hashName: string,
  password: Buffer,
  salt: Buffer,
  id: number,
  iterations: number,
  length: number,
): Promise<Buffer> {
  const h = HASHES[hashName];
  if (!h) {
    throw new CoreError('UnsupportedAlgorithm', `The hash ${hashName} is not supported here.`);
  }
  const { u, v } = h;
  const fill = (src: Buffer) => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    const A = await iterateHash(hashName, Buffer.concat([D, I]), iterations);
    blocks.push(A);
    if (produced + u >= length) break;
    // I_j = (I_j + B + 1) mod 2^(8v), B being A repeated to v bytes.
    const B = Buffer.alloc(v);
    for (let i = 0; i < v; i++) B[i] = A[i % u]!;
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** PBKDF2 in Node's thread pool. */
export function pbkdf2Async(
  password: Buffer,
  salt: Buffer,
  iterations: number,
  length: number,
  hash: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, length, hash, (err, key) => {
      if (err) {
        reject(
          new CoreError('UnsupportedAlgorithm', `PBKDF2 with ${hash} is not available.`, {
            cause: err,
          }),
        );
      } else resolve(key);
    });
  });
}

// ---------------------------------------------------------------------------------------
// Ciphers

type CipherName =
  | 'aes-128-cbc'
  | 'aes-192-cbc'
  | 'aes-256-cbc'
  | 'des-ede3-cbc'
  | 'des-cbc'
  | 'rc2-cbc'
  | 'rc4';

const BLOCK: Record<CipherName, number> = {
  'aes-128-cbc': 16,
  'aes-192-cbc': 16,
  'aes-256-cbc': 16,
  'des-ede3-cbc': 8,
  'des-cbc': 8,
  'rc2-cbc': 8,
  rc4: 1,
};

/** Raw CBC (or RC4) decryption, no padding removed. */
function rawDecrypt(
  cipher: CipherName,
  key: Buffer,
  iv: Buffer,
  data: Buffer,
  rc2Bits: number,
): Buffer {
  if (cipher === 'des-cbc' || cipher === 'rc2-cbc' || cipher === 'rc4') {
    return legacyDecrypt(cipher, key, iv, data, rc2Bits);
  }
  const d = createDecipheriv(cipher, key, iv);
  d.setAutoPadding(false);
  return Buffer.concat([d.update(data), d.final()]);
}

/** Decrypts and removes PKCS#7 padding; undefined when the padding is wrong. */
function decryptAndUnpad(
  cipher: CipherName,
  key: Buffer,
  iv: Buffer,
  data: Buffer,
  rc2Bits = 0,
): Buffer | undefined {
  const block = BLOCK[cipher];
  if (block === 1) return rawDecrypt(cipher, key, iv, data, rc2Bits);
  if (data.length === 0 || data.length % block !== 0) {
    throw new CoreError(
      'MalformedInput',
      'The encrypted data is damaged: it is not a whole number of cipher blocks.',
    );
  }
  const plain = rawDecrypt(cipher, key, iv, data, rc2Bits);
  const pad = plain[plain.length - 1]!;
  if (pad < 1 || pad > block) return undefined;
  for (let i = plain.length - pad; i < plain.length; i++) {
    if (plain[i] !== pad) return undefined;
  }
  return plain.subarray(0, plain.length - pad);
}

// ---------------------------------------------------------------------------------------
// Schemes

/** PKCS#12 PBE schemes (RFC 7292 App. C). */
const PKCS12_PBE: Record<
  string,
  { name: string; cipher: CipherName; keyLength: number; rc2Bits?: number }
> = {
  '1.2.840.113549.1.12.1.1': { name: 'pbeWithSHAAnd128BitRC4', cipher: 'rc4', keyLength: 16 },
  '1.2.840.113549.1.12.1.2': { name: 'pbeWithSHAAnd40BitRC4', cipher: 'rc4', keyLength: 5 },
  '1.2.840.113549.1.12.1.3': {
    name: 'pbeWithSHAAnd3-KeyTripleDES-CBC',
    cipher: 'des-ede3-cbc',
    keyLength: 24,
  },
  '1.2.840.113549.1.12.1.4': {
    name: 'pbeWithSHAAnd2-KeyTripleDES-CBC',
    cipher: 'des-ede3-cbc',
    keyLength: 16,
  },
  '1.2.840.113549.1.12.1.5': {
    name: 'pbeWithSHAAnd128BitRC2-CBC',
    cipher: 'rc2-cbc',
    keyLength: 16,
    rc2Bits: 128,
  },
  '1.2.840.113549.1.12.1.6': {
    name: 'pbeWithSHAAnd40BitRC2-CBC',
    cipher: 'rc2-cbc',
    keyLength: 5,
    rc2Bits: 40,
  },
};

/** PBES1 schemes (RFC 8018 §6.1, App. A.3). MD2 is not offered by Node. */
const PBES1: Record<string, { name: string; hash: string; cipher: 'des-cbc' | 'rc2-cbc' }> = {
  '1.2.840.113549.1.5.3': { name: 'pbeWithMD5AndDES-CBC', hash: 'md5', cipher: 'des-cbc' },
  '1.2.840.113549.1.5.6': { name: 'pbeWithMD5AndRC2-CBC', hash: 'md5', cipher: 'rc2-cbc' },
  '1.2.840.113549.1.5.10': { name: 'pbeWithSHA1AndDES-CBC', hash: 'sha1', cipher: 'des-cbc' },
  '1.2.840.113549.1.5.11': { name: 'pbeWithSHA1AndRC2-CBC', hash: 'sha1', cipher: 'rc2-cbc' },
};

/** PBES2 encryption schemes (RFC 8018 App. B.2) and their key lengths. */
const PBES2_CIPHERS: Record<string, { cipher: CipherName; keyLength: number }> = {
  '2.16.840.1.101.3.4.1.2': { cipher: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { cipher: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { cipher: 'aes-256-cbc', keyLength: 32 },
  '1.2.840.113549.3.7': { cipher: 'des-ede3-cbc', keyLength: 24 },
  '1.3.14.3.2.7': { cipher: 'des-cbc', keyLength: 8 },
  '1.2.840.113549.3.2': { cipher: 'rc2-cbc', keyLength: 16 },
};

/** Names of schemes we recognise but don't implement, for a clear error. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  '1.2.840.113549.1.5.1': 'pbeWithMD2AndDES-CBC (MD2 is not available)',
  '1.2.840.113549.1.5.4': 'pbeWithMD2AndRC2-CBC (MD2 is not available)',
  '2.16.840.1.101.3.4.1.6': 'aes-128-gcm',
  '2.16.840.1.101.3.4.1.26': 'aes-192-gcm',
  '2.16.840.1.101.3.4.1.46': 'aes-256-gcm',
  '1.2.840.113549.1.9.16.3.18': 'chacha20-poly1305',
};

function unsupported(what: string, oid: string): CoreError {
  const known = KNOWN_UNSUPPORTED[oid];
  return new CoreError(
    'UnsupportedAlgorithm',
    known
      ? `The ${what} uses ${known}, which certkeeper does not support.`
      : `The ${what} uses an encryption algorithm certkeeper does not know (OID ${oid}).`,
  );
}

/** PBEParameter / pkcs-12PbeParams: SEQUENCE { salt OCTET STRING, iterations INTEGER }. */
function readSaltAndIterations(params: ArrayBuffer | null | undefined, what: string, kdf: string) {
  const { salt, iterationCount } = decode(params, PbeParameter, what);
  return {
    salt: Buffer.from(salt.buffer),
    iterations: checkIterations(safeInteger(iterationCount, what), what, kdf),
  };
}

/**
 * The encryption scheme named by an AlgorithmIdentifier (the `encryptionAlgorithm` of an
 * EncryptedPrivateKeyInfo, or the `contentEncryptionAlgorithm` of PKCS#7 EncryptedData).
 * `what` names the part for error messages, e.g. "encrypted private key".
 */
export function parsePbeAlgorithm(algorithm: AlgorithmIdentifier, what: string): PbeScheme {
  const { algorithm: oid, parameters: params } = algorithm;
  const p12 = PKCS12_PBE[oid];
  if (p12) {
    const { salt, iterations } = readSaltAndIterations(params, what, 'PKCS#12 SHA-1');
    const ivLength = p12.cipher === 'rc4' ? 0 : 8;
    return {
      description: p12.name,
      iterations,
      async decrypt(password, ciphertext, budget) {
        budget.spend(iterations * (pkcs12KdfBlocks('sha1', p12.keyLength) + (ivLength ? 1 : 0)));
        let key = await pkcs12Kdf(
          'sha1',
          password.bmp,
          salt,
          KDF_ID.key,
          iterations,
          p12.keyLength,
        );
        const iv = ivLength
          ? await pkcs12Kdf('sha1', password.bmp, salt, KDF_ID.iv, iterations, ivLength)
          : Buffer.alloc(0);
        // Two-key triple DES is K1 K2 K1.
        if (p12.keyLength === 16 && p12.cipher === 'des-ede3-cbc') {
          key = Buffer.concat([key, key.subarray(0, 8)]);
        }
        return decryptAndUnpad(p12.cipher, key, iv, ciphertext, p12.rc2Bits);
      },
    };
  }
  const pbes1 = PBES1[oid];
  if (pbes1) {
    const { salt, iterations } = readSaltAndIterations(params, what, 'PBKDF1');
    return {
      description: pbes1.name,
      iterations,
      async decrypt(password, ciphertext, budget) {
        budget.spend(iterations);
        // PBKDF1: T_1 = H(P || S), T_i = H(T_{i-1}); key = DK[0..8], IV = DK[8..16].
        const first = digest(pbes1.hash, Buffer.concat([password.utf8, salt]));
        const dk = await iterateHash(pbes1.hash, first, iterations - 1);
        return decryptAndUnpad(pbes1.cipher, dk.subarray(0, 8), dk.subarray(8, 16), ciphertext, 64);
      },
    };
  }
  if (oid === OID.pbes2) return parsePbes2(params, what);
  throw unsupported(what, oid);
}

/**
 * PBES2 (RFC 8018 §6.2): the schemas are in `pkcs-schemas.ts`. The encryption scheme's
 * parameters are the IV, an OCTET STRING, except for RC2-CBC, whose RC2-CBC-Parameter
 * also encodes the effective key bits (a bare IV is accepted too).
 */
function parsePbes2(params: ArrayBuffer | null | undefined, what: string): PbeScheme {
  const { keyDerivationFunc, encryptionScheme: enc } = decode(params, Pbes2Params, what);
  const kdf = readPbes2Kdf(keyDerivationFunc, what);
  const spec = PBES2_CIPHERS[enc.algorithm];
  if (!spec) throw unsupported(what, enc.algorithm);
  let iv: Buffer;
  let rc2Bits = 32;
  if (spec.cipher === 'rc2-cbc' && enc.parameters && new Uint8Array(enc.parameters)[0] === 0x30) {
    const rc2 = decode(enc.parameters, Rc2CbcParameter, what);
    if (rc2.rc2ParameterVersion !== undefined) {
      const version = safeInteger(rc2.rc2ParameterVersion, what);
      rc2Bits = ({ 160: 40, 120: 64, 58: 128 } as Record<number, number>)[version] ?? version;
    }
    iv = Buffer.from(rc2.iv.buffer);
  } else {
    iv = octets(enc.parameters, what, noOctets(what));
  }
  if (spec.cipher === 'rc2-cbc' && (rc2Bits < 1 || rc2Bits > 1024)) {
    throw new CoreError('MalformedInput', `The ${what} has an invalid RC2 key size.`);
  }
  const block = BLOCK[spec.cipher];
  if (iv.length !== block) {
    throw new CoreError('MalformedInput', `The ${what} has an IV of the wrong length.`);
  }
  const keyLength =
    kdf.keyLength ?? (spec.cipher === 'rc2-cbc' ? Math.ceil(rc2Bits / 8) : spec.keyLength);
  if (spec.cipher !== 'rc2-cbc' && keyLength !== spec.keyLength) {
    throw new CoreError(
      'MalformedInput',
      `The ${what} asks for a ${keyLength}-byte key for ${spec.cipher}, which needs ${spec.keyLength}.`,
    );
  }
  if (keyLength < 1 || keyLength > 128) {
    throw new CoreError('MalformedInput', `The ${what} asks for an invalid key length.`);
  }
  return {
    description: `PBES2 (${kdf.name}, ${spec.cipher}${kdf.scrypt ? '' : `, ${kdf.iterations} iterations`})`,
    iterations: kdf.iterations,
    async decrypt(password, ciphertext, budget) {
      budget.spend(kdf.cost(keyLength));
      const key = await kdf.derive(password.utf8, keyLength);
      return decryptAndUnpad(spec.cipher, key, iv, ciphertext, rc2Bits);
    },
  };
}

/** A PBES2 key-derivation function, read: what it costs and how to run it. */
interface Pbes2Kdf {
  /** e.g. `PBKDF2 hmacWithSHA256`, `scrypt N=16384 r=8 p=1`. */
  name: string;
  /** PBKDF2's iteration count; for scrypt, its cost in the same units. */
  iterations: number;
  scrypt: boolean;
  keyLength: number | undefined;
  /** The work, in {@link WorkBudget} units, of deriving `length` bytes. */
  cost(length: number): number;
  derive(password: Buffer, length: number): Promise<Buffer>;
}

function readPbes2Kdf(algorithm: AlgorithmIdentifier, what: string): Pbes2Kdf {
  if (algorithm.algorithm === OID.scrypt) return readScrypt(algorithm.parameters, what);
  const kdf = readPbkdf2(algorithm, what);
  const hLen = HASHES[kdf.prf.hash]?.u ?? 32;
  return {
    name: `PBKDF2 ${kdf.prf.name}`,
    iterations: kdf.iterations,
    scrypt: false,
    keyLength: kdf.keyLength,
    cost: (length) => kdf.iterations * Math.ceil(length / hLen),
    derive: (password, length) =>
      pbkdf2Async(password, kdf.salt, kdf.iterations, length, kdf.prf.hash),
  };
}

/**
 * scrypt (RFC 7914 §7.1), its parameters `scrypt-params` (`pkcs-schemas.ts`).
 *
 * Its work is counted as 4·N·r·p Salsa20/8 cores (ROMix runs BlockMix 2N times, each of
 * 2r cores, for each of p blocks), a unit as cheap as one hash of an iterated KDF, so the
 * same cap and budget hold; that also bounds its memory, 128·N·r bytes.
 */
function readScrypt(params: ArrayBuffer | null | undefined, what: string): Pbes2Kdf {
  const parsed = decode(params, ScryptParams, what);
  const salt = Buffer.from(parsed.salt.buffer);
  const n = safeInteger(parsed.costParameter, what);
  const r = safeInteger(parsed.blockSize, what);
  const p = safeInteger(parsed.parallelizationParameter, what);
  const keyLength =
    parsed.keyLength === undefined ? undefined : safeInteger(parsed.keyLength, what);
  if (n < 2 || (n & (n - 1)) !== 0 || n > 2 ** 30 || r < 1 || p < 1) {
    throw new CoreError(
      'MalformedInput',
      `The ${what} has invalid scrypt parameters (N must be a power of two, r and p at least 1).`,
    );
  }
  const name = `scrypt N=${n} r=${r} p=${p}`;
  const work = 4 * n * r * p;
  if (work > MAX_ITERATIONS) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The ${what} uses ${name}, ${work.toLocaleString('en-US')} units of work; certkeeper allows at most ${MAX_ITERATIONS.toLocaleString('en-US')}.`,
    );
  }
  return {
    name,
    iterations: work,
    scrypt: true,
    keyLength,
    cost: () => work,
    derive: (password, length) =>
      new Promise((resolve, reject) => {
        const maxmem = 128 * n * r + 128 * r * p + (1 << 20);
        scrypt(password, salt, length, { N: n, r, p, maxmem }, (err, key) => {
          if (err) {
            reject(
              new CoreError('UnsupportedAlgorithm', 'scrypt is not available.', { cause: err }),
            );
          } else resolve(key);
        });
      }),
  };
}

/** The parameters of a PBKDF2 AlgorithmIdentifier (also the KDF of PBMAC1). */
export function readPbkdf2(
  kdf: AlgorithmIdentifier,
  what: string,
): {
  salt: Buffer;
  iterations: number;
  keyLength: number | undefined;
  prf: { name: string; hash: string };
} {
  if (kdf.algorithm !== OID.pbkdf2) throw unsupported(what, kdf.algorithm);
  const params = decode(kdf.parameters, Pbkdf2Params, what);
  // The salt is a CHOICE: an OCTET STRING (primitive or BER-constructed) is `specified`.
  const saltTag = new Uint8Array(params.salt)[0]! & ~0x20;
  if (saltTag !== 0x04) {
    throw new CoreError(
      'UnsupportedAlgorithm',
      `The ${what} takes its PBKDF2 salt from another source, which certkeeper does not support.`,
    );
  }
  const salt = octets(params.salt, what, noOctets(what));
  const iterations = checkIterations(safeInteger(params.iterationCount, what), what, 'PBKDF2');
  const keyLength =
    params.keyLength === undefined ? undefined : safeInteger(params.keyLength, what);
  let prf = PRF_OIDS['1.2.840.113549.2.7']!;
  if (params.prf) {
    const prfOid = params.prf.algorithm;
    const known = PRF_OIDS[prfOid];
    if (!known) {
      throw new CoreError(
        'UnsupportedAlgorithm',
        `The ${what} uses a PBKDF2 pseudo-random function certkeeper does not know (OID ${prfOid}).`,
      );
    }
    prf = known;
  }
  return { salt, iterations, keyLength, prf };
}

// ---------------------------------------------------------------------------------------
// Encryption (what certkeeper writes)

/** PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC: random 16-byte salt and IV. */
export async function encryptPbes2Aes256(
  plaintext: Buffer,
  password: PbePassword,
  iterations: number,
): Promise<{ salt: Buffer; iv: Buffer; iterations: number; ciphertext: Buffer }> {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = await pbkdf2Async(password.utf8, salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { salt, iv, iterations, ciphertext };
}
