import { defineConfig, type Options } from 'tsup';

// CHRONOBOUND_BUILD=js (`npm run build:js`, and the test setup's
// CHRONOBOUND_TEST_BUILD=1) rebuilds only the JavaScript — fast, and tolerant of
// type errors that the typecheck step reports anyway — and keeps existing
// declarations. CHRONOBOUND_BUILD=cli (`npm run build:cli`, for `npm run demo`)
// builds only the CLI, in a few seconds.
const only =
  process.env['CHRONOBOUND_TEST_BUILD'] === '1' ? 'js' : (process.env['CHRONOBOUND_BUILD'] ?? '');
const jsOnly = only === 'js' || only === 'cli';

const library: Options = {
  entry: {
    index: 'src/index.ts',
    'ntp/index': 'src/ntp/index.ts',
    'node/index': 'src/node/index.ts',
    'testing/index': 'src/testing/index.ts',
    'testing/fast-check/index': 'src/testing/fast-check/index.ts',
    'testing/node/index': 'src/testing/node/index.ts',
    'luxon/index': 'src/luxon/index.ts',
    'etcd/index': 'src/etcd/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: jsOnly ? false : { compilerOptions: { stripInternal: true } },
  tsconfig: 'tsconfig.build.json',
  // The output is readable, unminified ES2022 with the same names as the
  // sources; source maps would more than double the package for little gain.
  sourcemap: false,
  clean: !jsOnly,
  target: 'es2022',
  platform: 'neutral',
  external: ['luxon', 'fast-check', /^node:/],
  // Node's own modules keep their `node:` prefix (tsup strips it by default),
  // so bundlers and other runtimes see them for what they are.
  removeNodeProtocol: false,
  splitting: true,
  treeshake: true,
};

const cli: Options = {
  entry: { 'cli/main': 'src/cli/main.ts' },
  format: ['esm'],
  sourcemap: false,
  target: 'node20',
  platform: 'node',
  external: ['luxon', 'fast-check', 'better-sqlite3', 'pg'],
  removeNodeProtocol: false,
  banner: { js: '#!/usr/bin/env node' },
};

export default defineConfig(only === 'cli' ? [cli] : [library, cli]);
