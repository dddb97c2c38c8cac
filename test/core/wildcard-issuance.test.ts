/**
 * Issuance and CSRs take the same host name rule as validation (`core/hostname.ts`):
 * no wildcard directly under a public suffix, no `_`, and the canonical IP text.
 */
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { parseCertificate } from '../../src/core/certificate.js';
import { describeCsr, parseCsr } from '../../src/core/csr.js';
import { isCoreError } from '../../src/core/errors.js';
import { subjectAltNamesOf } from '../../src/core/extensions.js';
import {
  createCsr,
  createSelfSignedCa,
  generateKeyPair,
  issueCertificate,
} from '../../src/core/generate.js';

const NOW = new Date('2026-01-01T00:00:00Z');

async function refused(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(isCoreError(err, 'InvalidGenerationRequest'), String(err));
    assert.match(err.message, pattern);
    return true;
  });
}

describe('wildcard SANs for issuance and CSRs', () => {
  let key: KeyObject;
  let caKey: KeyObject;
  before(async () => {
    key = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
    caKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
  });

  for (const pattern of ['*.co.uk', '*.s3.amazonaws.com', '*.com']) {
    it(`refuses a CSR for ${pattern}, a wildcard over a public suffix`, async () => {
      await refused(
        () => createCsr({ key, subject: { CN: 'x' }, sans: { dns: [pattern] } }),
        /public suffix/,
      );
    });
  }

  it('refuses to issue for *.co.uk and a name with an underscore', async () => {
    const ca = parseCertificate(
      await createSelfSignedCa({ key: caKey, subject: { CN: 'PSL CA' }, days: 10, now: NOW }),
    );
    const issue = (dns: string[]) =>
      issueCertificate({
        issuer: { certificate: ca, key: caKey },
        publicKey: key,
        // No CN: it would have to repeat a SAN, and these tests are about the SANs.
        subject: { O: 'PSL test' },
        sans: { dns },
        days: 5,
        now: NOW,
      });
    await refused(() => issue(['*.co.uk']), /public suffix "co\.uk"/);
    await refused(() => issue(['foo_bar.example.com']), /not a valid DNS name/);
    const leaf = parseCertificate(await issue(['*.example.co.uk']));
    assert.deepEqual(subjectAltNamesOf(leaf)?.dns, ['*.example.co.uk']);
  });

  it('writes a CSR for a wildcard below a registrable domain, IPs in canonical text', async () => {
    const csr = parseCsr(
      await createCsr({
        key,
        subject: { CN: 'x' },
        sans: { dns: ['*.bucket.s3.amazonaws.com'], ip: ['2001:DB8:0:0:0:0:0:1'] },
      }),
    );
    const { sans } = describeCsr(csr);
    assert.deepEqual(sans.dns, ['*.bucket.s3.amazonaws.com']);
    assert.deepEqual(sans.ip, ['2001:db8::1']);
  });
});
