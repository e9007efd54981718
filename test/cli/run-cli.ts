/**
 * Runs the BUILT command (`node dist/cli/main.js`, rebuilt by the vitest global
 * setup) as a child process, the way users run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const CLI: string = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time the process ran (ms). */
  readonly elapsedMs: number;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill (SIGKILL) after this long and fail; default 30 s. */
  readonly timeoutMs?: number;
  /** Path of the script to run instead of dist/cli/main.js. */
  readonly script?: string;
}

function collect(child: ChildProcess, started: number, timeoutMs: number): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`CLI did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`),
      );
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, elapsedMs: performance.now() - started });
    });
  });
}

/** Runs `chronobound ...args` to completion. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const started = performance.now();
  const child = spawn(process.execPath, [options.script ?? CLI, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child, started, options.timeoutMs ?? 30_000);
}

/** `r`'s stdout parsed as JSON, once it is known to have exited 0 (else the test fails, showing stderr). */
export function jsonOfSuccess<T>(r: CliResult): T {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** A running CLI process whose output can be awaited line by line. */
export interface RunningCli {
  readonly child: ChildProcess;
  /** Resolves with the first stdout line matching `pattern` (already seen ones count). */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Every complete stdout line so far. */
  lines(): readonly string[];
  /** Resolves when the process exits. */
  readonly done: Promise<CliResult>;
}

/** Starts `chronobound ...args` in the background. */
export function startCli(args: readonly string[], options: RunOptions = {}): RunningCli {
  const started = performance.now();
  const child = spawn(process.execPath, [options.script ?? CLI, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seen: string[] = [];
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    seen.push(...parts);
    for (const wake of [...waiters]) wake();
  });
  const done = collect(child, started, options.timeoutMs ?? 60_000);
  return {
    child,
    done,
    lines: () => seen.slice(),
    line(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = seen.find((l) => pattern.test(l));
          if (found === undefined) return false;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const wake = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(
              `no stdout line matching ${pattern} within ${timeoutMs} ms; got:\n${seen.join('\n')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(wake);
        check();
        child.once('close', () => {
          if (check()) return;
          waiters.delete(wake);
          clearTimeout(timer);
          reject(
            new Error(
              `process exited without a line matching ${pattern}; got:\n${seen.join('\n')}`,
            ),
          );
        });
      });
    },
  };
}

/** One line of text, no stack trace: what every failure must look like without --debug. */
export function isOneLineError(stderr: string): boolean {
  const lines = stderr.trimEnd().split('\n');
  return lines.length === 1 && !/\n\s+at /.test(stderr) && /^chronobound/.test(lines[0] ?? '');
}

/**
 * Like {@link isOneLineError} for commands that print progress lines to stderr
 * first: the error is the last line, and there is no stack trace anywhere.
 */
export function endsWithOneLineError(stderr: string): boolean {
  const lines = stderr.trimEnd().split('\n');
  return !/\n\s+at /.test(stderr) && /^chronobound \w+: /.test(lines.at(-1) ?? '');
}
