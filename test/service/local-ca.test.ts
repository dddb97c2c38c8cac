import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { subjectAltNamesOf } from '../../src/core/extensions.js';
import { parsePemBlocks, toPem } from '../../src/core/pem.js';
import { validateServerChain } from '../../src/core/validate.js';
import { LOCAL_CA_ALIAS, LOCAL_SERVER_ALIAS } from '../../src/service/context.js';
import {
  ensureLocalCa,
  localServerNames,
  reissueLocalCa,
  renewalDue,
  renewalTime,
} from '../../src/service/local-ca.js';
import { openDataDir, STORE_FILE } from '../../src/store/data-dir.js';
import { isStoreError, type Store } from '../../src/store/store.js';
import { TEST_PRINCIPAL } from '../support/principal.js';
import { corruptStoredKey, flipStoredPemByte } from '../support/store-damage.js';
import { needs, tempDir, tool } from '../support/tools.js';

const DAY = 86_400_000;

describe('the local CA', () => {
  const { dir, cleanup } = tempDir();
  let store: Store;
  const t0 = new Date('2026-01-01T00:00:00Z');
  const names = localServerNames('box.example.test', ['admin.example.test', '192.0.2.7']);
  const cert = async (alias: string) => {
    const entry = await store.getEntry(alias);
    return parseCertificate(parsePemBlocks(entry!.certificatePem!)[0]!.der);
  };

  before(async () => {
    store = await openDataDir(join(dir, 'data'), {}, { create: true });
  });
  after(async () => {
    await store.close();
    cleanup();
  });

  it('creates a 10-year P-256 CA and a 90-day server certificate on first start', async () => {
    const revision = await ensureLocalCa({ store, now: t0, names, commonName: 'box.example.test' });
    assert.equal(typeof revision, 'number');
    const ca = await cert(LOCAL_CA_ALIAS);
    const leaf = await cert(LOCAL_SERVER_ALIAS);
    assert.equal(Math.round((ca.notAfter.getTime() - t0.getTime()) / DAY), 3650);
    assert.equal(Math.round((leaf.notAfter.getTime() - t0.getTime()) / DAY), 90);
    const sans = subjectAltNamesOf(leaf);
    assert.deepEqual(sans.dns.sort(), ['admin.example.test', 'box.example.test', 'localhost']);
    assert.deepEqual(sans.ip.sort(), ['127.0.0.1', '192.0.2.7', '::1']);
    const bindings = await store.listBindings();
    assert.deepEqual(
      bindings.map((b) => [b.name, b.alias]),
      [['ca', LOCAL_CA_ALIAS]],
    );
    const result = validateServerChain(leaf, { trusted: [ca], time: t0, host: '::1' });
    assert.deepEqual(result.problems, []);
  });

  it('changes nothing before two thirds of the life have passed', async () => {
    const leaf = await cert(LOCAL_SERVER_ALIAS);
    const before = renewalTime(leaf);
    assert.equal(renewalDue(leaf, new Date(before.getTime() - 1000)), false);
    const revision = await store.revision();
    assert.equal(
      await ensureLocalCa({
        store,
        now: new Date(before.getTime() - 1000),
        names,
        commonName: 'box.example.test',
      }),
      undefined,
    );
    assert.equal(await store.revision(), revision);
  });

  it('renews the server certificate at two thirds of its life, keeping the CA', async () => {
    const ca = await cert(LOCAL_CA_ALIAS);
    const old = await cert(LOCAL_SERVER_ALIAS);
    const due = renewalTime(old);
    const revision = await ensureLocalCa({
      store,
      now: due,
      names,
      commonName: 'box.example.test',
    });
    assert.equal(typeof revision, 'number');
    const renewed = await cert(LOCAL_SERVER_ALIAS);
    assert.notEqual(renewed.sha256, old.sha256);
    assert.equal((await cert(LOCAL_CA_ALIAS)).sha256, ca.sha256);
    assert.ok(renewed.notAfter > old.notAfter);
    const audit = (await store.listAudit({ limit: 1 }))[0]!;
    assert.equal(audit.action, 'renew');
    assert.equal(audit.details.reason, 'two thirds of life passed');
  });

  it('re-issues when the names it must cover change', async () => {
    const old = await cert(LOCAL_SERVER_ALIAS);
    const more = localServerNames('box.example.test', ['new.example.test']);
    await ensureLocalCa({
      store,
      now: new Date(old.notBefore.getTime() + DAY),
      names: more,
      commonName: 'box.example.test',
    });
    assert.ok(subjectAltNamesOf(await cert(LOCAL_SERVER_ALIAS)).dns.includes('new.example.test'));
  });

  it('leaves out a host name that is not a DNS name, and refuses a bad extra SAN', () => {
    assert.deepEqual(localServerNames('my_box').dns, ['localhost']);
    assert.throws(() => localServerNames('box', ['not a name']));
  });
});

describe('a damaged local CA', () => {
  const names = localServerNames('box.example.test');
  const t0 = new Date('2026-01-01T00:00:00Z');

  /** A data directory whose local CA exists, damaged by `damage`; the store reopened after. */
  async function damaged(damage: (dataDir: string) => void, t: TestContext): Promise<Store> {
    const { dir, cleanup } = tempDir();
    const dataDir = join(dir, 'data');
    const first = await openDataDir(dataDir, {}, { create: true });
    await ensureLocalCa({ store: first, now: t0, names, commonName: 'box.example.test' });
    await first.close();
    damage(dataDir);
    const store = await openDataDir(dataDir, {});
    t.after(async () => {
      await store.close();
      cleanup();
    });
    return store;
  }

  async function refusesToReissue(store: Store, alias: string): Promise<void> {
    const revision = await store.revision();
    await assert.rejects(
      ensureLocalCa({ store, now: t0, names, commonName: 'box.example.test' }),
      (err: unknown) => {
        assert.ok(isStoreError(err, 'StoreCorrupt'), String(err));
        assert.ok(err.message.includes(alias), err.message);
        return true;
      },
    );
    assert.equal(await store.revision(), revision, 'nothing written, no new CA');
  }

  it('refuses a CA certificate with one byte changed, naming it, and issues no new CA', async (t) => {
    const store = await damaged(
      (d) =>
        flipStoredPemByte(join(d, STORE_FILE), LOCAL_CA_ALIAS, 'certificate_pem', 'not-base64'),
      t,
    );
    await refusesToReissue(store, LOCAL_CA_ALIAS);
  });

  it('refuses a CA key that does not decrypt, and issues no new CA', async (t) => {
    const store = await damaged((d) => corruptStoredKey(d, LOCAL_CA_ALIAS), t);
    await refusesToReissue(store, LOCAL_CA_ALIAS);
  });

  it('refuses a damaged server certificate, naming it', async (t) => {
    const store = await damaged(
      (d) => flipStoredPemByte(join(d, STORE_FILE), LOCAL_SERVER_ALIAS, 'certificate_pem', 'case'),
      t,
    );
    await refusesToReissue(store, LOCAL_SERVER_ALIAS);
  });
});

describe('two nodes keeping one local CA', () => {
  const names = localServerNames('box.example.test');
  const t0 = new Date('2026-01-01T00:00:00Z');

  /** Two stores on one data directory, as two processes (or nodes) would open it. */
  async function twoNodes(t: TestContext): Promise<[Store, Store]> {
    const { dir, cleanup } = tempDir();
    const dataDir = join(dir, 'data');
    const a = await openDataDir(dataDir, {}, { create: true });
    const b = await openDataDir(dataDir, {});
    t.after(async () => {
      await a.close();
      await b.close();
      cleanup();
    });
    return [a, b];
  }

  const ensure = (store: Store, now: Date) =>
    ensureLocalCa({ store, now, names, commonName: 'box.example.test' });

  it('creates one CA when both start at once: the later writer re-reads and finds it', async (t) => {
    const [a, b] = await twoNodes(t);
    const written = (await Promise.all([ensure(a, t0), ensure(b, t0)])).filter(
      (r) => r !== undefined,
    );
    assert.equal(written.length, 1, 'one change');
    assert.equal(await a.revision(), 1);
    const audit = await a.listAudit();
    assert.deepEqual(
      audit.map((r) => r.action),
      ['create-local-ca'],
    );
    assert.deepEqual(audit[0]!.details.principal, { role: 'system', source: 'runtime' });
  });

  it('renews once when both find the certificate due', async (t) => {
    const [a, b] = await twoNodes(t);
    await ensure(a, t0);
    const entry = await a.getEntry(LOCAL_SERVER_ALIAS);
    const due = renewalTime(parseCertificate(parsePemBlocks(entry!.certificatePem!)[0]!.der));
    const before = await a.revision();
    const written = (await Promise.all([ensure(a, due), ensure(b, due)])).filter(
      (r) => r !== undefined,
    );
    assert.equal(written.length, 1, 'one renewal, not two');
    assert.equal(await a.revision(), before + 1);
    assert.deepEqual(
      (await a.listAudit({ afterRevision: before })).map((r) => r.action),
      ['renew'],
    );
  });
});

/** `openssl verify -x509_strict -purpose sslserver` of `leaf` under `ca`, output and errors. */
async function opensslVerify(dir: string, ca: Certificate, leaf: Certificate, at: Date) {
  const caPath = join(dir, `ca-${ca.serialHex}.pem`);
  const leafPath = join(dir, `leaf-${leaf.serialHex}.pem`);
  writeFileSync(caPath, toPem('CERTIFICATE', ca.der));
  writeFileSync(leafPath, toPem('CERTIFICATE', leaf.der));
  return tool('sh', [
    '-c',
    'openssl verify -attime "$1" -x509_strict -purpose sslserver -CAfile "$2" "$3" 2>&1 || true',
    'sh',
    String(Math.floor(at.getTime() / 1000)),
    caPath,
    leafPath,
  ]);
}

async function storedCert(store: Store, alias: string): Promise<Certificate> {
  const entry = await store.getEntry(alias);
  return parseCertificate(parsePemBlocks(entry!.certificatePem!)[0]!.der);
}

describe('what the local CA issues', { skip: needs('openssl') }, () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const names = localServerNames('box.example.test', ['admin.example.test', '192.0.2.7']);

  async function freshStore(t: TestContext): Promise<{ store: Store; dir: string }> {
    const { dir, cleanup } = tempDir();
    const store = await openDataDir(join(dir, 'data'), {}, { create: true });
    t.after(async () => {
      await store.close();
      cleanup();
    });
    return { store, dir };
  }

  it('makes a CA certificate with the CA profile and a subject of its own, kept across restarts', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const dataDir = join(dir, 'data');
    let store = await openDataDir(dataDir, {}, { create: true });
    await ensureLocalCa({ store, now: t0, names, commonName: 'box.example.test' });
    const ca = await storedCert(store, LOCAL_CA_ALIAS);
    await store.close();
    assert.match(
      ca.subject.rfc4514,
      /^CN=certkeeper local CA [0-9a-f]{8} \(box\.example\.test\),O=certkeeper$/,
    );
    const caPath = join(dir, 'ca.pem');
    writeFileSync(caPath, toPem('CERTIFICATE', ca.der));
    const text = await tool('openssl', ['x509', '-in', caPath, '-noout', '-text']);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    assert.match(text, /X509v3 Subject Key Identifier: \n/);
    assert.doesNotMatch(text, /Name Constraints/);

    // A restart, later, keeps the CA and its name.
    store = await openDataDir(dataDir, {});
    t.after(() => store.close());
    const later = new Date(t0.getTime() + 100 * DAY);
    await ensureLocalCa({ store, now: later, names, commonName: 'box.example.test' });
    assert.equal((await storedCert(store, LOCAL_CA_ALIAS)).sha256, ca.sha256);
    assert.ok((await storedCert(store, LOCAL_SERVER_ALIAS)).issuer.der.equals(ca.subject.der));
  });

  it('gives two data directories of the same host name two different CA names', async (t) => {
    const subjects = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const { store } = await freshStore(t);
      await ensureLocalCa({ store, now: t0, names, commonName: 'box.example.test' });
      subjects.add((await storedCert(store, LOCAL_CA_ALIAS)).subject.rfc4514);
    }
    assert.equal(subjects.size, 2);
  });

  it('issues a server certificate our validator (policy on) and openssl -x509_strict accept for every name', async (t) => {
    const { store, dir } = await freshStore(t);
    await ensureLocalCa({ store, now: t0, names, commonName: 'BOX.example.test' });
    const ca = await storedCert(store, LOCAL_CA_ALIAS);
    const leaf = await storedCert(store, LOCAL_SERVER_ALIAS);
    assert.equal(leaf.subject.rfc4514, 'CN=box.example.test');
    const time = new Date(t0.getTime() + 3600_000);
    for (const host of [...names.dns, ...names.ip]) {
      const result = validateServerChain(leaf, {
        trusted: [ca],
        time,
        host,
        checkPolicy: true,
        policy: { maxValidityDays: 398 },
      });
      assert.deepEqual(result.problems, [], host);
    }
    assert.match(await opensslVerify(dir, ca, leaf, time), /: OK/);
  });

  it('names the leaf after a covered name when the host name is not one', async (t) => {
    const { store } = await freshStore(t);
    await ensureLocalCa({
      store,
      now: t0,
      names: localServerNames('my_box'),
      commonName: 'my_box',
    });
    assert.equal((await storedCert(store, LOCAL_SERVER_ALIAS)).subject.rfc4514, 'CN=localhost');
  });
});

describe('a name-constrained local CA (localCa.nameConstraints)', {
  skip: needs('openssl'),
}, () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const names = localServerNames('box.example.test', ['192.0.2.7']);
  const { dir, cleanup } = tempDir();
  let store: Store;
  let ca: Certificate;

  before(async () => {
    store = await openDataDir(join(dir, 'data'), {}, { create: true });
    await ensureLocalCa({
      store,
      now: t0,
      names,
      commonName: 'box.example.test',
      nameConstraints: true,
    });
    ca = await storedCert(store, LOCAL_CA_ALIAS);
  });
  after(async () => {
    await store.close();
    cleanup();
  });

  it('permits exactly the served names, critically', async () => {
    const caPath = join(dir, 'nc-ca.pem');
    writeFileSync(caPath, toPem('CERTIFICATE', ca.der));
    const text = await tool('openssl', ['x509', '-in', caPath, '-noout', '-text']);
    assert.match(text, /X509v3 Name Constraints: critical\n\s+Permitted:\n/);
    const permitted = text.split('Permitted:')[1]!.split(/\n\s+Signature Algorithm/)[0]!;
    assert.deepEqual(permitted.trim().split(/\n\s*/), [
      'DNS:box.example.test',
      'DNS:localhost',
      'IP:127.0.0.1/255.255.255.255',
      'IP:192.0.2.7/255.255.255.255',
      'IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF',
    ]);
  });

  it('issues a server certificate for a permitted name that openssl and our validator accept', async () => {
    const leaf = await storedCert(store, LOCAL_SERVER_ALIAS);
    const time = new Date(t0.getTime() + 3600_000);
    assert.match(await opensslVerify(dir, ca, leaf, time), /: OK/);
    const result = validateServerChain(leaf, { trusted: [ca], time, host: 'box.example.test' });
    assert.deepEqual(result.problems, []);
  });

  it('makes a certificate for another site, signed with the leaked CA key, fail both validators', async () => {
    const keyDer = await store.getPrivateKey(LOCAL_CA_ALIAS);
    const caKey = join(dir, 'leaked-ca.key');
    writeFileSync(caKey, toPem('PRIVATE KEY', keyDer!));
    const caPath = join(dir, 'leaked-ca.pem');
    writeFileSync(caPath, toPem('CERTIFICATE', ca.der));
    const at = (name: string) => join(dir, name);
    writeFileSync(
      at('evil.ext'),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
        'subjectAltName=DNS:bank.example.com',
        'authorityKeyIdentifier=keyid',
        'subjectKeyIdentifier=hash',
        '',
      ].join('\n'),
    );
    const openssl = (...args: string[]) => tool('openssl', args);
    await openssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      at('evil.key'),
    );
    await openssl(
      'req',
      '-new',
      '-key',
      at('evil.key'),
      '-subj',
      '/CN=bank.example.com',
      '-out',
      at('evil.csr'),
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      at('evil.csr'),
      '-CA',
      caPath,
      '-CAkey',
      caKey,
      '-set_serial',
      '0x51a2b3c4d5e6f708',
      '-days',
      '30',
      '-sha256',
      '-extfile',
      at('evil.ext'),
      '-out',
      at('evil.pem'),
    );
    const evil = parseCertificate(parsePemBlocks(readFileSync(at('evil.pem')))[0]!.der);
    const now = new Date();
    const result = validateServerChain(evil, {
      trusted: [ca],
      time: now,
      host: 'bank.example.com',
    });
    assert.deepEqual(
      result.problems.map((p) => p.code),
      ['NameConstraintViolation'],
    );
    assert.match(await opensslVerify(dir, ca, evil, now), /permitted subtree violation/);
  });

  it('leaves a name the constraints do not permit out of the certificate, and says how to mend it', async () => {
    const more = localServerNames('box.example.test', ['192.0.2.7', 'new.example.test']);
    const warnings: string[] = [];
    const ensure = () =>
      ensureLocalCa({
        store,
        now: new Date(t0.getTime() + DAY),
        names: more,
        commonName: 'box.example.test',
        nameConstraints: true,
        warn: (m) => warnings.push(m),
      });
    assert.equal(await ensure(), undefined, 'the certificate already covers every permitted name');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /do not permit new\.example\.test/);
    assert.match(warnings[0]!, /certkeeper local-ca reissue --name-constraints/);
    assert.ok(
      !subjectAltNamesOf(await storedCert(store, LOCAL_SERVER_ALIAS)).dns.includes(
        'new.example.test',
      ),
    );

    // Re-issuing (what `certkeeper local-ca reissue --name-constraints` does) permits them.
    const ctx = { store, now: () => new Date(t0.getTime() + DAY), trusted: [] };
    await reissueLocalCa(ctx, {
      names: more,
      commonName: 'box.example.test',
      nameConstraints: true,
      principal: TEST_PRINCIPAL,
    });
    const reissued = await storedCert(store, LOCAL_CA_ALIAS);
    assert.notEqual(reissued.subject.rfc4514, ca.subject.rfc4514, 'a new CA, a new name');
    assert.ok(
      subjectAltNamesOf(await storedCert(store, LOCAL_SERVER_ALIAS)).dns.includes(
        'new.example.test',
      ),
    );
    warnings.length = 0;
    assert.equal(await ensure(), undefined);
    assert.deepEqual(warnings, []);
  });

  it('says so when the option is on but the stored CA carries no constraints', async (t) => {
    const { dir: other, cleanup: done } = tempDir();
    const plain = await openDataDir(join(other, 'data'), {}, { create: true });
    t.after(async () => {
      await plain.close();
      done();
    });
    await ensureLocalCa({ store: plain, now: t0, names, commonName: 'box.example.test' });
    const warnings: string[] = [];
    await ensureLocalCa({
      store: plain,
      now: t0,
      names,
      commonName: 'box.example.test',
      nameConstraints: true,
      warn: (m) => warnings.push(m),
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /carries no name constraints/);
  });
});
