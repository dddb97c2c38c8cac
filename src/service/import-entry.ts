import type { Certificate } from '../core/certificate.js';
import {
  type CertificateDescription,
  describeCertificate,
  isSelfSigned,
} from '../core/describe.js';
import { CoreError, isCoreError } from '../core/errors.js';
import { basicConstraintsOf, subjectAltNamesOf } from '../core/extensions.js';
import { toPem } from '../core/pem.js';
import type { ValidationProblem } from '../core/validate.js';
import {
  type ChangeInput,
  type EntryInput,
  type EntryRecord,
  type Mutation,
  StoreError,
} from '../store/store.js';
import { checkAlias } from './alias.js';
import { assertNotPinned, sniBinding } from './binding-name.js';
import { checkEntryRevision, guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { assembleKeyPair, trustAnchors } from './key-pair.js';
import { changeBy, type Principal } from './principal.js';
import { distinctKey, readUpload, type UploadedFile } from './upload.js';

export interface ImportInput {
  alias: string;
  /** The uploaded files, in any format and order. */
  files: UploadedFile[];
  password?: string | undefined;
  /** The key entry to take from a keystore (PKCS#12) with several: its alias. */
  keyAlias?: string | undefined;
  /**
   * Replace the existing entry of this alias (renewal); `AliasNotFound` when there is
   * none. Without it an existing alias is `AliasInUse`.
   */
  replace?: boolean;
  /** Also bind the entry as the `server` identity in the same change. */
  activate?: boolean;
  /** Also bind it for these SNI host names (exact or `*.` wildcard), in the same change. */
  sniHosts?: string[];
  principal: Principal;
  /** The revision the caller saw (`If-Match`); otherwise the revision read when planning. */
  expectedRevision?: number;
  /** With `replace`: the entry's revision the caller saw (its ETag); `RevisionConflict` if it changed. */
  entryRevision?: number;
}

/** What an import would do, as plain JSON: what `preflightImport` answers. */
export interface ImportDescription {
  alias: string;
  action: 'import' | 'replace';
  kind: 'key-pair' | 'trusted';
  /** The entry's certificate (the leaf of a key pair, the CA of a trusted entry). */
  certificate: CertificateDescription;
  /** The issuers stored and served with the leaf, in order (no self-signed root). */
  chain: CertificateDescription[];
  /** Validation findings that don't block the import (an untrusted root, an incomplete chain). */
  warnings: ValidationProblem[];
  /** The host names and addresses the certificate covers. */
  hostnames: { dns: string[]; ip: string[] };
  /** The bindings the change sets (`server`, `sni:<host>`). */
  bindings: string[];
  /** The fingerprint of the entry it replaces, when it replaces one. */
  replaces: string | null;
  /** The store revision it was planned at; the change is made only at this revision. */
  revision: number;
}

/** A validated import: the change to apply, and what it means. */
export interface ImportPlan {
  change: ChangeInput;
  description: ImportDescription;
}

export interface ImportResult {
  revision: number;
  entry: EntryRecord;
  certificate: CertificateDescription;
  /** Validation findings that don't block the import (an untrusted root, an incomplete chain). */
  warnings: ValidationProblem[];
  description: ImportDescription;
}

/**
 * Validates an import completely and builds its change, writing nothing: a key pair
 * (certificate, key and chain), or a CA certificate alone as a `trusted` entry. A server
 * certificate without its key is `NoPrivateKey`, never a `trusted` entry; `replace`
 * needs an existing entry (`AliasNotFound`); an existing alias without it is `AliasInUse`;
 * a pending CSR entry is `EntryNotUsable` (complete it with `completeCsr`).
 */
export async function planImport(ctx: ServiceContext, input: ImportInput): Promise<ImportPlan> {
  checkAlias(input.alias);
  const upload = await readUpload(input.files, input.password, input.keyAlias);
  const key = distinctKey(upload.keys);
  const certs = upload.certificates;
  if (certs.length === 0) {
    throw new CoreError('NoCertificate', 'The upload holds no certificate.');
  }
  const sniBindings = (input.sniHosts ?? []).map(sniBinding);

  const existing = await ctx.store.getEntry(input.alias);
  if (existing?.kind === 'pending') {
    throw new ServiceError(
      'EntryNotUsable',
      `"${input.alias}" is a pending CSR entry: complete it with its issued certificate (completeCsr, POST /api/v1/csrs/${input.alias}/certificate) instead of importing over it.`,
    );
  }
  if (existing && !input.replace) {
    throw new StoreError(
      'AliasInUse',
      `An entry named "${input.alias}" already exists; replace it to renew it, or choose another alias.`,
    );
  }
  if (!existing && input.replace) {
    throw new StoreError(
      'AliasNotFound',
      `No entry is named "${input.alias}", so there is nothing to replace; import it as a new entry.`,
    );
  }
  if (existing) checkEntryRevision(existing, input.entryRevision);

  let entry: EntryInput;
  let leaf: Certificate;
  let chain: Certificate[] = [];
  let warnings: ValidationProblem[] = [];
  if (key) {
    ({ entry, leaf, chain, warnings } = assembleKeyPair(
      ctx,
      input.alias,
      certs,
      key,
      await trustAnchors(ctx),
    ));
  } else {
    if (input.activate || sniBindings.length > 0) {
      throw new CoreError('NoPrivateKey', 'A server identity needs its private key in the upload.');
    }
    const server = certs.find((c) => !isCa(c, upload.fileOf.get(c.sha256)!));
    if (server) {
      throw new CoreError(
        'NoPrivateKey',
        `${upload.fileOf.get(server.sha256)}: "${server.subject.rfc4514}" is a server certificate, not a CA, and needs its private key; add the key file.`,
      );
    }
    if (new Set(certs.map((c) => c.sha256)).size > 1) {
      throw new ServiceError(
        'TooManyCertificates',
        'A trusted entry holds one CA certificate; import each one under its own alias.',
      );
    }
    leaf = certs[0]!;
    entry = {
      alias: input.alias,
      kind: 'trusted',
      certificatePem: toPem('CERTIFICATE', leaf.der),
      chainPem: '',
      privateKeyDer: null,
      fingerprint: leaf.sha256,
    };
  }

  const mutations: Mutation[] = [{ type: 'putEntry', entry }];
  if (input.activate) {
    assertNotPinned(ctx);
    mutations.push({ type: 'bind', name: 'server', alias: input.alias });
  }
  for (const name of sniBindings) mutations.push({ type: 'bind', name, alias: input.alias });
  const action = existing ? 'replace' : 'import';
  const sans = subjectAltNamesOf(leaf);
  const change = changeBy(input.principal, {
    action,
    target: input.alias,
    details: {
      kind: entry.kind,
      fingerprint: leaf.sha256,
      subject: leaf.subject.rfc4514,
      notAfter: leaf.notAfter.toISOString(),
      activated: Boolean(input.activate),
      sniHosts: sniBindings.map((b) => b.slice(4)),
    },
    ...guards(input.expectedRevision, [
      existing
        ? { type: 'entryRevision', alias: input.alias, revision: existing.updatedRevision }
        : { type: 'entryAbsent', alias: input.alias },
    ]),
    mutations,
  });
  return {
    change,
    description: {
      alias: input.alias,
      action,
      kind: entry.kind as 'key-pair' | 'trusted',
      certificate: describeCertificate(leaf),
      chain: chain.map(describeCertificate),
      warnings,
      hostnames: { dns: sans.dns, ip: sans.ip },
      bindings: mutations.flatMap((m) => (m.type === 'bind' ? [m.name] : [])),
      replaces: existing?.fingerprint ?? null,
      revision: await ctx.store.revision(),
    },
  };
}

/**
 * Imports a certificate with its key and chain (a `key-pair`), or a CA certificate
 * (`trusted`), as one change made at the revision it was validated at (`RevisionConflict`
 * when another writer came first). See `planImport` for what is refused.
 */
export async function importEntry(ctx: ServiceContext, input: ImportInput): Promise<ImportResult> {
  const { change, description } = await planImport(ctx, input);
  const revision = await ctx.store.applyChange(change);
  const stored = await ctx.store.getEntry(input.alias);
  return {
    revision,
    entry: stored!,
    certificate: description.certificate,
    warnings: description.warnings,
    description,
  };
}

/**
 * True when the certificate may be a trust anchor (a `trusted` entry may hold it): its basic
 * constraints make it a CA, or it is a self-signed certificate without basic constraints
 * (an X.509 v1 root, still found in old private PKIs).
 */
function isCa(cert: Certificate, file: string): boolean {
  try {
    const constraints = basicConstraintsOf(cert);
    return constraints ? constraints.ca === true : isSelfSigned(cert);
  } catch (err) {
    if (!isCoreError(err)) throw err;
    throw new CoreError(err.code, `${file}: ${err.message}`, { cause: err });
  }
}
