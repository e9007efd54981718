#!/usr/bin/env node
/**
 * Runs a TypeScript example against the built package: `npm run tour` is
 * `npm run build:js && node scripts/run-example.mjs examples/tour.ts`.
 *
 * Node 20 cannot run TypeScript, so esbuild strips the types (nothing is
 * bundled) into a file inside the repository, where `chronobound` and its
 * subpaths resolve to dist/ by the package's self-reference, as they would in
 * an application that installed it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [example, ...rest] = process.argv.slice(2);
if (example === undefined) {
  console.error('usage: node scripts/run-example.mjs <file.ts> [args...]');
  process.exit(2);
}

const tmp = mkdtempSync(join(root, '.tmp-example-'));
let status = 1;
try {
  const out = join(tmp, basename(example).replace(/\.ts$/, '.mjs'));
  await build({
    entryPoints: [resolve(example)],
    outfile: out,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
  });
  const result = spawnSync(process.execPath, [out, ...rest], { stdio: 'inherit' });
  status = result.status ?? 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);
