/**
 * `chronobound/testing` is browser-safe: it bundles for the browser with
 * fast-check not installed (the bundler is told it cannot be resolved) and no
 * Node built-in, from the sources and from the built package users import.
 * The two subpaths that do need them say so.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

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

async function bundleForBrowser(entry: string): Promise<{ text: string; inputs: string[] }> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [noFastCheck],
  });
  return {
    text: result.outputFiles.map((f) => f.text).join('\n'),
    inputs: Object.keys(result.metafile.inputs),
  };
}

function expectBrowserSafe(bundle: { text: string; inputs: string[] }): void {
  expect(bundle.inputs.filter((i) => /node_modules|fast-check\//.test(i))).toEqual([]);
  expect(bundle.text).not.toMatch(/fast-check|dgram|["']node:|require\(/);
  // It is the toolkit, not an empty shell.
  for (const name of ['ManualClock', 'SimulatedClock', 'ClusterSimulator', 'checkCausalOrder'])
    expect(bundle.text).toContain(name);
}

describe('chronobound/testing in a browser bundle', () => {
  it('bundles from the sources with platform browser, without fast-check or Node modules', async () => {
    const bundle = await bundleForBrowser('src/testing/index.ts');
    expect(bundle.inputs).toContain('src/testing/cluster.ts');
    expectBrowserSafe(bundle);
  });

  it('bundles from the built package (dist/testing/index.js) the same way', async () => {
    const built = join(root, 'dist/testing/index.js');
    expect(existsSync(built), 'the test setup builds dist/').toBe(true);
    expectBrowserSafe(await bundleForBrowser(built));
  });

  it('the check is real: the arbitraries need fast-check, the loopback server needs Node', async () => {
    await expect(bundleForBrowser('src/testing/fast-check/index.ts')).rejects.toThrow(
      /fast-check is not installed/,
    );
    await expect(bundleForBrowser('src/testing/node/index.ts')).rejects.toThrow(/node:dgram/);
  });
});
