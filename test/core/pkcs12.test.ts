import assert from 'node:assert/strict';
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  pbkdf2Sync,
  randomBytes,
} from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { readChildren, readTlv, type Tlv } from '../../src/core/der.js';
import { type CoreErrorCode, isCoreError } from '../../src/core/errors.js';
import { parsePrivateKeyPem } from '../../src/core/keys.js';
import { KDF_ID, pbePassword, pkcs12Kdf, WorkBudget } from '../../src/core/pbe.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { isPkcs12, type Pkcs12Contents, readPkcs12, writePkcs12 } from '../../src/core/pkcs12.js';
import { needs, needsCorpus, PYCA, tempDir, tool } from '../support/tools.js';

const NO_OPENSSL = needs('openssl');
const NO_KEYTOOL = needs('keytool');

const PBES2_SHA256_AES256 = 'PBES2 (PBKDF2 hmacWithSHA256, aes-256-cbc, 2048 iterations)';
const PBES2_SHA1_AES256 = 'PBES2 (PBKDF2 hmacWithSHA1, aes-256-cbc, 2048 iterations)';
const RC2_40 = 'pbeWithSHAAnd40BitRC2-CBC';
const TDES = 'pbeWithSHAAnd3-KeyTripleDES-CBC';

/** Asserts that the promise rejects with a CoreError of this code. */
async function rejectsWith(promise: Promise<unknown>, code: CoreErrorCode): Promise<void> {
  await assert.rejects(promise, (err) => {
    assert.ok(isCoreError(err), `expected a CoreError, got ${(err as Error)?.stack ?? err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** Resolves to the error code, or 'ok'; fails on anything that is not a CoreError. */
async function outcome(der: Uint8Array, password?: string): Promise<CoreErrorCode | 'ok'> {
  try {
    await readPkcs12(der, password);
    return 'ok';
  } catch (err) {
    assert.ok(isCoreError(err), `untyped error: ${(err as Error)?.stack ?? err}`);
    return err.code;
  }
}

const spki = (key: KeyObject | Certificate): Buffer =>
  'spkiDer' in key
    ? createPublicKey({ key: key.spkiDer, format: 'der', type: 'spki' }).export({
        type: 'spki',
        format: 'der',
      })
    : createPublicKey(key).export({ type: 'spki', format: 'der' });

function pemCertificates(path: string): Certificate[] {
  return parsePemBlocks(readFileSync(path))
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => parseCertificate(b.der));
}

/**
 * A runner for fixture commands written as they would be typed: words split on spaces,
 * `@name` is the file `name` in `dir`; arguments with spaces go in `extra`.
 */
function commandIn(command: string, dir: string) {
  return (line: string, ...extra: string[]) =>
    tool(command, [
      ...line.split(' ').map((w) => (w.startsWith('@') ? join(dir, w.slice(1)) : w)),
      ...extra,
    ]);
}

// --- DER surgery for crafted inputs -------------------------------------------------------

function encode(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const len = body.length;
  const header =
    len < 0x80
      ? [tag, len]
      : len < 0x100
        ? [tag, 0x81, len]
        : len < 0x10000
          ? [tag, 0x82, len >> 8, len & 0xff]
          : [tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  return Buffer.concat([Buffer.from(header), body]);
}

const bytesOf = (buf: Buffer, tlv: Tlv) => buf.subarray(tlv.start, tlv.end);

/** The same PFX with its MAC iteration count replaced. */
function withMacIterations(der: Buffer, iterations: number): Buffer {
  const [version, authSafe, mac] = readChildren(der, readTlv(der));
  const [digestInfo, salt] = readChildren(der, mac!);
  const hex = iterations.toString(16);
  const int = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  const integer = encode(0x02, int[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), int]) : int);
  return encode(
    0x30,
    bytesOf(der, version!),
    bytesOf(der, authSafe!),
    encode(0x30, bytesOf(der, digestInfo!), bytesOf(der, salt!), integer),
  );
}

/**
 * The same PFX with a PBMAC1 MAC (RFC 9579): PBKDF2-HMAC-SHA256 over the UTF-8 password,
 * HMAC-SHA512 over the authSafe content octets.
 */
function withPbmac1(der: Buffer, password: string, iterations: number): Buffer {
  const [version, authSafe] = readChildren(der, readTlv(der));
  const [, explicit] = readChildren(der, authSafe!);
  const [octets] = readChildren(der, explicit!);
  const content = der.subarray(octets!.contentStart, octets!.end);
  const salt = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const mac = createHmac('sha512', key).update(content).digest();
  const oid = (hex: string) => Buffer.from(hex, 'hex');
  const NULL = Buffer.from('0500', 'hex');
  const pbkdf2Params = encode(
    0x30,
    encode(0x04, salt),
    encode(0x02, Buffer.from([iterations >> 8, iterations & 0xff])),
    encode(0x02, Buffer.from([32])),
    encode(0x30, oid('06082a864886f70d0209'), NULL), // hmacWithSHA256
  );
  const pbmac1 = encode(
    0x30,
    oid('06092a864886f70d01050e'), // PBMAC1
    encode(
      0x30,
      encode(0x30, oid('06092a864886f70d01050c'), pbkdf2Params), // PBKDF2
      encode(0x30, oid('06082a864886f70d020b'), NULL), // hmacWithSHA512
    ),
  );
  const macData = encode(
    0x30,
    encode(0x30, pbmac1, encode(0x04, mac)),
    encode(0x04, Buffer.from('NOT USED')),
    encode(0x02, Buffer.from([1])),
  );
  return encode(0x30, bytesOf(der, version!), bytesOf(der, authSafe!), macData);
}

/**
 * Re-encodes DER as BER the way streaming encoders do: every constructed element with an
 * indefinite length, every OCTET STRING (and the [0] IMPLICIT encrypted content) cut into
 * 16-byte chunks. Contents of octet strings are left alone, so the MAC still verifies.
 */
function toBer(buf: Buffer, tlv: Tlv = readTlv(buf)): Buffer {
  const open = (tag: number) => Buffer.from([tag, 0x80]);
  const eoc = Buffer.from([0, 0]);
  if (tlv.tag === 0x04 || tlv.tag === 0x80) {
    const content = buf.subarray(tlv.contentStart, tlv.end);
    const chunks: Buffer[] = [];
    for (let i = 0; i < content.length; i += 16)
      chunks.push(encode(0x04, content.subarray(i, i + 16)));
    return Buffer.concat([open(tlv.tag | 0x20), ...chunks, eoc]);
  }
  if (tlv.tag & 0x20) {
    const children = readChildren(buf, tlv).map((c) => toBer(buf, c));
    return Buffer.concat([open(tlv.tag), ...children, eoc]);
  }
  return bytesOf(buf, tlv);
}

/** The content octets of an OCTET STRING held in a `[0] EXPLICIT` element (DER only). */
function explicitContent(buf: Buffer, explicit: Tlv): Buffer {
  const [octets] = readChildren(buf, explicit);
  return buf.subarray(octets!.contentStart, octets!.end);
}

/**
 * The PFX as BER all the way down: {@link toBer} applied to the PFX, to the
 * AuthenticatedSafe inside it and to each SafeContents held in the clear, so PBE
 * parameters (salts, IVs), shrouded keys, key and cert bags and localKeyId are chunked
 * too. A MAC is computed again over the new content: SHA-256, 2048 iterations.
 */
async function toBerThroughout(pfx: Buffer, password: string): Promise<Buffer> {
  const dataOid = Buffer.from('06092a864886f70d010701', 'hex');
  const [version, authSafe, mac] = readChildren(pfx, readTlv(pfx));
  const content = explicitContent(pfx, readChildren(pfx, authSafe!)[1]!);
  const infos = readChildren(content, readTlv(content)).map((info) => {
    const [type, explicit] = readChildren(content, info);
    if (!bytesOf(content, type!).equals(dataOid)) return toBer(content, info);
    const safeContents = toBer(explicitContent(content, explicit!));
    return toBer(encode(0x30, dataOid, encode(0xa0, encode(0x04, safeContents))));
  });
  const ber = Buffer.concat([Buffer.from([0x30, 0x80]), ...infos, Buffer.alloc(2)]);
  const macData: Buffer[] = [];
  if (mac) {
    const salt = randomBytes(16);
    const key = await pkcs12Kdf('sha256', pbePassword(password).bmp, salt, KDF_ID.mac, 2048, 32);
    const sha256 = Buffer.from('0609608648016503040201', 'hex');
    const digestInfo = encode(
      0x30,
      encode(0x30, sha256, Buffer.from('0500', 'hex')),
      encode(0x04, createHmac('sha256', key).update(ber).digest()),
    );
    macData.push(encode(0x30, digestInfo, encode(0x04, salt), encode(0x02, Buffer.from([8, 0]))));
  }
  const authSafeInfo = encode(0x30, dataOid, encode(0xa0, encode(0x04, ber)));
  return toBer(encode(0x30, bytesOf(pfx, version!), authSafeInfo, ...macData));
}

// --- pyca vectors ------------------------------------------------------------------------

describe('PKCS#12: the pyca vectors, as the corpus README describes them', {
  skip: needsCorpus(PYCA),
}, () => {
  const dir = join(PYCA, 'pkcs12');
  const [CA] = pemCertificates(join(PYCA, 'x509/custom/ca/ca.pem'));
  const [IO] = pemCertificates(join(PYCA, 'x509/cryptography.io.pem'));
  const [LE] = pemCertificates(join(PYCA, 'x509/letsencryptx3.pem'));
  const caKey = createPrivateKey(readFileSync(join(PYCA, 'x509/custom/ca/ca_key.pem')));

  interface Row {
    password: string | undefined;
    key: boolean;
    /** Certificates in file order, with their friendly names. */
    certs: [Certificate, string | undefined][];
    encryption: string[];
    macIterations: number;
  }
  const rows: Record<string, Row> = {
    'cert-aes256cbc-no-key.p12': {
      password: 'cryptography',
      key: false,
      certs: [[CA!, undefined]],
      encryption: [PBES2_SHA1_AES256],
      macIterations: 2048,
    },
    'cert-key-aes256cbc.p12': {
      password: 'cryptography',
      key: true,
      certs: [[CA!, undefined]],
      encryption: [PBES2_SHA1_AES256, PBES2_SHA1_AES256],
      macIterations: 2048,
    },
    'cert-none-key-none.p12': {
      password: 'cryptography',
      key: true,
      certs: [[CA!, undefined]],
      encryption: ['none', 'none'],
      macIterations: 2048,
    },
    'cert-rc2-key-3des.p12': {
      password: 'cryptography',
      key: true,
      certs: [[CA!, undefined]],
      encryption: [RC2_40, TDES],
      macIterations: 2048,
    },
    'no-cert-key-aes256cbc.p12': {
      password: 'cryptography',
      key: true,
      certs: [],
      encryption: [PBES2_SHA1_AES256],
      macIterations: 2048,
    },
    'no-password.p12': {
      password: undefined,
      key: true,
      certs: [[CA!, 'cryptography CA']],
      encryption: [RC2_40, TDES],
      macIterations: 1,
    },
  };
  // The name-* and no-cert-name-* families: [ca name, cryptography.io name, letsencrypt name].
  const names: Record<string, (string | undefined)[]> = {
    '1': ['name', undefined, undefined],
    '2': [undefined, 'name2', undefined],
    '3': [undefined, undefined, 'name3'],
    '2-3': [undefined, 'name2', 'name3'],
    all: ['name', 'name2', 'name3'],
    unicode: ['\u263a', '\u00e4', '\u00e7'],
    none: [undefined, undefined, undefined],
  };
  const noCertNames: Record<string, (string | undefined)[]> = {
    '2': ['name2', undefined],
    '3': [undefined, 'name3'],
    all: ['name2', 'name3'],
    unicode: ['\u2639', '\u00ef'],
    none: [undefined, undefined],
  };
  for (const pwd of ['pwd', 'no-pwd']) {
    const password = pwd === 'pwd' ? 'password' : undefined;
    for (const [suffix, [ca, io, le]] of Object.entries(names)) {
      const file = suffix === 'none' ? `no-name-${pwd}.p12` : `name-${suffix}-${pwd}.p12`;
      rows[file] = {
        password,
        key: true,
        certs: [
          [CA!, ca],
          [IO!, io],
          [LE!, le],
        ],
        encryption: password ? [TDES, TDES] : ['none', 'none'],
        macIterations: 1,
      };
    }
    for (const [suffix, [io, le]] of Object.entries(noCertNames)) {
      const file =
        suffix === 'none' ? `no-cert-no-name-${pwd}.p12` : `no-cert-name-${suffix}-${pwd}.p12`;
      rows[file] = {
        password,
        key: false,
        certs: [
          [IO!, io],
          [LE!, le],
        ],
        encryption: password ? [TDES] : ['none'],
        macIterations: 1,
      };
    }
  }

  it('has a row for each of the 30 files', () => {
    assert.deepEqual(
      Object.keys(rows).sort(),
      readdirSync(dir)
        .filter((f) => f.endsWith('.p12'))
        .sort(),
    );
  });

  for (const [file, row] of Object.entries(rows)) {
    it(`opens ${file}: keys, certificates, friendly names, pairing, protection`, async () => {
      const der = readFileSync(join(dir, file));
      assert.equal(isPkcs12(der), true);
      const p12 = await readPkcs12(der, row.password);
      assert.equal(p12.keys.length, row.key ? 1 : 0);
      if (row.key) assert.deepEqual(spki(p12.keys[0]!.key), spki(caKey));
      assert.deepEqual(
        p12.certificates.map((c) => [c.certificate.sha256, c.friendlyName]),
        row.certs.map(([cert, name]) => [cert.sha256, name]),
      );
      const caIndex = row.certs.findIndex(([cert]) => cert === CA);
      assert.deepEqual(
        p12.pairs,
        row.key && caIndex >= 0 ? [{ key: 0, certificate: caIndex, by: 'localKeyId' }] : [],
      );
      assert.deepEqual(p12.integrity, {
        kind: 'mac',
        digest: 'sha1',
        iterations: row.macIterations,
      });
      assert.deepEqual(p12.encryption, row.encryption);
      assert.equal(p12.password, row.password ? 'given' : 'none');
    });
  }

  it('opens the no-password files with the empty password too, and refuses a wrong one', async () => {
    for (const file of ['no-password.p12', 'name-all-no-pwd.p12']) {
      const der = readFileSync(join(dir, file));
      assert.equal((await readPkcs12(der, '')).password, 'none');
      await rejectsWith(readPkcs12(der, 'cryptography'), 'WrongPassword');
    }
  });

  it('says WrongPassword for a wrong password and PasswordRequired for none', async () => {
    const der = readFileSync(join(dir, 'cert-rc2-key-3des.p12'));
    await rejectsWith(readPkcs12(der, 'password'), 'WrongPassword');
    await rejectsWith(readPkcs12(der, undefined), 'PasswordRequired');
  });
});

describe('PKCS#12: every PKITS bundle (password "password")', {
  skip: needsCorpus(join(PYCA, 'x509/PKITS_data/pkcs12')),
}, () => {
  it('opens all 405 files, each with its key paired to its certificate', async () => {
    const dir = join(PYCA, 'x509/PKITS_data/pkcs12');
    const files = readdirSync(dir).filter((f) => f.endsWith('.p12'));
    assert.equal(files.length, 405);
    const dsaInherited = new Set([
      'DSAParametersInheritedCACert.p12',
      'ValidDSAParameterInheritanceTest5EE.p12',
    ]);
    for (const file of files) {
      const p12 = await readPkcs12(readFileSync(join(dir, file)), 'password');
      assert.equal(p12.keys.length, 1, file);
      assert.equal(p12.certificates.length, 1, file);
      assert.deepEqual(p12.pairs, [{ key: 0, certificate: 0, by: 'localKeyId' }], file);
      // Two DSA certificates inherit their domain parameters from the issuer, so their
      // public key can't be loaded alone (the keys in the bundles carry the parameters).
      if (!dsaInherited.has(file)) {
        assert.deepEqual(spki(p12.keys[0]!.key), spki(p12.certificates[0]!.certificate), file);
      }
      const crt = join(PYCA, 'x509/PKITS_data/certs', file.replace(/\.p12$/, '.crt'));
      if (existsSync(crt)) {
        assert.equal(
          p12.certificates[0]!.certificate.sha256,
          parseCertificate(readFileSync(crt)).sha256,
        );
      }
    }
  });
});

// --- Files made by OpenSSL at test time -----------------------------------------------------

describe('PKCS#12: files made by OpenSSL 3', { skip: NO_OPENSSL }, () => {
  const { dir, cleanup } = tempDir();
  const path = (name: string) => join(dir, name);
  const file = (name: string) => readFileSync(path(name));
  let leaf: Certificate;
  let ca: Certificate;
  let leafKey: KeyObject;
  const openssl = commandIn('openssl', dir);
  /** `openssl pkcs12 -export` of the RSA leaf and its EC CA, password "secret", name "leaf". */
  const exportLeaf = (out: string, options = '') =>
    openssl(
      `pkcs12 -export -inkey @leaf.key -in @leaf.pem -certfile @ca.pem -name leaf -passout pass:secret -out @${out}${options}`,
    );

  before(async () => {
    const ec = '-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';
    await openssl(`req -x509 ${ec} -keyout @ca.key -out @ca.pem -subj /CN=Test-CA -days 30`);
    await openssl(
      'req -newkey rsa:2048 -nodes -keyout @leaf.key -out @leaf.csr -subj /CN=leaf.test',
    );
    await openssl(
      'x509 -req -in @leaf.csr -CA @ca.pem -CAkey @ca.key -set_serial 2 -days 30 -out @leaf.pem',
    );
    await openssl(
      'req -x509 -newkey ed25519 -nodes -keyout @ed.key -out @ed.pem -subj /CN=ed25519.test -days 30',
    );
    [leaf] = pemCertificates(path('leaf.pem')) as [Certificate];
    [ca] = pemCertificates(path('ca.pem')) as [Certificate];
    leafKey = createPrivateKey(file('leaf.key'));
    writeFileSync(path('chain.pem'), Buffer.concat([file('leaf.pem'), file('ca.pem')]));
    await exportLeaf('default.p12');
    await exportLeaf('legacy.p12', ' -legacy');
    await exportLeaf('clear.p12', ' -certpbe NONE -keypbe NONE');
    await exportLeaf('nomac.p12', ' -nomac');
    await exportLeaf('plain.p12', ' -nomac -certpbe NONE -keypbe NONE');
    await exportLeaf('sha512.p12', ' -macalg sha512');
    await openssl('pkcs12 -export -inkey @leaf.key -in @leaf.pem -passout pass: -out @empty.p12');
    await openssl(
      'pkcs12 -export -inkey @ed.key -in @ed.pem -passout pass:secret -out @ed25519.p12 -name',
      'Zürich ☺',
    );
    await openssl('pkcs12 -export -inkey @ca.key -in @ca.pem -passout pass:secret -out @ec.p12');
    await openssl(
      'pkcs12 -export -nocerts -inkey @leaf.key -passout pass:secret -out @keyonly.p12',
    );
    await openssl('pkcs12 -export -nokeys -in @chain.pem -passout pass:secret -out @certonly.p12');
  });
  after(cleanup);

  /** The leaf file's contents as every OpenSSL export of it should read. */
  function assertLeafAndCa(p12: Pkcs12Contents): void {
    assert.equal(p12.keys.length, 1);
    assert.deepEqual(spki(p12.keys[0]!.key), spki(leafKey));
    assert.equal(p12.keys[0]!.friendlyName, 'leaf');
    assert.deepEqual(
      p12.certificates.map((c) => [c.certificate.sha256, c.friendlyName]),
      [
        [leaf.sha256, 'leaf'],
        [ca.sha256, undefined],
      ],
    );
    assert.equal(p12.keys[0]!.localKeyId, p12.certificates[0]!.localKeyId);
    assert.deepEqual(p12.pairs, [{ key: 0, certificate: 0, by: 'localKeyId' }]);
    assert.equal(p12.password, 'given');
  }

  it("opens OpenSSL 3's default file: PBES2 AES-256-CBC, PBKDF2 hmacWithSHA256, MAC SHA-256", async () => {
    const p12 = await readPkcs12(file('default.p12'), 'secret');
    assertLeafAndCa(p12);
    assert.deepEqual(p12.integrity, { kind: 'mac', digest: 'sha256', iterations: 2048 });
    assert.deepEqual(p12.encryption, [PBES2_SHA256_AES256, PBES2_SHA256_AES256]);
  });

  it("opens OpenSSL's legacy RC2-40/3DES file with a SHA-1 MAC", async () => {
    const p12 = await readPkcs12(file('legacy.p12'), 'secret');
    assertLeafAndCa(p12);
    assert.deepEqual(p12.integrity, { kind: 'mac', digest: 'sha1', iterations: 2048 });
    assert.deepEqual(p12.encryption, [RC2_40, TDES]);
  });

  it('opens a file with nothing encrypted (-certpbe NONE -keypbe NONE)', async () => {
    const p12 = await readPkcs12(file('clear.p12'), 'secret');
    assertLeafAndCa(p12);
    assert.deepEqual(p12.encryption, ['none', 'none']);
  });

  it('opens a file without a MAC (-nomac)', async () => {
    const p12 = await readPkcs12(file('nomac.p12'), 'secret');
    assertLeafAndCa(p12);
    assert.deepEqual(p12.integrity, { kind: 'none' });
  });

  it('opens a file with a SHA-512 MAC (the KDF with 128-byte blocks)', async () => {
    const p12 = await readPkcs12(file('sha512.p12'), 'secret');
    assertLeafAndCa(p12);
    assert.deepEqual(p12.integrity, { kind: 'mac', digest: 'sha512', iterations: 2048 });
  });

  it('opens a file whose MAC is PBMAC1 (RFC 9579), and checks it', async () => {
    const pbmac1 = withPbmac1(file('default.p12'), 'secret', 1000);
    const p12 = await readPkcs12(pbmac1, 'secret');
    assertLeafAndCa(p12);
    assert.deepEqual(p12.integrity, {
      kind: 'mac',
      digest: 'pbmac1-hmacWithSHA512',
      iterations: 1000,
    });
    await rejectsWith(
      readPkcs12(withPbmac1(file('default.p12'), 'other', 1000), 'secret'),
      'WrongPassword',
    );
  });

  const schemes: [string, string, string, string][] = [
    ['PBE-SHA1-RC4-128', 'PBE-SHA1-RC4-40', 'pbeWithSHAAnd128BitRC4', 'pbeWithSHAAnd40BitRC4'],
    [
      'PBE-SHA1-RC2-128',
      'PBE-SHA1-2DES',
      'pbeWithSHAAnd128BitRC2-CBC',
      'pbeWithSHAAnd2-KeyTripleDES-CBC',
    ],
    ['PBE-MD5-DES', 'PBE-SHA1-DES', 'pbeWithMD5AndDES-CBC', 'pbeWithSHA1AndDES-CBC'],
    ['PBE-SHA1-RC2-64', 'PBE-MD5-RC2-64', 'pbeWithSHA1AndRC2-CBC', 'pbeWithMD5AndRC2-CBC'],
    [
      'aes-128-cbc',
      'des-ede3-cbc',
      'PBES2 (PBKDF2 hmacWithSHA256, aes-128-cbc, 2048 iterations)',
      'PBES2 (PBKDF2 hmacWithSHA256, des-ede3-cbc, 2048 iterations)',
    ],
    [
      'aes-192-cbc',
      'des-cbc',
      'PBES2 (PBKDF2 hmacWithSHA256, aes-192-cbc, 2048 iterations)',
      'PBES2 (PBKDF2 hmacWithSHA256, des-cbc, 2048 iterations)',
    ],
    [
      'rc2-cbc',
      'aes-256-cbc',
      'PBES2 (PBKDF2 hmacWithSHA256, rc2-cbc, 2048 iterations)',
      PBES2_SHA256_AES256,
    ],
  ];
  for (const [certPbe, keyPbe, certLine, keyLine] of schemes) {
    it(`opens certificates under ${certPbe} and the key under ${keyPbe}`, async () => {
      const name = `${certPbe}-${keyPbe}.p12`;
      await exportLeaf(name, ` -legacy -certpbe ${certPbe} -keypbe ${keyPbe}`);
      const p12 = await readPkcs12(file(name), 'secret');
      assertLeafAndCa(p12);
      assert.deepEqual(p12.encryption, [certLine, keyLine]);
      await rejectsWith(readPkcs12(file(name), 'Secret'), 'WrongPassword');
    });
  }

  it('opens an Ed25519 key with a Unicode friendly name, and an EC key', async () => {
    const ed = await readPkcs12(file('ed25519.p12'), 'secret');
    assert.equal(ed.keys[0]!.key.asymmetricKeyType, 'ed25519');
    assert.equal(ed.keys[0]!.friendlyName, 'Zürich ☺');
    assert.equal(ed.certificates[0]!.friendlyName, 'Zürich ☺');
    assert.deepEqual(ed.pairs, [{ key: 0, certificate: 0, by: 'localKeyId' }]);
    const ec = await readPkcs12(file('ec.p12'), 'secret');
    assert.equal(ec.keys[0]!.key.asymmetricKeyType, 'ec');
    assert.equal(ec.certificates[0]!.certificate.sha256, ca.sha256);
  });

  it('refuses an EC key with explicit curve parameters, with the code the same key gets in PEM', async () => {
    await openssl('ecparam -name prime256v1 -genkey -param_enc explicit -noout -out @explicit.key');
    await openssl(
      'req -x509 -new -key @explicit.key -out @explicit.pem -subj /CN=explicit.test -days 30',
    );
    await openssl(
      'pkcs12 -export -inkey @explicit.key -in @explicit.pem -passout pass:secret -out @explicit.p12',
    );
    const [block] = parsePemBlocks(file('explicit.key'));
    let pemCode: CoreErrorCode | 'ok' = 'ok';
    try {
      await parsePrivateKeyPem(block!);
    } catch (err) {
      assert.ok(isCoreError(err), `untyped error: ${(err as Error)?.stack ?? err}`);
      pemCode = err.code;
    }
    assert.equal(pemCode, 'UnsupportedAlgorithm');
    assert.equal(await outcome(file('explicit.p12'), 'secret'), pemCode);
  });

  it('opens key-only and certificate-only files', async () => {
    const keyOnly = await readPkcs12(file('keyonly.p12'), 'secret');
    assert.equal(keyOnly.keys.length, 1);
    assert.deepEqual(spki(keyOnly.keys[0]!.key), spki(leafKey));
    assert.deepEqual([keyOnly.certificates, keyOnly.pairs], [[], []]);
    const certOnly = await readPkcs12(file('certonly.p12'), 'secret');
    assert.deepEqual(certOnly.keys, []);
    assert.deepEqual(
      certOnly.certificates.map((c) => c.certificate.sha256),
      [leaf.sha256, ca.sha256],
    );
  });

  it('reads BER: indefinite lengths and chunked octet strings, with and without a MAC', async () => {
    for (const name of ['default.p12', 'nomac.p12', 'clear.p12']) {
      const ber = toBer(file(name));
      assert.equal(ber[1], 0x80, 'the outer SEQUENCE has an indefinite length');
      assert.equal(isPkcs12(ber), true);
      assertLeafAndCa(await readPkcs12(ber, 'secret'));
    }
  });

  it('reads BER all the way down: PBE parameters, shrouded keys, bags and attributes chunked', async () => {
    for (const name of ['default.p12', 'nomac.p12', 'clear.p12', 'legacy.p12']) {
      const ber = await toBerThroughout(file(name), 'secret');
      const p12 = await readPkcs12(ber, 'secret');
      assertLeafAndCa(p12);
      if (name !== 'nomac.p12') {
        assert.deepEqual(p12.integrity, { kind: 'mac', digest: 'sha256', iterations: 2048 });
      }
    }
  });

  it('pairs by friendlyName without localKeyId, and by public key without either', async () => {
    // In a file with nothing encrypted and no MAC, renaming an attribute's OID to an
    // unknown one (same length) hides it: 1.2.840.113549.1.9.21 → .9.31, .9.20 → .9.30.
    const hide = (der: Buffer, lastArc: number, newArc: number) => {
      const oid = Buffer.from(`06092a864886f70d0109${lastArc.toString(16)}`, 'hex');
      const out = Buffer.from(der);
      for (let at = out.indexOf(oid); at >= 0; at = out.indexOf(oid, at + 1)) {
        out[at + oid.length - 1] = newArc;
      }
      return out;
    };
    const noKeyId = hide(file('plain.p12'), 0x15, 0x1f);
    const byName = await readPkcs12(noKeyId, 'secret');
    assert.equal(byName.keys[0]!.localKeyId, undefined);
    assert.deepEqual(byName.pairs, [{ key: 0, certificate: 0, by: 'friendlyName' }]);
    const byKey = await readPkcs12(hide(noKeyId, 0x14, 0x1e), 'secret');
    assert.equal(byKey.keys[0]!.friendlyName, undefined);
    assert.deepEqual(byKey.pairs, [{ key: 0, certificate: 0, by: 'publicKey' }]);
  });

  it('says WrongPassword, not a parse error, for a wrong password', async () => {
    for (const name of ['default.p12', 'legacy.p12', 'clear.p12', 'sha512.p12']) {
      await rejectsWith(readPkcs12(file(name), 'wrong'), 'WrongPassword');
    }
  });

  it('says PasswordRequired when the file needs a password and none is given', async () => {
    for (const name of ['default.p12', 'legacy.p12', 'nomac.p12']) {
      await rejectsWith(readPkcs12(file(name), undefined), 'PasswordRequired');
    }
  });

  it('without a MAC, sees a wrong password in the decryption (WrongPassword)', async () => {
    await rejectsWith(readPkcs12(file('nomac.p12'), 'wrong'), 'WrongPassword');
    await rejectsWith(readPkcs12(file('nomac.p12'), ''), 'WrongPassword');
  });

  it('tells the empty password from no password', { skip: needsCorpus(PYCA) }, async () => {
    // `-passout pass:` protects with the empty password (BMPString 00 00)...
    const empty = file('empty.p12');
    assert.equal((await readPkcs12(empty, undefined)).password, 'empty');
    assert.equal((await readPkcs12(empty, '')).password, 'empty');
    await rejectsWith(readPkcs12(empty, 'secret'), 'WrongPassword');
    // ...and pyca's no-password files with the absent one (zero bytes).
    const absent = readFileSync(join(PYCA, 'pkcs12/no-name-no-pwd.p12'));
    assert.equal((await readPkcs12(absent, undefined)).password, 'none');
  });

  it('refuses a MAC iteration count above 10,000,000 before deriving any key (UnsupportedAlgorithm)', async () => {
    const crafted = withMacIterations(file('default.p12'), 2_000_000_000);
    const budget = new WorkBudget();
    await rejectsWith(readPkcs12(crafted, 'secret', { budget }), 'UnsupportedAlgorithm');
    assert.equal(budget.spent, 0, 'no key-derivation iteration was spent');
    // The surgery itself is sound: the same count as before still opens, and is counted.
    const sound = new WorkBudget();
    const opened = await readPkcs12(withMacIterations(file('default.p12'), 2048), 'secret', {
      budget: sound,
    });
    assertLeafAndCa(opened);
    assert.ok(sound.spent >= 2048, `spent ${sound.spent}`);
  });

  it('names an unknown encryption algorithm (UnsupportedAlgorithm)', async () => {
    const aes256cbc = Buffer.from('060960864801650304012a', 'hex');
    for (const lastArc of [0x2e /* aes-256-gcm */, 0x7f /* unassigned */]) {
      const patched = Buffer.from(file('nomac.p12'));
      const at = patched.indexOf(aes256cbc);
      assert.ok(at > 0);
      patched[at + aes256cbc.length - 1] = lastArc;
      await rejectsWith(readPkcs12(patched, 'secret'), 'UnsupportedAlgorithm');
    }
  });

  it('says MalformedInput for a truncated file, wherever it is cut', async () => {
    const der = file('default.p12');
    for (let cut = 32; cut < der.length; cut += 97) {
      await rejectsWith(readPkcs12(der.subarray(0, cut), 'secret'), 'MalformedInput');
    }
  });

  it('answers damaged files with a result or a typed error, never a crash', async () => {
    for (const name of ['nomac.p12', 'clear.p12']) {
      const der = file(name);
      for (let i = 0; i < 150; i++) {
        const damaged = Buffer.from(der);
        const at = (i * 7919) % der.length;
        damaged[at] = der[at]! ^ (1 << (i % 8));
        await outcome(damaged, 'secret');
      }
    }
  });
});

// --- Java keytool --------------------------------------------------------------------------

describe('PKCS#12: keystores made by Java keytool', { skip: NO_KEYTOOL || NO_OPENSSL }, () => {
  const { dir, cleanup } = tempDir();
  const path = (name: string) => join(dir, name);
  const keytool = commandIn('keytool', dir);
  const openssl = commandIn('openssl', dir);

  before(async () => {
    await openssl(
      'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout @ca.key -out @ca.pem -subj /CN=Trusted-CA -days 30',
    );
    const ks = '-storetype PKCS12 -keystore @modern.p12 -storepass storepw';
    await keytool(
      `-genkeypair ${ks} -alias first -keyalg EC -groupname secp256r1 -dname CN=first -validity 30`,
    );
    await keytool(
      `-genkeypair ${ks} -alias second -keyalg RSA -keysize 2048 -dname CN=second -validity 30`,
    );
    await keytool(`-importcert -noprompt ${ks} -alias trusted-ca -file @ca.pem`);
    await keytool(
      '-J-Dkeystore.pkcs12.legacy -genkeypair -storetype PKCS12 -keystore @legacy.p12 -storepass storepw -alias old -keyalg RSA -keysize 2048 -dname CN=old -validity 30',
    );
  });
  after(cleanup);

  it('opens a JDK keystore with two key pairs and a trusted certificate, and pairs them', async () => {
    const p12 = await readPkcs12(readFileSync(path('modern.p12')), 'storepw');
    assert.deepEqual(p12.integrity, { kind: 'mac', digest: 'sha256', iterations: 10000 });
    const line = 'PBES2 (PBKDF2 hmacWithSHA256, aes-256-cbc, 10000 iterations)';
    assert.deepEqual(p12.encryption, [line, line, line]);
    assert.deepEqual(
      p12.keys.map((k) => [k.friendlyName, k.key.asymmetricKeyType]),
      [
        ['first', 'ec'],
        ['second', 'rsa'],
      ],
    );
    assert.equal(p12.certificates.length, 3);
    assert.equal(p12.pairs.length, 2);
    for (const { key, certificate, by } of p12.pairs) {
      assert.equal(by, 'localKeyId');
      assert.equal(p12.certificates[certificate]!.friendlyName, p12.keys[key]!.friendlyName);
      assert.deepEqual(spki(p12.keys[key]!.key), spki(p12.certificates[certificate]!.certificate));
    }
    const trusted = p12.certificates.find((c) => c.friendlyName === 'trusted-ca');
    assert.equal(trusted?.certificate.subject.rfc4514, 'CN=Trusted-CA');
  });

  it("opens keytool's legacy PKCS12 (RC2-40 certificates, 3DES key, SHA-1 MAC)", async () => {
    const p12 = await readPkcs12(readFileSync(path('legacy.p12')), 'storepw');
    assert.deepEqual(p12.integrity, { kind: 'mac', digest: 'sha1', iterations: 100000 });
    assert.deepEqual(p12.encryption, [TDES, RC2_40]);
    assert.equal(p12.keys[0]?.friendlyName, 'old');
    assert.deepEqual(p12.pairs, [{ key: 0, certificate: 0, by: 'localKeyId' }]);
    await rejectsWith(readPkcs12(readFileSync(path('legacy.p12')), 'storepwx'), 'WrongPassword');
  });
});

// --- Hostile input ----------------------------------------------------------------------

describe('PKCS#12: hostile input', () => {
  it('answers random garbage that starts with 0x30 with a typed error', async () => {
    for (let i = 0; i < 300; i++) {
      const garbage = randomBytes(1 + ((i * 37) % 400));
      garbage[0] = 0x30;
      const code = await outcome(garbage, 'x');
      assert.ok(code === 'UnsupportedFormat' || code === 'MalformedInput', code);
    }
  });

  // How long these take is measured by `npm run bench:latency` (BENCHMARKS.md), not here.
  it('answers a 1 MiB random buffer with a typed error, deriving no key', async () => {
    const big = randomBytes(1 << 20);
    big[0] = 0x30;
    const budget = new WorkBudget();
    await assert.rejects(readPkcs12(big, 'x', { budget }), (e) => isCoreError(e));
    // The same bytes behind a valid PFX header, so the parser has to look inside.
    const header = Buffer.from('3083100000020103308380000006092a864886f70d010701', 'hex');
    header.copy(big);
    await assert.rejects(readPkcs12(big, 'x', { budget }), (e) => isCoreError(e, 'MalformedInput'));
    assert.equal(budget.spent, 0, 'no key-derivation iteration was spent');
  });

  it('refuses indefinite lengths nested beyond its bound instead of overflowing the stack', async () => {
    const header = Buffer.from('3080020103308006092a864886f70d010701a080', 'hex');
    const deep = Buffer.concat([header, Buffer.alloc(400_000).fill(Buffer.from([0x30, 0x80]))]);
    // Too complex to read, as a certificate nested as deep is: the decoder's bound, not damage.
    const err = await readPkcs12(deep, 'x').then(
      () => assert.fail('a 200,000-deep nesting was read'),
      (e: unknown) => e,
    );
    assert.ok(isCoreError(err, 'InputTooLarge'), String(err));
    assert.match(err.message, /nests ASN\.1 elements more than 100 deep/);
  });

  it('is not fooled by other DER: a certificate, a PKCS#8 key, PKCS#7', {
    skip: needsCorpus(PYCA),
  }, async () => {
    const cert = parsePemBlocks(readFileSync(join(PYCA, 'x509/custom/ca/ca.pem')))[0]!.der;
    const key = createPrivateKey(readFileSync(join(PYCA, 'x509/custom/ca/ca_key.pem'))).export({
      type: 'pkcs8',
      format: 'der',
    });
    const pkcs7 = readFileSync(join(PYCA, 'pkcs7/amazon-roots.der'));
    for (const der of [cert, key, pkcs7, Buffer.alloc(0), Buffer.from([0x30])]) {
      assert.equal(isPkcs12(der), false);
      await rejectsWith(readPkcs12(der, 'x'), 'UnsupportedFormat');
    }
  });
});

// --- Writing -------------------------------------------------------------------------------

describe('PKCS#12: writePkcs12', { skip: NO_OPENSSL }, () => {
  const { dir, cleanup } = tempDir();
  const path = (name: string) => join(dir, name);
  let leaf: Certificate;
  let ca: Certificate;
  let leafKey: KeyObject;
  let caKey: KeyObject;
  const password = 'pässwörd ☺';

  before(async () => {
    const openssl = commandIn('openssl', dir);
    await openssl(
      'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout @ca.key -out @ca.pem -subj /CN=Writer-CA -days 30',
    );
    await openssl(
      'req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout @leaf.key -out @leaf.csr -subj /CN=www.example.test',
    );
    await openssl(
      'x509 -req -in @leaf.csr -CA @ca.pem -CAkey @ca.key -set_serial 7 -days 30 -out @leaf.pem',
    );
    [leaf] = pemCertificates(path('leaf.pem')) as [Certificate];
    [ca] = pemCertificates(path('ca.pem')) as [Certificate];
    leafKey = createPrivateKey(readFileSync(path('leaf.key')));
    caKey = createPrivateKey(readFileSync(path('ca.key')));
    writeFileSync(path('password.txt'), `${password}\n`);
  });
  after(cleanup);

  const write = (extra: { friendlyName?: string; iterations?: number; password?: string } = {}) =>
    writePkcs12({
      key: leafKey,
      certificates: [leaf, ca],
      password,
      friendlyName: 'www',
      ...extra,
    });

  it('writes a file OpenSSL opens: PBES2 AES-256-CBC with HMAC-SHA256, MAC SHA-256, 2048 iterations', async () => {
    writeFileSync(path('out.p12'), await write());
    const info = await tool('sh', [
      '-c',
      `openssl pkcs12 -info -noout -in "$1" -passin "file:$2" 2>&1`,
      'sh',
      path('out.p12'),
      path('password.txt'),
    ]);
    const lines = info.split('\n').filter((l) => /^(MAC|PKCS7|Shrouded|Certificate bag)/.test(l));
    assert.deepEqual(lines, [
      'MAC: sha256, Iteration 2048',
      'MAC length: 32, salt length: 16',
      'PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256',
      'Certificate bag',
      'Certificate bag',
      'PKCS7 Data',
      'Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256',
    ]);
    const pem = await commandIn('openssl', dir)(
      'pkcs12 -in @out.p12 -nodes -passin',
      `file:${path('password.txt')}`,
    );
    const blocks = parsePemBlocks(pem);
    assert.deepEqual(
      blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => parseCertificate(b.der).sha256),
      [leaf.sha256, ca.sha256],
    );
    const key = blocks.find((b) => b.label === 'PRIVATE KEY');
    assert.ok(key);
    assert.deepEqual(spki(createPrivateKey(key.text)), spki(leafKey));
    assert.match(pem, /friendlyName: www/);
  });

  it('writes a file keytool lists as a PrivateKeyEntry with its chain', {
    skip: NO_KEYTOOL,
  }, async () => {
    writeFileSync(path('java.p12'), await write({ password: 'changeit' }));
    const listing = await commandIn(
      'keytool',
      dir,
    )('-list -v -storetype PKCS12 -keystore @java.p12 -storepass changeit');
    assert.match(listing, /^Alias name: www$/m);
    assert.match(listing, /^Entry type: PrivateKeyEntry$/m);
    assert.match(listing, /^Certificate chain length: 2$/m);
    const fingerprints = [...listing.matchAll(/SHA256: ([0-9A-F:]+)/g)].map((m) => m[1]);
    assert.deepEqual(fingerprints, [leaf.sha256, ca.sha256]);
  });

  it("reads back 1,500 certificates in one bag list, past the decoder's default 10,000 elements", async () => {
    const many = [leaf, ...Array.from({ length: 1499 }, () => ca)];
    const der = await writePkcs12({ key: leafKey, certificates: many, password, iterations: 1 });
    const p12 = await readPkcs12(der, password);
    assert.equal(p12.certificates.length, 1500);
    assert.equal(p12.certificates[1499]!.certificate.sha256, ca.sha256);
  });

  it('reads back its own file: key, chain, names, pairing, protection', async () => {
    const p12 = await readPkcs12(await write({ iterations: 1000 }), password);
    assert.deepEqual(spki(p12.keys[0]!.key), spki(leafKey));
    assert.equal(p12.keys[0]!.friendlyName, 'www');
    assert.deepEqual(
      p12.certificates.map((c) => [c.certificate.sha256, c.friendlyName]),
      [
        [leaf.sha256, 'www'],
        [ca.sha256, undefined],
      ],
    );
    assert.equal(p12.keys[0]!.localKeyId, leaf.sha1.replaceAll(':', '').toLowerCase());
    assert.deepEqual(p12.pairs, [{ key: 0, certificate: 0, by: 'localKeyId' }]);
    assert.deepEqual(p12.integrity, { kind: 'mac', digest: 'sha256', iterations: 1000 });
    const line = 'PBES2 (PBKDF2 hmacWithSHA256, aes-256-cbc, 1000 iterations)';
    assert.deepEqual(p12.encryption, [line, line]);
    assert.equal(p12.password, 'given');
    await rejectsWith(readPkcs12(await write(), 'passwörd ☺'), 'WrongPassword');
  });

  it('writes fresh salts each time', async () => {
    const [a, b] = await Promise.all([write(), write()]);
    assert.notDeepEqual(a, b);
  });

  it('refuses a key that does not belong to the leaf (KeyMismatch)', async () => {
    await rejectsWith(
      writePkcs12({ key: caKey, certificates: [leaf, ca], password: 'x' }),
      'KeyMismatch',
    );
  });

  it('refuses an empty password, a bad iteration count or a public key (InvalidGenerationRequest)', async () => {
    await rejectsWith(
      writePkcs12({ key: leafKey, certificates: [leaf], password: '' }),
      'InvalidGenerationRequest',
    );
    for (const iterations of [0, 1.5, 10_000_001]) {
      await rejectsWith(
        writePkcs12({ key: leafKey, certificates: [leaf], password: 'x', iterations }),
        'InvalidGenerationRequest',
      );
    }
    await rejectsWith(
      writePkcs12({ key: createPublicKey(leafKey), certificates: [leaf], password: 'x' }),
      'InvalidGenerationRequest',
    );
  });

  it('writes a file that OpenSSL opens with -legacy too, and that Node serves over TLS', async () => {
    writeFileSync(path('both.p12'), await write());
    await commandIn('openssl', dir)(
      'pkcs12 -info -noout -legacy -in @both.p12 -passin',
      `file:${path('password.txt')}`,
    );
    const pfx = readFileSync(path('both.p12'));
    const server = createTlsServer({ pfx, passphrase: password }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const served = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.end();
        });
        socket.on('error', reject);
      });
      assert.equal(served, leaf.sha256);
    } finally {
      server.close();
    }
  });

  it('orders the bag attributes as DER sorts a SET OF, and OpenSSL and we read them', async () => {
    // The key bag is stored in the clear, so its attributes can be found in the bytes.
    const friendlyNameOid = Buffer.from('06092a864886f70d010914', 'hex');
    const localKeyIdOid = Buffer.from('06092a864886f70d010915', 'hex');
    const firstAttribute = (der: Buffer) =>
      der.indexOf(friendlyNameOid) < der.indexOf(localKeyIdOid) ? 'friendlyName' : 'localKeyId';
    // A SEQUENCE of 21 bytes (short name) sorts before one of 35 (localKeyId), and after one of 99.
    assert.equal(firstAttribute(await write({ friendlyName: 'www' })), 'friendlyName');
    const long = 'a friendly name longer than the localKeyId';
    writeFileSync(path('long.p12'), await write({ friendlyName: long }));
    assert.equal(firstAttribute(readFileSync(path('long.p12'))), 'localKeyId');
    const pem = await commandIn('openssl', dir)(
      'pkcs12 -in @long.p12 -nodes -passin',
      `file:${path('password.txt')}`,
    );
    assert.equal([...pem.matchAll(new RegExp(`friendlyName: ${long}$`, 'gm'))].length, 2);
    const p12 = await readPkcs12(readFileSync(path('long.p12')), password);
    assert.equal(p12.keys[0]!.friendlyName, long);
    assert.equal(p12.certificates[0]!.friendlyName, long);
    assert.deepEqual(p12.pairs, [{ key: 0, certificate: 0, by: 'localKeyId' }]);
  });
});

describe('PKCS#12: key derivation on the main thread', () => {
  // The MAC key and the legacy PBE keys come from an iterated hash that runs on the event
  // loop (PBKDF2 runs in the thread pool). What keeps a server responsive while it opens
  // a file with a large count is that the derivation yields: other callbacks get to run
  // between slices of rounds. Counted, not timed: a derivation that never yields lets
  // the ticker run zero times, however fast or loaded the machine.
  for (const hash of ['sha1', 'sha256']) {
    it(`lets other callbacks run while iterating ${hash} 300,000 times`, async () => {
      let ticks = 0;
      let deriving = true;
      const tick = () => {
        if (!deriving) return;
        ticks++;
        setImmediate(tick);
      };
      setImmediate(tick);
      try {
        const key = await pkcs12Kdf(
          hash,
          pbePassword('secret').bmp,
          Buffer.alloc(8, 1),
          KDF_ID.mac,
          300_000,
          20,
        );
        assert.equal(key.length, 20);
      } finally {
        deriving = false;
      }
      // At least once every 30,000 rounds.
      assert.ok(ticks >= 10, `other callbacks ran only ${ticks} times during 300,000 rounds`);
    });
  }
});
