import type { RequestListener } from 'node:http';
import { parseCertificate, readValidity } from '../core/certificate.js';
import { CoreError } from '../core/errors.js';
import { parsePemBlocks } from '../core/pem.js';
import { LOCAL_SERVER_ALIAS } from '../service/context.js';
import type { BoundEntry, Mutation, Store } from '../store/store.js';
import { LruCache } from './context-cache.js';
import {
  type Clock,
  type Identity,
  type IdentityRef,
  identityFromPem,
  type RuntimeLogger,
  type SniIdentity,
  systemClock,
} from './identity.js';
import { ensureLocalCa, type LocalServerNames, renewalTime } from './local-ca.js';
import {
  identityFromStore,
  type ResolvedSource,
  resolveStartupSource,
  SOURCE_WORDS,
  type SourceAttempt,
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

export interface SupervisorOptions {
  store: Store;
  /** Where the startup sources are looked up (flags, files, environment). */
  sources: Omit<SourceOptions, 'store' | 'now' | 'log'>;
  /** Names the local CA's server certificate covers, and its common name. */
  localNames: LocalServerNames;
  commonName: string;
  host?: string;
  port: number;
  handler?: RequestListener;
  logger: RuntimeLogger;
  clock?: Clock;
  runtime?: Partial<Omit<TlsRuntimeOptions, 'host' | 'port' | 'handler' | 'logger' | 'clock'>>;
}

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

/** What `GET /api/v1/server/tls` reports. */
export interface ServedStatus {
  source: SourceKind;
  what: string;
  alias: string | null;
  fingerprint: string;
  revision: number;
  lastProbe: { at: string; ok: boolean; details?: unknown } | null;
  attempts: SourceAttempt[];
}

/**
 * Runs one node's TLS identity: resolves the startup source, keeps the local CA's
 * certificate current, follows the store's change feed and applies each revision to
 * the `TlsRuntime`, and turns a failed swap into a recorded rollback. Explicit
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
  #queue: Promise<unknown> = Promise.resolve();
  #stopped = false;

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
    await this.#ensureLocalCa();
    this.#resolved = await this.#resolve();
    // At start the source lookup decides, even when it fell through a broken binding.
    const state = await this.#state(await this.#store.revision(), this.#resolved.identity);
    const result = await this.runtime.start(state);
    this.#unwatch = this.#store.watch(() => this.#enqueue(() => this.#follow()));
    this.#scheduleRenewal();
    return result;
  }

  /** Re-runs the source lookup (SIGHUP) and swaps if the result changed. */
  reload(): Promise<ApplyResult | undefined> {
    return this.#enqueue(async () => {
      this.#resolved = await this.#resolve();
      return this.#follow();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    clearTimeout(this.#renewalTimer);
    await this.#queue;
    await this.runtime.stop();
  }

  /** True when a flag, file or environment source pins the server identity. */
  pinnedBy(): string | undefined {
    const r = this.#resolved;
    return r && PINNING.has(r.source) ? `${SOURCE_WORDS[r.source]} (${r.what})` : undefined;
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
    };
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T | undefined> {
    const run = this.#queue.then(async () => (this.#stopped ? undefined : task()));
    this.#queue = run.catch((err) =>
      this.#logger.error({ err: String(err) }, 'Following the store failed.'),
    );
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
  }

  /**
   * The state a revision says to serve: the pinned source's identity, else the `server`
   * binding, else the local CA's certificate; plus every SNI binding, as a reference the
   * runtime loads on the first handshake that needs it. A broken server binding throws,
   * so that `#follow` rolls it back.
   */
  async #state(revision: number, startIdentity?: Identity): Promise<RuntimeState> {
    const resolved = this.#resolved!;
    const bound = await this.#readBindings();
    let server: Identity;
    if (startIdentity) {
      server = startIdentity;
    } else if (PINNING.has(resolved.source)) {
      server = resolved.identity;
    } else {
      const alias = bound.byName.get('server')?.alias ?? LOCAL_SERVER_ALIAS;
      server = await this.#serverIdentity(alias);
    }
    this.#logServed(server);
    return { revision, server, sni: bound.sni };
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
   * A keystore entry as the server identity: validated (chain, key, validity) the first
   * time it is served at an entry revision, then kept, so a swap back to it reads only
   * its revision; its expiry is checked every time.
   */
  async #serverIdentity(alias: string): Promise<Identity> {
    const now = this.#clock.now();
    const entry = await this.#store.getEntry(alias);
    const cacheKey = `${alias}@${entry?.updatedRevision}`;
    let loaded = this.#serverIdentities.get(cacheKey);
    if (!loaded) {
      const source = alias === LOCAL_SERVER_ALIAS ? 'local-ca' : 'keystore';
      const identity = await identityFromStore(this.#store, alias, source, now);
      loaded = { identity, notAfter: readValidity(identity.certPem).notAfter };
      this.#serverIdentities.set(cacheKey, loaded);
    }
    if (loaded.notAfter < now) {
      throw new CoreError(
        'CertificateExpired',
        `The certificate of "${alias}" expired on ${loaded.notAfter.toISOString()}.`,
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

  /** Applies the store's current revision; on failure records it and rolls the binding back. */
  async #follow(): Promise<ApplyResult | undefined> {
    const revision = await this.#store.revision();
    const previous = this.runtime.current;
    let result: ApplyResult;
    try {
      result = await this.runtime.apply(await this.#state(revision));
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'Unexpected';
      this.#logger.error(
        { revision, code, reason: String(err) },
        'Revision refused before the swap; the previous identity keeps serving.',
      );
      await this.#rollback(revision, previous, [], { code, reason: (err as Error).message });
      return undefined;
    }
    if (!result.ok) {
      this.#logger.error(
        { revision, failures: result.failures },
        'The self-probe failed after the swap; the previous identity was restored.',
      );
      await this.#rollback(
        revision,
        previous,
        result.failures.map((f) => f.binding),
        { code: result.code, failures: result.failures },
      );
    }
    this.#scheduleRenewal();
    return result;
  }

  /**
   * Points the `server` binding, and each SNI binding whose probe failed, back at what
   * was served before (or removes it, when that was not a keystore entry), so the store
   * and every node agree with what is served.
   */
  async #rollback(
    revision: number,
    previous: RuntimeState | undefined,
    failedBindings: string[],
    details: Record<string, unknown>,
  ): Promise<void> {
    const bindings = new Map((await this.#store.listBindings()).map((b) => [b.name, b.alias]));
    const mutations: Mutation[] = [];
    const restore = (name: string, before: SniIdentity | undefined): void => {
      const now = bindings.get(name);
      if (now === undefined || now === before?.alias) return;
      mutations.push(
        before?.alias && before.alias !== LOCAL_SERVER_ALIAS
          ? { type: 'bind', name, alias: before.alias }
          : { type: 'unbind', name },
      );
    };
    restore('server', previous?.server);
    for (const name of new Set(failedBindings)) {
      if (name.startsWith('sni:')) restore(name, previous?.sni.get(name.slice(4)));
    }
    await this.#store.applyChange({
      actor: 'runtime',
      action: 'rollback',
      target: bindings.get('server') ?? 'server',
      details: {
        refusedRevision: revision,
        restored: previous?.server.alias ?? previous?.server.source ?? null,
        ...details,
      },
      mutations,
    });
  }

  async #ensureLocalCa(): Promise<void> {
    const revision = await ensureLocalCa({
      store: this.#store,
      now: this.#clock.now(),
      names: this.#options.localNames,
      commonName: this.#options.commonName,
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
    void this.#store.getEntry(LOCAL_SERVER_ALIAS).then((entry) => {
      if (!entry?.certificatePem || this.#stopped) return;
      if (this.#renewalOf?.revision !== entry.updatedRevision) {
        const cert = parseCertificate(parsePemBlocks(entry.certificatePem)[0]!.der);
        this.#renewalOf = { revision: entry.updatedRevision, at: renewalTime(cert) };
      }
      const wait = this.#renewalOf.at.getTime() - this.#clock.now().getTime();
      clearTimeout(this.#renewalTimer);
      this.#renewalTimer = setTimeout(
        () => void this.renewNow(),
        Math.max(0, Math.min(wait, MAX_RENEWAL_SLEEP_MS)),
      );
      this.#renewalTimer.unref();
    });
  }

  /** Renews the local CA's certificate if it is due (the timer calls this; tests too). */
  async renewNow(): Promise<void> {
    await this.#enqueue(() => this.#ensureLocalCa()).finally(() => this.#scheduleRenewal());
  }

  #ticketKeyStore(): TicketKeyStore {
    return {
      load: () => this.#store.getSecret(TICKET_KEY_SECRET),
      save: async (record) => {
        await this.#store.applyChange({
          actor: 'runtime',
          action: 'rotate-ticket-key',
          mutations: [{ type: 'putSecret', name: TICKET_KEY_SECRET, value: record }],
        });
      },
    };
  }
}

function sourceOf(server: Identity, resolved: ResolvedSource): SourceKind {
  if (PINNING.has(resolved.source)) return resolved.source;
  return server.alias === LOCAL_SERVER_ALIAS || !server.alias ? 'local-ca' : 'keystore';
}
