/**
 * What a CLI command gets from the process: output streams, terminal facts,
 * environment and a signal that aborts on Ctrl-C (SIGINT) or SIGTERM. Commands
 * never touch `process` directly, so they stay testable and exit cleanly.
 *
 * @module
 */
import { sleepOn } from '../clock/sleep.js';
import { systemScheduler } from '../clock/system.js';

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
  return sleepOn(systemScheduler, ms, signal);
}

/**
 * Resolves when `signal` aborts (at once if it already has): how a long-running
 * command waits for Ctrl-C or SIGTERM.
 * @internal
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * `promise`, or a rejection with the signal's reason (as an Error) if `signal`
 * aborts first: how a command stops waiting on something that does not take a
 * signal itself.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const waiting = unlessAborted(new Promise(() => undefined), controller.signal);
 * controller.abort(new Error('stop'));
 * await waiting; // rejects with Error: stop
 * ```
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} The signal's reason, when it aborts before `promise` settles.
 * @internal
 */
export function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(asError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(asError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(asError(error));
      },
    );
  });
}

/**
 * `reason` if it is an Error, else an Error saying it.
 *
 * @example
 * ```ts
 * asError('stopped').message; // 'stopped'
 * ```
 * @internal
 */
export function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

/**
 * One progress line on stderr while a command waits, so stdout (and its JSON)
 * stays clean. On a terminal the line is rewritten in place and erased by
 * `done()`; off a terminal it is printed at most once a second (`'lines'`) or
 * not at all (`'silent'`).
 *
 * @example
 * ```ts
 * const progress = new Progress(io, 'silent');
 * progress.update('asking 3 servers…');
 * progress.done(); // erases the line on a terminal
 * ```
 * @internal
 */
export class Progress {
  readonly #io: CliIo;
  readonly #offTerminal: 'lines' | 'silent';
  #lastLineAt = -Infinity;
  #shown = false;

  constructor(io: CliIo, offTerminal: 'lines' | 'silent' = 'lines') {
    this.#io = io;
    this.#offTerminal = offTerminal;
  }

  /** Shows `text`; off a terminal, `force` prints it even within a second of the last line. */
  update(text: string, force: boolean = false): void {
    if (this.#io.stderr.isTTY === true) {
      this.#io.stderr.write(`\r\x1b[K${text}`);
      this.#shown = true;
      return;
    }
    if (this.#offTerminal === 'silent') return;
    const now = performance.now();
    if (force || now - this.#lastLineAt >= 1000) {
      this.#io.stderr.write(`${text}\n`);
      this.#lastLineAt = now;
    }
  }

  /** Erases the line on a terminal. */
  done(): void {
    if (this.#shown) this.#io.stderr.write('\r\x1b[K');
    this.#shown = false;
  }
}
