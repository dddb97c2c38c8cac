import type { AuditVerification } from '../store/store.js';
import type { ServiceContext } from './context.js';

/**
 * Checks the audit log's hash chain from its first record: every record is there, in
 * order, unaltered. Resolves the count, or the first record that breaks the chain and why.
 */
export async function verifyAuditLog(ctx: ServiceContext): Promise<AuditVerification> {
  return ctx.store.verifyAudit();
}
