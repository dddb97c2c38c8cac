import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeCertificate } from '../../src/core/describe.js';
import { isCoreError } from '../../src/core/errors.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { MAX_INPUT_BYTES, readMaterial } from '../../src/core/read.js';
import { needs, needsCorpus, PYCA, tempDir, tool } from '../support/tools.js';

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

describe('what is not an importable certificate or key, and what is too large to read', {
  skip: needs('openssl'),
}, () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => tool('openssl', args);
  after(cleanup);

  before(async () => {
    await openssl(
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', at('ca.key'), '-out', at('ca.pem'), '-subj', '/CN=CRL Test CA', '-days', '30'],
    );
    // openssl ca -gencrl with an empty index: an empty CRL of the CA, in PEM, then in DER.
    writeFileSync(at('index.txt'), '');
    writeFileSync(at('crlnumber'), '01\n');
    writeFileSync(
      at('ca.cnf'),
      `[ca]\ndefault_ca = crl_test_ca\n[crl_test_ca]\ndatabase = ${at('index.txt')}\ncrlnumber = ${at('crlnumber')}\ndefault_md = sha256\ndefault_crl_days = 30\n`,
    );
    await openssl(
      ...[
        'ca',
        '-gencrl',
        '-config',
        at('ca.cnf'),
        '-keyfile',
        at('ca.key'),
        '-cert',
        at('ca.pem'),
      ],
      ...['-out', at('crl.pem')],
    );
    await openssl('crl', '-in', at('crl.pem'), '-outform', 'DER', '-out', at('crl.der'));
  });

  it('says a CRL is a CRL, the same in PEM and in DER (a PEM CRL was silently ignored)', async () => {
    const messages: string[] = [];
    for (const file of ['crl.pem', 'crl.der']) {
      await assert.rejects(readMaterial(readFileSync(at(file))), (e) => {
        assert.ok(isCoreError(e, 'UnsupportedFormat'), `${file}: ${e}`);
        messages.push(e.message.replace(/^.*? is a certificate revocation list/, ''));
        assert.match(e.message, /certificate revocation list \(CRL\).*does not import CRLs/);
        return true;
      });
    }
    assert.equal(messages[0], messages[1], 'the same sentence for both forms');
  });

  it('reads the certificates of a bundle that also holds a CRL, and reports the CRL as a problem', async () => {
    const bundle = Buffer.concat([readFileSync(at('ca.pem')), readFileSync(at('crl.pem'))]);
    const m = await readMaterial(bundle);
    assert.equal(m.certificates.length, 1);
    assert.deepEqual(m.ignored, []);
    assert.deepEqual(
      m.problems.map((p) => [p.origin, p.code]),
      [['PEM block 2 (X509 CRL)', 'UnsupportedFormat']],
    );
  });

  /** A self-signed certificate whose SAN extension lists `count` DNS names. */
  async function certificateWithNames(count: number): Promise<Buffer> {
    const names = Array.from(
      { length: count },
      (_, i) => `DNS.${i + 1} = host${i + 1}.example.com`,
    );
    const cnf = at(`sans-${count}.cnf`);
    writeFileSync(
      cnf,
      `[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = many.example.com\n[ext]\nsubjectAltName = @alt\n[alt]\n${names.join('\n')}\n`,
    );
    const out = at(`sans-${count}.pem`);
    await openssl(
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', at(`sans-${count}.key`), '-out', out, '-days', '30', '-config', cnf],
    );
    return readFileSync(out);
  }

  it('says a certificate with 10,000 names is too large to read, not damaged', async () => {
    const pem = await certificateWithNames(10_000);
    for (const bytes of [pem, parsePemBlocks(pem)[0]!.der]) {
      await assert.rejects(readMaterial(bytes), (e) => {
        assert.ok(isCoreError(e, 'InputTooLarge'), String(e));
        assert.match(e.message, /too large or complex/);
        assert.doesNotMatch(e.message, /damaged/);
        return true;
      });
    }
  });

  it('reads a certificate with 1,000 names, all of them', async () => {
    const m = await readMaterial(await certificateWithNames(1000));
    const d = describeCertificate(m.certificates[0]!.certificate);
    assert.equal(d.subjectAltNames.dns.length, 1000);
  });
});
