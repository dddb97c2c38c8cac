import type { KeyObject } from 'node:crypto';
import { validateAssembledChain } from '../core/anchored.js';
import { type Certificate, parseCertificate } from '../core/certificate.js';
import { buildChain } from '../core/chain.js';
import { isSelfSigned } from '../core/describe.js';
import { CoreError, type CoreErrorCode, isCoreError } from '../core/errors.js';
import { parsePemBlocks, toPem } from '../core/pem.js';
import { PathBudget, type ValidationProblem } from '../core/validate.js';
import type { EntryInput } from '../store/store.js';
import type { ServiceContext } from './context.js';

/**
 * Problems that every client rejects, so they block an import and an activation: a bad
 * signature, expiry, an issuer that may not issue (not a CA, path length, name
 * constraints), a usage or extension clients refuse, a key or algorithm they can't use.
 * The rest (an incomplete chain, a private root, uncovered host names) depend on the
 * client and are warnings.
 */
const FATAL: ReadonlySet<CoreErrorCode> = new Set([
  'SignatureInvalid',
  'CertificateExpired',
  'NotACertificateAuthority',
  'PathLengthExceeded',
  'NameConstraintViolation',
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
 * The trust anchors of an import: the context's (e.g. Node's bundled roots) and the
 * certificates of the keystore's `trusted` entries. A damaged entry's certificate is left out.
 */
export async function trustAnchors(ctx: ServiceContext): Promise<Certificate[]> {
  const anchors = [...ctx.trusted];
  for (const entry of await ctx.store.listEntries({ kind: 'trusted' })) {
    if (!entry.certificatePem) continue;
    try {
      const block = parsePemBlocks(entry.certificatePem)[0];
      if (block) anchors.push(parseCertificate(block.der));
    } catch (err) {
      if (!isCoreError(err)) throw err;
    }
  }
  return anchors;
}

/**
 * Builds the chain of the certificate that `key` belongs to (`KeyMismatch` when none),
 * validates it as a TLS server identity now against `trusted` (see `trustAnchors`; a root
 * of the upload is never an anchor, it gives an `UntrustedRoot` warning), and makes the `key-pair` entry: the leaf and
 * what was supplied of its chain, minus a self-signed root (clients must already trust
 * it). Fatal problems (expired, bad signature, weak key…) are thrown as their codes.
 */
export function assembleKeyPair(
  ctx: ServiceContext,
  alias: string,
  certificates: Certificate[],
  key: KeyObject,
  trusted: Certificate[],
): KeyPairAssembly {
  // One budget for the whole upload: building the chain and validating it.
  const budget = new PathBudget();
  const time = ctx.now();
  const assembly = buildChain(certificates, { key, trusted, time, budget });
  const leaf = assembly.leaf;
  const supplied = new Set(certificates.map((c) => c.sha256));
  const chain = assembly.chain.slice(1).filter((c) => supplied.has(c.sha256) && !isSelfSigned(c));
  // Only configured anchors are trusted: a root that came with the upload is checked as far
  // as it goes and then warned about (UntrustedRoot), never a refusal.
  const result = validateAssembledChain(assembly, { trusted, time, budget });
  const warnings: ValidationProblem[] = [];
  for (const p of result.problems) {
    if (FATAL.has(p.code)) throw new CoreError(p.code, p.message);
    warnings.push(byConsequence(p));
  }
  // A certificate of the upload that was passed over is said, so nobody wonders where it went.
  for (const l of assembly.leftOut) {
    warnings.push({ code: l.code, message: l.message, certificate: l.certificate.sha256 });
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

/** A warning worded by what clients will do, where core's sentence says what is missing. */
function byConsequence(problem: ValidationProblem): ValidationProblem {
  if (problem.code !== 'ChainIncomplete' || !problem.issuer) return problem;
  return {
    ...problem,
    message: `Browsers will show an error unless the intermediate is sent: add "${problem.issuer}" to the upload.`,
  };
}
