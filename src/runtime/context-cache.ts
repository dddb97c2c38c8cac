/**
 * The bounded cache of SNI `SecureContext`s. Contexts are built on the first handshake
 * that needs them and kept by identity content (key + certificates), so an identity that
 * a swap leaves unchanged keeps its context, and one that comes back after a rollback
 * finds it again. A refusal is cached too, so a broken identity costs one build attempt,
 * not one per handshake.
 */
import type { SecureContext } from 'node:tls';
import {
  buildSecureContext,
  contextBuildError,
  type Identity,
  type IdentityRef,
  identityContentKey,
  RuntimeError,
  sniContentKey,
} from './identity.js';

/** A least-recently-used map: reads refresh, writes beyond `max` drop the oldest. */
export class LruCache<K, V> {
  readonly max: number;
  readonly #map = new Map<K, V>();
  #evictions = 0;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RuntimeError(
        'InvalidState',
        `A cache size must be a positive integer, not ${max}.`,
      );
    }
    this.max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  /** The value, marked as most recently used. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  /** Whether the key is cached, without refreshing it. */
  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.max) {
      const oldest = this.#map.keys().next().value as K;
      this.#map.delete(oldest);
      this.#evictions++;
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  /** The values, oldest first, without refreshing them. */
  values(): IterableIterator<V> {
    return this.#map.values();
  }
}

export interface ContextCacheStats {
  size: number;
  max: number;
  hits: number;
  misses: number;
  /** Builds that failed (each failure is cached like a context). */
  failures: number;
  evictions: number;
}

type Slot = { context: SecureContext } | { error: RuntimeError };

export class ContextCache {
  readonly #lru: LruCache<string, Slot>;
  readonly #build: (identity: Identity) => SecureContext;
  readonly #onFailure:
    | ((identity: Identity | IdentityRef, error: RuntimeError) => void)
    | undefined;
  /** Loads in flight, so that concurrent handshakes for one reference load it once. */
  readonly #loading = new Map<string, Promise<Slot>>();
  #hits = 0;
  #misses = 0;
  #failures = 0;

  constructor(options: {
    max: number;
    build?: (identity: Identity) => SecureContext;
    /** Called once per refused identity (later handshakes get the cached refusal). */
    onFailure?: (identity: Identity | IdentityRef, error: RuntimeError) => void;
  }) {
    this.#lru = new LruCache(options.max);
    this.#build = options.build ?? ((identity) => buildSecureContext(identity));
    this.#onFailure = options.onFailure;
  }

  /** Why the identity can't be served, when its build or load failed and is cached. */
  failure(identity: Identity | IdentityRef): RuntimeError | undefined {
    const slot = this.#lru.has(sniContentKey(identity as never))
      ? this.#lru.get(sniContentKey(identity as never))
      : undefined;
    return slot && 'error' in slot ? slot.error : undefined;
  }

  /** Every context built and still cached. */
  *built(): IterableIterator<SecureContext> {
    for (const slot of this.#lru.values()) if ('context' in slot) yield slot.context;
  }

  /**
   * The context of the identity, built on a miss. Throws the `ContextBuildFailed` of the
   * build (again, from the cache, on later calls) when the identity can't be served.
   */
  get(identity: Identity): SecureContext {
    const key = identityContentKey(identity);
    let slot = this.#lru.get(key);
    if (slot) {
      this.#hits++;
    } else {
      this.#misses++;
      slot = this.#slot(identity, identity);
      this.#lru.set(key, slot);
    }
    return unwrap(slot);
  }

  /**
   * The context of an identity loaded on demand: at once when it is cached, else a
   * promise of it once loaded and built. A load that fails is cached like a refused build.
   */
  getRef(ref: IdentityRef): SecureContext | Promise<SecureContext> {
    const key = sniContentKey(ref);
    const slot = this.#lru.get(key);
    if (slot) {
      this.#hits++;
      return unwrap(slot);
    }
    let loading = this.#loading.get(key);
    if (!loading) {
      this.#misses++;
      loading = ref
        .load()
        .then(
          (identity) => this.#slot(identity, ref),
          (err) => this.#failed(ref, err),
        )
        .then((loaded) => {
          this.#loading.delete(key);
          this.#lru.set(key, loaded);
          return loaded;
        });
      this.#loading.set(key, loading);
    }
    return loading.then(unwrap);
  }

  #slot(identity: Identity, named: Identity | IdentityRef): Slot {
    try {
      return { context: this.#build(identity) };
    } catch (err) {
      return this.#failed(named, err);
    }
  }

  #failed(named: Identity | IdentityRef, err: unknown): Slot {
    this.#failures++;
    const error = contextBuildError(named, err);
    this.#onFailure?.(named, error);
    return { error };
  }

  /** True when the identity has a context (or a cached refusal); does not refresh it. */
  has(identity: Identity): boolean {
    return this.#lru.has(identityContentKey(identity));
  }

  /** Forgets an identity, so the next handshake builds it again. */
  delete(identity: Identity): boolean {
    return this.#lru.delete(identityContentKey(identity));
  }

  clear(): void {
    this.#lru.clear();
  }

  stats(): ContextCacheStats {
    return {
      size: this.#lru.size,
      max: this.#lru.max,
      hits: this.#hits,
      misses: this.#misses,
      failures: this.#failures,
      evictions: this.#lru.evictions,
    };
  }
}

function unwrap(slot: Slot): SecureContext {
  if ('error' in slot) throw slot.error;
  return slot.context;
}
