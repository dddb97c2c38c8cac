import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  resolveStartupSource,
  type SourceAttempt,
  SourceError,
  type SourceOptions,
} from '../../src/runtime/sources.js';
import { bindEntry } from '../../src/service/bind-entry.js';
import { importEntry } from '../../src/service/import-entry.js';
import { ensureLocalCa, localServerNames } from '../../src/service/local-ca.js';
import { openDataDir } from '../../src/store/data-dir.js';
import type { Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { needs, tempDir, tool } from '../support/tools.js';

describe('the startup source order', { skip: needs('openssl') }, () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  const f = (name: string) => join(dir, name);
  let store: Store;
  let log: SourceAttempt[];
  let good: Awaited<ReturnType<typeof makeHierarchy>>;
  let other: Awaited<ReturnType<typeof makeHierarchy>>;
  const now = new Date();

  const options = (overrides: Partial<SourceOptions> = {}): SourceOptions => ({
    dataDir,
    flags: {},
    config: {},
    env: {},
    store,
    now,
    strict: false,
    log: (a) => log.push(a),
    ...overrides,
  });

  before(async () => {
    store = await openDataDir(dataDir, {}, { create: true });
    await ensureLocalCa({ store, now, names: localServerNames('box'), commonName: 'box' });
    good = await makeHierarchy({ name: 'Good' });
    other = await makeHierarchy({ name: 'Other' });
    writeFileSync(f('good.crt'), good.leaf.certPem + good.intermediate.certPem);
    writeFileSync(f('good.key'), good.leaf.keyPem);
    writeFileSync(f('other.crt'), other.leaf.certPem + other.intermediate.certPem);
    writeFileSync(f('other.key'), other.leaf.keyPem);
    // A PKCS#1 ("traditional") key, as many admins still have them.
    await tool('openssl', [
      'pkey',
      '-in',
      f('other.key'),
      '-traditional',
      '-out',
      f('other-trad.key'),
    ]);
    const expired = await makeHierarchy({
      now: new Date(Date.now() - 200 * 86400_000),
      leafDays: 10,
    });
    writeFileSync(f('expired.crt'), expired.leaf.certPem);
    writeFileSync(f('expired.key'), expired.leaf.keyPem);
  });
  beforeEach(() => {
    log = [];
  });
  after(async () => {
    await store.close();
    cleanup();
  });

  it('falls back to the local CA when nothing else is configured, logging every step', async () => {
    const r = await resolveStartupSource(options());
    assert.equal(r.source, 'local-ca');
    assert.deepEqual(
      log.map((a) => [a.source, a.outcome]),
      [
        ['flag', 'absent'],
        ['default-location', 'absent'],
        ['config', 'absent'],
        ['environment', 'absent'],
        ['keystore', 'absent'],
        ['local-ca', 'used'],
      ],
    );
  });

  it('prefers the flags over everything', async () => {
    const r = await resolveStartupSource(
      options({
        flags: { certificate: f('good.crt'), privateKey: f('good.key') },
        env: { CERTKEEPER_SSL_CERT: f('other.crt'), CERTKEEPER_SSL_KEY: f('other.key') },
      }),
    );
    assert.equal(r.source, 'flag');
    assert.equal(r.identity.fingerprint, good.leaf.cert.sha256);
    assert.match(r.what, /good\.crt/);
    assert.equal(log.length, 1);
  });

  it('falls through a missing flag file to the environment, naming the problem', async () => {
    const r = await resolveStartupSource(
      options({
        flags: { certificate: f('missing.crt'), privateKey: f('good.key') },
        env: { CERTKEEPER_SSL_CERT: f('other.crt'), CERTKEEPER_SSL_KEY: f('other-trad.key') },
      }),
    );
    assert.equal(r.source, 'environment');
    assert.equal(r.identity.fingerprint, other.leaf.cert.sha256);
    assert.deepEqual([log[0]!.outcome, log[0]!.code], ['broken', 'FileUnreadable']);
  });

  it('falls through a key that does not match and an expired certificate', async () => {
    const r = await resolveStartupSource(
      options({
        flags: { certificate: f('good.crt'), privateKey: f('other.key') },
        config: { certificate: f('expired.crt'), privateKey: f('expired.key') },
      }),
    );
    assert.equal(r.source, 'local-ca');
    assert.equal(log[0]!.code, 'KeyMismatch');
    assert.equal(log[2]!.code, 'CertificateExpired');
  });

  describe('files it must not read fall through as a broken source, naming file and reason', () => {
    const cases: { what: string; path: () => string; code: string; reason: RegExp }[] = [
      {
        what: '/dev/zero',
        path: () => '/dev/zero',
        code: 'FileUnreadable',
        reason: /character device/,
      },
      {
        what: 'a FIFO with no writer',
        path: () => f('a-fifo'),
        code: 'FileUnreadable',
        reason: /FIFO/,
      },
      {
        what: 'a directory',
        path: () => f('a-directory'),
        code: 'FileUnreadable',
        reason: /a directory/,
      },
      {
        what: 'a sparse 3 GB file',
        path: () => f('sparse-3g.crt'),
        code: 'InputTooLarge',
        reason: /3000000000 bytes/,
      },
    ];
    before(() => {
      execFileSync('mkfifo', [f('a-fifo')]);
      mkdirSync(f('a-directory'));
      writeFileSync(f('sparse-3g.crt'), '');
      truncateSync(f('sparse-3g.crt'), 3e9);
    });

    /** The attempt is broken with `code`, on one line naming `path` and the reason. */
    const assertBroken = (attempt: SourceAttempt | undefined, c: (typeof cases)[number]) => {
      assert.equal(attempt?.outcome, 'broken');
      assert.equal(attempt.code, c.code, attempt.message);
      assert.ok(attempt.message?.includes(c.path()), `${attempt.message} names ${c.path()}`);
      assert.match(attempt.message ?? '', c.reason);
      assert.ok(!attempt.message?.includes('\n'), 'one line');
    };

    for (const c of cases) {
      it(`-z ${c.what}`, async () => {
        const r = await resolveStartupSource(
          options({ flags: { certificate: c.path(), privateKey: f('good.key') } }),
        );
        assert.equal(r.source, 'local-ca');
        assertBroken(log[0], c);
      });

      it(`-k ${c.what}, falling through to the environment`, async () => {
        const r = await resolveStartupSource(
          options({
            flags: { certificate: f('good.crt'), privateKey: c.path() },
            env: { CERTKEEPER_SSL_CERT: f('other.crt'), CERTKEEPER_SSL_KEY: f('other.key') },
          }),
        );
        assert.equal(r.source, 'environment');
        assertBroken(log[0], c);
      });

      it(`a passphrase file that is ${c.what}, in the config file source`, async () => {
        const r = await resolveStartupSource(
          options({
            config: {
              certificate: f('good.crt'),
              privateKey: f('good.key'),
              keyPassphraseFile: c.path(),
            },
          }),
        );
        assert.equal(r.source, 'local-ca');
        assertBroken(log[2], c);
      });
    }

    it('a default-location server.crt that is a FIFO', async () => {
      const ssl = join(dataDir, 'ssl');
      mkdirSync(ssl, { recursive: true });
      try {
        execFileSync('mkfifo', [join(ssl, 'server.crt')]);
        writeFileSync(join(ssl, 'server.key'), good.leaf.keyPem);
        const r = await resolveStartupSource(options());
        assert.equal(r.source, 'local-ca');
        assertBroken(log[1], {
          what: 'a FIFO',
          path: () => join(ssl, 'server.crt'),
          code: 'FileUnreadable',
          reason: /FIFO/,
        });
      } finally {
        rmSync(ssl, { recursive: true });
      }
    });

    it('a broken file is fatal under --strict-tls, in one line', async () => {
      await assert.rejects(
        resolveStartupSource(
          options({ strict: true, flags: { certificate: '/dev/zero', privateKey: f('good.key') } }),
        ),
        (e) =>
          e instanceof SourceError &&
          e.attempt.code === 'FileUnreadable' &&
          e.message.includes('/dev/zero') &&
          !e.message.includes('\n'),
      );
    });
  });

  it('makes a broken source fatal under --strict-tls', async () => {
    await assert.rejects(
      resolveStartupSource(
        options({
          strict: true,
          flags: { certificate: f('good.crt'), privateKey: f('other.key') },
        }),
      ),
      (e) => e instanceof SourceError && e.attempt.code === 'KeyMismatch',
    );
  });

  it('accepts inline PEM in the environment', async () => {
    const r = await resolveStartupSource(
      options({
        env: { CERTKEEPER_SSL_CERT: good.leaf.certPem, CERTKEEPER_SSL_KEY: good.leaf.keyPem },
      }),
    );
    assert.equal(r.source, 'environment');
    assert.equal(r.what, 'certificate given inline');
  });

  it('reads the default location, PEM pair or PKCS#12 with its password file', async () => {
    const ssl = join(dataDir, 'ssl');
    mkdirSync(ssl, { recursive: true });
    await tool('openssl', [
      'pkcs12',
      '-export',
      '-in',
      f('good.crt'),
      '-inkey',
      f('good.key'),
      '-passout',
      'pass:pw',
      '-out',
      join(ssl, 'server.p12'),
    ]);
    writeFileSync(join(ssl, 'server.p12.pass'), 'wrong\n');
    let r = await resolveStartupSource(options());
    assert.equal(r.source, 'local-ca');
    assert.equal(log[1]!.code, 'WrongPassword');
    writeFileSync(join(ssl, 'server.p12.pass'), 'pw\n');
    r = await resolveStartupSource(options());
    assert.equal(r.source, 'default-location');
    assert.equal(r.identity.fingerprint, good.leaf.cert.sha256);
    writeFileSync(join(ssl, 'server.crt'), other.leaf.certPem);
    writeFileSync(join(ssl, 'server.key'), other.leaf.keyPem);
    r = await resolveStartupSource(options());
    assert.equal(
      r.identity.fingerprint,
      other.leaf.cert.sha256,
      'the PEM pair wins over the PKCS#12',
    );
    (await import('node:fs')).rmSync(ssl, { recursive: true });
  });

  it('uses the keystore server binding before the local CA, with its chain', async () => {
    const ctx = { store, now: () => now, trusted: [] };
    await importEntry(ctx, {
      alias: 'web',
      files: [
        {
          name: 'b',
          bytes: Buffer.from(good.leaf.certPem + good.intermediate.certPem + good.leaf.keyPem),
        },
      ],
      principal: TEST_PRINCIPAL,
    });
    await bindEntry(ctx, { alias: 'web', binding: 'server', principal: TEST_PRINCIPAL });
    const r = await resolveStartupSource(options());
    assert.equal(r.source, 'keystore');
    assert.equal(r.identity.alias, 'web');
    assert.equal((r.identity.certPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  });
});
