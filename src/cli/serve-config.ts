import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { CodedError } from '../core/errors.js';
import { readInputFile } from '../service/read-input-file.js';
import { UsageError } from './io.js';

/** Everything `certkeeper serve` runs with, after flags, config file and environment. */
export interface ServeConfig {
  dataDir: string;
  host: string;
  port: number;
  /** Extra names for the local CA's server certificate. */
  sans: string[];
  /** A new local CA permits only the names it serves (`localCa.nameConstraints`). */
  localCaNameConstraints: boolean;
  strictTls: boolean;
  flags: TlsFiles;
  config: TlsFiles;
  sniCacheSize: number;
  /** TLS 1.2 session ids kept for clients that don't resume by ticket; 0 is off. */
  sessionIdCacheSize: number;
  ticketKeyRotationHours: number;
  /** An API session ends after this many minutes unused (`sessionIdleMinutes`, default 30)… */
  sessionIdleMinutes: number;
  /** …and this many hours after login however much it is used (`sessionMaxHours`, default 12). */
  sessionMaxHours: number;
  /** The config file that was read, if any. */
  configFile: string | undefined;
}

export interface TlsFiles {
  certificate?: string | undefined;
  privateKey?: string | undefined;
  keyPassphraseFile?: string | undefined;
  /** The key entry to serve from a keystore (PKCS#12) with several. */
  keyAlias?: string | undefined;
  directory?: string | undefined;
}

/** The keys the config file may hold (documented in docs/configuration.md). */
const CONFIG_KEYS = new Set([
  'host',
  'port',
  'san',
  'strictTls',
  'tls',
  'sniCacheSize',
  'sessionIdCacheSize',
  'ticketKeyRotationHours',
  'localCa',
  'sessionIdleMinutes',
  'sessionMaxHours',
]);
const TLS_KEYS = new Set([
  'certificate',
  'privateKey',
  'keyPassphraseFile',
  'keyAlias',
  'directory',
]);

export const SERVE_HELP = `Usage: certkeeper serve [options]

Serves HTTPS with a managed identity. Options (each also settable in the config file
<data>/certkeeper.yaml, see docs/configuration.md):
  --port N                      port to listen on (default 8443, env CERTKEEPER_PORT)
  --host ADDR                   address to listen on (default 0.0.0.0, env CERTKEEPER_HOST)
  --data-dir DIR                data directory (default ./data, env CERTKEEPER_DATA_DIR)
  --config FILE                 config file (default <data>/certkeeper.yaml if present)
  --san NAME                    extra name for the local CA's certificate (repeatable)
  -z, --ssl-certificate FILE    serve this certificate (any format; with its chain)
  -k, --ssl-private-key FILE    ... with this private key
  --ssl-key-passphrase-file F   password of an encrypted key or PKCS#12 file
  --ssl-key-alias NAME          the key entry to serve from a keystore (PKCS#12)
                                that holds several
  --strict-tls                  a broken certificate source stops the server instead
                                of falling through to the next source`;

/** Resolves the serve configuration: flags, then the config file, then the environment. */
export async function loadServeConfig(
  argv: string[],
  env: Record<string, string | undefined>,
): Promise<ServeConfig | 'help'> {
  let values: ReturnType<typeof parseFlags>['values'];
  try {
    ({ values } = parseFlags(argv));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const dataDir = resolve(values['data-dir'] ?? env.CERTKEEPER_DATA_DIR ?? 'data');
  const configFile = values.config ?? join(dataDir, 'certkeeper.yaml');
  const file = await readConfigFile(configFile, values.config !== undefined);
  const tls = (file.tls ?? {}) as Record<string, unknown>;
  const port = numberOption('port', values.port ?? file.port ?? env.CERTKEEPER_PORT ?? 8443);
  if (port > 65535) throw new UsageError(`port ${port} is out of range (0 picks a free one)`);
  return {
    dataDir,
    host: String(values.host ?? file.host ?? env.CERTKEEPER_HOST ?? '0.0.0.0'),
    port,
    sans: [...(values.san ?? []), ...stringList('san', file.san)],
    localCaNameConstraints: localCaNameConstraints(file.localCa),
    strictTls: Boolean(values['strict-tls'] ?? file.strictTls ?? false),
    flags: {
      certificate: values['ssl-certificate'],
      privateKey: values['ssl-private-key'],
      keyPassphraseFile: values['ssl-key-passphrase-file'],
      keyAlias: values['ssl-key-alias'],
    },
    config: {
      certificate: optionalPath('tls.certificate', tls.certificate, configFile),
      privateKey: optionalPath('tls.privateKey', tls.privateKey, configFile),
      keyPassphraseFile: optionalPath('tls.keyPassphraseFile', tls.keyPassphraseFile, configFile),
      keyAlias: optionalString('tls.keyAlias', tls.keyAlias),
      directory: optionalPath('tls.directory', tls.directory, configFile),
    },
    sniCacheSize: numberOption('sniCacheSize', file.sniCacheSize ?? 1000),
    sessionIdCacheSize: numberOption('sessionIdCacheSize', file.sessionIdCacheSize ?? 0),
    ticketKeyRotationHours: numberOption(
      'ticketKeyRotationHours',
      file.ticketKeyRotationHours ?? 12,
    ),
    sessionIdleMinutes: positiveOption('sessionIdleMinutes', file.sessionIdleMinutes ?? 30),
    sessionMaxHours: positiveOption('sessionMaxHours', file.sessionMaxHours ?? 12),
    configFile: Object.keys(file).length > 0 || values.config ? configFile : undefined,
  };
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
      san: { type: 'string', multiple: true },
      'ssl-certificate': { type: 'string', short: 'z' },
      'ssl-private-key': { type: 'string', short: 'k' },
      'ssl-key-passphrase-file': { type: 'string' },
      'ssl-key-alias': { type: 'string' },
      'strict-tls': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/**
 * The config file's keys; {} when the default file does not exist. It is read with a
 * bound (a regular file of at most 1 MiB), so `--config /dev/zero` or a FIFO is refused
 * at once; an unreadable file, like one that is not YAML, is a usage error (exit 2).
 */
async function readConfigFile(path: string, required: boolean): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = (await readInputFile(path)).toString('utf8');
  } catch (err) {
    if (!(err instanceof CodedError)) throw err;
    if (!required && err.code === 'FileUnreadable' && err.details?.reason === 'ENOENT') return {};
    throw new UsageError(`cannot use the config file (${err.code}): ${err.message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new UsageError(`the config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`the config file ${path} must hold a mapping of keys`);
  }
  const config = parsed as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (!CONFIG_KEYS.has(key))
      throw new UsageError(`the config file ${path} has an unknown key "${key}"`);
  }
  if (config.tls !== undefined) {
    if (typeof config.tls !== 'object' || config.tls === null)
      throw new UsageError('"tls" must be a mapping');
    for (const key of Object.keys(config.tls)) {
      if (!TLS_KEYS.has(key))
        throw new UsageError(`the config file ${path} has an unknown key "tls.${key}"`);
    }
  }
  return config;
}

/** `localCa: { nameConstraints: true }`; false when absent. */
function localCaNameConstraints(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError('"localCa" must be a mapping');
  }
  for (const key of Object.keys(value)) {
    if (key !== 'nameConstraints') throw new UsageError(`unknown key "localCa.${key}"`);
  }
  const on = (value as { nameConstraints?: unknown }).nameConstraints ?? false;
  if (typeof on !== 'boolean')
    throw new UsageError('"localCa.nameConstraints" must be true or false');
  return on;
}

function numberOption(name: string, value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${name} must be a whole number, not "${value}"`);
  return n;
}

function positiveOption(name: string, value: unknown): number {
  const n = numberOption(name, value);
  if (n === 0) throw new UsageError(`${name} must be at least 1`);
  return n;
}

function stringList(name: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new UsageError(`"${name}" must be a list of names`);
  }
  return value;
}

function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new UsageError(`"${name}" must be a string`);
  return value;
}

/** A path from the config file, relative to the file's own directory. */
function optionalPath(name: string, value: unknown, configFile: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new UsageError(`"${name}" must be a file path`);
  return resolve(configFile, '..', value);
}
