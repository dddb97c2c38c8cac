import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ContextCache, LruCache } from '../../src/runtime/context-cache.js';
import {
  type Identity,
  type IdentityRef,
  isRuntimeError,
  type RuntimeError,
} from '../../src/runtime/identity.js';
import { cloneIdentity, makeCa, makeIdentity } from './fixtures.js';

describe('LruCache', () => {
  it('drops the least recently used entry; reads refresh, has() does not', () => {
    const lru = new LruCache<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    assert.equal(lru.get('a'), 1);
    lru.set('c', 3);
    assert.deepEqual([lru.has('a'), lru.has('b'), lru.has('c')], [true, false, true]);
    assert.equal(lru.has('a'), true);
    lru.set('d', 4);
    assert.deepEqual([lru.has('a'), lru.has('c'), lru.has('d')], [false, true, true]);
    assert.equal(lru.evictions, 2);
    assert.equal(lru.size, 2);
  });

  it('refuses a size that is not a positive integer', () => {
    for (const size of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => new LruCache(size),
        (e: unknown) => isRuntimeError(e, 'InvalidState'),
      );
    }
  });
});

describe('ContextCache', () => {
  let good: Identity;
  let other: Identity;
  before(async () => {
    const ca = await makeCa();
    [good, other] = await Promise.all([
      makeIdentity(ca, ['good.example.test']),
      makeIdentity(ca, ['other.example.test']),
    ]);
  });

  it('builds once per content, whatever object carries it', () => {
    let builds = 0;
    const cache = new ContextCache({
      max: 10,
      build: (identity) => {
        builds++;
        return createSecureContext({ key: identity.keyPem, cert: identity.certPem });
      },
    });
    const first = cache.get(good);
    assert.equal(cache.get(cloneIdentity(good)), first);
    assert.equal(builds, 1);
    assert.notEqual(cache.get(other), first);
    assert.deepEqual(cache.stats(), {
      size: 2,
      max: 10,
      hits: 1,
      misses: 2,
      failures: 0,
      evictions: 0,
    });
  });

  it('tells apart the same leaf with another key or chain', () => {
    const cache = new ContextCache({ max: 10 });
    cache.get(good);
    assert.equal(cache.has({ ...good, keyPem: other.keyPem }), false);
    assert.equal(
      cache.has({ ...good, certPem: good.certPem.split('-----END CERTIFICATE-----')[0]! }),
      false,
    );
  });

  it('caches a refusal: one build attempt and one report per broken identity', () => {
    const failures: RuntimeError[] = [];
    const cache = new ContextCache({ max: 10, onFailure: (_i, e) => failures.push(e) });
    const broken = { ...good, keyPem: other.keyPem };
    for (let i = 0; i < 3; i++) {
      assert.throws(
        () => cache.get(broken),
        (e: unknown) => isRuntimeError(e, 'ContextBuildFailed'),
      );
    }
    assert.equal(failures.length, 1);
    assert.equal(cache.stats().failures, 1);
    assert.equal(cache.stats().hits, 2);
    // Forgetting it allows another attempt.
    cache.delete(broken);
    assert.throws(() => cache.get(broken));
    assert.equal(failures.length, 2);
  });

  it('evicts beyond its size', () => {
    const contexts: SecureContext[] = [];
    const cache = new ContextCache({ max: 1 });
    contexts.push(cache.get(good), cache.get(other));
    assert.equal(cache.has(good), false);
    assert.equal(cache.has(other), true);
    assert.equal(cache.stats().evictions, 1);
  });

  it('loads a reference once for concurrent handshakes, then answers from the cache at once', async () => {
    let loads = 0;
    const ref: IdentityRef = {
      ref: 'good@1',
      fingerprint: good.fingerprint,
      source: 'test',
      load: async () => {
        loads++;
        await new Promise((r) => setTimeout(r, 10));
        return good;
      },
    };
    const cache = new ContextCache({ max: 4 });
    const first = cache.getRef(ref);
    const second = cache.getRef(ref);
    assert.ok(first instanceof Promise && second instanceof Promise);
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a, b);
    assert.equal(loads, 1);
    const third = cache.getRef(ref);
    assert.equal(third, a, 'a cached reference answers synchronously');
    assert.deepEqual([cache.stats().misses, cache.stats().hits], [1, 1]);
  });

  it('caches a reference that cannot be loaded, naming it in the refusal', async () => {
    const reported: string[] = [];
    let loads = 0;
    const ref: IdentityRef = {
      ref: 'gone@2',
      fingerprint: good.fingerprint,
      alias: 'gone',
      source: 'keystore',
      load: async () => {
        loads++;
        throw Object.assign(new Error('ciphertext altered'), { code: 'StoreCorrupt' });
      },
    };
    const cache = new ContextCache({
      max: 4,
      onFailure: (i, e) => reported.push(`${i.alias} ${e.code}`),
    });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        Promise.resolve().then(() => cache.getRef(ref)),
        (err: RuntimeError) =>
          err.code === 'ContextBuildFailed' &&
          /"gone".*cannot be loaded \(StoreCorrupt/.test(err.message),
      );
    }
    assert.equal(loads, 1);
    assert.deepEqual(reported, ['gone ContextBuildFailed']);
  });
});
