import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startServer } from '../../src/cli/serve.js';
import { loadServeConfig, type ServeConfig } from '../../src/cli/serve-config.js';
import { readMaterial } from '../../src/core/read.js';
import { SourceError } from '../../src/runtime/sources.js';
import { runCli } from '../support/cli.js';
import { type MultiKeyKeystore, makeMultiKeyKeystore } from '../support/keystore.js';
import { servedFingerprint } from '../support/serve.js';
import { needs, tempDir } from '../support/tools.js';

const skip = needs('keytool') || needs('openssl');

describe('a keystore with several key entries, by alias, from the command line', { skip }, () => {
  const { dir, cleanup } = tempDir();
  const at = (name: string) => join(dir, name);
  let keystore: MultiKeyKeystore;
  /** Each entry's certificate fingerprint, by alias. */
  const fingerprints = new Map<string, string>();
  after(cleanup);

  before(async () => {
    keystore = await makeMultiKeyKeystore(dir);
    writeFileSync(at('storepass'), `${keystore.password}\n`);
    for (const { alias } of keystore.entries) {
      const m = await readMaterial(readFileSync(keystore.path), {
        password: keystore.password,
        keyAlias: alias,
      });
      fingerprints.set(alias, m.certificates[0]!.certificate.sha256);
    }
  });

  describe('certkeeper import --key-alias', () => {
    const dataDir = () => at('data');
    const cli = (...argv: string[]) =>
      runCli([...argv, '--password', keystore.password, '--data-dir', dataDir(), '--init']);

    it('without an alias is KeyAliasRequired, naming every alias, and writes nothing', async () => {
      const r = await cli('import', 'web', keystore.path);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(
        r.stderr,
        new RegExp(`^KeyAliasRequired: ${keystore.path}: .*\\("web", "admin", "api"\\)`),
      );
      // Nothing was stored: importing the alias now is a first import, not AliasInUse.
      const ok = await cli('import', 'web', keystore.path, '--key-alias', 'web');
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^Imported "web" \(key-pair\) at revision \d+: CN=web\.example /);
      assert.ok(ok.stdout.includes(fingerprints.get('web')!));
    });

    it('imports the entry named, ignoring case as keytool does, and only that entry', async () => {
      const r = await cli('import', 'admin-entry', keystore.path, '--key-alias', 'ADMIN');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /: CN=admin\.example sha256=/);
      assert.ok(r.stdout.includes(fingerprints.get('admin')!));
    });

    it('imports the OpenSSL-made entry with its CA, from the same keystore', async () => {
      const r = await cli('import', 'api', keystore.path, '--key-alias', 'api');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(fingerprints.get('api')!));
    });

    it('an alias the keystore does not have is KeyAliasNotFound and writes nothing', async () => {
      const r = await cli('import', 'mail', keystore.path, '--key-alias', 'mail');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^KeyAliasNotFound: .*"mail".*"web", "admin", "api"/);
      const ok = await cli('import', 'mail', keystore.path, '--key-alias', 'web');
      assert.equal(ok.code, 0, `the failed import stored nothing: ${ok.stderr}`);
    });
  });

  describe('certkeeper inspect', () => {
    it('lists each key entry: alias, key type, its certificate subject', async () => {
      const r = await runCli([
        'inspect',
        keystore.path,
        '--password-file',
        at('storepass'),
        '--at',
        new Date().toISOString(),
      ]);
      assert.doesNotMatch(r.stderr, /KeyAlias/);
      const lines = r.stdout.split('\n');
      for (const line of [
        '  key entry "web": EC P-256, CN=web.example',
        '  key entry "admin": RSA 2048 bits, CN=admin.example',
        '  key entry "api": EC P-256, CN=api.example',
      ]) {
        assert.ok(lines.includes(line), `missing "${line}" in:\n${r.stdout}`);
      }
      const json = await runCli([
        'inspect',
        keystore.path,
        '--password-file',
        at('storepass'),
        '--json',
      ]);
      const report = JSON.parse(json.stdout);
      assert.deepEqual(
        report.files[0].pkcs12.keyEntries.map((e: { alias: string; subject: string }) => [
          e.alias,
          e.subject,
        ]),
        keystore.entries.map((e) => [e.alias, e.subject]),
      );
      assert.equal(report.keys.length, 3);
    });
  });

  describe('certkeeper serve -z keystore.p12 --ssl-key-alias', () => {
    const base = (name: string) => [
      ...['--data-dir', at(`serve-${name}`), '--port', '0', '--host', '127.0.0.1'],
    ];
    const serveConfig = async (name: string, ...flags: string[]) =>
      (await loadServeConfig(
        [
          ...base(name),
          ...['-z', keystore.path, '--ssl-key-passphrase-file', at('storepass'), ...flags],
        ],
        {},
      )) as ServeConfig;

    it('serves the entry named by the flag, the config file or the environment, over a real TLS handshake', async () => {
      writeFileSync(
        at('certkeeper.yaml'),
        `tls:\n  certificate: ${keystore.path}\n  keyPassphraseFile: storepass\n  keyAlias: api\n`,
      );
      const env = {
        CERTKEEPER_SSL_CERT: keystore.path,
        CERTKEEPER_SSL_KEY_PASSPHRASE_FILE: at('storepass'),
        CERTKEEPER_SSL_KEY_ALIAS: 'web',
      };
      const cases: [string, string, ServeConfig, Record<string, string>][] = [
        ['flag', 'admin', await serveConfig('flag', '--ssl-key-alias', 'admin'), {}],
        [
          'config',
          'api',
          (await loadServeConfig(
            [...base('config'), '--config', at('certkeeper.yaml')],
            {},
          )) as ServeConfig,
          {},
        ],
        [
          'environment',
          'web',
          (await loadServeConfig(base('environment'), env)) as ServeConfig,
          env,
        ],
      ];
      for (const [source, alias, config, environment] of cases) {
        const server = await startServer(config, environment, pino({ level: 'silent' }));
        try {
          const port = server.supervisor.runtime.address()!.port;
          assert.equal(await servedFingerprint(port, 'localhost'), fingerprints.get(alias), source);
          assert.equal(server.supervisor.status()!.source, source);
        } finally {
          await server.stop();
        }
      }
    });

    it('without an alias the source is broken with KeyAliasRequired, not a guess', async () => {
      const config = await serveConfig('strict', '--strict-tls');
      await assert.rejects(startServer(config, {}, pino({ level: 'silent' })), (err) => {
        assert.ok(err instanceof SourceError, String(err));
        assert.equal(err.attempt.code, 'KeyAliasRequired');
        assert.match(err.message, /"web", "admin", "api"/);
        return true;
      });
    });
  });
});
