/**
 * Host name coverage: pure matching rules, then certificates made at test time with
 * `openssl req -x509 -addext subjectAltName=…` (self-signed EC P-256).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { isCoreError } from '../../src/core/errors.js';
import { subjectAltNamesOf } from '../../src/core/extensions.js';
import {
  certificateCoversHost,
  commonNameProblem,
  dnsPatternMatches,
  dnsPatternProblem,
  isPublicSuffix,
  isValidDnsName,
  isValidDnsPattern,
  parseHost,
} from '../../src/core/hostname.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { needs, tempDir, tool } from '../support/tools.js';

describe('parseHost', () => {
  it('lower-cases DNS names and drops the trailing dot', () => {
    assert.deepEqual(parseHost('WWW.Example.COM.'), { kind: 'DNS', value: 'www.example.com' });
  });

  it('canonicalises IPv4 and IPv6 literals (RFC 5952), brackets allowed', () => {
    assert.deepEqual(parseHost('192.0.2.1'), { kind: 'IP', value: '192.0.2.1' });
    assert.deepEqual(parseHost('2001:DB8:0:0:0:0:0:1'), { kind: 'IP', value: '2001:db8::1' });
    assert.deepEqual(parseHost('[::1]'), { kind: 'IP', value: '::1' });
    assert.deepEqual(parseHost('::ffff:192.0.2.1'), { kind: 'IP', value: '::ffff:c000:201' });
  });

  it('refuses what is neither a DNS name nor an IP literal', () => {
    for (const bad of [
      '',
      'exa mple.com',
      'foo_bar.example.com',
      '192.168.001.001',
      '1.2.3',
      '-a.com',
    ]) {
      assert.throws(
        () => parseHost(bad),
        (err: unknown) => isCoreError(err, 'MalformedInput'),
        bad,
      );
    }
  });
});

describe('dnsPatternMatches', () => {
  it('matches *.example.com to www.example.com but not to a.b.example.com or example.com', () => {
    assert.equal(dnsPatternMatches('*.example.com', 'www.example.com'), true);
    assert.equal(dnsPatternMatches('*.example.com', 'a.b.example.com'), false);
    assert.equal(dnsPatternMatches('*.example.com', 'example.com'), false);
  });

  it('matches case-insensitively', () => {
    assert.equal(dnsPatternMatches('WWW.Example.com', 'www.example.com'), true);
  });

  it('refuses partial, inner and public-suffix wildcards', () => {
    assert.equal(dnsPatternMatches('f*o.example.com', 'foo.example.com'), false);
    assert.equal(dnsPatternMatches('www.*.com', 'www.example.com'), false);
    assert.equal(dnsPatternMatches('*.com', 'example.com'), false);
    assert.equal(dnsPatternMatches('*', 'com'), false);
  });

  it('never matches a SAN that is not in preferred name syntax', () => {
    assert.equal(dnsPatternMatches('foo_bar.example.com', 'foo_bar.example.com'), false);
    assert.equal(dnsPatternMatches('www.example.com.', 'www.example.com'), false);
  });
});

describe('isValidDnsName and isValidDnsPattern: the one host name rule', () => {
  it('accepts LDH names of any letter case and IDNs as A-labels', () => {
    for (const ok of ['www.example.com', 'WWW.Example.COM', 'xn--bcher-kva.example', 'a-b.c1.io']) {
      assert.equal(isValidDnsName(ok), true, ok);
    }
  });

  it('refuses underscores, empty labels, edge hyphens, long labels and a trailing dot', () => {
    for (const bad of [
      '_acme-challenge.example.com',
      'foo_bar.example.com',
      'a..example.com',
      '-a.example.com',
      'a-.example.com',
      `${'a'.repeat(64)}.example.com`,
      `${'a.'.repeat(127)}com`,
      'www.example.com.',
      '',
    ]) {
      assert.equal(isValidDnsName(bad), false, bad);
    }
  });

  it('refuses a name whose last label a browser would read as an IPv4 address', () => {
    assert.equal(isValidDnsName('192.0.2.1'), false);
    assert.equal(isValidDnsName('example.0x7f'), false);
    assert.equal(isValidDnsName('example.123'), false);
  });

  it('takes a wildcard only as the whole left-most label', () => {
    assert.equal(isValidDnsPattern('*.example.com'), true);
    assert.equal(isValidDnsPattern('f*.example.com'), false);
    assert.equal(isValidDnsPattern('www.*.example.com'), false);
    assert.equal(isValidDnsName('*.example.com'), false);
  });
});

describe('wildcards under a public suffix (Public Suffix List)', () => {
  it('knows ICANN and private-section suffixes, and treats one label as a suffix', () => {
    for (const suffix of ['com', 'co.uk', 'CO.UK', 's3.amazonaws.com', 'github.io', 'test']) {
      assert.equal(isPublicSuffix(suffix), true, suffix);
    }
    for (const name of ['example.com', 'example.co.uk', 'bucket.s3.amazonaws.com', 'x.test']) {
      assert.equal(isPublicSuffix(name), false, name);
    }
  });

  it('refuses *.co.uk and *.s3.amazonaws.com as patterns, and says why', () => {
    for (const pattern of ['*.co.uk', '*.s3.amazonaws.com', '*.com', '*.github.io']) {
      assert.equal(isValidDnsPattern(pattern), false, pattern);
      assert.match(dnsPatternProblem(pattern) ?? '', /public suffix/, pattern);
    }
    assert.equal(isValidDnsPattern('*.example.co.uk'), true);
    assert.equal(isValidDnsPattern('*.bucket.s3.amazonaws.com'), true);
    assert.equal(dnsPatternProblem('*.example.co.uk'), undefined);
    assert.match(dnsPatternProblem('foo_bar.example') ?? '', /not a valid DNS name/);
  });

  it('never matches a host with a wildcard under a public suffix', () => {
    assert.equal(dnsPatternMatches('*.co.uk', 'example.co.uk'), false);
    assert.equal(dnsPatternMatches('*.s3.amazonaws.com', 'example.s3.amazonaws.com'), false);
    assert.equal(dnsPatternMatches('*.example.co.uk', 'www.example.co.uk'), true);
  });
});

describe('commonNameProblem', () => {
  const san = [
    { kind: 'dns' as const, value: 'www.example.com' },
    { kind: 'ip' as const, bytes: Buffer.from([192, 0, 2, 1]) },
  ];

  it('accepts a CN that repeats a SAN, and display text', () => {
    assert.equal(commonNameProblem('www.example.com', san), undefined);
    assert.equal(commonNameProblem('192.0.2.1', san), undefined);
    assert.equal(commonNameProblem('Acme web server', san), undefined);
  });

  it('refuses an IP CN that is not the canonical text of an IP SAN', () => {
    assert.ok(commonNameProblem('192.000.002.001', san));
    assert.ok(commonNameProblem('0xC0000201', san));
  });

  it('refuses a CN that differs in case, or names another host of the same zone', () => {
    assert.ok(commonNameProblem('WWW.example.com', san));
    assert.ok(commonNameProblem('mail.example.com', san));
  });
});

describe('certificateCoversHost on openssl-made certificates', { skip: needs('openssl') }, () => {
  let dir = '';
  let cleanup = () => {};
  const made: Record<string, Certificate> = {};

  async function selfSigned(name: string, cn: string, san?: string) {
    const pem = join(dir, `${name}.pem`);
    await tool('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      pem,
      '-subj',
      `/CN=${cn}`,
      '-days',
      '30',
      ...(san ? ['-addext', `subjectAltName=${san}`] : []),
    ]);
    made[name] = parseCertificate(parsePemBlocks(readFileSync(pem))[0]!.der);
  }

  before(async () => {
    ({ dir, cleanup } = tempDir('certkeeper-hostname-'));
    await selfSigned('wildcard', 'example.com', 'DNS:*.example.com,DNS:example.net');
    await selfSigned('ips', 'ip server', 'IP:192.0.2.1,IP:2001:db8::1,DNS:192.0.2.2');
    await selfSigned('cn-only', 'www.example.com');
    await selfSigned('cn-other', 'www.example.com', 'DNS:other.example.com');
    await selfSigned('partial', 'partial', 'DNS:f*o.example.com,DNS:*.com');
    await selfSigned('suffix', 'suffix', 'DNS:*.co.uk,DNS:*.s3.amazonaws.com,DNS:*.example.co.uk');
  });
  after(() => cleanup());

  it('matches *.example.com to www.example.com but not to a.b.example.com or example.com', () => {
    const cert = made.wildcard!;
    assert.equal(certificateCoversHost(cert, 'www.example.com'), true);
    assert.equal(certificateCoversHost(cert, 'WWW.EXAMPLE.COM.'), true);
    assert.equal(certificateCoversHost(cert, 'a.b.example.com'), false);
    assert.equal(certificateCoversHost(cert, 'example.com'), false);
    assert.equal(certificateCoversHost(cert, 'example.net'), true);
  });

  it('matches IPv4 and IPv6 hosts against iPAddress SANs only', () => {
    const cert = made.ips!;
    assert.equal(certificateCoversHost(cert, '192.0.2.1'), true);
    assert.equal(certificateCoversHost(cert, '2001:DB8:0:0::1'), true);
    assert.equal(certificateCoversHost(cert, '[2001:db8::1]'), true);
    assert.equal(certificateCoversHost(cert, '192.0.2.3'), false);
    // 192.0.2.2 is only a dNSName SAN, which an IP host never matches.
    assert.equal(certificateCoversHost(cert, '192.0.2.2'), false);
  });

  it('never falls back to the common name', () => {
    assert.equal(certificateCoversHost(made['cn-only']!, 'www.example.com'), false);
    assert.equal(certificateCoversHost(made['cn-other']!, 'www.example.com'), false);
    assert.equal(certificateCoversHost(made['cn-other']!, 'other.example.com'), true);
  });

  it('refuses partial wildcards and wildcards over a single label', () => {
    assert.equal(certificateCoversHost(made.partial!, 'foo.example.com'), false);
    assert.equal(certificateCoversHost(made.partial!, 'example.com'), false);
  });

  it('refuses wildcards directly under a multi-label or private public suffix', () => {
    const cert = made.suffix!;
    assert.equal(certificateCoversHost(cert, 'example.co.uk'), false);
    assert.equal(certificateCoversHost(cert, 'example.s3.amazonaws.com'), false);
    assert.equal(certificateCoversHost(cert, 'www.example.co.uk'), true);
  });

  it('returns false for a host that is not a host', () => {
    assert.equal(certificateCoversHost(made.wildcard!, 'not a host'), false);
  });

  it('lists SANs by kind with canonical IP text', () => {
    assert.deepEqual(subjectAltNamesOf(made.ips!), {
      dns: ['192.0.2.2'],
      ip: ['192.0.2.1', '2001:db8::1'],
      email: [],
      uri: [],
      other: [],
    });
  });
});
