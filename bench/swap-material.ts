/**
 * What the swap benchmarks serve: one P-256 bench CA and `count` leaves for
 * `bench.example.test` (RSA-2048 or P-256), and a data directory holding them as
 * `bench-0…`, bench-0 bound as `server`, imported as `certkeeper import` would.
 */
import { join } from 'node:path';
import { type Certificate, parseCertificate } from '../src/core/certificate.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../src/core/generate.js';
import { toPem } from '../src/core/pem.js';
import type { ServiceContext } from '../src/service/context.js';
import { importEntry } from '../src/service/import-entry.js';
import type { Principal } from '../src/service/principal.js';
import { openDataDir } from '../src/store/data-dir.js';

const BENCH_PRINCIPAL: Principal = { actor: 'bench', role: 'admin', source: 'bench' };

export const SERVERNAME = 'bench.example.test';

export interface Material {
  ca: Certificate;
  caPem: string;
  leaves: { keyPem: string; certPem: string }[];
}

/** A bench CA and `count` leaves for `SERVERNAME` and 127.0.0.1, valid a week. */
export async function makeMaterial(count: number, key: 'rsa' | 'ec'): Promise<Material> {
  const now = new Date();
  const caKey = (await generateKeyPair({ type: 'ec', curve: 'P-256' })).privateKey;
  const caDer = await createSelfSignedCa({
    key: caKey,
    subject: { CN: 'Bench CA' },
    days: 30,
    now,
  });
  const ca = parseCertificate(caDer);
  const leaves: Material['leaves'] = [];
  for (let i = 0; i < count; i++) {
    const pair = await generateKeyPair(
      key === 'rsa' ? { type: 'rsa', bits: 2048 } : { type: 'ec', curve: 'P-256' },
    );
    const der = await issueCertificate({
      issuer: { certificate: ca, key: caKey },
      publicKey: pair.publicKey,
      subject: { CN: SERVERNAME },
      sans: { dns: [SERVERNAME], ip: ['127.0.0.1'] },
      days: 7,
      now,
    });
    leaves.push({
      keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      certPem: toPem('CERTIFICATE', der),
    });
  }
  return { ca, caPem: toPem('CERTIFICATE', caDer), leaves };
}

/** A data directory under `parent` with every leaf imported, the first one activated. */
export async function openBenchDataDir(
  parent: string,
  material: Material,
): Promise<{
  dataDir: string;
  ctx: ServiceContext;
  aliases: string[];
  fingerprints: Map<string, string>;
}> {
  const dataDir = join(parent, 'data');
  const store = await openDataDir(dataDir, {}, { create: true });
  const ctx: ServiceContext = { store, now: () => new Date(), trusted: [material.ca] };
  const aliases = material.leaves.map((_, i) => `bench-${i}`);
  const fingerprints = new Map<string, string>();
  for (const [i, leaf] of material.leaves.entries()) {
    const imported = await importEntry(ctx, {
      alias: aliases[i]!,
      files: [
        { name: 'key.pem', bytes: Buffer.from(leaf.keyPem) },
        { name: 'cert.pem', bytes: Buffer.from(leaf.certPem + material.caPem) },
      ],
      principal: BENCH_PRINCIPAL,
      activate: i === 0,
    });
    fingerprints.set(aliases[i]!, imported.entry.fingerprint!);
  }
  return { dataDir, ctx, aliases, fingerprints };
}
