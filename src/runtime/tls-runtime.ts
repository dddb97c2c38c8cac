/**
 * The live TLS state of one process (DESIGN.md "runtime"): one HTTPS listener that stays
 * open for the life of the process while the identities it serves are swapped under it.
 *
 * A swap follows Caddy's order: build, check, swap one reference, retire. `apply` builds
 * the new server context first (a broken identity is refused with `ContextBuildFailed`
 * and nothing changes), then, in one synchronous step, installs it as the listener's
 * default context and replaces the one reference `SNICallback` reads. The handshakes that
 * start after `apply` returns see the new state; connections already open keep the
 * context they were made with, because nothing here closes or touches them. Then the
 * self-probe connects to the listener for the server identity and a bounded sample of
 * the SNI names (changed names first); when a check fails, the previous state is put
 * back the same way and `apply` resolves `{ ok: false, code: 'ProbeFailed', … }` for
 * the caller to log and record in the audit log.
 *
 * SNI contexts are built on the first handshake that needs them and kept in a bounded
 * LRU keyed by identity content, so an identity a swap leaves unchanged keeps its
 * context. Session resumption (tickets and session ids) is the listener's and survives
 * swaps and, with a `TicketKeyStore`, restarts: see ticket-keys.ts.
 *
 * What the runtime does not do: it writes no HTTP response (the API layer mounts on
 * `server` and sets `Strict-Transport-Security: STRICT_TRANSPORT_SECURITY` on each
 * response, and serves `/healthz`, `/readyz`); it does not choose the identities (the
 * startup source order and the store follower call `start` and `apply`).
 */

import type { RequestListener } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { isSniHostSyntax } from '../core/hostname.js';
import { MAX_CLIENT_HELLO_BYTES, serverNameOf } from './client-hello.js';
import { ContextCache, type ContextCacheStats } from './context-cache.js';
import {
  buildSecureContext,
  type Clock,
  contextBuildError,
  describeIdentity,
  type Identity,
  RuntimeError,
  type RuntimeLogger,
  type SniIdentity,
  secureContextOptions,
  silentLogger,
  sniContentKey,
  systemClock,
  TLS_PROTOCOL_OPTIONS,
} from './identity.js';
import {
  DEFAULT_PROBE_CONCURRENCY,
  DEFAULT_PROBE_TIMEOUT_MS,
  loopbackFor,
  type ProbeCheck,
  type ProbeReport,
  type ProbeTarget,
  probeListener,
} from './probe.js';
import {
  SessionIdCache,
  type TicketKeyStatus,
  type TicketKeyStore,
  TicketKeys,
} from './ticket-keys.js';

/**
 * The value the API layer sets as `Strict-Transport-Security` on every response: two
 * years, without `includeSubDomains` (sibling hosts of a management UI may not be HTTPS).
 */
export const STRICT_TRANSPORT_SECURITY = 'max-age=63072000';

/** What one revision of the store says to serve. */
export interface RuntimeState {
  revision: number;
  /** The default identity: clients without SNI and names no SNI binding covers. */
  server: Identity;
  /**
   * SNI bindings: exact host names and `*.` wildcards (one label), lower case. The map is
   * read, never changed, by the runtime; give a new map with each state.
   */
  sni: ReadonlyMap<string, SniIdentity>;
}

export type ApplyResult =
  | {
      ok: true;
      revision: number;
      /** False when the state had the same identities as the served one (nothing swapped). */
      changed: boolean;
      /** Null when nothing was swapped or probing is off. */
      probe: ProbeReport | null;
    }
  | {
      ok: false;
      code: 'ProbeFailed';
      /** The revision that was refused. */
      revision: number;
      /** The revision served now (the previous one, when `rolledBack`). */
      servedRevision: number;
      rolledBack: boolean;
      failures: ProbeCheck[];
      probe: ProbeReport;
    };

export interface TlsRuntimeOptions {
  /** Address to listen on; Node's default (all addresses) when omitted. */
  host?: string;
  /** Port to listen on; 0 picks a free one (tests). */
  port: number;
  /** The request handler (Fastify: create the runtime in `serverFactory`). */
  handler?: RequestListener;
  logger?: RuntimeLogger;
  clock?: Clock;
  /** Where the ticket key is persisted; in memory only when omitted. */
  ticketKeyStore?: TicketKeyStore;
  /** Default 12 h. */
  ticketKeyRotationMs?: number;
  /** Lifetime of sessions and tickets, seconds. Default 12 h. */
  sessionTimeoutSeconds?: number;
  /**
   * TLS 1.2 session ids kept for clients that resume by id rather than by ticket. Default
   * 0: off, because Node then parses every ClientHello in JavaScript (about 6 % of a
   * resumed handshake's cost, paid by TLS 1.3 clients too); TLS 1.2 clients that use
   * tickets resume either way.
   */
  sessionCacheSize?: number;
  /** SNI contexts kept. Default 1,000. */
  contextCacheSize?: number;
  /**
   * How a connection gets the context of its SNI name. `client-hello` (default): read from
   * the ClientHello before TLS starts, so the connection holds that identity only.
   * `sni-callback`: Node's SNICallback, which serves an SNI identity whose key type differs
   * from the server identity's the server's certificate (nodejs/node#54235); used where
   * this Node lacks the internals `client-hello` needs, and by bench/sni-selection.ts.
   */
  sniSelection?: 'client-hello' | 'sni-callback';
  probe?: {
    /** Default true. */
    enabled?: boolean;
    /** Per handshake. Default 3,000 ms. */
    timeoutMs?: number;
    /** SNI names checked per swap besides the server identity. Default 8. */
    maxSniNames?: number;
    concurrency?: number;
  };
  /** How long `stop()` lets open connections finish before destroying them. Default 5,000 ms. */
  stopGraceMs?: number;
}

/** What `GET /api/v1/server/tls` needs. */
export interface TlsStatus {
  running: boolean;
  address: { host: string; port: number } | null;
  revision: number | null;
  server: { fingerprint: string; alias: string | null; source: string } | null;
  sniNames: number;
  lastProbe: ProbeReport | null;
  ticketKey: TicketKeyStatus;
  contexts: ContextCacheStats;
  sessionIds: { size: number; resumed: number };
  /** Handshakes that failed (bad clients, old protocols…) since start. */
  tlsClientErrors: number;
  /** Handshakes that completed since start. */
  handshakes: number;
  /** Identities installed since start (the first one included). */
  swaps: number;
}

/** The SNI name the probe uses to check the fallback to the server identity (RFC 2606). */
export const FALLBACK_PROBE_NAME = 'certkeeper-probe.invalid';
const WILDCARD_PROBE_LABEL = 'certkeeper-probe';
const DEFAULT_CONTEXT_CACHE_SIZE = 1000;
const DEFAULT_SESSION_TIMEOUT_SECONDS = 12 * 3600;
const DEFAULT_PROBE_SNI_NAMES = 8;
const DEFAULT_STOP_GRACE_MS = 5000;
/** A client that connects and sends no ClientHello for this long is dropped. */
const CLIENT_HELLO_TIMEOUT_MS = 10_000;

/**
 * What the handshakes read. Replaced, never changed. The server identity's context is the
 * listener's default one, so it needs no reference here.
 */
interface Live {
  state: RuntimeState;
}

export class TlsRuntime {
  /** The listener. Mount the API on it; never close it to change identity. */
  readonly server: Server;
  readonly ticketKeys: TicketKeys;
  readonly contexts: ContextCache;
  readonly #options: TlsRuntimeOptions;
  readonly #logger: RuntimeLogger;
  readonly #clock: Clock;
  readonly #sessions: SessionIdCache | undefined;
  readonly #sessionTimeout: number;
  readonly #sockets = new Set<Socket>();
  /** Node's private slot for the listener's `SNICallback`, when this Node has it. */
  readonly #sniSlot: symbol | undefined;
  readonly #sniCallback: (
    servername: string,
    callback: (err: Error | null, ctx?: SecureContext) => void,
  ) => void;
  /**
   * Node's own listener that wraps an accepted socket in TLS with the server's default
   * context, when this Node lets the runtime choose that context per connection (see
   * `#accept`); undefined otherwise, and `SNICallback` chooses.
   */
  readonly #startTls: ((socket: Socket) => void) | undefined;
  #live: Live | undefined;
  #lastProbe: ProbeReport | undefined;
  #started = false;
  #running = false;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #inFlight = 0;
  #tlsClientErrors = 0;
  #handshakes = 0;
  #swaps = 0;

  constructor(options: TlsRuntimeOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#sessionTimeout = options.sessionTimeoutSeconds ?? DEFAULT_SESSION_TIMEOUT_SECONDS;
    this.contexts = new ContextCache({
      max: options.contextCacheSize ?? DEFAULT_CONTEXT_CACHE_SIZE,
      // An SNI context is the connection's only context: it carries the session settings.
      build: (identity) =>
        buildSecureContext(identity, {
          ticketKeys: this.ticketKeys.current,
          sessionTimeout: this.#sessionTimeout,
        }),
      onFailure: (identity, err) =>
        this.#logger.error(
          { ...describeIdentity(identity), code: err.code, reason: err.message },
          'An SNI identity cannot be served; its handshakes fail.',
        ),
    });
    this.ticketKeys = new TicketKeys({
      store: options.ticketKeyStore,
      rotateEveryMs: options.ticketKeyRotationMs,
      clock: this.#clock,
      logger: this.#logger,
      onRotate: (key) => {
        // Only the installed default context uses ticket keys; later ones get the key
        // when they are built.
        if (this.#live) this.server.setTicketKeys(key);
        for (const context of this.contexts.built()) context.context.setTicketKeys(key);
      },
    });
    const sessionIds = options.sessionCacheSize ?? 0;
    this.#sniCallback = (servername, callback) => this.#sni(servername, callback);
    this.#sessions = sessionIds > 0 ? new SessionIdCache(sessionIds) : undefined;
    this.server = createServer(
      {
        ...TLS_PROTOCOL_OPTIONS,
        sessionTimeout: this.#sessionTimeout,
        SNICallback: this.#sniCallback,
        // The handler answers a request without Host (the API with problem+json), not Node.
        requireHostHeader: false,
      },
      options.handler ?? notFound,
    );
    this.#sniSlot = Object.getOwnPropertySymbols(this.server).find(
      (slot) =>
        slot.description === 'snicallback' &&
        (this.server as unknown as Record<symbol, unknown>)[slot] === this.#sniCallback,
    );
    this.#startTls = options.sniSelection === 'sni-callback' ? undefined : this.#takeTlsStart();
    this.server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.server.on('tlsClientError', () => {
      this.#tlsClientErrors++;
    });
    this.server.on('secureConnection', () => {
      this.#handshakes++;
    });
  }

  /** The state being served; undefined before `start`. */
  get current(): RuntimeState | undefined {
    return this.#live?.state;
  }

  get lastProbe(): ProbeReport | undefined {
    return this.#lastProbe;
  }

  address(): AddressInfo | null {
    const address = this.server.address();
    return address && typeof address === 'object' ? address : null;
  }

  /**
   * Loads the ticket key, installs `initial` (refused with `ContextBuildFailed` before
   * anything listens), listens, and probes. A failed probe at start has no previous
   * state to return to: the result says so and `initial` keeps serving; the caller
   * decides whether to stop.
   */
  async start(initial: RuntimeState): Promise<ApplyResult> {
    if (this.#started)
      throw new RuntimeError('AlreadyStarted', 'The TLS runtime was started already.');
    this.#started = true;
    const done = this.#start(initial);
    this.#enqueue(done);
    return done;
  }

  async #start(initial: RuntimeState): Promise<ApplyResult> {
    try {
      await this.ticketKeys.start();
      const state = normalizeState(initial);
      this.#install({ state });
      this.#sessions?.attach(this.server);
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ port: this.#options.port, host: this.#options.host }, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.ticketKeys.stop();
      this.#sessions?.detach();
      this.#live = undefined;
      throw err;
    }
    if (this.#stopping)
      throw new RuntimeError('NotRunning', 'The TLS runtime was stopped while starting.');
    this.#running = true;
    const state = this.#live!.state;
    const { address, port } = this.address()!;
    this.#logger.info(
      {
        address,
        port,
        revision: state.revision,
        ...describeIdentity(state.server),
        sniNames: state.sni.size,
      },
      'Serving HTTPS.',
    );
    return this.#probeAndSettle(undefined, state);
  }

  /**
   * Serves `next`. Refuses a broken server identity with `ContextBuildFailed` (nothing
   * changes); otherwise swaps synchronously — handshakes from the next tick on see
   * `next` — and resolves after the probe: `{ ok: true }`, or `{ ok: false,
   * code: 'ProbeFailed' }` with the previous state restored. Identities equal to the
   * served ones make no swap (only the revision number moves). Calls run one at a time,
   * in order.
   */
  apply(next: RuntimeState): Promise<ApplyResult> {
    if (!this.#running) {
      return Promise.reject(new RuntimeError('NotRunning', 'The TLS runtime is not running.'));
    }
    const result =
      this.#inFlight === 0 ? this.#applyNow(next) : this.#tail.then(() => this.#applyNow(next));
    this.#enqueue(result);
    return result;
  }

  /**
   * Stops listening, lets open connections finish for `stopGraceMs` and then destroys
   * them, clears every timer, and waits until the listener is closed. Safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#running = false;
    this.ticketKeys.stop();
    await this.#tail;
    this.#sessions?.detach();
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const grace = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, this.#options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    grace.unref();
    await closed;
    clearTimeout(grace);
    this.#logger.info({}, 'Stopped serving HTTPS.');
  }

  /** The identity a handshake with this SNI name gets (null: no SNI). */
  resolve(servername: string | null): SniIdentity {
    const live = this.#live;
    if (!live) throw new RuntimeError('NotRunning', 'The TLS runtime has no state yet.');
    return servername === null ? live.state.server : resolveIdentity(live.state, servername);
  }

  status(): TlsStatus {
    const state = this.#live?.state;
    const address = this.address();
    return {
      running: this.#running,
      address: address ? { host: address.address, port: address.port } : null,
      revision: state?.revision ?? null,
      server: state ? describeIdentity(state.server) : null,
      sniNames: state?.sni.size ?? 0,
      lastProbe: this.#lastProbe ?? null,
      ticketKey: this.ticketKeys.status(),
      contexts: this.contexts.stats(),
      sessionIds: { size: this.#sessions?.size ?? 0, resumed: this.#sessions?.resumed ?? 0 },
      tlsClientErrors: this.#tlsClientErrors,
      handshakes: this.#handshakes,
      swaps: this.#swaps,
    };
  }

  // -------------------------------------------------------------------------------------

  #enqueue(result: Promise<unknown>): void {
    this.#inFlight++;
    const settled = (): void => {
      this.#inFlight--;
    };
    this.#tail = result.then(settled, settled);
  }

  /** Runs synchronously up to the swap (see `apply`). */
  async #applyNow(raw: RuntimeState): Promise<ApplyResult> {
    if (!this.#running) throw new RuntimeError('NotRunning', 'The TLS runtime is stopping.');
    const next = normalizeState(raw);
    const previous = this.#live!;
    if (sameIdentities(previous.state, next)) {
      this.#live = { state: next };
      return { ok: true, revision: next.revision, changed: false, probe: null };
    }
    this.#install({ state: next });
    this.#logger.info(
      {
        revision: next.revision,
        previousRevision: previous.state.revision,
        ...describeIdentity(next.server),
        sniNames: next.sni.size,
      },
      'Swapped the served identities.',
    );
    return this.#probeAndSettle(previous, next);
  }

  async #probeAndSettle(previous: Live | undefined, next: RuntimeState): Promise<ApplyResult> {
    const options = this.#options.probe ?? {};
    if (options.enabled === false)
      return { ok: true, revision: next.revision, changed: true, probe: null };
    const report = await this.#probe(previous?.state, next);
    this.#lastProbe = report;
    if (report.ok) return { ok: true, revision: next.revision, changed: true, probe: report };

    let rolledBack = false;
    if (previous && this.#live?.state === next) {
      try {
        this.#install(previous);
        rolledBack = true;
      } catch (err) {
        this.#logger.error(
          { revision: previous.state.revision, code: (err as RuntimeError).code ?? null },
          'The previous identities could not be restored.',
        );
      }
    }
    const servedRevision = this.#live?.state.revision ?? next.revision;
    this.#logger.error(
      {
        revision: next.revision,
        servedRevision,
        rolledBack,
        failures: report.failures.map(({ binding, servername, expected, served, error }) => ({
          binding,
          servername,
          expected,
          served,
          error,
        })),
      },
      rolledBack
        ? 'The self-probe failed after the swap; the previous identities are served again.'
        : 'The self-probe failed.',
    );
    return {
      ok: false,
      code: 'ProbeFailed',
      revision: next.revision,
      servedRevision,
      rolledBack,
      failures: report.failures,
      probe: report,
    };
  }

  /**
   * The swap: the listener's default context (the server identity, for clients without
   * SNI and names no binding covers; protocol settings, ticket key and session timeout
   * for all) and the reference `SNICallback` reads, in one synchronous step. Building the
   * default context is the check: a broken server identity throws `ContextBuildFailed`
   * here, before anything changed.
   */
  #install(live: Live): void {
    try {
      this.server.setSecureContext(
        secureContextOptions(live.state.server, {
          ticketKeys: this.ticketKeys.current,
          sessionTimeout: this.#sessionTimeout,
        }),
      );
    } catch (err) {
      throw contextBuildError(live.state.server, err);
    }
    this.#live = live;
    this.#swaps++;
    // Without SNI bindings every name gets the default context, and a listener without
    // an SNICallback spares each handshake a round trip into JavaScript (about 1.5 % of
    // its cost). Node reads the slot when it accepts a connection; there is no public
    // switch, so this uses Node's own slot and, on a Node without it, keeps the callback.
    if (this.#sniSlot) {
      (this.server as unknown as Record<symbol, unknown>)[this.#sniSlot] =
        live.state.sni.size > 0 && !this.#startTls ? this.#sniCallback : undefined;
    }
  }

  /**
   * Takes over Node's 'connection' listener of the TLS server, so that `#accept` can give
   * each connection the context of its SNI name from the start. Node's SNICallback can't:
   * the context it returns adds its certificate to the default context's, and OpenSSL
   * serves whichever key type the client prefers (nodejs/node#54235). Relies on two Node
   * internals (one 'connection' listener, `_sharedCreds`); without them, SNICallback
   * chooses, as before.
   */
  #takeTlsStart(): ((socket: Socket) => void) | undefined {
    const listeners = this.server.listeners('connection');
    if (listeners.length !== 1 || !('_sharedCreds' in this.server)) return undefined;
    const startTls = listeners[0] as (socket: Socket) => void;
    this.server.removeListener('connection', startTls);
    this.server.on('connection', (socket: Socket) => this.#accept(socket));
    return startTls;
  }

  /**
   * Starts TLS on an accepted socket. Without SNI bindings, at once with the default
   * context. Otherwise after reading the ClientHello's server name (the bytes read are
   * put back for TLS to read), with the context of the identity that name resolves to.
   */
  #accept(socket: Socket): void {
    const live = this.#live;
    if (!live || live.state.sni.size === 0) {
      this.#startTls!.call(this.server, socket);
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const drop = (): void => {
      stop();
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      const bytes = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      const servername = serverNameOf(bytes);
      if (servername === undefined && total < MAX_CLIENT_HELLO_BYTES) return;
      stop();
      socket.pause();
      socket.unshift(bytes);
      this.#startTlsFor(socket, servername ?? null);
    };
    const stop = (): void => {
      socket.off('data', onData);
      socket.off('error', drop);
      socket.off('end', drop);
      socket.off('timeout', drop);
      socket.setTimeout(0);
    };
    socket.on('data', onData);
    socket.once('error', drop);
    socket.once('end', drop);
    socket.once('timeout', drop);
    socket.setTimeout(CLIENT_HELLO_TIMEOUT_MS);
  }

  #startTlsFor(socket: Socket, servername: string | null): void {
    const live = this.#live;
    const identity =
      !live || servername === null ? live?.state.server : resolveIdentity(live.state, servername);
    if (!live || identity === live.state.server) {
      this.#startTls!.call(this.server, socket);
      return;
    }
    let context: SecureContext | Promise<SecureContext>;
    try {
      context = 'ref' in identity! ? this.contexts.getRef(identity) : this.contexts.get(identity!);
    } catch {
      // Refused and logged once by the context cache; the handshake can't succeed.
      socket.destroy();
      return;
    }
    if (context instanceof Promise) {
      context.then(
        (built) => this.#startTlsWith(socket, built),
        () => socket.destroy(),
      );
    } else {
      this.#startTlsWith(socket, context);
    }
  }

  /** Node's TLS start, with `context` as the connection's context instead of the default. */
  #startTlsWith(socket: Socket, context: SecureContext): void {
    if (socket.destroyed) return;
    const server = this.server as unknown as { _sharedCreds: SecureContext };
    const defaultContext = server._sharedCreds;
    server._sharedCreds = context;
    try {
      this.#startTls!.call(this.server, socket);
    } catch {
      // This connection can't start TLS (it went away meanwhile): it ends, nothing else.
      socket.destroy();
    } finally {
      server._sharedCreds = defaultContext;
    }
  }

  #sni(servername: string, callback: (err: Error | null, ctx?: SecureContext) => void): void {
    const live = this.#live;
    if (!live) {
      callback(new RuntimeError('NotRunning', 'The TLS runtime has no state yet.'));
      return;
    }
    const identity = resolveIdentity(live.state, servername);
    // No context: the connection keeps the default one it was accepted with, which is
    // the server identity's (or, across a swap, the previous one's: it started before).
    if (identity === live.state.server) {
      callback(null);
      return;
    }
    let context: SecureContext | Promise<SecureContext>;
    try {
      context = 'ref' in identity ? this.contexts.getRef(identity) : this.contexts.get(identity);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (context instanceof Promise) {
      context.then(
        (built) => callback(null, built),
        (err: Error) => callback(err),
      );
    } else {
      callback(null, context);
    }
  }

  async #probe(previous: RuntimeState | undefined, next: RuntimeState): Promise<ProbeReport> {
    const options = this.#options.probe ?? {};
    const at = this.#clock.now().toISOString();
    const started = performance.now();
    const address = this.address()!;
    const host = loopbackFor(address.address);
    const checks = await probeListener({
      host,
      port: address.port,
      targets: probeTargets(previous, next, options.maxSniNames ?? DEFAULT_PROBE_SNI_NAMES),
      timeoutMs: options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
      concurrency: options.concurrency ?? DEFAULT_PROBE_CONCURRENCY,
    });
    const failures = checks.filter((c) => !c.ok);
    return {
      at,
      revision: next.revision,
      ok: failures.length === 0,
      ms: Math.round(performance.now() - started),
      host,
      port: address.port,
      checks,
      failures,
    };
  }
}

// ---------------------------------------------------------------------------------------
// State

/**
 * The identity for an SNI name: an exact binding, else a `*.` binding for the name minus
 * its first label, else the server identity. Names compare in lower case, without a
 * trailing dot.
 */
export function resolveIdentity(state: RuntimeState, servername: string): SniIdentity {
  let name = servername.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const exact = state.sni.get(name);
  if (exact) return exact;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const wildcard = state.sni.get(`*${name.slice(dot)}`);
    if (wildcard) return wildcard;
  }
  return state.server;
}

/**
 * A lower-case host name or `*.` wildcard, as bindings keep them: syntax only, so a
 * binding the store holds always serves (the host name policy applies where bindings
 * are made), and no public-suffix lookup runs here.
 */
const isSniKey = isSniHostSyntax;

/**
 * SNI maps already checked: states are "replaced, never changed", and the supervisor
 * passes the same map again while no SNI binding changed, so 100,000 names are checked
 * once, not on every revision.
 */
const checkedSniMaps = new WeakSet<ReadonlyMap<string, SniIdentity>>();

/**
 * Checks a state and returns it with lower-case SNI keys (the same object when they are
 * already). A bad revision or host name is `InvalidState`.
 */
export function normalizeState(state: RuntimeState): RuntimeState {
  if (!Number.isSafeInteger(state?.revision) || state.revision < 0) {
    throw new RuntimeError('InvalidState', `The revision must be a non-negative integer.`);
  }
  if (!state.server) throw new RuntimeError('InvalidState', 'The state has no server identity.');
  if (checkedSniMaps.has(state.sni)) return state;
  let normalized: Map<string, SniIdentity> | undefined;
  for (const [name, identity] of state.sni) {
    if (isSniKey(name)) continue;
    const fixed = name.toLowerCase().replace(/\.$/, '');
    if (!isSniKey(fixed)) {
      throw new RuntimeError('InvalidState', `"${name}" is not a host name or a *. wildcard.`, {
        details: { name },
      });
    }
    normalized ??= new Map(state.sni);
    normalized.delete(name);
    normalized.set(fixed, identity);
  }
  if (normalized) {
    checkedSniMaps.add(normalized);
    return { ...state, sni: normalized };
  }
  checkedSniMaps.add(state.sni);
  return state;
}

function sameIdentity(a: SniIdentity | undefined, b: SniIdentity | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return sniContentKey(a) === sniContentKey(b);
}

/** True when both states serve the same identities under the same names. */
function sameIdentities(a: RuntimeState, b: RuntimeState): boolean {
  if (!sameIdentity(a.server, b.server)) return false;
  if (a.sni === b.sni) return true;
  if (a.sni.size !== b.sni.size) return false;
  for (const [name, identity] of b.sni) {
    if (!sameIdentity(a.sni.get(name), identity)) return false;
  }
  return true;
}

/**
 * What the probe checks after a swap to `next`: the server identity without SNI and,
 * when there are SNI bindings, through the SNI fallback, then up to `maxSniNames` SNI bindings — those new or changed
 * since `previous` first, then others. A wildcard is probed with a name under it. The
 * expected fingerprint is the one `resolveIdentity` gives, so shadowing is accounted for.
 */
export function probeTargets(
  previous: RuntimeState | undefined,
  next: RuntimeState,
  maxSniNames: number,
): ProbeTarget[] {
  const targets: ProbeTarget[] = [
    { servername: null, expected: next.server.fingerprint, binding: 'server' },
  ];
  // Without SNI bindings every name gets the default context the first check saw.
  if (next.sni.size === 0) return targets;
  targets.push({
    servername: FALLBACK_PROBE_NAME,
    expected: resolveIdentity(next, FALLBACK_PROBE_NAME).fingerprint,
    binding: 'server (SNI fallback)',
  });
  if (maxSniNames <= 0) return targets;
  const changed: string[] = [];
  const unchanged: string[] = [];
  for (const [name, identity] of next.sni) {
    if (!previous || !sameIdentity(previous.sni.get(name), identity)) {
      changed.push(name);
      if (changed.length >= maxSniNames) break;
    } else if (unchanged.length < maxSniNames) {
      unchanged.push(name);
    }
  }
  for (const name of [...changed, ...unchanged].slice(0, maxSniNames)) {
    const servername = name.startsWith('*.') ? `${WILDCARD_PROBE_LABEL}${name.slice(1)}` : name;
    targets.push({
      servername,
      expected: resolveIdentity(next, servername).fingerprint,
      binding: `sni:${name}`,
    });
  }
  return targets;
}

const notFound: RequestListener = (_req, res) => {
  res.statusCode = 404;
  res.end();
};
