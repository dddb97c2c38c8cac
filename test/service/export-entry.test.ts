import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readPkcs12 } from '../../src/core/pkcs12.js';
import { LOCAL_CA_ALIAS } from '../../src/service/context.js';
import { createCsr } from '../../src/service/create-csr.js';
import { exportPkcs12 } from '../../src/service/export-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import { ensureLocalCa, localServerNames } from '../../src/service/local-ca.js';
import { isStoreError, StoreError } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  bundleOf,
  file,
  refusesWithoutWriting,
  type TestKeystore,
  testKeystore,
} from '../support/service.js';
import { needs, tempDir, tool } from '../support/tools.js';

const PASSWORD = 'correct horse battery';

describe('exportPkcs12', () => {
  let k: TestKeystore;
  let pki: Awaited<ReturnType<typeof makeHierarchy>>;

  before(async () => {
    k = await testKeystore();
    pki = await makeHierarchy();
    await importEntry(k.ctx, {
      alias: 'web',
      files: [bundleOf(pki)],
      principal: TEST_PRINCIPAL,
    });
    await importEntry(k.ctx, {
      alias: 'corp-root',
      files: [file('root.pem', pki.root.certPem)],
      principal: TEST_PRINCIPAL,
    });
    await createCsr(k.ctx, {
      alias: 'waiting',
      subject: { CN: 'waiting.example.test' },
      sans: [],
      keyType: 'ec-p256',
      principal: TEST_PRINCIPAL,
    });
    await ensureLocalCa({
      store: k.ctx.store,
      now: new Date(),
      names: localServerNames('box'),
      commonName: 'box',
    });
  });
  after(() => k.cleanup());

  it('exports key, leaf and chain with AES-256 PBES2, audited and without a change', async () => {
    const before = await k.ctx.store.revision();
    const result = await exportPkcs12(k.ctx, {
      alias: 'web',
      password: PASSWORD,
      principal: TEST_PRINCIPAL,
    });
    assert.equal(await k.ctx.store.revision(), before, 'an export changes nothing');
    const contents = await readPkcs12(result.pkcs12, PASSWORD);
    assert.deepEqual(contents.integrity, { kind: 'mac', digest: 'sha256', iterations: 2048 });
    assert.equal(contents.keys[0]!.friendlyName, 'web');
    assert.equal(contents.keys.length, 1);
    assert.ok(contents.keys[0]!.key.equals(pki.leaf.key));
    assert.deepEqual(
      contents.certificates.map((c) => c.certificate.sha256),
      [pki.leaf.cert.sha256, pki.intermediate.cert.sha256],
    );
    const event = (await k.audited()).at(-1)!;
    assert.deepEqual(
      [event.actor, event.source, event.action, event.target, event.outcome],
      [TEST_PRINCIPAL.actor, TEST_PRINCIPAL.source, 'export-pkcs12', 'web', 'done'],
    );
    assert.deepEqual(event.details, {
      fingerprint: pki.leaf.cert.sha256,
      revision: 1,
      principal: { role: TEST_PRINCIPAL.role },
    });
    const log = JSON.stringify(await k.ctx.store.listAudit());
    assert.ok(!log.includes(PASSWORD), 'no password in the audit log');
  });

  it('writes a file OpenSSL opens with the password', { skip: needs('openssl') }, async () => {
    const { pkcs12 } = await exportPkcs12(k.ctx, {
      alias: 'web',
      password: PASSWORD,
      principal: TEST_PRINCIPAL,
    });
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'web.p12'), pkcs12);
      const out = await tool('openssl', [
        'pkcs12',
        '-in',
        join(dir, 'web.p12'),
        '-passin',
        `pass:${PASSWORD}`,
        '-nodes',
      ]);
      assert.match(out, /BEGIN PRIVATE KEY/);
      assert.equal(out.match(/BEGIN CERTIFICATE/g)?.length, 2);
    } finally {
      cleanup();
    }
  });

  it('refuses a password shorter than 8 characters', async () => {
    const count = (await k.audited()).length;
    for (const password of ['', 'short', '1234567']) {
      await refusesWithoutWriting(
        k.ctx,
        () => exportPkcs12(k.ctx, { alias: 'web', password, principal: TEST_PRINCIPAL }),
        'PasswordTooShort',
      );
    }
    assert.equal((await k.audited()).length, count, 'nothing exported, nothing audited');
  });

  it('exports only key pairs, never the local CA', async () => {
    const exportOf = (alias: string) => () =>
      exportPkcs12(k.ctx, { alias, password: PASSWORD, principal: TEST_PRINCIPAL });
    await refusesWithoutWriting(k.ctx, exportOf('corp-root'), 'EntryNotUsable');
    await refusesWithoutWriting(k.ctx, exportOf('waiting'), 'EntryNotUsable');
    await refusesWithoutWriting(k.ctx, exportOf('nope'), 'AliasNotFound');
    await refusesWithoutWriting(k.ctx, exportOf(LOCAL_CA_ALIAS), 'InvalidAlias');
  });

  it('hands nothing out when the export cannot be audited', async () => {
    const appendAudit = k.ctx.store.appendAudit;
    try {
      k.ctx.store.appendAudit = async () => {
        throw new StoreError('StoreUnavailable', 'audit log unavailable (expected by the test)');
      };
      await assert.rejects(
        exportPkcs12(k.ctx, { alias: 'web', password: PASSWORD, principal: TEST_PRINCIPAL }),
        (err) => isStoreError(err, 'StoreUnavailable'),
      );
    } finally {
      k.ctx.store.appendAudit = appendAudit;
    }
  });
});

describe('exportPkcs12 and roles', () => {
  it('is a privilege of admins only', async () => {
    const k = await testKeystore();
    try {
      const pki = await makeHierarchy({ hosts: ['role.example.test'] });
      await importEntry(k.ctx, {
        alias: 'web',
        files: [bundleOf(pki)],
        principal: TEST_PRINCIPAL,
      });
      for (const role of ['operator', 'auditor'] as const) {
        await refusesWithoutWriting(
          k.ctx,
          () =>
            exportPkcs12(k.ctx, {
              alias: 'web',
              password: PASSWORD,
              principal: { actor: 'olga', role, source: 'test' },
            }),
          'Forbidden',
        );
      }
      assert.deepEqual(await k.audited(), [], 'nothing exported, nothing audited');
    } finally {
      await k.cleanup();
    }
  });
});
