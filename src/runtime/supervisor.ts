import type { RequestListener } from 'node:http';
import { parseCertificate } from '../core/certificate.js';
import { parsePemBlocks } from '../core/pem.js';
import { LOCAL_SERVER_ALIAS } from '../service/context.js';
import type { Mutation, Store } from '../store/store.js';
import {
  type Clock,
  type Identity,
  identityFromPem,
  type RuntimeLogger,
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

/** An SNI identity with the entry revision it was loaded at. */
interface SniIdentity {
  updatedRevision: number;
  identity: Identity;
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
   * binding, else the local CA's certificate; plus every SNI binding. A broken binding
   * throws, so that `#follow` rolls it back.
   */
  async #state(revision: number, startIdentity?: Identity): Promise<RuntimeState> {
    const resolved = this.#resolved!;
    const now = this.#clock.now();
    const bindings = await this.#store.listBindings();
    let server: Identity;
    if (startIdentity) {
      server = startIdentity;
    } else if (PINNING.has(resolved.source)) {
      server = resolved.identity;
    } else {
      const alias = bindings.find((b) => b.name === 'server')?.alias ?? LOCAL_SERVER_ALIAS;
      const source = alias === LOCAL_SERVER_ALIAS ? 'local-ca' : 'keystore';
      server = await identityFromStore(this.#store, alias, source, now);
    }
    const sni = new Map<string, Identity>();
    const sniBindings = bindings.filter((b) => b.name.startsWith('sni:'));
    if (sniBindings.length > 0) {
      const entries = new Map((await this.#store.listEntries()).map((e) => [e.alias, e]));
      const loaded = new Map<string, SniIdentity>();
      for (const b of sniBindings) {
        const identity = await this.#sniIdentity(
          b.alias,
          entries.get(b.alias)?.updatedRevision,
          loaded,
        );
        if (identity) sni.set(b.name.slice(4), identity);
      }
      this.#sniIdentities = loaded;
    }
    this.#logServed(server);
    return { revision, server, sni };
  }

  /**
   * An SNI binding's identity, reused while its entry is unchanged: a revision rebuilds
   * only what changed, so ten thousand bindings cost one pass at start, not one per
   * change. Entries were validated on import; a damaged one is refused when its context
   * is first built, and its host falls back to the server identity.
   */
  async #sniIdentity(
    alias: string,
    updatedRevision: number | undefined,
    loaded: Map<string, SniIdentity>,
  ): Promise<Identity | undefined> {
    if (updatedRevision === undefined) return undefined;
    const known = loaded.get(alias) ?? this.#sniIdentities.get(alias);
    if (known?.updatedRevision === updatedRevision) {
      loaded.set(alias, known);
      return known.identity;
    }
    try {
      const entry = await this.#store.getEntry(alias);
      const key = await this.#store.getPrivateKey(alias);
      if (!entry?.certificatePem || !key)
        throw new Error(`the entry "${alias}" has no certificate or key`);
      const identity = identityFromPem({
        key,
        cert: entry.certificatePem,
        chain: entry.chainPem,
        source: 'keystore',
        alias,
      });
      loaded.set(alias, { updatedRevision, identity });
      return identity;
    } catch (err) {
      this.#logger.error(
        { alias, code: (err as { code?: string }).code, err: String(err) },
        'An SNI binding cannot be served; its host falls back to the server identity.',
      );
      return undefined;
    }
  }

  #sniIdentities = new Map<string, SniIdentity>();
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
      await this.#rollback(revision, previous?.server, { code, reason: (err as Error).message });
      return undefined;
    }
    if (!result.ok) {
      this.#logger.error(
        { revision, failures: result.failures },
        'The self-probe failed after the swap; the previous identity was restored.',
      );
      await this.#rollback(revision, previous?.server, {
        code: result.code,
        failures: result.failures,
      });
    }
    this.#scheduleRenewal();
    return result;
  }

  /**
   * Points the `server` binding back at what was served before (or removes it, when that
   * was not a keystore entry), so the store and every node agree with what is served.
   */
  async #rollback(
    revision: number,
    previous: Identity | undefined,
    details: Record<string, unknown>,
  ): Promise<void> {
    const bindings = await this.#store.listBindings();
    const current = bindings.find((b) => b.name === 'server');
    const mutations: Mutation[] = [];
    if (current && current.alias !== previous?.alias) {
      mutations.push(
        previous?.alias && previous.alias !== LOCAL_SERVER_ALIAS
          ? { type: 'bind', name: 'server', alias: previous.alias }
          : { type: 'unbind', name: 'server' },
      );
    }
    await this.#store.applyChange({
      actor: 'runtime',
      action: 'rollback',
      target: current?.alias ?? 'server',
      details: {
        refusedRevision: revision,
        restored: previous?.alias ?? previous?.source ?? null,
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

  /** Wakes at the local certificate's renewal time (at most hourly) to renew it. */
  #scheduleRenewal(): void {
    clearTimeout(this.#renewalTimer);
    if (this.#stopped) return;
    void this.#store.getEntry(LOCAL_SERVER_ALIAS).then((entry) => {
      if (!entry?.certificatePem || this.#stopped) return;
      const cert = parseCertificate(parsePemBlocks(entry.certificatePem)[0]!.der);
      const wait = renewalTime(cert).getTime() - this.#clock.now().getTime();
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
