/**
 * Writes one bench's section of BENCHMARKS.md, between `<!-- NAME:start -->` and
 * `<!-- NAME:end -->`: replaced where it is, appended where it is not yet.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeBenchmarksSection(name: string, body: string): void {
  const path = join(import.meta.dirname, '..', 'BENCHMARKS.md');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body}\n${end}`;
  const doc = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  writeFileSync(
    path,
    a >= 0 && b > a
      ? `${doc.slice(0, a)}${block}${doc.slice(b + end.length)}`
      : `${doc.trimEnd()}\n\n${block}\n`,
  );
}
