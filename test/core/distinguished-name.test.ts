/**
 * One printer of distinguished names (RFC 4514), for subjects and `dirName` SANs alike,
 * on a certificate made at test time by `openssl req -x509 -multivalue-rdn`.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { describeName, rfc4514Text } from '../../src/core/distinguished-name.js';
import { generalNameToString, subjectAltNameListOf } from '../../src/core/extensions.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { needs, tempDir, tool } from '../support/tools.js';

describe('rfc4514Text', () => {
  it('writes RDNs last to first, joins a multi-valued RDN with +, and escapes', () => {
    const text = rfc4514Text([
      [{ oid: '2.5.4.6', value: 'US' }],
      [{ oid: '2.5.4.10', value: 'Acme, Inc.' }],
      [
        { oid: '2.5.4.11', value: 'Web' },
        { oid: '2.5.4.3', value: 'a+b;c' },
      ],
      [{ oid: '2.5.4.3', value: ' #lead' }],
      [{ oid: '1.2.3.4', value: 'trail ' }],
    ]);
    assert.equal(text, '1.2.3.4=trail\\ ,CN=\\ #lead,OU=Web+CN=a\\+b\\;c,O=Acme\\, Inc.,C=US');
  });
});

describe('describeName on an openssl-made certificate', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  let cert: Certificate;

  before(async () => {
    ({ dir, cleanup } = tempDir('certkeeper-dn-'));
    const config = join(dir, 'req.cnf');
    writeFileSync(
      config,
      '[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nC=UK\nO=My+Org\nCN=foo\n',
    );
    const pem = join(dir, 'cert.pem');
    await tool('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      pem,
      '-days',
      '1',
      '-config',
      config,
      '-multivalue-rdn',
      '-subj',
      '/C=US/O=Acme, Inc./OU=Web+CN=a;b/CN= lead',
      '-addext',
      'subjectAltName=dirName:dir_sect',
    ]);
    cert = parseCertificate(parsePemBlocks(readFileSync(pem))[0]!.der);
  });
  after(() => cleanup());

  it('gives the subject as RFC 4514 text and as attributes', () => {
    assert.equal(cert.subject.rfc4514, 'CN=\\ lead,CN=a\\;b+OU=Web,O=Acme\\, Inc.,C=US');
    assert.deepEqual(
      describeName(cert.subject.der).attributes.map((a) => `${a.type}:${a.value}`),
      ['C:US', 'O:Acme, Inc.', 'CN:a;b', 'OU:Web', 'CN: lead'],
    );
  });

  it('prints a dirName SAN with the same printer as a subject', () => {
    const dn = subjectAltNameListOf(cert)?.find((n) => n.kind === 'dn');
    assert.ok(dn && dn.kind === 'dn');
    assert.equal(generalNameToString(dn), `dirName:${describeName(dn.der).rfc4514}`);
    assert.equal(generalNameToString(dn), 'dirName:CN=foo,O=My\\+Org,C=UK');
  });
});
