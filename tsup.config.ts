import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      'ntp/index': 'src/ntp/index.ts',
      'node/index': 'src/node/index.ts',
      'testing/index': 'src/testing/index.ts',
      'luxon/index': 'src/luxon/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: { compilerOptions: { stripInternal: true } },
    tsconfig: 'tsconfig.build.json',
    sourcemap: true,
    clean: true,
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
