/**
 * What a CLI command gets from the process: output streams, terminal facts,
 * environment and a signal that aborts on Ctrl-C (SIGINT) or SIGTERM. Commands
 * never touch `process` directly, so they stay testable and exit cleanly.
 *
 * @module
 */

/**
 * A writable text stream (process.stdout / process.stderr, or a test buffer).
 * @internal
 */
export interface TextOut {
  write(text: string): unknown;
  /** Whether it is an interactive terminal (enables in-place redraws). */
  readonly isTTY?: boolean;
  /** Terminal width in columns, when known. */
  readonly columns?: number;
}

/**
 * The process, as commands see it.
 * @internal
 */
export interface CliIo {
  readonly stdout: TextOut;
  readonly stderr: TextOut;
  /** Aborts on SIGINT/SIGTERM; long-running commands stop cleanly and return 0. */
  readonly signal: AbortSignal;
  /** Print stack traces and extra detail. */
  readonly debug: boolean;
  /** The working directory (where `demo` writes its SVG). */
  readonly cwd: string;
}

/**
 * A command: parses its own flags, returns an exit code.
 * @internal
 */
export type Command = (argv: readonly string[], io: CliIo) => Promise<number>;

/**
 * Resolves after `ms`, or early (without rejecting) when `signal` aborts.
 * @internal
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
