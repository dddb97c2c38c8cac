import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { createSelfSignedCa, generateKeyPair } from '../../src/core/generate.js';
import { toPem } from '../../src/core/pem.js';
import { needs, REPO_ROOT, REQUIRE_ALL, tempDir } from '../support/tools.js';

const run = promisify(execFile);

/**
 * The environment for the npm commands this test runs: that of `npm test` without what
 * npm sets for its own script (`npm_config_local_prefix` would point an install at this
 * repository), so each command works only on the directory it is given.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (
      /^npm_(package|lifecycle)_|^npm_config_(local_prefix|prefix|global|location)$/i.test(name)
    ) {
      delete env[name];
    }
  }
  return env;
}

/** npm's codes for a registry it could not reach, or a package not in its cache offline. */
const NO_NETWORK =
  /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|ENOTCACHED)\b/;

async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run('npm', args, { cwd, env: npmEnv(), maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} (in ${cwd}):\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

describe('the packed library (npm pack, installed elsewhere)', { timeout: 120_000 }, () => {
  const work = tempDir('certkeeper-pack-');
  const consumer = join(work.dir, 'consumer');
  let tarball = '';
  let entries: string[] = [];
  /** Why the install could not be made (no registry and not in npm's cache), if so. */
  let unreachable: string | undefined;

  before(async () => {
    if (!existsSync(join(REPO_ROOT, 'dist/embed/index.js'))) {
      await run('npm', ['run', 'build'], { cwd: REPO_ROOT, env: npmEnv() });
    }
    const packed = JSON.parse(
      await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work.dir], REPO_ROOT),
    ) as { filename: string }[];
    tarball = join(work.dir, packed[0]!.filename);
    if (!needs('tar')) {
      const { stdout } = await run('tar', ['tzf', tarball], { maxBuffer: 16 << 20 });
      entries = stdout.split('\n').filter(Boolean);
    }

    await run('mkdir', [consumer]);
    writeFileSync(
      join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '0.0.0', private: true, type: 'module' }),
    );
    // --prefer-offline: the dependencies come from npm's cache (filled by the project's own
    // install) and the registry is asked only for what is missing. --ignore-scripts: no
    // native build of better-sqlite3, which `certkeeper/core` never loads.
    try {
      await npm(
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--no-package-lock',
          '--prefer-offline',
          '--ignore-scripts',
          '--prefix',
          consumer,
          tarball,
        ],
        consumer,
      );
    } catch (err) {
      const message = (err as Error).message;
      if (!NO_NETWORK.test(message)) throw err;
      unreachable = `SKIPPED: installing the packed tarball needs the npm registry, which is unreachable, for dependencies not in npm's cache:\n${message}`;
      if (REQUIRE_ALL) throw new Error(`${unreachable}\n(CERTKEEPER_REQUIRE_ALL=1)`);
      console.warn(unreachable);
    }
  });

  after(() => work.cleanup());

  function skipUnlessInstalled(t: TestContext): boolean {
    if (unreachable) t.skip(unreachable);
    return unreachable !== undefined;
  }

  it('holds bin, dist with type declarations, docs and README, and no tests or data', () => {
    if (needs('tar')) return;
    const top = new Set(entries.map((e) => e.replace(/^package\//, '').split('/')[0]));
    assert.deepEqual([...top].sort(), ['README.md', 'bin', 'dist', 'docs', 'package.json']);
    for (const file of [
      'dist/core/index.js',
      'dist/core/index.d.ts',
      'dist/embed/index.js',
      'dist/embed/index.d.ts',
      'bin/certkeeper.js',
    ]) {
      assert.ok(entries.includes(`package/${file}`), `${file} is missing from the tarball`);
    }
  });

  it("reads a certificate made now through `import('certkeeper/core')`", async (t) => {
    if (skipUnlessInstalled(t)) return;
    const { privateKey } = await generateKeyPair({ type: 'ec', curve: 'P-256' });
    const der = await createSelfSignedCa({
      key: privateKey,
      subject: { CN: 'Packed Library Test CA', O: 'certkeeper' },
      days: 1,
      now: new Date(),
    });
    const certFile = join(work.dir, 'ca.pem');
    writeFileSync(certFile, toPem('CERTIFICATE', der));

    const script = `
      import { readFileSync } from 'node:fs';
      const core = await import('certkeeper/core');
      const material = await core.readMaterial(readFileSync(process.argv[1]));
      const described = core.describeCertificate(material.certificates[0].certificate);
      let error;
      try { await core.readMaterial(new Uint8Array([1, 2, 3])); }
      catch (err) { error = { isCoreError: core.isCoreError(err), code: err.code }; }
      console.log(JSON.stringify({
        format: material.format,
        subject: described.subject.rfc4514,
        sha256: described.fingerprints.sha256,
        selfSigned: described.selfSigned,
        error,
      }));
    `;
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', script, certFile],
      {
        cwd: consumer,
      },
    );
    const fingerprint = new X509Certificate(der).fingerprint256;
    assert.deepEqual(JSON.parse(stdout), {
      format: 'pem',
      subject: 'CN=Packed Library Test CA,O=certkeeper',
      sha256: fingerprint,
      selfSigned: true,
      error: { isCoreError: true, code: 'UnsupportedFormat' },
    });
  });

  it("exports openCertkeeper and the certkeeperApi plugin through `import('certkeeper')`", async (t) => {
    if (skipUnlessInstalled(t)) return;
    // Importing loads no native code (--ignore-scripts built none): the store opens lazily.
    const script = `
      const embed = await import('certkeeper');
      const { default: Fastify } = await import('fastify');
      const app = Fastify();
      await app.register(embed.certkeeperApi, {
        prefix: '/certkeeper',
        keystore: { store: undefined, now: () => new Date(), trusted: [] },
        tlsStatus: () => undefined,
      });
      const health = await app.inject('/certkeeper/healthz');
      const missing = await app.inject('/certkeeper/api/v1/entries');
      console.log(JSON.stringify({
        exports: Object.keys(embed).sort(),
        openCertkeeper: typeof embed.openCertkeeper,
        health: health.statusCode,
        missing: [missing.statusCode, missing.json().code],
      }));
      await app.close();
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: consumer,
    });
    assert.deepEqual(JSON.parse(stdout), {
      exports: ['MAX_PARAM_LENGTH', 'certkeeperApi', 'openCertkeeper', 'routerProblem'],
      openCertkeeper: 'function',
      health: 200,
      missing: [401, 'Unauthenticated'],
    });
  });

  it('gives TypeScript its declarations through the `types` export condition', async (t) => {
    if (skipUnlessInstalled(t)) return;
    writeFileSync(
      join(consumer, 'use.ts'),
      [
        "import Fastify from 'fastify';",
        "import { type Certkeeper, certkeeperApi, openCertkeeper } from 'certkeeper';",
        "import { type CoreErrorCode, type Material, readMaterial } from 'certkeeper/core';",
        "const ck: Certkeeper = await openCertkeeper({ dataDir: './data', names: ['localhost'] });",
        'const app = Fastify({ serverFactory: ck.createServer });',
        "await app.register(certkeeperApi, { prefix: '/certkeeper', ...ck.apiOptions });",
        'const served: string | undefined = ck.status()?.fingerprint;',
        '// @ts-expect-error: the data directory is required',
        "await openCertkeeper({ names: ['localhost'] });",
        'const material: Promise<Material> = readMaterial(new Uint8Array(0));',
        "const code: CoreErrorCode = 'KeyMismatch';",
        '// @ts-expect-error: not a code of the catalogue',
        "const wrong: CoreErrorCode = 'NoSuchCode';",
        'export { code, material, served, wrong };',
        '',
      ].join('\n'),
    );
    const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
    try {
      await run(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--skipLibCheck',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--target',
          'es2022',
          '--types',
          'node',
          '--typeRoots',
          join(REPO_ROOT, 'node_modules/@types'),
          'use.ts',
        ],
        { cwd: consumer },
      );
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      assert.fail(`tsc rejected the consumer:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  });
});
