import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readChildren, readTlv, TAG, type Tlv, tlvBytes, tlvContent } from '../../src/core/der.js';
import { type CoreErrorCode, isCoreError } from '../../src/core/errors.js';
import { parsePrivateKeyDer } from '../../src/core/keys.js';
import { MAX_ITERATIONS, WorkBudget } from '../../src/core/pbe.js';
import { toPem } from '../../src/core/pem.js';
import { readPkcs12 } from '../../src/core/pkcs12.js';
import { readMaterial } from '../../src/core/read.js';
import { needs, tempDir, tool } from '../support/tools.js';

// Key derivation is counted in the budget's `spent` iterations, never timed: how long
// these inputs take is for `bench/`, what they cost is asserted here.

const PASSWORD = 's3cret';

/** Asserts that `promise` rejects with a CoreError of `code`; returns its message. */
async function rejection(promise: Promise<unknown>, code: CoreErrorCode): Promise<string> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(isCoreError(err), `expected a CoreError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  return err.message;
}

// --- DER surgery ------------------------------------------------------------------------

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function encode(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

function derInteger(value: number): Buffer {
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return encode(TAG.INTEGER, Buffer.from(bytes));
}

/**
 * The DER re-encoded with primitive elements replaced where `replace` returns bytes
 * (lengths of the enclosing elements follow). `replace` sees elements in document order.
 */
function rewrite(der: Buffer, replace: (tlv: Tlv, content: Buffer) => Buffer | undefined): Buffer {
  const walk = (tlv: Tlv): Buffer => {
    if (tlv.tag & 0x20) {
      return encode(tlv.tag, Buffer.concat(readChildren(der, tlv).map(walk)));
    }
    return replace(tlv, tlvContent(der, tlv)) ?? tlvBytes(der, tlv);
  };
  return walk(readTlv(der));
}

/**
 * An EncryptedPrivateKeyInfo whose first INTEGER (the iteration count of PBKDF2, PBES1 and
 * PKCS#12 PBE; scrypt's N) is `value`, and optionally its first OID (the scheme) replaced.
 */
function withCount(der: Buffer, value: number, schemeOid?: Buffer): Buffer {
  let integerDone = false;
  let oidDone = false;
  return rewrite(der, (tlv) => {
    if (tlv.tag === TAG.INTEGER && !integerDone) {
      integerDone = true;
      return derInteger(value);
    }
    if (tlv.tag === TAG.OID && !oidDone) {
      oidDone = true;
      return schemeOid && encode(TAG.OID, schemeOid);
    }
    return undefined;
  });
}

/** pbeWithMD5AndDES-CBC (1.2.840.113549.1.5.3), a PBES1 scheme with PKCS#12 PBE's parameters. */
const PBE_MD5_DES = Buffer.from('2a864886f70d010503', 'hex');

// ----------------------------------------------------------------------------------------

describe('one key-derivation budget per input', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  const at = (name: string) => join(dir, name);
  const der = (name: string) => readFileSync(at(name));
  const openssl = (...args: string[]) => tool('openssl', args);

  before(async () => {
    ({ dir, cleanup } = tempDir());
    await openssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      at('clear.pem'),
    );
    const topk8 = [
      'pkcs8',
      '-topk8',
      '-in',
      at('clear.pem'),
      '-passout',
      `pass:${PASSWORD}`,
      '-outform',
      'DER',
    ];
    // PBKDF2-HMAC-SHA256 (one 32-byte block) and AES-256-CBC, 2048 iterations.
    await openssl(...topk8, '-v2', 'aes-256-cbc', '-iter', '2048', '-out', at('pbes2.der'));
    await openssl(...topk8, '-v1', 'PBE-SHA1-3DES', '-iter', '2048', '-out', at('pbe-3des.der'));
    await openssl(
      ...topk8,
      '-scrypt',
      '-scrypt_N',
      '16384',
      '-scrypt_r',
      '8',
      '-scrypt_p',
      '1',
      '-out',
      at('scrypt.der'),
    );
    for (let i = 0; i < 10; i++) {
      await openssl(...topk8, '-v2', 'aes-256-cbc', '-iter', '1000', '-out', at(`small-${i}.der`));
    }
    await openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      at('clear.pem'),
      '-subj',
      '/CN=budget',
      '-days',
      '1',
      '-out',
      at('cert.pem'),
    );
    await openssl(
      'pkcs12',
      '-export',
      '-inkey',
      at('clear.pem'),
      '-in',
      at('cert.pem'),
      '-iter',
      '1000',
      '-passout',
      `pass:${PASSWORD}`,
      '-out',
      at('one.p12'),
    );
  });
  after(() => cleanup());

  it('counts exactly the work an unmodified key costs, so the surgery below is sound', async () => {
    for (const [name, cost] of [
      ['pbes2.der', 2048], // one PBKDF2-SHA256 block
      ['pbe-3des.der', 3 * 2048], // PKCS#12 KDF: two key blocks and one IV block of SHA-1
      ['scrypt.der', 4 * 16384 * 8], // 4·N·r·p
    ] as const) {
      const budget = new WorkBudget();
      await parsePrivateKeyDer(
        withCount(der(name), name === 'scrypt.der' ? 16384 : 2048),
        PASSWORD,
        { budget },
      );
      assert.equal(budget.spent, cost, name);
    }
  });

  it('refuses a DER key asking 2,000,000,000 PBKDF2 iterations before deriving, naming count and cap', async () => {
    const crafted = withCount(der('pbes2.der'), 2_000_000_000);
    const budget = new WorkBudget();
    const message = await rejection(
      readMaterial(crafted, { password: PASSWORD, budget }),
      'UnsupportedAlgorithm',
    );
    assert.match(
      message,
      /2,000,000,000 PBKDF2 iterations; certkeeper allows at most 10,000,000\./,
    );
    assert.equal(budget.spent, 0);
    // Before a password is even asked for.
    await rejection(parsePrivateKeyDer(crafted, undefined, { budget }), 'UnsupportedAlgorithm');
    assert.equal(budget.spent, 0);
  });

  it('refuses a PEM key asking 50,000,000 PBKDF2 iterations before deriving', async () => {
    const pem = toPem('ENCRYPTED PRIVATE KEY', withCount(der('pbes2.der'), 50_000_000));
    const budget = new WorkBudget();
    const message = await rejection(
      readMaterial(Buffer.from(pem), { password: PASSWORD, budget }),
      'UnsupportedAlgorithm',
    );
    assert.match(message, /50,000,000 PBKDF2 iterations/);
    assert.equal(budget.spent, 0);
  });

  it('caps PKCS#12 PBE and PBES1 counts the same way, one past the cap refused', async () => {
    const budget = new WorkBudget();
    const pkcs12Pbe = withCount(der('pbe-3des.der'), MAX_ITERATIONS + 1);
    assert.match(
      await rejection(
        readMaterial(pkcs12Pbe, { password: PASSWORD, budget }),
        'UnsupportedAlgorithm',
      ),
      /10,000,001 PKCS#12 SHA-1 iterations/,
    );
    const pbes1 = withCount(der('pbe-3des.der'), 2_000_000_000, PBE_MD5_DES);
    assert.match(
      await rejection(readMaterial(pbes1, { password: PASSWORD, budget }), 'UnsupportedAlgorithm'),
      /2,000,000,000 PBKDF1 iterations/,
    );
    assert.equal(budget.spent, 0);
  });

  it('refuses scrypt parameters that cost more than the cap before deriving', async () => {
    const budget = new WorkBudget();
    const crafted = withCount(der('scrypt.der'), 1 << 22); // N = 2^22, r = 8, p = 1
    assert.match(
      await rejection(
        readMaterial(crafted, { password: PASSWORD, budget }),
        'UnsupportedAlgorithm',
      ),
      /scrypt N=4194304 r=8 p=1, 134,217,728 units of work; certkeeper allows at most 10,000,000\./,
    );
    assert.equal(budget.spent, 0);
  });

  it('spends one budget over all the PEM blocks of an input, then refuses the rest without work', async () => {
    const pem = Array.from({ length: 10 }, (_, i) =>
      toPem('ENCRYPTED PRIVATE KEY', der(`small-${i}.der`)),
    ).join('');
    const budget = new WorkBudget(4 * 1000);
    const material = await readMaterial(Buffer.from(pem), { password: PASSWORD, budget });
    assert.equal(material.keys.length, 4);
    assert.deepEqual(
      material.problems.map((p) => [p.origin, p.code]),
      Array.from({ length: 6 }, (_, i) => [
        `PEM block ${i + 5} (ENCRYPTED PRIVATE KEY)`,
        'UnsupportedAlgorithm',
      ]),
    );
    assert.equal(budget.spent, 4000);
  });

  it('refuses ten 10,000,000-iteration keys once the default budget cannot pay for one, deriving none', async () => {
    const key = toPem('ENCRYPTED PRIVATE KEY', withCount(der('pbes2.der'), MAX_ITERATIONS));
    const budget = new WorkBudget();
    budget.spend(budget.limit - (MAX_ITERATIONS - 1));
    const spent = budget.spent;
    await rejection(
      readMaterial(Buffer.from(key.repeat(10)), { password: PASSWORD, budget }),
      'UnsupportedAlgorithm',
    );
    assert.equal(budget.spent, spent);
  });

  it('charges a PKCS#12 file and a PKCS#8 key of one input to the same budget', async () => {
    const p12 = der('one.p12');
    const alone = new WorkBudget();
    await readPkcs12(p12, PASSWORD, { budget: alone });
    const keyAlone = new WorkBudget();
    await parsePrivateKeyDer(der('small-0.der'), PASSWORD, { budget: keyAlone });
    assert.ok(alone.spent > 0 && keyAlone.spent === 1000, `${alone.spent}, ${keyAlone.spent}`);

    const input = Buffer.from(
      toPem('PKCS12', p12) + toPem('ENCRYPTED PRIVATE KEY', der('small-0.der')),
    );
    const both = new WorkBudget();
    const material = await readMaterial(input, { password: PASSWORD, budget: both });
    assert.equal(material.keys.length, 2);
    assert.equal(both.spent, alone.spent + keyAlone.spent);

    const short = new WorkBudget(alone.spent + keyAlone.spent - 1);
    const partial = await readMaterial(input, { password: PASSWORD, budget: short });
    assert.deepEqual(
      partial.problems.map((p) => p.code),
      ['UnsupportedAlgorithm'],
    );
    assert.equal(short.spent, alone.spent);
  });
});
