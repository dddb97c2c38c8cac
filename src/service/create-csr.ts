import { type CsrDescription, describeCsr, parseCsr } from '../core/csr.js';
import {
  createCsr as createCsrDer,
  generateKeyPair,
  type KeySpec,
  type SubjectAltNames,
  type SubjectFields,
} from '../core/generate.js';
import { parsePemBlocks, toPem } from '../core/pem.js';
import { StoreError } from '../store/store.js';
import { checkAlias } from './alias.js';
import { guards, type ServiceContext } from './context.js';
import { ServiceError } from './errors.js';
import { changeBy, type Principal } from './principal.js';

/** The keys a CSR can be made for. */
export type CsrKeyType = 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'ec-p256' | 'ec-p384' | 'ed25519';

const KEY_SPECS: Record<CsrKeyType, KeySpec> = {
  'rsa-2048': { type: 'rsa', bits: 2048 },
  'rsa-3072': { type: 'rsa', bits: 3072 },
  'rsa-4096': { type: 'rsa', bits: 4096 },
  'ec-p256': { type: 'ec', curve: 'P-256' },
  'ec-p384': { type: 'ec', curve: 'P-384' },
  ed25519: { type: 'ed25519' },
};

/** The key types `createCsr` accepts, for the API's documentation. */
export const CSR_KEY_TYPES = Object.keys(KEY_SPECS) as readonly CsrKeyType[];

export interface CreateCsrInput {
  alias: string;
  subject: SubjectFields;
  /** Subject alternative names as `DNS:example.com` or `IP:192.0.2.1`. */
  sans: string[];
  keyType: CsrKeyType;
  principal: Principal;
  /** The revision the caller saw (`If-Match`); otherwise the revision read before checking. */
  expectedRevision?: number;
}

export interface CreateCsrResult {
  revision: number;
  alias: string;
  csrPem: string;
  csr: CsrDescription;
}

export interface CsrDownload {
  alias: string;
  pem: string;
  der: Buffer;
  csr: CsrDescription;
}

/**
 * Generates a key (on the thread pool, so the event loop keeps serving) and a PKCS#10
 * request for it, and stores both as a new `pending` entry in one change; complete it
 * later with `completeCsr`. An alias in use is `AliasInUse`; bad fields are `InvalidKeyType`, `InvalidSubjectAltName` or core's `InvalidGenerationRequest`.
 */
export async function createCsr(
  ctx: ServiceContext,
  input: CreateCsrInput,
): Promise<CreateCsrResult> {
  checkAlias(input.alias);
  const spec = Object.hasOwn(KEY_SPECS, input.keyType) ? KEY_SPECS[input.keyType] : undefined;
  if (!spec) {
    throw new ServiceError(
      'InvalidKeyType',
      `The key type "${input.keyType}" is not one of ${CSR_KEY_TYPES.join(', ')}.`,
    );
  }
  const sans = parseSans(input.sans);
  // The key and the request depend on nothing stored: make them before reading the
  // revision, so a slow RSA key does not widen the window for a conflict.
  const { privateKey } = await generateKeyPair(spec);
  const der = await createCsrDer({ key: privateKey, subject: input.subject ?? {}, sans });
  const csrPem = toPem('CERTIFICATE REQUEST', der);

  if (await ctx.store.getEntry(input.alias)) {
    throw new StoreError(
      'AliasInUse',
      `An entry named "${input.alias}" already exists; choose another alias for the CSR.`,
    );
  }
  const csr = describeCsr(parseCsr(der));
  const revision = await ctx.store.applyChange(
    changeBy(input.principal, {
      action: 'create-csr',
      target: input.alias,
      details: {
        subject: csr.subject.rfc4514,
        sans: input.sans,
        keyType: input.keyType,
      },
      ...guards(input.expectedRevision, [{ type: 'entryAbsent', alias: input.alias }]),
      mutations: [
        {
          type: 'putEntry',
          entry: {
            alias: input.alias,
            kind: 'pending',
            csrPem,
            privateKeyDer: privateKey.export({ format: 'der', type: 'pkcs8' }),
          },
        },
      ],
    }),
  );
  return { revision, alias: input.alias, csrPem, csr };
}

/** The CSR of a pending entry, PEM and DER, to hand to a CA. */
export async function getCsr(ctx: ServiceContext, alias: string): Promise<CsrDownload> {
  const entry = await ctx.store.getEntry(alias);
  if (!entry) throw new StoreError('AliasNotFound', `No entry is named "${alias}".`);
  const block = entry.csrPem
    ? parsePemBlocks(entry.csrPem).find((b) => b.label.endsWith('CERTIFICATE REQUEST'))
    : undefined;
  if (entry.kind !== 'pending' || !entry.csrPem || !block) {
    throw new ServiceError(
      'EntryNotUsable',
      `The entry "${alias}" is a ${entry.kind} entry, not a pending CSR.`,
    );
  }
  return { alias, pem: entry.csrPem, der: block.der, csr: describeCsr(parseCsr(block.der)) };
}

/** `DNS:name` and `IP:address` strings as core's SAN lists; anything else is `InvalidSubjectAltName`. */
function parseSans(sans: string[] | undefined): SubjectAltNames {
  if (sans !== undefined && !Array.isArray(sans)) {
    throw new ServiceError(
      'InvalidSubjectAltName',
      'sans must be a list like ["DNS:example.com"].',
    );
  }
  const dns: string[] = [];
  const ip: string[] = [];
  for (const san of sans ?? []) {
    const match = typeof san === 'string' ? /^(DNS|IP):(.+)$/i.exec(san.trim()) : null;
    if (!match) {
      throw new ServiceError(
        'InvalidSubjectAltName',
        `The subject alternative name ${JSON.stringify(san)} must be "DNS:<name>" or "IP:<address>".`,
      );
    }
    (match[1]!.toUpperCase() === 'DNS' ? dns : ip).push(match[2]!);
  }
  return { dns, ip };
}
