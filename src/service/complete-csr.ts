import { createPrivateKey, type KeyObject } from 'node:crypto';
import { type CertificateDescription, describeCertificate } from '../core/describe.js';
import { CoreError } from '../core/errors.js';
import { matchKeyToCertificate } from '../core/keys.js';
import type { ValidationProblem } from '../core/validate.js';
import type { EntryRecord } from '../store/store.js';
import { StoreError } from '../store/store.js';
import { checkAlias } from './alias.js';
import { guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { assembleKeyPair, trustAnchors } from './key-pair.js';
import { changeBy, type Principal } from './principal.js';
import { readUpload, type UploadedFile } from './upload.js';

export interface CompleteCsrInput {
  alias: string;
  /** The issued certificate and its chain, in any format and order (no private key). */
  files: UploadedFile[];
  password?: string | undefined;
  principal: Principal;
  /** The revision the caller saw (`If-Match`); otherwise the revision read before checking. */
  expectedRevision?: number;
}

export interface CompleteCsrResult {
  revision: number;
  entry: EntryRecord;
  certificate: CertificateDescription;
  chain: CertificateDescription[];
  warnings: ValidationProblem[];
}

/**
 * Completes a `pending` entry with the certificate a CA issued for its CSR (and the
 * chain), as one change that turns it into a `key-pair` entry with the pending key. A
 * certificate for another key is `KeyMismatch`; an entry that is not pending is
 * `EntryNotUsable`; the upload is validated like an import.
 */
export async function completeCsr(
  ctx: ServiceContext,
  input: CompleteCsrInput,
): Promise<CompleteCsrResult> {
  checkAlias(input.alias);
  const upload = await readUpload(input.files, input.password);
  if (upload.keys.length > 0) {
    throw new ServiceError(
      'UnexpectedPrivateKey',
      'Completing a CSR takes the issued certificate and its chain only; its private key is already in the keystore, so leave the key out of the upload.',
    );
  }
  if (upload.certificates.length === 0) {
    throw new CoreError('NoCertificate', 'The upload holds no certificate.');
  }

  const pending = await ctx.store.getEntry(input.alias);
  if (!pending) throw new StoreError('AliasNotFound', `No entry is named "${input.alias}".`);
  if (pending.kind !== 'pending') {
    throw new ServiceError(
      'EntryNotUsable',
      `The entry "${input.alias}" is a ${pending.kind} entry, not a pending CSR; replace it with an import instead.`,
    );
  }
  const key = await pendingKey(ctx, input.alias);
  if (!upload.certificates.some((c) => matchKeyToCertificate(key, c))) {
    throw new CoreError(
      'KeyMismatch',
      `No certificate of the upload was issued for the key of the pending CSR "${input.alias}": check that the CA signed this CSR, not another one.`,
    );
  }
  const { entry, leaf, chain, warnings } = assembleKeyPair(
    ctx,
    input.alias,
    upload.certificates,
    key,
    await trustAnchors(ctx),
  );
  const revision = await ctx.store.applyChange(
    changeBy(input.principal, {
      action: 'complete-csr',
      target: input.alias,
      details: {
        kind: 'key-pair',
        fingerprint: leaf.sha256,
        subject: leaf.subject.rfc4514,
        notAfter: leaf.notAfter.toISOString(),
      },
      ...guards(input.expectedRevision, [
        { type: 'entryRevision', alias: input.alias, revision: pending.updatedRevision },
      ]),
      mutations: [{ type: 'putEntry', entry }],
    }),
  );
  return {
    revision,
    entry: (await ctx.store.getEntry(input.alias))!,
    certificate: describeCertificate(leaf),
    chain: chain.map(describeCertificate),
    warnings,
  };
}

async function pendingKey(ctx: ServiceContext, alias: string): Promise<KeyObject> {
  const der = await ctx.store.getPrivateKey(alias);
  if (!der) throw new CoreError('NoPrivateKey', `The pending entry "${alias}" has lost its key.`);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}
