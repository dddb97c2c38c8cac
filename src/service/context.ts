import type { Certificate } from '../core/certificate.js';
import type { Store } from '../store/store.js';
import type { Principal } from './principal.js';

/**
 * An event that changes nothing in the keystore but must be on record (a PKCS#12 export).
 * Plain JSON only: never key material or passwords.
 */
export interface AuditEvent {
  action: string;
  target: string;
  principal: Principal;
  details: Record<string, unknown>;
}

/** What every service operation shares: the store, the clock and the trust anchors. */
export interface ServiceContext {
  store: Store;
  now: () => Date;
  /** Trust anchors for completing and validating uploaded chains (e.g. Node's roots). */
  trusted: Certificate[];
  /**
   * Names the startup source that pins the served identity (a flag, the default file
   * location, the config file or the environment), or undefined when the keystore
   * decides. Activation of the `server` binding is refused while a source pins it.
   */
  serverPinnedBy?: () => string | undefined;
  /**
   * Records an event that is not a change (an export). An operation that needs it waits
   * for it before it hands anything out, and refuses when it is missing or fails.
   */
  audit?: (event: AuditEvent) => Promise<void>;
}

/** Aliases that certkeeper itself owns (the local CA and its server certificate). */
export const LOCAL_CA_ALIAS = 'certkeeper-local-ca';
export const LOCAL_SERVER_ALIAS = 'certkeeper-local-server';

/** True for an alias certkeeper owns (`certkeeper-*`): no operation of a person touches it. */
export function isReservedAlias(alias: string): boolean {
  return alias.startsWith('certkeeper-');
}

/**
 * The revision a write must be made at: the caller's (an `If-Match` ETag), or the store's
 * revision now. Read it before reading what the change is validated against, so that a
 * writer in between makes the write fail with `RevisionConflict`, never overwrite.
 */
export async function revisionToExpect(
  ctx: ServiceContext,
  expectedRevision: number | undefined,
): Promise<number> {
  return expectedRevision ?? (await ctx.store.revision());
}
