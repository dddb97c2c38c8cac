import assert from 'node:assert/strict';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isRuntimeError } from '../../src/runtime/identity.js';
import {
  decodeTicketKeyRecord,
  encodeTicketKeyRecord,
  isTls13Session,
  MemoryTicketKeyStore,
  TICKET_KEY_BYTES,
  type TicketKeyStore,
  TicketKeys,
} from '../../src/runtime/ticket-keys.js';
import { tempDir } from '../support/tools.js';
import { fakeClock, memoryLogger } from './fixtures.js';

const HOUR = 3_600_000;

/** A file-backed store, as a restart would see it (written atomically by rename). */
function fileStore(path: string): TicketKeyStore {
  return {
    load: async () => readFile(path).catch(() => undefined),
    save: async (record) => {
      await writeFile(`${path}.tmp`, record, { mode: 0o600 });
      await rename(`${path}.tmp`, path);
    },
  };
}

describe('ticket key records', () => {
  it('round-trip the key and its creation time', () => {
    const key = Buffer.alloc(TICKET_KEY_BYTES, 7);
    const createdAt = new Date('2030-01-02T03:04:05.678Z');
    const record = encodeTicketKeyRecord(key, createdAt);
    assert.equal(record.length, 60);
    assert.equal(record.subarray(0, 4).toString(), 'CKT1');
    assert.deepEqual(decodeTicketKeyRecord(record, new Date()), { key, createdAt });
  });

  it('accept a bare 48-byte key as created now, and refuse anything else', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const key = Buffer.alloc(48, 1);
    assert.deepEqual(decodeTicketKeyRecord(key, now), { key, createdAt: now });
    for (const bad of [Buffer.alloc(59), Buffer.alloc(60), Buffer.alloc(0)]) {
      assert.throws(
        () => decodeTicketKeyRecord(bad, now),
        (e: unknown) => isRuntimeError(e, 'TicketKeyInvalid'),
      );
    }
    assert.throws(() => encodeTicketKeyRecord(Buffer.alloc(32), now));
  });
});

describe('TicketKeys', () => {
  it('creates and saves a key on first start, and loads the same key on the next', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const store = fileStore(join(dir, 'ticket.key'));
      const clock = fakeClock();
      const first = new TicketKeys({ store, clock });
      await first.start();
      first.stop();
      clock.advance(HOUR);
      const second = new TicketKeys({ store, clock });
      await second.start();
      second.stop();
      assert.ok(second.current.equals(first.current));
      assert.equal(second.status().createdAt, first.status().createdAt);
      assert.equal(second.status().persisted, true);
    } finally {
      cleanup();
    }
  });

  it('rotates by the clock, including a key that aged while the process was down', async () => {
    const store = new MemoryTicketKeyStore();
    const clock = fakeClock();
    const rotated: Buffer[] = [];
    const keys = new TicketKeys({
      store,
      clock,
      rotateEveryMs: 12 * HOUR,
      onRotate: (k) => rotated.push(k),
    });
    await keys.start();
    const original = keys.current;
    clock.advance(11 * HOUR);
    assert.equal(await keys.rotateIfDue(), false);
    clock.advance(HOUR);
    assert.equal(await keys.rotateIfDue(), true);
    assert.ok(!keys.current.equals(original));
    assert.equal(rotated.length, 2);
    assert.ok(rotated[1]!.equals(keys.current));
    assert.ok(decodeTicketKeyRecord(store.record!, clock.now()).key.equals(keys.current));
    assert.equal(
      keys.status().nextRotationAt,
      new Date(clock.now().getTime() + 12 * HOUR).toISOString(),
    );
    keys.stop();

    // Down for 13 hours: the stored key is due, so start() replaces it.
    clock.advance(13 * HOUR);
    const restarted = new TicketKeys({ store, clock, rotateEveryMs: 12 * HOUR });
    await restarted.start();
    restarted.stop();
    assert.ok(!restarted.current.equals(keys.current));
  });

  it('keeps the current key when saving the new one fails, and retries', async () => {
    const store = new MemoryTicketKeyStore();
    const clock = fakeClock();
    const logger = memoryLogger();
    const keys = new TicketKeys({ store, clock, logger, rotateEveryMs: HOUR });
    await keys.start();
    const current = keys.current;
    const save = store.save.bind(store);
    store.save = async () => {
      throw new Error('disk full');
    };
    clock.advance(HOUR);
    assert.equal(await keys.rotateIfDue(), false);
    assert.ok(keys.current.equals(current), 'an unsaved key would be lost on restart');
    assert.ok(logger.entries.some((e) => e.level === 'error'));
    store.save = save;
    assert.equal(await keys.rotateIfDue(), true);
    assert.ok(!keys.current.equals(current));
    keys.stop();
  });

  it('serves with an unsaved key when the store fails at start, and saves it later', async () => {
    const store = new MemoryTicketKeyStore();
    const save = store.save.bind(store);
    store.save = async () => {
      throw new Error('read-only');
    };
    const keys = new TicketKeys({ store, clock: fakeClock() });
    await keys.start();
    assert.equal(keys.current.length, 48);
    assert.equal(keys.status().persisted, false);
    store.save = save;
    assert.equal(await keys.rotateIfDue(), true, 'an unsaved key is due for saving');
    assert.equal(keys.status().persisted, true);
    keys.stop();
  });

  it('replaces a damaged stored record with a warning', async () => {
    const store = new MemoryTicketKeyStore();
    store.record = Buffer.from('not a ticket key');
    const logger = memoryLogger();
    const keys = new TicketKeys({ store, logger, clock: fakeClock() });
    await keys.start();
    keys.stop();
    assert.ok(logger.entries.some((e) => e.level === 'warn'));
    assert.equal(store.record.length, 60);
  });

  it('refuses to start twice and to rotate more than once a second', async () => {
    assert.throws(() => new TicketKeys({ rotateEveryMs: 10 }));
    const keys = new TicketKeys({ clock: fakeClock() });
    await keys.start();
    await assert.rejects(keys.start(), (e: unknown) => isRuntimeError(e, 'AlreadyStarted'));
    keys.stop();
  });
});

describe('isTls13Session', () => {
  // The first bytes of DER sessions handed to `newSession` by Node 20 / OpenSSL 3.
  it('tells TLS 1.3 sessions from TLS 1.2 ones', () => {
    assert.equal(isTls13Session(Buffer.from('308181020101020203040402', 'hex')), true);
    assert.equal(isTls13Session(Buffer.from('308180020101020203040402', 'hex')), true);
    assert.equal(isTls13Session(Buffer.from('307d020101020203030402c0', 'hex')), false);
    assert.equal(isTls13Session(Buffer.from('00', 'hex')), false);
  });
});
