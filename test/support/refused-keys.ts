/**
 * Server identities that `certkeeper import` refuses for their key, made by `openssl` at
 * test time: an RSA-1024, an Ed448, a secp256k1 and a DSA leaf, each issued for
 * `localhost` by one P-256 CA with well-formed extensions, so that the key is the only
 * thing wrong with them. secp256k1 and DSA also load in OpenSSL, yet no Node client
 * completes a handshake with them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tool } from './tools.js';

export type RefusedKind = 'rsa-1024' | 'ed448' | 'secp256k1' | 'dsa';

export const REFUSED_KINDS: readonly RefusedKind[] = ['rsa-1024', 'ed448', 'secp256k1', 'dsa'];

/** The files of one identity: `cert` holds the leaf then the CA, `key` the leaf's key (PEM). */
export interface RefusedIdentity {
  kind: RefusedKind;
  cert: string;
  key: string;
}

/** The openssl commands that make each key, into `out`. */
const KEY_COMMANDS: Record<RefusedKind, (out: string, dir: string) => string[][]> = {
  'rsa-1024': (out) => [
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', out],
  ],
  ed448: (out) => [['genpkey', '-algorithm', 'ed448', '-out', out]],
  secp256k1: (out) => [['ecparam', '-name', 'secp256k1', '-genkey', '-noout', '-out', out]],
  dsa: (out, dir) => [
    ['dsaparam', '-out', join(dir, 'dsa.param'), '2048'],
    ['genpkey', '-paramfile', join(dir, 'dsa.param'), '-out', out],
  ],
};

const EXTENSIONS = [
  '[ca]',
  'basicConstraints = critical, CA:true',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
  '[leaf]',
  'basicConstraints = critical, CA:false',
  'keyUsage = critical, digitalSignature, keyEncipherment',
  'extendedKeyUsage = serverAuth',
  'subjectAltName = DNS:localhost, IP:127.0.0.1',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
  '[req]',
  'distinguished_name = dn',
  'prompt = no',
  '[dn]',
  'CN = unused',
  '',
].join('\n');

/** Makes the four identities in `dir` (which must exist), the files named for their kind. */
export async function makeRefusedIdentities(
  dir: string,
): Promise<Record<RefusedKind, RefusedIdentity>> {
  const at = (name: string) => join(dir, name);
  const openssl = (args: string[]) => tool('openssl', args);
  writeFileSync(at('refused.cnf'), EXTENSIONS);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at('ca.key')]);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    at('ca.key'),
    '-subj',
    '/CN=Refused Keys Test CA',
    '-days',
    '30',
    '-sha256',
    '-config',
    at('refused.cnf'),
    '-extensions',
    'ca',
    '-out',
    at('ca.pem'),
  ]);
  const made = await Promise.all(
    REFUSED_KINDS.map(async (kind): Promise<RefusedIdentity> => {
      const key = at(`${kind}.key`);
      for (const args of KEY_COMMANDS[kind](key, dir)) await openssl(args);
      await openssl([
        'req',
        '-new',
        '-key',
        key,
        '-subj',
        '/CN=localhost',
        '-config',
        at('refused.cnf'),
        '-out',
        at(`${kind}.csr`),
      ]);
      await openssl([
        'x509',
        '-req',
        '-in',
        at(`${kind}.csr`),
        '-CA',
        at('ca.pem'),
        '-CAkey',
        at('ca.key'),
        '-set_serial',
        `0x${Buffer.from(kind).toString('hex')}01`,
        '-days',
        '30',
        '-sha256',
        '-extfile',
        at('refused.cnf'),
        '-extensions',
        'leaf',
        '-out',
        at(`${kind}.leaf.pem`),
      ]);
      const cert = at(`${kind}.pem`);
      writeFileSync(
        cert,
        readFileSync(at(`${kind}.leaf.pem`), 'utf8') + readFileSync(at('ca.pem')),
      );
      return { kind, cert, key };
    }),
  );
  return Object.fromEntries(made.map((m) => [m.kind, m])) as Record<RefusedKind, RefusedIdentity>;
}
