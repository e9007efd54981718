/**
 * `chronobound/testing` is browser-safe: it bundles for the browser with
 * fast-check not installed (the bundler is told it cannot be resolved) and no
 * Node built-in, from the sources and from the built package users import.
 * The two subpaths that do need them say so.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { bundleForBrowser, type BrowserBundle } from '../support/browser-bundle.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Resolving fast-check fails, as in a project that never installed it. */
const noFastCheck: Plugin = {
  name: 'no-fast-check',
  setup(b) {
    b.onResolve({ filter: /^(fast-check|pure-rand)(\/.*)?$/ }, (args) => ({
      errors: [{ text: `${args.path} is not installed` }],
    }));
  },
};

const bundle = (entry: string): Promise<BrowserBundle> => bundleForBrowser(entry, [noFastCheck]);

function expectBrowserSafe(bundle: BrowserBundle): void {
  expect(bundle.inputs.filter((i) => /node_modules|fast-check\//.test(i))).toEqual([]);
  expect(bundle.text).not.toMatch(/fast-check|dgram|["']node:|require\(/);
  // It is the toolkit, not an empty shell.
  for (const name of ['ManualClock', 'SimulatedClock', 'ClusterSimulator', 'checkCausalOrder'])
    expect(bundle.text).toContain(name);
}

describe('chronobound/testing in a browser bundle', () => {
  it('bundles from the sources with platform browser, without fast-check or Node modules', async () => {
    const fromSources = await bundle('src/testing/index.ts');
    expect(fromSources.inputs).toContain('src/testing/cluster.ts');
    expectBrowserSafe(fromSources);
  });

  it('bundles from the built package (dist/testing/index.js) the same way', async () => {
    const built = join(root, 'dist/testing/index.js');
    expect(existsSync(built), 'the test setup builds dist/').toBe(true);
    expectBrowserSafe(await bundle(built));
  });

  it('the check is real: the arbitraries need fast-check, the loopback server needs Node', async () => {
    await expect(bundle('src/testing/fast-check/index.ts')).rejects.toThrow(
      /fast-check is not installed/,
    );
    await expect(bundle('src/testing/node/index.ts')).rejects.toThrow(/node:dgram/);
  });
});
