/**
 * The whole SERVER set of x509-limbo's `limbo.json` and its two snapshots, run in-process
 * through the same mapping as `npm run limbo`, none skipped. The floor is the count
 * reached when this test was written, so that a regression fails; raise it when the
 * validator gets better.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  type CaseResult,
  EXPLANATIONS,
  findConflicts,
  loadSuite,
  runCase,
  runSuite,
  SUITES,
  type Testcase,
} from '../../scripts/limbo.js';
import { NAME_CONSTRAINT_BUDGET } from '../../src/core/name-constraints.js';
import { SEARCH_BUDGET, SIGNATURE_BUDGET, type ValidationWork } from '../../src/core/validate.js';
import { LIMBO, needsCorpus } from '../support/tools.js';

const MATCHED_FLOOR = 193;

/** The false accepts we keep on purpose, each explained in `EXPLANATIONS`. */
const KNOWN_FALSE_ACCEPTS = ['rfc5280::aki::cross-signed-root-missing-aki'];

describe('x509-limbo SERVER cases', { skip: needsCorpus(join(LIMBO, 'limbo.json')) }, () => {
  let cases: Testcase[] = [];
  const results = new Map<string, CaseResult>();

  before(() => {
    cases = loadSuite('limbo.json');
    for (const tc of cases) results.set(tc.id, runCase(tc));
  });

  const expectCase = (id: string, expected: 'SUCCESS' | 'FAILURE', contextCode?: string) => {
    const r = results.get(id);
    assert.ok(r, `no testcase ${id}`);
    assert.equal(r.actual_result, expected, `${id}: ${r.context}`);
    if (contextCode) assert.match(r.context ?? '', new RegExp(`^${contextCode}:`));
  };

  it('runs all 198 SERVER cases', () => {
    assert.equal(cases.length, 198);
  });

  it('answers every case, skipping none', () => {
    for (const tc of cases) {
      assert.match(results.get(tc.id)?.actual_result ?? '', /^(SUCCESS|FAILURE)$/, tc.id);
    }
  });

  it('finds in the data the conflicts x509-limbo declares, and no others', () => {
    const conflicts = findConflicts(cases);
    const declared = new Map(
      cases.filter((tc) => tc.conflicts_with?.length).map((tc) => [tc.id, tc.conflicts_with]),
    );
    assert.equal(declared.size, 6);
    assert.deepEqual(new Map([...conflicts].sort()), new Map([...declared].sort()));
  });

  it('accepts no case that expects FAILURE outside a conflict, but the explained ones', () => {
    const conflicts = findConflicts(cases);
    const falseAccepts = cases
      .filter((tc) => tc.expected_result === 'FAILURE')
      .filter((tc) => results.get(tc.id)?.actual_result === 'SUCCESS')
      .map((tc) => tc.id);
    const outside = falseAccepts.filter((id) => !conflicts.has(id));
    assert.deepEqual(outside, KNOWN_FALSE_ACCEPTS);
    for (const id of outside) assert.ok(EXPLANATIONS[id], `${id} has no stated reason`);
    // In each conflict we answer one side right.
    for (const id of falseAccepts.filter((i) => conflicts.has(i))) {
      for (const other of conflicts.get(id)!) expectCase(other, 'SUCCESS');
    }
  });

  it('refuses wildcards directly under a public suffix, ICANN or private', () => {
    expectCase('webpki::san::public-suffix-wildcard-san', 'FAILURE');
    expectCase(
      'webpki::san::public-suffix-multi-label-wildcard-san',
      'FAILURE',
      'HostnameMismatch',
    );
    expectCase(
      'webpki::san::public-suffix-private-namespace-wildcard-san',
      'FAILURE',
      'HostnameMismatch',
    );
  });

  it(`matches at least ${MATCHED_FLOOR} cases`, () => {
    const matched = cases.filter((tc) => results.get(tc.id)?.actual_result === tc.expected_result);
    assert.ok(matched.length >= MATCHED_FLOOR, `matched ${matched.length}`);
  });

  it('validates real web chains at their capture time', () => {
    for (const tc of cases.filter((t) => t.id.startsWith('online::'))) expectCase(tc.id, 'SUCCESS');
  });

  it('builds the path through cross-signed CAs that form a cycle (CVE-2024-0567)', () => {
    expectCase('cve::cve-2024-0567', 'SUCCESS');
  });

  it('refuses a wildcard SAN that could name an excluded host (CVE-2025-61727)', () => {
    expectCase('cve::cve-2025-61727', 'FAILURE', 'NameConstraintViolation');
  });

  // How long they take is measured by `npm run bench:latency` (BENCHMARKS.md), not here.
  it('ends pathological chains within the work budgets, counted', () => {
    const hostile = cases.filter((t) => t.features?.includes('denial-of-service'));
    assert.equal(hostile.length, 7);
    for (const tc of hostile) {
      const work: ValidationWork = { signatureChecks: 0, searchSteps: 0, nameComparisons: 0 };
      const r = runCase(tc, new Date(), work);
      assert.equal(r.actual_result, 'FAILURE', tc.id);
      const summary = `${tc.id}: ${JSON.stringify(work)}`;
      assert.ok(work.signatureChecks <= SIGNATURE_BUDGET, summary);
      assert.ok(work.searchSteps <= SEARCH_BUDGET, summary);
      assert.ok(work.nameComparisons <= NAME_CONSTRAINT_BUDGET, summary);
    }
    expectCase('pathological::nc-dos-2', 'FAILURE', 'NameConstraintViolation');
    // The 100-link chains stop at the signature budget, not at the end of the chain.
    const sameSubject = { signatureChecks: 0, searchSteps: 0, nameComparisons: 0 };
    const tc = cases.find(
      (t) => t.id === 'pathological::pathological-chain-same-subject-distinct-key',
    );
    runCase(tc!, new Date(), sameSubject);
    assert.equal(sameSubject.signatureChecks, SIGNATURE_BUDGET);
  });

  it('does not count self-issued intermediates against pathlen', () => {
    expectCase('pathlen::self-issued-certs-pathlen', 'SUCCESS');
    expectCase('pathlen::intermediate-violates-pathlen-0', 'FAILURE', 'PathLengthExceeded');
  });

  it('compares validity in whole seconds', () => {
    expectCase('rfc5280::validity::notafter-fractional', 'SUCCESS');
    expectCase('rfc5280::validity::expired-1-second', 'FAILURE', 'CertificateExpired');
  });

  it('checks revocation against the CRLs given', () => {
    expectCase('crl::revoked-certificate-with-crl', 'FAILURE', 'CertificateRevoked');
    expectCase('crl::certificate-serial-on-crl-different-issuer', 'SUCCESS');
  });

  it('applies directoryName constraints', () => {
    expectCase('rfc5280::nc::permitted-dn-match', 'SUCCESS');
  });

  it('refuses a CA certificate as a server certificate', () => {
    expectCase('webpki::ca-as-leaf', 'FAILURE', 'UsageNotAllowed');
  });

  it('ignores unknown critical extensions of certificates off the path', () => {
    expectCase('rfc5280::unknown-critical-extension-unrelated-intermediate', 'SUCCESS');
    expectCase(
      'rfc5280::unknown-critical-extension-intermediate',
      'FAILURE',
      'UnknownCriticalExtension',
    );
  });
});

describe('x509-limbo snapshots', () => {
  for (const file of SUITES.slice(1)) {
    it(`${file}: no false accept outside a conflict found in the data, but the explained ones`, {
      skip: needsCorpus(join(LIMBO, file)),
    }, () => {
      const report = runSuite(file);
      assert.ok(report.cases.length > 100, `only ${report.cases.length} cases`);
      assert.deepEqual(report.falseAcceptsOutsideConflicts, KNOWN_FALSE_ACCEPTS);
      for (const id of report.falseAccepts) {
        if (report.conflicts.has(id)) continue;
        assert.ok(EXPLANATIONS[id], `${id} has no stated reason`);
      }
    });
  }
});
