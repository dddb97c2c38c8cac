/**
 * A real keystore for service tests: a fresh data directory with a real SQLite store,
 * opened through `service/`'s own `openKeystore`, removed after the test.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CodedError } from '../../src/core/errors.js';
import { type Keystore, openKeystore } from '../../src/service/keystore.js';
import type { AuditRecord } from '../../src/store/store.js';
import { tempDir } from './tools.js';

export interface TestKeystore {
  ctx: Keystore;
  /** The audit log's events (records without a revision), oldest first. */
  audited(): Promise<AuditRecord[]>;
  /** What `serverPinnedBy` answers; set it to pin the server identity. */
  pin: { by: string | undefined };
  cleanup(): Promise<void>;
}

/** Opens a new keystore in a temp dir: no trust anchors, the system clock unless given. */
export async function testKeystore(options: { now?: () => Date } = {}): Promise<TestKeystore> {
  const { dir, cleanup } = tempDir();
  const ctx = await openKeystore(
    join(dir, 'data'),
    {},
    { create: true, trusted: [], ...(options.now ? { now: options.now } : {}) },
  );
  const audited = async () =>
    (await ctx.store.listAudit()).filter((r) => r.revision === null).reverse();
  const pin: { by: string | undefined } = { by: undefined };
  ctx.serverPinnedBy = () => pin.by;
  return {
    ctx,
    audited,
    pin,
    cleanup: async () => {
      await ctx.close();
      cleanup();
    },
  };
}

/** Asserts that `operation` fails with `code` and leaves the store at its revision. */
export async function refusesWithoutWriting(
  ctx: Keystore,
  operation: () => Promise<unknown>,
  code: string,
): Promise<CodedError<string>> {
  const before = await ctx.store.revision();
  let caught: unknown;
  await assert.rejects(operation(), (err: unknown) => {
    caught = err;
    assert.ok(err instanceof CodedError && err.code === code, `expected ${code}, got ${err}`);
    return true;
  });
  assert.equal(await ctx.store.revision(), before, `${code}: the store revision is unchanged`);
  return caught as CodedError<string>;
}

/** `text` as the bytes of an uploaded file. */
export const file = (name: string, text: string | Uint8Array) => ({
  name,
  bytes: typeof text === 'string' ? Buffer.from(text) : text,
});

/** The upload of a makeHierarchy leaf: its certificate, the intermediate and its key, in one PEM file. */
export const bundleOf = (pki: {
  leaf: { certPem: string; keyPem: string };
  intermediate: { certPem: string };
}) => file('bundle.pem', pki.leaf.certPem + pki.intermediate.certPem + pki.leaf.keyPem);
