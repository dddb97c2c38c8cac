import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../core/certificate.js';
import { buildChain } from '../core/chain.js';
import { isSelfSigned } from '../core/describe.js';
import { CoreError, type CoreErrorCode } from '../core/errors.js';
import { toPem } from '../core/pem.js';
import { type ValidationProblem, validateServerChain } from '../core/validate.js';
import type { EntryInput } from '../store/store.js';
import type { ServiceContext } from './context.js';

/** Problems that make a key pair unusable as a TLS server identity. */
const FATAL: ReadonlySet<CoreErrorCode> = new Set([
  'SignatureInvalid',
  'CertificateExpired',
  'PolicyViolation',
  'UsageNotAllowed',
  'UnknownCriticalExtension',
  'MalformedInput',
  'UnsupportedAlgorithm',
]);

/** A validated key pair, ready to be stored. */
export interface KeyPairAssembly {
  entry: EntryInput;
  leaf: Certificate;
  /** The issuers that are stored and served with the leaf (no self-signed root). */
  chain: Certificate[];
  /** Findings that don't block it (an untrusted root, an incomplete chain). */
  warnings: ValidationProblem[];
}

/**
 * Builds the chain of the certificate that `key` belongs to (`KeyMismatch` when none),
 * validates it as a TLS server identity now, and makes the `key-pair` entry: the leaf and
 * what was supplied of its chain, minus a self-signed root (clients must already trust
 * it). Fatal problems (expired, bad signature, weak key…) are thrown as their codes.
 */
export function assembleKeyPair(
  ctx: ServiceContext,
  alias: string,
  certificates: Certificate[],
  key: KeyObject,
): KeyPairAssembly {
  const assembly = buildChain(certificates, { key, trusted: ctx.trusted });
  const leaf = assembly.leaf;
  const supplied = new Set(certificates.map((c) => c.sha256));
  const chain = assembly.chain.slice(1).filter((c) => supplied.has(c.sha256) && !isSelfSigned(c));
  const top = assembly.chain[assembly.chain.length - 1]!;
  const result = validateServerChain(leaf, {
    trusted: [...(assembly.complete && !assembly.anchoredBy ? [top] : []), ...ctx.trusted],
    intermediates: assembly.chain.slice(1),
    time: ctx.now(),
  });
  const warnings: ValidationProblem[] = [];
  for (const p of result.problems) {
    if (FATAL.has(p.code)) throw new CoreError(p.code, p.message);
    warnings.push(p);
  }
  return {
    entry: {
      alias,
      kind: 'key-pair',
      certificatePem: toPem('CERTIFICATE', leaf.der),
      chainPem: chain.map((c) => toPem('CERTIFICATE', c.der)).join(''),
      privateKeyDer: key.export({ format: 'der', type: 'pkcs8' }),
      fingerprint: leaf.sha256,
    },
    leaf,
    chain,
    warnings,
  };
}
