/**
 * `certkeeper/core`: the library entry point of certkeeper's pure certificate functions.
 *
 * Read any certificate, key or CSR input (PEM, DER, PKCS#7, PKCS#12, encrypted or not)
 * with {@link readMaterial}; describe a certificate as plain JSON with
 * {@link describeCertificate}; order a bag of certificates with {@link buildChain} and
 * validate it with {@link validateServerChain}; check a key against a certificate with
 * {@link matchKeyToCertificate}; generate keys, CSRs and certificates; read and write
 * PKCS#12. No function here does I/O or reads the clock: callers pass bytes and `now`.
 * Every failure is a {@link CoreError} whose stable `code` is one of
 * {@link CORE_ERROR_CODES} (documented in docs/errors.md).
 *
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { describeCertificate, readMaterial } from 'certkeeper/core';
 * const material = await readMaterial(await readFile('fullchain.pem'));
 * for (const { certificate } of material.certificates) {
 *   console.log(describeCertificate(certificate).subject.rfc4514);
 * }
 * ```
 *
 * @module
 */

export {
  type Certificate,
  certificatePublicKey,
  type DistinguishedName,
  formatFingerprint,
  type NameAttribute,
  parseCertificate,
  readValidity,
  sha256Fingerprint,
} from './certificate.js';
export { buildChain, type ChainAssembly, requireCompleteChain } from './chain.js';
export { type Csr, type CsrDescription, describeCsr, parseCsr } from './csr.js';
export {
  type CertificateDescription,
  describeCertificate,
  isSelfSigned,
  type NameDescription,
} from './describe.js';
export { CORE_ERROR_CODES, CoreError, type CoreErrorCode, isCoreError } from './errors.js';
export {
  createCsr,
  createSelfSignedCa,
  generateKeyPair,
  issueCertificate,
  type KeySpec,
  type SubjectAltNames,
  type SubjectFields,
} from './generate.js';
export { certificateCoversHost } from './hostname.js';
export {
  type InspectInput,
  type InspectOptions,
  type InspectProblem,
  type InspectReport,
  inspect,
} from './inspect.js';
export {
  describeKey,
  type KeyDescription,
  type KeyFormat,
  matchKeyToCertificate,
  type ParsedPrivateKey,
  parsePrivateKeyDer,
  parsePrivateKeyPem,
} from './keys.js';
export { looksLikePem, type PemBlock, parsePemBlocks, toPem } from './pem.js';
export { isPkcs7, readPkcs7Certificates } from './pkcs7.js';
export {
  isPkcs12,
  type Pkcs12Certificate,
  type Pkcs12Contents,
  type Pkcs12Key,
  readPkcs12,
  writePkcs12,
} from './pkcs12.js';
export { keyEntriesOf, type Pkcs12KeyEntry, pickKeyEntry } from './pkcs12-entries.js';
export { DEFAULT_POLICY, type Policy } from './policy.js';
export {
  type FoundCertificate,
  type FoundKey,
  type InputFormat,
  type KeyEntryDescription,
  MAX_INPUT_BYTES,
  type Material,
  type ReadOptions,
  type ReadProblem,
  readMaterial,
} from './read.js';
export {
  DEFAULT_MAX_DEPTH,
  type ValidationOptions,
  type ValidationProblem,
  type ValidationResult,
  validateServerChain,
} from './validate.js';
