import { validateAssembledChain } from './anchored.js';
import type { Certificate } from './certificate.js';
import { buildChain } from './chain.js';
import { type CsrDescription, describeCsr } from './csr.js';
import { type CertificateDescription, describeCertificate } from './describe.js';
import { type CoreErrorCode, isCoreError } from './errors.js';
import { describeKey, type KeyDescription, matchKeyToCertificate } from './keys.js';
import type { Policy } from './policy.js';
import { type FoundKey, type InputFormat, type Material, readMaterial } from './read.js';
import { PathBudget } from './validate.js';

/** One input to inspect: a name for the report and its bytes. */
export interface InspectInput {
  name: string;
  bytes: Uint8Array;
}

export interface InspectOptions {
  password?: string | undefined;
  host?: string | undefined;
  /** The instant to validate at (the caller's clock). */
  now: Date;
  /**
   * Trust anchors for chain completion and validation (e.g. Node's bundled roots): the
   * only ones. A root inside the inputs is never trusted unless it is also given here.
   */
  trusted?: Certificate[];
  policy?: Partial<Policy>;
  /** What to do about an untrusted root that came with the inputs (ends its UntrustedRoot). */
  remedy?: string;
}

export interface InspectProblem {
  code: CoreErrorCode;
  message: string;
  /** The file (and part of it) the problem is about, if any. */
  origin?: string;
}

/** What `certkeeper inspect` reports, as one JSON document. */
export interface InspectReport {
  files: { name: string; format?: InputFormat; pkcs12?: Material['pkcs12']; ignored: string[] }[];
  certificates: (CertificateDescription & { id: string; origin: string })[];
  keys: (KeyDescription & {
    id: string;
    origin: string;
    format: FoundKey['format'];
    encrypted: boolean;
    matches: string[];
  })[];
  csrs: (CsrDescription & { id: string; origin: string })[];
  chain: {
    leaf: string;
    order: string[];
    complete: boolean;
    anchoredBy: string | null;
    missingIssuer: string | null;
    leftovers: string[];
    duplicatesDropped: number;
    /** Certificates passed over in favour of a valid one of the same name, and why. */
    leftOut: { certificate: string; inFavourOf: string; code: CoreErrorCode; message: string }[];
  } | null;
  validation: {
    valid: boolean;
    at: string;
    host: string | null;
    path: string[];
    problems: InspectProblem[];
  } | null;
  problems: InspectProblem[];
  /** True when everything was understood and whatever could be validated is valid. */
  ok: boolean;
}

/**
 * Reads every input, describes what it holds, pairs keys with certificates, builds the
 * chain from everything given and validates it at `now` (and for `host`).
 */
export async function inspect(
  inputs: InspectInput[],
  options: InspectOptions,
): Promise<InspectReport> {
  const report: InspectReport = {
    files: [],
    certificates: [],
    keys: [],
    csrs: [],
    chain: null,
    validation: null,
    problems: [],
    ok: true,
  };
  const certs: Certificate[] = [];
  const certIds = new Map<string, string>();
  const keys: FoundKey[] = [];
  const trustedById = new Map<string, string>();

  for (const input of inputs) {
    try {
      // Every key entry of a keystore is described, not only one picked by alias.
      const material = await readMaterial(input.bytes, {
        password: options.password,
        allKeyEntries: true,
      });
      report.files.push({
        name: input.name,
        format: material.format,
        ...(material.pkcs12 ? { pkcs12: material.pkcs12 } : {}),
        ignored: material.ignored,
      });
      for (const p of material.problems) {
        report.problems.push({ ...p, origin: `${input.name}: ${p.origin}` });
      }
      for (const { certificate, origin } of material.certificates) {
        if (certIds.has(certificate.sha256)) continue;
        const id = `cert-${certIds.size + 1}`;
        certIds.set(certificate.sha256, id);
        certs.push(certificate);
        report.certificates.push({
          id,
          origin: `${input.name}: ${origin}`,
          ...describeCertificate(certificate),
        });
      }
      for (const found of material.keys) {
        keys.push(found);
        report.keys.push({
          id: `key-${report.keys.length + 1}`,
          origin: `${input.name}: ${found.origin}`,
          format: found.format,
          encrypted: found.encrypted,
          matches: [],
          ...describeKey(found.key),
        });
      }
      for (const csr of material.csrs) {
        const description = describeCsr(csr);
        report.csrs.push({
          id: `csr-${report.csrs.length + 1}`,
          origin: input.name,
          ...description,
        });
        if (description.signatureValid === false) {
          report.problems.push({
            code: 'SignatureInvalid',
            message: 'The CSR signature does not verify: it was altered or signed by another key.',
            origin: input.name,
          });
        }
      }
    } catch (err) {
      report.files.push({ name: input.name, ignored: [] });
      report.problems.push({ ...problemOf(err), origin: input.name });
    }
  }

  for (const [i, found] of keys.entries()) {
    report.keys[i]!.matches = certs
      .filter((c) => matchKeyToCertificate(found.key, c))
      .map((c) => certIds.get(c.sha256)!);
  }

  if (certs.length > 0) {
    const trusted = options.trusted ?? [];
    for (const t of trusted) trustedById.set(t.sha256, `trusted:${t.subject.rfc4514}`);
    const idOf = (c: Certificate) => certIds.get(c.sha256) ?? trustedById.get(c.sha256) ?? c.sha256;
    const matchedKey = keys.find((k) => certs.some((c) => matchKeyToCertificate(k.key, c)));
    try {
      // One budget for everything given: choosing the leaf, building and validating.
      const budget = new PathBudget();
      const assembly = buildChain(certs, {
        ...(matchedKey ? { key: matchedKey.key } : {}),
        trusted,
        time: options.now,
        budget,
      });
      report.chain = {
        leaf: idOf(assembly.leaf),
        order: assembly.chain.map(idOf),
        complete: assembly.complete,
        anchoredBy: assembly.anchoredBy ? idOf(assembly.anchoredBy) : null,
        missingIssuer: assembly.missingIssuer?.rfc4514 ?? null,
        leftovers: assembly.leftovers.map(idOf),
        duplicatesDropped: assembly.duplicatesDropped,
        leftOut: assembly.leftOut.map((l) => ({
          certificate: idOf(l.certificate),
          inFavourOf: idOf(l.inFavourOf),
          code: l.code,
          message: l.message,
        })),
      };
      // Only configured anchors are trusted; a root that came with the bundle is checked
      // as far as it goes and then reported as UntrustedRoot.
      const result = validateAssembledChain(assembly, {
        trusted,
        time: options.now,
        budget,
        ...(options.host ? { host: options.host } : {}),
        ...(options.policy ? { policy: options.policy } : {}),
        ...(options.remedy ? { remedy: options.remedy } : {}),
      });
      report.validation = {
        valid: result.valid,
        at: options.now.toISOString(),
        host: options.host ?? null,
        path: result.path.map(idOf),
        problems: result.problems.map((p) => ({ code: p.code, message: p.message })),
      };
      if (keys.length > 0 && !matchedKey) {
        report.problems.push({
          code: 'KeyMismatch',
          message: 'None of the private keys given belongs to any of the certificates given.',
        });
      }
    } catch (err) {
      report.problems.push(problemOf(err));
    }
  } else if (options.host) {
    report.problems.push({
      code: 'NoCertificate',
      message: 'A host name was given but no certificate was found to check it against.',
    });
  }

  report.ok = report.problems.length === 0 && (report.validation?.valid ?? true);
  return report;
}

/** A typed error becomes a problem of the report; anything else is a bug and propagates. */
function problemOf(err: unknown): InspectProblem {
  if (isCoreError(err)) return { code: err.code, message: err.message };
  throw err;
}
