import type { KeyObject } from 'node:crypto';
import { type Certificate, type DistinguishedName, isSelfIssued } from './certificate.js';
import { CoreError, type CoreErrorCode, isCoreError } from './errors.js';
import { authorityKeyIdentifierOf, basicConstraintsOf, subjectKeyIdOf } from './extensions.js';
import { matchKeyToCertificate } from './keys.js';
import { PathBudget, searchPath } from './validate.js';

/** What an uploaded bag of certificates assembles into. Not a validation: see validate.ts. */
export interface ChainAssembly {
  leaf: Certificate;
  /** Leaf first, then each issuer in order, as far as the bag (and trusted set) reaches. */
  chain: Certificate[];
  /** True when the chain ends in a self-signed certificate or reaches a trusted one. */
  complete: boolean;
  /** The trusted certificate that completed the chain, if any. */
  anchoredBy?: Certificate;
  /** When incomplete: the issuer name of the last certificate of the chain. */
  missingIssuer?: DistinguishedName;
  /** Supplied certificates that are not part of the chain. */
  leftovers: Certificate[];
  /** How many supplied certificates were exact (same DER) duplicates. */
  duplicatesDropped: number;
  /**
   * Leftovers that could have taken a place in the chain (same subject) but were not valid
   * at `time`, each with the sentence that says so: e.g. an expired cross-signed
   * intermediate left out in favour of the valid one.
   */
  leftOut: LeftOut[];
}

/** A supplied issuer passed over in favour of another of the same name. */
export interface LeftOut {
  certificate: Certificate;
  inFavourOf: Certificate;
  /** Why: `CertificateExpired` or `CertificateNotYetValid`. */
  code: CoreErrorCode;
  message: string;
}

export interface BuildOptions {
  /** The private key: its certificate is the leaf. */
  key?: KeyObject | undefined;
  /** Configured anchors, which complete the chain when the bag stops short. */
  trusted?: Certificate[] | undefined;
  /** When given, a path valid at this instant is preferred to one that is not. */
  time?: Date | undefined;
  /**
   * The work this input may still cost (signature checks, search steps), to share with
   * its validation afterwards; default a fresh one. Read it to see the work done.
   */
  budget?: PathBudget | undefined;
}

/** Most leaf candidates an `AmbiguousLeaf` message names; the rest are counted. */
const NAMED_CANDIDATES = 3;

/**
 * Orders an unordered bag of certificates into leaf → issuers.
 *
 * The leaf is the certificate matching `key` when given; otherwise the one that issued
 * no other supplied certificate (preferring, among several, those not self-issued, then
 * those that are not CAs). The issuers are found by validate.ts's path search, depth
 * first with backtracking over every candidate (same name, key identifiers, signature):
 * a path to a configured anchor is preferred, then one to a self-signed root of the bag,
 * and among those a path that passes every check at `time`; when none does, the path
 * that got farthest. The whole input shares one bounded budget.
 *
 * Errors: an empty bag is `NoCertificate`, a key matching no certificate `KeyMismatch`,
 * several equally good leaves `AmbiguousLeaf`.
 */
export function buildChain(certificates: Certificate[], options: BuildOptions = {}): ChainAssembly {
  const bag = dedupe(certificates);
  const duplicatesDropped = certificates.length - bag.length;
  if (bag.length === 0) {
    throw new CoreError('NoCertificate', 'No certificate was supplied to build a chain from.');
  }
  const budget = options.budget ?? new PathBudget();
  const leaf = pickLeaf(bag, options.key, budget);
  const trusted = dedupe(options.trusted ?? []);
  const configured = new Set(trusted.map((c) => c.sha256));
  // A self-issued certificate whose own key verifies it, or whose signature can't be checked here.
  const selfSigned = (c: Certificate) => {
    if (!isSelfIssued(c)) return false;
    const verdict = budget.verify(c, c);
    return verdict !== undefined && (verdict === true || verdict.code !== 'SignatureInvalid');
  };

  let chain: Certificate[];
  if (configured.has(leaf.sha256) || selfSigned(leaf)) {
    chain = [leaf];
  } else {
    const others = bag.filter((c) => c !== leaf);
    chain = searchPath(leaf, {
      trusted,
      intermediates: others,
      suppliedRoots: others.filter(isSelfIssued),
      time: options.time,
      budget,
      // Building judges the issuers; the leaf's own purpose is the validation's business.
      requiredExtendedKeyUsage: [],
    }).path;
  }

  const last = chain[chain.length - 1]!;
  const anchoredBy = configured.has(last.sha256) ? last : undefined;
  const complete = anchoredBy !== undefined || selfSigned(last);
  const used = new Set(chain.map((c) => c.sha256));
  const leftovers = bag.filter((c) => !used.has(c.sha256));
  const assembly: ChainAssembly = {
    leaf,
    chain,
    complete,
    leftovers,
    duplicatesDropped,
    leftOut: options.time ? leftOut(chain, leftovers, options.time) : [],
  };
  if (anchoredBy) assembly.anchoredBy = anchoredBy;
  if (!complete) assembly.missingIssuer = last.issuer;
  return assembly;
}

/** Throws `ChainIncomplete` naming the missing issuer (RFC 4514) when assembly is incomplete. */
export function requireCompleteChain(assembly: ChainAssembly): void {
  if (assembly.complete) return;
  const last = assembly.chain[assembly.chain.length - 1]!;
  const missing = assembly.missingIssuer ?? last.issuer;
  throw new CoreError(
    'ChainIncomplete',
    `The chain stops at "${last.subject.rfc4514}": the issuer certificate "${missing.rfc4514}" is missing.`,
    { details: { missingIssuer: missing.rfc4514, lastSubject: last.subject.rfc4514 } },
  );
}

function dedupe(certificates: Certificate[]): Certificate[] {
  const seen = new Set<string>();
  return certificates.filter((c) => {
    if (seen.has(c.sha256)) return false;
    seen.add(c.sha256);
    return true;
  });
}

/** The leftovers that share a subject with an issuer of the chain but are not valid at `time`. */
function leftOut(chain: Certificate[], leftovers: Certificate[], time: Date): LeftOut[] {
  const out: LeftOut[] = [];
  const t = time.getTime();
  const validAt = (c: Certificate) => c.notBefore.getTime() <= t && t <= c.notAfter.getTime();
  const chosenBySubject = new Map<string, Certificate>();
  for (const c of chain.slice(1)) {
    if (validAt(c)) chosenBySubject.set(c.subject.der.toString('hex'), c);
  }
  for (const c of leftovers) {
    const chosen = chosenBySubject.get(c.subject.der.toString('hex'));
    if (!chosen || validAt(c)) continue;
    const expired = t > c.notAfter.getTime();
    const why = expired
      ? `expired ${c.notAfter.toISOString().slice(0, 10)}`
      : `not valid before ${c.notBefore.toISOString().slice(0, 10)}`;
    const role = isSelfIssued(chosen) ? 'root' : 'intermediate';
    out.push({
      certificate: c,
      inFavourOf: chosen,
      code: expired ? 'CertificateExpired' : 'CertificateNotYetValid',
      message: `The ${role} "${c.subject.rfc4514}" issued by "${c.issuer.rfc4514}" (${why}) was left out in favour of the one issued by "${chosen.issuer.rfc4514}".`,
    });
  }
  return out;
}

function pickLeaf(bag: Certificate[], key: KeyObject | undefined, budget: PathBudget): Certificate {
  let candidates: Certificate[];
  if (key) {
    candidates = bag.filter((c) => safeMatch(key, c));
    if (candidates.length === 0) {
      throw new CoreError(
        'KeyMismatch',
        'The private key does not belong to any of the supplied certificates.',
      );
    }
  } else {
    candidates = bag;
  }
  if (candidates.length > 1) {
    // The leaf issued none of the other supplied certificates. Found by name through an
    // index, then by signature within the budget; past it, the name alone counts.
    const byIssuer = new Map<string, Certificate[]>();
    for (const c of bag) {
      const name = c.issuer.der.toString('hex');
      const list = byIssuer.get(name);
      if (list) list.push(c);
      else byIssuer.set(name, [c]);
    }
    const ids = new KeyIds();
    const issuedNothing = candidates.filter(
      (c) => !issuedAnother(c, byIssuer.get(c.subject.der.toString('hex')) ?? [], ids, budget),
    );
    candidates = issuedNothing.length > 0 ? issuedNothing : candidates;
  }
  candidates = prefer(candidates, (c) => !isSelfIssued(c));
  candidates = prefer(candidates, (c) => !isCa(c));
  if (candidates.length > 1) {
    const named = candidates.slice(0, NAMED_CANDIDATES).map((c) => `"${c.subject.rfc4514}"`);
    const more = candidates.length - named.length;
    const list =
      more > 0 ? `${named.join(', ')} and ${more.toLocaleString('en-US')} more` : named.join(', ');
    throw new CoreError(
      'AmbiguousLeaf',
      `${candidates.length.toLocaleString('en-US')} certificates could be the leaf (${list}); supply its private key or remove the others.`,
      {
        details: {
          candidates: candidates.slice(0, NAMED_CANDIDATES).map((c) => c.subject.rfc4514),
          count: candidates.length,
        },
      },
    );
  }
  return candidates[0]!;
}

/** True when `issuer` plausibly issued one of `named` (the certificates naming it as issuer). */
function issuedAnother(
  issuer: Certificate,
  named: Certificate[],
  ids: KeyIds,
  budget: PathBudget,
): boolean {
  for (const child of named) {
    if (child === issuer || !ids.agree(child, issuer)) continue;
    const verdict = budget.verify(child, issuer);
    // Spent budget, or a key or algorithm that can't be checked here: the name decides.
    if (verdict === undefined || verdict === true || verdict.code !== 'SignatureInvalid') {
      return true;
    }
  }
  return false;
}

/** The subset satisfying `test`, unless that is empty. */
function prefer(list: Certificate[], test: (c: Certificate) => boolean): Certificate[] {
  const preferred = list.filter(test);
  return preferred.length > 0 ? preferred : list;
}

function safeMatch(key: KeyObject, cert: Certificate): boolean {
  try {
    return matchKeyToCertificate(key, cert);
  } catch (err) {
    // A certificate whose key Node can't load simply isn't the key's certificate.
    if (isCoreError(err)) return false;
    throw err;
  }
}

function isCa(cert: Certificate): boolean {
  try {
    return basicConstraintsOf(cert)?.ca === true;
  } catch {
    return false;
  }
}

/** Key identifiers, decoded once per certificate; a damaged one only loses a hint. */
class KeyIds {
  readonly #ids = new Map<string, { aki?: string | undefined; ski?: string | undefined }>();

  /** False only when the child's AKI and the issuer's SKI are both present and differ. */
  agree(child: Certificate, issuer: Certificate): boolean {
    const aki = this.#of(child).aki;
    const ski = this.#of(issuer).ski;
    return aki === undefined || ski === undefined || aki === ski;
  }

  #of(cert: Certificate) {
    let ids = this.#ids.get(cert.sha256);
    if (!ids) {
      ids = {
        aki: attempt(() => authorityKeyIdentifierOf(cert)?.keyId),
        ski: attempt(() => subjectKeyIdOf(cert)),
      };
      this.#ids.set(cert.sha256, ids);
    }
    return ids;
  }
}

function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
