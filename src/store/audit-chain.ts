/**
 * The hash chain of the audit log, the same for every adapter. Each record's `hash` is
 * SHA-256 (hex) of its `prevHash` and the RFC 8785 (JSON Canonicalization Scheme)
 * serialisation of its fields, so that the chain can be checked by anyone with a JSON
 * canonicaliser, and an altered, inserted or removed record breaks it from there on.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AuditRecord, AuditVerification } from './store.js';

/** The `prevHash` of the first record. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** A record before its hash is known. */
export type UnhashedAuditRecord = Omit<AuditRecord, 'hash'>;

/** The hash of a record: SHA-256 over its `prevHash`, a newline and its JCS form. */
export function auditHash(record: UnhashedAuditRecord): string {
  const { prevHash, ...fields } = record;
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(canonicalize(fields) ?? '')
    .digest('hex');
}

/**
 * Checks records in ascending `seq` order: consecutive numbers from 1, each `prevHash`
 * the hash before it, each `hash` its own. Names the first record that breaks the chain.
 */
export function verifyAuditChain(records: Iterable<AuditRecord>): AuditVerification {
  let prevHash = AUDIT_GENESIS_HASH;
  let count = 0;
  for (const record of records) {
    count++;
    const broken = (reason: string): AuditVerification => ({
      ok: false,
      records: count,
      brokenAt: record.seq,
      reason,
    });
    if (record.seq !== count) {
      return broken(`record ${record.seq} follows record ${count - 1}: a record is missing`);
    }
    if (record.prevHash !== prevHash) {
      return broken(`record ${record.seq} does not point at the hash of the record before it`);
    }
    const { hash, ...unhashed } = record;
    if (auditHash(unhashed) !== hash) {
      return broken(`record ${record.seq} was altered after it was written`);
    }
    prevHash = hash;
  }
  return { ok: true, records: count };
}
