/**
 * Bundling an entry point the way a browser app would (esbuild, platform
 * `browser`, ES2022 ESM, in memory), for the tests that check what reaches a
 * browser: which sources go in, and that no Node built-in does.
 */
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** What {@link bundleForBrowser} built. */
export interface BrowserBundle {
  /** The bundled code. */
  readonly text: string;
  /** The files that went in, relative to the repository root (`src/index.ts`, …). */
  readonly inputs: readonly string[];
}

/**
 * Bundles `entry` (absolute, or relative to the repository root) for the
 * browser.
 *
 * @example
 * ```ts
 * const { text, inputs } = await bundleForBrowser('src/index.ts');
 * inputs.every((i) => i.startsWith('src/')); // true
 * ```
 * @throws esbuild's `BuildFailure` when something cannot be resolved for the browser (a `node:` module, say).
 */
export async function bundleForBrowser(
  entry: string,
  plugins: readonly Plugin[] = [],
): Promise<BrowserBundle> {
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
    plugins: [...plugins],
  });
  return {
    text: result.outputFiles.map((f) => f.text).join('\n'),
    inputs: Object.keys(result.metafile.inputs),
  };
}
