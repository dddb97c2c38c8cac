import type { Role as UserRole } from '../store/store.js';
import { ServiceError } from './errors.js';
import type { Principal, Role } from './principal.js';

export type { UserRole };

/** The roles a user or an API token can have (`system` is certkeeper's own, never a user's). */
export const USER_ROLES: readonly UserRole[] = ['admin', 'operator', 'auditor'];

/**
 * How far each role reaches, for "a token never exceeds its creator": an auditor reads,
 * an operator also manages the keystore, an admin also manages users; `system` is
 * certkeeper itself (and the initial admin it creates).
 */
const RANK: Record<Role, number> = { auditor: 1, operator: 2, admin: 3, system: 4 };

/** The role, or `InvalidRole`. */
export function checkUserRole(role: unknown): UserRole {
  if (!USER_ROLES.includes(role as UserRole)) {
    throw new ServiceError(
      'InvalidRole',
      `The role must be one of ${USER_ROLES.join(', ')}, not ${JSON.stringify(role)}.`,
    );
  }
  return role as UserRole;
}

/** True when `role` reaches no further than `limit`. */
export function roleWithin(role: Role, limit: Role): boolean {
  return RANK[role] <= RANK[limit];
}

/** The lower of two roles. */
export function lowerRole<R extends Role>(a: R, b: R): R {
  return RANK[a] <= RANK[b] ? a : b;
}

/** True for a principal that manages users and everyone's tokens (an admin, or certkeeper itself). */
export function isAdmin(principal: Principal): boolean {
  return principal.role === 'admin' || principal.role === 'system';
}

/** Throws `Forbidden` unless the principal is an admin (or certkeeper itself). */
export function requireAdmin(principal: Principal, what: string): void {
  if (!isAdmin(principal)) {
    throw new ServiceError(
      'Forbidden',
      `Only an admin may ${what}; "${principal.actor}" has the role ${principal.role}.`,
      { details: { needed: 'admin', role: principal.role } },
    );
  }
}
