import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isCoreError } from '../../src/core/errors.js';
import { looksLikePem, parsePemBlocks, toPem } from '../../src/core/pem.js';
import { needsCorpus, PYCA } from '../support/tools.js';

describe('PEM blocks', () => {
  const withGarbage = join(PYCA, 'x509/cryptography.io.with_garbage.pem');
  it('finds blocks among free text and dummy blocks, in order', {
    skip: needsCorpus(withGarbage),
  }, () => {
    const blocks = parsePemBlocks(readFileSync(withGarbage));
    assert.deepEqual(
      blocks.map((b) => b.label),
      ['PRIVATE KEY', 'CERTIFICATE', 'PRIVATE KEY'],
    );
  });

  it('accepts CRLF line ends and reads RFC 1421 headers', () => {
    const der = Buffer.from('hello world, this is DER');
    const pem = toPem('RSA PRIVATE KEY', der).replace(
      '-----\n',
      '-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n',
    );
    const [block] = parsePemBlocks(pem.replace(/\n/g, '\r\n'));
    assert.deepEqual(block!.der, der);
    assert.equal(block!.headers['Proc-Type'], '4,ENCRYPTED');
    assert.equal(block!.headers['DEK-Info'], 'AES-128-CBC,00');
  });

  const oldHeader = join(PYCA, 'x509/cryptography.io.old_header.pem');
  it('reads the old X509 CERTIFICATE label', { skip: needsCorpus(oldHeader) }, () => {
    const blocks = parsePemBlocks(readFileSync(oldHeader));
    assert.equal(blocks[0]!.label, 'X509 CERTIFICATE');
  });

  it('rejects a block whose body is not base64 as MalformedInput', () => {
    assert.throws(
      () =>
        parsePemBlocks('-----BEGIN CERTIFICATE-----\n#### not base64\n-----END CERTIFICATE-----\n'),
      (e) => isCoreError(e, 'MalformedInput'),
    );
  });

  it('ignores a BEGIN without a matching END', () => {
    assert.equal(parsePemBlocks('-----BEGIN CERTIFICATE-----\nAAAA\n').length, 0);
    assert.ok(looksLikePem(Buffer.from('junk -----BEGIN X-----')));
    assert.ok(!looksLikePem(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])));
  });
});
