import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatFingerprint, parseCertificate } from '../../src/core/certificate.js';
import { isCoreError } from '../../src/core/errors.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { needsCorpus, PYCA } from '../support/tools.js';

const CA = join(PYCA, 'x509/custom/ca/ca.pem');

describe('parseCertificate', { skip: needsCorpus(CA) }, () => {
  const pem = readFileSync(CA, 'utf8');
  const der = parsePemBlocks(pem)[0]!.der;
  const node = new X509Certificate(pem);

  it('reads what Node reads: fingerprints, serial, names, validity', () => {
    const cert = parseCertificate(der);
    assert.equal(cert.sha256, node.fingerprint256);
    assert.equal(cert.sha1, node.fingerprint);
    assert.equal(cert.sha256, formatFingerprint(createHash('sha256').update(der).digest()));
    assert.equal(cert.serialHex.replace(/^0+/, ''), node.serialNumber.replace(/^0+/, ''));
    assert.equal(cert.notAfter.getTime(), new Date(node.validTo).getTime());
    assert.equal(cert.notBefore.getTime(), new Date(node.validFrom).getTime());
    assert.deepEqual(
      cert.subject.attributes.map((a) => `${a.type}=${a.value}`).sort(),
      node.subject.split('\n').sort(),
    );
    assert.ok(cert.subject.der.length > 0 && der.includes(cert.subject.der));
    assert.ok(der.includes(cert.spkiDer) && der.includes(cert.tbsDer));
  });

  it('computes each derived field once and keeps it', () => {
    const cert = parseCertificate(der);
    assert.equal(cert.subject, cert.subject);
    assert.equal(cert.issuer, cert.issuer);
    assert.equal(cert.extensions, cert.extensions);
    assert.equal(cert.notAfter, cert.notAfter);
    assert.equal(cert.signature, cert.signature);
  });

  it('keeps its values through a spread copy and JSON', () => {
    const cert = parseCertificate(der);
    const copy = { ...cert };
    assert.equal(copy.sha256, node.fingerprint256);
    assert.equal(copy.subject.rfc4514, cert.subject.rfc4514);
    assert.equal(JSON.parse(JSON.stringify({ sha256: cert.sha256 })).sha256, cert.sha256);
  });

  it('finds damage at parse time: a certificate it returns has every field readable', () => {
    for (let at = 0; at < der.length; at += 3) {
      const damaged = Buffer.from(der);
      damaged[at] = der[at]! ^ (1 << (at % 8));
      let cert: ReturnType<typeof parseCertificate>;
      try {
        cert = parseCertificate(damaged);
      } catch (err) {
        assert.ok(isCoreError(err), `untyped error at byte ${at}: ${err}`);
        continue;
      }
      assert.doesNotThrow(
        () => [cert.subject, cert.issuer, cert.extensions, cert.serialHex, cert.notAfter],
        `byte ${at}`,
      );
    }
  });
});
