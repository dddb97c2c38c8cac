/**
 * A Java PKCS#12 keystore with several key entries, as appliances ship them, made at
 * test time by keytool and openssl (the commands are below, as typed).
 */
import { join } from 'node:path';
import { tool } from './tools.js';

/** The keystore file, its password, and each key entry's alias and subject. */
export interface MultiKeyKeystore {
  path: string;
  password: string;
  entries: { alias: string; subject: string }[];
}

/**
 * Makes `dir/keystore.p12` with three key entries:
 * - "web" (EC P-256, CN=web.example) and "admin" (RSA 2048, CN=admin.example), each
 *   `keytool -genkeypair` into the same PKCS12 keystore (keytool writes the alias as the
 *   bags' friendlyName and pairs key and certificate by a localKeyId);
 * - "api" (EC P-256, CN=api.example, issued by an OpenSSL CA "CN=Api-CA"), made by openssl,
 *   exported with `openssl pkcs12 -export -name api` (with the CA) and merged in with
 *   `keytool -importkeystore`, so the keystore also holds a CA certificate paired with no key.
 * Every leaf covers `localhost` and allows serverAuth.
 */
export async function makeMultiKeyKeystore(dir: string): Promise<MultiKeyKeystore> {
  const at = (name: string) => join(dir, name);
  const path = at('keystore.p12');
  const password = 'storepw';
  const store = ['-storetype', 'PKCS12', '-keystore', path, '-storepass', password];
  const leafExt = (host: string) => [
    '-ext',
    `SAN=dns:${host},dns:localhost`,
    '-ext',
    'EKU=serverAuth',
  ];
  // keytool -genkeypair -storetype PKCS12 -keystore keystore.p12 -storepass storepw -alias web
  //   -keyalg EC -groupname secp256r1 -dname CN=web.example -validity 30
  //   -ext SAN=dns:web.example,dns:localhost -ext EKU=serverAuth
  await tool('keytool', [
    '-genkeypair',
    ...store,
    '-alias',
    'web',
    '-keyalg',
    'EC',
    '-groupname',
    'secp256r1',
    '-dname',
    'CN=web.example',
    '-validity',
    '30',
    ...leafExt('web.example'),
  ]);
  // keytool -genkeypair ... -alias admin -keyalg RSA -keysize 2048 -dname CN=admin.example ...
  await tool('keytool', [
    '-genkeypair',
    ...store,
    '-alias',
    'admin',
    '-keyalg',
    'RSA',
    '-keysize',
    '2048',
    '-dname',
    'CN=admin.example',
    '-validity',
    '30',
    ...leafExt('admin.example'),
  ]);
  // openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key
  //   -out ca.pem -subj /CN=Api-CA -days 30 (basic constraints CA, keyCertSign)
  await tool('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
    '-subj',
    '/CN=Api-CA',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  // openssl req -new -newkey ec ... -subj /CN=api.example -addext subjectAltName=... ;
  // openssl x509 -req -CA ca.pem -CAkey ca.key -copy_extensions copy
  await tool('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    at('api.key'),
    '-out',
    at('api.csr'),
    '-subj',
    '/CN=api.example',
    '-addext',
    'subjectAltName=DNS:api.example,DNS:localhost',
    '-addext',
    'extendedKeyUsage=serverAuth',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
  ]);
  await tool('openssl', [
    'x509',
    '-req',
    '-in',
    at('api.csr'),
    '-CA',
    at('ca.pem'),
    '-CAkey',
    at('ca.key'),
    '-set_serial',
    '2',
    '-days',
    '30',
    '-copy_extensions',
    'copy',
    '-out',
    at('api.pem'),
  ]);
  // openssl pkcs12 -export -name api -inkey api.key -in api.pem -certfile ca.pem
  //   -out api.p12 -passout pass:storepw
  await tool('openssl', [
    'pkcs12',
    '-export',
    '-name',
    'api',
    '-inkey',
    at('api.key'),
    '-in',
    at('api.pem'),
    '-certfile',
    at('ca.pem'),
    '-out',
    at('api.p12'),
    '-passout',
    `pass:${password}`,
  ]);
  // keytool -importkeystore -srckeystore api.p12 -srcstoretype PKCS12 -srcstorepass storepw
  //   -destkeystore keystore.p12 -deststoretype PKCS12 -deststorepass storepw -noprompt
  await tool('keytool', [
    '-importkeystore',
    '-srckeystore',
    at('api.p12'),
    '-srcstoretype',
    'PKCS12',
    '-srcstorepass',
    password,
    '-destkeystore',
    path,
    '-deststoretype',
    'PKCS12',
    '-deststorepass',
    password,
    '-noprompt',
  ]);
  return {
    path,
    password,
    entries: [
      { alias: 'web', subject: 'CN=web.example' },
      { alias: 'admin', subject: 'CN=admin.example' },
      { alias: 'api', subject: 'CN=api.example' },
    ],
  };
}
