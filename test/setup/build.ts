/**
 * Vitest global setup: builds the package once before the tests, so tests that
 * run the CLI or spawn child processes use the same dist/ that users get.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  if (process.env['CHRONOBOUND_SKIP_BUILD'] === '1') return;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL('../../node_modules/tsup/dist/cli-default.js', import.meta.url))],
    {
      cwd: root,
      env: { ...process.env, CHRONOBOUND_TEST_BUILD: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}
