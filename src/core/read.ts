import type { KeyObject } from 'node:crypto';
import { type Certificate, parseCertificate } from './certificate.js';
import { type Csr, parseCsr } from './csr.js';
import { readChildren, readTlv, TAG } from './der.js';
import { CoreError, type CoreErrorCode, isCoreError } from './errors.js';
import {
  describeKey,
  type KeyDescription,
  type KeyFormat,
  parsePrivateKeyDer,
  parsePrivateKeyPem,
  sniffPrivateKeyDer,
} from './keys.js';
import { WorkBudget } from './pbe.js';
import { looksLikePem, type PemBlock, parsePemBlocks } from './pem.js';
import { isPkcs7ContentInfo, readPkcs7Certificates } from './pkcs7.js';
import { isPkcs12, type Pkcs12Contents, readPkcs12 } from './pkcs12.js';
import { keyEntriesOf, pickKeyEntry } from './pkcs12-entries.js';

/** The largest input `readMaterial` accepts: 1 MiB, enough for any real bundle. */
export const MAX_INPUT_BYTES = 1 << 20;

/** What a file turned out to be, decided from its bytes alone. */
export type InputFormat =
  | 'pem'
  | 'der-certificate'
  | 'der-pkcs7'
  | 'der-pkcs12'
  | 'der-private-key'
  | 'der-csr';

/** A private key found in the input, with how it was stored. */
export interface FoundKey {
  key: KeyObject;
  format: KeyFormat | 'pkcs12';
  encrypted: boolean;
  /** Where it came from: the PEM block number, or the PKCS#12 friendly name. */
  origin: string;
  /** The alias of its keystore (PKCS#12) key entry, when it has one. */
  alias?: string;
}

/** A certificate found in the input, with where it came from. */
export interface FoundCertificate {
  certificate: Certificate;
  /** e.g. 'PEM block 2', 'PKCS#7', 'PKCS#12 "name"'. */
  origin: string;
}

/** A part of the input that was recognised but could not be used, and why. */
export interface ReadProblem {
  origin: string;
  code: CoreErrorCode;
  message: string;
}

/** Everything one input holds. */
export interface Material {
  format: InputFormat;
  certificates: FoundCertificate[];
  keys: FoundKey[];
  csrs: Csr[];
  /** PEM blocks that are valid but not ours to use (PUBLIC KEY, EC PARAMETERS…). */
  ignored: string[];
  /** Recognised parts that failed; the rest of the input was still read. */
  problems: ReadProblem[];
  /** Present when the input was a PKCS#12 file: how it was protected and how entries pair. */
  pkcs12?: Omit<Pkcs12Contents, 'keys' | 'certificates'> & {
    friendlyNames: { keys: (string | undefined)[]; certificates: (string | undefined)[] };
    /** Every key entry of the file, also when `keyAlias` picked one of them. */
    keyEntries: KeyEntryDescription[];
  };
}

/** A keystore's key entry as plain JSON: its alias, its key, its certificate's subject. */
export interface KeyEntryDescription {
  alias: string | null;
  key: Pick<KeyDescription, 'type' | 'bits' | 'curve'> | { type: string };
  /** The subject of the certificate paired with the key (RFC 4514), if the file holds it. */
  subject: string | null;
  /** True for the entry `keyAlias` picked, or for every entry when none had to be picked. */
  chosen: boolean;
}

/** How `readMaterial` reads its input. */
export interface ReadOptions {
  password?: string | undefined;
  /**
   * The alias of the keystore (PKCS#12) key entry to read, for a keystore with several;
   * the other entries' keys and certificates are left out. A key that is not in a
   * keystore has no alias, so naming one for it is `KeyAliasNotFound`.
   */
  keyAlias?: string | undefined;
  /** Read every key entry of a keystore instead of requiring one (`inspect` lists them). */
  allKeyEntries?: boolean;
  /** The work budget of the whole input (a fresh one when absent). */
  budget?: WorkBudget;
}

/** The options as the readers take them: with the input's one budget. */
type BudgetedOptions = ReadOptions & { budget: WorkBudget };

const CERTIFICATE_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE']);
const KEY_LABELS = new Set([
  'PRIVATE KEY',
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
  'DSA PRIVATE KEY',
  'ENCRYPTED PRIVATE KEY',
]);
const CSR_LABELS = new Set(['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
const PKCS7_LABELS = new Set(['PKCS7', 'CMS', 'PKCS #7 SIGNED DATA']);
const IGNORED_LABELS = new Set([
  'PUBLIC KEY',
  'RSA PUBLIC KEY',
  'EC PARAMETERS',
  'DH PARAMETERS',
  'DSA PARAMETERS',
]);

/** What a CRL is answered with, in PEM and in DER alike: it is not ours to import. */
const CRL_MESSAGE =
  'is a certificate revocation list (CRL), not a certificate, key or CSR; certkeeper does not import CRLs.';

/**
 * Reads whatever the bytes hold: certificates, private keys, CSRs, from PEM (any mix
 * of blocks), DER, PKCS#7 or PKCS#12. The format comes from the bytes, never a file
 * name. Parts that fail are reported in `problems` while the rest is still read; when
 * nothing at all could be read, the first problem is thrown (or `UnsupportedFormat`).
 * A keystore with several key entries needs `keyAlias` (`KeyAliasRequired`, naming
 * them) unless `allKeyEntries`. Every key derivation the input asks for (each encrypted
 * key, each PKCS#12 MAC and bag) is charged to one `WorkBudget`, `options.budget` or a
 * fresh one, so the whole input is answered in bounded time however many blocks it holds.
 */
export async function readMaterial(
  bytes: Uint8Array,
  options: ReadOptions = {},
): Promise<Material> {
  // One budget for the whole input: every key derivation of every block draws on it.
  const budgeted: BudgetedOptions = { ...options, budget: options.budget ?? new WorkBudget() };
  if (bytes.length > MAX_INPUT_BYTES) {
    throw new CoreError(
      'InputTooLarge',
      `The input is ${bytes.length} bytes; the limit is ${MAX_INPUT_BYTES} bytes (1 MiB).`,
    );
  }
  if (bytes.length === 0) throw new CoreError('UnsupportedFormat', 'The input is empty.');
  const material: Material = {
    format: 'pem',
    certificates: [],
    keys: [],
    csrs: [],
    ignored: [],
    problems: [],
  };
  if (looksLikePem(bytes)) {
    const blocks = parsePemBlocks(bytes);
    if (blocks.length === 0) {
      throw new CoreError(
        'MalformedInput',
        'The input has a PEM BEGIN line but no complete block.',
      );
    }
    for (const [i, block] of blocks.entries()) {
      const origin = `PEM block ${i + 1} (${block.label})`;
      try {
        await readPemBlock(block, origin, budgeted, material);
      } catch (err) {
        material.problems.push(problemFrom(origin, err));
      }
    }
  } else {
    await readDer(Buffer.from(bytes), budgeted, material);
  }
  if (options.keyAlias !== undefined && !material.pkcs12 && material.keys.length > 0) {
    throw new CoreError(
      'KeyAliasNotFound',
      `A key alias (${JSON.stringify(options.keyAlias)}) names a keystore entry, but this private key is not in a keystore (PKCS#12); leave out the key alias.`,
    );
  }
  const found = material.certificates.length + material.keys.length + material.csrs.length;
  if (found === 0 && material.problems.length > 0) {
    const first = material.problems[0]!;
    throw new CoreError(first.code, first.message);
  }
  if (found === 0 && material.ignored.length === 0) {
    throw new CoreError('UnsupportedFormat', 'The input holds no certificate, key or CSR.');
  }
  return material;
}

async function readPemBlock(
  block: PemBlock,
  origin: string,
  options: BudgetedOptions,
  material: Material,
): Promise<void> {
  const { label } = block;
  const { password, budget } = options;
  if (CERTIFICATE_LABELS.has(label)) {
    // A TRUSTED CERTIFICATE is the certificate followed by OpenSSL's trust settings.
    const der = label === 'TRUSTED CERTIFICATE' ? firstElement(block.der) : block.der;
    material.certificates.push({ certificate: parseCertificate(der), origin });
  } else if (KEY_LABELS.has(label)) {
    const parsed = await parsePrivateKeyPem(block, password, { budget });
    material.keys.push({ ...parsed, origin });
  } else if (CSR_LABELS.has(label)) {
    material.csrs.push(parseCsr(block.der));
  } else if (PKCS7_LABELS.has(label)) {
    for (const certificate of readPkcs7Certificates(block.der)) {
      material.certificates.push({ certificate, origin });
    }
  } else if (label === 'PKCS12') {
    await readPkcs12Into(block.der, options, material);
  } else if (label === 'X509 CRL') {
    throw new CoreError('UnsupportedFormat', `${origin} ${CRL_MESSAGE}`);
  } else if (IGNORED_LABELS.has(label)) {
    material.ignored.push(origin);
  } else {
    throw new CoreError('UnsupportedFormat', `A PEM block labelled "${label}" is not supported.`);
  }
}

async function readDer(der: Buffer, options: BudgetedOptions, material: Material): Promise<void> {
  const { password, budget } = options;
  let top: ReturnType<typeof readTlv>;
  try {
    top = readTlv(der);
  } catch {
    throw new CoreError(
      'UnsupportedFormat',
      'The input is neither PEM text nor DER: it is not a certificate, key, CSR, PKCS#7 or PKCS#12.',
    );
  }
  if (top.tag !== TAG.SEQUENCE || top.end !== der.length) {
    throw new CoreError(
      'UnsupportedFormat',
      'The input is neither PEM text nor DER: it is not a certificate, key, CSR, PKCS#7 or PKCS#12.',
    );
  }
  if (isPkcs12(der)) {
    material.format = 'der-pkcs12';
    await readPkcs12Into(der, options, material);
    return;
  }
  if (isPkcs7ContentInfo(der)) {
    material.format = 'der-pkcs7';
    for (const certificate of readPkcs7Certificates(der)) {
      material.certificates.push({ certificate, origin: 'PKCS#7' });
    }
    return;
  }
  const keyFormat = sniffPrivateKeyDer(der);
  if (keyFormat) {
    material.format = 'der-private-key';
    material.keys.push({ ...(await parsePrivateKeyDer(der, password, { budget })), origin: 'DER' });
    return;
  }
  switch (sniffSignedStructure(der)) {
    case 'certificate':
      material.format = 'der-certificate';
      material.certificates.push({ certificate: parseCertificate(der), origin: 'DER' });
      return;
    case 'csr':
      material.format = 'der-csr';
      material.csrs.push(parseCsr(der));
      return;
    case 'crl':
      throw new CoreError('UnsupportedFormat', `The DER data ${CRL_MESSAGE}`);
    default:
      throw new CoreError(
        'UnsupportedFormat',
        'The DER data is not a certificate, key, CSR, PKCS#7 or PKCS#12 structure.',
      );
  }
}

async function readPkcs12Into(
  der: Uint8Array,
  options: BudgetedOptions,
  material: Material,
): Promise<void> {
  const contents = await readPkcs12(der, options.password, { budget: options.budget });
  const entries = keyEntriesOf(contents);
  const picked = options.allKeyEntries ? contents : pickKeyEntry(contents, options.keyAlias);
  for (const entry of entries) {
    if (!picked.keys.includes(entry.key)) continue;
    material.keys.push({
      key: entry.key.key,
      format: 'pkcs12',
      encrypted: true,
      origin: entry.alias ? `PKCS#12 "${entry.alias}"` : 'PKCS#12',
      ...(entry.alias !== undefined ? { alias: entry.alias } : {}),
    });
  }
  for (const c of picked.certificates) {
    material.certificates.push({
      certificate: c.certificate,
      origin: c.friendlyName ? `PKCS#12 "${c.friendlyName}"` : 'PKCS#12',
    });
  }
  const { keys, certificates, ...rest } = contents;
  material.pkcs12 = {
    ...rest,
    friendlyNames: {
      keys: keys.map((k) => k.friendlyName),
      certificates: certificates.map((c) => c.friendlyName),
    },
    keyEntries: entries.map((e) => ({
      alias: e.alias ?? null,
      key: keyTypeOf(e.key.key),
      subject: e.certificate?.certificate.subject.rfc4514 ?? null,
      chosen: picked.keys.includes(e.key),
    })),
  };
}

/** The type and size of a key, or just Node's name for a type certkeeper doesn't describe. */
function keyTypeOf(key: KeyObject): KeyEntryDescription['key'] {
  try {
    const { type, bits, curve } = describeKey(key);
    return {
      type,
      ...(bits === undefined ? {} : { bits }),
      ...(curve === undefined ? {} : { curve }),
    };
  } catch {
    return { type: key.asymmetricKeyType ?? 'unknown' };
  }
}

/**
 * Certificates, CSRs and CRLs share the shape SEQUENCE { SEQUENCE info,
 * AlgorithmIdentifier, BIT STRING }. A TBSCertificate starts with [0] version or an INTEGER serial followed
 * by an AlgorithmIdentifier; a CertificationRequestInfo starts with INTEGER 0 followed
 * by a Name (a SEQUENCE of SETs).
 */
function sniffSignedStructure(der: Buffer): 'certificate' | 'csr' | 'crl' | undefined {
  try {
    const children = readChildren(der, readTlv(der));
    if (children.length !== 3 || children[0]!.tag !== TAG.SEQUENCE) return undefined;
    if (children[2]!.tag !== TAG.BIT_STRING) return undefined;
    const info = readChildren(der, children[0]!);
    if (info[0]?.tag === TAG.CONTEXT_0) return 'certificate';
    // TBSCertList: version? AlgorithmIdentifier, Name, thisUpdate (UTCTime/GeneralizedTime).
    const afterName = info.findIndex((t, i) => i > 0 && (t.tag === 0x17 || t.tag === 0x18));
    if (afterName === 2 || afterName === 3) return 'crl';
    if (info[0]?.tag !== TAG.INTEGER || !info[1]) return undefined;
    if (info[1].tag === TAG.SEQUENCE) {
      const inner = readChildren(der, info[1]);
      // AlgorithmIdentifier starts with an OID; a Name holds SETs.
      if (inner.length === 0 || inner[0]!.tag === TAG.SET) return 'csr';
      if (inner[0]!.tag === TAG.OID) return 'certificate';
    }
    return undefined;
  } catch {
    return undefined;
  }
}

function firstElement(der: Buffer): Buffer {
  const tlv = readTlv(der);
  return der.subarray(tlv.start, tlv.end);
}

function problemFrom(origin: string, err: unknown): ReadProblem {
  if (isCoreError(err)) return { origin, code: err.code, message: err.message };
  return { origin, code: 'MalformedInput', message: `${origin} could not be read.` };
}
