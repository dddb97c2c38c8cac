import type { RequestListener } from 'node:http';
import { hostname } from 'node:os';
import { parseCertificate, readValidity } from '../core/certificate.js';
import { CodedError, CoreError } from '../core/errors.js';
import { parsePemBlocks } from '../core/pem.js';
import { LOCAL_SERVER_ALIAS } from '../service/context.js';
import { ensureLocalCa, type LocalServerNames, renewalTime } from '../service/local-ca.js';
import { RUNTIME_PRINCIPAL } from '../service/principal.js';
import { reloadRequest } from '../service/reload-sources.js';
import { type RefusedBinding, restoreRefusedBindings } from '../service/restore-bindings.js';
import { pendingConfirmation, rollbackServer } from '../service/server-identity.js';
import { type BoundEntry, isStoreError, type Store } from '../store/store.js';
import { LruCache } from './context-cache.js';
import {
  type Clock,
  type Identity,
  type IdentityRef,
  identityFromPem,
  isRuntimeError,
  type RuntimeLogger,
  type SniIdentity,
  systemClock,
} from './identity.js';
import type { ProbeCheck } from './probe.js';
import {
  identityFromStore,
  type ResolvedSource,
  resolveStartupSource,
  SOURCE_WORDS,
  type SourceAttempt,
  SourceError,
  type SourceKind,
  type SourceOptions,
} from './sources.js';
import type { TicketKeyStore } from './ticket-keys.js';
import {
  type ApplyResult,
  type RuntimeState,
  TlsRuntime,
  type TlsRuntimeOptions,
} from './tls-runtime.js';

/** Sources that pin the server identity: the keystore can't override them. */
const PINNING: ReadonlySet<SourceKind> = new Set([
  'flag',
  'default-location',
  'config',
  'environment',
]);
const TICKET_KEY_SECRET = 'tls-ticket-key';
/** The renewal timer never sleeps longer than this, so a moved system clock is noticed. */
const MAX_RENEWAL_SLEEP_MS = 3600_000;
/** Server identities kept loaded by entry revision, so swapping back and forth reads none again. */
const SERVER_IDENTITY_CACHE_SIZE = 8;
/** A store that can't be read is retried after this, doubling up to the maximum. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 30_000;

export interface SupervisorOptions {
  store: Store;
  /** Where the startup sources are looked up (flags, files, environment). */
  sources: Omit<SourceOptions, 'store' | 'now' | 'log'>;
  /** Names the local CA's server certificate covers, and its common name. */
  localNames: LocalServerNames;
  commonName: string;
  /** A new local CA carries name constraints permitting only `localNames` (config `localCa.nameConstraints`). */
  localNameConstraints?: boolean;
  host?: string;
  port: number;
  handler?: RequestListener;
  logger: RuntimeLogger;
  clock?: Clock;
  runtime?: Partial<Omit<TlsRuntimeOptions, 'host' | 'port' | 'handler' | 'logger' | 'clock'>>;
  /** How this node names itself in the store's node status; `<host>:<port>` unless given. */
  node?: string;
}

/**
 * What a node reports of itself in the store (outside the revision), so that any process
 * on the data directory can see what it serves, what pins it and what it refused: the
 * CLI waits on it after a change, and refuses an activation a pinned node would ignore.
 */
export interface NodeStatus {
  [key: string]: unknown;
  pid: number;
  host: string;
  url: string | null;
  startedAt: string;
  /** The revision whose identities are served. */
  servedRevision: number;
  /** The latest store revision the node has caught up with (served, or refused). */
  reconciledRevision: number;
  /** The source that pins the server identity (flag, file, environment), or null. */
  pinnedBy: string | null;
  source: SourceKind;
  alias: string | null;
  fingerprint: string;
  /** The latest refusals, newest last (a refusal that a rollback undid stays listed here). */
  refusals: Refusal[];
  /** The startup sources the last lookup found broken and passed over, with their codes. */
  refusedSources: SourceAttempt[];
  /** What the last reload asked for through the keystore found, or null before one. */
  lastReload: ReloadReport | null;
}

/** What one reload (asked for through the keystore, `requestReload`) made of the sources. */
export interface ReloadReport {
  /** The request's time, which names it (`ReloadRequest.at`). */
  requestedAt: string;
  /** The source served after the reload, with what it read. */
  source: SourceKind;
  what: string;
  /** The pinning source that broke, whose last good identity keeps serving; or null. */
  keptLastGood: SourceAttempt | null;
  /** Why the sources could not be read again (nothing changed), or null when they were. */
  error: { code: string; message: string } | null;
}

/**
 * How often one follow applies a revision again after refusing part of it: each round
 * refuses at least one more binding, so a few rounds settle any batch.
 */
const MAX_REFOLLOW = 4;

/** Refusals kept in the node status. */
const RECENT_REFUSALS = 10;

/** The store's bindings at a revision, and the SNI state they make. */
interface Bindings {
  revision: number;
  byName: Map<string, BoundEntry>;
  sni: Map<string, SniIdentity>;
}

/** A keystore identity validated once at an entry revision, with its leaf's expiry. */
interface LoadedIdentity {
  identity: Identity;
  notAfter: Date;
}

/** Why the supervisor does not serve what a revision asks for. */
export interface Refusal {
  /** The first revision that asked for it. */
  revision: number;
  /** `server` or `sni:<host>`. */
  binding: string;
  alias: string | null;
  code: string;
  reason: string;
  at: string;
}

/** What `GET /api/v1/server/tls` reports. */
export interface ServedStatus {
  source: SourceKind;
  what: string;
  alias: string | null;
  fingerprint: string;
  revision: number;
  lastProbe: { at: string; ok: boolean; details?: unknown } | null;
  attempts: SourceAttempt[];
  /** The store revision this node has caught up with (served or refused). */
  reconciledRevision: number;
  /** Identities a revision asked for that this node refused, until their binding changes. */
  refused: Refusal[];
  /** The served certificate has expired: it keeps being served, and clients decide. */
  expired: boolean;
}

/** Counts since the node started. */
export interface RuntimeCounters {
  handshakes: number;
  handshakeErrors: number;
  /** Identities installed (the first one included). */
  swaps: number;
  /** Refused changes this node put the previous identity back for. */
  rollbacks: number;
  /** Activations whose confirmation deadline passed and that this node rolled back. */
  unconfirmedRollbacks: number;
}

/** What the next revision wants for one binding, and the key its refusal is remembered by. */
interface Wanted {
  binding: string;
  /** Changes whenever the binding or its entry changes, so a refusal is retried only then. */
  key: string;
  alias: string | null;
}

/**
 * Runs one node's TLS identity: resolves the startup source, keeps the local CA's
 * certificate current, and reconciles the `TlsRuntime` with the store's bindings
 * (STYLE.md §16–17). A follower, not a reactor: it applies what a revision wants once;
 * what it can't serve (the probe failed, the context can't be built, the key can't be
 * read) is refused, remembered by binding and entry revision, and never tried again
 * until that binding or entry changes, while the last good identity keeps serving. It
 * writes only to put a refused binding back where it was, once, with `expectedRevision`,
 * and never an empty change. A store it can't read is retried with backoff. Explicit
 * lifecycle: `start()`, `reload()` (SIGHUP), `stop()`.
 */
export class Supervisor {
  readonly runtime: TlsRuntime;
  readonly #options: SupervisorOptions;
  readonly #store: Store;
  readonly #logger: RuntimeLogger;
  readonly #clock: Clock;
  #resolved: ResolvedSource | undefined;
  #unwatch: (() => void) | undefined;
  #renewalTimer: NodeJS.Timeout | undefined;
  #confirmationTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryMs = RETRY_FIRST_MS;
  #queue: Promise<unknown> = Promise.resolve();
  #stopped = false;
  /** The store revision last reconciled (served, or refused and remembered). */
  #reconciled = -1;
  /** Refusals by `Wanted.key`. */
  readonly #refused = new Map<string, Refusal>();
  #rollbacks = 0;
  #unconfirmedRollbacks = 0;
  readonly #recentRefusals: Refusal[] = [];
  #expiredLogged: string | undefined;
  #node: string | undefined;
  #startedAt = '';
  #publishedStatus = '';
  /** The reload request this node has acted on (`requestReload`), by its time. */
  #reloadSeen: string | undefined;
  #lastReload: ReloadReport | null = null;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.runtime = new TlsRuntime({
      ...options.runtime,
      ...(options.host ? { host: options.host } : {}),
      port: options.port,
      ...(options.handler ? { handler: options.handler } : {}),
      logger: options.logger,
      clock: this.#clock,
      ticketKeyStore: options.runtime?.ticketKeyStore ?? this.#ticketKeyStore(),
    });
  }

  /** Creates or renews the local CA, resolves the source, starts listening and following. */
  async start(): Promise<ApplyResult> {
    try {
      await this.#ensureLocalCa();
    } catch (err) {
      // A damaged local CA is never re-issued on its own; what else can serve, serves.
      if (!isStoreError(err, 'StoreCorrupt')) throw err;
      this.#logger.error({ code: err.code, details: err.details }, err.message);
    }
    this.#resolved = await this.#resolve();
    // A reload asked for before this start is what the start just did.
    this.#reloadSeen = (await reloadRequest(this.#serviceContext()))?.at;
    const revision = await this.#store.revision();
    // At start the source lookup decides, even when it fell through a broken binding;
    // that binding counts as refused until it changes.
    const state = await this.#state(revision, this.#resolved.identity);
    const broken = this.#resolved.attempts.find(
      (a) => a.source === 'keystore' && a.outcome === 'broken',
    );
    if (broken) {
      const wanted = this.#wantedServer();
      if (wanted) this.#refuse(wanted, revision, broken.code ?? 'Unexpected', broken.message ?? '');
    }
    const result = await this.runtime.start(state);
    this.#reconciled = revision;
    this.#startedAt = this.#clock.now().toISOString();
    this.#node = this.#options.node ?? `${hostname()}:${this.runtime.address()?.port}`;
    this.#unwatch = this.#store.watch(
      () => this.#fromTimer(() => this.#enqueue(() => this.#follow())),
      (err) => this.#retryLater(err),
    );
    this.#scheduleRenewal();
    this.#scheduleConfirmationDeadline();
    await this.#publishStatus();
    return result;
  }

  /**
   * Re-runs the source lookup (SIGHUP) and applies the result. A file source that served
   * and is now broken keeps its last good identity; the fall-through is for start only.
   */
  reload(): Promise<ApplyResult | undefined> {
    return this.#enqueue(async () => {
      await this.#reloadSources();
      return this.#follow(true);
    });
  }

  /**
   * Runs the source lookup again, keeping the last good identity of a file that broke;
   * resolves that file's broken attempt when it did.
   */
  async #reloadSources(): Promise<SourceAttempt | undefined> {
    const previous = this.#resolved;
    const next = await this.#resolve();
    const broke = previous
      ? next.attempts.find((a) => a.source === previous.source && a.outcome === 'broken')
      : undefined;
    if (broke && previous && PINNING.has(previous.source)) {
      this.#logger.error(
        { source: broke.source, code: broke.code },
        `Reload: ${broke.what} is broken (${broke.code}: ${broke.message}); the last good certificate from it keeps serving.`,
      );
      this.#resolved = { ...previous, attempts: next.attempts };
      return broke;
    }
    this.#resolved = next;
    return undefined;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    clearTimeout(this.#renewalTimer);
    clearTimeout(this.#confirmationTimer);
    clearTimeout(this.#retryTimer);
    await this.#queue;
    if (this.#node) {
      await this.#store
        .deleteNodeStatus(this.#node)
        .catch((err: unknown) =>
          this.#logger.error({ code: codeOf(err) }, 'Could not remove this node from the store.'),
        );
    }
    await this.runtime.stop();
  }

  /** What this node reports of itself; undefined before it serves. */
  nodeStatus(): NodeStatus | undefined {
    const served = this.status();
    if (!served) return undefined;
    const address = this.runtime.address();
    return {
      pid: process.pid,
      host: hostname(),
      url: address ? `https://${urlHost(address.address)}:${address.port}/` : null,
      startedAt: this.#startedAt,
      servedRevision: served.revision,
      reconciledRevision: this.#reconciled,
      pinnedBy: this.pinnedBy() ?? null,
      source: served.source,
      alias: served.alias,
      fingerprint: served.fingerprint,
      refusals: [...this.#recentRefusals],
      refusedSources: served.attempts.filter((a) => a.outcome === 'broken'),
      lastReload: this.#lastReload,
    };
  }

  /** Writes this node's status to the store when it changed; a failure is logged. */
  async #publishStatus(): Promise<void> {
    const status = this.nodeStatus();
    if (!status || !this.#node || this.#stopped) return;
    const json = JSON.stringify(status);
    if (json === this.#publishedStatus) return;
    try {
      await this.#store.putNodeStatus(this.#node, status);
      this.#publishedStatus = json;
    } catch (err) {
      this.#logger.error(
        { code: codeOf(err), reason: String(err) },
        'Could not record what this node serves in the store.',
      );
    }
  }

  /** True when a flag, file or environment source pins the server identity. */
  pinnedBy(): string | undefined {
    const r = this.#resolved;
    return r && PINNING.has(r.source) ? `${SOURCE_WORDS[r.source]} (${r.what})` : undefined;
  }

  /** What this node counted since it started, for metrics. */
  counters(): RuntimeCounters {
    const stats = this.runtime.status();
    return {
      handshakes: stats.handshakes,
      handshakeErrors: stats.tlsClientErrors,
      swaps: stats.swaps,
      rollbacks: this.#rollbacks,
      unconfirmedRollbacks: this.#unconfirmedRollbacks,
    };
  }

  status(): ServedStatus | undefined {
    const state = this.runtime.current;
    const resolved = this.#resolved;
    if (!state || !resolved) return undefined;
    const probe = this.runtime.lastProbe;
    const server = state.server;
    return {
      source: sourceOf(server, resolved),
      what: server.alias ? `alias "${server.alias}"` : resolved.what,
      alias: server.alias ?? null,
      fingerprint: server.fingerprint,
      revision: state.revision,
      lastProbe: probe
        ? { at: new Date(probe.at).toISOString(), ok: probe.ok, details: probe }
        : null,
      attempts: resolved.attempts,
      reconciledRevision: this.#reconciled,
      refused: [...this.#refused.values()],
      expired: this.#expiredLogged === server.fingerprint,
    };
  }

  /**
   * Runs `task` after the ones before it, then records this node's status. A failure
   * rejects the returned promise, for its caller to log (`#fromTimer` does for the change
   * feed and the timers); the queue itself goes on.
   */
  #enqueue<T>(task: () => Promise<T>): Promise<T | undefined> {
    const run = this.#queue.then(async () => {
      if (this.#stopped) return undefined;
      const result = await task();
      await this.#publishStatus();
      return result;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #resolve(): Promise<ResolvedSource> {
    return resolveStartupSource({
      ...this.#options.sources,
      store: this.#store,
      now: this.#clock.now(),
      log: (a) => this.#logAttempt(a),
    });
  }

  #logAttempt(a: SourceAttempt): void {
    const words = SOURCE_WORDS[a.source];
    if (a.outcome === 'broken') {
      this.#logger.error(
        { source: a.source, code: a.code },
        `Cannot use the HTTPS certificate from ${a.what} (via ${words}): ${a.code}: ${a.message}`,
      );
    } else if (a.outcome === 'absent') {
      this.#logger.info({ source: a.source }, `No HTTPS certificate via ${words}.`);
    }
    for (const w of a.warnings ?? []) {
      this.#logger.warn(
        { source: a.source, code: w.code },
        `The HTTPS certificate from ${a.what} (via ${words}): ${w.code}: ${w.message}`,
      );
    }
  }

  /** What the server binding wants now, or undefined when a file source pins it. */
  #wantedServer(): Wanted | undefined {
    if (PINNING.has(this.#resolved!.source)) return undefined;
    const b = this.#bindings?.byName.get('server');
    if (!b) return { binding: 'server', key: 'server:local', alias: null };
    return {
      binding: 'server',
      key: `server:${b.revision}:${b.alias}@${b.entryRevision}`,
      alias: b.alias,
    };
  }

  /** What an SNI binding wants now. */
  #wantedSni(host: string): Wanted {
    const b = this.#bindings?.byName.get(`sni:${host}`);
    return {
      binding: `sni:${host}`,
      key: `sni:${host}:${b?.revision}:${b?.alias}@${b?.entryRevision}`,
      alias: b?.alias ?? null,
    };
  }

  /**
   * The state a revision says to serve: the pinned source's identity, else the `server`
   * binding, else the local CA's certificate; plus every SNI binding, as a reference the
   * runtime loads on the first handshake that needs it. A binding refused earlier keeps
   * what is served for it now. A server binding that can't be loaded is refused here.
   */
  async #state(revision: number, startIdentity?: Identity): Promise<RuntimeState> {
    const resolved = this.#resolved!;
    const bound = await this.#readBindings();
    this.#forgetChangedRefusals();
    const served = this.runtime.current;
    let server: Identity;
    if (startIdentity) {
      server = startIdentity;
    } else if (!served) {
      server = resolved.identity;
    } else if (PINNING.has(resolved.source)) {
      const refused = this.#refused.has(this.#pinnedWanted(resolved.identity).key);
      server = refused ? served.server : resolved.identity;
    } else {
      const wanted = this.#wantedServer()!;
      if (this.#refused.has(wanted.key)) {
        server = served.server;
      } else {
        try {
          server = await this.#serverIdentity(wanted.alias ?? LOCAL_SERVER_ALIAS);
        } catch (err) {
          if (isTransient(err)) throw err;
          this.#refuse(wanted, revision, codeOf(err), (err as Error).message);
          await this.#restoreBindings(revision, [wanted]);
          server = served.server;
        }
      }
    }
    this.#logServed(server);
    return { revision, server, sni: this.#keepRefusedSni(bound.sni, served) };
  }

  /** Drops each refusal whose binding or entry has changed since: that is a new decision. */
  #forgetChangedRefusals(): void {
    for (const [key, refusal] of this.#refused) {
      const wanted =
        refusal.binding === 'server'
          ? (this.#wantedServer() ?? this.#pinnedWanted(this.#resolved!.identity))
          : this.#wantedSni(refusal.binding.slice(4));
      if (wanted.key !== key) this.#refused.delete(key);
    }
  }

  /** The SNI map with each refused binding serving what it serves now (or nothing). */
  #keepRefusedSni(
    sni: Map<string, SniIdentity>,
    served: RuntimeState | undefined,
  ): Map<string, SniIdentity> {
    let kept: Map<string, SniIdentity> | undefined;
    for (const refusal of this.#refused.values()) {
      if (!refusal.binding.startsWith('sni:')) continue;
      const host = refusal.binding.slice(4);
      if (!sni.has(host) || !this.#refused.has(this.#wantedSni(host).key)) continue;
      kept ??= new Map(sni);
      const before = served?.sni.get(host);
      if (before) kept.set(host, before);
      else kept.delete(host);
    }
    return kept ?? sni;
  }

  /**
   * The bindings as the store has them now. After the first read, only what changed
   * since the last one is read (a change touches a few bindings, not all 100,000), and
   * the SNI map is the same object while no SNI binding changed. A binding count that
   * does not add up (a name was unbound) reads everything again.
   */
  async #readBindings(): Promise<Bindings> {
    const last = this.#bindings;
    if (last) {
      const delta = await this.#store.listBindingChanges(last.revision);
      const added = delta.changed.filter((b) => !last.byName.has(b.name)).length;
      if (delta.revision >= last.revision && last.byName.size + added === delta.total) {
        let sni = last.sni;
        for (const b of delta.changed) {
          last.byName.set(b.name, b);
          if (!b.name.startsWith('sni:')) continue;
          if (sni === last.sni) sni = new Map(sni);
          this.#setSni(sni, b);
        }
        this.#bindings = { revision: delta.revision, byName: last.byName, sni };
        return this.#bindings;
      }
    }
    // Not one snapshot: a commit between the two reads is read again by the next delta.
    const revision = await this.#store.revision();
    const all = await this.#store.listBoundEntries();
    const byName = new Map<string, BoundEntry>();
    const sni = new Map<string, SniIdentity>();
    for (const b of all) {
      byName.set(b.name, b);
      if (b.name.startsWith('sni:')) this.#setSni(sni, b, last?.sni);
    }
    this.#bindings = { revision, byName, sni };
    return this.#bindings;
  }

  /** Puts an SNI binding's reference in `sni`, reusing the one `previous` has for it. */
  #setSni(sni: Map<string, SniIdentity>, b: BoundEntry, previous = sni): void {
    const host = b.name.slice(4);
    if (b.fingerprint === null) {
      sni.delete(host);
      return;
    }
    const known = previous.get(host);
    const ref = `${b.alias}@${b.entryRevision}`;
    sni.set(host, known && 'ref' in known && known.ref === ref ? known : this.#sniRef(b, ref));
  }

  /**
   * A keystore entry as the server identity: validated (chain, key) the first time it is
   * served at an entry revision, then kept, so a swap back to it reads only its revision.
   * An expired certificate keeps serving (clients decide; renewal is the cure), logged
   * once per certificate.
   */
  async #serverIdentity(alias: string): Promise<Identity> {
    const now = this.#clock.now();
    const entry = await this.#store.getEntry(alias);
    const cacheKey = `${alias}@${entry?.updatedRevision}`;
    let loaded = this.#serverIdentities.get(cacheKey);
    if (!loaded) {
      const source = alias === LOCAL_SERVER_ALIAS ? 'local-ca' : 'keystore';
      const identity = await identityFromStore(this.#store, alias, source, now, {
        allowExpired: true,
      });
      loaded = { identity, notAfter: readValidity(identity.certPem).notAfter };
      this.#serverIdentities.set(cacheKey, loaded);
    }
    if (loaded.notAfter < now && this.#expiredLogged !== loaded.identity.fingerprint) {
      this.#expiredLogged = loaded.identity.fingerprint;
      this.#logger.error(
        { alias, sha256: loaded.identity.fingerprint, notAfter: loaded.notAfter.toISOString() },
        `The served certificate of "${alias}" expired on ${loaded.notAfter.toISOString()}; it keeps being served and clients will reject it: renew it.`,
      );
    }
    return loaded.identity;
  }

  /**
   * The reference of an SNI binding to its entry at a revision: `key` (`alias@revision`)
   * is the context cache key, so the names of one entry share one context, and an
   * unchanged entry keeps it across revisions. Its entry was validated on import; the runtime
   * loads it on the first handshake for the name, and a damaged one fails those
   * handshakes, logged once.
   */
  #sniRef(b: BoundEntry, key: string): IdentityRef {
    const store = this.#store;
    const alias = b.alias;
    const ref: IdentityRef = {
      ref: key,
      fingerprint: b.fingerprint!,
      alias,
      source: 'keystore',
      async load() {
        const [entry, privateKey] = await Promise.all([
          store.getEntry(alias),
          store.getPrivateKey(alias),
        ]);
        if (!entry?.certificatePem || !privateKey) {
          throw new CoreError('NoPrivateKey', `The entry "${alias}" has no certificate or key.`);
        }
        return identityFromPem({
          key: privateKey,
          cert: entry.certificatePem,
          chain: entry.chainPem,
          source: 'keystore',
          alias,
        });
      },
    };
    return ref;
  }

  #bindings: Bindings | undefined;
  readonly #serverIdentities = new LruCache<string, LoadedIdentity>(SERVER_IDENTITY_CACHE_SIZE);
  #lastLogged: string | undefined;
  #logServed(server: Identity): void {
    if (this.#lastLogged === server.fingerprint) return;
    this.#lastLogged = server.fingerprint;
    const resolved = this.#resolved!;
    const source = sourceOf(server, resolved);
    const what = server.alias ? `keystore entry "${server.alias}"` : resolved.what;
    this.#logger.info(
      { source, alias: server.alias ?? null, sha256: server.fingerprint },
      `Setting up HTTPS certificate from ${what} (via ${SOURCE_WORDS[source]}) sha256=${server.fingerprint}`,
    );
  }

  /**
   * Reconciles the runtime with the store's latest revision. Does nothing when that
   * revision was reconciled already (unless `force`: a reload). A store that can't be
   * read is retried with backoff; an identity the runtime refuses is remembered.
   */
  async #follow(force = false, depth = 0): Promise<ApplyResult | undefined> {
    let revision: number;
    let state: RuntimeState;
    try {
      revision = await this.#store.revision();
      if (revision === this.#reconciled && !force) return undefined;
      // A reload asked for through the keystore (any process, any node): as SIGHUP.
      const request = await reloadRequest(this.#serviceContext());
      if (request && request.at !== this.#reloadSeen) {
        this.#logger.info({ by: request.by }, 'Reloading the certificate sources, as asked.');
        let keptLastGood: SourceAttempt | undefined;
        let error: ReloadReport['error'] = null;
        try {
          keptLastGood = await this.#reloadSources();
        } catch (err) {
          // Answered as failed rather than left pending: whoever asked learns why, and a
          // source that stays broken does not stop this node following the store.
          error = {
            code: err instanceof SourceError ? (err.attempt.code ?? 'Unexpected') : codeOf(err),
            message: err instanceof Error ? err.message : String(err),
          };
          throw err;
        } finally {
          this.#reloadSeen = request.at;
          const served = this.#resolved!;
          this.#lastReload = {
            requestedAt: request.at,
            source: served.source,
            what: served.what,
            keptLastGood: keptLastGood ?? null,
            error,
          };
        }
      }
      state = await this.#state(revision);
    } catch (err) {
      this.#retryLater(err);
      return undefined;
    }
    this.#retryMs = RETRY_FIRST_MS;
    clearTimeout(this.#retryTimer);
    const previous = this.runtime.current;
    let result: ApplyResult;
    try {
      result = await this.runtime.apply(state);
    } catch (err) {
      if (!isRuntimeError(err, 'ContextBuildFailed') || depth >= MAX_REFOLLOW) throw err;
      // Only the server identity's context is built before the swap.
      const wanted = this.#wantedServer() ?? this.#pinnedWanted(state.server);
      this.#refuse(wanted, revision, err.code, err.message);
      this.#reconciled = revision;
      await this.#restoreBindings(revision, [wanted]);
      // Once more, now serving what was served for the refused binding.
      return this.#follow(true, depth + 1);
    }
    this.#reconciled = revision;
    if (!result.ok) {
      const refused: Wanted[] = [];
      for (const f of result.failures) {
        const sni = f.binding.startsWith('sni:') ? f.binding.slice(4) : undefined;
        const wanted = sni
          ? this.#wantedSni(sni)
          : (this.#wantedServer() ?? this.#pinnedWanted(state.server));
        if (refused.some((w) => w.key === wanted.key)) continue;
        refused.push(wanted);
        // The context cache knows why an SNI identity failed better than the probe's socket.
        const identity = sni ? state.sni.get(sni) : undefined;
        const cause = identity && this.runtime.contexts.failure(identity);
        this.#refuse(
          wanted,
          revision,
          cause?.code ?? f.error ?? 'ProbeFailed',
          cause?.message ?? probeSentence(f),
        );
      }
      await this.#restoreBindings(revision, refused, previous, {
        code: result.code,
        failures: result.failures,
      });
      // The runtime put the whole previous state back; serve the rest of this revision
      // (the changes that were not refused) with the refused bindings as they were.
      if (depth < MAX_REFOLLOW) return this.#follow(true, depth + 1);
    }
    this.#scheduleRenewal();
    this.#scheduleConfirmationDeadline();
    return result;
  }

  /** The refusal key of an identity a file source pins (only a reload changes it). */
  #pinnedWanted(server: Identity): Wanted {
    return { binding: 'server', key: `pinned:${server.fingerprint}`, alias: null };
  }

  #refuse(wanted: Wanted, revision: number, code: string, reason: string): void {
    if (this.#refused.has(wanted.key)) return;
    // A binding has one current refusal: an older one for the same binding is stale.
    for (const [key, r] of this.#refused)
      if (r.binding === wanted.binding) this.#refused.delete(key);
    const refusal: Refusal = {
      revision,
      binding: wanted.binding,
      alias: wanted.alias,
      code,
      reason,
      at: this.#clock.now().toISOString(),
    };
    this.#refused.set(wanted.key, refusal);
    this.#recentRefusals.push(refusal);
    if (this.#recentRefusals.length > RECENT_REFUSALS) this.#recentRefusals.shift();
    // Recorded once: the same binding and entry are not tried again, so not refused again.
    this.#store
      .appendAudit({
        actor: 'runtime',
        source: this.#node ?? hostname(),
        action: 'refuse',
        target: wanted.binding,
        outcome: 'refused',
        details: { ...refusal },
      })
      .catch((err: unknown) =>
        this.#logger.error({ code: codeOf(err) }, 'Could not record the refusal in the audit log.'),
      );
    this.#logger.error(
      { ...refusal },
      `Refused ${wanted.binding}${wanted.alias ? ` = "${wanted.alias}"` : ''} of revision ${revision}: ${code}: ${reason}. What was served keeps serving until that binding changes.`,
    );
  }

  /** Retries a failed store read with backoff; the served identities keep serving. */
  #retryLater(err: unknown): void {
    this.#logger.error(
      { code: codeOf(err), reason: String(err), retryInMs: this.#retryMs },
      'Cannot read the store; the served identities keep serving, retrying.',
    );
    clearTimeout(this.#retryTimer);
    if (this.#stopped) return;
    this.#retryTimer = setTimeout(
      () => this.#fromTimer(() => this.#enqueue(() => this.#follow())),
      this.#retryMs,
    );
    this.#retryTimer.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }

  /**
   * Puts each refused binding back where it was before `revision` (the alias served for
   * it, or unbound when it served no keystore entry), so that the store and every node
   * agree with what is served: one change, guarded by `expectedRevision`, and none when
   * there is nothing to put back (a renewed entry under the same alias) or the store
   * moved on (someone else acted; the next revision is followed instead).
   */
  async #restoreBindings(
    revision: number,
    refused: Wanted[],
    previous: RuntimeState | undefined = this.runtime.current,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    const bindings: RefusedBinding[] = [];
    for (const wanted of refused) {
      if (wanted.alias === null) continue;
      const before =
        wanted.binding === 'server' ? previous?.server : previous?.sni.get(wanted.binding.slice(4));
      const served = before?.alias && before.alias !== LOCAL_SERVER_ALIAS ? before.alias : null;
      bindings.push({ name: wanted.binding, refused: wanted.alias, served });
    }
    const first = this.#refused.get(refused[0]!.key);
    try {
      const written = await restoreRefusedBindings(this.#serviceContext(), {
        refusedRevision: revision,
        bindings,
        principal: RUNTIME_PRINCIPAL,
        details: {
          restored: previous?.server.alias ?? previous?.server.source ?? null,
          code: first?.code,
          reason: first?.reason,
          ...details,
        },
      });
      // Rollbacks this node wrote: none when nothing was to put back or the store moved on.
      if (written !== undefined) this.#rollbacks++;
    } catch (err) {
      this.#logger.error(
        { code: codeOf(err), reason: String(err) },
        'Could not record the rollback in the store; what was served keeps serving.',
      );
    }
  }

  async #ensureLocalCa(): Promise<void> {
    const revision = await ensureLocalCa({
      store: this.#store,
      now: this.#clock.now(),
      names: this.#options.localNames,
      commonName: this.#options.commonName,
      nameConstraints: this.#options.localNameConstraints === true,
      warn: (message) => this.#logger.warn({ alias: 'certkeeper-local-ca' }, message),
    });
    if (revision !== undefined)
      this.#logger.info({ revision }, 'Issued the local CA server certificate.');
  }

  /** The local server certificate's renewal time, by the entry revision it was read at. */
  #renewalOf: { revision: number; at: Date } | undefined;

  /** Wakes at the local certificate's renewal time (at most hourly) to renew it. */
  #scheduleRenewal(): void {
    clearTimeout(this.#renewalTimer);
    if (this.#stopped) return;
    this.#renewalTimeFromStore().then(
      (at) => {
        if (this.#stopped) return;
        const wait = at ? at.getTime() - this.#clock.now().getTime() : MAX_RENEWAL_SLEEP_MS;
        clearTimeout(this.#renewalTimer);
        this.#renewalTimer = setTimeout(
          () => this.#fromTimer(() => this.renewNow()),
          Math.max(0, Math.min(wait, MAX_RENEWAL_SLEEP_MS)),
        );
        this.#renewalTimer.unref();
      },
      (err) => {
        this.#logger.error(
          { code: codeOf(err), reason: String(err) },
          'Cannot read the local server certificate to schedule its renewal; trying again in an hour.',
        );
        clearTimeout(this.#renewalTimer);
        this.#renewalTimer = setTimeout(
          () => this.#fromTimer(() => this.renewNow()),
          MAX_RENEWAL_SLEEP_MS,
        );
        this.#renewalTimer.unref();
      },
    );
  }

  async #renewalTimeFromStore(): Promise<Date | undefined> {
    const entry = await this.#store.getEntry(LOCAL_SERVER_ALIAS);
    const block = entry?.certificatePem ? parsePemBlocks(entry.certificatePem)[0] : undefined;
    if (!entry || !block) return undefined;
    if (this.#renewalOf?.revision !== entry.updatedRevision) {
      this.#renewalOf = {
        revision: entry.updatedRevision,
        at: renewalTime(parseCertificate(block.der)),
      };
    }
    return this.#renewalOf.at;
  }

  /**
   * Wakes at the deadline of an activation waiting for its confirmation (at most hourly,
   * so a moved clock is noticed). The deadline is in the store, so a restart inside the
   * window still rolls back when it passes.
   */
  #scheduleConfirmationDeadline(): void {
    clearTimeout(this.#confirmationTimer);
    if (this.#stopped) return;
    pendingConfirmation(this.#serviceContext()).then(
      (pending) => {
        clearTimeout(this.#confirmationTimer);
        if (!pending || this.#stopped) return;
        const wait = Date.parse(pending.deadline) - this.#clock.now().getTime();
        this.#confirmationTimer = setTimeout(
          () => this.#fromTimer(() => this.rollBackUnconfirmed()),
          Math.max(0, Math.min(wait, MAX_RENEWAL_SLEEP_MS)),
        );
        this.#confirmationTimer.unref();
      },
      (err) =>
        this.#logger.error(
          { code: codeOf(err), reason: String(err) },
          'Cannot read the pending confirmation; the next change reads it again.',
        ),
    );
  }

  /**
   * Rolls back an activation whose confirmation deadline has passed (the timer calls
   * this; tests too): one change, compare-and-set on the revision read, so that of
   * several nodes exactly one writes it, and nothing when it was confirmed meanwhile.
   */
  async rollBackUnconfirmed(): Promise<void> {
    await this.#enqueue(async () => {
      const ctx = this.#serviceContext();
      const pending = await pendingConfirmation(ctx);
      if (!pending || Date.parse(pending.deadline) > this.#clock.now().getTime()) return;
      try {
        const { revision, restored } = await rollbackServer(ctx, {
          principal: RUNTIME_PRINCIPAL,
          expectedRevision: await this.#store.revision(),
          reason: `not confirmed before ${pending.deadline}`,
        });
        this.#unconfirmedRollbacks++;
        this.#logger.error(
          { revision, alias: pending.alias, restored },
          `The activation of "${pending.alias}" was not confirmed before ${pending.deadline}; the previous identity is served again.`,
        );
      } catch (err) {
        // Someone acted first (confirmed, rolled back, another node): follow what they did.
        if (!isStoreError(err, 'RevisionConflict')) throw err;
      }
    }).finally(() => this.#scheduleConfirmationDeadline());
  }

  /** Runs what a timer started; a failure is logged, never an unhandled rejection. */
  #fromTimer(task: () => Promise<unknown>): void {
    task().catch((err: unknown) =>
      this.#logger.error(
        { code: codeOf(err), reason: String(err) },
        'A scheduled task of the supervisor failed; it runs again at its next turn.',
      ),
    );
  }

  #serviceContext() {
    return { store: this.#store, now: () => this.#clock.now(), trusted: [] };
  }

  /** Renews the local CA's certificate if it is due (the timer calls this; tests too). */
  async renewNow(): Promise<void> {
    await this.#enqueue(() => this.#ensureLocalCa()).finally(() => this.#scheduleRenewal());
  }

  #ticketKeyStore(): TicketKeyStore {
    return {
      // Outside the revision: a rotation wakes no follower and changes no ETag.
      load: () => this.#store.getRuntimeSecret(TICKET_KEY_SECRET),
      save: (record) => this.#store.putRuntimeSecret(TICKET_KEY_SECRET, record),
    };
  }
}

/**
 * The host part of a URL for a listening address: `name` (this host's name) for a
 * wildcard address, an IPv6 address in brackets.
 */
export function urlHost(address: string, name: string = hostname()): string {
  const shown = address === '0.0.0.0' || address === '::' ? name : address;
  return shown.includes(':') ? `[${shown}]` : shown;
}

function sourceOf(server: Identity, resolved: ResolvedSource): SourceKind {
  if (PINNING.has(resolved.source)) return resolved.source;
  return server.alias === LOCAL_SERVER_ALIAS || !server.alias ? 'local-ca' : 'keystore';
}

/**
 * True for an error that says the store can't be read right now (locked, unavailable, an
 * I/O error), to retry later; anything else that goes wrong while loading an identity
 * (damaged, missing key, not decryptable, refused by OpenSSL) is the identity's fault.
 */
function isTransient(err: unknown): boolean {
  if (isStoreError(err)) return err.code === 'StoreUnavailable' || err.code === 'StoreReadOnly';
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

function codeOf(err: unknown): string {
  if (err instanceof CodedError) return err.code;
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'Unexpected';
}

function probeSentence(f: ProbeCheck): string {
  const name = f.servername === null ? 'without SNI' : `for "${f.servername}"`;
  if (f.served && f.error === 'FingerprintMismatch') {
    return `the self-probe ${name} was served sha256=${f.served}, not the expected sha256=${f.expected}`;
  }
  return `the self-probe ${name} failed: ${f.error}`;
}
