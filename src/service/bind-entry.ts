import { readValidity } from '../core/certificate.js';
import { CoreError } from '../core/errors.js';
import { type ChangeInput, type Mutation, StoreError } from '../store/store.js';
import { assertNotPinned, existingBinding, type UserBinding, userBinding } from './binding-name.js';
import { checkEntryRevision, guards, isReservedAlias, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { changeBy, type Principal } from './principal.js';
import {
  PENDING_CONFIRMATION_SETTING,
  PREVIOUS_SERVER_SETTING,
  serverActivation,
} from './server-identity.js';

export interface BindInput {
  alias: string;
  /** `server` (the default HTTPS identity) or `sni:<host>` (exact or `*.` wildcard). */
  binding: string;
  principal: Principal;
  /** The revision the caller saw (`If-Match`); otherwise the revision read before checking. */
  expectedRevision?: number;
  /**
   * For `server` only: unless `confirmServer` is called within this many seconds, the
   * runtime puts the previous identity back by itself (commit-confirmed). The deadline is
   * stored with the change, so a server restarted inside the window still rolls back.
   */
  confirmWithinSeconds?: number;
  /** The entry's revision the caller saw (its ETag): `RevisionConflict` if it changed since. */
  entryRevision?: number;
}

export interface UnbindInput {
  binding: string;
  principal: Principal;
  expectedRevision?: number;
}

export interface BindResult {
  revision: number;
  /** The canonical binding name written. */
  binding: UserBinding;
  /** When a confirmation window was asked for: the instant the activation rolls back. */
  confirmBefore?: string;
}

export interface UnbindResult extends BindResult {
  /** The alias that was bound. */
  alias: string;
}

/** A validated bind or unbind: the change to apply, and what it will say. */
export interface BindPlan<Result> {
  change: ChangeInput;
  result: Omit<Result, 'revision'>;
}

/**
 * Binds a valid `key-pair` entry as the `server` identity or for an SNI host, as one
 * change; the runtime follows it, swaps, probes and rolls back on failure. See `planBind`
 * for what is refused.
 */
export async function bindEntry(ctx: ServiceContext, input: BindInput): Promise<BindResult> {
  const { change, result } = await planBind(ctx, input);
  return { revision: await ctx.store.applyChange(change), ...result };
}

/**
 * Validates a binding and builds its change, writing nothing. `server` is refused while a
 * higher-precedence source pins it (`PinnedBySource`); only an unexpired key pair binds.
 */
export async function planBind(
  ctx: ServiceContext,
  input: BindInput,
): Promise<BindPlan<BindResult>> {
  const binding = userBinding(input.binding);
  if (isReservedAlias(input.alias)) {
    throw new ServiceError(
      'InvalidAlias',
      `"${input.alias}" belongs to certkeeper's local CA; to serve the local CA's certificate again, unbind "${binding}".`,
    );
  }
  const entry = await ctx.store.getEntry(input.alias);
  if (!entry) throw new StoreError('AliasNotFound', `No entry is named "${input.alias}".`);
  checkEntryRevision(entry, input.entryRevision);
  if (entry.kind !== 'key-pair' || !entry.hasPrivateKey || !entry.certificatePem) {
    throw new ServiceError(
      'EntryNotUsable',
      `The entry "${input.alias}" is a ${entry.kind} entry; only a key pair can serve HTTPS.`,
    );
  }
  const leaf = readValidity(entry.certificatePem);
  if (leaf.notAfter < ctx.now()) {
    throw new CoreError(
      'CertificateExpired',
      `The certificate of "${input.alias}" expired on ${leaf.notAfter.toISOString()}.`,
    );
  }
  const previous = (await ctx.store.listBindings()).find((b) => b.name === binding);
  let mutations: Mutation[] = [{ type: 'bind', name: binding, alias: input.alias }];
  let deadline: string | undefined;
  if (binding === 'server') {
    assertNotPinned(ctx);
    ({ mutations, deadline } = serverActivation(ctx, input, previous?.alias ?? null));
  } else if (input.confirmWithinSeconds !== undefined) {
    throw new ServiceError(
      'InvalidConfirmationWindow',
      'Only the server identity is activated with a confirmation window.',
    );
  }
  const change = changeBy(input.principal, {
    action: 'activate',
    target: input.alias,
    details: {
      binding,
      fingerprint: entry.fingerprint,
      ...(deadline ? { confirmBefore: deadline } : {}),
    },
    ...guards(input.expectedRevision, [
      { type: 'entryRevision', alias: input.alias, revision: entry.updatedRevision },
      { type: 'bindingIs', name: binding, alias: previous?.alias ?? null },
    ]),
    mutations,
  });
  return { change, result: { binding, ...(deadline ? { confirmBefore: deadline } : {}) } };
}

/**
 * Removes a `server` or `sni:<host>` binding, as one change: without a `server` binding
 * the local CA's certificate serves again; without an SNI binding that host gets the
 * server identity. Nothing bound there is `BindingNotFound`.
 */
export async function unbindEntry(ctx: ServiceContext, input: UnbindInput): Promise<UnbindResult> {
  const { change, result } = await planUnbind(ctx, input);
  return { revision: await ctx.store.applyChange(change), ...result };
}

/** Validates an unbinding and builds its change, writing nothing (see `unbindEntry`). */
export async function planUnbind(
  ctx: ServiceContext,
  input: UnbindInput,
): Promise<BindPlan<UnbindResult>> {
  const binding = existingBinding(input.binding);
  const bound = (await ctx.store.listBindings()).find((b) => b.name === binding);
  if (!bound) {
    throw new ServiceError('BindingNotFound', `Nothing is bound as "${binding}".`, {
      details: { binding },
    });
  }
  if (binding === 'server') assertNotPinned(ctx);
  const change = changeBy(input.principal, {
    action: 'deactivate',
    target: bound.alias,
    details: { binding },
    ...guards(input.expectedRevision, [{ type: 'bindingIs', name: binding, alias: bound.alias }]),
    mutations: [
      { type: 'unbind', name: binding },
      // Back to the local CA: a rollback returns to this entry, and nothing is pending.
      ...(binding === 'server'
        ? ([
            { type: 'putSetting', name: PREVIOUS_SERVER_SETTING, value: { alias: bound.alias } },
            { type: 'deleteSetting', name: PENDING_CONFIRMATION_SETTING },
          ] as const)
        : []),
    ],
  });
  return { change, result: { binding, alias: bound.alias } };
}
