import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CodedError } from '../../src/core/errors.js';
import type { Role } from '../../src/service/principal.js';
import { type Privilege, requirePrivilege, roleHas } from '../../src/service/privileges.js';
import { ROLE_PRIVILEGES } from '../support/roles.js';

const EXPECTED = ROLE_PRIVILEGES;
const ALL = EXPECTED.admin;

describe('privileges', () => {
  it('gives each role exactly its privileges, and key export to admins only', () => {
    for (const [role, privileges] of Object.entries(EXPECTED) as [Role, Privilege[]][]) {
      for (const privilege of ALL) {
        assert.equal(
          roleHas(role, privilege),
          privileges.includes(privilege),
          `${role} ${privilege}`,
        );
      }
    }
    assert.deepEqual(
      (['auditor', 'operator', 'admin'] as const).filter((r) => roleHas(r, 'keys:export')),
      ['admin'],
    );
  });

  it('refuses a missing privilege with Forbidden, naming it and the role', () => {
    assert.throws(
      () => requirePrivilege({ actor: 'ann', role: 'auditor', source: 't' }, 'entries:write'),
      (err: unknown) =>
        err instanceof CodedError &&
        err.code === 'Forbidden' &&
        /auditor/.test(err.message) &&
        /entries:write/.test(err.message),
    );
    requirePrivilege({ actor: 'olga', role: 'operator', source: 't' }, 'server:manage');
  });
});
