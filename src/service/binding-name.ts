import { dnsPatternProblem, isSniHostSyntax } from '../core/hostname.js';
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
  const problem = dnsPatternProblem(name);
  if (problem) throw new ServiceError('InvalidHostname', problem, { details: { host } });
  return `sni:${name}`;
}

/**
 * The binding name for one that may already exist (to unbind it): `server`, or an SNI
 * host in binding syntax without the host name policy, so that a binding written under an
 * older policy (`sni:*.lan`) can still be removed. Anything else is `InvalidBinding`.
 */
export function existingBinding(name: string): UserBinding {
  if (name === 'server') return 'server';
  if (typeof name === 'string' && name.startsWith('sni:')) {
    const host = name.slice(4).trim().toLowerCase().replace(/\.$/, '');
    if (isSniHostSyntax(host)) return `sni:${host}`;
    throw new ServiceError('InvalidHostname', `"${name.slice(4)}" is not a host name.`, {
      details: { host: name.slice(4) },
    });
  }
  return userBinding(name);
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
