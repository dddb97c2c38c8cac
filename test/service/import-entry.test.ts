import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CodedError, isCoreError } from '../../src/core/errors.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import type { ServiceContext } from '../../src/service/context.js';
import { createCsr } from '../../src/service/create-csr.js';
import { importEntry } from '../../src/service/import-entry.js';
import { openDataDir } from '../../src/store/data-dir.js';
import { isStoreError, type Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { needs, tempDir, tool } from '../support/tools.js';

const bytes = (text: string) => Buffer.from(text);
const isService = (code: string) => (e: unknown) => e instanceof CodedError && e.code === code;

describe('importEntry on a real SQLite store', () => {
  const { dir, cleanup } = tempDir();
  let store: Store;
  let ctx: ServiceContext;
  let pinnedBy: string | undefined;
  let pki: Awaited<ReturnType<typeof makeHierarchy>>;

  before(async () => {
    store = await openDataDir(join(dir, 'data'), {}, { create: true });
    ctx = { store, now: () => new Date(), trusted: [], serverPinnedBy: () => pinnedBy };
    pki = await makeHierarchy();
  });
  after(async () => {
    await store.close();
    cleanup();
  });

  it('imports a shuffled bundle with its key, keeping the chain without the root', async () => {
    const bundle = pki.root.certPem + pki.leaf.certPem + pki.intermediate.certPem;
    const result = await importEntry(ctx, {
      alias: 'web',
      files: [
        { name: 'bundle.pem', bytes: bytes(bundle) },
        { name: 'key.pem', bytes: bytes(pki.leaf.keyPem) },
      ],
      principal: TEST_PRINCIPAL,
    });
    assert.equal(result.entry.kind, 'key-pair');
    assert.equal(result.entry.fingerprint, pki.leaf.cert.sha256);
    assert.equal(parsePemBlocks(result.entry.chainPem).length, 1, 'intermediate only');
    const der = await store.getPrivateKey('web');
    const key = createPrivateKey({ key: der!, format: 'der', type: 'pkcs8' });
    assert.ok(key.equals(pki.leaf.key));
    const audit = await store.listAudit({ limit: 1 });
    assert.equal(audit[0]!.action, 'import');
    assert.ok(
      !JSON.stringify(audit).includes(pki.leaf.keyPem.split('\n')[1]!),
      'no key in the audit log',
    );
  });

  it('refuses a key that does not match and writes nothing', async () => {
    const before = await store.revision();
    await assert.rejects(
      importEntry(ctx, {
        alias: 'mismatch',
        files: [
          { name: 'leaf.pem', bytes: bytes(pki.leaf.certPem) },
          { name: 'k', bytes: bytes(pki.root.keyPem) },
        ],
        principal: TEST_PRINCIPAL,
      }),
      (e) => isCoreError(e, 'KeyMismatch') || isCoreError(e, 'AmbiguousLeaf'),
    );
    assert.equal(await store.revision(), before);
    assert.equal(await store.getEntry('mismatch'), undefined);
  });

  it('refuses an expired certificate', async () => {
    const old = await makeHierarchy({ now: new Date(Date.now() - 400 * 86400_000), leafDays: 30 });
    await assert.rejects(
      importEntry(ctx, {
        alias: 'old',
        files: [
          {
            name: 'b',
            bytes: bytes(old.leaf.certPem + old.intermediate.certPem + old.leaf.keyPem),
          },
        ],
        principal: TEST_PRINCIPAL,
      }),
      (e) => isCoreError(e, 'CertificateExpired'),
    );
  });

  it('says AliasInUse unless replacing, and replaces as a renewal', async () => {
    const files = [
      { name: 'b', bytes: bytes(pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem) },
    ];
    await assert.rejects(
      importEntry(ctx, { alias: 'web', files, principal: TEST_PRINCIPAL }),
      isService('AliasInUse'),
    );
    const renewed = await makeHierarchy({ name: 'Renewed' });
    const r = await importEntry(ctx, {
      alias: 'web',
      files: [
        {
          name: 'b',
          bytes: bytes(renewed.leaf.certPem + renewed.intermediate.certPem + renewed.leaf.keyPem),
        },
      ],
      replace: true,
      principal: TEST_PRINCIPAL,
    });
    assert.equal(r.entry.fingerprint, renewed.leaf.cert.sha256);
    assert.equal((await store.listAudit({ limit: 1 }))[0]!.action, 'replace');
  });

  it('stores a lone CA certificate as a trusted entry', async () => {
    const r = await importEntry(ctx, {
      alias: 'corp-root',
      files: [{ name: 'root.pem', bytes: bytes(pki.root.certPem) }],
      principal: TEST_PRINCIPAL,
    });
    assert.equal(r.entry.kind, 'trusted');
    assert.equal(r.entry.hasPrivateKey, false);
  });

  it('refuses a server certificate without its key with NoPrivateKey, naming the file', async () => {
    const before = await store.revision();
    for (const files of [
      [{ name: 'leaf.pem', bytes: bytes(pki.leaf.certPem) }],
      [{ name: 'leaf.pem', bytes: bytes(pki.intermediate.certPem + pki.leaf.certPem) }],
    ]) {
      await assert.rejects(
        importEntry(ctx, { alias: 'no-key', files, principal: TEST_PRINCIPAL }),
        (e) => isCoreError(e, 'NoPrivateKey') && /^leaf\.pem: .*server certificate/.test(e.message),
      );
    }
    assert.equal(await store.getEntry('no-key'), undefined, 'not stored as a trusted entry');
    assert.equal(await store.revision(), before);
  });

  it('refuses to replace an alias that does not exist with AliasNotFound', async () => {
    const before = await store.revision();
    await assert.rejects(
      importEntry(ctx, {
        alias: 'never-imported',
        files: [{ name: 'b', bytes: bytes(pki.leaf.certPem + pki.leaf.keyPem) }],
        replace: true,
        principal: TEST_PRINCIPAL,
      }),
      isService('AliasNotFound'),
    );
    assert.equal(await store.getEntry('never-imported'), undefined);
    assert.equal(await store.revision(), before);
  });

  it('names the file that could not be read', async () => {
    await assert.rejects(
      importEntry(ctx, {
        alias: 'garbage',
        files: [
          { name: 'leaf.pem', bytes: bytes(pki.leaf.certPem) },
          { name: 'garbage.bin', bytes: bytes('not a certificate') },
        ],
        principal: TEST_PRINCIPAL,
      }),
      (e) => isCoreError(e, 'UnsupportedFormat') && e.message.startsWith('garbage.bin: '),
    );
  });

  it('rejects an invalid or reserved alias', async () => {
    for (const alias of ['', 'has space', 'certkeeper-local-ca', 'x'.repeat(129), '../etc']) {
      await assert.rejects(
        importEntry(ctx, {
          alias,
          files: [{ name: 'r', bytes: bytes(pki.root.certPem) }],
          principal: TEST_PRINCIPAL,
        }),
        isService('InvalidAlias'),
        alias,
      );
    }
  });

  it('records the principal with the change: actor, role and source', async () => {
    const audit = (await store.listAudit()).find((a) => a.target === 'web')!;
    assert.equal(audit.actor, 'test');
    assert.deepEqual(audit.details.principal, { role: 'admin', source: 'test' });
  });

  it('binds the entry as server and SNI host in the same change', async () => {
    // Its own CA names: the keystore's trusted entry "CN=Test Root" (an earlier test) is an
    // anchor of imports now, and a same-named root with another key is not this chain's.
    const h = await makeHierarchy({ hosts: ['api.example.test'], name: 'Api' });
    const r = await importEntry(ctx, {
      alias: 'api',
      files: [{ name: 'b', bytes: bytes(h.leaf.certPem + h.intermediate.certPem + h.leaf.keyPem) }],
      activate: true,
      sniHosts: ['API.example.test.'],
      principal: TEST_PRINCIPAL,
    });
    const bindings = (await store.listBindings()).filter((b) => b.alias === 'api');
    assert.deepEqual(bindings.map((b) => [b.name, b.revision]).sort(), [
      ['server', r.revision],
      ['sni:api.example.test', r.revision],
    ]);
    assert.deepEqual(r.description.bindings, ['server', 'sni:api.example.test']);
  });

  it('refuses activation while a source pins the server identity, writing nothing', async () => {
    const before = await store.revision();
    pinnedBy = 'command-line flag';
    try {
      await assert.rejects(
        importEntry(ctx, {
          alias: 'pinned',
          files: [{ name: 'b', bytes: bytes(pki.leaf.certPem + pki.leaf.keyPem) }],
          activate: true,
          principal: TEST_PRINCIPAL,
        }),
        isService('PinnedBySource'),
      );
    } finally {
      pinnedBy = undefined;
    }
    assert.equal(await store.revision(), before);
    assert.equal(await store.getEntry('pinned'), undefined);
  });

  it('refuses to import over a pending CSR entry, pointing to completeCsr', async () => {
    await createCsr(ctx, {
      alias: 'waiting',
      subject: { CN: 'waiting.example.test' },
      sans: ['DNS:waiting.example.test'],
      keyType: 'ec-p256',
      principal: TEST_PRINCIPAL,
    });
    const before = await store.revision();
    for (const replace of [false, true]) {
      await assert.rejects(
        importEntry(ctx, {
          alias: 'waiting',
          files: [{ name: 'b', bytes: bytes(pki.leaf.certPem + pki.leaf.keyPem) }],
          replace,
          principal: TEST_PRINCIPAL,
        }),
        (e) => isService('EntryNotUsable')(e) && /completeCsr/.test((e as Error).message),
      );
    }
    assert.equal(await store.revision(), before);
    assert.equal((await store.getEntry('waiting'))?.kind, 'pending');
  });

  it('lets exactly one of two racing replacements win; the other is RevisionConflict', async () => {
    const [a, b] = await Promise.all([
      makeHierarchy({ name: 'Racer A' }),
      makeHierarchy({ name: 'Racer B' }),
    ]);
    const replace = (h: typeof a) =>
      importEntry(ctx, {
        alias: 'web',
        files: [
          { name: 'b', bytes: bytes(h.leaf.certPem + h.intermediate.certPem + h.leaf.keyPem) },
        ],
        replace: true,
        principal: TEST_PRINCIPAL,
      });
    const before = await store.revision();
    const outcomes = await Promise.allSettled([replace(a), replace(b)]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(won.length, 1, 'exactly one writer wins');
    assert.equal(lost.length, 1);
    assert.ok(isStoreError(lost[0]!.reason, 'RevisionConflict'), String(lost[0]!.reason));
    assert.equal(await store.revision(), before + 1, 'one change, not two');
    const winner = outcomes[0]!.status === 'fulfilled' ? a : b;
    assert.equal((await store.getEntry('web'))?.fingerprint, winner.leaf.cert.sha256);
  });

  it('refuses a stale If-Match revision with RevisionConflict and writes nothing', async () => {
    const before = await store.revision();
    await assert.rejects(
      importEntry(ctx, {
        alias: 'stale',
        files: [{ name: 'r', bytes: bytes(pki.root.certPem) }],
        expectedRevision: before - 1,
        principal: TEST_PRINCIPAL,
      }),
      (e) => isStoreError(e, 'RevisionConflict'),
    );
    assert.equal(await store.revision(), before);
  });

  it('stores a self-signed X.509 v1 root (no extensions) as a trusted entry', {
    skip: needs('openssl'),
  }, async () => {
    const { dir: d, cleanup: c } = tempDir();
    try {
      const key = join(d, 'v1.key');
      const csr = join(d, 'v1.csr');
      const crt = join(d, 'v1.crt');
      await tool('openssl', [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-subj',
        '/CN=Old V1 Root',
        '-out',
        csr,
      ]);
      await tool('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-signkey',
        key,
        '-days',
        '30',
        '-out',
        crt,
      ]);
      const { readFileSync } = await import('node:fs');
      const r = await importEntry(ctx, {
        alias: 'old-v1-root',
        files: [{ name: 'v1.crt', bytes: readFileSync(crt) }],
        principal: TEST_PRINCIPAL,
      });
      assert.equal(r.entry.kind, 'trusted');
    } finally {
      c();
    }
  });

  it('imports an openssl-made PKCS#12 with its password', { skip: needs('openssl') }, async () => {
    const { dir: d, cleanup: c } = tempDir();
    try {
      writeFileSync(join(d, 'leaf.pem'), pki.leaf.certPem);
      writeFileSync(join(d, 'key.pem'), pki.leaf.keyPem);
      writeFileSync(join(d, 'int.pem'), pki.intermediate.certPem);
      await tool('openssl', [
        'pkcs12',
        '-export',
        '-in',
        join(d, 'leaf.pem'),
        '-inkey',
        join(d, 'key.pem'),
        '-certfile',
        join(d, 'int.pem'),
        '-passout',
        'pass:pw',
        '-out',
        join(d, 'x.p12'),
      ]);
      const { readFileSync } = await import('node:fs');
      const p12 = readFileSync(join(d, 'x.p12'));
      await assert.rejects(
        importEntry(ctx, {
          alias: 'p12',
          files: [{ name: 'x.p12', bytes: p12 }],
          password: 'bad',
          principal: TEST_PRINCIPAL,
        }),
        (e) => isCoreError(e, 'WrongPassword'),
      );
      const r = await importEntry(ctx, {
        alias: 'p12',
        files: [{ name: 'x.p12', bytes: p12 }],
        password: 'pw',
        activate: true,
        principal: TEST_PRINCIPAL,
      });
      assert.equal(r.entry.fingerprint, pki.leaf.cert.sha256);
      assert.equal((await store.listBindings()).find((b) => b.name === 'server')?.alias, 'p12');
    } finally {
      c();
    }
  });
});
