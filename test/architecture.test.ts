/**
 * The layers of src/ (docs/architecture.md), checked on every import: a folder
 * may import only the folders listed for it, and the core folders — what the
 * root entry `chronobound` is built from, which runs in browsers, Deno, Bun and
 * Workers — import no `node:` module.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

/**
 * The layers up to `server`, top-down: `node`, `testing` and `cli` may import
 * every one of them, the root barrel all but `_internals`.
 */
const CORE_LAYERS = [
  'server',
  'safety',
  'logical',
  'truetime',
  'sources',
  'protocol',
  'clock',
  'errors',
  '_internals',
] as const;

/** Bottom-up. Each folder lists every folder it may import (besides itself). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  errors: [],
  _internals: ['errors'],
  clock: ['errors', '_internals'],
  protocol: ['clock', 'errors', '_internals'],
  sources: ['protocol', 'clock', 'errors', '_internals'],
  truetime: ['sources', 'protocol', 'clock', 'errors', '_internals'],
  logical: ['clock', 'errors', '_internals'],
  safety: ['truetime', 'sources', 'protocol', 'logical', 'clock', 'errors', '_internals'],
  server: ['truetime', 'sources', 'protocol', 'clock', 'errors', '_internals'],
  luxon: ['truetime', 'clock', 'errors', '_internals'],
  ntp: ['sources', 'protocol', 'clock', 'errors', '_internals'],
  node: ['ntp', ...CORE_LAYERS],
  etcd: ['safety', 'truetime', 'sources', 'logical', 'clock', 'errors', '_internals'],
  testing: ['node', 'ntp', ...CORE_LAYERS],
  cli: ['testing', 'etcd', 'node', 'ntp', 'luxon', ...CORE_LAYERS],
  // The root barrel: the core only.
  index: CORE_LAYERS.filter((folder) => folder !== '_internals'),
};

/** Folders the root entry is built from: no `node:` imports, no Node-only peers. */
const CORE = [
  'errors',
  '_internals',
  'clock',
  'protocol',
  'sources',
  'truetime',
  'logical',
  'safety',
  'server',
  'luxon',
  'index',
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** `src/ntp/nts/ke.ts` → `ntp`; `src/index.ts` → `index`; `src/errors.ts` → `errors`. */
function folderOf(path: string): string {
  const [first = ''] = relative(SRC, path).split(/[\\/]/);
  return first.replace(/\.(ts|js)$/, '');
}

interface Import {
  readonly file: string;
  readonly specifier: string;
}

function importsOf(file: string): Import[] {
  // Without comments: TSDoc examples import from 'chronobound' on purpose.
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const found: Import[] = [];
  // Static imports and re-exports (`import … from`, `export … from`, `import '…'`) and dynamic import().
  const pattern = /(?:\bfrom\s+|\bimport\s+|\bimport\(\s*)'([^']+)'/g;
  for (const match of text.matchAll(pattern)) found.push({ file, specifier: match[1] ?? '' });
  return found;
}

const files = sourceFiles(SRC);
const imports = files.flatMap(importsOf);

describe('architecture', () => {
  it('knows every folder of src/', () => {
    const folders = new Set(files.map(folderOf));
    expect([...folders].filter((f) => !(f in ALLOWED))).toEqual([]);
  });

  it('imports only downward: each folder imports only the folders allowed for it', () => {
    const violations: string[] = [];
    for (const { file, specifier } of imports) {
      if (!specifier.startsWith('.')) continue;
      const from = folderOf(file);
      const to = folderOf(normalize(join(dirname(file), specifier)));
      if (to === from) continue;
      if (!(ALLOWED[from] ?? []).includes(to))
        violations.push(`${relative(SRC, file)} imports ${specifier} (${from} → ${to})`);
    }
    expect(violations).toEqual([]);
  });

  it('keeps the core free of node: modules and of the optional peers', () => {
    const violations = imports
      .filter(({ file }) => CORE.includes(folderOf(file)))
      .filter(({ specifier }) => !specifier.startsWith('.') && specifier !== 'luxon')
      .map(({ file, specifier }) => `${relative(SRC, file)} imports ${specifier}`);
    expect(violations).toEqual([]);
  });
});
