import { createPrivateKey, type KeyObject } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Certificate } from '../core/certificate.js';
import { buildChain } from '../core/chain.js';
import { isSelfSigned } from '../core/describe.js';
import { CodedError, CoreError } from '../core/errors.js';
import { matchKeyToCertificate } from '../core/keys.js';
import { toPem } from '../core/pem.js';
import { readMaterial } from '../core/read.js';
import { LOCAL_SERVER_ALIAS, type ServiceContext } from '../service/context.js';
import { assembleKeyPair, trustAnchors } from '../service/key-pair.js';
import { readInputFile } from '../service/read-input-file.js';
import type { Store } from '../store/store.js';
import { type Identity, RuntimeError } from './identity.js';
import { probeIdentity } from './probe.js';

/** Where the served identity came from, in the order they are tried (DESIGN.md). */
export type SourceKind =
  | 'flag'
  | 'default-location'
  | 'config'
  | 'environment'
  | 'keystore'
  | 'local-ca';

/** Human words for each source, as the log line says them. */
export const SOURCE_WORDS: Record<SourceKind, string> = {
  flag: 'command-line flag',
  'default-location': 'default location lookup',
  config: 'config file',
  environment: 'environment',
  keystore: 'keystore binding',
  'local-ca': 'local CA',
};

/** One source that was looked at, and what came of it. */
export interface SourceAttempt {
  source: SourceKind;
  /** e.g. `certificate file data/ssl/server.crt`, `alias "web"`. */
  what: string;
  outcome: 'used' | 'absent' | 'broken';
  code?: string;
  message?: string;
  /** What the import validation found that does not block a used source (an untrusted root…). */
  warnings?: { code: string; message: string }[];
}

export interface ResolvedSource {
  source: SourceKind;
  what: string;
  identity: Identity;
  attempts: SourceAttempt[];
}

/** The file names each file-based source may point at. */
export interface FileSource {
  certificate?: string | undefined;
  privateKey?: string | undefined;
  keyPassphraseFile?: string | undefined;
  /** The key entry to take from a keystore (PKCS#12) with several: its alias. */
  keyAlias?: string | undefined;
  /** A directory holding `server.crt` + `server.key`, or `server.p12` + `server.p12.pass`. */
  directory?: string | undefined;
}

export interface SourceOptions {
  dataDir: string;
  flags: FileSource;
  config: FileSource;
  /** The process environment (CERTKEEPER_SSL_CERT / _KEY / _KEY_PASSPHRASE: a path or PEM text). */
  env: Record<string, string | undefined>;
  store: Store;
  now: Date;
  /**
   * The trust anchors an import is validated against besides the keystore's `trusted`
   * entries (the server passes Node's bundled roots, as its imports do); none when absent.
   */
  trusted?: Certificate[];
  /** A broken source is fatal instead of falling through (`--strict-tls`). */
  strict: boolean;
  log: (attempt: SourceAttempt) => void;
}

/** A source that is present but unusable; `strict` turns it into a start-up failure. */
export class SourceError extends Error {
  override readonly name = 'SourceError';
  constructor(
    readonly attempt: SourceAttempt,
    options?: { cause?: unknown },
  ) {
    super(`${SOURCE_WORDS[attempt.source]}: ${attempt.what}: ${attempt.message}`, options);
  }
}

/**
 * Resolves the served identity by trying each source in order: flags, default file
 * location, config file, environment, keystore `server` binding, local CA. A file
 * source's identity is validated as an import is; it and a keystore binding's must also
 * complete a test handshake. Each step is reported through `log`; a broken source falls
 * through to the next one unless `strict`. The local CA always answers (the caller has
 * ensured it exists).
 */
export async function resolveStartupSource(options: SourceOptions): Promise<ResolvedSource> {
  const attempts: SourceAttempt[] = [];
  const fileSources: [SourceKind, FileSource | undefined][] = [
    ['flag', options.flags],
    ['default-location', { directory: join(options.dataDir, 'ssl') }],
    ['config', options.config],
    ['environment', envSource(options.env)],
  ];
  for (const [source, files] of fileSources) {
    const result = await tryFiles(source, files ?? {}, options);
    attempts.push(result.attempt);
    options.log(result.attempt);
    if (result.identity)
      return { source, what: result.attempt.what, identity: result.identity, attempts };
  }
  for (const [source, alias] of [
    ['keystore', (await options.store.listBindings()).find((b) => b.name === 'server')?.alias],
    ['local-ca', LOCAL_SERVER_ALIAS],
  ] as const) {
    const what = `alias "${alias}"`;
    if (!alias) {
      const attempt: SourceAttempt = { source, what: 'no server binding', outcome: 'absent' };
      attempts.push(attempt);
      options.log(attempt);
      continue;
    }
    try {
      // An expired keystore certificate is served, as it is while running (clients
      // decide); falling through would change the identity behind the admin's back.
      const identity = await identityFromStore(options.store, alias, source, options.now, {
        allowExpired: true,
      });
      // The local CA is certkeeper's own and the runtime probes it at start anyway.
      if (source === 'keystore') await assertHandshake(identity);
      const attempt: SourceAttempt = { source, what, outcome: 'used' };
      attempts.push(attempt);
      options.log(attempt);
      return { source, what, identity, attempts };
    } catch (err) {
      const attempt = brokenAttempt(source, what, err);
      attempts.push(attempt);
      options.log(attempt);
      if (options.strict || source === 'local-ca') throw new SourceError(attempt, { cause: err });
    }
  }
  throw new Error('unreachable: the local CA source always answers or throws');
}

/** The serving identity of a stored key-pair entry. */
export async function identityFromStore(
  store: Store,
  alias: string,
  source: string,
  now: Date,
  options: { allowExpired?: boolean } = {},
): Promise<Identity> {
  const entry = await store.getEntry(alias);
  if (!entry?.certificatePem) {
    throw new CoreError('NoCertificate', `The entry "${alias}" holds no certificate.`);
  }
  const keyDer = await store.getPrivateKey(alias);
  if (!keyDer) throw new CoreError('NoPrivateKey', `The entry "${alias}" holds no private key.`);
  const key = createPrivateKey({ key: keyDer, format: 'der', type: 'pkcs8' });
  const material = await readMaterial(Buffer.from(entry.certificatePem + entry.chainPem));
  const certs = material.certificates.map((c) => c.certificate);
  return identityOf(key, certs, now, source, alias, options);
}

function envSource(env: Record<string, string | undefined>): FileSource | undefined {
  if (!env.CERTKEEPER_SSL_CERT && !env.CERTKEEPER_SSL_KEY) return undefined;
  return {
    certificate: env.CERTKEEPER_SSL_CERT,
    privateKey: env.CERTKEEPER_SSL_KEY,
    keyPassphraseFile: env.CERTKEEPER_SSL_KEY_PASSPHRASE_FILE,
    keyAlias: env.CERTKEEPER_SSL_KEY_ALIAS,
  };
}

/**
 * PEM text given inline (the environment allows it) or the file it names, read with a
 * bound: a directory, FIFO or device is `FileUnreadable` and a file over 1 MiB is
 * `InputTooLarge`, both naming the file, so a bad path makes a broken source, never a hang.
 */
async function readValue(value: string): Promise<Buffer> {
  return value.includes('-----BEGIN ') ? Buffer.from(value) : readInputFile(value);
}

/** `certificate file data/ssl/server.crt` (relative to the working directory when inside it). */
function describeFile(kind: string, value: string): string {
  if (value.includes('-----BEGIN ')) return `${kind} given inline`;
  const rel = relative(process.cwd(), value);
  return `${kind} file ${rel && !rel.startsWith('..') ? rel : value}`;
}

async function tryFiles(
  source: SourceKind,
  files: FileSource,
  options: SourceOptions,
): Promise<{ attempt: SourceAttempt; identity?: Identity }> {
  let certificate = files.certificate;
  let privateKey = files.privateKey;
  let passphraseFile = files.keyPassphraseFile;
  if (!certificate && !privateKey && files.directory) {
    const dir = files.directory;
    const [crt, key, p12] = await Promise.all(
      ['server.crt', 'server.key', 'server.p12'].map((n) => exists(join(dir, n))),
    );
    if (crt || key) {
      certificate = join(dir, 'server.crt');
      privateKey = join(dir, 'server.key');
    } else if (p12) {
      certificate = join(dir, 'server.p12');
      passphraseFile = join(dir, 'server.p12.pass');
    }
  }
  if (!certificate && !privateKey) {
    return { attempt: { source, what: 'nothing configured', outcome: 'absent' } };
  }
  const what = describeFile('certificate', certificate ?? privateKey!);
  try {
    if (!certificate)
      throw new CoreError('NoCertificate', 'A private key is configured without its certificate.');
    const password = passphraseFile
      ? (await readInputFile(passphraseFile)).toString('utf8').split(/\r?\n/)[0]
      : undefined;
    const inputs = [certificate, ...(privateKey ? [privateKey] : [])];
    const certs: Certificate[] = [];
    const keys: KeyObject[] = [];
    for (const input of inputs) {
      const material = await readMaterial(await readValue(input), {
        password,
        keyAlias: files.keyAlias,
      });
      const problem = material.problems[0];
      if (problem) throw new CoreError(problem.code, problem.message);
      certs.push(...material.certificates.map((c) => c.certificate));
      keys.push(...material.keys.map((k) => k.key));
    }
    const key = keys.find((k) => certs.some((c) => matchKeyToCertificate(k, c))) ?? keys[0];
    if (!key) throw new CoreError('NoPrivateKey', 'No private key was found.');
    const { identity, warnings } = await validatedIdentity(source, key, certs, options);
    await assertHandshake(identity);
    const attempt: SourceAttempt = { source, what, outcome: 'used' };
    if (warnings.length > 0) attempt.warnings = warnings;
    return { attempt, identity };
  } catch (err) {
    const attempt = brokenAttempt(source, what, err);
    if (options.strict) {
      options.log(attempt);
      throw new SourceError(attempt, { cause: err });
    }
    return { attempt };
  }
}

/**
 * The identity of a file source, validated as `certkeeper import` validates a key pair
 * (`assembleKeyPair`: the same policy, fatal codes and warnings, against the same anchors)
 * so that no source serves what an import refuses. A certificate not valid yet is refused
 * too: an import may store it for later, a source would serve it now.
 */
async function validatedIdentity(
  source: SourceKind,
  key: KeyObject,
  certs: Certificate[],
  options: SourceOptions,
): Promise<{ identity: Identity; warnings: { code: string; message: string }[] }> {
  const ctx: ServiceContext = {
    store: options.store,
    now: () => options.now,
    trusted: options.trusted ?? [],
  };
  const { leaf, chain, warnings } = assembleKeyPair(
    ctx,
    source,
    certs,
    key,
    await trustAnchors(ctx),
  );
  if (leaf.notBefore > options.now) {
    throw new CoreError(
      'CertificateNotYetValid',
      `The certificate "${leaf.subject.rfc4514}" is valid only from ${leaf.notBefore.toISOString()}.`,
    );
  }
  return {
    identity: {
      keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
      certPem: [leaf, ...chain].map((c) => toPem('CERTIFICATE', c.der)).join(''),
      fingerprint: leaf.sha256,
      source: SOURCE_WORDS[source],
    },
    warnings: warnings.map((w) => ({ code: w.code, message: w.message })),
  };
}

/**
 * Throws unless a Node client completes a handshake with `identity` (`ContextBuildFailed`
 * when OpenSSL refuses to load it, `ProbeFailed` when the handshake fails), so that a
 * source no client can use falls through instead of being announced as serving.
 */
async function assertHandshake(identity: Identity): Promise<void> {
  const check = await probeIdentity(identity);
  if (check.ok) return;
  throw new RuntimeError(
    'ProbeFailed',
    `A test handshake with this certificate (sha256=${identity.fingerprint}) failed: ${check.error}; no client could connect.`,
    { details: { fingerprint: identity.fingerprint, error: check.error } },
  );
}

/**
 * A serving identity from a key and certificates in any order: the leaf is the one the
 * key belongs to, the chain is ordered, a self-signed root is left out, and the leaf
 * must be valid now.
 */
export function identityOf(
  key: KeyObject,
  certs: Certificate[],
  now: Date,
  source: string,
  alias?: string,
  options: { allowExpired?: boolean } = {},
): Identity {
  // At `now`, so that a valid path is served rather than, say, an expired cross-sign.
  const assembly = buildChain(certs, { key, time: now });
  const { leaf } = assembly;
  if (leaf.notAfter < now && !options.allowExpired) {
    throw new CoreError(
      'CertificateExpired',
      `The certificate "${leaf.subject.rfc4514}" expired on ${leaf.notAfter.toISOString()}.`,
    );
  }
  if (leaf.notBefore > now) {
    throw new CoreError(
      'CertificateNotYetValid',
      `The certificate "${leaf.subject.rfc4514}" is valid only from ${leaf.notBefore.toISOString()}.`,
    );
  }
  const chain = assembly.chain.slice(1).filter((c) => !isSelfSigned(c));
  return {
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    certPem: [leaf, ...chain].map((c) => toPem('CERTIFICATE', c.der)).join(''),
    fingerprint: leaf.sha256,
    source,
    ...(alias ? { alias } : {}),
  };
}

function brokenAttempt(source: SourceKind, what: string, err: unknown): SourceAttempt {
  // A coded error of core/, store/ or service/ (readInputFile's FileUnreadable).
  if (err instanceof CodedError)
    return { source, what, outcome: 'broken', code: err.code, message: err.message };
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR') {
    return {
      source,
      what,
      outcome: 'broken',
      code: 'FileUnreadable',
      message: `cannot read ${e.path} (${e.code})`,
    };
  }
  const code = (err as { code?: string })?.code ?? 'Unexpected';
  return { source, what, outcome: 'broken', code, message: (err as Error)?.message ?? String(err) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
