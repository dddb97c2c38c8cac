import { rootCertificates } from 'node:tls';
import { type Certificate, parseCertificate } from '../core/certificate.js';
import { parsePemBlocks } from '../core/pem.js';
import { type OpenDataDirOptions, openDataDir } from '../store/data-dir.js';
import type { ServiceContext } from './context.js';

/** An open keystore: the context every operation takes, and the means to close it. */
export interface Keystore extends ServiceContext {
  close(): Promise<void>;
}

/**
 * Opens the keystore of a data directory for the front ends (see `openDataDir` for what
 * is created and what is refused), with the system clock and Node's bundled root CAs as
 * trust anchors, unless `options` gives others.
 */
export async function openKeystore(
  dataDir: string,
  env: Record<string, string | undefined>,
  options: OpenDataDirOptions & { trusted?: Certificate[] } = {},
): Promise<Keystore> {
  const { trusted, ...open } = options;
  const store = await openDataDir(dataDir, env, open);
  const now = options.now ?? (() => new Date());
  return {
    store,
    now,
    trusted: trusted ?? nodeRoots(),
    close: () => store.close(),
  };
}

let roots: Certificate[] | undefined;

/** Node's bundled root certificates, parsed once. */
function nodeRoots(): Certificate[] {
  roots ??= rootCertificates.map((pem) => parseCertificate(parsePemBlocks(pem)[0]!.der));
  return roots;
}
