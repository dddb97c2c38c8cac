import { X509Certificate } from 'node:crypto';
import { createCsr, createSelfSignedCa, generateKeyPair } from '../../src/core/generate.js';
import { toPem } from '../../src/core/pem.js';
import type { EntryInput } from '../../src/store/store.js';

/** A real key, its self-signed certificate and a CSR, made at test time by `core/generate`. */
export interface Material {
  name: string;
  /** PKCS#8 DER of the private key. */
  keyDer: Buffer;
  /** The raw private scalar (`d`), the bytes that must never appear in a store file. */
  secretBytes: Buffer;
  certificatePem: string;
  fingerprint: string;
  csrPem: string;
}

const NOW = new Date('2030-06-15T12:00:00Z');

export async function makeMaterial(name: string): Promise<Material> {
  const { privateKey } = await generateKeyPair({ type: 'ec', curve: 'P-256' });
  const certDer = await createSelfSignedCa({
    key: privateKey,
    subject: { CN: name },
    days: 30,
    now: NOW,
  });
  const csrDer = await createCsr({ key: privateKey, subject: { CN: name } });
  const certificatePem = toPem('CERTIFICATE', certDer);
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    name,
    keyDer: privateKey.export({ format: 'der', type: 'pkcs8' }),
    secretBytes: Buffer.from(jwk.d!, 'base64url'),
    certificatePem,
    fingerprint: new X509Certificate(certificatePem).fingerprint256,
    csrPem: toPem('CERTIFICATE REQUEST', csrDer),
  };
}

export function keyPairEntry(alias: string, m: Material, chainPem = ''): EntryInput {
  return {
    alias,
    kind: 'key-pair',
    certificatePem: m.certificatePem,
    chainPem,
    privateKeyDer: m.keyDer,
  };
}

export function pendingEntry(alias: string, m: Material): EntryInput {
  return { alias, kind: 'pending', csrPem: m.csrPem, privateKeyDer: m.keyDer };
}

export function trustedEntry(alias: string, m: Material): EntryInput {
  return { alias, kind: 'trusted', certificatePem: m.certificatePem };
}
