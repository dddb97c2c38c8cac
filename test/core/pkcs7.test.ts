import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Certificate,
  parseCertificate,
  sha256Fingerprint,
} from '../../src/core/certificate.js';
import { type CoreErrorCode, isCoreError } from '../../src/core/errors.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { isPkcs7, readPkcs7Certificates } from '../../src/core/pkcs7.js';
import { needs, needsCorpus, PYCA, tempDir, tool } from '../support/tools.js';

const DIR = join(PYCA, 'pkcs7');

/** A DER element with a definite length. */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

const hex = (text: string) => Buffer.from(text, 'hex');

function throwsWith(fn: () => unknown, code: CoreErrorCode): void {
  assert.throws(fn, (err) => {
    assert.ok(isCoreError(err), `expected a CoreError, got ${(err as Error)?.stack ?? err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const subjects = (certs: Certificate[]) => certs.map((c) => c.subject.rfc4514);
const fingerprints = (certs: Certificate[]) => certs.map((c) => c.sha256);

describe('PKCS#7: the pyca vectors', { skip: needsCorpus(DIR) }, () => {
  it('reads the two Amazon roots of a DER certs-only SignedData, in file order', () => {
    const der = readFileSync(join(DIR, 'amazon-roots.der'));
    assert.equal(isPkcs7(der), true);
    assert.deepEqual(subjects(readPkcs7Certificates(der)), [
      'CN=Amazon Root CA 3,O=Amazon,C=US',
      'CN=Amazon Root CA 2,O=Amazon,C=US',
    ]);
  });

  it('reads the same certificates from the BER (indefinite-length) .p7b', () => {
    const ber = readFileSync(join(DIR, 'amazon-roots.p7b'));
    assert.equal(ber[1], 0x80, 'the fixture really is indefinite-length BER');
    assert.equal(isPkcs7(ber), true);
    assert.deepEqual(
      fingerprints(readPkcs7Certificates(ber)),
      fingerprints(readPkcs7Certificates(readFileSync(join(DIR, 'amazon-roots.der')))),
    );
  });

  it('reads the ISRG root from a PEM PKCS7 block', () => {
    const [block] = parsePemBlocks(readFileSync(join(DIR, 'isrg.pem')));
    assert.equal(block?.label, 'PKCS7');
    assert.equal(isPkcs7(block.der), true);
    assert.deepEqual(subjects(readPkcs7Certificates(block.der)), [
      'CN=ISRG Root X1,O=Internet Security Research Group,C=US',
    ]);
  });

  it('refuses enveloped data: it is not a certificate bundle (UnsupportedFormat)', () => {
    const [block] = parsePemBlocks(readFileSync(join(DIR, 'enveloped.pem')));
    assert.ok(block);
    assert.equal(isPkcs7(block.der), false);
    throwsWith(() => readPkcs7Certificates(block.der), 'UnsupportedFormat');
  });
});

describe('PKCS#7: hostile and foreign input', { skip: needsCorpus(DIR) }, () => {
  const der = readFileSync(join(DIR, 'amazon-roots.der'));

  it('says MalformedInput for a truncated bundle, wherever it is cut', () => {
    for (let cut = 24; cut < der.length; cut += 61) {
      throwsWith(() => readPkcs7Certificates(der.subarray(0, cut)), 'MalformedInput');
    }
  });

  it('answers damaged bundles with certificates or a typed error, never a crash', () => {
    for (let i = 0; i < 400; i++) {
      const damaged = Buffer.from(der);
      const at = (i * 7919) % der.length;
      damaged[at] = der[at]! ^ (1 << (i % 8));
      try {
        readPkcs7Certificates(damaged);
      } catch (err) {
        assert.ok(isCoreError(err), `untyped error: ${(err as Error)?.stack ?? err}`);
      }
    }
  });

  // How long this takes is measured by `npm run bench:latency` (BENCHMARKS.md), not here.
  it('answers random garbage and 1 MiB of noise with a typed error', () => {
    for (let i = 0; i < 300; i++) {
      const garbage = randomBytes(1 + ((i * 37) % 400));
      garbage[0] = 0x30;
      assert.equal(isPkcs7(garbage), false);
      assert.throws(
        () => readPkcs7Certificates(garbage),
        (e) => isCoreError(e),
      );
    }
    const big = randomBytes(1 << 20);
    big[0] = 0x30;
    assert.throws(
      () => readPkcs7Certificates(big),
      (e) => isCoreError(e),
    );
  });

  it('answers a megabyte of nested indefinite lengths with MalformedInput', () => {
    const head = Buffer.from('3080060' + '92a864886f70d010702a080', 'hex');
    const deep = Buffer.concat([head, Buffer.alloc(1 << 20, Buffer.from('3080', 'hex'))]);
    assert.equal(isPkcs7(deep), false);
    throwsWith(() => readPkcs7Certificates(deep), 'MalformedInput');
  });

  it('keeps the exact bytes of a certificate that is not DER, so its fingerprint is its own', () => {
    const [first, second] = readPkcs7Certificates(der);
    // The same certificate with a length written in more bytes than DER allows.
    const body = first!.der.subarray(4);
    assert.equal(first!.der[1], 0x82, 'the fixture has a two-byte length');
    const loose = Buffer.concat([
      Buffer.from([0x30, 0x83, 0, first!.der[2]!, first!.der[3]!]),
      body,
    ]);
    const bundle = tlv(
      0x30,
      hex('06092a864886f70d010702'),
      tlv(
        0xa0,
        tlv(
          0x30,
          Buffer.from('020101', 'hex'),
          tlv(0x31),
          tlv(0x30, hex('06092a864886f70d010701')),
          tlv(0xa0, loose, second!.der),
          tlv(0x31),
        ),
      ),
    );
    const read = readPkcs7Certificates(bundle);
    assert.deepEqual(
      read.map((c) => c.der),
      [loose, second!.der],
    );
    assert.equal(read[0]!.sha256, sha256Fingerprint(loose));
    assert.deepEqual(read[0]!.tbsDer, first!.tbsDer);
  });

  it('is not fooled by a certificate or a PKCS#12 file', () => {
    const cert = parsePemBlocks(readFileSync(join(PYCA, 'x509/custom/ca/ca.pem')))[0]!.der;
    const pfx = readFileSync(join(PYCA, 'pkcs12/cert-key-aes256cbc.p12'));
    for (const other of [cert, pfx]) {
      assert.equal(isPkcs7(other), false);
      throwsWith(() => readPkcs7Certificates(other), 'UnsupportedFormat');
    }
  });
});

describe('PKCS#7: bundles made by OpenSSL', { skip: needs('openssl') }, () => {
  const { dir, cleanup } = tempDir();
  const path = (name: string) => join(dir, name);
  let chain: Certificate[];

  before(async () => {
    const openssl = (line: string) =>
      tool(
        'openssl',
        line.split(' ').map((w) => (w.startsWith('@') ? path(w.slice(1)) : w)),
      );
    const ec = '-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';
    await openssl(`req -x509 ${ec} -keyout @ca.key -out @ca.pem -subj /CN=Bundle-CA -days 30`);
    await openssl(`req ${ec} -keyout @leaf.key -out @leaf.csr -subj /CN=bundle.test`);
    await openssl(
      'x509 -req -in @leaf.csr -CA @ca.pem -CAkey @ca.key -set_serial 3 -days 30 -out @leaf.pem',
    );
    writeFileSync(
      path('chain.pem'),
      Buffer.concat([readFileSync(path('leaf.pem')), readFileSync(path('ca.pem'))]),
    );
    chain = parsePemBlocks(readFileSync(path('chain.pem'))).map((b) => parseCertificate(b.der));
    await openssl('crl2pkcs7 -nocrl -certfile @chain.pem -out @chain.p7b');
    await openssl('crl2pkcs7 -nocrl -certfile @chain.pem -outform DER -out @chain.p7b.der');
    writeFileSync(path('message.txt'), 'hello\n');
    await openssl(
      'cms -sign -in @message.txt -signer @leaf.pem -inkey @leaf.key -certfile @ca.pem -outform DER -nodetach -out @signed.der',
    );
  });
  after(cleanup);

  it('reads `openssl crl2pkcs7 -nocrl` output in PEM, in chain order', () => {
    const [block] = parsePemBlocks(readFileSync(path('chain.p7b')));
    assert.equal(block?.label, 'PKCS7');
    assert.equal(isPkcs7(block.der), true);
    assert.deepEqual(fingerprints(readPkcs7Certificates(block.der)), fingerprints(chain));
  });

  it('reads `openssl crl2pkcs7 -nocrl -outform DER` output', () => {
    const der = readFileSync(path('chain.p7b.der'));
    assert.equal(isPkcs7(der), true);
    assert.deepEqual(fingerprints(readPkcs7Certificates(der)), fingerprints(chain));
  });

  it('returns the certificates carried by a signed message', () => {
    const der = readFileSync(path('signed.der'));
    assert.equal(isPkcs7(der), true);
    assert.deepEqual(
      new Set(fingerprints(readPkcs7Certificates(der))),
      new Set(fingerprints(chain)),
    );
  });
});
