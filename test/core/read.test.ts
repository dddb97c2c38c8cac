import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { describeCertificate } from '../../src/core/describe.js';
import { isCoreError } from '../../src/core/errors.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { MAX_INPUT_BYTES, readMaterial } from '../../src/core/read.js';
import { needsCorpus, PYCA } from '../support/tools.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Reads a file and describes everything in it; a typed error is an acceptable answer. */
async function understandOrReject(bytes: Uint8Array, password?: string) {
  try {
    const material = await readMaterial(bytes, { password });
    for (const { certificate } of material.certificates) describeCertificate(certificate);
    return { ok: true as const, material };
  } catch (err) {
    assert.ok(isCoreError(err), `untyped error: ${(err as Error)?.stack ?? err}`);
    return { ok: false as const, code: err.code };
  }
}

describe('reading the pyca certificate corpus, one test per file', {
  skip: needsCorpus(join(PYCA, 'x509')),
}, () => {
  const x509 = join(PYCA, 'x509');
  const files = filesUnder(x509).filter(
    (f) => !f.includes('PKITS_data') && !f.endsWith('.txt') && !f.endsWith('.md'),
  );
  // The files that must be read as certificates: everything a strict parser (pyca) reads.
  const mustReject = new Set([
    'cryptography-scts-tbs-precert.der', // a TBSCertificate, not a certificate
  ]);
  for (const file of files) {
    const name = relative(x509, file);
    it(`${name} is understood or rejected with a typed error`, async () => {
      const result = await understandOrReject(readFileSync(file));
      if (name.startsWith('ocsp/')) {
        assert.equal(result.ok, false, 'an OCSP message is not a certificate');
        return;
      }
      if (mustReject.has(name)) assert.equal(result.ok, false);
      if (name.startsWith('requests/') || !result.ok) return;
      if (/crl/.test(name)) return;
      const m = result.material;
      assert.ok(m.certificates.length + m.keys.length > 0, 'nothing found');
    });
  }

  it('reads every NIST PKITS certificate, and answers every other PKITS file with a typed error or a value', async () => {
    const pkits = join(x509, 'PKITS_data');
    let certificates = 0;
    for (const file of filesUnder(pkits)) {
      if (file.includes('/pkcs12/')) continue; // opened with their password in pkcs12.test.ts
      const result = await understandOrReject(readFileSync(file));
      if (file.endsWith('.crt')) {
        assert.ok(result.ok, `${relative(pkits, file)}: ${result.ok ? '' : result.code}`);
        certificates += result.material.certificates.length;
      }
    }
    assert.equal(certificates, 405);
  });

  it('finds the one certificate among free text and dummy key blocks', async () => {
    const m = await readMaterial(readFileSync(join(x509, 'cryptography.io.with_garbage.pem')));
    assert.equal(m.certificates.length, 1);
    assert.equal(m.keys.length, 0);
    assert.ok(m.problems.every((p) => p.origin.includes('PRIVATE KEY')));
  });

  it('describes a real site certificate', async () => {
    const m = await readMaterial(readFileSync(join(x509, 'cryptography.io.pem')));
    const d = describeCertificate(m.certificates[0]!.certificate);
    assert.equal(m.format, 'pem');
    assert.ok(d.subjectAltNames.dns.includes('cryptography.io'));
    assert.equal(d.publicKey.type, 'rsa');
    assert.match(d.fingerprints.sha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.equal(d.selfSigned, false);
    assert.equal(d.basicConstraints?.ca, false);
  });

  it('reads DER certificates and says a DER CRL is a CRL', async () => {
    const der = await readMaterial(readFileSync(join(x509, 'custom/cp_invalid2.der'))).catch(
      (e) => e,
    );
    assert.ok(isCoreError(der) || der.format === 'der-certificate');
    const crl = await understandOrReject(
      readFileSync(join(x509, 'custom/crl_empty_no_sequence.der')),
    );
    assert.equal(crl.ok, false);
  });
});

describe('reading the pyca PKCS#7, key and CSR corpora through readMaterial', {
  skip: needsCorpus(PYCA),
}, () => {
  it('reads PKCS#7 bundles in DER, BER and PEM', async () => {
    for (const [file, n, format] of [
      ['amazon-roots.der', 2, 'der-pkcs7'],
      ['amazon-roots.p7b', 2, 'der-pkcs7'],
      ['isrg.pem', 1, 'pem'],
    ] as const) {
      const m = await readMaterial(readFileSync(join(PYCA, 'pkcs7', file)));
      assert.equal(m.certificates.length, n, file);
      assert.equal(m.format, format, file);
    }
  });

  it('says enveloped PKCS#7 is not a certificate bundle, in PEM and in DER', async () => {
    const pem = readFileSync(join(PYCA, 'pkcs7/enveloped.pem'));
    const r = await understandOrReject(pem);
    assert.equal(r.ok, false);
    const der = parsePemBlocks(pem)[0]!.der;
    await assert.rejects(
      readMaterial(der),
      (e) => isCoreError(e, 'UnsupportedFormat') && /enveloped/.test(e.message),
    );
  });

  it('reads an encrypted DER PKCS#8 key with its password and asks for it without', async () => {
    const bytes = readFileSync(join(PYCA, 'asymmetric/DER_Serialization/enc2-rsa-pkcs8.der'));
    const m = await readMaterial(bytes, { password: 'baz' });
    assert.equal(m.format, 'der-private-key');
    assert.equal(m.keys[0]!.encrypted, true);
    await assert.rejects(readMaterial(bytes), (e) => isCoreError(e, 'PasswordRequired'));
    await assert.rejects(readMaterial(bytes, { password: 'nope' }), (e) =>
      isCoreError(e, 'WrongPassword'),
    );
  });

  it('reads DER CSRs', async () => {
    const m = await readMaterial(readFileSync(join(PYCA, 'x509/requests/ec_sha256.der')));
    assert.equal(m.format, 'der-csr');
    assert.equal(m.csrs.length, 1);
  });

  it('reads a PKCS#12 file by its bytes', async () => {
    const m = await readMaterial(readFileSync(join(PYCA, 'pkcs12/name-all-pwd.p12')), {
      password: 'password',
    });
    assert.equal(m.format, 'der-pkcs12');
    assert.equal(m.keys.length, 1);
    assert.equal(m.certificates.length, 3);
    assert.deepEqual(m.pkcs12?.friendlyNames.certificates.sort(), ['name', 'name2', 'name3']);
  });
});

describe('hostile input', () => {
  it('refuses more than 1 MiB before reading it', async () => {
    await assert.rejects(readMaterial(Buffer.alloc(MAX_INPUT_BYTES + 1, 0x30)), (e) =>
      isCoreError(e, 'InputTooLarge'),
    );
  });

  it('answers 1 MiB of random bytes with a typed error', async () => {
    const bytes = randomBytes(MAX_INPUT_BYTES);
    for (const first of [0x30, 0x2d, 0x00]) {
      bytes[0] = first;
      await assert.rejects(readMaterial(bytes), (e) => isCoreError(e));
    }
  });

  it('answers a PEM-looking megabyte with a typed error', async () => {
    const body = 'A'.repeat(64).concat('\n').repeat(15000);
    const text = `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`;
    await assert.rejects(readMaterial(Buffer.from(text)), (e) => isCoreError(e));
  });

  it('answers every byte-flipped and truncated real file with a value or a typed error', {
    skip: needsCorpus(PYCA),
  }, async () => {
    const samples = [
      'x509/cryptography.io.chain.pem',
      'x509/custom/ca/ca.pem',
      'pkcs7/amazon-roots.der',
      'pkcs12/cert-key-aes256cbc.p12',
      'pkcs12/cert-rc2-key-3des.p12',
      'asymmetric/DER_Serialization/enc-rsa-pkcs8.der',
      'x509/requests/rsa_sha256.der',
    ].map((f) => readFileSync(join(PYCA, f)));
    let seed = 1;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (const sample of samples) {
      for (let i = 0; i < 60; i++) {
        const copy = Buffer.from(sample);
        const mutated = i % 3 === 0 ? copy.subarray(0, rand() % copy.length) : copy;
        for (let j = 0; j < 1 + (i % 4); j++) mutated[rand() % mutated.length] = rand() & 0xff;
        await understandOrReject(mutated, 'cryptography');
      }
    }
  });
});
