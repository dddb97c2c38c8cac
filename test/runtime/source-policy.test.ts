import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { identityFromPem } from '../../src/runtime/identity.js';
import { probeIdentity } from '../../src/runtime/probe.js';
import {
  resolveStartupSource,
  type SourceAttempt,
  SourceError,
  type SourceKind,
  type SourceOptions,
} from '../../src/runtime/sources.js';
import { planImport } from '../../src/service/import-entry.js';
import { ensureLocalCa, localServerNames } from '../../src/service/local-ca.js';
import { openDataDir } from '../../src/store/data-dir.js';
import type { Store } from '../../src/store/store.js';
import { makeHierarchy } from '../support/pki.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import {
  makeRefusedIdentities,
  REFUSED_KINDS,
  type RefusedIdentity,
  type RefusedKind,
} from '../support/refused-keys.js';
import { needs, tempDir } from '../support/tools.js';

/** The sentence the import policy gives for each key. */
const REASONS: Record<RefusedKind, RegExp> = {
  'rsa-1024': /RSA key has 1024 bits/,
  ed448: /Ed448 keys are not allowed/,
  secp256k1: /curve secp256k1, which is not allowed/,
  dsa: /DSA keys are not allowed/,
};

describe('every file source validates its identity as an import does', {
  skip: needs('openssl'),
}, () => {
  const { dir, cleanup } = tempDir();
  const dataDir = join(dir, 'data');
  const ssl = join(dataDir, 'ssl');
  const f = (name: string) => join(dir, name);
  // Taken once the fixtures exist: openssl's notBefore is their making, to the second.
  let now: Date;
  let store: Store;
  let log: SourceAttempt[];
  let refused: Record<RefusedKind, RefusedIdentity>;
  let good: Awaited<ReturnType<typeof makeHierarchy>>;

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

  /** The options that put `files` (a certificate and key path) at `source`. */
  const at = (
    source: Exclude<SourceKind, 'keystore' | 'local-ca'>,
    files: { cert: string; key: string },
  ): Partial<SourceOptions> => {
    switch (source) {
      case 'flag':
        return { flags: { certificate: files.cert, privateKey: files.key } };
      case 'default-location':
        mkdirSync(ssl, { recursive: true });
        writeFileSync(join(ssl, 'server.crt'), readFileSync(files.cert));
        writeFileSync(join(ssl, 'server.key'), readFileSync(files.key));
        return {};
      case 'config':
        return { config: { certificate: files.cert, privateKey: files.key } };
      case 'environment':
        return { env: { CERTKEEPER_SSL_CERT: files.cert, CERTKEEPER_SSL_KEY: files.key } };
    }
  };

  before(async () => {
    refused = await makeRefusedIdentities(dir);
    good = await makeHierarchy({ name: 'Good', hosts: ['localhost'] });
    now = new Date();
    store = await openDataDir(dataDir, {}, { create: true });
    await ensureLocalCa({ store, now, names: localServerNames('box'), commonName: 'box' });
    writeFileSync(f('good.crt'), good.leaf.certPem + good.intermediate.certPem);
    writeFileSync(f('good.key'), good.leaf.keyPem);
  });
  beforeEach(() => {
    log = [];
    rmSync(ssl, { recursive: true, force: true });
  });
  after(async () => {
    await store.close();
    cleanup();
  });

  // Each file source with each refused key, and a good identity at the next source
  // (the local CA after the environment), which must be the one chosen.
  const order = ['flag', 'default-location', 'config', 'environment'] as const;
  for (const [i, source] of order.entries()) {
    const next = order[i + 1];
    it(`refuses each weak key at the ${source} source and uses ${next ?? 'the local CA'}`, async () => {
      for (const kind of REFUSED_KINDS) {
        log = [];
        rmSync(ssl, { recursive: true, force: true });
        const r = await resolveStartupSource(
          options({
            ...(next ? at(next, { cert: f('good.crt'), key: f('good.key') }) : {}),
            ...at(source, refused[kind]),
          }),
        );
        assert.equal(r.source, next ?? 'local-ca', kind);
        if (next) assert.equal(r.identity.fingerprint, good.leaf.cert.sha256, kind);
        const attempt = log.find((a) => a.source === source);
        assert.equal(attempt?.outcome, 'broken', `${source} ${kind}`);
        assert.equal(attempt.code, 'PolicyViolation', `${kind}: ${attempt.message}`);
        assert.match(attempt.message ?? '', REASONS[kind]);
        assert.ok(!attempt.message?.includes('\n'), 'one line');
        assert.deepEqual(
          r.attempts.filter((a) => a.outcome === 'broken').map((a) => a.source),
          [source],
        );
      }
    });
  }

  it('gives the same code and sentence as certkeeper import', async () => {
    for (const kind of REFUSED_KINDS) {
      log = [];
      await resolveStartupSource(options(at('flag', refused[kind])));
      await assert.rejects(
        planImport(
          { store, now: () => now, trusted: [] },
          {
            alias: `weak-${kind}`,
            files: [
              { name: 'cert', bytes: readFileSync(refused[kind].cert) },
              { name: 'key', bytes: readFileSync(refused[kind].key) },
            ],
            principal: TEST_PRINCIPAL,
          },
        ),
        (e: { code?: string; message?: string }) =>
          e.code === log[0]!.code && e.message === log[0]!.message,
      );
    }
  });

  it('reports the warnings an import would give, on the source it uses', async () => {
    const r = await resolveStartupSource(
      options(at('config', { cert: f('good.crt'), key: f('good.key') })),
    );
    const plan = await planImport(
      { store, now: () => now, trusted: [] },
      {
        alias: 'good',
        files: [
          { name: 'cert', bytes: readFileSync(f('good.crt')) },
          { name: 'key', bytes: readFileSync(f('good.key')) },
        ],
        principal: TEST_PRINCIPAL,
      },
    );
    assert.equal(r.source, 'config');
    assert.ok(plan.description.warnings.length > 0, 'the fixture has an unanchored chain');
    assert.deepEqual(
      r.attempts.find((a) => a.source === 'config')?.warnings,
      plan.description.warnings.map((w) => ({ code: w.code, message: w.message })),
    );
  });

  it('makes a weak key fatal under --strict-tls', async () => {
    await assert.rejects(
      resolveStartupSource(options({ strict: true, ...at('environment', refused.ed448) })),
      (e) =>
        e instanceof SourceError &&
        e.attempt.source === 'environment' &&
        e.attempt.code === 'PolicyViolation',
    );
  });

  it('passes over a keystore binding no client can complete a handshake with', async () => {
    // Written to the store directly, as an entry imported before the policy was would be:
    // the import validation is not run again, but the test handshake is.
    const { createPrivateKey } = await import('node:crypto');
    const pem = readFileSync(refused.secp256k1.cert, 'utf8');
    const leaf = pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 26);
    const identity = identityFromPem({
      key: readFileSync(refused.secp256k1.key, 'utf8'),
      cert: leaf,
      source: 'test',
    });
    await store.applyChange({
      actor: 'test',
      action: 'test',
      mutations: [
        {
          type: 'putEntry',
          entry: {
            alias: 'old-k1',
            kind: 'key-pair',
            certificatePem: leaf,
            chainPem: '',
            privateKeyDer: createPrivateKey(readFileSync(refused.secp256k1.key)).export({
              format: 'der',
              type: 'pkcs8',
            }),
            fingerprint: identity.fingerprint,
          },
        },
        { type: 'bind', name: 'server', alias: 'old-k1' },
      ],
    });
    try {
      const r = await resolveStartupSource(options());
      assert.equal(r.source, 'local-ca');
      const attempt = log.find((a) => a.source === 'keystore');
      assert.deepEqual([attempt?.outcome, attempt?.code], ['broken', 'ProbeFailed']);
      assert.match(attempt?.message ?? '', /test handshake .* failed: ERR_SSL_/);
    } finally {
      await store.applyChange({
        actor: 'test',
        action: 'test',
        mutations: [{ type: 'unbind', name: 'server' }],
      });
    }
  });

  it('the test handshake fails for secp256k1 and DSA, which OpenSSL loads', async () => {
    const identityOf = (id: RefusedIdentity) =>
      identityFromPem({
        key: readFileSync(id.key, 'utf8'),
        cert: readFileSync(id.cert, 'utf8'),
        source: id.kind,
      });
    for (const kind of ['secp256k1', 'dsa'] as const) {
      const check = await probeIdentity(identityOf(refused[kind]));
      assert.equal(check.ok, false, kind);
      assert.equal(check.served, null, kind);
      assert.match(check.error ?? '', /^ERR_SSL_/, kind);
    }
    // Served alone, an RSA-1024 identity does complete a handshake: the policy refuses it.
    const rsa = identityOf(refused['rsa-1024']);
    const check = await probeIdentity(rsa);
    assert.equal(check.ok, true, check.error ?? '');
    assert.equal(check.served, rsa.fingerprint);
  });
});
