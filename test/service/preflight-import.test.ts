import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { importEntry } from '../../src/service/import-entry.js';
import { preflightImport } from '../../src/service/preflight-import.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';

describe('preflightImport', () => {
  let k: TestKeystore;
  let pki: Awaited<ReturnType<typeof makeHierarchy>>;
  const upload = () => [
    file('bundle.pem', pki.root.certPem + pki.leaf.certPem + pki.intermediate.certPem),
    file('key.pem', pki.leaf.keyPem),
  ];

  before(async () => {
    k = await testKeystore();
    pki = await makeHierarchy({
      hosts: ['app.example.test', 'www.example.test'],
      ips: ['192.0.2.7'],
    });
  });
  after(() => k.cleanup());

  it('says what an import would do and writes nothing', async () => {
    const before = await k.ctx.store.revision();
    const plan = await preflightImport(k.ctx, {
      alias: 'web',
      files: upload(),
      activate: true,
      sniHosts: ['www.example.test'],
      principal: TEST_PRINCIPAL,
    });
    assert.equal(await k.ctx.store.revision(), before, 'nothing written');
    assert.equal(await k.ctx.store.getEntry('web'), undefined);
    assert.equal(plan.action, 'import');
    assert.equal(plan.kind, 'key-pair');
    assert.equal(plan.certificate.fingerprints.sha256, pki.leaf.cert.sha256);
    assert.deepEqual(
      plan.chain.map((c) => c.subject.rfc4514),
      [pki.intermediate.cert.subject.rfc4514],
      'the intermediate, without the self-signed root',
    );
    assert.deepEqual(plan.hostnames, {
      dns: ['app.example.test', 'www.example.test'],
      ip: ['192.0.2.7'],
    });
    assert.deepEqual(plan.bindings, ['server', 'sni:www.example.test']);
    // The root came with the upload, so it is described, not trusted: clients must already trust it.
    assert.deepEqual(
      plan.warnings.map((w) => [w.code, w.certificate]),
      [['UntrustedRoot', pki.root.cert.sha256]],
    );
    assert.match(plan.warnings[0]!.message, /only if they already trust "CN=Test Root"/);
    assert.equal(plan.replaces, null);
    assert.equal(plan.revision, before);
  });

  it('warns of a chain it could not complete, without refusing it', async () => {
    const plan = await preflightImport(k.ctx, {
      alias: 'alone',
      files: [file('leaf.pem', pki.leaf.certPem), file('key.pem', pki.leaf.keyPem)],
      principal: TEST_PRINCIPAL,
    });
    assert.deepEqual(plan.chain, []);
    assert.ok(plan.warnings.length > 0, 'a warning names the missing issuer');
    assert.ok(plan.warnings.some((w) => w.message.includes(pki.intermediate.cert.subject.rfc4514)));
  });

  it('describes exactly what the import then does', async () => {
    const input = { alias: 'same', files: upload(), principal: TEST_PRINCIPAL };
    const plan = await preflightImport(k.ctx, input);
    const result = await importEntry(k.ctx, input);
    assert.deepEqual(result.description, plan);
    assert.equal(result.revision, plan.revision + 1);
  });

  it('names the entry a replacement would replace', async () => {
    const renewed = await makeHierarchy({ name: 'Renewed' });
    const plan = await preflightImport(k.ctx, {
      alias: 'same',
      files: [file('b', renewed.leaf.certPem + renewed.leaf.keyPem)],
      replace: true,
      principal: TEST_PRINCIPAL,
    });
    assert.equal(plan.action, 'replace');
    assert.equal(plan.replaces, pki.leaf.cert.sha256);
  });

  it('refuses what the import would refuse, with the same code', async () => {
    const mismatch = [file('leaf.pem', pki.leaf.certPem), file('k.pem', pki.root.keyPem)];
    await refusesWithoutWriting(
      k.ctx,
      () => preflightImport(k.ctx, { alias: 'bad', files: mismatch, principal: TEST_PRINCIPAL }),
      'KeyMismatch',
    );
    await refusesWithoutWriting(
      k.ctx,
      () => preflightImport(k.ctx, { alias: 'same', files: upload(), principal: TEST_PRINCIPAL }),
      'AliasInUse',
    );
    await refusesWithoutWriting(
      k.ctx,
      () =>
        preflightImport(k.ctx, {
          alias: 'same',
          files: upload(),
          sniHosts: ['not a host'],
          replace: true,
          principal: TEST_PRINCIPAL,
        }),
      'InvalidHostname',
    );
  });
});
