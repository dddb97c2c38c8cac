import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Privilege } from '../../src/service/privileges.js';
import { type OpenApiDocument, startApi, type TestApi } from '../support/api.js';
import { ROLE_PRIVILEGES } from '../support/roles.js';

/** What each operation needs: the roles matrix of docs/api.md, written out. */
const NEEDS: Record<string, Privilege | 'public'> = {
  getHealth: 'public',
  getReadiness: 'public',
  getLocalCaCertificate: 'public',
  login: 'public',
  getSession: 'self',
  logout: 'self',
  changeOwnPassword: 'self',
  createToken: 'self',
  listTokens: 'self',
  revokeToken: 'self',
  listUsers: 'users:manage',
  createUser: 'users:manage',
  setUserPassword: 'users:manage',
  changeUserRole: 'users:manage',
  removeUser: 'users:manage',
  getServerTls: 'entries:read',
  activateServerIdentity: 'server:manage',
  confirmServerIdentity: 'server:manage',
  rollBackServerIdentity: 'server:manage',
  reloadServerIdentity: 'server:manage',
  bindHostname: 'server:manage',
  unbindHostname: 'server:manage',
  listEntries: 'entries:read',
  getEntry: 'entries:read',
  listTruststore: 'entries:read',
  deleteEntry: 'entries:write',
  putEntry: 'entries:write',
  preflightImport: 'entries:write',
  createCsr: 'entries:write',
  getCsr: 'entries:read',
  completeCsr: 'entries:write',
  exportEntry: 'keys:export',
  listAudit: 'audit:read',
  verifyAudit: 'audit:read',
  getMetrics: 'entries:read',
  applyChanges: 'entries:write',
};

const ROLES = ROLE_PRIVILEGES;

describe('the authorization matrix: every role, and none, against every route', () => {
  let api: TestApi;
  let document: OpenApiDocument;
  const tokens: Record<string, string> = {};
  before(async () => {
    api = await startApi();
    document = (await api.call('GET', '/api/openapi.json')).json();
    for (const role of Object.keys(ROLES) as (keyof typeof ROLES)[]) {
      tokens[role] = await api.loginAs(role);
    }
  });
  after(() => api.close());

  it('has a row for every documented operation', () => {
    const operations = Object.values(document.paths).flatMap((item) =>
      Object.values(item).map((op) => op.operationId),
    );
    assert.deepEqual(
      operations.filter((id) => !(id in NEEDS)),
      [],
      'operations without a matrix row',
    );
    assert.deepEqual(
      Object.keys(NEEDS).filter((id) => !operations.includes(id)),
      [],
      'rows without an operation',
    );
  });

  it('answers 401 without credentials, 403 Forbidden to a role without the privilege, and lets the others through', async () => {
    const failures: string[] = [];
    for (const [template, item] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const path = template.replace(/\{[^}]+\}/g, 'matrix-probe');
        const needs = NEEDS[op.operationId]!;
        // Logging out would end the session the next rows use: read-only probes for it.
        if (op.operationId === 'logout') continue;
        const anonymous = await api.call(method.toUpperCase() as 'GET', path, {
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        if (needs === 'public') {
          if (anonymous.status === 401) failures.push(`${op.operationId}: public but 401`);
          continue;
        }
        if (anonymous.status !== 401 || anonymous.json().code !== 'Unauthenticated') {
          failures.push(`${op.operationId} without credentials: ${anonymous.status}`);
        }
        for (const [role, privileges] of Object.entries(ROLES)) {
          const res = await api.call(method.toUpperCase() as 'GET', path, {
            token: tokens[role]!,
            headers: { 'content-type': 'application/json' },
            body: '{}',
          });
          const allowed = (privileges as readonly string[]).includes(needs);
          const refused = res.status === 403 && res.json().code === 'Forbidden';
          if (allowed && (res.status === 401 || refused))
            failures.push(`${op.operationId} as ${role}: ${res.status}`);
          if (!allowed && !refused)
            failures.push(`${op.operationId} as ${role}: ${res.status}, not 403 Forbidden`);
        }
      }
    }
    assert.deepEqual(failures, []);
  });
});
