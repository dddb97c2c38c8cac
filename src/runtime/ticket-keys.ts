/**
 * Session resumption that survives certificate swaps and restarts.
 *
 * How resumption works with Node (v20, OpenSSL 3): a connection's *default* context —
 * the listener's, `server._sharedCreds`, replaced by `server.setSecureContext` — owns the
 * session machinery for the whole handshake. A context returned by `SNICallback` only
 * lends its key, certificate and chain (Node copies them onto the connection), so its own
 * ticket keys and session cache are never used. Hence:
 *
 * - **Tickets** (TLS 1.3 and TLS 1.2) are encrypted with the listener's ticket key. Every
 *   default context the runtime installs is built with the same key, so a ticket issued
 *   before a swap still opens after it, whichever SNI identity served it. The key is
 *   persisted through `TicketKeyStore`, so a ticket issued before a restart still opens
 *   after it.
 * - **Session ids** (TLS 1.2 clients that don't do tickets): Node's servers keep no
 *   internal session cache at all (`SSL_SESS_CACHE_NO_INTERNAL`); resumption by id works
 *   only through the `newSession`/`resumeSession` events. `SessionIdCache` answers them
 *   from a bounded LRU that belongs to the runtime, not to a context, so it too survives
 *   swaps. It is kept in memory: a restart forgets it (those clients fall back to a full
 *   handshake once). It is off unless the runtime is given a `sessionCacheSize`: with the
 *   listeners attached, Node parses every ClientHello in JavaScript (TLS 1.3 clients send
 *   a session id too), which costs about 6 % of each resumed handshake, for the few TLS
 *   1.2 clients that do not use tickets.
 *
 * The trade-off of Node's ticket key API: `setTicketKeys` takes exactly one 48-byte key
 * (16 bytes key name, 16 bytes HMAC secret, 16 bytes AES key) and a ticket made under any
 * other key name is refused (full handshake). There is no "previous key still decrypts"
 * overlap as with nginx's `ssl_session_ticket_key` list or Go's rotation. So each
 * rotation costs every resuming client exactly one full handshake, and the rotation
 * period is a balance between that cost and forward secrecy (whoever steals a TLS 1.2
 * ticket key can decrypt the recorded sessions whose tickets it sealed). The default,
 * a rotation every 12 hours with a session lifetime of 12 hours, keeps more than 99 % of
 * resumptions working for a client that reconnects every few minutes (one full handshake
 * per client per 12 h) and bounds what one stolen key exposes to 12 hours of sessions.
 * The key's creation time is persisted with it, so restarts do not postpone rotation.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Server } from 'node:tls';
import { LruCache } from './context-cache.js';
import {
  type Clock,
  RuntimeError,
  type RuntimeLogger,
  silentLogger,
  systemClock,
} from './identity.js';

export const TICKET_KEY_BYTES = 48;
export const DEFAULT_TICKET_KEY_ROTATION_MS = 12 * 3_600_000;

/**
 * Where the ticket key lives between restarts (the store implements it with an
 * encrypted secret). The buffer is an opaque record (see `encodeTicketKeyRecord`).
 */
export interface TicketKeyStore {
  load(): Promise<Buffer | undefined>;
  save(record: Buffer): Promise<void>;
}

/** Keeps the record in this process only: resumption survives swaps, not restarts. */
export class MemoryTicketKeyStore implements TicketKeyStore {
  record: Buffer | undefined;
  async load(): Promise<Buffer | undefined> {
    return this.record;
  }
  async save(record: Buffer): Promise<void> {
    this.record = Buffer.from(record);
  }
}

const RECORD_MAGIC = Buffer.from('CKT1');
const RECORD_BYTES = RECORD_MAGIC.length + 8 + TICKET_KEY_BYTES;

/**
 * The stored form of a ticket key:
 *
 *     "CKT1" (4 bytes) | createdAt, ms since the epoch (uint64 big-endian) | key (48 bytes)
 */
export function encodeTicketKeyRecord(key: Buffer, createdAt: Date): Buffer {
  if (key.length !== TICKET_KEY_BYTES) {
    throw new RuntimeError('TicketKeyInvalid', `A ticket key has ${TICKET_KEY_BYTES} bytes.`);
  }
  const record = Buffer.alloc(RECORD_BYTES);
  RECORD_MAGIC.copy(record, 0);
  record.writeBigUInt64BE(BigInt(Math.max(0, createdAt.getTime())), RECORD_MAGIC.length);
  key.copy(record, RECORD_MAGIC.length + 8);
  return record;
}

/** Reads a record; a bare 48-byte key is accepted too, as created `now`. */
export function decodeTicketKeyRecord(record: Buffer, now: Date): { key: Buffer; createdAt: Date } {
  if (record.length === TICKET_KEY_BYTES) return { key: Buffer.from(record), createdAt: now };
  if (record.length !== RECORD_BYTES || !record.subarray(0, 4).equals(RECORD_MAGIC)) {
    throw new RuntimeError(
      'TicketKeyInvalid',
      `The stored session ticket key record is damaged (${record.length} bytes).`,
    );
  }
  return {
    key: Buffer.from(record.subarray(RECORD_MAGIC.length + 8)),
    createdAt: new Date(Number(record.readBigUInt64BE(RECORD_MAGIC.length))),
  };
}

export interface TicketKeyStatus {
  /** A digest of the key (8 hex digits) to tell keys apart in logs; reveals nothing. */
  keyId: string;
  createdAt: string;
  nextRotationAt: string;
  /** False when the last save failed or no store was given. */
  persisted: boolean;
}

/** setTimeout's limit; longer delays are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const RETRY_MS = 5 * 60_000;

/**
 * The current ticket key: loaded or created on `start()`, rotated every `rotateEveryMs`
 * (persisted first, then installed through `onRotate`), its timer unref'd and cleared on
 * `stop()`. A rotation whose save fails is not made: the old key keeps serving and the
 * rotation is retried, so a restart never brings back a retired key.
 */
export class TicketKeys {
  readonly rotateEveryMs: number;
  onRotate: ((key: Buffer) => void) | undefined;
  readonly #store: TicketKeyStore;
  readonly #persistent: boolean;
  readonly #clock: Clock;
  readonly #logger: RuntimeLogger;
  #key: Buffer | undefined;
  #createdAt = new Date(0);
  #persisted = false;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #rotating: Promise<boolean> | undefined;

  constructor(
    options: {
      store?: TicketKeyStore | undefined;
      rotateEveryMs?: number | undefined;
      clock?: Clock | undefined;
      logger?: RuntimeLogger | undefined;
      onRotate?: (key: Buffer) => void;
    } = {},
  ) {
    this.rotateEveryMs = options.rotateEveryMs ?? DEFAULT_TICKET_KEY_ROTATION_MS;
    if (!Number.isFinite(this.rotateEveryMs) || this.rotateEveryMs < 1000) {
      throw new RuntimeError('InvalidState', 'Ticket keys rotate at most once a second.');
    }
    this.#persistent = options.store !== undefined;
    this.#store = options.store ?? new MemoryTicketKeyStore();
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.onRotate = options.onRotate;
  }

  /** The key to install now. Throws before `start()`. */
  get current(): Buffer {
    if (!this.#key) throw new RuntimeError('NotRunning', 'The ticket keys are not loaded yet.');
    return this.#key;
  }

  /** Loads the stored key (replacing it at once when it is due or unreadable), arms the timer. */
  async start(): Promise<void> {
    if (this.#running) throw new RuntimeError('AlreadyStarted', 'The ticket keys run already.');
    this.#running = true;
    const now = this.#clock.now();
    let loaded: { key: Buffer; createdAt: Date } | undefined;
    try {
      const record = await this.#store.load();
      if (record) loaded = decodeTicketKeyRecord(record, now);
    } catch (err) {
      this.#logger.warn(
        { err: errorFacts(err) },
        'The stored session ticket key cannot be read; a new one is made (clients resume with a full handshake once).',
      );
    }
    if (loaded && !this.#due(loaded.createdAt, now)) {
      this.#key = loaded.key;
      this.#createdAt = loaded.createdAt;
      this.#persisted = this.#persistent;
      this.#logger.info(this.#facts(), 'Session ticket key loaded.');
      this.#schedule();
      return;
    }
    if (!this.#persistent) {
      this.#logger.info({}, 'Session ticket keys are kept in memory: a restart forgets them.');
    }
    // Serving needs a key: when the save fails, the new key is used unsaved and saving
    // is retried later.
    await this.#replace(now, true);
  }

  /** Clears the timer; the current key stays readable. */
  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Makes, saves and installs a new key now. Resolves false when saving failed. */
  rotate(): Promise<boolean> {
    this.#rotating ??= this.#replace(this.#clock.now(), false).finally(() => {
      this.#rotating = undefined;
    });
    return this.#rotating;
  }

  /**
   * Rotates when the key is `rotateEveryMs` old by the clock, or when the current key
   * could not be saved; resolves whether it rotated.
   */
  async rotateIfDue(): Promise<boolean> {
    const unsaved = this.#persistent && !this.#persisted;
    if (!this.#key || !(unsaved || this.#due(this.#createdAt, this.#clock.now()))) {
      this.#schedule();
      return false;
    }
    return this.rotate();
  }

  status(): TicketKeyStatus {
    return {
      keyId: this.#key ? createHash('sha256').update(this.#key).digest('hex').slice(0, 8) : '',
      createdAt: this.#createdAt.toISOString(),
      nextRotationAt: new Date(this.#createdAt.getTime() + this.rotateEveryMs).toISOString(),
      persisted: this.#persisted,
    };
  }

  async #replace(now: Date, evenIfUnsaved: boolean): Promise<boolean> {
    const key = randomBytes(TICKET_KEY_BYTES);
    let saved = true;
    try {
      await this.#store.save(encodeTicketKeyRecord(key, now));
    } catch (err) {
      saved = false;
      this.#logger.error(
        { err: errorFacts(err), retryInMs: RETRY_MS },
        evenIfUnsaved
          ? 'The new session ticket key could not be saved; it is used unsaved for now.'
          : 'The new session ticket key could not be saved; the current key stays in use.',
      );
    }
    if (!saved && !evenIfUnsaved) {
      this.#schedule(RETRY_MS);
      return false;
    }
    const first = this.#key === undefined;
    this.#key = key;
    this.#createdAt = now;
    this.#persisted = this.#persistent && saved;
    this.onRotate?.(key);
    this.#logger.info(
      this.#facts(),
      first ? 'Session ticket key created.' : 'Session ticket key rotated.',
    );
    this.#schedule(saved ? undefined : RETRY_MS);
    return saved;
  }

  #due(createdAt: Date, now: Date): boolean {
    const age = now.getTime() - createdAt.getTime();
    return age >= this.rotateEveryMs || age < -this.rotateEveryMs;
  }

  #schedule(delayMs?: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#running) return;
    const wait =
      delayMs ?? this.#createdAt.getTime() + this.rotateEveryMs - this.#clock.now().getTime();
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.rotateIfDue().catch((err: unknown) => {
          this.#logger.error({ err: errorFacts(err) }, 'Session ticket key rotation failed.');
          this.#schedule(RETRY_MS);
        });
      },
      Math.min(Math.max(wait, 1000), MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  #facts(): Record<string, unknown> {
    const { keyId, createdAt, nextRotationAt, persisted } = this.status();
    return { keyId, createdAt, nextRotationAt, persisted };
  }
}

// ---------------------------------------------------------------------------------------
// Session ids

export const DEFAULT_SESSION_CACHE_SIZE = 10_000;

/**
 * The server-side cache for TLS 1.2 resumption by session id, answering Node's
 * `newSession`/`resumeSession` events from a bounded LRU (entries are ~130-byte DER
 * sessions). OpenSSL itself refuses a session older than the context's session timeout.
 * TLS 1.3 sessions are not stored: their tickets are stateless, and OpenSSL hands them
 * over only because a cache callback exists.
 */
export class SessionIdCache {
  readonly #lru: LruCache<string, Buffer>;
  #server: Server | undefined;
  #resumed = 0;

  constructor(max = DEFAULT_SESSION_CACHE_SIZE) {
    this.#lru = new LruCache(max);
  }

  get size(): number {
    return this.#lru.size;
  }

  /** Sessions handed back for resumption since `attach`. */
  get resumed(): number {
    return this.#resumed;
  }

  readonly #onNew = (id: Buffer, data: Buffer, done: () => void): void => {
    if (!isTls13Session(data)) this.#lru.set(id.toString('hex'), data);
    done();
  };

  readonly #onResume = (
    id: Buffer,
    done: (err: Error | null, data: Buffer | null) => void,
  ): void => {
    const data = this.#lru.get(id.toString('hex')) ?? null;
    if (data) this.#resumed++;
    done(null, data);
  };

  attach(server: Server): void {
    this.detach();
    this.#server = server;
    server.on('newSession', this.#onNew);
    server.on('resumeSession', this.#onResume);
  }

  detach(): void {
    this.#server?.off('newSession', this.#onNew);
    this.#server?.off('resumeSession', this.#onResume);
    this.#server = undefined;
  }

  clear(): void {
    this.#lru.clear();
  }
}

/**
 * True for a DER SSL_SESSION of TLS 1.3. OpenSSL's encoding (ssl/ssl_asn1.c) begins
 *
 *     SSL_SESSION_ASN1 ::= SEQUENCE { version INTEGER (1), ssl_version INTEGER, ... }
 */
export function isTls13Session(der: Buffer): boolean {
  if (der[0] !== 0x30 || der.length < 4) return false;
  const first = der[1]!;
  let at = first & 0x80 ? 2 + (first & 0x7f) : 2;
  if (der[at] !== 0x02 || der[at + 1] !== 0x01) return false;
  at += 3;
  if (der[at] !== 0x02 || der[at + 1] !== 0x02) return false;
  return der[at + 2] === 0x03 && der[at + 3] === 0x04;
}

function errorFacts(err: unknown): Record<string, unknown> {
  const e = err as { code?: unknown; message?: unknown };
  return { code: e?.code ?? null, message: String(e?.message ?? err) };
}
