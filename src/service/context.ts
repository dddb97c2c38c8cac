import type { Certificate } from '../core/certificate.js';
import { type ChangeInput, type Precondition, type Store, StoreError } from '../store/store.js';

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
}

/** Aliases that certkeeper itself owns (the local CA and its server certificate). */
export const LOCAL_CA_ALIAS = 'certkeeper-local-ca';
export const LOCAL_SERVER_ALIAS = 'certkeeper-local-server';

/** True for an alias certkeeper owns (`certkeeper-*`): no operation of a person touches it. */
export function isReservedAlias(alias: string): boolean {
  return alias.startsWith('certkeeper-');
}

/**
 * The guards of a write: the caller's store revision when it gave one (`If-Match` on a
 * whole change), and the preconditions on exactly what the operation read and validated
 * (the entry's revision, a binding, an alias being free). The store checks them inside
 * the transaction, so a writer in between that touched the same thing makes this one
 * fail with `RevisionConflict` (or `AliasInUse`…), never overwrite, while writes to other
 * things don't get in each other's way.
 */
export function guards(
  expectedRevision: number | undefined,
  preconditions: Precondition[],
): Pick<ChangeInput, 'expectedRevision' | 'preconditions'> {
  return {
    ...(expectedRevision === undefined ? {} : { expectedRevision }),
    preconditions,
  };
}

/**
 * Throws `RevisionConflict` when the caller saw the entry at another revision than it has
 * now (`If-Match` with its ETag). The write's `entryRevision` precondition then holds the
 * same revision inside the transaction, so a change in between still fails it.
 */
export function checkEntryRevision(
  entry: { alias: string; updatedRevision: number },
  seen: number | undefined,
): void {
  if (seen === undefined || seen === entry.updatedRevision) return;
  throw new StoreError(
    'RevisionConflict',
    `"${entry.alias}" changed since revision ${seen} (it is at revision ${entry.updatedRevision}); read it again and retry.`,
    { details: { alias: entry.alias, seen, current: entry.updatedRevision } },
  );
}
