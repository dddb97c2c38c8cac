/**
 * The catalogue of `core/` error codes. Every failure of `core/` is a `CoreError`
 * carrying one of these codes and a sentence a person understands. Callers branch
 * on `code`, never on the message. A retired code is never reused.
 */
export const CORE_ERROR_CODES = {
  UnsupportedFormat: 'The bytes are not a certificate, key, CSR, PKCS#7 or PKCS#12 we can read.',
  UnsupportedAlgorithm:
    'The input is recognised but uses an algorithm certkeeper does not support.',
  MalformedInput: 'The input is recognised but its structure is damaged or invalid.',
  InputTooLarge: 'The input is larger or more complex than the accepted limit.',
  PasswordRequired: 'The input is encrypted and no password was given.',
  WrongPassword: 'The password does not open the encrypted input.',
  KeyMismatch: 'The private key does not belong to the certificate.',
  NoCertificate: 'No certificate was found in the input.',
  NoPrivateKey: 'No private key was found in the input.',
  KeyAliasRequired: 'The keystore holds several key entries; name the one to use by its alias.',
  KeyAliasNotFound: 'No key entry of the keystore has the alias given.',
  AmbiguousLeaf: 'More than one certificate could be the leaf; name the one you mean.',
  ChainIncomplete: 'The chain is missing an issuer certificate.',
  ChainInvalid: 'The chain does not validate.',
  SignatureInvalid: 'A signature in the chain does not verify.',
  CertificateExpired: 'A certificate in the chain has expired.',
  CertificateNotYetValid: 'A certificate in the chain is not valid yet.',
  NotACertificateAuthority: 'An issuer in the chain is not allowed to issue certificates.',
  PathLengthExceeded: 'The chain is longer than an issuer allows.',
  NameConstraintViolation: 'A name in the chain is outside what an issuer is allowed to certify.',
  UsageNotAllowed:
    'A certificate is not allowed to be used this way (key usage or extended key usage).',
  UnknownCriticalExtension:
    'A certificate has a critical extension certkeeper does not understand.',
  HostnameMismatch: 'The certificate does not cover the host name.',
  CertificateRevoked: 'A certificate in the chain has been revoked.',
  UntrustedRoot: 'The chain does not end at a trusted certificate.',
  PolicyViolation: 'The certificate or key does not meet the security policy.',
  InvalidGenerationRequest:
    'The request to generate a key, CSR, certificate or PKCS#12 export is not valid.',
} as const;

/** A stable, documented error code of `core/`. */
export type CoreErrorCode = keyof typeof CORE_ERROR_CODES;

/**
 * The base of each layer's one error type (`CoreError`, `StoreError`, `ServiceError`,
 * `RuntimeError`): a stable `code`, a sentence for a person, optional plain details.
 */
export abstract class CodedError<Code extends string> extends Error {
  readonly code: Code;
  /** Optional machine-readable facts (the missing issuer's name, the index in a chain…). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: Code,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }
}

/** The one error type of `core/`. */
export class CoreError extends CodedError<CoreErrorCode> {
  override readonly name = 'CoreError';
}

/** True when `err` is a `CoreError`, optionally with the given code. */
export function isCoreError(err: unknown, code?: CoreErrorCode): err is CoreError {
  return err instanceof CoreError && (code === undefined || err.code === code);
}
