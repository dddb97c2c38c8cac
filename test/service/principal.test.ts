import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServiceError } from '../../src/service/errors.js';
import { changeBy, RUNTIME_PRINCIPAL } from '../../src/service/principal.js';

describe('changeBy', () => {
  it("makes the store's actor from the principal and keeps its role and source in details", () => {
    const change = changeBy(
      { actor: 'alice', role: 'operator', source: '192.0.2.10' },
      { action: 'import', target: 'web', details: { kind: 'key-pair' }, mutations: [] },
    );
    assert.equal(change.actor, 'alice');
    assert.deepEqual(change.details, {
      kind: 'key-pair',
      principal: { role: 'operator', source: '192.0.2.10' },
    });
    assert.equal(changeBy(RUNTIME_PRINCIPAL, { action: 'renew', mutations: [] }).actor, 'runtime');
  });

  it('refuses a principal without an actor, a known role or a source', () => {
    for (const principal of [
      { actor: '', role: 'admin', source: 'cli' },
      { actor: 'bob', role: 'root', source: 'cli' },
      { actor: 'bob', role: 'admin', source: '' },
      undefined,
    ]) {
      assert.throws(
        () => changeBy(principal as never, { action: 'x', mutations: [] }),
        (e) => e instanceof ServiceError && e.code === 'InvalidPrincipal',
      );
    }
  });
});
