/**
 * Every ```ts code block in README.md and docs/*.md must type-check against the
 * package's sources, as a user would write it: `import … from 'chronobound'`
 * (and the four subpaths) resolve to src/ through a `paths` mapping. Each block
 * is its own module. A block that continues from context can state that
 * context in TypeScript (`declare const clock: TrueClock;`), which keeps it
 * checked; a block that is intentionally not code (pseudo-code, an excerpt) is
 * marked with `<!-- no-check -->` on the line before its fence — keep those rare.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT as root, typeCheckFolder } from '../support/type-check.js';

export interface CodeBlock {
  /** The markdown file, relative to the repository root. */
  readonly doc: string;
  /** 1-based line of the first line of code (after the fence). */
  readonly line: number;
  readonly code: string;
  /** Preceded by `<!-- no-check -->`. */
  readonly skipped: boolean;
}

/** Finds the ```ts / ```typescript blocks of a markdown text. */
export function extractBlocks(doc: string, text: string): CodeBlock[] {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const fence = open[2] ?? '```';
    let previous = i - 1;
    while (previous >= 0 && (lines[previous] ?? '').trim() === '') previous--;
    const skipped = (lines[previous] ?? '').trim() === '<!-- no-check -->';
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      if ((lines[j] ?? '').trim().startsWith(fence)) break;
      body.push(lines[j] ?? '');
    }
    blocks.push({ doc, line: i + 2, code: body.join('\n'), skipped });
    i = j;
  }
  return blocks;
}

function markdownFiles(): string[] {
  const files: string[] = [];
  if (existsSync(join(root, 'README.md'))) files.push('README.md');
  const docs = join(root, 'docs');
  if (existsSync(docs)) {
    for (const name of readdirSync(docs).sort()) {
      if (name.endsWith('.md')) files.push(`docs/${name}`);
    }
  }
  return files;
}

// Inside the repository, so node_modules (luxon, pg, better-sqlite3, fast-check types) resolve.
const work = join(root, '.tmp', `code-blocks-${process.pid}`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('code blocks in README.md and docs/*.md', () => {
  it('extracts fenced ts blocks and honours <!-- no-check -->', () => {
    const md = [
      'text',
      '```ts',
      'const a = 1;',
      '```',
      '<!-- no-check -->',
      '',
      '```typescript',
      'fragment(',
      '```',
      '```sh',
      'echo no',
      '```',
    ].join('\n');
    expect(extractBlocks('x.md', md)).toEqual([
      { doc: 'x.md', line: 3, code: 'const a = 1;', skipped: false },
      { doc: 'x.md', line: 8, code: 'fragment(', skipped: true },
    ]);
  });

  it('type-check against the package sources', async () => {
    const blocks = markdownFiles().flatMap((doc) =>
      extractBlocks(doc, readFileSync(join(root, doc), 'utf8')),
    );
    const checked = blocks.filter((b) => !b.skipped);
    const skipped = blocks.length - checked.length;
    // Fragments should stay rare: at most one in five blocks.
    expect(
      skipped,
      `${skipped} of ${blocks.length} blocks are marked no-check`,
    ).toBeLessThanOrEqual(Math.max(2, Math.ceil(blocks.length / 5)));
    if (checked.length === 0) return;

    mkdirSync(work, { recursive: true });
    const names = new Map<string, CodeBlock>();
    checked.forEach((block, i) => {
      const name = `${block.doc.replace(/[^a-zA-Z0-9]+/g, '_')}_${block.line}_${i}.ts`;
      names.set(name, block);
      // A trailing export makes every block a module (top-level await, own scope).
      writeFileSync(join(work, name), `${block.code}\nexport {};\n`);
    });
    const output = await typeCheckFolder(work, {
      noUncheckedIndexedAccess: true,
      verbatimModuleSyntax: true,
    });
    // Map "file.ts(line,col): error TS…" back to the markdown file and line.
    const problems: string[] = [];
    for (const line of output.split('\n')) {
      const m = /^(.+?\.ts)\((\d+),(\d+)\): (error .*)$/.exec(line.trim());
      if (!m) continue;
      const block = names.get(m[1]?.split(/[\\/]/).pop() ?? '');
      if (block === undefined) {
        problems.push(`(in package sources) ${line.trim()}`);
        continue;
      }
      problems.push(`${block.doc}:${block.line + Number(m[2]) - 1}:${m[3]} ${m[4]}`);
    }
    if (problems.length === 0 && output.trim() !== '') problems.push(output.trim());
    expect(
      problems,
      `Code blocks that do not type-check. Fix them, declare the context a fragment assumes ` +
        '(`declare const clock: TrueClock;`), or mark a block that is not meant to be code with ' +
        `<!-- no-check -->:\n${problems.join('\n')}`,
    ).toEqual([]);
  }, 120_000);
});
