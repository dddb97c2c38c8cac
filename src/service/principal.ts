import type { ChangeInput } from '../store/store.js';
import { ServiceError } from './errors.js';

/** What a principal may do; the front end authenticates, `service/` records it with every write. */
export type Role = 'admin' | 'operator' | 'auditor' | 'system';

const ROLES: readonly Role[] = ['admin', 'operator', 'auditor', 'system'];

/** Who acts, with what role, from where: an input to every write. */
export interface Principal {
  /** The user name (`alice`), an API token as `token:<id>`, or `cli` / `runtime`. */
  actor: string;
  role: Role;
  /** Where the call came from: a client address, `cli`, `runtime`. */
  source: string;
}

/** The certkeeper process itself (local-CA renewal, rollbacks). */
export const RUNTIME_PRINCIPAL: Principal = { actor: 'runtime', role: 'system', source: 'runtime' };

/** A person at the command line, working directly on a data directory. */
export const CLI_PRINCIPAL: Principal = { actor: 'cli', role: 'admin', source: 'cli' };

/**
 * The change as the store takes it today: `actor` from the principal, and its role and
 * source under `details.principal` (until the store's audit table has columns for them).
 * A principal that is not well formed is `InvalidPrincipal`.
 */
export function changeBy(principal: Principal, change: Omit<ChangeInput, 'actor'>): ChangeInput {
  checkPrincipal(principal);
  return {
    ...change,
    actor: principal.actor,
    source: principal.source,
    details: {
      ...change.details,
      principal: { role: principal.role, source: principal.source },
    },
  };
}

/** Throws `InvalidPrincipal` unless the principal names an actor, a known role and a source. */
export function checkPrincipal(principal: Principal): void {
  const ok =
    typeof principal === 'object' &&
    principal !== null &&
    typeof principal.actor === 'string' &&
    principal.actor !== '' &&
    ROLES.includes(principal.role) &&
    typeof principal.source === 'string' &&
    principal.source !== '';
  if (!ok) {
    throw new ServiceError(
      'InvalidPrincipal',
      `Every write needs a principal: an actor, a role (${ROLES.join(', ')}) and a source.`,
    );
  }
}
