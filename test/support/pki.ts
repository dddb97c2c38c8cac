import type { KeyObject } from 'node:crypto';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../../src/core/generate.js';
import { toPem } from '../../src/core/pem.js';

/** A certificate with its key, as PEM too, for tests. */
export interface Issued {
  cert: Certificate;
  key: KeyObject;
  certPem: string;
  keyPem: string;
}

function issued(der: Buffer, key: KeyObject): Issued {
  const cert = parseCertificate(der);
  return {
    cert,
    key,
    certPem: toPem('CERTIFICATE', cert.der),
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** A root → intermediate → leaf hierarchy made with core/generate (ECDSA P-256). */
export async function makeHierarchy(
  options: { now?: Date; hosts?: string[]; ips?: string[]; leafDays?: number; name?: string } = {},
): Promise<{ root: Issued; intermediate: Issued; leaf: Issued }> {
  const now = options.now ?? new Date();
  const name = options.name ?? 'Test';
  const rootKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
  const root = issued(
    await createSelfSignedCa({ key: rootKey, subject: { CN: `${name} Root` }, days: 3650, now }),
    rootKey,
  );
  const intKeys = await generateKeyPair({ type: 'ec', curve: 'P-256' });
  const intermediate = issued(
    await issueCertificate({
      issuer: { certificate: root.cert, key: rootKey },
      publicKey: intKeys.publicKey,
      subject: { CN: `${name} Intermediate` },
      days: 3000,
      now,
      isCa: true,
      pathLength: 0,
    }),
    intKeys.privateKey,
  );
  const leafKeys = await generateKeyPair({ type: 'ec', curve: 'P-256' });
  const leaf = issued(
    await issueCertificate({
      issuer: { certificate: intermediate.cert, key: intKeys.privateKey },
      publicKey: leafKeys.publicKey,
      subject: { CN: options.hosts?.[0] ?? 'app.example.test' },
      sans: { dns: options.hosts ?? ['app.example.test'], ip: options.ips ?? [] },
      days: options.leafDays ?? 90,
      now,
    }),
    leafKeys.privateKey,
  );
  return { root, intermediate, leaf };
}
