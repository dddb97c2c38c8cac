import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../support/tools.js';

/**
 * The layers of DESIGN.md, in order: a layer imports only from itself and the layers
 * above it in this list (core imports nothing of ours; cli may import everything).
 */
const LAYERS: Record<string, number> = {
  core: 1,
  store: 2,
  service: 3,
  runtime: 4,
  api: 5,
  cli: 6,
  web: 6,
  embed: 6,
};

/** Front ends reach the store only through `service/` (DESIGN.md, layer 3). */
const FRONT_ENDS = new Set(['api', 'cli', 'web', 'embed']);

/** Modules that do I/O, which `core/` (pure functions, DESIGN.md layer 1) never imports. */
const IO_MODULES = new Set([
  'node:fs',
  'node:fs/promises',
  'node:child_process',
  'node:http',
  'node:https',
  'node:http2',
  'node:tls',
  'node:dgram',
  'node:dns',
  'node:worker_threads',
  'better-sqlite3',
  'fastify',
  'pino',
]);

/**
 * Every module a TypeScript file names: static imports and re-exports (type-only ones
 * too, since they couple the layers as much), side-effect imports and dynamic `import()`.
 */
function importedSpecifiers(source: string): string[] {
  const patterns = [
    /^\s*(?:import|export)\s+(?:type\s+)?[\w$*{},\s]+?\s+from\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return patterns.flatMap((p) => [...source.matchAll(p)].map((m) => m[1]!));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(d.name) ? [path] : [];
  });
}

/** `src/<layer>/…` → `<layer>`; undefined for a path outside `src/`. */
function layerOf(path: string): string | undefined {
  const parts = relative(join(REPO_ROOT, 'src'), path).split(sep);
  return parts.length > 1 && parts[0] !== '..' ? parts[0] : undefined;
}

interface Import {
  /** Repository-relative paths, `/`-separated. */
  from: string;
  to: string;
  fromLayer: string;
  toLayer: string | undefined;
}

const show = (path: string) => relative(REPO_ROOT, path).split(sep).join('/');

function ourImports(): { imports: Import[]; external: { from: string; module: string }[] } {
  const imports: Import[] = [];
  const external: { from: string; module: string }[] = [];
  for (const file of sourceFiles(join(REPO_ROOT, 'src'))) {
    const fromLayer = layerOf(file);
    assert.ok(fromLayer && fromLayer in LAYERS, `${show(file)} is in no layer of DESIGN.md`);
    for (const specifier of importedSpecifiers(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) {
        external.push({ from: show(file), module: specifier });
        continue;
      }
      const target = resolve(dirname(file), specifier).replace(/\.js$/, '.ts');
      imports.push({ from: show(file), to: show(target), fromLayer, toLayer: layerOf(target) });
    }
  }
  return { imports, external };
}

describe('the layers of DESIGN.md', () => {
  const { imports, external } = ourImports();

  it('finds the imports it checks: static, type-only, re-exported and dynamic', () => {
    assert.deepEqual(
      importedSpecifiers(
        [
          "import { a, type B } from '../core/a.js';",
          "import type {\n  C,\n  D,\n} from '../store/store.js';",
          "export { e } from './e.js';",
          "export * from './f.js';",
          "import * as g from 'node:crypto';",
          "import './side-effect.js';",
          "const { h } = await import('./h.js');",
          "const s = 'not an import from here';",
        ].join('\n'),
      ),
      [
        '../core/a.js',
        '../store/store.js',
        './e.js',
        './f.js',
        'node:crypto',
        './side-effect.js',
        './h.js',
      ],
    );
    assert.ok(imports.length > 100, `only ${imports.length} imports found under src/`);
    assert.ok(
      imports.some((i) => i.from === 'src/cli/main.ts' && i.to === 'src/cli/serve.ts'),
      "the dynamic import('./serve.js') of cli/main.ts is seen",
    );
  });

  it('never imports from a layer below it, nor from outside src/', () => {
    const wrong = imports
      .filter((i) => i.toLayer === undefined || (LAYERS[i.toLayer] ?? 99) > LAYERS[i.fromLayer]!)
      .map((i) => `${i.from} → ${i.to}`);
    assert.deepEqual(wrong, [], 'a layer imports only from itself and the layers above it');
  });

  it('lets the front ends reach the store only through service/', () => {
    const found = imports
      .filter((i) => FRONT_ENDS.has(i.fromLayer) && i.toLayer === 'store')
      .map((i) => `${i.from} → ${i.to}`);
    assert.deepEqual(found, [], 'call service/ instead of store/');
  });

  it('keeps core/ free of I/O', () => {
    const io = external
      .filter((e) => e.from.startsWith('src/core/') && IO_MODULES.has(e.module))
      .map((e) => `${e.from} → ${e.module}`);
    assert.deepEqual(io, [], 'core/ is pure functions: no files, sockets or databases');
  });
});
