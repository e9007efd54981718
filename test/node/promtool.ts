/**
 * promtool (Debian's `prometheus` package) for tests that check the metrics
 * exposition: where it is missing the checks skip locally, but under CI
 * (`process.env.CI`) {@link locatePromtool} throws — a failure, never a skip.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const PROMTOOL_CANDIDATES = ['/usr/bin/promtool', '/usr/local/bin/promtool', '/bin/promtool'];

/** Path of promtool, or `undefined` when it is not installed (local runs skip); throws under CI. */
export function locatePromtool(): string | undefined {
  const fromEnv = process.env['PROMTOOL'];
  const found = [...(fromEnv ? [fromEnv] : []), ...PROMTOOL_CANDIDATES].find((p) => existsSync(p));
  if (found === undefined && process.env['CI']) {
    throw new Error(
      'promtool not found; CI must check the metrics format (apt-get install -y prometheus, or set PROMTOOL).',
    );
  }
  return found;
}

/** Runs `promtool check metrics` on `text`; resolves with its exit code and output. */
export function promtoolCheck(
  promtool: string,
  text: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
