/**
 * x509-limbo harness for `validateServerChain` (`npm run limbo`).
 *
 * Runs every SERVER testcase of the regenerated `limbo.json` and of the two upstream
 * snapshots in `../shared/corpora/x509-limbo`, writes one result file per suite in the
 * harness format (`bench/results/limbo/<suite>.json`) and the summary section of
 * BENCHMARKS.md, between `<!-- limbo:start -->` and `<!-- limbo:end -->`.
 * CLIENT testcases are out of scope: not run, not counted.
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
  actual_result: 'SUCCESS' | 'FAILURE' | 'SKIPPED';
  context: string | null;
}

/**
 * Cases we skip, each for a feature tag whose behaviour we deliberately don't
 * implement. `ids` narrows a skip to the cases that test the part we leave out.
 */
export const SKIPS: { feature: string; ids?: string[]; why: string }[] = [
  {
    feature: 'pedantic-public-suffix-wildcard',
    ids: [
      'webpki::san::public-suffix-multi-label-wildcard-san',
      'webpki::san::public-suffix-private-namespace-wildcard-san',
    ],
    why: 'wildcards over multi-label public suffixes (`*.co.uk`, `*.s3.amazonaws.com`) need the Public Suffix List, which `core/` does not carry (it changes weekly and is ~200 KB). The single-label case (`*.com`, and `*`) is implemented (a wildcard needs two labels after it) and runs.',
  },
  {
    feature: 'pedantic-webpki-eku',
    ids: ['webpki::eku::ee-without-eku'],
    why: 'a leaf without extendedKeyUsage is accepted, as RFC 5280, rustls-webpki and Go do (absent = any purpose); the other pedantic EKU rules (no anyEKU, no critical EKU in a leaf, no EKU in a root) are implemented and run. Conflicts with `rfc5280::eku::ee-without-eku`, which we pass.',
  },
  {
    feature: 'pedantic-rfc5280',
    why: 'a trust anchor that is not self-issued needs no authorityKeyIdentifier: the AKI helps find an issuer, and an anchor ends the path (webpki treats an anchor as a name and a key). Requiring it would also fail `cve::cve-2024-0567`, whose anchor has the same shape.',
  },
  {
    feature: 'rfc5280-incompatible-with-webpki',
    why: 'non-critical name constraints are honoured, as the CA/B BRs (7.1.2.5.2) allow and webpki does. Conflicts with `webpki::nc::permitted-dns-match-noncritical`, which we pass.',
  },
];

export function skipReason(tc: Testcase): string | undefined {
  for (const skip of SKIPS) {
    if (!tc.features?.includes(skip.feature)) continue;
    if (skip.ids && !skip.ids.includes(tc.id)) continue;
    return `skipped: feature ${skip.feature}`;
  }
  return undefined;
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
  const reason = skipReason(tc);
  if (reason) return { id: tc.id, actual_result: 'SKIPPED', context: reason };
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

export function loadSuite(file: string): Testcase[] {
  const suite = JSON.parse(readFileSync(join(LIMBO_DIR, file), 'utf8')) as {
    testcases: Testcase[];
  };
  return suite.testcases.filter((t) => t.validation_kind === 'SERVER');
}

interface Tally {
  matched: number;
  mismatched: number;
  skipped: number;
}

export interface SuiteReport {
  file: string;
  cases: Testcase[];
  results: CaseResult[];
  total: Tally;
  falseAccepts: string[];
  ms: number;
}

export function runSuite(file: string): SuiteReport {
  const cases = loadSuite(file);
  const start = performance.now();
  const results = cases.map((tc) => runCase(tc));
  const ms = performance.now() - start;
  const total: Tally = { matched: 0, mismatched: 0, skipped: 0 };
  const falseAccepts: string[] = [];
  cases.forEach((tc, i) => {
    const r = results[i]!;
    if (r.actual_result === 'SKIPPED') total.skipped++;
    else if (r.actual_result === tc.expected_result) total.matched++;
    else {
      total.mismatched++;
      if (r.actual_result === 'SUCCESS') falseAccepts.push(tc.id);
    }
  });
  return { file, cases, results, total, falseAccepts, ms };
}

function tallyBy(report: SuiteReport, keys: (tc: Testcase) => string[]): Map<string, Tally> {
  const map = new Map<string, Tally>();
  report.cases.forEach((tc, i) => {
    const r = report.results[i]!;
    for (const key of keys(tc)) {
      const t = map.get(key) ?? { matched: 0, mismatched: 0, skipped: 0 };
      if (r.actual_result === 'SKIPPED') t.skipped++;
      else if (r.actual_result === tc.expected_result) t.matched++;
      else t.mismatched++;
      map.set(key, t);
    }
  });
  return new Map([...map].sort(([a], [b]) => a.localeCompare(b)));
}

const pct = (n: number, d: number) => (d === 0 ? '–' : `${((100 * n) / d).toFixed(1)} %`);
const row = (name: string, t: Tally) =>
  `| ${name} | ${t.matched + t.mismatched + t.skipped} | ${t.matched} | ${t.mismatched} | ${t.skipped} |`;

function oneLine(s: string | null | undefined): string {
  return (s ?? '').replace(/\s+/g, ' ').replace(/\|/g, '\\|').slice(0, 220);
}

function mismatchLines(report: SuiteReport): string[] {
  const lines: string[] = [];
  report.cases.forEach((tc, i) => {
    const r = report.results[i]!;
    if (r.actual_result === 'SKIPPED' || r.actual_result === tc.expected_result) return;
    const why =
      r.actual_result === 'SUCCESS' ? 'accepted (FALSE ACCEPT)' : `rejected: ${oneLine(r.context)}`;
    lines.push(`- \`${tc.id}\` expects ${tc.expected_result}, ${why}${explain(tc.id)}`);
  });
  return lines;
}

/** Why a known mismatch is what we chose. */
const EXPLANATIONS: Record<string, string> = {
  'rfc5280::ca-as-leaf':
    ' — conflicts with `webpki::ca-as-leaf` (which we pass): a CA certificate is never accepted as a server certificate.',
  'pathlen::validation-ignores-pathlen-in-leaf':
    ' — the leaf is a CA certificate (cA=TRUE, keyCertSign); refused as a server certificate, as `webpki::ca-as-leaf` and `webpki::ee-basicconstraints-ca` require.',
  'rfc5280::nc::permitted-dn-match':
    ' — in this 2023 snapshot the leaf names only `dirName:CN=foo` while the case expects the DNS peer name `example.com`; the current suite fixed it (no peer name) and we pass it there.',
};

function explain(id: string): string {
  return EXPLANATIONS[id] ?? '';
}

function rustlsComparison(ours: SuiteReport): string[] {
  const theirs = JSON.parse(readFileSync(join(LIMBO_DIR, RUSTLS_RESULTS), 'utf8')) as {
    results: CaseResult[];
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
  const ran = t.matched + t.mismatched;
  return [
    `On \`${RUSTLS_SUITE}\` (${ours.cases.length} SERVER cases):`,
    '',
    '| harness | matched | mismatched | skipped | matched of run |',
    '|---|---|---|---|---|',
    `| rustls-webpki (Nov 2023, \`${RUSTLS_RESULTS}\`) | ${theirMatched} | ${theirMismatched} | ${theirSkipped} | ${pct(theirMatched, theirMatched + theirMismatched)} |`,
    `| certkeeper | ${t.matched} | ${t.mismatched} | ${t.skipped} | ${pct(t.matched, ran)} |`,
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
    'Produced by `npm run limbo` (`tsx scripts/limbo.ts`): every `SERVER` testcase of the suites in `../shared/corpora/x509-limbo`, mapped to `validateServerChain` with `checkPolicy: false`; result files in the harness format are in `bench/results/limbo/`. CLIENT cases are not run nor counted. A case matches when our result equals `expected_result`.',
  );
  out.push('');
  out.push(
    '| suite | SERVER cases | matched | mismatched | skipped | matched of all | false accepts | time |',
  );
  out.push('|---|---|---|---|---|---|---|---|');
  for (const r of reports) {
    const n = r.cases.length;
    out.push(
      `| \`${r.file}\` | ${n} | ${r.total.matched} | ${r.total.mismatched} | ${r.total.skipped} | ${pct(r.total.matched, n)} | ${r.falseAccepts.length} | ${(r.ms / 1000).toFixed(1)} s |`,
    );
  }
  out.push('');
  const main = reports[0]!;
  out.push(`### \`${main.file}\` by namespace`);
  out.push('');
  out.push('| namespace | cases | matched | mismatched | skipped |');
  out.push('|---|---|---|---|---|');
  for (const [k, t] of tallyBy(main, (tc) => [tc.id.split('::')[0]!])) out.push(row(k, t));
  out.push('');
  out.push(`### \`${main.file}\` by feature`);
  out.push('');
  out.push('| feature | cases | matched | mismatched | skipped |');
  out.push('|---|---|---|---|---|');
  for (const [k, t] of tallyBy(main, (tc) => (tc.features?.length ? tc.features : ['(none)']))) {
    out.push(row(k, t));
  }
  out.push('');
  out.push('### How cases are mapped, and choices worth knowing');
  out.push('');
  out.push(...NOTES.map((n) => `- ${n}`));
  out.push('');
  out.push('### Skipped on purpose');
  out.push('');
  for (const s of SKIPS) {
    out.push(
      `- \`${s.feature}\`${s.ids ? ` (only ${s.ids.map((i) => `\`${i}\``).join(', ')})` : ''}: ${s.why}`,
    );
  }
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
    const line = `${r.file}: ${r.total.matched} matched, ${r.total.mismatched} mismatched, ${r.total.skipped} skipped of ${r.cases.length} SERVER cases; ${r.falseAccepts.length} false accepts; ${(r.ms / 1000).toFixed(1)} s`;
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
