import { isValidDnsName, isValidDnsPattern } from '../core/hostname.js';
import type { ServiceContext } from './context.js';
import { ServiceError } from './errors.js';

/** A binding a person may set: the `server` identity or an SNI host (`ca` is the local CA's). */
export type UserBinding = 'server' | `sni:${string}`;

/** The binding name for `server` or `sni:<host>`, canonical; anything else is `InvalidBinding`. */
export function userBinding(name: string): UserBinding {
  if (name === 'server') return 'server';
  if (typeof name === 'string' && name.startsWith('sni:')) return sniBinding(name.slice(4));
  throw new ServiceError(
    'InvalidBinding',
    `"${name}" is not a binding you can set: use "server" or "sni:<host>".`,
  );
}

/** The binding name for an SNI host: `sni:` and the lower-case name (`*.` wildcard allowed). */
export function sniBinding(host: string): `sni:${string}` {
  const name = host.trim().toLowerCase().replace(/\.$/, '');
  if (!isValidDnsPattern(name)) {
    const bare = name.slice(2);
    throw new ServiceError(
      'InvalidHostname',
      name.startsWith('*.') && isValidDnsName(bare)
        ? `"${host}" is a wildcard directly under the public suffix "${bare}", which no certificate may name.`
        : `"${host}" is not a host name an SNI binding can use.`,
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
