import { defineConfig } from 'tsup';

// The test setup rebuilds only the JavaScript (fast, and tolerant of type errors
// that the typecheck step reports anyway) and keeps existing declarations.
const testBuild = process.env['CHRONOBOUND_TEST_BUILD'] === '1';

export default defineConfig([
  {
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
    dts: testBuild ? false : { compilerOptions: { stripInternal: true } },
    tsconfig: 'tsconfig.build.json',
    sourcemap: true,
    clean: !testBuild,
    target: 'es2022',
    platform: 'neutral',
    external: ['luxon', 'fast-check', /^node:/],
    splitting: true,
    treeshake: true,
  },
  {
    entry: { 'cli/main': 'src/cli/main.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    external: ['luxon', 'fast-check', 'better-sqlite3', 'pg'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
