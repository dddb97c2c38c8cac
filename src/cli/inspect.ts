import { rootCertificates } from 'node:tls';
import { type Certificate, parseCertificate } from '../core/certificate.js';
import { CoreError, isCoreError } from '../core/errors.js';
import { type InspectReport, inspect } from '../core/inspect.js';
import { parsePemBlocks } from '../core/pem.js';
import { readMaterial } from '../core/read.js';
import {
  PASSWORD_OPTIONS,
  parseCommandArgs,
  passwordFrom,
  readFileArgument,
  refuseStdinTwice,
} from './args.js';
import { type Io, UsageError } from './io.js';

const HELP = `Usage: certkeeper inspect FILE... [options]

Prints what the files hold (any of PEM, DER, PKCS#7, PKCS#12, keys, CSRs, in any
order; every key entry of a keystore, by alias), which key belongs to which
certificate, and the chain built from everything given, validated now against Node's
bundled root CAs plus any --ca. A FILE of "-" is standard input; a pipe works too.

Options:
  --password P         password of encrypted keys and PKCS#12 files
  --password-file F    read the password from the first line of F
  --host NAME          also check that the leaf covers this DNS name or IP address
  --ca FILE            trust the certificates in FILE (repeatable)
  --at TIME            validate at this ISO-8601 instant instead of now
  --json               print one JSON document instead of text

Exit status: 0 everything understood and valid, 1 a typed error (its code and a
sentence on stderr), 2 a usage error.`;

/** `certkeeper inspect`: describe and validate files. */
export async function runInspect(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...PASSWORD_OPTIONS,
    host: { type: 'string' },
    ca: { type: 'string', multiple: true },
    at: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('inspect needs at least one FILE');
  const now = values.at ? new Date(values.at) : new Date();
  if (Number.isNaN(now.getTime())) throw new UsageError(`--at "${values.at}" is not a date`);

  // A file that can't be read, or a --ca file that holds no certificate, is a coded
  // error: main prints its code and sentence and exits 1.
  refuseStdinTwice([...positionals, ...(values.ca ?? []), values['password-file']]);
  const password = await passwordFrom(values);
  const inputs: { name: string; bytes: Buffer }[] = [];
  for (const name of positionals) inputs.push({ name, bytes: await readFileArgument(name) });
  const trusted: Certificate[] = [];
  for (const pem of rootCertificates) trusted.push(parseCertificate(parsePemBlocks(pem)[0]!.der));
  for (const file of values.ca ?? []) {
    const bytes = await readFileArgument(file);
    const material = await readMaterial(bytes, { allKeyEntries: true }).catch((err: unknown) => {
      if (!isCoreError(err)) throw err;
      throw new CoreError(err.code, `${file}: ${err.message}`, { cause: err });
    });
    if (material.certificates.length === 0) {
      throw new CoreError('NoCertificate', `${file}: --ca names a file that holds no certificate.`);
    }
    trusted.push(...material.certificates.map((c) => c.certificate));
  }

  const report = await inspect(inputs, {
    password,
    host: values.host,
    now,
    trusted,
    remedy: 'install that root on them, or name it with --ca to check against it.',
  });
  io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  const problems = [...report.problems, ...(report.validation?.problems ?? [])];
  for (const p of problems) {
    io.stderr.write(`${p.code}: ${p.origin ? `${p.origin}: ` : ''}${p.message}\n`);
  }
  return report.ok ? 0 : 1;
}

/** The report as text for a person, one certificate or key per paragraph. */
export function formatReport(report: InspectReport): string {
  const out: string[] = [];
  const line = (label: string, value: string) => out.push(`    ${label.padEnd(10)}${value}`);
  for (const file of report.files) {
    out.push(`${file.name}: ${file.format ?? 'not understood'}`);
    for (const e of file.pkcs12?.keyEntries ?? []) {
      const alias = e.alias === null ? '(no alias)' : JSON.stringify(e.alias);
      out.push(`  key entry ${alias}: ${keyText(e.key)}, ${e.subject ?? 'no certificate'}`);
    }
    for (const ignored of file.ignored) out.push(`  (ignored ${ignored})`);
  }
  for (const c of report.certificates) {
    out.push('', `  ${c.id}  ${c.subject.rfc4514 || '(empty subject)'}   [${c.origin}]`);
    line('issuer', c.issuer.rfc4514 || '(empty)');
    line('serial', c.serialNumber);
    line('valid', `${c.notBefore} to ${c.notAfter}`);
    const sans = [
      ...c.subjectAltNames.dns.map((n) => `DNS:${n}`),
      ...c.subjectAltNames.ip.map((n) => `IP:${n}`),
      ...c.subjectAltNames.email.map((n) => `email:${n}`),
      ...c.subjectAltNames.uri.map((n) => `URI:${n}`),
    ];
    if (sans.length > 0) line('SANs', sans.join(', '));
    line('key', keyText(c.publicKey));
    line('signature', c.signatureAlgorithm);
    line('sha256', c.fingerprints.sha256);
    line('sha1', c.fingerprints.sha1);
    if (c.keyUsage) line('usage', c.keyUsage.join(', '));
    if (c.extendedKeyUsage) line('ext usage', c.extendedKeyUsage.join(', '));
    const bc = c.basicConstraints;
    line(
      'CA',
      bc?.ca ? `yes${bc.pathLength === null ? '' : `, path length ${bc.pathLength}`}` : 'no',
    );
    if (c.subjectKeyIdentifier) line('SKI', c.subjectKeyIdentifier);
    if (c.authorityKeyIdentifier) line('AKI', c.authorityKeyIdentifier);
    if (c.selfSigned) line('', 'self-signed');
  }
  for (const k of report.keys) {
    out.push('', `  ${k.id}  private key ${keyText(k)}   [${k.origin}]`);
    line('stored as', `${k.format}${k.encrypted ? ', encrypted' : ''}`);
    line('public', `sha256 ${k.publicKeySha256}`);
    line('matches', k.matches.length > 0 ? k.matches.join(', ') : 'no certificate given');
  }
  for (const r of report.csrs) {
    out.push('', `  ${r.id}  CSR ${r.subject.rfc4514 || '(empty subject)'}   [${r.origin}]`);
    const sans = [...r.sans.dns.map((n) => `DNS:${n}`), ...r.sans.ip.map((n) => `IP:${n}`)];
    if (sans.length > 0) line('SANs', sans.join(', '));
    line('key', keyText(r.key));
    line('signature', `${r.signatureAlgorithm}, ${csrSignatureText(r.signatureValid)}`);
  }
  if (report.chain) {
    const ch = report.chain;
    out.push('', `Chain: ${ch.order.join(' -> ')}`);
    if (ch.complete) {
      out.push(
        `  complete${ch.anchoredBy ? `, anchored by ${ch.anchoredBy}` : ', ends at a self-signed root that came with it (not trusted)'}`,
      );
    } else {
      out.push(`  incomplete: the issuer "${ch.missingIssuer}" was not given`);
    }
    if (ch.leftovers.length > 0) out.push(`  not part of the chain: ${ch.leftovers.join(', ')}`);
    for (const l of ch.leftOut) out.push(`  left out ${l.certificate}: ${l.message}`);
    if (ch.duplicatesDropped > 0) out.push(`  duplicates dropped: ${ch.duplicatesDropped}`);
  }
  if (report.validation) {
    const v = report.validation;
    const forHost = v.host ? ` for ${v.host}` : '';
    out.push('', `Validation at ${v.at}${forHost}: ${v.valid ? 'valid' : 'NOT valid'}`);
    for (const p of v.problems) out.push(`  ${p.code}: ${p.message}`);
  }
  for (const p of report.problems) {
    out.push(`${p.code}: ${p.origin ? `${p.origin}: ` : ''}${p.message}`);
  }
  return `${out.join('\n')}\n`;
}

function keyText(key: { type: string; bits?: number; curve?: string; algorithm?: string }): string {
  if (key.type === 'unsupported') return `unsupported (${key.algorithm})`;
  const size = key.curve ?? (key.bits ? `${key.bits} bits` : '');
  return `${key.type.toUpperCase()}${size ? ` ${size}` : ''}`;
}

function csrSignatureText(valid: boolean | null): string {
  if (valid === null) return 'signature algorithm not available to verify';
  return valid ? 'signature verifies' : 'signature does NOT verify';
}
