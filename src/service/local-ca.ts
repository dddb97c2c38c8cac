import { createPrivateKey, randomBytes } from 'node:crypto';
import { type Certificate, parseCertificate } from '../core/certificate.js';
import { type GeneralName, nameConstraintsOf, subjectAltNamesOf } from '../core/extensions.js';
import { createSelfSignedCa, generateKeyPair, issueCertificate } from '../core/generate.js';
import { parseHost } from '../core/hostname.js';
import { parseIpLiteral } from '../core/ip-address.js';
import { NAME_CONSTRAINT_BUDGET, nameConstraintViolation } from '../core/name-constraints.js';
import { parsePemBlocks, toPem } from '../core/pem.js';
import {
  type ChangeInput,
  isStoreError,
  type Mutation,
  type Store,
  StoreError,
} from '../store/store.js';
import { LOCAL_CA_ALIAS, LOCAL_SERVER_ALIAS, type ServiceContext } from './context.js';
import { changeBy, type Principal, RUNTIME_PRINCIPAL } from './principal.js';

/** The local CA lives ten years; the server certificate it issues, 90 days. */
export const LOCAL_CA_DAYS = 3650;
export const LOCAL_SERVER_DAYS = 90;

/** What the local CA's server certificate must cover. */
export interface LocalServerNames {
  dns: string[];
  ip: string[];
}

/** True when `now` is past two thirds of the certificate's life: time to renew. */
export function renewalDue(cert: Certificate, now: Date): boolean {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return now.getTime() >= cert.notBefore.getTime() + (life * 2) / 3;
}

/** The instant at which `renewalDue` becomes true (rounded up to the millisecond). */
export function renewalTime(cert: Certificate): Date {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return new Date(Math.ceil(cert.notBefore.getTime() + (life * 2) / 3));
}

/**
 * The default names: the host name, localhost, 127.0.0.1, ::1 and any extra SANs,
 * canonicalised. An invalid extra name is a `MalformedInput`; an unusable host name
 * (a machine named `my_box`) is left out rather than stopping the server.
 */
export function localServerNames(hostname: string, extra: string[] = []): LocalServerNames {
  const dns = new Set<string>(['localhost']);
  const ip = new Set<string>(['127.0.0.1', '::1']);
  const add = (name: string) => {
    const host = parseHost(name);
    (host.kind === 'IP' ? ip : dns).add(host.value);
  };
  try {
    add(hostname);
  } catch {
    // Not a DNS name: the certificate still covers localhost and the loopback addresses.
  }
  for (const name of extra) add(name);
  return { dns: [...dns].sort(), ip: [...ip].sort() };
}

/**
 * The local CA's subject: a random id, made once when the CA is created and kept in its
 * stored certificate, so two appliances (even of the same host name) never issue under
 * the same name, and a re-issued CA does not share its predecessor's name either.
 */
function localCaSubject(commonName: string, id = randomBytes(4).toString('hex')) {
  const prefix = `certkeeper local CA ${id}`;
  const room = 64 - prefix.length - 3;
  const host = commonName.trim().slice(0, room);
  return { CN: host ? `${prefix} (${host})` : prefix, O: 'certkeeper' };
}

/**
 * The names the local CA may certify, and the one sentence to log when that is not what
 * the operator configured: names outside the CA's name constraints (they are left out of
 * the server certificate, which clients would otherwise refuse as a whole), or
 * constraints asked for that the CA does not carry. Both are mended by re-issuing the
 * local CA, never on its own (every client that trusts it would have to trust anew).
 */
function localCaCoverage(
  ca: Certificate,
  names: LocalServerNames,
  nameConstraints: boolean,
): { names: LocalServerNames; problem?: string } {
  let nc: ReturnType<typeof nameConstraintsOf>;
  try {
    nc = nameConstraintsOf(ca);
  } catch (err) {
    throw localCaDamaged(err);
  }
  const reissue = `run \`certkeeper local-ca reissue${nameConstraints ? ' --name-constraints' : ''}\` (clients must then trust the new local CA)`;
  if (!nc) {
    return nameConstraints
      ? {
          names,
          problem: `The local CA carries no name constraints although localCa.nameConstraints is on; to add them, ${reissue}.`,
        }
      : { names };
  }
  const permitted = (name: GeneralName) =>
    nameConstraintViolation(
      nc,
      { san: [name], subject: [], subjectEmails: [] },
      { remaining: NAME_CONSTRAINT_BUDGET },
    ) === undefined;
  const dns = names.dns.filter((value) => permitted({ kind: 'dns', value }));
  const ip = names.ip.filter((value) => {
    const bytes = parseIpLiteral(value);
    return bytes !== undefined && permitted({ kind: 'ip', bytes });
  });
  const left = [
    ...names.dns.filter((n) => !dns.includes(n)),
    ...names.ip.filter((n) => !ip.includes(n)),
  ];
  if (left.length === 0) return { names };
  return {
    names: { dns, ip },
    problem: `The local CA's name constraints do not permit ${left.join(', ')}, so its server certificate leaves ${left.length === 1 ? 'it' : 'them'} out; to cover ${left.length === 1 ? 'it' : 'them'}, ${reissue}.`,
  };
}

/** The leaf's common name: the host name when the certificate covers it, else its first name. */
function leafCommonName(commonName: string, names: LocalServerNames): string {
  try {
    const host = parseHost(commonName).value;
    if (names.dns.includes(host) || names.ip.includes(host)) return host;
  } catch {
    // An unusable host name (`my_box`) is not among the names.
  }
  return names.dns[0] ?? names.ip[0] ?? 'localhost';
}

function sameNames(cert: Certificate, names: LocalServerNames): boolean {
  const sans = subjectAltNamesOf(cert);
  const norm = (list: string[]) => [...new Set(list.map((n) => n.toLowerCase()))].sort().join(',');
  return norm(sans.dns) === norm(names.dns) && norm(sans.ip) === norm(names.ip);
}

/**
 * Every client that trusts the local CA would stop trusting this server: a damaged one is
 * refused, never re-issued silently.
 */
function localCaDamaged(cause: unknown): StoreError {
  return new StoreError(
    'StoreCorrupt',
    `The local CA entry "${LOCAL_CA_ALIAS}" is damaged: its certificate or private key does not decode. certkeeper does not re-issue the local CA on its own: restore the data directory from a backup, or run \`certkeeper local-ca reissue\` (clients that trusted the old local CA must then trust the new one).`,
    { cause, details: { alias: LOCAL_CA_ALIAS } },
  );
}

/** The certificate of a stored entry; `StoreCorrupt` naming the alias when it does not decode. */
function storedCertificate(alias: string, pem: string): Certificate {
  try {
    const block = parsePemBlocks(pem).find((b) => b.label === 'CERTIFICATE');
    if (block) return parseCertificate(block.der);
  } catch (cause) {
    throw new StoreError('StoreCorrupt', `The stored certificate of "${alias}" is damaged.`, {
      cause,
      details: { alias },
    });
  }
  throw new StoreError('StoreCorrupt', `The stored entry "${alias}" holds no certificate.`, {
    details: { alias },
  });
}

export interface EnsureLocalCaInput {
  store: Store;
  now: Date;
  names: LocalServerNames;
  commonName: string;
  /**
   * A new local CA gets critical name constraints permitting exactly `names` (config
   * `localCa.nameConstraints`); an existing one is not changed (see `localCaCoverage`).
   */
  nameConstraints?: boolean;
  /** Told, in one sentence, when the local CA no longer fits `names` or `nameConstraints`. */
  warn?: (message: string) => void;
  /** Make a new local CA whatever the stored one is (`reissueLocalCa`). */
  reissue?: boolean;
  /** Who asks (the runtime unless given). */
  principal?: Principal;
}

/**
 * Makes a new local CA and a new server certificate from it, replacing the stored ones
 * whatever they hold (a damaged local CA is never re-issued without this explicit call).
 * Clients that trusted the old local CA must trust the new one (`GET /ca/root.pem`).
 */
export async function reissueLocalCa(
  ctx: ServiceContext,
  input: {
    names: LocalServerNames;
    commonName: string;
    nameConstraints?: boolean;
    principal: Principal;
  },
): Promise<{ revision: number; fingerprint: string }> {
  const change = await planLocalCa(
    {
      store: ctx.store,
      now: ctx.now(),
      names: input.names,
      commonName: input.commonName,
      nameConstraints: input.nameConstraints === true,
      reissue: true,
      principal: input.principal,
    },
    await ctx.store.revision(),
  );
  const revision = await ctx.store.applyChange(change!);
  const ca = await ctx.store.getEntry(LOCAL_CA_ALIAS);
  return { revision, fingerprint: ca!.fingerprint! };
}

/**
 * Makes sure the store holds the local CA (bound as `ca`) and a current server
 * certificate issued by it: created on first start, re-issued when two thirds of its
 * life have passed or when the names it must cover changed. Writes at most one change,
 * compare-and-set at the revision it decided on: when another node (or process) wrote
 * first, it reads again and decides once more (the other may have renewed already).
 * Resolves the revision it wrote, or undefined when nothing was due. A damaged local CA
 * (or server certificate) is `StoreCorrupt`: the local CA is never re-issued silently.
 */
export async function ensureLocalCa(input: EnsureLocalCaInput): Promise<number | undefined> {
  for (let attempt = 1; ; attempt++) {
    const change = await planLocalCa(input, await input.store.revision());
    if (!change) return undefined;
    try {
      return await input.store.applyChange(change);
    } catch (err) {
      if (attempt < 2 && isStoreError(err, 'RevisionConflict')) continue;
      throw err;
    }
  }
}

/** The change `ensureLocalCa` makes at `revision`, or undefined when nothing is due. */
async function planLocalCa(
  input: EnsureLocalCaInput,
  revision: number,
): Promise<ChangeInput | undefined> {
  const { store, now } = input;
  let names = input.names;
  const mutations: Mutation[] = [];
  let caCert: Certificate;
  let caKey: ReturnType<typeof createPrivateKey>;
  const damaged = (err: unknown) => {
    throw isStoreError(err, 'StoreCorrupt') ? localCaDamaged(err) : err;
  };
  const caEntry = input.reissue ? undefined : await store.getEntry(LOCAL_CA_ALIAS).catch(damaged);
  const caKeyDer = caEntry ? await store.getPrivateKey(LOCAL_CA_ALIAS).catch(damaged) : undefined;
  let action = 'renew';
  if (caEntry?.certificatePem && caKeyDer) {
    try {
      caCert = storedCertificate(LOCAL_CA_ALIAS, caEntry.certificatePem);
      caKey = createPrivateKey({ key: caKeyDer, format: 'der', type: 'pkcs8' });
    } catch (err) {
      throw localCaDamaged(err);
    }
  } else if (
    !input.reissue &&
    (caEntry || (await store.listBindings()).some((b) => b.alias === LOCAL_CA_ALIAS))
  ) {
    throw localCaDamaged(undefined);
  } else {
    action = input.reissue ? 'reissue-local-ca' : 'create-local-ca';
    const pair = await generateKeyPair({ type: 'ec', curve: 'P-256' });
    caKey = pair.privateKey;
    caCert = parseCertificate(
      await createSelfSignedCa({
        key: caKey,
        subject: localCaSubject(input.commonName),
        days: LOCAL_CA_DAYS,
        now,
        pathLength: 0,
        ...(input.nameConstraints ? { permitted: names } : {}),
      }),
    );
    mutations.push(
      {
        type: 'putEntry',
        entry: {
          alias: LOCAL_CA_ALIAS,
          kind: 'key-pair',
          certificatePem: toPem('CERTIFICATE', caCert.der),
          chainPem: '',
          privateKeyDer: caKey.export({ format: 'der', type: 'pkcs8' }),
          fingerprint: caCert.sha256,
        },
      },
      { type: 'bind', name: 'ca', alias: LOCAL_CA_ALIAS },
    );
  }

  const coverage = localCaCoverage(caCert, names, input.nameConstraints === true);
  if (coverage.problem) input.warn?.(coverage.problem);
  names = coverage.names;

  const serverEntry = input.reissue ? undefined : await store.getEntry(LOCAL_SERVER_ALIAS);
  const current = serverEntry?.certificatePem
    ? storedCertificate(LOCAL_SERVER_ALIAS, serverEntry.certificatePem)
    : undefined;
  const issuedByThisCa = current?.issuer.der.equals(caCert.subject.der) && mutations.length === 0;
  if (current && issuedByThisCa && !renewalDue(current, now) && sameNames(current, names)) {
    return undefined;
  }
  const pair = await generateKeyPair({ type: 'ec', curve: 'P-256' });
  const leaf = parseCertificate(
    await issueCertificate({
      issuer: { certificate: caCert, key: caKey },
      publicKey: pair.publicKey,
      subject: { CN: leafCommonName(input.commonName, names) },
      sans: names,
      days: LOCAL_SERVER_DAYS,
      now,
    }),
  );
  mutations.push({
    type: 'putEntry',
    entry: {
      alias: LOCAL_SERVER_ALIAS,
      kind: 'key-pair',
      certificatePem: toPem('CERTIFICATE', leaf.der),
      chainPem: toPem('CERTIFICATE', caCert.der),
      privateKeyDer: pair.privateKey.export({ format: 'der', type: 'pkcs8' }),
      fingerprint: leaf.sha256,
    },
  });
  return changeBy(input.principal ?? RUNTIME_PRINCIPAL, {
    action: current || input.reissue ? action : 'create-local-ca',
    target: LOCAL_SERVER_ALIAS,
    details: {
      fingerprint: leaf.sha256,
      notAfter: leaf.notAfter.toISOString(),
      dns: names.dns,
      ip: names.ip,
      reason: input.reissue
        ? 'reissued on request'
        : !current
          ? 'first start'
          : renewalDue(current, now)
            ? 'two thirds of life passed'
            : 'names or CA changed',
    },
    expectedRevision: revision,
    mutations,
  });
}
