/**
 * The interfaces every clock and time source in chronobound is built from.
 *
 * @module
 */

/**
 * A clock that never goes backwards and never jumps: `performance.now()`-style
 * milliseconds from an arbitrary origin. Intervals only ever grow from it.
 *
 * @example
 * ```ts
 * const mono: MonotonicSource = { now: () => performance.now() };
 * ```
 */
export interface MonotonicSource {
  /** The current reading in milliseconds from an arbitrary origin. */
  now(): number;
  /** Smallest step the clock can show (ms); added to every bound. Default 0. */
  readonly resolutionMs?: number;
}

/**
 * A wall clock in epoch milliseconds, like `Date.now()`. It may step in either
 * direction at any time; never subtract two readings to measure a duration.
 *
 * @example
 * ```ts
 * const wall: WallSource = { now: () => Date.now() };
 * ```
 */
export interface WallSource {
  /** The current wall-clock reading in epoch milliseconds. */
  now(): number;
  /** Smallest step the clock can show (ms); `Date.now()` has 1. */
  readonly resolutionMs?: number;
}

/**
 * A sync sample: "at monotonic reading `monotonicAt`, true time was
 * `monotonicAt + offsetMs`, give or take `errorMs`".
 *
 * @example
 * ```ts
 * const s: SyncSample = { monotonicAt: mono.now(), offsetMs: Date.now() - mono.now(), errorMs: 5, source: 'manual' };
 * ```
 */
export interface SyncSample {
  /** Monotonic reading (on the clock's own timescale) the sample refers to. */
  readonly monotonicAt: number;
  /** True time minus the monotonic reading at `monotonicAt` (ms). */
  readonly offsetMs: number;
  /** Bound on the error of `monotonicAt + offsetMs` as true time (ms, ≥ 0). */
  readonly errorMs: number;
  /** Human-readable name of where the sample came from. */
  readonly source: string;
  /**
   * `true` when `errorMs` is an assumption nobody measured (e.g. the system clock
   * with an assumed error). A clock fed only such samples stays `unsynchronized`.
   */
  readonly assumed?: boolean;
}

/**
 * Something that went wrong inside a source without producing a sample: a
 * timeout, a rejected reply, no majority among servers. The clock keeps the
 * latest one to explain its status.
 *
 * @example
 * ```ts
 * const p: SourceProblem = { source: 'ntp', reason: 'no-majority', message: 'servers disagree' };
 * ```
 */
export interface SourceProblem {
  /** The source that reports it. */
  readonly source: string;
  /** Stable short identifier (e.g. `'timeout'`, `'no-majority'`, `'wall-step'`). */
  readonly reason: string;
  /** Human-readable explanation. */
  readonly message: string;
  /** The error behind it, if any. */
  readonly error?: Error;
}

/**
 * Receives what a source produces.
 *
 * @example
 * ```ts
 * const onSample: SampleListener = (s) => console.log(s.offsetMs, s.errorMs);
 * ```
 */
export type SampleListener = (sample: SyncSample) => void;

/**
 * Receives problems reported by a source.
 *
 * @example
 * ```ts
 * const onProblem: ProblemListener = (p) => console.warn(p.reason, p.message);
 * ```
 */
export type ProblemListener = (problem: SourceProblem) => void;

/**
 * A source of sync samples. `TrueClock` subscribes with its own monotonic clock,
 * so samples are stamped on the clock's timescale.
 *
 * @example
 * ```ts
 * const source: TimeSource = {
 *   subscribe(onSample, mono) {
 *     const t = setInterval(() => onSample({ monotonicAt: mono.now(), offsetMs: 0, errorMs: 1, source: 'x' }), 1000);
 *     return () => clearInterval(t);
 *   },
 *   close: async () => {},
 * };
 * ```
 */
export interface TimeSource {
  /** Starts delivering samples; returns a function that stops. */
  subscribe(
    onSample: SampleListener,
    monotonic: MonotonicSource,
    onProblem?: ProblemListener,
  ): () => void;
  /** Frees sockets and timers. Idempotent. */
  close(): Promise<void>;
  /** How often the source expects to deliver a sample (ms); drives `free-running`. */
  readonly pollIntervalMs?: number;
}

/**
 * Timers, injectable so tests can run in virtual time. `setImmediate`, when
 * present, is used to finish waits precisely after a coarse `setTimeout`.
 *
 * @example
 * ```ts
 * const scheduler: Scheduler = { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as number) };
 * ```
 */
export interface Scheduler {
  /** Calls `callback` after at least `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer returned by `setTimeout`. */
  clearTimeout(handle: unknown): void;
  /** Calls `callback` soon, after pending I/O; absent in virtual-time schedulers. */
  readonly setImmediate?: (callback: () => void) => void;
}
