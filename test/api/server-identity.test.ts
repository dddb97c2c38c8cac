import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import type { RunningServer } from '../../src/cli/serve.js';
import { importEntry } from '../../src/service/import-entry.js';
import { apiClient, type TestApi } from '../support/api.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { servedFingerprint, startTestServer } from '../support/serve.js';
import { bundleOf } from '../support/service.js';
import { tempDir } from '../support/tools.js';

const ADMIN_PASSWORD = 'server identity test passphrase';

/** The SHA-256 fingerprint of the certificate the server presents for `servername`. */
const served = (port: number, servername = 'localhost') => servedFingerprint(port, servername);

describe('API: the served identity, on a running server', () => {
  const { dir, cleanup } = tempDir();
  let server: RunningServer;
  let port: number;
  let call: TestApi['call'];
  let agent: Agent;
  let admin: string;
  let auditor: string;
  let localCa: string;
  const fingerprints: Record<string, string> = {};

  before(async () => {
    ({ server, port } = await startTestServer(['--data-dir', join(dir, 'data')], {
      CERTKEEPER_ADMIN_PASSWORD: ADMIN_PASSWORD,
    }));
    // The served certificate changes under these tests; what they check is the fingerprint.
    agent = new Agent({ connect: { rejectUnauthorized: false } });
    call = apiClient(`https://127.0.0.1:${port}`, agent);
    const login = await call('POST', '/api/v1/auth/session', {
      json: { username: 'admin', password: ADMIN_PASSWORD },
    });
    admin = login.json().token;
    const created = await call('POST', '/api/v1/tokens', {
      token: admin,
      json: { name: 'read-only', role: 'auditor' },
    });
    auditor = created.json().token;
    for (const name of ['one', 'two']) {
      const pki = await makeHierarchy({ name, hosts: ['localhost', `${name}.example`] });
      await importEntry(server.keystore, {
        alias: name,
        files: [bundleOf(pki)],
        principal: TEST_PRINCIPAL,
      });
      fingerprints[name] = pki.leaf.cert.sha256;
    }
    localCa = await served(port);
  });
  after(async () => {
    await server.stop();
    await agent.close();
    cleanup();
  });

  it('activates an entry and answers once it is served', async () => {
    const res = await call('PUT', '/api/v1/server/tls', { token: admin, json: { alias: 'one' } });
    assert.equal(res.status, 200, res.text);
    const body = res.json();
    assert.equal(body.nodes.length, 1);
    assert.equal(body.nodes[0].outcome, 'served');
    assert.equal(body.nodes[0].fingerprint, fingerprints.one);
    // Answered only once served: the very next handshake presents it.
    assert.equal(await served(port), fingerprints.one);
    const status = (await call('GET', '/api/v1/server/tls', { token: auditor })).json();
    assert.equal(status.alias, 'one');
    assert.equal(status.fingerprint, fingerprints.one);
  });

  it('rolls back to the previous identity', async () => {
    await call('PUT', '/api/v1/server/tls', { token: admin, json: { alias: 'two' } });
    assert.equal(await served(port), fingerprints.two);
    const res = await call('POST', '/api/v1/server/tls/rollback', { token: admin });
    assert.equal(res.status, 200, res.text);
    assert.equal(await served(port), fingerprints.one);
  });

  it('rolls back by itself when the activation is not confirmed, and stays when it is', async () => {
    const res = await call('PUT', '/api/v1/server/tls', {
      token: admin,
      json: { alias: 'two', confirmWithinSeconds: 1 },
    });
    assert.equal(res.status, 200, res.text);
    assert.ok(Date.parse(res.json().confirmBefore) > Date.now() - 1000);
    assert.equal(await served(port), fingerprints.two);
    const pending = (await call('GET', '/api/v1/server/tls', { token: admin })).json();
    assert.equal(pending.pendingConfirmation.alias, 'two');
    const deadline = Date.now() + 30_000;
    while ((await served(port)) !== fingerprints.one && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(
      await served(port),
      fingerprints.one,
      'unconfirmed: the previous identity is back',
    );
    const late = await call('POST', '/api/v1/server/tls/confirm', { token: admin });
    assert.equal(late.status, 409);
    assert.equal(late.json().code, 'NothingToConfirm');

    await call('PUT', '/api/v1/server/tls', {
      token: admin,
      json: { alias: 'two', confirmWithinSeconds: 60 },
    });
    const confirmed = await call('POST', '/api/v1/server/tls/confirm', { token: admin });
    assert.equal(confirmed.status, 200, confirmed.text);
    assert.equal(confirmed.json().alias, 'two');
    assert.equal(await served(port), fingerprints.two);
  });

  it('binds and unbinds a host name', async () => {
    const bound = await call('PUT', '/api/v1/bindings/one.example', {
      token: admin,
      json: { alias: 'one' },
    });
    assert.equal(bound.status, 200, bound.text);
    assert.equal(await served(port, 'one.example'), fingerprints.one);
    const unbound = await call('DELETE', '/api/v1/bindings/one.example', { token: admin });
    assert.equal(unbound.status, 200, unbound.text);
    assert.equal(await served(port, 'one.example'), fingerprints.two);
    const missing = await call('DELETE', '/api/v1/bindings/one.example', { token: admin });
    assert.equal(missing.status, 404);
    assert.equal(missing.json().code, 'BindingNotFound');
  });

  it('re-runs the source lookup on reload', async () => {
    const res = await call('POST', '/api/v1/server/tls/reload', { token: admin });
    assert.equal(res.status, 200, res.text);
    const [node] = res.json().nodes;
    assert.equal(node.outcome, 'served');
    assert.equal(typeof node.what, 'string', 'names the source it serves after the reload');
    assert.equal(node.keptLastGood, null);
    assert.deepEqual(node.passedOver, []);
    assert.equal(node.error, null);
  });

  it('refuses an unknown entry, a bad window and an auditor, changing nothing', async () => {
    const revision = await server.keystore.store.revision();
    const unknown = await call('PUT', '/api/v1/server/tls', {
      token: admin,
      json: { alias: 'nope' },
    });
    assert.equal(unknown.json().code, 'AliasNotFound');
    const window = await call('PUT', '/api/v1/server/tls', {
      token: admin,
      json: { alias: 'one', confirmWithinSeconds: 0 },
    });
    assert.equal(window.status, 400);
    const auditorTry = await call('PUT', '/api/v1/server/tls', {
      token: auditor,
      json: { alias: 'one' },
    });
    assert.equal(auditorTry.status, 403);
    assert.equal(auditorTry.json().code, 'Forbidden');
    assert.equal(await server.keystore.store.revision(), revision);
    assert.notEqual(await served(port), localCa);
  });

  it('exposes Prometheus metrics: expiry, handshakes, swaps, rollbacks, served revision, requests', async () => {
    const { store } = server.keystore;
    const listBindings = store.listBindings.bind(store);
    let listings = 0;
    store.listBindings = () => {
      listings += 1;
      return listBindings();
    };
    const res = await call('GET', '/metrics', { token: auditor }).finally(() => {
      store.listBindings = listBindings;
    });
    assert.equal(res.status, 200);
    assert.equal(listings, 1, 'one scrape lists the entries once, for both expiry gauges');
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    const value = (pattern: RegExp) => {
      const m = pattern.exec(res.text);
      assert.ok(m, `${pattern} in\n${res.text.slice(0, 2000)}`);
      return Number(m[1]);
    };
    const days =
      value(/^certkeeper_certificate_expiry_seconds\{alias="one",kind="key-pair"\} (\S+)$/m) /
      86400;
    assert.ok(days > 1 && days < 400, `one expires in ${days} days`);
    assert.ok(
      value(/^certkeeper_binding_expiry_seconds\{binding="server",alias="two"\} (\S+)$/m) > 0,
    );
    assert.ok(value(/^certkeeper_tls_handshakes_total (\S+)$/m) >= 10);
    assert.ok(value(/^certkeeper_swaps_total (\S+)$/m) >= 5);
    assert.equal(
      value(/^certkeeper_rollbacks_total\{reason="unconfirmed"\} (\S+)$/m),
      1,
      'the activation left unconfirmed above',
    );
    assert.equal(value(/^certkeeper_rollbacks_total\{reason="refused"\} (\S+)$/m), 0);
    assert.ok(
      value(
        /^certkeeper_api_requests_total\{route="\/api\/v1\/server\/tls\/rollback",method="POST",status="200"\} (\S+)$/m,
      ) >= 1,
      'a rollback asked for through the API',
    );
    assert.equal(
      value(/^certkeeper_served_revision (\S+)$/m),
      server.supervisor.status()!.revision,
    );
    assert.ok(
      value(
        /^certkeeper_api_requests_total\{route="\/api\/v1\/server\/tls",method="PUT",status="200"\} (\S+)$/m,
      ) >= 3,
    );
    assert.equal((await call('GET', '/metrics')).status, 401, 'metrics need credentials');
  });
});
