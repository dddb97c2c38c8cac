import type { KeyObject } from 'node:crypto';
import * as asn from '@peculiar/asn1-x509';
import {
  type Certificate,
  certificatePublicKey,
  type DistinguishedName,
  getExtension,
  isSelfIssued,
} from './certificate.js';
import { CoreError, isCoreError } from './errors.js';
import { matchKeyToCertificate } from './keys.js';
import { verifyCertificateSignature } from './signature.js';

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
}

/**
 * Orders an unordered bag of certificates into leaf → issuers.
 *
 * The leaf is the certificate matching `key` when given; otherwise the one that issued
 * no other supplied certificate (preferring, among several, those not self-issued, then
 * those that are not CAs). Issuers are found by name and AKI/SKI and confirmed by their
 * signature; when the bag stops short, the chain is completed from `trusted`.
 *
 * Errors: an empty bag is `NoCertificate`, a key matching no certificate `KeyMismatch`,
 * several equally good leaves `AmbiguousLeaf`.
 */
export function buildChain(
  certificates: Certificate[],
  options: { key?: KeyObject; trusted?: Certificate[] } = {},
): ChainAssembly {
  const bag = dedupe(certificates);
  const duplicatesDropped = certificates.length - bag.length;
  if (bag.length === 0) {
    throw new CoreError('NoCertificate', 'No certificate was supplied to build a chain from.');
  }
  const links = new Links();
  const leaf = pickLeaf(bag, links, options.key);
  const trusted = dedupe(options.trusted ?? []);
  const trustedByHash = new Map(trusted.map((t) => [t.sha256, t]));

  const chain = [leaf];
  const used = new Set([leaf.sha256]);
  let anchoredBy = trustedByHash.get(leaf.sha256);
  let current = leaf;
  while (!links.selfSigned(current)) {
    const next = links.findIssuer(
      current,
      bag.filter((c) => !used.has(c.sha256)),
    );
    if (next) {
      chain.push(next);
      used.add(next.sha256);
      anchoredBy ??= trustedByHash.get(next.sha256);
      current = next;
      continue;
    }
    if (!anchoredBy) {
      const anchor = links.findIssuer(
        current,
        trusted.filter((c) => !used.has(c.sha256)),
      );
      if (anchor) {
        chain.push(anchor);
        anchoredBy = anchor;
      }
    }
    break;
  }

  const last = chain[chain.length - 1]!;
  const complete = anchoredBy !== undefined || links.selfSigned(last);
  const assembly: ChainAssembly = {
    leaf,
    chain,
    complete,
    leftovers: bag.filter((c) => !used.has(c.sha256)),
    duplicatesDropped,
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

function pickLeaf(bag: Certificate[], links: Links, key: KeyObject | undefined): Certificate {
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
    // The leaf issued none of the other supplied certificates.
    const issuedNothing = candidates.filter(
      (c) => !bag.some((other) => other !== c && links.signedBy(other, c)),
    );
    candidates = issuedNothing.length > 0 ? issuedNothing : candidates;
  }
  candidates = prefer(candidates, (c) => !isSelfIssued(c));
  candidates = prefer(candidates, (c) => !isCa(c));
  if (candidates.length > 1) {
    const names = candidates.map((c) => `"${c.subject.rfc4514}"`).join(', ');
    throw new CoreError(
      'AmbiguousLeaf',
      `Several certificates could be the leaf (${names}); supply its private key or remove the others.`,
      { details: { candidates: candidates.map((c) => c.subject.rfc4514) } },
    );
  }
  return candidates[0]!;
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
    return getExtension(cert, asn.id_ce_basicConstraints, asn.BasicConstraints)?.cA === true;
  } catch {
    return false;
  }
}

function keyIdentifiers(cert: Certificate): { aki?: Buffer; ski?: Buffer } {
  const ids: { aki?: Buffer; ski?: Buffer } = {};
  try {
    const aki = getExtension(cert, asn.id_ce_authorityKeyIdentifier, asn.AuthorityKeyIdentifier);
    if (aki?.keyIdentifier) ids.aki = Buffer.from(aki.keyIdentifier.buffer);
  } catch {
    // A damaged AKI only loses us a hint; the signature still decides.
  }
  try {
    const ski = getExtension(cert, asn.id_ce_subjectKeyIdentifier, asn.SubjectKeyIdentifier);
    if (ski) ids.ski = Buffer.from(ski.buffer);
  } catch {
    // Likewise for a damaged SKI.
  }
  return ids;
}

/** Name comparison: equal DER, or equal RFC 4514 text ignoring case and repeated spaces. */
function sameName(a: DistinguishedName, b: DistinguishedName): boolean {
  if (a.der.equals(b.der)) return true;
  const norm = (n: DistinguishedName) => n.rfc4514.toLowerCase().replace(/\s+/g, ' ');
  return norm(a) === norm(b);
}

/** Issuer relations between certificates, each signature checked once. */
class Links {
  readonly #verdicts = new Map<string, boolean | null>();
  readonly #ids = new Map<string, { aki?: Buffer; ski?: Buffer }>();

  /** True when `issuer` plausibly issued `child`: name, key identifiers, then signature. */
  signedBy(child: Certificate, issuer: Certificate): boolean {
    return this.#candidate(child, issuer) && this.#verify(child, issuer) !== false;
  }

  /** A self-issued certificate whose signature its own key verifies (or can't be checked). */
  selfSigned(cert: Certificate): boolean {
    return isSelfIssued(cert) && this.signedBy(cert, cert);
  }

  /** The issuer of `child` among `pool`: verified signatures first, then unverifiable ones. */
  findIssuer(child: Certificate, pool: Certificate[]): Certificate | undefined {
    const candidates = pool.filter((c) => c !== child && this.#candidate(child, c));
    return (
      candidates.find((c) => this.#verify(child, c) === true) ??
      candidates.find((c) => this.#verify(child, c) === null)
    );
  }

  #idsOf(cert: Certificate): { aki?: Buffer; ski?: Buffer } {
    let ids = this.#ids.get(cert.sha256);
    if (!ids) {
      ids = keyIdentifiers(cert);
      this.#ids.set(cert.sha256, ids);
    }
    return ids;
  }

  #candidate(child: Certificate, issuer: Certificate): boolean {
    if (!sameName(child.issuer, issuer.subject)) return false;
    const aki = this.#idsOf(child).aki;
    const ski = this.#idsOf(issuer).ski;
    return !aki || !ski || aki.equals(ski);
  }

  /** true/false when checked; null when the algorithm or key can't be used here. */
  #verify(child: Certificate, issuer: Certificate): boolean | null {
    const id = `${child.sha256}|${issuer.sha256}`;
    let verdict = this.#verdicts.get(id);
    if (verdict === undefined) {
      try {
        verdict = verifyCertificateSignature(child, certificatePublicKey(issuer));
      } catch (err) {
        if (!isCoreError(err)) throw err;
        verdict = err.code === 'UnsupportedAlgorithm' ? null : false;
      }
      this.#verdicts.set(id, verdict);
    }
    return verdict;
  }
}
