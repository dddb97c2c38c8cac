import { parseCertificate } from '../core/certificate.js';
import { type CsrDescription, describeCsr, parseCsr } from '../core/csr.js';
import { type CertificateDescription, describeCertificate } from '../core/describe.js';
import { parsePemBlocks } from '../core/pem.js';
import type { AuditRecord, EntryKind, EntryRecord } from '../store/store.js';

export type { EntryKind };

import { StoreError } from '../store/store.js';
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';

/** How soon an expiry makes a certificate `expiring`, unless the caller says otherwise. */
export const DEFAULT_EXPIRING_WITHIN_DAYS = 30;

export type EntryStatus = 'valid' | 'expiring' | 'expired' | 'pending';

/** An entry as plain JSON: what it holds, what it is bound to and its status; never key material. */
export interface EntryDescription {
  alias: string;
  kind: EntryKind;
  status: EntryStatus;
  /** The leaf (key-pair) or CA (trusted) certificate; null for a pending entry. */
  certificate: CertificateDescription | null;
  /** The issuers stored with the leaf, in order. */
  chain: CertificateDescription[];
  /** The request of a pending entry; null otherwise. */
  csr: CsrDescription | null;
  hasPrivateKey: boolean;
  /** The binding names (`server`, `sni:<host>`, `ca`) that use this entry. */
  bindings: string[];
  /** The revision of the change that last changed it: its ETag. */
  revision: number;
  createdRevision: number;
  createdAt: string;
  updatedAt: string;
}

export interface ListEntriesInput {
  kind?: EntryKind;
  status?: EntryStatus;
  /** What counts as `expiring` (default 30 days). */
  expiringWithinDays?: number;
}

/** Every entry, described, optionally only of one kind or status; by alias. */
export async function listEntries(
  ctx: ServiceContext,
  input: ListEntriesInput = {},
): Promise<EntryDescription[]> {
  const days = expiringWindow(input.expiringWithinDays);
  const [entries, bindings] = await Promise.all([
    ctx.store.listEntries(input.kind === undefined ? {} : { kind: input.kind }),
    ctx.store.listBindings(),
  ]);
  const namesOf = new Map<string, string[]>();
  for (const b of bindings) {
    const names = namesOf.get(b.alias);
    if (names) names.push(b.name);
    else namesOf.set(b.alias, [b.name]);
  }
  const described: EntryDescription[] = [];
  for (const [i, e] of entries.entries()) {
    if (i > 0 && i % DESCRIBE_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
    const d = describe(ctx, e, namesOf.get(e.alias) ?? [], days);
    if (input.status === undefined || d.status === input.status) described.push(d);
  }
  return described.sort((a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0));
}

/** One entry, described (`AliasNotFound` when there is none). */
export async function describeEntry(
  ctx: ServiceContext,
  alias: string,
  options: { expiringWithinDays?: number } = {},
): Promise<EntryDescription> {
  const days = expiringWindow(options.expiringWithinDays);
  const entry = await ctx.store.getEntry(alias);
  if (!entry) throw new StoreError('AliasNotFound', `No entry is named "${alias}".`);
  const bindings = (await ctx.store.listBindings()).filter((b) => b.alias === alias);
  return describe(
    ctx,
    entry,
    bindings.map((b) => b.name),
    days,
  );
}

/** True when an entry has this alias: read without describing it (no certificate decoded). */
export async function entryExists(ctx: ServiceContext, alias: string): Promise<boolean> {
  return (await ctx.store.getEntry(alias)) !== undefined;
}

/** The audit log, newest first, optionally only after a revision (the store's, as it is). */
export async function listAudit(
  ctx: ServiceContext,
  input: { afterRevision?: number; afterSeq?: number; beforeSeq?: number; limit?: number } = {},
): Promise<AuditRecord[]> {
  return ctx.store.listAudit(input);
}

/**
 * Descriptions of the certificates read lately, by their DER: decoding one costs about a
 * millisecond, and a listing describes every entry and its chain (the same intermediate
 * for many). A certificate's description never changes; the cache is bounded.
 */
const DESCRIBED = new Map<string, CertificateDescription>();
const DESCRIBED_MAX = 4096;

/** The description of the certificate `der`, from the cache when it was described lately. */
function describedCertificate(der: Uint8Array): CertificateDescription {
  const key = Buffer.from(der).toString('base64');
  const cached = DESCRIBED.get(key);
  if (cached) {
    DESCRIBED.delete(key);
    DESCRIBED.set(key, cached);
    return cached;
  }
  // Shared by every entry that holds this certificate: frozen, so no caller can change it.
  const description = deepFreeze(describeCertificate(parseCertificate(der)));
  DESCRIBED.set(key, description);
  if (DESCRIBED.size > DESCRIBED_MAX) DESCRIBED.delete(DESCRIBED.keys().next().value!);
  return description;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Entries described between two turns of the event loop, so a long listing doesn't hold it. */
const DESCRIBE_BATCH = 64;

function describe(
  ctx: ServiceContext,
  entry: EntryRecord,
  bindings: string[],
  expiringWithinDays: number,
): EntryDescription {
  const certificates = (pem: string) =>
    parsePemBlocks(pem)
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => describedCertificate(b.der));
  const leaf = entry.certificatePem ? certificates(entry.certificatePem)[0] : undefined;
  const csrBlock = entry.csrPem
    ? parsePemBlocks(entry.csrPem).find((b) => b.label.endsWith('CERTIFICATE REQUEST'))
    : undefined;
  let status: EntryStatus = 'pending';
  if (leaf) {
    const now = ctx.now().getTime();
    const left = Date.parse(leaf.notAfter) - now;
    status = left < 0 ? 'expired' : left < expiringWithinDays * 86_400_000 ? 'expiring' : 'valid';
  }
  return {
    alias: entry.alias,
    kind: entry.kind,
    status,
    certificate: leaf ?? null,
    chain: entry.chainPem.trim() ? certificates(entry.chainPem) : [],
    csr: csrBlock ? describeCsr(parseCsr(csrBlock.der)) : null,
    hasPrivateKey: entry.hasPrivateKey,
    bindings: [...bindings].sort(),
    revision: entry.updatedRevision,
    createdRevision: entry.createdRevision,
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
  };
}

function expiringWindow(days: number | undefined): number {
  if (days === undefined) return DEFAULT_EXPIRING_WITHIN_DAYS;
  if (typeof days !== 'number' || !Number.isFinite(days) || days < 0) {
    throw new ServiceError('InvalidQuery', 'expiringWithinDays must be a number, 0 or more.');
  }
  return days;
}
