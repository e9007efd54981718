/**
 * README's tour is examples/tour.ts verbatim, and it runs against the built
 * package with the output the README shows (numbers vary, shapes do not).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tmp = mkdtempSync(join(root, '.tmp-tour-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('README tour', () => {
  it('is examples/tour.ts verbatim', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const tour = readFileSync(join(root, 'examples/tour.ts'), 'utf8');
    expect(readme).toContain('```ts\n' + tour + '```');
  });

  it('runs and prints what the README shows', async () => {
    const out = join(tmp, 'tour.mjs');
    // Not bundled: `chronobound` resolves to the built package by self-reference.
    await build({
      entryPoints: [join(root, 'examples/tour.ts')],
      outfile: out,
      format: 'esm',
      logLevel: 'error',
    });
    const output = execFileSync(process.execPath, [out], { encoding: 'utf8', timeout: 30_000 });
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^synchronized ε = \d+\.\d{3} ms$/);
    const epsilon = Number(/ε = ([\d.]+) ms/.exec(lines[0]!)?.[1]);
    const offset = Number(/offset vs Date\.now\(\): (-?[\d.]+) ms/.exec(lines[1]!)?.[1]);
    // The estimate is within ε of the reference, which runs 250 ms ahead (give or take a
    // millisecond between Date.now() and the performance clock the server counts from, and the
    // printed rounding). Date.now() is read after the estimate, so a stall in between can only
    // lower the printed offset: that side gets a generous margin.
    expect(offset).toBeLessThanOrEqual(250 + epsilon + 2);
    expect(offset).toBeGreaterThan(250 - epsilon - 2 - 1_000);
    expect(lines[2]).toBe('contains the reference: true');
    expect(lines[3]).toMatch(/^after\(timestamp\): true waited \d+\.\d{3} ms$/);
    expect(lines[4]).toMatch(/^[0-9a-f]{16}@node-a \d+n$/);
  });
});
