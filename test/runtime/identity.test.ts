import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { parsePemBlocks } from '../../src/core/pem.js';
import {
  buildSecureContext,
  type Identity,
  identityContentKey,
  identityFromPem,
  isRuntimeError,
  RUNTIME_ERROR_CODES,
  RuntimeError,
} from '../../src/runtime/identity.js';
import { tool } from '../support/tools.js';
import { makeCa, makeIdentity, type TestCa } from './fixtures.js';

describe('identityFromPem', () => {
  let ca: TestCa;
  let leaf: Identity;
  before(async () => {
    ca = await makeCa();
    leaf = await makeIdentity(ca, ['leaf.example.test']);
  });

  it('computes the leaf fingerprint as openssl prints it', async () => {
    const leafPem = leaf.certPem.slice(0, leaf.certPem.indexOf('-----END CERTIFICATE-----') + 25);
    const out = await tool('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], leafPem);
    assert.equal(out.trim().split('=')[1], leaf.fingerprint);
  });

  it('takes a PKCS#8 DER key and a separate chain, leaf first', () => {
    const blocks = parsePemBlocks(leaf.certPem);
    const keyDer = parsePemBlocks(leaf.keyPem)[0]!.der;
    const identity = identityFromPem({
      key: keyDer,
      cert: leaf.certPem.slice(0, leaf.certPem.indexOf('-----END CERTIFICATE-----') + 25),
      chain: ca.certPem,
      source: 'keystore',
      alias: 'web',
    });
    assert.equal(identity.fingerprint, leaf.fingerprint);
    assert.deepEqual(
      parsePemBlocks(identity.certPem).map((b) => b.der),
      blocks.map((b) => b.der),
    );
    assert.equal(identity.alias, 'web');
    buildSecureContext(identity);
  });

  it('says which identity cannot be served and why, without the key', () => {
    const other = leaf.keyPem;
    assert.throws(
      () => buildSecureContext({ ...leaf, alias: 'web', keyPem: 'garbage' }),
      (err: unknown) => {
        assert.ok(isRuntimeError(err, 'ContextBuildFailed'));
        assert.match(err.message, /"web"/);
        assert.ok(err.message.includes(leaf.fingerprint));
        assert.ok(!err.message.includes(other.split('\n')[1]!));
        return true;
      },
    );
  });

  it('gives equal content equal keys', () => {
    assert.equal(identityContentKey(leaf), identityContentKey({ ...leaf, source: 'elsewhere' }));
    assert.notEqual(identityContentKey(leaf), identityContentKey({ ...leaf, certPem: ca.certPem }));
  });
});

describe('RuntimeError', () => {
  it('carries a catalogued code, the cause and details', () => {
    const cause = new Error('inner');
    const err = new RuntimeError('ProbeFailed', 'x', { cause, details: { revision: 3 } });
    assert.ok(err.code in RUNTIME_ERROR_CODES);
    assert.equal(err.cause, cause);
    assert.deepEqual(err.details, { revision: 3 });
    assert.ok(isRuntimeError(err, 'ProbeFailed'));
    assert.ok(!isRuntimeError(err, 'NotRunning'));
  });
});
