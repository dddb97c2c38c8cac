import { ServiceError } from './errors.js';
import type { Principal, Role } from './principal.js';

/**
 * What a front end lets a principal do. A route (or a CLI command against a server)
 * declares the one privilege it needs; the operation behind it may check more (a token
 * never outranks its creator, only an admin manages other users).
 */
export type Privilege =
  /** Read entries, CSRs, bindings, the truststore and the served identity. */
  | 'entries:read'
  /** Import, replace and delete entries; create and complete CSRs. */
  | 'entries:write'
  /** Activate, confirm, roll back, reload; bind and unbind. */
  | 'server:manage'
  /** Read and verify the audit log. */
  | 'audit:read'
  /** Export a private key (a PKCS#12): a privilege of its own. */
  | 'keys:export'
  /** Create, change and remove users. */
  | 'users:manage'
  /** One's own session, password and API tokens. */
  | 'self';

/** The roles' privileges (DESIGN.md, issue 14): auditors read, operators manage the identity, admins everything. */
const GRANTS: Readonly<Record<Role, readonly Privilege[]>> = {
  auditor: ['entries:read', 'audit:read', 'self'],
  operator: ['entries:read', 'audit:read', 'self', 'entries:write', 'server:manage'],
  admin: [
    'entries:read',
    'audit:read',
    'self',
    'entries:write',
    'server:manage',
    'keys:export',
    'users:manage',
  ],
  system: [
    'entries:read',
    'audit:read',
    'self',
    'entries:write',
    'server:manage',
    'keys:export',
    'users:manage',
  ],
};

/** True when the role has the privilege. */
export function roleHas(role: Role, privilege: Privilege): boolean {
  return GRANTS[role].includes(privilege);
}

/** Throws `Forbidden` (naming the privilege and the role) unless the principal has it. */
export function requirePrivilege(principal: Principal, privilege: Privilege): void {
  if (roleHas(principal.role, privilege)) return;
  throw new ServiceError(
    'Forbidden',
    `"${principal.actor}" has the role ${principal.role}, which lacks the privilege ${privilege}.`,
    { details: { needed: privilege, role: principal.role } },
  );
}
