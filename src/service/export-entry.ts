import { createPrivateKey } from 'node:crypto';
import { parseCertificate } from '../core/certificate.js';
import { parsePemBlocks } from '../core/pem.js';
import { writePkcs12 } from '../core/pkcs12.js';
import { StoreError } from '../store/store.js';
import { isReservedAlias, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { checkPrincipal, type Principal } from './principal.js';

/** The shortest export password accepted: the file leaves certkeeper's protection. */
export const MIN_EXPORT_PASSWORD = 8;

export interface ExportPkcs12Input {
  alias: string;
  password: string;
  principal: Principal;
}

export interface ExportPkcs12Result {
  /** The PKCS#12 file: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), MAC HMAC-SHA256, OpenSSL 3's 2048 iterations. */
  pkcs12: Buffer;
  alias: string;
  fingerprint: string;
}

/**
 * The one way a private key leaves certkeeper: a password-protected PKCS#12 of a
 * `key-pair` entry (key, leaf and chain; AES-256 PBES2 and an HMAC-SHA256 MAC), recorded
 * in the audit log before it is handed out. A password shorter than 8 characters is
 * `PasswordTooShort`; other kinds are `EntryNotUsable`; the local CA's
 * entries are never exported (`InvalidAlias`).
 */
export async function exportPkcs12(
  ctx: ServiceContext,
  input: ExportPkcs12Input,
): Promise<ExportPkcs12Result> {
  checkPrincipal(input.principal);
  // A private key leaving the server is a privilege of its own: administrators only.
  if (input.principal.role !== 'admin') {
    throw new ServiceError(
      'Forbidden',
      `Exporting a private key needs the admin role; ${input.principal.actor} is ${input.principal.role}.`,
    );
  }
  if (typeof input.password !== 'string' || [...input.password].length < MIN_EXPORT_PASSWORD) {
    throw new ServiceError(
      'PasswordTooShort',
      `A PKCS#12 export needs a password of at least ${MIN_EXPORT_PASSWORD} characters.`,
    );
  }
  if (isReservedAlias(input.alias)) {
    throw new ServiceError(
      'InvalidAlias',
      `"${input.alias}" belongs to certkeeper's local CA; its key is never exported.`,
    );
  }
  const entry = await ctx.store.getEntry(input.alias);
  if (!entry) throw new StoreError('AliasNotFound', `No entry is named "${input.alias}".`);
  const der = entry.kind === 'key-pair' ? await ctx.store.getPrivateKey(input.alias) : undefined;
  if (!der || !entry.certificatePem || !entry.fingerprint) {
    throw new ServiceError(
      'EntryNotUsable',
      `The entry "${input.alias}" is a ${entry.kind} entry; only a key pair can be exported as PKCS#12.`,
    );
  }
  const certificates = parsePemBlocks(entry.certificatePem + entry.chainPem)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => parseCertificate(b.der));
  const pkcs12 = await writePkcs12({
    key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }),
    certificates,
    password: input.password,
    friendlyName: input.alias,
  });
  // On record before the key leaves: an export the log can't hold is not made.
  await ctx.store.appendAudit({
    actor: input.principal.actor,
    source: input.principal.source,
    action: 'export-pkcs12',
    target: input.alias,
    outcome: 'done',
    details: {
      fingerprint: entry.fingerprint,
      revision: entry.updatedRevision,
      principal: { role: input.principal.role },
    },
  });
  return { pkcs12, alias: input.alias, fingerprint: entry.fingerprint };
}
