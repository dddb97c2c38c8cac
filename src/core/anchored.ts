/**
 * Trust comes from configuration, never from the upload (DESIGN.md): a self-signed root
 * that came inside a bundle is described and checked, never trusted.
 */
import type { ChainAssembly } from './chain.js';
import { type ValidationOptions, type ValidationResult, validateServerChain } from './validate.js';

export interface AnchoredValidationOptions extends Omit<ValidationOptions, 'intermediates'> {
  /**
   * The configured anchors only (Node's roots where wanted, `--ca`, trusted entries):
   * never a certificate of the upload.
   */
  trusted: ValidationOptions['trusted'];
  /** What the person can do about an untrusted supplied root; ends the UntrustedRoot message. */
  remedy?: string;
}

const DEFAULT_REMEDY = 'install that root on them, or import it as a trusted entry here.';

/**
 * Validates an assembled chain as a server identity against the configured anchors.
 *
 * When the chain ends at a self-signed root the upload supplied and that is not among
 * `options.trusted`, the chain is still checked up to that root as though it were an
 * anchor (so bad signatures, expiry, constraints and host name problems are all found),
 * and then the result is not valid: `UntrustedRoot` names that root and says that clients
 * must already trust it.
 */
export function validateAssembledChain(
  assembly: ChainAssembly,
  options: AnchoredValidationOptions,
): ValidationResult {
  const { remedy = DEFAULT_REMEDY, ...validation } = options;
  const configured = new Set(options.trusted.map((c) => c.sha256));
  const top = assembly.chain[assembly.chain.length - 1]!;
  const suppliedRoot =
    assembly.complete && !assembly.anchoredBy && !configured.has(top.sha256) ? top : undefined;
  const result = validateServerChain(assembly.leaf, {
    ...validation,
    // Configured anchors first: an equivalent configured root is preferred to the supplied one.
    trusted: [...options.trusted, ...(suppliedRoot ? [suppliedRoot] : [])],
    intermediates: assembly.chain.slice(1),
  });
  if (!suppliedRoot || assembly.chain.length < 2) return result;
  const end = result.path[result.path.length - 1];
  if (end && configured.has(end.sha256)) return result;
  const index = result.path.findIndex((c) => c.sha256 === suppliedRoot.sha256);
  return {
    valid: false,
    path: result.path,
    problems: [
      ...result.problems,
      {
        code: 'UntrustedRoot',
        message: `Clients trust this certificate only if they already trust "${suppliedRoot.subject.rfc4514}" (it came with the certificate and is not among the trusted roots): ${remedy}`,
        certificate: suppliedRoot.sha256,
        ...(index >= 0 ? { index } : {}),
      },
    ],
  };
}
