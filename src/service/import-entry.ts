import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { Certificate } from '../core/certificate.js';
import { buildChain } from '../core/chain.js';
import {
  type CertificateDescription,
  describeCertificate,
  isSelfSigned,
} from '../core/describe.js';
import { CoreError, type CoreErrorCode, isCoreError } from '../core/errors.js';
import { basicConstraintsOf } from '../core/extensions.js';
import { isValidDnsName } from '../core/hostname.js';
import { toPem } from '../core/pem.js';
import { readMaterial } from '../core/read.js';
import { type ValidationProblem, validateServerChain } from '../core/validate.js';
import { type EntryInput, type EntryRecord, type Mutation, StoreError } from '../store/store.js';
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';

const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
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

export interface ImportInput {
  alias: string;
  /** The uploaded files, in any format and order. */
  files: { name: string; bytes: Uint8Array }[];
  password?: string | undefined;
  /**
   * Replace the existing entry of this alias (renewal); `AliasNotFound` when there is
   * none. Without it an existing alias is `AliasInUse` (a pending entry is completed).
   */
  replace?: boolean;
  /** Also bind the entry as the `server` identity in the same change. */
  activate?: boolean;
  /** Also bind it for these SNI host names (exact or `*.` wildcard), in the same change. */
  sniHosts?: string[];
  actor: string;
  expectedRevision?: number;
}

export interface ImportResult {
  revision: number;
  entry: EntryRecord;
  certificate: CertificateDescription;
  /** Validation findings that don't block the import (an untrusted root, an incomplete chain). */
  warnings: ValidationProblem[];
}

/** Throws `InvalidAlias` unless the alias is usable for a user entry. */
export function checkAlias(alias: string): void {
  if (!ALIAS.test(alias) || alias.startsWith('certkeeper-')) {
    throw new ServiceError(
      'InvalidAlias',
      `The alias "${alias}" is not valid: use 1–64 letters, digits, dots, dashes or underscores, not starting with "certkeeper-".`,
    );
  }
}

/**
 * Imports a certificate with its key and chain (a `key-pair`), completes a `pending`
 * entry with its issued certificate, or stores a CA certificate (`trusted`), as one
 * change. Everything is validated before anything is written. A server certificate
 * without its key is `NoPrivateKey`, never a `trusted` entry; `replace` needs an existing
 * entry (`AliasNotFound`), and an existing alias without it is `AliasInUse`.
 */
export async function importEntry(ctx: ServiceContext, input: ImportInput): Promise<ImportResult> {
  checkAlias(input.alias);
  const certs: Certificate[] = [];
  const keys: KeyObject[] = [];
  /** The file each certificate came from (by SHA-256), so that errors can name it. */
  const fileOf = new Map<string, string>();
  for (const file of input.files) {
    const material = await readMaterial(file.bytes, { password: input.password }).catch(
      (err: unknown) => {
        if (!isCoreError(err)) throw err;
        throw new CoreError(err.code, `${file.name}: ${err.message}`, { cause: err });
      },
    );
    const problem = material.problems[0];
    if (problem) throw new CoreError(problem.code, `${file.name}: ${problem.message}`);
    for (const { certificate } of material.certificates) {
      certs.push(certificate);
      if (!fileOf.has(certificate.sha256)) fileOf.set(certificate.sha256, file.name);
    }
    keys.push(...material.keys.map((k) => k.key));
  }
  const existing = await ctx.store.getEntry(input.alias);
  if (existing && !input.replace && existing.kind !== 'pending') {
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
  let key = distinctKey(keys);
  if (!key && existing?.kind === 'pending' && existing.hasPrivateKey) {
    // Completing a CSR: the key is the pending entry's own.
    const der = await ctx.store.getPrivateKey(input.alias);
    if (der) key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }
  if (certs.length === 0) {
    throw new CoreError('NoCertificate', 'The upload holds no certificate.');
  }

  const now = ctx.now();
  let entry: EntryInput;
  let leaf: Certificate;
  const warnings: ValidationProblem[] = [];
  if (key) {
    const assembly = buildChain(certs, { key, trusted: ctx.trusted });
    leaf = assembly.leaf;
    // Serve what was supplied, minus a self-signed root: clients must already trust it.
    const supplied = new Set(certs.map((c) => c.sha256));
    const chain = assembly.chain.slice(1).filter((c) => supplied.has(c.sha256) && !isSelfSigned(c));
    const top = assembly.chain[assembly.chain.length - 1]!;
    const result = validateServerChain(leaf, {
      trusted: [...(assembly.complete && !assembly.anchoredBy ? [top] : []), ...ctx.trusted],
      intermediates: assembly.chain.slice(1),
      time: now,
    });
    for (const p of result.problems) {
      if (FATAL.has(p.code)) throw new CoreError(p.code, p.message);
      warnings.push(p);
    }
    entry = {
      alias: input.alias,
      kind: 'key-pair',
      certificatePem: toPem('CERTIFICATE', leaf.der),
      chainPem: chain.map((c) => toPem('CERTIFICATE', c.der)).join(''),
      privateKeyDer: key.export({ format: 'der', type: 'pkcs8' }),
      fingerprint: leaf.sha256,
    };
  } else {
    if (existing?.kind === 'pending') {
      throw new CoreError('NoPrivateKey', `The pending entry "${input.alias}" has lost its key.`);
    }
    if (input.activate || input.sniHosts?.length) {
      throw new CoreError('NoPrivateKey', 'A server identity needs its private key in the upload.');
    }
    const server = certs.find((c) => !isCa(c, fileOf.get(c.sha256)!));
    if (server) {
      throw new CoreError(
        'NoPrivateKey',
        `${fileOf.get(server.sha256)}: "${server.subject.rfc4514}" is a server certificate, not a CA, and needs its private key; add the key file.`,
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
  for (const host of input.sniHosts ?? []) {
    mutations.push({ type: 'bind', name: sniBinding(host), alias: input.alias });
  }
  const revision = await ctx.store.applyChange({
    actor: input.actor,
    action: existing ? (existing.kind === 'pending' ? 'complete-csr' : 'replace') : 'import',
    target: input.alias,
    details: {
      kind: entry.kind,
      fingerprint: leaf.sha256,
      subject: leaf.subject.rfc4514,
      notAfter: leaf.notAfter.toISOString(),
      activated: Boolean(input.activate),
      sniHosts: input.sniHosts ?? [],
    },
    ...(input.expectedRevision === undefined ? {} : { expectedRevision: input.expectedRevision }),
    mutations,
  });
  const stored = await ctx.store.getEntry(input.alias);
  return { revision, entry: stored!, certificate: describeCertificate(leaf), warnings };
}

/** The binding name for an SNI host: `sni:` and the lower-case name (`*.` wildcard allowed). */
export function sniBinding(host: string): string {
  const name = host.trim().toLowerCase().replace(/\.$/, '');
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  if (!isValidDnsName(bare)) {
    throw new ServiceError(
      'InvalidHostname',
      `"${host}" is not a host name an SNI binding can use.`,
    );
  }
  return `sni:${name}`;
}

/** Throws `PinnedBySource` when a higher-precedence startup source pins the server identity. */
export function assertNotPinned(ctx: ServiceContext): void {
  const source = ctx.serverPinnedBy?.();
  if (source) {
    throw new ServiceError(
      'PinnedBySource',
      `The served certificate comes from ${source}, which takes precedence over the keystore; remove it there first.`,
      { details: { source } },
    );
  }
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

/** The one private key of an upload (the same key twice counts once); several → TooManyKeys. */
function distinctKey(keys: KeyObject[]): KeyObject | undefined {
  const [first, ...rest] = keys;
  if (!first) return undefined;
  const pkcs8 = (k: KeyObject) => k.export({ format: 'der', type: 'pkcs8' }).toString('hex');
  if (rest.some((k) => pkcs8(k) !== pkcs8(first))) {
    throw new ServiceError(
      'TooManyKeys',
      'The upload holds more than one private key; give only the server key.',
    );
  }
  return first;
}
