import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { isSniHostSyntax } from '../core/hostname.js';
import type { Sealer } from './encryption.js';
import type {
  AuditEventInput,
  ChangeInput,
  EntryKind,
  EntryRecord,
  Precondition,
  Role,
} from './store.js';
import { StoreError } from './store.js';

/**
 * The adapter-independent half of `applyChange`: checks the shape of a change and of every
 * mutation before any transaction starts (`InvalidMutation`), normalises entries, computes
 * fingerprints and seals private keys and secrets. `apply-change.ts` then applies the plan
 * inside one transaction of the adapter, checking what depends on the stored state
 * (revision, aliases, bindings, users) with the error constructors below.
 */
export interface ChangePlan {
  actor: string;
  source: string | null;
  action: string;
  target: string | null;
  /** `details` as JSON text. */
  detailsJson: string;
  expectedRevision: number | undefined;
  preconditions: Precondition[];
  mutations: PlannedMutation[];
}

export interface PlannedEntry {
  alias: string;
  kind: EntryKind;
  certificatePem: string | null;
  chainPem: string;
  csrPem: string | null;
  /** Sealed PKCS#8 (associated data: the alias), or null. */
  sealedPrivateKey: Buffer | null;
  fingerprint: string | null;
}

export type PlannedMutation =
  | { type: 'putEntry'; entry: PlannedEntry }
  | { type: 'deleteEntry'; alias: string }
  | { type: 'bind'; name: string; alias: string }
  | { type: 'unbind'; name: string }
  | { type: 'putSecret'; name: string; sealedValue: Buffer }
  | {
      type: 'putUser';
      user: { username: string; role: Role; passwordHash: string; mustChangePassword: boolean };
    }
  | { type: 'deleteUser'; username: string }
  | { type: 'setUserRole'; username: string; role: Role }
  | {
      type: 'putToken';
      token: {
        id: string;
        name: string;
        role: Role;
        username: string;
        secretHash: string;
        expiresAt: string | null;
      };
    }
  | { type: 'deleteToken'; id: string }
  | { type: 'putSetting'; name: string; valueJson: string }
  | { type: 'deleteSetting'; name: string };

const ROLES: readonly Role[] = ['admin', 'operator', 'auditor'];

const KINDS: readonly EntryKind[] = ['key-pair', 'trusted', 'pending'];
const MAX_NAME = 255;
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g;
const CSR_BLOCK =
  /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----[A-Za-z0-9+/=\s]+-----END (NEW )?CERTIFICATE REQUEST-----$/;

export function prepareChange(change: ChangeInput, sealer: Sealer): ChangePlan {
  if (typeof change !== 'object' || change === null) throw invalid('A change must be an object.');
  const actor = requireName(change.actor, 'The change', 'actor');
  const action = requireName(change.action, 'The change', 'action');
  const target = change.target ?? null;
  if (target !== null && typeof target !== 'string') throw invalid('target must be a string.');
  const expectedRevision = change.expectedRevision;
  if (
    expectedRevision !== undefined &&
    (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0)
  ) {
    throw invalid('expectedRevision must be a revision number (an integer, 0 or more).');
  }
  if (!Array.isArray(change.mutations)) throw invalid('mutations must be an array.');
  const source = change.source ?? null;
  if (source !== null && typeof source !== 'string') throw invalid('source must be a string.');
  const preconditions = change.preconditions ?? [];
  if (!Array.isArray(preconditions)) throw invalid('preconditions must be an array.');
  return {
    actor,
    source,
    action,
    target,
    detailsJson: detailsToJson(change.details),
    expectedRevision,
    preconditions: preconditions.map((p, i) => preparePrecondition(p, i)),
    mutations: change.mutations.map((m, i) => prepareMutation(m, i, sealer)),
  };
}

/** An audit event whose shape `prepareAuditEvent` checked. */
export interface PlannedAuditEvent {
  actor: string;
  source: string | null;
  action: string;
  target: string | null;
  outcome: string;
  /** `details` as JSON text. */
  detailsJson: string;
}

/** Checks an audit event's shape, as `prepareChange` does a change's. */
export function prepareAuditEvent(event: AuditEventInput): PlannedAuditEvent {
  const e = requireObject(event, 'The audit event', 'it');
  const optional = (value: unknown, field: string): string | null => {
    if (value === undefined || value === null) return null;
    return requireName(value, 'The audit event', field);
  };
  return {
    actor: requireName(e.actor, 'The audit event', 'actor'),
    source: optional(e.source, 'source'),
    action: requireName(e.action, 'The audit event', 'action'),
    target: optional(e.target, 'target'),
    outcome: requireName(e.outcome, 'The audit event', 'outcome'),
    detailsJson: detailsToJson(e.details),
  };
}

function preparePrecondition(p: unknown, index: number): Precondition {
  const where = `Precondition ${index + 1}`;
  const c = requireObject(p, where, 'it');
  switch (c.type) {
    case 'entryExists':
    case 'entryAbsent':
      return { type: c.type, alias: requireName(c.alias, where, 'alias') };
    case 'entryRevision': {
      const revision = c.revision;
      if (!Number.isSafeInteger(revision) || (revision as number) < 0) {
        throw invalid(`${where}: revision must be an integer, 0 or more.`);
      }
      return {
        type: 'entryRevision',
        alias: requireName(c.alias, where, 'alias'),
        revision: revision as number,
      };
    }
    case 'bindingIs':
      return {
        type: 'bindingIs',
        name: requireBindingName(c.name, where),
        alias: c.alias === null ? null : requireName(c.alias, where, 'alias'),
      };
    case 'userExists':
    case 'userAbsent':
      return { type: c.type, username: requireName(c.username, where, 'username') };
    case 'userHasRole':
      return {
        type: 'userHasRole',
        username: requireName(c.username, where, 'username'),
        role: requireRole(c.role, where),
      };
    default:
      throw invalid(`${where} has an unknown type ${JSON.stringify(c.type)}.`);
  }
}

function prepareMutation(m: unknown, index: number, sealer: Sealer): PlannedMutation {
  const where = `Mutation ${index + 1}`;
  if (typeof m !== 'object' || m === null) throw invalid(`${where} is not an object.`);
  const mutation = m as Record<string, unknown>;
  switch (mutation.type) {
    case 'putEntry':
      return { type: 'putEntry', entry: prepareEntry(mutation.entry, where, sealer) };
    case 'deleteEntry':
      return { type: 'deleteEntry', alias: requireName(mutation.alias, where, 'alias') };
    case 'bind':
      return {
        type: 'bind',
        name: requireBindingName(mutation.name, where),
        alias: requireName(mutation.alias, where, 'alias'),
      };
    case 'unbind':
      // Any name a row may hold can be removed, whatever wrote it (not there: BindingNotFound).
      return { type: 'unbind', name: requireName(mutation.name, where, 'name') };
    case 'putSecret': {
      const name = requireName(mutation.name, where, 'name');
      if (!(mutation.value instanceof Uint8Array)) throw invalid(`${where}: value must be bytes.`);
      return {
        type: 'putSecret',
        name,
        sealedValue: sealer.seal(mutation.value, { kind: 'secret', name }),
      };
    }
    case 'putUser': {
      const user = requireObject(mutation.user, where, 'user');
      const passwordHash = requireName(user.passwordHash, where, 'passwordHash');
      if (!passwordHash.startsWith('scrypt$')) {
        throw invalid(`${where}: passwordHash must be an scrypt hash, never a password.`);
      }
      return {
        type: 'putUser',
        user: {
          username: requireName(user.username, where, 'username'),
          role: requireRole(user.role, where),
          passwordHash,
          mustChangePassword: user.mustChangePassword === true,
        },
      };
    }
    case 'deleteUser':
      return { type: 'deleteUser', username: requireName(mutation.username, where, 'username') };
    case 'setUserRole':
      return {
        type: 'setUserRole',
        username: requireName(mutation.username, where, 'username'),
        role: requireRole(mutation.role, where),
      };
    case 'putToken': {
      const token = requireObject(mutation.token, where, 'token');
      const expiresAt = token.expiresAt ?? null;
      if (
        expiresAt !== null &&
        (typeof expiresAt !== 'string' || Number.isNaN(Date.parse(expiresAt)))
      ) {
        throw invalid(`${where}: expiresAt must be an ISO 8601 time or null.`);
      }
      return {
        type: 'putToken',
        token: {
          id: requireName(token.id, where, 'id'),
          name: requireName(token.name, where, 'name'),
          role: requireRole(token.role, where),
          username: requireName(token.username, where, 'username'),
          secretHash: requireName(token.secretHash, where, 'secretHash'),
          expiresAt: expiresAt as string | null,
        },
      };
    }
    case 'deleteToken':
      return { type: 'deleteToken', id: requireName(mutation.id, where, 'id') };
    case 'putSetting': {
      const name = requireName(mutation.name, where, 'name');
      if (mutation.value === undefined) throw invalid(`${where}: a setting needs a value.`);
      return { type: 'putSetting', name, valueJson: plainJson(mutation.value, where) };
    }
    case 'deleteSetting':
      return { type: 'deleteSetting', name: requireName(mutation.name, where, 'name') };
    default:
      throw invalid(`${where} has an unknown type ${JSON.stringify(mutation.type)}.`);
  }
}

function requireObject(value: unknown, where: string, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) {
    throw invalid(`${where}: ${field} must be an object.`);
  }
  return value as Record<string, unknown>;
}

function requireRole(value: unknown, where: string): Role {
  if (!ROLES.includes(value as Role)) {
    throw invalid(`${where}: role must be one of ${ROLES.join(', ')}.`);
  }
  return value as Role;
}

function plainJson(value: unknown, where: string): string {
  try {
    const json = JSON.stringify(value);
    if (json === undefined) throw new Error('not JSON');
    return json;
  } catch (cause) {
    throw invalid(`${where}: the value must be plain JSON.`, cause);
  }
}

function prepareEntry(e: unknown, where: string, sealer: Sealer): PlannedEntry {
  if (typeof e !== 'object' || e === null) throw invalid(`${where}: entry must be an object.`);
  const input = e as Record<string, unknown>;
  const alias = requireName(input.alias, where, 'alias');
  const at = `${where} (entry "${alias}")`;
  const kind = input.kind as EntryKind;
  if (!KINDS.includes(kind)) throw invalid(`${at}: kind must be one of ${KINDS.join(', ')}.`);

  const certificatePem = optionalString(input.certificatePem, at, 'certificatePem');
  const chainPem = optionalString(input.chainPem, at, 'chainPem') ?? '';
  const csrPem = optionalString(input.csrPem, at, 'csrPem');
  const key = input.privateKeyDer ?? null;
  if (key !== null && !(key instanceof Uint8Array))
    throw invalid(`${at}: privateKeyDer must be bytes.`);
  const givenFingerprint = optionalString(input.fingerprint, at, 'fingerprint');

  const needs = (ok: boolean, what: string) => {
    if (!ok) throw invalid(`${at}: a ${kind} entry ${what}.`);
  };
  if (kind === 'key-pair') {
    needs(certificatePem !== null, 'needs its certificate');
    needs(key !== null, 'needs its private key');
    needs(csrPem === null, 'has no CSR (a completed CSR becomes a key-pair without it)');
  } else if (kind === 'trusted') {
    needs(certificatePem !== null, 'needs its CA certificate');
    needs(key === null, 'has no private key');
    needs(csrPem === null, 'has no CSR');
  } else {
    needs(certificatePem === null, 'has no certificate yet (complete it as a key-pair)');
    needs(chainPem === '', 'has no chain yet');
    needs(key !== null, 'needs the private key of its CSR');
    needs(csrPem !== null, 'needs its CSR');
    needs(givenFingerprint === null, 'has no fingerprint');
  }

  let fingerprint: string | null = null;
  if (certificatePem !== null) {
    const blocks = certificateBlocks(certificatePem, at, 'certificatePem');
    if (blocks.length !== 1)
      throw invalid(`${at}: certificatePem must hold exactly one certificate.`);
    fingerprint = parseCertificate(blocks[0]!, at, 'certificatePem').fingerprint256;
    if (givenFingerprint !== null && givenFingerprint.toUpperCase() !== fingerprint) {
      throw invalid(`${at}: the fingerprint does not match the certificate (${fingerprint}).`);
    }
  }
  if (chainPem.trim() !== '') {
    for (const block of certificateBlocks(chainPem, at, 'chainPem')) {
      parseCertificate(block, at, 'chainPem');
    }
  }
  if (csrPem !== null && !CSR_BLOCK.test(csrPem.trim())) {
    throw invalid(`${at}: csrPem must be one PEM CERTIFICATE REQUEST block.`);
  }
  let sealedPrivateKey: Buffer | null = null;
  if (key !== null) {
    try {
      createPrivateKey({ key: Buffer.from(key), format: 'der', type: 'pkcs8' });
    } catch (cause) {
      throw invalid(`${at}: privateKeyDer is not an unencrypted PKCS#8 private key.`, cause);
    }
    sealedPrivateKey = sealer.seal(key, { kind: 'entry-key', alias });
  }
  return { alias, kind, certificatePem, chainPem, csrPem, sealedPrivateKey, fingerprint };
}

/** The PEM CERTIFICATE blocks of `pem`; anything else in it (a key!) is refused. */
function certificateBlocks(pem: string, at: string, field: string): string[] {
  const blocks = pem.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0 || pem.replace(CERTIFICATE_BLOCK, '').trim() !== '') {
    throw invalid(`${at}: ${field} must hold only PEM CERTIFICATE blocks.`);
  }
  return blocks;
}

function parseCertificate(pem: string, at: string, field: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (cause) {
    throw invalid(`${at}: ${field} holds a block that is not a readable certificate.`, cause);
  }
}

function requireName(value: unknown, where: string, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME) {
    throw invalid(
      `${where}: ${field} must be a non-empty string of at most ${MAX_NAME} characters.`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw invalid(`${where}: ${field} must not contain control characters.`);
  }
  return value;
}

/**
 * `server`, `ca` or `sni:<host>` (lower-case host syntax, optionally `*.`-prefixed). Syntax
 * only: the host name policy (public suffixes, `_`) is the service's, where bindings are
 * made, so that bindings written under an older policy stay readable and removable.
 */
function requireBindingName(value: unknown, where: string): string {
  const name = requireName(value, where, 'name');
  if (name === 'server' || name === 'ca') return name;
  if (name.startsWith('sni:') && isSniHostSyntax(name.slice(4))) return name;
  throw invalid(
    `${where}: the binding name ${JSON.stringify(name)} must be "server", "ca" or "sni:<host>" with a lower-case host name (optionally "*.").`,
  );
}

function optionalString(value: unknown, at: string, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalid(`${at}: ${field} must be a string.`);
  return value;
}

/** Plain JSON only: no bytes (key material has no place in the audit log). */
function detailsToJson(details: unknown): string {
  if (details === undefined || details === null) return '{}';
  if (typeof details !== 'object' || Array.isArray(details)) {
    throw invalid('details must be a plain JSON object.');
  }
  const hasBytes = (value: unknown, depth: number): boolean => {
    if (value instanceof Uint8Array || value instanceof ArrayBuffer) return true;
    if (depth > 32 || typeof value !== 'object' || value === null) return false;
    return Object.values(value).some((v) => hasBytes(v, depth + 1));
  };
  if (hasBytes(details, 0)) {
    throw invalid('details must not hold bytes: never put key material in the audit log.');
  }
  try {
    return JSON.stringify(details);
  } catch (cause) {
    throw invalid('details must be plain JSON.', cause);
  }
}

function invalid(message: string, cause?: unknown): StoreError {
  return new StoreError('InvalidMutation', message, cause === undefined ? undefined : { cause });
}

/**
 * Checks an entry as an adapter read it back, before anyone uses it: a byte flipped on
 * disk inside a text column passes SQLite's `integrity_check` but must not reach the
 * runtime as a certificate that does not decode. Cheap by design (no ASN.1 parsing; the
 * followers read every bound entry): the PEM fields must be the blocks `prepareEntry`
 * accepted, and the certificate's bytes must still hash to the stored fingerprint.
 * Returns the entry; otherwise `StoreCorrupt` naming the alias.
 */
export function checkStoredEntry(entry: EntryRecord): EntryRecord {
  const damaged = (what: string) =>
    new StoreError(
      'StoreCorrupt',
      `The stored entry "${entry.alias}" is damaged: ${what}. Restore the data directory from a backup, or import the entry again (--replace).`,
      { details: { alias: entry.alias } },
    );
  if (!KINDS.includes(entry.kind))
    throw damaged(`its kind ${JSON.stringify(entry.kind)} is unknown`);
  const { certificatePem, chainPem, csrPem } = entry;
  if (entry.kind === 'pending') {
    if (certificatePem !== null || csrPem === null || !CSR_BLOCK.test(csrPem.trim())) {
      throw damaged('its CSR is not one PEM CERTIFICATE REQUEST block');
    }
    return entry;
  }
  const blocks = certificatePem?.match(CERTIFICATE_BLOCK) ?? [];
  if (
    certificatePem === null ||
    blocks.length !== 1 ||
    certificatePem.replace(CERTIFICATE_BLOCK, '').trim() !== ''
  ) {
    throw damaged('its certificate is not one PEM CERTIFICATE block');
  }
  if (entry.fingerprint === null || fingerprintOf(blocks[0]!) !== entry.fingerprint) {
    throw damaged('its certificate does not match its stored SHA-256 fingerprint');
  }
  if (chainPem.trim() !== '' && chainPem.replace(CERTIFICATE_BLOCK, '').trim() !== '') {
    throw damaged('its chain holds something other than PEM CERTIFICATE blocks');
  }
  return entry;
}

/** The SHA-256 fingerprint of a PEM block, as `X509Certificate.fingerprint256` spells it. */
function fingerprintOf(block: string): string {
  const base64 = block.replace(/-----[A-Z ]+-----|\s/g, '');
  const hex = createHash('sha256').update(Buffer.from(base64, 'base64')).digest('hex');
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

// The state-dependent errors, shared by the adapters.

export function revisionConflict(current: number, expected: number): StoreError {
  return new StoreError(
    'RevisionConflict',
    `The store is at revision ${current}, but the change was made for revision ${expected}. Reload and try again.`,
  );
}

export function aliasNotFound(alias: string): StoreError {
  return new StoreError('AliasNotFound', `There is no entry with the alias "${alias}".`);
}

export function entryBound(alias: string, bindings: string[]): StoreError {
  return new StoreError(
    'AliasInUse',
    `The entry "${alias}" is bound to ${bindings.join(', ')}; unbind it or bind another entry first.`,
    { details: { alias, bindings } },
  );
}

export function notBindable(alias: string, kind: EntryKind, binding: string): StoreError {
  return new StoreError(
    'InvalidMutation',
    `The entry "${alias}" is a ${kind} entry and can't be bound to ${binding}: only a key-pair entry can.`,
  );
}

export function aliasInUse(alias: string): StoreError {
  return new StoreError('AliasInUse', `An entry with the alias "${alias}" already exists.`);
}

export function entryChanged(alias: string, current: number, expected: number): StoreError {
  return new StoreError(
    'RevisionConflict',
    `The entry "${alias}" was changed at revision ${current}, after revision ${expected} that the change was made for. Reload it and try again.`,
  );
}

export function bindingChanged(
  name: string,
  current: string | null,
  expected: string | null,
): StoreError {
  const says = (alias: string | null) => (alias === null ? 'unbound' : `bound to "${alias}"`);
  return new StoreError(
    'RevisionConflict',
    `The binding "${name}" is ${says(current)}, not ${says(expected)} as the change expected. Reload and try again.`,
  );
}

export function userNotFound(username: string): StoreError {
  return new StoreError('UserNotFound', `There is no user named "${username}".`);
}

export function userRoleChanged(username: string, current: Role, expected: Role): StoreError {
  return new StoreError(
    'RevisionConflict',
    `The user "${username}" is now ${current}, not ${expected} as the change expected. Reload and try again.`,
    { details: { username, role: current, expected } },
  );
}

export function userExists(username: string): StoreError {
  return new StoreError('UserExists', `A user named "${username}" already exists.`);
}

export function tokenNotFound(id: string): StoreError {
  return new StoreError('TokenNotFound', `There is no API token with the id "${id}".`);
}

export function bindingNotFound(name: string): StoreError {
  return new StoreError('InvalidMutation', `There is no binding named "${name}" to remove.`);
}
