import type { Role } from '../../src/service/principal.js';
import type { Privilege } from '../../src/service/privileges.js';

/**
 * The roles matrix of issue 14, written out by hand as the tests' oracle (never derived
 * from `service/privileges.ts`, which it checks): what each role may do.
 */
export const ROLE_PRIVILEGES: Readonly<Record<Exclude<Role, 'system'>, readonly Privilege[]>> = {
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
};
