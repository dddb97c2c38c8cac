/**
 * x509-limbo harness for `validateServerChain` (`npm run limbo`).
 *
 * Runs every SERVER testcase of the regenerated `limbo.json` and of the two upstream
 * snapshots in `../shared/corpora/x509-limbo` (none is skipped), writes one result file
 * per suite in the harness format (`bench/results/limbo/<suite>.json`) and the summary
 * section of BENCHMARKS.md, between `<!-- limbo:start -->` and `<!-- limbo:end -->`.
 * CLIENT testcases are out of scope: not run, and counted as such.
 *
 * A false accept is a case that expects FAILURE and that we accept. Some pairs of cases
 * give the same input and expect opposite results (RFC 5280 against the web PKI); the
 * harness finds them from the data (`findConflicts`), and a false accept in such a pair
 * is reported as a conflict, never left out.
 *
 * Usage: tsx scripts/limbo.ts [--no-write]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeBenchmarksSection } from '../bench/benchmarks-section.js';
import { type Certificate, parseCertificate } from '../src/core/certificate.js';
import { keyUsageOf } from '../src/core/extensions.js';
import { parsePemBlocks } from '../src/core/pem.js';
import { type ValidationWork, validateServerChain } from '../src/core/validate.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CORPORA = process.env.CERTKEEPER_CORPORA ?? resolve(REPO_ROOT, '../shared/corpora');
export const LIMBO_DIR = join(CORPORA, 'x509-limbo');
export const SUITES = [
  'limbo.json',
  'snapshots/limbo-2023-11-27-1f05d518.json',
  'snapshots/limbo-2023-12-02-ddc40b47.json',
];
const RUSTLS_RESULTS = 'results/rustls-webpki-2023-11-27-1f05d518.json';
const RUSTLS_SUITE = 'snapshots/limbo-2023-11-27-1f05d518.json';

export interface Testcase {
  id: string;
  features?: string[] | null;
  description: string;
  validation_kind: 'SERVER' | 'CLIENT';
  trusted_certs: string[];
  untrusted_intermediates: string[];
  peer_certificate: string;
  validation_time: string | null;
  key_usage?: string[] | null;
  extended_key_usage?: string[] | null;
  expected_result: 'SUCCESS' | 'FAILURE';
  expected_peer_name?: { kind: 'DNS' | 'IP' | 'RFC822'; value: string } | null;
  max_chain_depth?: number | null;
  crls?: string[];
  conflicts_with?: string[];
}

export interface CaseResult {
  id: string;
  actual_result: 'SUCCESS' | 'FAILURE';
  context: string | null;
}

function certs(pems: string[]): Certificate[] {
  const out: Certificate[] = [];
  for (const pem of pems) {
    try {
      for (const block of parsePemBlocks(pem)) out.push(parseCertificate(block.der));
    } catch {
      // An unreadable anchor or intermediate is simply not available for path building.
    }
  }
  return out;
}

/**
 * Runs one testcase through `validateServerChain`, mapped as the harness format wants;
 * `work`, when given, is filled in with the validation's work (signature checks, steps).
 */
export function runCase(tc: Testcase, now = new Date(), work?: ValidationWork): CaseResult {
  let leaf: Certificate;
  try {
    const block = parsePemBlocks(tc.peer_certificate)[0];
    if (!block) throw new Error('no PEM block');
    leaf = parseCertificate(block.der);
  } catch (err) {
    return {
      id: tc.id,
      actual_result: 'FAILURE',
      context: `leaf unreadable: ${(err as Error).message}`,
    };
  }
  const crls = (tc.crls ?? []).flatMap((pem) => parsePemBlocks(pem).map((b) => b.der));
  const peer = tc.expected_peer_name;
  const result = validateServerChain(leaf, {
    trusted: certs(tc.trusted_certs),
    intermediates: certs(tc.untrusted_intermediates),
    time: tc.validation_time ? new Date(tc.validation_time) : now,
    ...(peer ? { host: peer.value } : {}),
    checkPolicy: false,
    ...(crls.length > 0 ? { crls } : {}),
    ...(tc.max_chain_depth != null ? { maxDepth: tc.max_chain_depth + 2 } : {}),
    ...(tc.extended_key_usage?.length ? { requiredExtendedKeyUsage: tc.extended_key_usage } : {}),
    ...(work ? { work } : {}),
  });
  if (!result.valid) {
    const p = result.problems[0];
    return { id: tc.id, actual_result: 'FAILURE', context: p ? `${p.code}: ${p.message}` : null };
  }
  // keyUsage the leaf must allow (when the leaf has a keyUsage extension; absent = any).
  if (tc.key_usage?.length) {
    const usage = keyUsageOf(leaf);
    const missing = usage ? tc.key_usage.filter((u) => !(usage as string[]).includes(u)) : [];
    if (missing.length > 0) {
      return {
        id: tc.id,
        actual_result: 'FAILURE',
        context: `UsageNotAllowed: keyUsage lacks ${missing.join(', ')}`,
      };
    }
  }
  return { id: tc.id, actual_result: 'SUCCESS', context: null };
}

function readSuite(file: string): Testcase[] {
  return (JSON.parse(readFileSync(join(LIMBO_DIR, file), 'utf8')) as { testcases: Testcase[] })
    .testcases;
}

/** The SERVER testcases of a suite file. */
export function loadSuite(file: string): Testcase[] {
  return readSuite(file).filter((t) => t.validation_kind === 'SERVER');
}

const SKI = '2.5.29.14';
const AKI = '2.5.29.35';
const OU = '2.5.4.11';

/**
 * What a certificate says, without what differs between two runs of x509-limbo's
 * generator for the same test: key, signature, key identifiers, the serial's digits (its
 * class stays: zero, negative, over 20 bytes or ordinary) and the random numeric OU it
 * puts in CA subjects, which `ouTags` numbers by first appearance in the testcase so that
 * a self-issued certificate still reads as one.
 */
function certificateShape(pem: string, ouTags: Map<string, number>): string {
  let cert: Certificate;
  try {
    const block = parsePemBlocks(pem)[0];
    if (!block) return `unreadable:${pem}`;
    cert = parseCertificate(block.der);
  } catch {
    return `unreadable:${pem}`;
  }
  const tag = (value: string) => {
    if (!ouTags.has(value)) ouTags.set(value, ouTags.size);
    return `#${ouTags.get(value)}`;
  };
  const name = (n: Certificate['subject']) =>
    n.attributes
      .map((a) => `${a.oid}=${a.oid === OU && /^\d{20,}$/.test(a.value) ? tag(a.value) : a.value}`)
      .join(',');
  const serial = cert.serialHex;
  const serialClass = /^0*$/.test(serial)
    ? 'zero'
    : Number.parseInt(serial.slice(0, 2), 16) >= 0x80
      ? 'negative'
      : serial.length > 40
        ? 'long'
        : 'ordinary';
  const spki = cert.asn.tbsCertificate.subjectPublicKeyInfo;
  return JSON.stringify([
    cert.version,
    serialClass,
    cert.signatureAlgorithmOid,
    name(cert.subject),
    name(cert.issuer),
    cert.notBefore.toISOString(),
    cert.notAfter.toISOString(),
    spki.algorithm.algorithm,
    spki.subjectPublicKey.byteLength,
    cert.extensions.map((e) =>
      e.oid === SKI || e.oid === AKI
        ? `${e.oid}:${e.critical}`
        : `${e.oid}:${e.critical}:${e.value.toString('hex')}`,
    ),
  ]);
}

/** The input of a testcase as the validator sees it, certificates by their shape. */
function inputShape(tc: Testcase): string {
  const ouTags = new Map<string, number>();
  const shape = (pem: string) => certificateShape(pem, ouTags);
  return JSON.stringify([
    shape(tc.peer_certificate),
    tc.trusted_certs.map(shape),
    tc.untrusted_intermediates.map(shape),
    tc.expected_peer_name ?? null,
    tc.validation_time,
    tc.key_usage ?? null,
    tc.extended_key_usage ?? null,
    tc.max_chain_depth ?? null,
    // CRLs are compared as they are: a conflict is only claimed when sure.
    tc.crls ?? [],
  ]);
}

/**
 * Pairs of testcases with the same input (`inputShape`) and opposite expected results:
 * no validator can pass both. Each case id maps to the ids it conflicts with.
 */
export function findConflicts(cases: Testcase[]): Map<string, string[]> {
  const groups = new Map<string, Testcase[]>();
  for (const tc of cases) {
    const key = inputShape(tc);
    const group = groups.get(key);
    if (group) group.push(tc);
    else groups.set(key, [tc]);
  }
  const conflicts = new Map<string, string[]>();
  for (const group of groups.values()) {
    for (const tc of group) {
      const others = group.filter((o) => o.expected_result !== tc.expected_result);
      if (others.length > 0)
        conflicts.set(
          tc.id,
          others.map((o) => o.id),
        );
    }
  }
  return conflicts;
}

interface Tally {
  matched: number;
  mismatched: number;
}

export interface SuiteReport {
  file: string;
  cases: Testcase[];
  results: CaseResult[];
  /** CLIENT testcases of the file, which are not run. */
  notRun: Testcase[];
  total: Tally;
  /** Every case that expects FAILURE and that we accept, in a conflict or not. */
  falseAccepts: string[];
  /** The false accepts that are not one side of a conflict (`findConflicts`). */
  falseAcceptsOutsideConflicts: string[];
  conflicts: Map<string, string[]>;
  ms: number;
}

export function runSuite(file: string): SuiteReport {
  const all = readSuite(file);
  const cases = all.filter((t) => t.validation_kind === 'SERVER');
  const notRun = all.filter((t) => t.validation_kind !== 'SERVER');
  const start = performance.now();
  const results = cases.map((tc) => runCase(tc));
  const ms = performance.now() - start;
  const conflicts = findConflicts(cases);
  const total: Tally = { matched: 0, mismatched: 0 };
  const falseAccepts: string[] = [];
  cases.forEach((tc, i) => {
    const r = results[i]!;
    if (r.actual_result === tc.expected_result) total.matched++;
    else {
      total.mismatched++;
      if (r.actual_result === 'SUCCESS') falseAccepts.push(tc.id);
    }
  });
  const falseAcceptsOutsideConflicts = falseAccepts.filter((id) => !conflicts.has(id));
  return {
    file,
    cases,
    results,
    notRun,
    total,
    falseAccepts,
    falseAcceptsOutsideConflicts,
    conflicts,
    ms,
  };
}

function tallyBy(report: SuiteReport, keys: (tc: Testcase) => string[]): Map<string, Tally> {
  const map = new Map<string, Tally>();
  report.cases.forEach((tc, i) => {
    const r = report.results[i]!;
    for (const key of keys(tc)) {
      const t = map.get(key) ?? { matched: 0, mismatched: 0 };
      if (r.actual_result === tc.expected_result) t.matched++;
      else t.mismatched++;
      map.set(key, t);
    }
  });
  return new Map([...map].sort(([a], [b]) => a.localeCompare(b)));
}

const pct = (n: number, d: number) => (d === 0 ? '–' : `${((100 * n) / d).toFixed(1)} %`);
const row = (name: string, t: Tally) =>
  `| ${name} | ${t.matched + t.mismatched} | ${t.matched} | ${t.mismatched} |`;

function oneLine(s: string | null | undefined): string {
  return (s ?? '').replace(/\s+/g, ' ').replace(/\|/g, '\\|').slice(0, 220);
}

function mismatchLines(report: SuiteReport): string[] {
  const lines: string[] = [];
  report.cases.forEach((tc, i) => {
    const r = report.results[i]!;
    if (r.actual_result === tc.expected_result) return;
    const partners = report.conflicts.get(tc.id);
    const conflict = partners
      ? ` — conflicts with ${partners.map((p) => `\`${p}\``).join(', ')} (same input, opposite expectation)`
      : '';
    const why =
      r.actual_result === 'SUCCESS' ? 'accepted (FALSE ACCEPT)' : `rejected: ${oneLine(r.context)}`;
    lines.push(`- \`${tc.id}\` expects ${tc.expected_result}, ${why}${conflict}${explain(tc.id)}`);
  });
  return lines;
}

/** Why a mismatch is what we chose; a false accept outside a conflict must have one. */
export const EXPLANATIONS: Record<string, string> = {
  'pathlen::validation-ignores-pathlen-in-leaf':
    ' — the leaf is a CA certificate (cA=TRUE, keyCertSign); refused as a server certificate, as `webpki::ca-as-leaf` and `webpki::ee-basicconstraints-ca` require.',
  'rfc5280::nc::permitted-dn-match':
    ' — in this 2023 snapshot the leaf names only `dirName:CN=foo` while the case expects the DNS peer name `example.com`; the current suite fixed it (no peer name) and we pass it there.',
  'rfc5280::aki::cross-signed-root-missing-aki':
    ' — the trust anchor is not self-issued and has no authorityKeyIdentifier. We accept such an anchor: the AKI helps find an issuer, and an anchor ends the path. `cve::cve-2024-0567` expects SUCCESS for an anchor of the same kind (`CN=Root A`, issued by `x509-limbo-root`, no AKI), and requiring the AKI of an anchor (tried) fixes this case and fails that one, and no other in `limbo.json`. Not an input-identical conflict, hence counted as a false accept.',
};

function explain(id: string): string {
  return EXPLANATIONS[id] ?? '';
}

function conflictTable(reports: SuiteReport[]): string[] {
  const rows = new Map<string, { cells: string; suites: Set<string> }>();
  for (const r of reports) {
    const expected = new Map(r.cases.map((tc) => [tc.id, tc.expected_result]));
    const ours = new Map(r.results.map((x) => [x.id, x.actual_result]));
    for (const [id, partners] of r.conflicts) {
      for (const other of partners) {
        const [a, b] = [id, other].sort() as [string, string];
        const key = `${a} ${b}`;
        const cells = `| \`${a}\` | ${expected.get(a)} | \`${b}\` | ${expected.get(b)} | ${ours.get(a)} / ${ours.get(b)} |`;
        const row = rows.get(key) ?? { cells, suites: new Set<string>() };
        row.suites.add(`\`${basename(r.file)}\``);
        rows.set(key, row);
      }
    }
  }
  if (rows.size === 0) return ['None.'];
  return [
    '| case | expects | conflicting case | expects | we answer | suites |',
    '|---|---|---|---|---|---|',
    ...[...rows.keys()]
      .sort()
      .map((k) => `${rows.get(k)!.cells} ${[...rows.get(k)!.suites].join(', ')} |`),
  ];
}

/** Conflicts x509-limbo declares (`conflicts_with`) that the input comparison did not find. */
function undetectedDeclaredConflicts(reports: SuiteReport[]): string[] {
  const out = new Set<string>();
  for (const r of reports) {
    for (const tc of r.cases) {
      for (const other of tc.conflicts_with ?? []) {
        if (!r.conflicts.get(tc.id)?.includes(other)) out.add(`\`${tc.id}\` ↔ \`${other}\``);
      }
    }
  }
  return [...out];
}

function rustlsComparison(ours: SuiteReport): string[] {
  const theirs = JSON.parse(readFileSync(join(LIMBO_DIR, RUSTLS_RESULTS), 'utf8')) as {
    results: { id: string; actual_result: string }[];
  };
  const expected = new Map(ours.cases.map((tc) => [tc.id, tc.expected_result]));
  const mine = new Map(ours.results.map((r) => [r.id, r.actual_result]));
  const theirMap = new Map(theirs.results.map((r) => [r.id, r.actual_result]));
  let theirMatched = 0;
  let theirMismatched = 0;
  let theirSkipped = 0;
  const weOnly: string[] = [];
  const theyOnly: string[] = [];
  for (const [id, exp] of expected) {
    const t = theirMap.get(id);
    const m = mine.get(id);
    if (t === 'SKIPPED' || t === undefined) theirSkipped++;
    else if (t === exp) theirMatched++;
    else theirMismatched++;
    const weMatch = m === exp;
    const theyMatch = t === exp;
    if (weMatch && !theyMatch) weOnly.push(`\`${id}\` (rustls-webpki: ${t ?? 'absent'})`);
    if (theyMatch && !weMatch) theyOnly.push(`\`${id}\` (we: ${m})`);
  }
  const t = ours.total;
  return [
    `On \`${RUSTLS_SUITE}\` (${ours.cases.length} SERVER cases):`,
    '',
    '| harness | matched | mismatched | skipped | matched of run |',
    '|---|---|---|---|---|',
    `| rustls-webpki (Nov 2023, \`${RUSTLS_RESULTS}\`) | ${theirMatched} | ${theirMismatched} | ${theirSkipped} | ${pct(theirMatched, theirMatched + theirMismatched)} |`,
    `| certkeeper | ${t.matched} | ${t.mismatched} | 0 | ${pct(t.matched, t.matched + t.mismatched)} |`,
    '',
    `Cases we match and rustls-webpki did not (${weOnly.length}): ${weOnly.join(', ') || 'none'}.`,
    '',
    `Cases rustls-webpki matched and we do not (${theyOnly.length}): ${theyOnly.join(', ') || 'none'}.`,
  ];
}

export function renderSummary(reports: SuiteReport[]): string {
  const out: string[] = [];
  out.push('## x509-limbo: TLS server path validation (`core/validate.ts`)');
  out.push('');
  out.push(
    'Produced by `npm run limbo` (`tsx scripts/limbo.ts`): every `SERVER` testcase of the suites in `../shared/corpora/x509-limbo` is run — none is skipped — mapped to `validateServerChain` with `checkPolicy: false`; result files in the harness format are in `bench/results/limbo/`. CLIENT cases are not run (counted below). A case matches when our result equals `expected_result`; a *false accept* is a case that expects FAILURE and that we accept. A *conflict* is a pair of cases with the same input (leaf, anchors, intermediates, peer name, time, usages, depth and CRLs; certificates compared without their keys, signatures, key identifiers, serial digits and the random OU tags of the generator) and opposite expected results: the harness finds them in the data, and a false accept in a conflict is still counted as one.',
  );
  out.push('');
  out.push(
    '| suite | SERVER cases run | matched | mismatched | matched of run | false accepts | of which in a conflict | false accepts outside conflicts | CLIENT cases (not run) | time |',
  );
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of reports) {
    const n = r.cases.length;
    const inConflict = r.falseAccepts.length - r.falseAcceptsOutsideConflicts.length;
    out.push(
      `| \`${r.file}\` | ${n} | ${r.total.matched} | ${r.total.mismatched} | ${pct(r.total.matched, n)} | ${r.falseAccepts.length} | ${inConflict} | ${r.falseAcceptsOutsideConflicts.length} | ${r.notRun.length} | ${(r.ms / 1000).toFixed(1)} s |`,
    );
  }
  out.push('');
  out.push('### Conflicts found in the data');
  out.push('');
  out.push(...conflictTable(reports));
  const undetected = undetectedDeclaredConflicts(reports);
  out.push('');
  out.push(
    `Conflicts the suites declare (\`conflicts_with\`) that the input comparison does not confirm: ${undetected.join(', ') || 'none'}.`,
  );
  out.push('');
  out.push('### False accepts outside conflicts');
  out.push('');
  const outside = new Map<string, string[]>();
  for (const r of reports) {
    for (const id of r.falseAcceptsOutsideConflicts) {
      outside.set(id, [...(outside.get(id) ?? []), `\`${basename(r.file)}\``]);
    }
  }
  const outsideLines = [...outside].map(
    ([id, files]) => `- \`${id}\` (in ${files.join(', ')})${explain(id) || ' — not explained.'}`,
  );
  out.push(...(outsideLines.length ? outsideLines : ['None.']));
  const main = reports[0]!;
  out.push('');
  out.push(`### \`${main.file}\` by namespace`);
  out.push('');
  out.push('| namespace | cases | matched | mismatched |');
  out.push('|---|---|---|---|');
  for (const [k, t] of tallyBy(main, (tc) => [tc.id.split('::')[0]!])) out.push(row(k, t));
  out.push('');
  out.push(`### \`${main.file}\` by feature`);
  out.push('');
  out.push('| feature | cases | matched | mismatched |');
  out.push('|---|---|---|---|');
  for (const [k, t] of tallyBy(main, (tc) => (tc.features?.length ? tc.features : ['(none)']))) {
    out.push(row(k, t));
  }
  out.push('');
  out.push('### How cases are mapped, and choices worth knowing');
  out.push('');
  out.push(...NOTES.map((n) => `- ${n}`));
  for (const r of reports) {
    out.push('');
    out.push(`### Mismatches in \`${r.file}\``);
    out.push('');
    const lines = mismatchLines(r);
    out.push(...(lines.length ? lines : ['None.']));
  }
  const snapshot = reports.find((r) => r.file === RUSTLS_SUITE);
  if (snapshot) {
    out.push('');
    out.push('### Compared with rustls-webpki');
    out.push('');
    out.push(...rustlsComparison(snapshot));
  }
  return out.join('\n');
}

const NOTES = [
  "`trusted_certs` → `trusted`, `untrusted_intermediates` → `intermediates` (unreadable ones are left out), `validation_time` → `time` (null → the current time), `expected_peer_name` → `host`, `crls` → `crls`, `extended_key_usage` → `requiredExtendedKeyUsage` (default `serverAuth`), `max_chain_depth` (intermediates) → `maxDepth` = depth + 2 (leaf and anchor), `checkPolicy: false` (the fixed web PKI key profile applies instead of our configurable policy). `key_usage` is checked by the harness on the leaf's keyUsage (absent = any), since `validateServerChain` has no key-usage option. An unreadable leaf is a FAILURE.",
  'A CA certificate is never a server certificate (webpki, BR 7.1.2.7.8); this costs `rfc5280::ca-as-leaf` (which conflicts with `webpki::ca-as-leaf`) and `pathlen::validation-ignores-pathlen-in-leaf`.',
  'The trust anchor is held to the CA rules (validity, critical basicConstraints, keyCertSign, SKI, unknown critical extensions, no EKU, AKI = own SKI) because the suite expects it (`expired-root`, `root-missing-basic-constraints`, `webpki::aki::*`, `root-has-eku`…); its self-signature is not checked and it needs no AKI.',
  "Subject common name (BR 7.1.4.3): the suite rejects a CN that is not a copy of a SAN (`webpki::cn::*`) yet expects success for many leaves whose generated CN `example.com` is not among their SANs. `commonNameProblem` in `core/hostname.ts` therefore enforces the rule where the CN can mislead — IP-like CNs must be the canonical text of an IP SAN; a DNS CN must not differ from a SAN only by case, must be ASCII, and must not name another host of a SAN's zone — and tolerates a CN outside the SANs' zones. This is a compromise fitted to the suite's contradiction, not a rule from a standard.",
];

function main(): void {
  const write = !process.argv.includes('--no-write');
  const reports = SUITES.map(runSuite);
  const outDir = join(REPO_ROOT, 'bench/results/limbo');
  for (const r of reports) {
    const line = `${r.file}: ${r.total.matched} matched, ${r.total.mismatched} mismatched of ${r.cases.length} SERVER cases run (${r.notRun.length} CLIENT not run); ${r.falseAccepts.length} false accepts, ${r.falseAcceptsOutsideConflicts.length} outside conflicts; ${(r.ms / 1000).toFixed(1)} s`;
    console.log(line);
    for (const l of mismatchLines(r)) console.log(`  ${l}`);
    if (write) {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(
        join(outDir, basename(r.file)),
        `${JSON.stringify({ version: 1, harness: 'certkeeper', results: r.results }, null, 2)}\n`,
      );
    }
  }
  if (write) writeBenchmarksSection('limbo', renderSummary(reports));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
