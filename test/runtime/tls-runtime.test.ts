import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { constants } from 'node:crypto';
import { once } from 'node:events';
import type { RequestListener } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { type Identity, isRuntimeError } from '../../src/runtime/identity.js';
import { MemoryTicketKeyStore } from '../../src/runtime/ticket-keys.js';
import {
  normalizeState,
  probeTargets,
  type RuntimeState,
  resolveIdentity,
  TlsRuntime,
  type TlsRuntimeOptions,
} from '../../src/runtime/tls-runtime.js';
import { REPO_ROOT } from '../support/tools.js';
import {
  cloneIdentity,
  corruptPrivateHalf,
  handshake,
  makeCa,
  makeIdentity,
  memoryLogger,
  openConnection,
  type TestCa,
} from './fixtures.js';

/** Answers with the fingerprint of the certificate the server side of the connection uses. */
const handler: RequestListener = (req, res) => {
  const fingerprint = (req.socket as TLSSocket).getX509Certificate()?.fingerprint256 ?? '';
  res.setHeader('content-length', Buffer.byteLength(fingerprint));
  res.end(fingerprint);
};

const runtimes: TlsRuntime[] = [];

async function startRuntime(
  initial: RuntimeState,
  options: Partial<TlsRuntimeOptions> = {},
): Promise<{ runtime: TlsRuntime; port: number }> {
  const runtime = new TlsRuntime({ host: '127.0.0.1', port: 0, handler, ...options });
  runtimes.push(runtime);
  const result = await runtime.start(initial);
  assert.equal(result.ok, true, JSON.stringify(result));
  return { runtime, port: runtime.address()!.port };
}

function state(revision: number, server: Identity, sni: [string, Identity][] = []): RuntimeState {
  return { revision, server, sni: new Map(sni) };
}

let ca: TestCa;
let A: Identity;
let B: Identity;
let C: Identity;
let W: Identity;
let D: Identity;

before(async () => {
  ca = await makeCa();
  [A, B, C, W, D] = await Promise.all([
    makeIdentity(ca, ['a.example.test'], { alias: 'a' }),
    makeIdentity(ca, ['b.example.test'], { alias: 'b' }),
    makeIdentity(ca, ['c.example.test'], { alias: 'c' }),
    makeIdentity(ca, ['*.wild.example.test'], { alias: 'w' }),
    makeIdentity(ca, ['d.example.test'], { alias: 'd' }),
  ]);
});

after(async () => {
  await Promise.all(runtimes.map((r) => r.stop()));
});

describe('TlsRuntime: serving and swapping', () => {
  it('serves the initial identity with and without SNI, and probes it', async () => {
    const { runtime, port } = await startRuntime(state(1, A));
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
    assert.equal(
      (await handshake(port, { servername: 'any.example.test' })).fingerprint,
      A.fingerprint,
    );
    const status = runtime.status();
    assert.equal(status.revision, 1);
    assert.deepEqual(status.server, { fingerprint: A.fingerprint, alias: 'a', source: 'test' });
    assert.equal(status.lastProbe?.ok, true);
    assert.equal(status.lastProbe?.revision, 1);
    assert.deepEqual(
      status.lastProbe?.checks.map((c) => [c.binding, c.servername, c.served]),
      [['server', null, A.fingerprint]],
    );
  });

  it('serves B to the next handshake after apply returns, while an open connection stays on A', async () => {
    const { runtime, port } = await startRuntime(state(1, A));
    const open = await openConnection(port, { servername: 'a.example.test' });
    assert.equal(await open.request(), A.fingerprint);

    const applied = runtime.apply(state(2, B));
    // No await, no sleep: the swap happened inside apply().
    const [noSni, withSni] = await Promise.all([
      handshake(port),
      handshake(port, { servername: 'a.example.test' }),
    ]);
    assert.equal(noSni.fingerprint, B.fingerprint);
    assert.equal(noSni.body, B.fingerprint);
    assert.equal(withSni.fingerprint, B.fingerprint);
    const result = await applied;
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.changed, true);

    // The connection made before the swap still works, and still on A's certificate.
    assert.equal(await open.request(), A.fingerprint);
    assert.equal(open.socket.getPeerX509Certificate()?.fingerprint256, A.fingerprint);
    open.close();
    assert.equal(runtime.status().revision, 2);
  });

  it('treats a state with the same identities as a no-op that only moves the revision', async () => {
    const { runtime, port } = await startRuntime(state(1, A, [['c.example.test', C]]));
    const probeBefore = runtime.lastProbe;
    const result = await runtime.apply(
      state(2, cloneIdentity(A), [['c.example.test', cloneIdentity(C)]]),
    );
    assert.deepEqual(result, { ok: true, revision: 2, changed: false, probe: null });
    assert.equal(runtime.lastProbe, probeBefore);
    assert.equal(runtime.status().revision, 2);
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
  });

  it('probes without failing handshakes on the server (regression: the probe reset TLS 1.3)', async () => {
    const { runtime } = await startRuntime(state(1, A, [['c.example.test', C]]));
    for (let revision = 2; revision < 8; revision++) {
      const result = await runtime.apply(
        state(revision, revision % 2 ? A : B, [['c.example.test', C]]),
      );
      assert.equal(result.ok, true);
    }
    // Let the last probe connections close.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(runtime.status().tlsClientErrors, 0);
  });

  it('applies calls one at a time, in order', async () => {
    const { runtime, port } = await startRuntime(state(1, A));
    const results = await Promise.all([
      runtime.apply(state(2, B)),
      runtime.apply(state(3, C)),
      runtime.apply(state(4, A)),
    ]);
    assert.deepEqual(
      results.map((r) => [r.ok, r.revision]),
      [
        [true, 2],
        [true, 3],
        [true, 4],
      ],
    );
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
  });

  it('refuses TLS 1.0 and 1.1 clients, with and without SNI', async () => {
    const { port } = await startRuntime(state(1, A, [['c.example.test', C]]));
    for (const servername of [undefined, 'c.example.test']) {
      for (const maxVersion of ['TLSv1', 'TLSv1.1'] as const) {
        await assert.rejects(
          handshake(port, {
            ...(servername ? { servername } : {}),
            minVersion: 'TLSv1',
            maxVersion,
            // The client would refuse on its own at OpenSSL 3's default security level.
            ciphers: 'DEFAULT:@SECLEVEL=0',
          }),
          (err: NodeJS.ErrnoException) => {
            assert.equal(err.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', err.message);
            return true;
          },
        );
      }
    }
    // The same client allowed TLS 1.2 gets in, so the refusal was the server's.
    const ok = await handshake(port, { minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    assert.equal(ok.protocol, 'TLSv1.3');
  });
});

describe('TlsRuntime: SNI', () => {
  it('picks exact names, one-label wildcards, and falls back to the server identity', async () => {
    const { runtime, port } = await startRuntime(
      state(1, A, [
        ['c.example.test', C],
        ['*.wild.example.test', W],
        ['exact.wild.example.test', D],
      ]),
    );
    const cases: [string, Identity][] = [
      ['c.example.test', C],
      ['C.Example.TEST', C],
      ['c.example.test.', C],
      ['x.wild.example.test', W],
      ['exact.wild.example.test', D],
      ['a.b.wild.example.test', A],
      ['wild.example.test', A],
      ['unknown.example.test', A],
    ];
    for (const [servername, identity] of cases) {
      const seen = await handshake(port, { servername });
      assert.equal(seen.fingerprint, identity.fingerprint, servername);
      assert.equal(runtime.resolve(servername), identity, servername);
    }
  });

  it("chooses each connection's context itself, so Node's SNICallback slot stays empty (a Node upgrade that changes its internals shows here)", async () => {
    const { runtime } = await startRuntime(state(1, A));
    const server = runtime.server as unknown as Record<string | symbol, unknown>;
    const slot = Object.getOwnPropertySymbols(server).find((s) => s.description === 'snicallback');
    assert.ok(slot, 'this Node keeps the SNICallback in a symbol slot');
    assert.ok('_sharedCreds' in server, "this Node starts TLS with the server's _sharedCreds");
    assert.equal(runtime.server.listeners('connection').length, 2, "the runtime's and its tracker");
    assert.equal(server[slot], undefined);
    assert.equal((await runtime.apply(state(2, A, [['c.example.test', C]]))).ok, true);
    assert.equal(server[slot], undefined);
  });

  it('serves an SNI identity whose key type differs from the server identity (nodejs/node#54235)', async () => {
    const [rsaServer, rsaSni] = await Promise.all([
      makeIdentity(ca, ['rsa-server.example.test'], { alias: 'rsa-server', rsa: true }),
      makeIdentity(ca, ['rsa.example.test'], { alias: 'rsa', rsa: true }),
    ]);
    // An ECDSA server identity and an RSA SNI one: the regression that looped the supervisor.
    const { runtime, port } = await startRuntime(state(1, A, [['rsa.example.test', rsaSni]]));
    const rsaName = { servername: 'rsa.example.test' };
    assert.equal((await handshake(port, rsaName)).fingerprint, rsaSni.fingerprint);
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
    // And the other way round, swapped live: an RSA server identity, an ECDSA SNI one.
    const swapped = await runtime.apply(state(2, rsaServer, [['c.example.test', C]]));
    assert.equal(swapped.ok, true);
    assert.equal(
      (await handshake(port, { servername: 'c.example.test' })).fingerprint,
      C.fingerprint,
    );
    assert.equal((await handshake(port)).fingerprint, rsaServer.fingerprint);
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const back = await runtime.apply(
        state(3 + (maxVersion === 'TLSv1.2' ? 0 : 1), A, [['rsa.example.test', rsaSni]]),
      );
      assert.equal(back.ok, true);
      const seen = await handshake(port, { ...rsaName, maxVersion });
      assert.equal(seen.fingerprint, rsaSni.fingerprint, maxVersion);
    }
  });

  it('serves SNI names once the first binding arrives, and the server identity before', async () => {
    const { runtime, port } = await startRuntime(state(1, A));
    const name = { servername: 'c.example.test' };
    assert.equal((await handshake(port, name)).fingerprint, A.fingerprint);
    assert.equal((await runtime.apply(state(2, A, [['c.example.test', C]]))).ok, true);
    assert.equal((await handshake(port, name)).fingerprint, C.fingerprint);
    assert.equal((await runtime.apply(state(3, B))).ok, true);
    assert.equal((await handshake(port, name)).fingerprint, B.fingerprint);
  });

  it('builds an SNI context on first use, caches it, evicts beyond the LRU size', async () => {
    const { runtime, port } = await startRuntime(
      state(1, A, [
        ['b.example.test', B],
        ['c.example.test', C],
        ['d.example.test', D],
      ]),
      { contextCacheSize: 2, probe: { maxSniNames: 0 } },
    );
    const { contexts } = runtime;
    // The server identity is the listener's default context, never in the SNI cache.
    assert.equal(contexts.has(A), false);
    assert.equal(contexts.has(B), false);
    const base = contexts.stats();

    await handshake(port, { servername: 'b.example.test' });
    assert.equal(contexts.has(B), true);
    await handshake(port, { servername: 'b.example.test' });
    assert.deepEqual(
      [contexts.stats().misses - base.misses, contexts.stats().hits - base.hits],
      [1, 1],
    );

    await handshake(port, { servername: 'c.example.test' });
    await handshake(port, { servername: 'd.example.test' });
    const full = contexts.stats();
    assert.equal(full.size, 2);
    assert.equal(full.evictions, 1);
    assert.equal(contexts.has(B), false, 'the least recently used context was evicted');
    // Handshakes for the server identity, with or without SNI, need no cached context.
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
    assert.equal(
      (await handshake(port, { servername: 'nope.example.test' })).fingerprint,
      A.fingerprint,
    );
    assert.equal(contexts.stats().misses, full.misses);

    // A swap that leaves C unchanged (same content, new object) keeps C's context.
    const misses = contexts.stats().misses;
    const result = await runtime.apply(state(2, B, [['c.example.test', cloneIdentity(C)]]));
    assert.equal(result.ok, true);
    assert.equal(
      (await handshake(port, { servername: 'c.example.test' })).fingerprint,
      C.fingerprint,
    );
    assert.equal(contexts.stats().misses, misses, 'no context was built for C again');
  });
});

describe('TlsRuntime: refusal and rollback', () => {
  it('refuses a server identity whose key does not match its certificate, and keeps serving', async () => {
    const { runtime, port } = await startRuntime(state(1, A));
    const broken: Identity = { ...B, keyPem: C.keyPem };
    await assert.rejects(runtime.apply(state(2, broken)), (err: unknown) => {
      assert.ok(isRuntimeError(err, 'ContextBuildFailed'), String(err));
      assert.equal(err.details?.opensslCode, 'ERR_OSSL_X509_KEY_VALUES_MISMATCH');
      assert.equal(err.details?.fingerprint, B.fingerprint);
      return true;
    });
    const lines = B.keyPem.split('\n');
    const garbled: Identity = {
      ...B,
      keyPem: [...lines.slice(0, 2), ...lines.slice(3)].join('\n'),
    };
    await assert.rejects(runtime.apply(state(2, garbled)), (err: unknown) =>
      isRuntimeError(err, 'ContextBuildFailed'),
    );
    assert.equal(runtime.status().revision, 1);
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
    // And the runtime still swaps afterwards.
    assert.equal((await runtime.apply(state(3, B))).ok, true);
    assert.equal((await handshake(port)).fingerprint, B.fingerprint);
  });

  it('rolls back when the probe is not served the fingerprint the state promises', async () => {
    const logger = memoryLogger();
    const { runtime, port } = await startRuntime(state(1, A), { logger });
    const lying: Identity = { ...B, fingerprint: C.fingerprint };
    const result = await runtime.apply(state(2, lying));
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.equal(result.code, 'ProbeFailed');
    assert.equal(result.revision, 2);
    assert.equal(result.servedRevision, 1);
    assert.equal(result.rolledBack, true);
    assert.deepEqual(
      result.failures.map((f) => [f.binding, f.expected, f.served, f.error]),
      [['server', C.fingerprint, B.fingerprint, 'FingerprintMismatch']],
    );
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
    assert.equal(runtime.status().revision, 1);
    assert.equal(runtime.lastProbe?.ok, false);
    assert.equal(runtime.lastProbe?.revision, 2);
    assert.ok(logger.entries.some((e) => e.level === 'error' && /self-probe failed/.test(e.msg)));
  });

  it('rolls back a key whose private half is corrupted: it builds, but signs wrongly', async () => {
    const { runtime, port } = await startRuntime(state(1, A));
    const result = await runtime.apply(state(2, corruptPrivateHalf(B)));
    assert.ok(!result.ok);
    assert.equal(result.code, 'ProbeFailed');
    assert.equal(result.rolledBack, true);
    assert.deepEqual(
      result.failures.map((f) => [f.binding, f.served, f.error]),
      [['server', null, 'ERR_SSL_BAD_SIGNATURE']],
    );
    assert.equal((await handshake(port)).fingerprint, A.fingerprint);
  });

  it('rolls back when an SNI identity cannot be built on its first handshake', async () => {
    const logger = memoryLogger();
    const { runtime, port } = await startRuntime(state(1, A, [['c.example.test', C]]), { logger });
    const broken: Identity = { ...D, keyPem: B.keyPem };
    const result = await runtime.apply(
      state(2, A, [
        ['c.example.test', C],
        ['d.example.test', broken],
      ]),
    );
    assert.ok(!result.ok);
    assert.equal(result.rolledBack, true);
    assert.deepEqual(
      result.failures.map((f) => [f.binding, f.served]),
      [['sni:d.example.test', null]],
    );
    assert.equal(runtime.current?.sni.has('d.example.test'), false);
    assert.equal(
      (await handshake(port, { servername: 'd.example.test' })).fingerprint,
      A.fingerprint,
    );
    const refusal = logger.entries.find((e) => /SNI identity cannot be served/.test(e.msg));
    assert.equal((refusal?.obj as { code?: string } | undefined)?.code, 'ContextBuildFailed');
  });

  it('never logs key material', async () => {
    const logger = memoryLogger();
    const { runtime } = await startRuntime(state(1, A, [['c.example.test', C]]), { logger });
    await runtime.apply(state(2, B, [['c.example.test', { ...C, keyPem: D.keyPem }]]));
    await runtime.apply(state(3, { ...C, fingerprint: A.fingerprint })).catch(() => {});
    await runtime.apply(state(4, { ...C, keyPem: A.keyPem })).catch(() => {});
    await runtime.ticketKeys.rotate();
    const text = JSON.stringify(logger.entries);
    assert.ok(logger.entries.length >= 5);
    for (const identity of [A, B, C, D]) {
      const body = identity.keyPem.split('\n')[1]!;
      assert.ok(!text.includes(body), 'a key line reached the log');
    }
    assert.ok(!/PRIVATE KEY/.test(text));
    assert.ok(!text.includes(runtime.ticketKeys.current.toString('hex').slice(0, 16)));
  });
});

describe('TlsRuntime: session resumption', () => {
  const kinds = [
    { name: 'TLS 1.3 tickets', options: {}, protocol: 'TLSv1.3' },
    { name: 'TLS 1.2 tickets', options: { maxVersion: 'TLSv1.2' as const }, protocol: 'TLSv1.2' },
    {
      name: 'TLS 1.2 session ids',
      options: { maxVersion: 'TLSv1.2' as const, secureOptions: constants.SSL_OP_NO_TICKET },
      protocol: 'TLSv1.2',
    },
  ];

  for (const kind of kinds) {
    for (const servername of [undefined, 'c.example.test']) {
      const via = servername ? 'a lazily built SNI context' : 'the default context';
      it(`resumes ${kind.name} on ${via}, across a swap of every identity`, async () => {
        const { runtime, port } = await startRuntime(state(1, A, [['c.example.test', C]]), {
          probe: { maxSniNames: 0 },
          ...(kind.name.includes('session ids') ? { sessionCacheSize: 100 } : {}),
        });
        const options = { ...kind.options, ...(servername ? { servername } : {}) };
        const first = await handshake(port, options);
        assert.equal(first.protocol, kind.protocol);
        assert.equal(first.reused, false);
        assert.ok(first.session, 'the server gave a session');

        const again = await handshake(port, { ...options, session: first.session });
        assert.equal(again.reused, true, 'resumed before the swap');

        const swapped = await runtime.apply(state(2, B, [['c.example.test', D]]));
        assert.equal(swapped.ok, true);
        const resumed = await handshake(port, {
          ...options,
          session: again.session ?? first.session,
        });
        assert.equal(resumed.reused, true, 'resumed after the swap');
        if (kind.name.includes('session ids')) {
          assert.equal(runtime.status().sessionIds.resumed, 2, 'resumed by id, not by ticket');
        }
        const fresh = await handshake(port, options);
        assert.equal(fresh.reused, false);
        assert.equal(fresh.fingerprint, servername ? D.fingerprint : B.fingerprint);
      });
    }
  }

  it('resumes by session id only when the session-id cache is turned on', async () => {
    const { runtime, port } = await startRuntime(state(1, A));
    const options = kinds[2]!.options;
    const first = await handshake(port, options);
    assert.equal(first.protocol, 'TLSv1.2');
    const again = await handshake(port, { ...options, session: first.session });
    assert.equal(again.reused, false, 'no id-based resumption by default');
    assert.deepEqual(runtime.status().sessionIds, { size: 0, resumed: 0 });
  });

  for (const kind of kinds.slice(0, 2)) {
    it(`resumes ${kind.name} after a restart with the persisted ticket key`, async () => {
      const store = new MemoryTicketKeyStore();
      const one = await startRuntime(state(1, A), { ticketKeyStore: store });
      const first = await handshake(one.port, kind.options);
      assert.ok(first.session);
      await one.runtime.stop();

      const two = await startRuntime(state(1, A), { ticketKeyStore: store });
      assert.equal(two.runtime.ticketKeys.status().keyId, one.runtime.ticketKeys.status().keyId);
      const resumed = await handshake(two.port, { ...kind.options, session: first.session });
      assert.equal(resumed.reused, true);

      // Without the stored key, a restart means a full handshake.
      const three = await startRuntime(state(1, A));
      const full = await handshake(three.port, { ...kind.options, session: first.session });
      assert.equal(full.reused, false);
    });
  }

  it('keeps resuming after a ticket key rotation once the client has a new ticket', async () => {
    const { runtime, port } = await startRuntime(state(1, A), { probe: { maxSniNames: 0 } });
    const first = await handshake(port);
    const before = runtime.ticketKeys.status().keyId;
    assert.equal(await runtime.ticketKeys.rotate(), true);
    assert.notEqual(runtime.ticketKeys.status().keyId, before);
    // Node accepts one ticket key: a ticket under the previous one means a full handshake…
    const full = await handshake(port, { session: first.session });
    assert.equal(full.reused, false);
    // …that hands out a ticket under the new key.
    assert.equal((await handshake(port, { session: full.session })).reused, true);
    // A swap after the rotation installs the rotated key, not the one of start().
    await runtime.apply(state(2, B));
    assert.equal((await handshake(port, { session: full.session })).reused, true);
  });
});

describe('TlsRuntime: lifecycle', () => {
  it('refuses apply before start and after stop, and stops twice quietly', async () => {
    const runtime = new TlsRuntime({ host: '127.0.0.1', port: 0, handler });
    await assert.rejects(runtime.apply(state(1, A)), (err: unknown) =>
      isRuntimeError(err, 'NotRunning'),
    );
    await runtime.start(state(1, A));
    await assert.rejects(runtime.start(state(1, A)), (err: unknown) =>
      isRuntimeError(err, 'AlreadyStarted'),
    );
    await runtime.stop();
    await runtime.stop();
    assert.equal(runtime.server.listening, false);
    await assert.rejects(runtime.apply(state(2, B)), (err: unknown) =>
      isRuntimeError(err, 'NotRunning'),
    );
  });

  it('refuses a broken initial identity before listening', async () => {
    const runtime = new TlsRuntime({ host: '127.0.0.1', port: 0, handler });
    await assert.rejects(runtime.start(state(1, { ...A, keyPem: B.keyPem })), (err: unknown) =>
      isRuntimeError(err, 'ContextBuildFailed'),
    );
    assert.equal(runtime.server.listening, false);
    await runtime.stop();
  });

  it('closes open connections on stop after the grace period', async () => {
    const { runtime, port } = await startRuntime(state(1, A), { stopGraceMs: 50 });
    const open = await openConnection(port);
    assert.equal(await open.request(), A.fingerprint);
    const closed = new Promise((resolve) => open.socket.once('close', resolve));
    await runtime.stop();
    await closed;
    assert.equal(runtime.server.listening, false);
  });

  it('leaves no handle behind: a process that starts, swaps, rotates and stops exits by itself', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'test/runtime/lifecycle-child.ts')],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    clearTimeout(timer);
    assert.equal(signal, null, `the child did not exit by itself: ${output}`);
    assert.equal(code, 0, output);
    assert.match(output, /stopped/);
  });
});

describe('runtime state', () => {
  it('lower-cases SNI names and refuses what is not a host name or a one-label wildcard', () => {
    const ok = state(1, A, [['c.example.test', C]]);
    assert.equal(normalizeState(ok), ok, 'a normalized state is used as given');
    const fixed = normalizeState(state(1, A, [['C.Example.Test.', C]]));
    assert.deepEqual([...fixed.sni.keys()], ['c.example.test']);
    for (const bad of [
      '*.*.example.test',
      'a.*.example.test',
      '*example.test',
      'a b.test',
      '',
      '.a.test',
    ]) {
      assert.throws(
        () => normalizeState(state(1, A, [[bad, C]])),
        (e: unknown) => isRuntimeError(e, 'InvalidState'),
        bad,
      );
    }
    assert.throws(
      () => normalizeState({ ...ok, revision: -1 }),
      (e: unknown) => isRuntimeError(e, 'InvalidState'),
    );
  });

  it('serves any SNI name a store may hold: syntax only, no host name policy', () => {
    // Bindings an older version wrote: the policy refuses them only for new bindings.
    for (const held of ['*.lan', '*.com', '_svc.example.test', 'x_y.lan']) {
      const s = state(1, A, [[held, C]]);
      assert.equal(normalizeState(s), s, held);
    }
    assert.throws(
      () => normalizeState(state(1, A, [[`${'a'.repeat(63)}.`.repeat(4).slice(0, 254), C]])),
      (e: unknown) => isRuntimeError(e, 'InvalidState'),
      'longer than 253 characters',
    );
  });

  it('resolves exact before wildcard before the server identity', () => {
    const s = state(1, A, [
      ['*.example.test', W],
      ['c.example.test', C],
    ]);
    assert.equal(resolveIdentity(s, 'c.example.test'), C);
    assert.equal(resolveIdentity(s, 'x.example.test'), W);
    assert.equal(resolveIdentity(s, 'example.test'), A);
    assert.equal(resolveIdentity(s, 'localhost'), A);
  });

  it('probes the server without SNI and through the fallback, then changed SNI names first, within the limit', () => {
    const previous = state(1, A, [
      ['b.example.test', B],
      ['c.example.test', C],
    ]);
    const next = state(2, A, [
      ['b.example.test', cloneIdentity(B)],
      ['c.example.test', C],
      ['*.wild.example.test', W],
      ['d.example.test', D],
    ]);
    const targets = probeTargets(previous, next, 3);
    assert.deepEqual(
      targets.map((t) => [t.binding, t.servername, t.expected]),
      [
        ['server', null, A.fingerprint],
        ['server (SNI fallback)', 'certkeeper-probe.invalid', A.fingerprint],
        ['sni:*.wild.example.test', 'certkeeper-probe.wild.example.test', W.fingerprint],
        ['sni:d.example.test', 'd.example.test', D.fingerprint],
        ['sni:b.example.test', 'b.example.test', B.fingerprint],
      ],
    );
    assert.equal(probeTargets(previous, next, 0).length, 2);
    // With no SNI binding at all, the fallback is the same default context: one check.
    assert.deepEqual(
      probeTargets(previous, state(3, B), 8).map((t) => t.binding),
      ['server'],
    );
  });
});
