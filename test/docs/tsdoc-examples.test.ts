/**
 * Every ```ts `@example` in the TSDoc of src/ must type-check against the
 * package's sources, as far as it can be checked on its own: each example is a
 * module that imports the public names it mentions from the entry of its own
 * folder (then the root entry, then the other subpaths). Names an example
 * assumes from context (`clock`, `row`, `db`) are left undeclared, and only
 * that diagnostic is forgiven — so a renamed option, a wrong argument, a
 * misspelled method of an imported class or a syntax error all fail here.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ENTRIES, ROOT as root, typeCheckFolder } from '../support/type-check.js';

/** Each public entry and the src/ folder whose examples prefer it (`src/ntp/index.ts` → `ntp`). */
const entries: ReadonlyArray<{ specifier: string; file: string; folder: string }> =
  PACKAGE_ENTRIES.map((entry) => ({
    ...entry,
    folder: entry.file.replace(/^src\//, '').replace(/\/?index\.ts$/, ''),
  }));

/**
 * Context names examples use often, typed so that what is done with them is
 * checked too. Declared only when an example uses the name without declaring it.
 */
const CONTEXT: Readonly<Record<string, string>> = {
  clock: 'TrueClock',
  hlc: 'HybridLogicalClock',
  lamport: 'LamportClock',
  history: 'CausalHistory',
  vectorStamps: 'readonly VectorClock[]',
};

/** Diagnostics forgiven: a name the example takes from its context. */
const CONTEXT_CODES = new Set([2304, 2552, 2580, 18004]);

interface Example {
  readonly file: string;
  /** 1-based line of the example's first code line in `file`. */
  readonly line: number;
  readonly code: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The ```ts blocks inside `/** … *\/` comments, with the leading ` * ` removed. */
export function extractExamples(file: string, text: string): Example[] {
  const lines = text.split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\*\s*```(ts|typescript)\s*$/.test(lines[i] ?? '')) continue;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j] ?? '';
      if (/^\s*\*\s*```\s*$/.test(line)) break;
      body.push(line.replace(/^\s*\* ?/, ''));
    }
    examples.push({ file, line: i + 2, code: body.join('\n') });
    i = j;
  }
  return examples;
}

/** The exported names of each entry, read with the compiler. */
function exportsOfEntries(): Map<string, Set<string>> {
  const program = ts.createProgram(
    entries.map((e) => join(root, e.file)),
    { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext },
  );
  const checker = program.getTypeChecker();
  const result = new Map<string, Set<string>>();
  for (const entry of entries) {
    const source = program.getSourceFile(join(root, entry.file));
    const symbol = source && checker.getSymbolAtLocation(source);
    const names = symbol ? checker.getExportsOfModule(symbol).map((s) => s.getName()) : [];
    result.set(entry.specifier, new Set(names));
  }
  return result;
}

/** Names the example declares itself (so they must not be imported). */
function declaredIn(code: string): Set<string> {
  const declared = new Set<string>();
  const pattern =
    /\b(?:const|let|var|using|function|class|interface|type|enum)\s+([A-Za-z_$][\w$]*)|\bimport\s+(?:type\s+)?\{([^}]*)\}|\bimport\s+([A-Za-z_$][\w$]*)\s+from/g;
  for (const m of code.matchAll(pattern)) {
    if (m[1]) declared.add(m[1]);
    if (m[3]) declared.add(m[3]);
    for (const part of (m[2] ?? '').split(',')) {
      const name = part
        .trim()
        .split(/\s+as\s+/)
        .pop()
        ?.replace(/^type\s+/, '');
      if (name) declared.add(name);
    }
  }
  return declared;
}

const work = join(root, '.tmp', `tsdoc-examples-${process.pid}`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('TSDoc examples in src/', () => {
  it('extracts the ts blocks of doc comments', () => {
    const text = ['/**', ' * @example', ' * ```ts', ' * f(1); // 2', ' * ```', ' */'].join('\n');
    expect(extractExamples('x.ts', text)).toEqual([{ file: 'x.ts', line: 4, code: 'f(1); // 2' }]);
  });

  it('type-check against the package sources', async () => {
    const files = sourceFiles(join(root, 'src'));
    const examples = files.flatMap((f) =>
      extractExamples(relative(root, f), readFileSync(f, 'utf8')),
    );
    expect(examples.length).toBeGreaterThan(300);
    const exported = exportsOfEntries();

    mkdirSync(work, { recursive: true });
    const byName = new Map<string, { example: Example; header: number }>();
    examples.forEach((example, i) => {
      // The entries whose folder holds the file, innermost first; then the root; then the rest.
      const dir = example.file.split('/').slice(1, -1).join('/');
      const holds = (e: (typeof entries)[number]): boolean =>
        e.folder !== '' && (dir === e.folder || dir.startsWith(`${e.folder}/`));
      const order = [
        ...entries.filter(holds).sort((a, b) => b.folder.length - a.folder.length),
        ...entries.filter((e) => e.folder === ''),
        ...entries.filter((e) => e.folder !== '' && !holds(e)),
      ];
      const declared = declaredIn(example.code);
      const context = Object.entries(CONTEXT)
        .filter(
          ([name]) =>
            !declared.has(name) && new RegExp(`(?<![\\w$.])${name}\\b`).test(example.code),
        )
        .map(([name, type]) => `declare const ${name}: ${type};`);
      if (/(?<![\w$.])fc\./.test(example.code) && !declared.has('fc'))
        context.unshift("import fc from 'fast-check';");
      const text = [...context, example.code].join('\n');
      const taken = new Set<string>();
      const imports: string[] = [];
      for (const entry of order) {
        const names = [...(exported.get(entry.specifier) ?? [])].filter(
          (name) =>
            !taken.has(name) &&
            !declared.has(name) &&
            new RegExp(`(?<![\\w$.])${name.replace(/\$/g, '\\$')}(?![\\w$])`).test(text),
        );
        for (const name of names) taken.add(name);
        if (names.length > 0)
          imports.push(`import { ${names.join(', ')} } from '${entry.specifier}';`);
      }
      const name = `${example.file.replace(/[^a-zA-Z0-9]+/g, '_')}_${example.line}_${i}.ts`;
      byName.set(name, { example, header: imports.length + context.length });
      writeFileSync(join(work, name), [...imports, text, 'export {};', ''].join('\n'));
    });
    // CONTEXT shadows `history`, which DOM declares.
    const output = await typeCheckFolder(work, { noImplicitAny: false });
    const problems: string[] = [];
    for (const line of output.split('\n')) {
      const m = /^(.+?\.ts)\((\d+),(\d+)\): error TS(\d+): (.*)$/.exec(line.trim());
      if (!m) continue;
      if (CONTEXT_CODES.has(Number(m[4]))) continue;
      const found = byName.get(m[1]?.split(/[\\/]/).pop() ?? '');
      if (found === undefined) {
        problems.push(`(in package sources) ${line.trim()}`);
        continue;
      }
      const at = found.example.line + Number(m[2]) - 1 - found.header;
      problems.push(`${found.example.file}:${at} TS${m[4]}: ${m[5]}`);
    }
    expect(problems, `TSDoc examples that do not type-check:\n${problems.join('\n')}`).toEqual([]);
  }, 180_000);
});
