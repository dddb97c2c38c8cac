import { readValidity } from '../core/certificate.js';
import { CoreError } from '../core/errors.js';
import { StoreError } from '../store/store.js';
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { assertNotPinned, sniBinding } from './import-entry.js';

/**
 * Binds a `key-pair` entry as the `server` identity (or `sni:<host>`), as one change.
 * The runtime follows the change, swaps, probes and rolls back on failure.
 */
export async function activateEntry(
  ctx: ServiceContext,
  input: { alias: string; binding?: string; actor: string; expectedRevision?: number },
): Promise<{ revision: number }> {
  const requested = input.binding ?? 'server';
  if (requested !== 'server' && !requested.startsWith('sni:')) {
    throw new ServiceError(
      'InvalidBinding',
      `"${requested}" is not a binding: use "server" or "sni:<host>".`,
    );
  }
  const binding = requested === 'server' ? 'server' : sniBinding(requested.slice(4));
  const entry = await ctx.store.getEntry(input.alias);
  if (!entry) throw new StoreError('AliasNotFound', `No entry is named "${input.alias}".`);
  if (entry.kind !== 'key-pair' || !entry.hasPrivateKey || !entry.certificatePem) {
    throw new ServiceError(
      'EntryNotUsable',
      `The entry "${input.alias}" is a ${entry.kind} entry; only a key pair can serve HTTPS.`,
    );
  }
  const leaf = readValidity(entry.certificatePem);
  const now = ctx.now();
  if (leaf.notAfter < now) {
    throw new CoreError(
      'CertificateExpired',
      `The certificate of "${input.alias}" expired on ${leaf.notAfter.toISOString()}.`,
    );
  }
  if (binding === 'server') assertNotPinned(ctx);
  const revision = await ctx.store.applyChange({
    actor: input.actor,
    action: 'activate',
    target: input.alias,
    details: { binding, fingerprint: entry.fingerprint },
    ...(input.expectedRevision === undefined ? {} : { expectedRevision: input.expectedRevision }),
    mutations: [{ type: 'bind', name: binding, alias: input.alias }],
  });
  return { revision };
}
