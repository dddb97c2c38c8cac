/**
 * Certificate hierarchies made by `openssl` at test time, so that tests read certificates
 * from an implementation other than our own generator (which test/support/pki.ts uses).
 * Every certificate gets its extensions from a named section of one ext.cnf, and leaves
 * `<name>.key`, `<name>.csr` (if issued) and `<name>.pem` in the directory.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Certificate, parseCertificate } from '../../src/core/certificate.js';
import { parsePemBlocks } from '../../src/core/pem.js';
import { tempDir, tool } from './tools.js';

/** A key for `openssl req -newkey`: an EC curve, or RSA of a given size. */
export type KeyType = 'P-256' | 'P-384' | `rsa:${number}`;

/** What may differ between certificates; unset: a P-256 key, 30 days, SHA-256, a random serial. */
export interface CertOptions {
  key?: KeyType;
  days?: number;
  digest?: string;
  serial?: bigint;
}

/** A temporary directory of openssl-made keys and certificates, and the means to add to it. */
export interface OpensslPki {
  readonly dir: string;
  /** Every certificate made so far, by name, so tests need not parse the files again. */
  readonly certs: Record<string, Certificate>;
  /** The path of a file in the directory, e.g. `at('leaf.key')`. */
  at(file: string): string;
  /** A self-signed `<name>.pem` for a fresh `<name>.key`, extensions from `section`. */
  selfSigned(
    name: string,
    subject: string,
    section: string,
    options?: CertOptions,
  ): Promise<Certificate>;
  /** `<name>.pem` for a fresh `<name>.key`, signed by the earlier-made `ca`, extensions from `section`. */
  issue(
    name: string,
    subject: string,
    ca: string,
    section: string,
    options?: CertOptions,
  ): Promise<Certificate>;
  /** Removes the directory. */
  cleanup(): void;
}

/** The extensions of a root CA, as openssl's v3_ca with keyUsage spelled out. */
export const ROOT_SECTION = [
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid:always',
  'basicConstraints = critical,CA:TRUE',
  'keyUsage = critical,keyCertSign,cRLSign',
] as const;

/** The extensions of an intermediate CA. */
export const CA_SECTION = [
  'basicConstraints = critical,CA:TRUE',
  'keyUsage = critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
] as const;

/** The extensions of a TLS server certificate for `subjectAltName` (e.g. `DNS:a.test`). */
export const leafSection = (subjectAltName: string): readonly string[] => [
  'basicConstraints = critical,CA:FALSE',
  'keyUsage = critical,digitalSignature',
  'extendedKeyUsage = serverAuth',
  `subjectAltName = ${subjectAltName}`,
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
];

const keyArgs = (key: KeyType = 'P-256') => [
  '-newkey',
  ...(key.startsWith('rsa:') ? [key] : ['ec', '-pkeyopt', `ec_paramgen_curve:${key}`]),
  '-nodes',
];

function serialHex(serial: bigint | undefined): string {
  if (serial !== undefined) return `0x${serial.toString(16)}`;
  // The size openssl draws for itself (159 bits): CA-issued certificates then have serials
  // as long as those of `req -x509` and `-CAcreateserial`, at the 20-byte limit of RFC 5280.
  const bytes = randomBytes(20);
  bytes[0]! &= 0x7f;
  return `0x${bytes.toString('hex')}`;
}

/** A fresh temp dir whose ext.cnf holds `sections` (each a list of `name = value` lines). */
export function opensslPki(
  sections: Record<string, readonly string[]>,
  prefix?: string,
): OpensslPki {
  const { dir, cleanup } = tempDir(prefix);
  const at = (file: string) => join(dir, file);
  const openssl = (...args: string[]) => tool('openssl', args);
  const certs: Record<string, Certificate> = {};
  // `openssl req -config` wants a distinguished_name section even when -subj names the subject.
  const lines = ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', 'CN = unused'];
  for (const [section, body] of Object.entries(sections)) lines.push(`[${section}]`, ...body);
  writeFileSync(at('ext.cnf'), `${lines.join('\n')}\n`);

  const newKey = (name: string, subject: string, options: CertOptions) => [
    ...keyArgs(options.key),
    '-keyout',
    at(`${name}.key`),
    '-subj',
    subject,
  ];
  // What both ways of signing share: validity, digest, extensions and the output.
  const sign = async (name: string, section: string, options: CertOptions, command: string[]) => {
    await openssl(
      ...command,
      '-days',
      String(options.days ?? 30),
      `-${options.digest ?? 'sha256'}`,
      '-extensions',
      section,
      '-out',
      at(`${name}.pem`),
    );
    const cert = parseCertificate(parsePemBlocks(readFileSync(at(`${name}.pem`)))[0]!.der);
    certs[name] = cert;
    return cert;
  };

  return {
    dir,
    certs,
    at,
    cleanup,
    selfSigned: (name, subject, section, options = {}) =>
      sign(name, section, options, [
        'req',
        '-x509',
        ...newKey(name, subject, options),
        // Unlike `x509 -req`, `req -x509` draws a random serial by itself.
        ...(options.serial === undefined ? [] : ['-set_serial', serialHex(options.serial)]),
        '-config',
        at('ext.cnf'),
      ]),
    async issue(name, subject, ca, section, options = {}) {
      await openssl(
        'req',
        '-new',
        ...newKey(name, subject, options),
        '-config',
        at('ext.cnf'),
        '-out',
        at(`${name}.csr`),
      );
      return sign(name, section, options, [
        'x509',
        '-req',
        '-in',
        at(`${name}.csr`),
        '-CA',
        at(`${ca}.pem`),
        '-CAkey',
        at(`${ca}.key`),
        '-set_serial',
        serialHex(options.serial),
        '-extfile',
        at('ext.cnf'),
      ]);
    },
  };
}
