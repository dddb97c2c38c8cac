/**
 * TLS server certificate path validation: RFC 5280 §6 with the web PKI profile of the
 * CA/Browser Forum Baseline Requirements, in the manner of rustls-webpki, Go's
 * crypto/x509 and pyca/cryptography. Measured against x509-limbo (`npm run limbo`,
 * BENCHMARKS.md).
 *
 * Path building starts at the leaf and looks for issuers (same name, preferring a
 * matching key identifier) among the trust anchors first and then the untrusted
 * intermediates, depth first with backtracking, until a path to an anchor passes every
 * check. A certificate is never used twice in a path, nor is a second certificate with
 * the same subject and key. The work is bounded (signature checks, search steps, name
 * constraint comparisons), so hostile inputs end quickly with a failure; a `PathBudget`
 * makes one bound cover every step of an input (chain.ts builds with this same search).
 *
 * Decisions where the standards leave room (they follow rustls-webpki or the BRs):
 * - The trust anchor is a certificate and is held to the CA rules (validity, critical
 *   basicConstraints with cA, keyCertSign, SKI, no unknown critical extension, its
 *   pathLenConstraint and name constraints); its self-signature is not checked. As in
 *   BR 7.1.2.1 an anchor carries no extendedKeyUsage, and its AKI, if any, is a key
 *   identifier only, equal to its SKI when self-issued. A v1 anchor is accepted as is.
 * - A candidate issuer whose subject key identifier differs from the child's authority
 *   key identifier and whose signature fails is another key under that name, not a bad
 *   signature: the issuer is reported missing (`ChainIncomplete`), as OpenSSL does. Without
 *   key identifiers a failed signature is `SignatureInvalid`.
 * - A leaf must not be a CA (basicConstraints cA=TRUE or keyCertSign): a CA certificate
 *   used as a server certificate is refused (BR 7.1.2.7.8, webpki).
 * - Leaf extendedKeyUsage: absent means any purpose (RFC 5280); present, it must list
 *   every required purpose itself (anyExtendedKeyUsage does not count) and must not be
 *   critical. An intermediate's EKU constrains: it must list the purposes or anyEKU.
 * - Name constraints may be non-critical (BR 7.1.2.5.2 allows it).
 * - Validity is inclusive and compared in whole seconds (the validation time is floored).
 * - Policy constraints, policy mappings and inhibitAnyPolicy are not processed; when
 *   critical they are unknown critical extensions.
 * - Keys and signature digests are judged by the `Policy` (`PolicyViolation`). With
 *   `checkPolicy: false` the caller's policy is ignored and the fixed web PKI profile
 *   (the values of `DEFAULT_POLICY`, without maxValidityDays) applies instead
 *   (`UnsupportedAlgorithm`): DSA, P-192, explicit curves or RSA-1024 never pass.
 */
import type { KeyObject } from 'node:crypto';
import { type Certificate, certificatePublicKey, isSelfIssued } from './certificate.js';
import { type Crl, checkRevocation, parseCrl } from './crl.js';
import { readChildren, readTlv, tlvBytes, tlvContent } from './der.js';
import { type CoreErrorCode, isCoreError } from './errors.js';
import {
  authorityInfoAccessOf,
  authorityKeyIdentifierOf,
  basicConstraintsOf,
  duplicateExtensionOids,
  EKU_OIDS,
  ekuName,
  ekuOid,
  extendedKeyUsageOidsOf,
  findExtension,
  keyUsageOf,
  type NameConstraintsValue,
  nameConstraintsOf,
  OID,
  subjectAltNameListOf,
  subjectKeyIdOf,
} from './extensions.js';
import { commonNameProblem, coversParsedHost, type Host, parseHost } from './hostname.js';
import {
  type ConstrainedNames,
  constrainedNamesOf,
  NAME_CONSTRAINT_BUDGET,
  type NameConstraintBudget,
  nameConstraintsProblem,
  nameConstraintViolation,
} from './name-constraints.js';
import {
  DEFAULT_POLICY,
  describePublicKey,
  keyPolicyProblem,
  type Policy,
  resolvePolicy,
} from './policy.js';
import { signatureDigest, verifyCertificateSignature } from './signature.js';

export interface ValidationProblem {
  code: CoreErrorCode;
  /** One sentence for a person. */
  message: string;
  /** SHA-256 fingerprint of the certificate concerned. */
  certificate?: string;
  /** Position in the path, 0 = leaf. */
  index?: number;
  /** For `ChainIncomplete`: the RFC 4514 name of the issuer that was not supplied. */
  issuer?: string;
}

export interface ValidationOptions {
  /** Trust anchors. */
  trusted: Certificate[];
  /** Untrusted, unordered; may hold decoys and duplicates. */
  intermediates?: Certificate[];
  /** The instant to validate at (never the clock inside core). */
  time: Date;
  /** DNS name or IP literal the leaf must cover. */
  host?: string;
  /** Relaxes or tightens `DEFAULT_POLICY` for this call. */
  policy?: Partial<Policy>;
  /** Default true; false applies the fixed web PKI key profile instead of the policy. */
  checkPolicy?: boolean;
  /** DER CRLs; a certificate whose issuer published one of them is checked against it. */
  crls?: Buffer[];
  /**
   * Most certificates in the path, leaf and anchor included; self-issued
   * intermediates (key rollover) are not counted. Default 10.
   */
  maxDepth?: number;
  /** Purposes the leaf must allow, by name or OID. Default ['serverAuth']. */
  requiredExtendedKeyUsage?: string[];
  /**
   * Filled in with the work the validation did, when given: how a test or a bench sees
   * that a hostile chain was answered within the budgets below, without a clock. With a
   * shared `budget`, the work of every step that spent it so far.
   */
  work?: ValidationWork;
  /**
   * The budget of the whole input, when this validation is one step of several (choosing
   * the leaf, building the chain, validating it): they then spend one budget between them
   * and share the signatures already checked. Default: a fresh one.
   */
  budget?: PathBudget;
}

/**
 * What path building may be asked beyond validation: no time (validity is then not a
 * criterion), and roots that came with the input, which end a path as an anchor would
 * but count only when no path reaches a configured anchor.
 */
export interface PathSearchOptions extends Omit<ValidationOptions, 'time'> {
  time?: Date | undefined;
  /** Self-issued certificates of the input: anchors of last resort, once their self-signature verifies. */
  suppliedRoots?: Certificate[];
}

/** The work of one validation, counted in the units its budgets are written in. */
export interface ValidationWork {
  /** Signature verifications made (at most {@link SIGNATURE_BUDGET}). */
  signatureChecks: number;
  /** Certificates tried as issuers (at most {@link SEARCH_BUDGET}). */
  searchSteps: number;
  /** Name-against-subtree comparisons (at most {@link NAME_CONSTRAINT_BUDGET}). */
  nameComparisons: number;
}

export interface ValidationResult {
  valid: boolean;
  /** Leaf … anchor: the valid path, or the best path tried. */
  path: Certificate[];
  problems: ValidationProblem[];
}

export const DEFAULT_MAX_DEPTH = 10;
/** Most signature verifications one validation may make (Go uses 100 too). */
export const SIGNATURE_BUDGET = 100;
/** Most search steps (certificates tried as issuers) one validation may make. */
export const SEARCH_BUDGET = 2000;

/** A check that found something: a problem without its place in the path. */
export type Finding = Omit<ValidationProblem, 'index' | 'certificate'>;

/**
 * The work one input may cost, shared by every step that looks at it (choosing the leaf,
 * building the chain, validating it), so a hostile bag is bounded once rather than per
 * step; it also remembers the keys and signatures already checked, so no step checks one
 * twice.
 */
export class PathBudget {
  /** Signature verifications made (never more than {@link SIGNATURE_BUDGET}). */
  signatureChecks = 0;
  /** Certificates tried as issuers. */
  searchSteps = 0;
  readonly nameConstraints: NameConstraintBudget = { remaining: NAME_CONSTRAINT_BUDGET };
  readonly #keys = new Map<string, KeyObject | Finding>();
  readonly #links = new Map<string, true | Finding>();

  /** The work done so far, counted as the budgets count it. */
  work(): ValidationWork {
    return {
      signatureChecks: this.signatureChecks,
      searchSteps: Math.min(this.searchSteps, SEARCH_BUDGET),
      nameComparisons: NAME_CONSTRAINT_BUDGET - Math.max(0, this.nameConstraints.remaining),
    };
  }

  /** Takes one search step; false when the steps are spent. */
  step(): boolean {
    return ++this.searchSteps <= SEARCH_BUDGET;
  }

  /** The certificate's public key, or why it can't be used. Cached. */
  publicKey(cert: Certificate): KeyObject | Finding {
    let key = this.#keys.get(cert.sha256);
    if (!key) {
      try {
        key = certificatePublicKey(cert);
      } catch (err) {
        key = {
          code: 'UnsupportedAlgorithm',
          message: `The public key of "${cert.subject.rfc4514}" cannot be used.`,
        };
        if (isCoreError(err)) key.message = err.message;
      }
      this.#keys.set(cert.sha256, key);
    }
    return key;
  }

  /**
   * Did `issuer`'s key sign `child`? True, or what stands against it; undefined when the
   * signature budget is spent. Cached: a pair is checked once per input.
   */
  verify(child: Certificate, issuer: Certificate): true | Finding | undefined {
    const cacheKey = `${child.sha256}/${issuer.sha256}`;
    const cached = this.#links.get(cacheKey);
    if (cached) return cached;
    if (this.signatureChecks >= SIGNATURE_BUDGET) return undefined;
    const key = this.publicKey(issuer);
    let result: true | Finding;
    if (!isKey(key)) {
      result = key;
    } else {
      this.signatureChecks++;
      result = {
        code: 'SignatureInvalid',
        message: `The signature on "${child.subject.rfc4514}" does not verify with the key of "${issuer.subject.rfc4514}".`,
      };
      try {
        if (verifyCertificateSignature(child, key)) result = true;
      } catch (err) {
        if (isCoreError(err)) result = { code: err.code, message: err.message };
      }
    }
    this.#links.set(cacheKey, result);
    return result;
  }
}

/** Validates a server certificate chain. Bad certificates give problems, never exceptions. */
export function validateServerChain(
  leaf: Certificate,
  options: ValidationOptions,
): ValidationResult {
  return searchPath(leaf, options);
}

/**
 * The search behind {@link validateServerChain}, for building a chain as well: without
 * `time` validity is no criterion, and `suppliedRoots` end a path when no configured
 * anchor can (the result is then valid up to that root, which the caller must judge).
 */
export function searchPath(leaf: Certificate, options: PathSearchOptions): ValidationResult {
  const validation = new Validation(leaf, options);
  try {
    return validation.run();
  } catch (err) {
    // Every check is written not to throw; this is the last guard of that promise.
    return {
      valid: false,
      path: [leaf],
      problems: [
        {
          code: 'MalformedInput',
          message: `The chain could not be checked: ${err instanceof Error ? err.message : String(err)}`,
        },
      ],
    };
  } finally {
    if (options.work) Object.assign(options.work, validation.work());
  }
}

type Role = 'leaf' | 'ca' | 'anchor';

interface Attempt {
  path: Certificate[];
  /** 3 = reached an anchor, 2 = the last link failed, 1 = no issuer found. */
  rank: number;
  problems: ValidationProblem[];
}

const COMMON_NAME = '2.5.4.3';
const ANY_EKU = EKU_OIDS.anyExtendedKeyUsage!;

/** Extensions we understand; a critical one outside this set is refused. */
const UNDERSTOOD = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  OID.certificatePolicies,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.authorityInfoAccess,
]);

/** Extensions RFC 5280 requires to be non-critical. */
const MUST_BE_NON_CRITICAL: Record<string, string> = {
  [OID.subjectKeyIdentifier]: 'subjectKeyIdentifier',
  [OID.authorityKeyIdentifier]: 'authorityKeyIdentifier',
  [OID.authorityInfoAccess]: 'authorityInfoAccess',
};

class Validation {
  /** Undefined when building without a time: validity is then no criterion. */
  private readonly time: Date | undefined;
  private readonly policy: Policy;
  private readonly policyCode: CoreErrorCode;
  private readonly checkPolicy: boolean;
  private readonly keyIdentifierCode: CoreErrorCode;
  private readonly maxDepth: number;
  private readonly requiredEkus: string[];
  private readonly host: Host | undefined;
  private readonly globalProblems: ValidationProblem[] = [];
  private readonly crls: Crl[] = [];
  private readonly anchors = new Map<string, Certificate>();
  private readonly supplied = new Set<string>();
  private readonly bySubject = new Map<string, Certificate[]>();
  private readonly keyIds = new Map<
    string,
    { aki?: string | undefined; ski?: string | undefined }
  >();
  private readonly budget: PathBudget;
  private readonly certFindings = new Map<string, Finding[]>();
  private readonly ncCache = new Map<string, NameConstraintsValue | undefined>();
  private readonly namesCache = new Map<string, ConstrainedNames | undefined>();
  private gaveUp = false;
  private best: Attempt | undefined;
  /** The first path that passed every check up to a supplied root. */
  private fallback: Certificate[] | undefined;
  private readonly openEnds: { path: Certificate[]; rank: number; finding: Finding; at: number }[] =
    [];

  constructor(
    private readonly leaf: Certificate,
    options: PathSearchOptions,
  ) {
    this.budget = options.budget ?? new PathBudget();
    this.time = options.time && new Date(Math.floor(options.time.getTime() / 1000) * 1000);
    this.checkPolicy = options.checkPolicy ?? true;
    this.policy = this.checkPolicy ? resolvePolicy(options.policy) : DEFAULT_POLICY;
    this.policyCode = this.checkPolicy ? 'PolicyViolation' : 'UnsupportedAlgorithm';
    // Under a caller's policy a missing key identifier is a relaxable policy matter.
    this.keyIdentifierCode = this.checkPolicy ? 'PolicyViolation' : 'MalformedInput';
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.requiredEkus = (options.requiredExtendedKeyUsage ?? ['serverAuth']).map(ekuOid);
    if (options.host !== undefined) {
      try {
        this.host = parseHost(options.host);
      } catch {
        this.globalProblems.push({
          code: 'HostnameMismatch',
          message: `"${options.host}" is not a valid DNS name or IP address, so no certificate covers it.`,
        });
      }
    }
    (options.crls ?? []).forEach((der, i) => {
      try {
        this.crls.push(parseCrl(der));
      } catch {
        this.globalProblems.push({
          code: 'MalformedInput',
          message: `CRL number ${i + 1} is damaged, so revocation can't be checked.`,
        });
      }
    });
    for (const anchor of options.trusted) {
      if (this.anchors.has(anchor.sha256)) continue;
      this.anchors.set(anchor.sha256, anchor);
      this.index(anchor);
    }
    const seen = new Set<string>();
    for (const cert of [...(options.intermediates ?? []), ...(options.suppliedRoots ?? [])]) {
      if (this.anchors.has(cert.sha256) || seen.has(cert.sha256)) continue;
      seen.add(cert.sha256);
      this.index(cert);
    }
    for (const root of options.suppliedRoots ?? []) {
      if (!this.anchors.has(root.sha256) && isSelfIssued(root)) this.supplied.add(root.sha256);
    }
  }

  /** The work done so far, counted as the budgets count it (the step that hit a budget is not). */
  work(): ValidationWork {
    return this.budget.work();
  }

  private index(cert: Certificate): void {
    const key = cert.subject.der.toString('hex');
    const list = this.bySubject.get(key);
    if (list) list.push(cert);
    else this.bySubject.set(key, [cert]);
  }

  run(): ValidationResult {
    const found = this.extend([this.leaf]) ?? this.fallback;
    if (found) {
      const problems = [...this.globalProblems];
      return { valid: problems.length === 0, path: found, problems };
    }
    const best = this.bestAttempt();
    const problems = [...this.globalProblems, ...best.problems];
    if (this.gaveUp) {
      problems.push({
        code: 'UntrustedRoot',
        message: `No path to a trust anchor was found within the work limit (${SIGNATURE_BUDGET} signature checks, ${SEARCH_BUDGET} steps).`,
      });
    }
    if (problems.length === 0) {
      problems.push({ code: 'UntrustedRoot', message: 'No path to a trust anchor was found.' });
    }
    return { valid: false, path: best.path, problems: dedupe(problems) };
  }

  /** Depth-first search for a valid path; returns it, or undefined. */
  private extend(path: Certificate[]): Certificate[] | undefined {
    if (this.gaveUp) return undefined;
    const child = path[path.length - 1]!;
    const candidates = this.candidatesFor(child, path);
    if (candidates.length === 0) {
      this.openEnds.push({ path, rank: 1, finding: this.deadEnd(child), at: path.length - 1 });
      return undefined;
    }
    for (const candidate of candidates) {
      if (!this.budget.step()) {
        this.gaveUp = true;
        return undefined;
      }
      const next = [...path, candidate];
      const configured = this.anchors.has(candidate.sha256);
      // A supplied root is an anchor once its self-signature verifies (checked below).
      const isAnchor = configured || this.supplied.has(candidate.sha256);
      // An open path still needs an anchor: count it as if one followed, to prune early.
      const depth = isAnchor ? logicalDepth(next) : logicalDepth([...next, candidate]);
      if (depth > this.maxDepth || next.length > this.maxDepth * 2) {
        this.openEnds.push({
          path: next,
          rank: isAnchor ? 2 : 1,
          at: next.length - 1,
          finding: {
            code: 'PathLengthExceeded',
            message: `The path would need more than ${this.maxDepth} certificates, the most allowed.`,
          },
        });
        continue;
      }
      const link = this.verifyLink(child, candidate);
      if (this.gaveUp) return undefined;
      if (link !== true) {
        // Another key under the same name, as its key identifier says: not a bad signature
        // but not the issuer either (OpenSSL, too, passes over it).
        if (link.code === 'SignatureInvalid' && this.keyIdsDiffer(child, candidate)) {
          this.openEnds.push({ path, rank: 1, finding: this.deadEnd(child), at: path.length - 1 });
        } else {
          this.openEnds.push({ path: next, rank: 2, finding: link, at: path.length - 1 });
        }
        continue;
      }
      const anchored = configured || (isAnchor && this.verifyLink(candidate, candidate) === true);
      if (this.gaveUp) return undefined;
      if (anchored) {
        const problems = this.evaluate(next, true);
        if (problems.length === 0) {
          if (configured) return next;
          this.fallback ??= next;
          continue;
        }
        this.consider({ path: next, rank: 3, problems });
        continue;
      }
      const found = this.extend(next);
      if (found || this.gaveUp) return found;
    }
    return undefined;
  }

  /** Possible issuers of `child`: anchors first, then by key identifier and validity. */
  private candidatesFor(child: Certificate, path: Certificate[]): Certificate[] {
    const all = this.bySubject.get(child.issuer.der.toString('hex')) ?? [];
    const aki = this.idsOf(child).aki;
    const score = (c: Certificate) => {
      const ski = this.idsOf(c).ski;
      let s = this.anchors.has(c.sha256) ? 0 : 8;
      if (aki && ski && aki !== ski) s += 4;
      if (!this.validAt(c)) s += 2;
      return s;
    };
    return all
      .filter(
        (c) =>
          !path.some(
            (p) =>
              p.sha256 === c.sha256 ||
              (p.subject.der.equals(c.subject.der) && p.spkiDer.equals(c.spkiDer)),
          ),
      )
      .map((c, i) => ({ c, s: score(c) * 10_000 + i }))
      .sort((a, b) => a.s - b.s)
      .map((x) => x.c);
  }

  /** The certificate's key identifiers (AKI keyIdentifier, SKI), as hex; cached. */
  private idsOf(cert: Certificate): { aki?: string | undefined; ski?: string | undefined } {
    let ids = this.keyIds.get(cert.sha256);
    if (!ids) {
      ids = {
        aki: safe(() => authorityKeyIdentifierOf(cert)?.keyId),
        ski: safe(() => subjectKeyIdOf(cert)),
      };
      this.keyIds.set(cert.sha256, ids);
    }
    return ids;
  }

  /** True when the child's AKI names another key than the candidate's SKI. */
  private keyIdsDiffer(child: Certificate, candidate: Certificate): boolean {
    const aki = this.idsOf(child).aki;
    const ski = this.idsOf(candidate).ski;
    return aki !== undefined && ski !== undefined && aki !== ski;
  }

  private validAt(cert: Certificate): boolean {
    if (!this.time) return true;
    const t = this.time.getTime();
    return cert.notBefore.getTime() <= t && t <= cert.notAfter.getTime();
  }

  private deadEnd(cert: Certificate): Finding {
    if (isSelfIssued(cert)) {
      return {
        code: 'UntrustedRoot',
        message: `The chain ends at "${cert.subject.rfc4514}", which is not a trusted certificate.`,
      };
    }
    return {
      code: 'ChainIncomplete',
      message: `The issuer "${cert.issuer.rfc4514}" of "${cert.subject.rfc4514}" was not supplied and is not trusted.`,
      issuer: cert.issuer.rfc4514,
    };
  }

  private publicKey(cert: Certificate): KeyObject | Finding {
    return this.budget.publicKey(cert);
  }

  /** Did `issuer`'s key sign `child`? Cached; counts against the signature budget. */
  private verifyLink(child: Certificate, issuer: Certificate): true | Finding {
    const result = this.budget.verify(child, issuer);
    if (result) return result;
    this.gaveUp = true;
    return { code: 'UntrustedRoot', message: 'The signature budget is spent.' };
  }

  private consider(attempt: Attempt): void {
    const b = this.best;
    if (
      !b ||
      attempt.rank > b.rank ||
      (attempt.rank === b.rank && attempt.problems.length < b.problems.length)
    ) {
      this.best = attempt;
    }
  }

  private bestAttempt(): Attempt {
    if (this.best) return this.best;
    // The attempt that got farthest (verified certificates), then the more specific failure.
    const progress = (e: (typeof this.openEnds)[number]) =>
      e.rank === 2 ? e.at + 1 : e.path.length;
    let chosen = this.openEnds[0];
    for (const end of this.openEnds) {
      if (
        !chosen ||
        progress(end) > progress(chosen) ||
        (progress(end) === progress(chosen) && end.rank > chosen.rank)
      ) {
        chosen = end;
      }
    }
    if (!chosen) return { path: [this.leaf], rank: 0, problems: this.evaluate([this.leaf], false) };
    const failedLink = chosen.rank === 2 && chosen.finding.code !== 'PathLengthExceeded';
    // A failed link is reported on the child; the would-be issuer is not part of the path.
    const path = failedLink ? chosen.path.slice(0, -1) : chosen.path;
    const cert = chosen.path[chosen.at]!;
    const problems = this.evaluate(path, false);
    problems.push({ ...chosen.finding, certificate: cert.sha256, index: chosen.at });
    return { path, rank: chosen.rank, problems };
  }

  /** Every problem of a path (complete: it ends at an anchor). */
  private evaluate(path: Certificate[], complete: boolean): ValidationProblem[] {
    const problems: ValidationProblem[] = [];
    const add = (i: number, findings: Finding[]) => {
      for (const f of findings) problems.push({ ...f, certificate: path[i]!.sha256, index: i });
    };
    const last = path.length - 1;
    path.forEach((cert, i) => {
      const role: Role = i === 0 ? 'leaf' : complete && i === last ? 'anchor' : 'ca';
      add(i, this.findingsFor(cert, role));
    });
    for (let i = 0; i < last; i++) add(i, this.linkFindings(path[i]!));
    for (let k = 1; k < path.length; k++) {
      const bc = safe(() => basicConstraintsOf(path[k]!));
      if (bc?.pathLength === undefined) continue;
      const below = path.slice(1, k).filter((c) => !isSelfIssued(c)).length;
      if (below > bc.pathLength) {
        add(k, [
          {
            code: 'PathLengthExceeded',
            message: `"${path[k]!.subject.rfc4514}" allows ${bc.pathLength} intermediate(s) below it, but the path has ${below}.`,
          },
        ]);
      }
    }
    if (complete && logicalDepth(path) > this.maxDepth) {
      add(last, [
        {
          code: 'PathLengthExceeded',
          message: `The path has more than ${this.maxDepth} certificates, the most allowed.`,
        },
      ]);
    }
    this.checkNameConstraints(path, add);
    if (this.crls.length > 0 && this.time) {
      for (let i = 0; i < last; i++) {
        const key = this.publicKey(path[i + 1]!);
        if (!isKey(key)) continue;
        add(i, checkRevocation(path[i]!, path[i + 1]!, this.crls, this.time, key));
      }
    }
    return dedupe(problems);
  }

  private checkNameConstraints(path: Certificate[], add: (i: number, f: Finding[]) => void): void {
    for (let k = 1; k < path.length; k++) {
      const nc = this.nameConstraints(path[k]!);
      if (!nc || nameConstraintsProblem(nc)) continue;
      for (let j = 0; j < k; j++) {
        // RFC 5280 §6.1.3 (b): self-issued intermediates are exempt, the leaf never is.
        if (j > 0 && isSelfIssued(path[j]!)) continue;
        const names = this.constrainedNames(path[j]!);
        if (!names) continue;
        const why = nameConstraintViolation(nc, names, this.budget.nameConstraints);
        if (why) {
          add(j, [
            {
              code: 'NameConstraintViolation',
              message: `${why} (constraint of "${path[k]!.subject.rfc4514}")`,
            },
          ]);
        }
      }
    }
  }

  private nameConstraints(cert: Certificate): NameConstraintsValue | undefined {
    if (!this.ncCache.has(cert.sha256)) {
      this.ncCache.set(
        cert.sha256,
        safe(() => nameConstraintsOf(cert)),
      );
    }
    return this.ncCache.get(cert.sha256);
  }

  private constrainedNames(cert: Certificate): ConstrainedNames | undefined {
    if (!this.namesCache.has(cert.sha256)) {
      this.namesCache.set(
        cert.sha256,
        safe(() => constrainedNamesOf(cert)),
      );
    }
    return this.namesCache.get(cert.sha256);
  }

  /** Problems of one link, found on the child: its signature's digest. */
  private linkFindings(child: Certificate): Finding[] {
    const hash = signatureHash(child);
    if (hash && this.policy.forbiddenSignatureHashes.includes(hash)) {
      return [
        {
          code: this.policyCode,
          message: `"${child.subject.rfc4514}" is signed with ${hash.toUpperCase()}, which is not allowed.`,
        },
      ];
    }
    return [];
  }

  /** Problems of a certificate in a role, independent of the rest of the path. Cached. */
  private findingsFor(cert: Certificate, role: Role): Finding[] {
    const cacheKey = `${cert.sha256}/${role}`;
    let findings = this.certFindings.get(cacheKey);
    if (!findings) {
      findings = [...this.commonFindings(cert, role)];
      if (role === 'leaf') findings.push(...this.leafFindings(cert));
      else findings.push(...this.caFindings(cert, role));
      this.certFindings.set(cacheKey, findings);
    }
    return findings;
  }

  /** Checks for every certificate: structure, validity, extensions, key. */
  private *commonFindings(cert: Certificate, role: Role): Generator<Finding> {
    const name = `"${cert.subject.rfc4514}"`;
    const malformed = (message: string): Finding => ({ code: 'MalformedInput', message });
    const v1Anchor = role === 'anchor' && cert.version === 1;
    if (cert.version !== 3 && !v1Anchor) {
      yield role === 'leaf'
        ? malformed(`${name} is an X.509 v${cert.version} certificate; v3 is required.`)
        : {
            code: 'NotACertificateAuthority',
            message: `${name} is an X.509 v${cert.version} certificate, which cannot be a CA.`,
          };
    }
    const tbs = tbsFields(cert);
    if (!tbs?.signatureAlgorithmDer.equals(cert.signatureAlgorithmDer)) {
      yield malformed(`${name} names two different signature algorithms.`);
    }
    if (tbs && role !== 'anchor') {
      const s = tbs.serial;
      const value = s[0] === 0 && s.length > 1 ? s.subarray(1) : s;
      if (s.length === 0 || s[0]! & 0x80) yield malformed(`${name} has a negative serial number.`);
      else if (value.length > 20)
        yield malformed(`${name} has a serial number longer than 20 bytes.`);
      else if (value.every((b) => b === 0)) yield malformed(`${name} has the serial number zero.`);
    }
    if (cert.issuer.attributes.length === 0) yield malformed(`${name} has an empty issuer name.`);
    // Without a time (building only), validity is no criterion.
    const t = this.time?.getTime();
    if (t !== undefined && t > cert.notAfter.getTime()) {
      yield {
        code: 'CertificateExpired',
        message: `${name} expired on ${cert.notAfter.toISOString()}.`,
      };
    }
    if (t !== undefined && t < cert.notBefore.getTime()) {
      yield {
        code: 'CertificateNotYetValid',
        message: `${name} is not valid before ${cert.notBefore.toISOString()}.`,
      };
    }
    for (const oid of duplicateExtensionOids(cert)) {
      yield malformed(`${name} carries the extension ${oid} more than once.`);
    }
    for (const ext of cert.extensions) {
      if (ext.critical && !UNDERSTOOD.has(ext.oid)) {
        yield {
          code: 'UnknownCriticalExtension',
          message: `${name} has a critical extension ${ext.oid} that certkeeper does not process.`,
        };
      }
      const label = MUST_BE_NON_CRITICAL[ext.oid];
      if (label && ext.critical)
        yield malformed(`${name} marks ${label} critical, which RFC 5280 forbids.`);
      if (ext.oid === OID.policyConstraints && !ext.critical) {
        yield malformed(`${name} has a non-critical policyConstraints, which RFC 5280 forbids.`);
      }
    }
    const decoders: [string, () => unknown][] = [
      ['basicConstraints', () => basicConstraintsOf(cert)],
      ['keyUsage', () => keyUsageOf(cert)],
      ['extendedKeyUsage', () => extendedKeyUsageOidsOf(cert)],
      ['subjectAltName', () => subjectAltNameListOf(cert)],
      ['subjectKeyIdentifier', () => subjectKeyIdOf(cert)],
      ['authorityKeyIdentifier', () => authorityKeyIdentifierOf(cert)],
      ['nameConstraints', () => nameConstraintsOf(cert)],
      ['authorityInfoAccess', () => authorityInfoAccessOf(cert)],
    ];
    for (const [label, decode] of decoders) {
      try {
        decode();
      } catch (err) {
        const why = isCoreError(err) ? ` (${err.message})` : '';
        yield malformed(`${name} has a damaged ${label} extension${why}.`);
      }
    }
    // The AKI identifies the issuer during path building; an anchor ends the path.
    if (!isSelfIssued(cert) && role !== 'anchor' && this.policy.requireKeyIdentifiers) {
      const aki = safe(() => authorityKeyIdentifierOf(cert));
      if (!aki?.keyId) {
        yield {
          code: this.keyIdentifierCode,
          message: `${name} has no authority key identifier (keyIdentifier), which every certificate not issued by itself must carry.`,
        };
      }
    }
    const key = this.publicKey(cert);
    if (!isKey(key)) {
      yield key;
    } else {
      const described = safe(() => describePublicKey(cert, key)) ?? { type: 'unreadable' };
      const why = keyPolicyProblem(described, this.policy);
      if (why) yield { code: this.policyCode, message: `${name}: ${why}` };
    }
  }

  private *leafFindings(cert: Certificate): Generator<Finding> {
    const name = `"${cert.subject.rfc4514}"`;
    const bc = safe(() => basicConstraintsOf(cert));
    if (bc?.ca) {
      yield {
        code: 'UsageNotAllowed',
        message: `${name} is a CA certificate (basicConstraints cA=TRUE) and can't serve as a server certificate.`,
      };
    }
    const usage = safe(() => keyUsageOf(cert));
    if (usage?.includes('keyCertSign')) {
      yield {
        code: 'UsageNotAllowed',
        message: `${name} may sign certificates (keyCertSign) and can't serve as a server certificate.`,
      };
    }
    if (findExtension(cert, OID.nameConstraints)) {
      yield {
        code: 'MalformedInput',
        message: `${name} carries name constraints, which only a CA certificate may.`,
      };
    }
    const ekuExt = findExtension(cert, OID.extKeyUsage);
    const ekus = safe(() => extendedKeyUsageOidsOf(cert));
    if (ekuExt?.critical) {
      yield {
        code: 'UsageNotAllowed',
        message: `${name} marks extendedKeyUsage critical, which server certificates must not (CA/B BR 7.1.2.7.6).`,
      };
    }
    if (ekus?.includes(ANY_EKU)) {
      yield {
        code: 'UsageNotAllowed',
        message: `${name} lists anyExtendedKeyUsage, which server certificates must not (CA/B BR 7.1.2.7.10).`,
      };
    }
    if (ekus) {
      const missing = this.requiredEkus.filter((oid) => !ekus.includes(oid));
      if (missing.length > 0) {
        yield {
          code: 'UsageNotAllowed',
          message: `${name} is not allowed for ${missing.map(ekuName).join(', ')} by its extended key usage.`,
        };
      }
    }
    if (this.checkPolicy && this.policy.maxValidityDays !== undefined) {
      const days = (cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000;
      if (days > this.policy.maxValidityDays) {
        yield {
          code: 'PolicyViolation',
          message: `${name} is valid for ${Math.ceil(days)} days; at most ${this.policy.maxValidityDays} are allowed.`,
        };
      }
    }
    yield* this.leafNameFindings(cert);
  }

  private *leafNameFindings(cert: Certificate): Generator<Finding> {
    const name = `"${cert.subject.rfc4514}"`;
    const sanExt = findExtension(cert, OID.subjectAltName);
    const san = safe(() => subjectAltNameListOf(cert));
    if (!sanExt) {
      yield {
        code: 'HostnameMismatch',
        message: `${name} has no subjectAltName, so it names no host (the common name is not used).`,
      };
      return;
    }
    if (!san) return; // damaged: reported with the other extensions
    const emptySubject = cert.subject.attributes.length === 0;
    if (emptySubject !== sanExt.critical) {
      yield {
        code: 'MalformedInput',
        message: emptySubject
          ? `${name} has an empty subject, so its subjectAltName must be critical.`
          : `${name} marks subjectAltName critical although its subject is not empty.`,
      };
    }
    for (const attr of cert.subject.attributes) {
      const why = attr.oid === COMMON_NAME ? commonNameProblem(attr.value, san) : undefined;
      if (why) yield { code: 'MalformedInput', message: `${why} (CA/B BR 7.1.4.3)` };
    }
    if (this.host && !coversParsedHost(san, this.host)) {
      yield {
        code: 'HostnameMismatch',
        message: `${name} does not cover ${this.host.kind === 'IP' ? 'the IP address' : 'the host'} ${this.host.value}.`,
      };
    }
  }

  /** Checks for a certificate that issues the one below it. */
  private *caFindings(cert: Certificate, role: Role): Generator<Finding> {
    const name = `"${cert.subject.rfc4514}"`;
    if (role === 'anchor' && cert.version === 1) return;
    const bc = safe(() => basicConstraintsOf(cert));
    if (!bc?.ca) {
      yield {
        code: 'NotACertificateAuthority',
        message: bc
          ? `${name} is not a CA (basicConstraints cA is FALSE) but issued a certificate.`
          : `${name} has no basicConstraints, so it is not a CA, but issued a certificate.`,
      };
    } else if (!bc.critical) {
      yield {
        code: 'MalformedInput',
        message: `${name} is a CA whose basicConstraints is not critical, which RFC 5280 requires.`,
      };
    }
    const usage = safe(() => keyUsageOf(cert));
    if (usage && !usage.includes('keyCertSign')) {
      yield {
        code: 'UsageNotAllowed',
        message: `${name} issued a certificate, but its key usage does not allow keyCertSign.`,
      };
    }
    if (cert.subject.attributes.length === 0) {
      yield { code: 'MalformedInput', message: `A CA certificate has an empty subject name.` };
    }
    const ski = safe(() => subjectKeyIdOf(cert));
    if (this.policy.requireKeyIdentifiers && !findExtension(cert, OID.subjectKeyIdentifier)) {
      yield {
        code: this.keyIdentifierCode,
        message: `${name} is a CA without a subject key identifier, which RFC 5280 requires.`,
      };
    }
    const nc = this.nameConstraints(cert);
    const ncWhy = nc && nameConstraintsProblem(nc);
    if (ncWhy) yield { code: 'MalformedInput', message: `${name}: ${ncWhy}` };
    const ekus = safe(() => extendedKeyUsageOidsOf(cert));
    if (role === 'anchor') {
      if (findExtension(cert, OID.extKeyUsage)) {
        yield {
          code: 'UsageNotAllowed',
          message: `The trust anchor ${name} carries extendedKeyUsage, which a root must not (CA/B BR 7.1.2.1.2).`,
        };
      }
      const aki = safe(() => authorityKeyIdentifierOf(cert));
      if (aki && (!aki.keyId || aki.hasIssuer || aki.hasSerial)) {
        yield {
          code: 'MalformedInput',
          message: `The trust anchor ${name} has an authority key identifier that is not just a key identifier (CA/B BR 7.1.2.1.3).`,
        };
      } else if (aki?.keyId && ski && isSelfIssued(cert) && aki.keyId !== ski) {
        yield {
          code: 'MalformedInput',
          message: `The trust anchor ${name} has an authority key identifier different from its own subject key identifier.`,
        };
      }
    } else if (ekus && !ekus.includes(ANY_EKU)) {
      const missing = this.requiredEkus.filter((oid) => !ekus.includes(oid));
      if (missing.length > 0) {
        yield {
          code: 'UsageNotAllowed',
          message: `${name} may only issue for purposes that exclude ${missing.map(ekuName).join(', ')}.`,
        };
      }
    }
  }
}

/** Certificates in the path that count against the depth: all but self-issued intermediates. */
function logicalDepth(path: Certificate[]): number {
  let depth = path.length;
  for (let i = 1; i < path.length - 1; i++) if (isSelfIssued(path[i]!)) depth--;
  return depth;
}

/** The serial number's content bytes and the TBS signature AlgorithmIdentifier. */
function tbsFields(
  cert: Certificate,
): { serial: Buffer; signatureAlgorithmDer: Buffer } | undefined {
  try {
    const tbs = cert.tbsDer;
    const fields = readChildren(tbs, readTlv(tbs));
    const off = fields[0]?.tag === 0xa0 ? 1 : 0;
    const serial = fields[off];
    const alg = fields[off + 1];
    if (!serial || !alg) return undefined;
    return { serial: tlvContent(tbs, serial), signatureAlgorithmDer: tlvBytes(tbs, alg) };
  } catch {
    return undefined;
  }
}

/** The digest a certificate's signature uses ('sha256'…), or undefined for EdDSA/unknown. */
function signatureHash(cert: Certificate): string | undefined {
  return signatureDigest(cert.signatureAlgorithmOid, cert.asn.signatureAlgorithm.parameters);
}

function isKey(key: KeyObject | Finding): key is KeyObject {
  return !('code' in key);
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function dedupe(problems: ValidationProblem[]): ValidationProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.code}|${p.index}|${p.certificate}|${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
