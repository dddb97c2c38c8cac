/**
 * What the runtime serves: an identity (private key, leaf and chain as PEM) and the
 * `SecureContext` built from it, plus the small things every part of `runtime/` shares —
 * its error catalogue, the injectable clock and the logger shape.
 */
import { createHash } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { sha256Fingerprint } from '../core/certificate.js';
import { CodedError, CoreError } from '../core/errors.js';
import { parsePemBlocks, toPem } from '../core/pem.js';

// ---------------------------------------------------------------------------------------
// Errors

/**
 * The catalogue of `runtime/` error codes. Callers branch on `code`, never on the
 * message. A retired code is never reused.
 */
export const RUNTIME_ERROR_CODES = {
  ContextBuildFailed:
    'OpenSSL refused to build a TLS context from the identity (key and certificate do not match, or one of them is damaged).',
  ProbeFailed:
    'A self-probe did not see the expected certificate: after a swap (the previous identities were restored), or in the test handshake of a startup source (the next source is tried).',
  InvalidState: 'The runtime state to apply is not well formed (revision, host names).',
  NotRunning: 'The runtime is not started, or is stopping.',
  AlreadyStarted: 'The runtime was started already.',
  TicketKeyInvalid: 'A stored session ticket key record is damaged.',
  AddressInUse: 'Another process already listens on the port and address to serve on.',
  ListenFailed:
    'The listener cannot be opened on the port and address (no privilege, or not an address of this machine).',
} as const;

export type RuntimeErrorCode = keyof typeof RUNTIME_ERROR_CODES;

/** The one error type of `runtime/`: a stable `code`, a sentence, optional plain details. */
export class RuntimeError extends CodedError<RuntimeErrorCode> {
  override readonly name = 'RuntimeError';
}

export function isRuntimeError(err: unknown, code?: RuntimeErrorCode): err is RuntimeError {
  return err instanceof RuntimeError && (code === undefined || err.code === code);
}

// ---------------------------------------------------------------------------------------
// Clock and logger

/** The runtime's sense of time; tests pass one they can move. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A pino-shaped logger (`logger.child({ name: 'runtime' })` fits). Never given key material. */
export interface RuntimeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: RuntimeLogger = { info() {}, warn() {}, error() {} };

// ---------------------------------------------------------------------------------------
// Identity

/** One servable identity. */
export interface Identity {
  /** The private key, PEM (PKCS#8, PKCS#1 or SEC1). */
  keyPem: string;
  /** The leaf certificate first, then its issuers, PEM. */
  certPem: string;
  /** SHA-256 of the leaf's DER, colon hex (as `core/` prints it). Checked by the probe. */
  fingerprint: string;
  /** The keystore alias, when the identity comes from the keystore. */
  alias?: string;
  /** Where it came from (DESIGN.md "source"): `flag`, `default-location`, `keystore`, `local-ca`… */
  source: string;
}

/**
 * An identity from PEM text or a PKCS#8 DER key (what `Store.getPrivateKey` returns), a
 * leaf certificate and optionally its issuers. The fingerprint is computed from the leaf.
 * Nothing is validated here: `buildSecureContext` does that.
 */
export function identityFromPem(input: {
  key: string | Buffer;
  cert: string;
  chain?: string;
  source: string;
  alias?: string;
}): Identity {
  const keyPem = typeof input.key === 'string' ? input.key : toPem('PRIVATE KEY', input.key);
  const leaf = parsePemBlocks(input.cert).find((b) => b.label === 'CERTIFICATE');
  if (!leaf) throw new CoreError('NoCertificate', 'The identity has no PEM certificate.');
  const chain = input.chain?.trim() ? `${input.chain.trim()}\n` : '';
  const identity: Identity = {
    keyPem,
    certPem: `${input.cert.trim()}\n${chain}`,
    fingerprint: sha256Fingerprint(leaf.der),
    source: input.source,
  };
  if (input.alias !== undefined) identity.alias = input.alias;
  return identity;
}

/** Key, leaf and chain of an identity as plain facts for logs and the API (never the key). */
export function describeIdentity(identity: Identity | IdentityRef): {
  fingerprint: string;
  alias: string | null;
  source: string;
} {
  return {
    fingerprint: identity.fingerprint,
    alias: identity.alias ?? null,
    source: identity.source,
  };
}

/**
 * An SNI identity that is loaded on the first handshake that needs it, not when the
 * state is built: a keystore with 100,000 SNI bindings then costs 100,000 small records,
 * not 100,000 keys in memory. Its context is cached under `ref`, like an `Identity`'s
 * under its content.
 */
export interface IdentityRef {
  /** Changes whenever the content does (the supervisor uses `alias@updatedRevision`). */
  readonly ref: string;
  /** SHA-256 of the leaf, colon hex: what the probe expects. */
  readonly fingerprint: string;
  readonly alias?: string;
  readonly source: string;
  load(): Promise<Identity>;
}

/** What an SNI binding serves: an identity in memory, or one loaded when first needed. */
export type SniIdentity = Identity | IdentityRef;

const contentKeys = new WeakMap<Identity, string>();

/**
 * A digest of the key and all certificates: two identities with the same content share
 * one `SecureContext`, whatever object carries them. The leaf fingerprint alone is not
 * enough, since the same leaf may come with another chain or (broken) another key.
 */
export function identityContentKey(identity: Identity): string {
  let key = contentKeys.get(identity);
  if (key === undefined) {
    key = createHash('sha256')
      .update(identity.keyPem)
      .update('\0')
      .update(identity.certPem)
      .digest('base64');
    contentKeys.set(identity, key);
  }
  return key;
}

/** The context cache key of an SNI identity: its content, or its reference. */
export function sniContentKey(identity: SniIdentity): string {
  return 'ref' in identity ? `ref:${identity.ref}` : identityContentKey(identity);
}

// ---------------------------------------------------------------------------------------
// TLS settings and contexts

/**
 * Mozilla's "intermediate" profile without DHE: TLS 1.3 suites, then ECDHE with AEAD
 * ciphers for TLS 1.2. Listing the TLS 1.3 suites matters: a list without them would
 * disable TLS 1.3.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * The protocol settings of every context certkeeper builds. With Node, only the listener's
 * default context decides protocol versions, ciphers, the session cache and ticket keys:
 * a context chosen by `SNICallback` contributes only its key, certificate and chain.
 */
export const TLS_PROTOCOL_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: TLS_CIPHERS,
  honorCipherOrder: true,
  ecdhCurve: 'X25519:prime256v1:secp384r1',
  /**
   * Fixed, so that sessions stay resumable across contexts and restarts (Node's default
   * derives it from `process.argv`).
   */
  sessionIdContext: 'certkeeper',
} as const satisfies SecureContextOptions;

const OPENSSL_REASONS: Record<string, string> = {
  ERR_OSSL_X509_KEY_VALUES_MISMATCH: 'the private key does not belong to the certificate',
  ERR_OSSL_PEM_NO_START_LINE: 'a PEM block is missing or damaged',
  ERR_OSSL_PEM_BAD_BASE64_DECODE: 'a PEM block has damaged base64',
  ERR_OSSL_UNSUPPORTED: 'the key or certificate cannot be decoded',
};

/**
 * Builds the `SecureContext` of an identity, with the protocol settings and any `extra`
 * options (the listener adds ticket keys and the session timeout). Refusals are
 * `ContextBuildFailed`, naming the identity by fingerprint, alias and source.
 */
export function buildSecureContext(
  identity: Identity,
  extra: SecureContextOptions = {},
): SecureContext {
  try {
    return createSecureContext(secureContextOptions(identity, extra));
  } catch (cause) {
    throw contextBuildError(identity, cause);
  }
}

/** The `ContextBuildFailed` for an OpenSSL refusal of an identity. */
export function contextBuildError(identity: Identity | IdentityRef, cause: unknown): RuntimeError {
  if (cause instanceof RuntimeError) return cause;
  const opensslCode = (cause as { code?: unknown })?.code;
  const message = (cause as Error)?.message ?? String(cause);
  const coded = typeof opensslCode === 'string';
  const reason =
    (coded && OPENSSL_REASONS[opensslCode]) ||
    // A store or core error: the identity could not be loaded at all.
    (coded &&
      !opensslCode.startsWith('ERR_') &&
      `it cannot be loaded (${opensslCode}: ${message})`) ||
    `OpenSSL refused it (${message})`;
  const name = identity.alias ? `"${identity.alias}" ` : '';
  return new RuntimeError(
    'ContextBuildFailed',
    `The identity ${name}from ${identity.source} (sha256=${identity.fingerprint}) cannot be served: ${reason}.`,
    {
      cause,
      details: {
        ...describeIdentity(identity),
        opensslCode: typeof opensslCode === 'string' ? opensslCode : null,
      },
    },
  );
}

/** The `createSecureContext` / `setSecureContext` options for an identity. */
export function secureContextOptions(
  identity: Identity,
  extra: SecureContextOptions = {},
): SecureContextOptions {
  return { ...TLS_PROTOCOL_OPTIONS, ...extra, key: identity.keyPem, cert: identity.certPem };
}
