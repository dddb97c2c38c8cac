import { parseCertificate } from '../core/certificate.js';
import { type CsrDescription, describeCsr, parseCsr } from '../core/csr.js';
import { type CertificateDescription, describeCertificate } from '../core/describe.js';
import { parsePemBlocks } from '../core/pem.js';
import type { AuditRecord, EntryKind, EntryRecord } from '../store/store.js';
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

/** The most entries one page holds, and how many when the caller does not say. */
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

export interface EntryPageInput extends ListEntriesInput {
  /** At most this many entries, 1 to `MAX_PAGE_SIZE` (default `DEFAULT_PAGE_SIZE`). */
  limit?: number;
  /** The page starts after this alias; it need not be an entry's. */
  after?: string;
}

/** One page of a listing. */
export interface EntryPage {
  entries: EntryDescription[];
  /** The `after` of the next page (the last alias of this one); null when none follows. */
  next: string | null;
}

/**
 * Every entry, described, optionally only of one kind or status; by alias. All of them
 * however many: a front end that shows a page asks `listEntryPage` instead.
 */
export async function listEntries(
  ctx: ServiceContext,
  input: ListEntriesInput = {},
): Promise<EntryDescription[]> {
  return (await readEntries(ctx, input, { size: undefined })).entries;
}

/**
 * One page of the entries that match the filters, by alias after `input.after`: `limit`
 * of them unless it is the last page. The entries are read in batches from `after`, so a
 * page reads and describes its own entries (and, with a status filter, those skipped), not
 * every entry of the keystore; the bindings, to name each entry's, are all read.
 */
export async function listEntryPage(
  ctx: ServiceContext,
  input: EntryPageInput = {},
): Promise<EntryPage> {
  const limit = input.limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new ServiceError('InvalidQuery', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}.`);
  }
  if (input.after !== undefined && (typeof input.after !== 'string' || input.after === '')) {
    throw new ServiceError('InvalidQuery', 'after must be an alias.');
  }
  return readEntries(ctx, input, { size: limit, after: input.after });
}

/**
 * The matching entries in the store's order (by alias: see `ListEntriesOptions`), from
 * after `page.after`: `page.size` of them and whether one more matches, or all of them.
 */
async function readEntries(
  ctx: ServiceContext,
  filters: ListEntriesInput,
  page: { size: number | undefined; after?: string | undefined },
): Promise<EntryPage> {
  const days = expiringWindow(filters.expiringWithinDays);
  const { size } = page;
  const kind = filters.kind === undefined ? {} : { kind: filters.kind };
  // One more than the page: an entry left over means a next page. A status is only known
  // once an entry is described, so a filtered page reads larger batches.
  const batch =
    size === undefined
      ? undefined
      : filters.status === undefined
        ? size + 1
        : Math.max(size + 1, DESCRIBE_BATCH);
  const read = (after: string | undefined) =>
    ctx.store.listEntries({
      ...kind,
      ...(after === undefined ? {} : { after }),
      ...(batch === undefined ? {} : { limit: batch }),
    });
  const [first, bindings] = await Promise.all([read(page.after), ctx.store.listBindings()]);
  const namesOf = new Map<string, string[]>();
  for (const b of bindings) {
    const names = namesOf.get(b.alias);
    if (names) names.push(b.name);
    else namesOf.set(b.alias, [b.name]);
  }
  const entries: EntryDescription[] = [];
  const more = () => ({ entries, next: entries.at(-1)?.alias ?? null });
  let records = first;
  let described = 0;
  for (;;) {
    for (const record of records) {
      const full = entries.length === size;
      // Past a full page, any entry left is a next page, unless a status must be checked.
      if (full && filters.status === undefined) return more();
      if (described > 0 && described % DESCRIBE_BATCH === 0) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      described++;
      const d = describe(ctx, record, namesOf.get(record.alias) ?? [], days);
      if (filters.status !== undefined && d.status !== filters.status) continue;
      if (full) return more();
      entries.push(d);
    }
    const last = records.at(-1);
    if (batch === undefined || records.length < batch || last === undefined) {
      return { entries, next: null };
    }
    records = await read(last.alias);
  }
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
