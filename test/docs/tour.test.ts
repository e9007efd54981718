/**
 * README's tour is examples/tour.ts verbatim, and it runs against the built
 * package with the output the README shows (numbers vary, shapes do not), the
 * way `npm run tour` runs it (after the test setup's build).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

describe('README tour', () => {
  it('is examples/tour.ts verbatim', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const tour = readFileSync(join(root, 'examples/tour.ts'), 'utf8');
    expect(readme).toContain('```ts\n' + tour + '```');
  });

  it('is what `npm run tour` runs', () => {
    expect(pkg.scripts['tour']).toBe(
      'npm run build:js && node scripts/run-example.mjs examples/tour.ts',
    );
  });

  it('runs and prints what the README shows', () => {
    const output = execFileSync(
      process.execPath,
      [join(root, 'scripts/run-example.mjs'), 'examples/tour.ts'],
      { cwd: root, encoding: 'utf8', timeout: 30_000 },
    );
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

describe('README on the npm page', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it('links and images are absolute URLs (relative ones are dead outside the repository)', () => {
    const targets = [...readme.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '');
    expect(targets.length).toBeGreaterThan(10);
    expect(targets.filter((t) => !/^https:\/\//.test(t))).toEqual([]);
    // Each repository link names a file that exists, so none of them is a 404 either.
    const prefix =
      /^https:\/\/(?:github\.com\/chronobound\/chronobound\/blob|raw\.githubusercontent\.com\/chronobound\/chronobound)\/main\/(.+)$/;
    for (const target of targets) {
      const file = prefix.exec(target)?.[1];
      if (file !== undefined) expect(existsSync(join(root, file)), target).toBe(true);
    }
  });

  it('says how to install before anything else, right after the two commands', () => {
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings[0]).toBe('Install');
    const install = readme.slice(readme.indexOf('## Install'));
    expect(install).toMatch(/^npm install chronobound$/m);
    expect(readme.indexOf('npm ci && npm test')).toBeLessThan(readme.indexOf('## Install'));
  });
});
