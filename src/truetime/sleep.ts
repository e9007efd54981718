/**
 * Types and the precise sleeping used by commit-wait.
 *
 * @module
 */
import type { Scheduler } from '../clock/types.js';

/**
 * Options of `TrueClock.waitUntilAfter` and `TrueClock.commitWait`.
 *
 * @example
 * ```ts
 * // clock: 2026-01-01T00:00:00Z ± 5 ms
 * await clock.waitUntilAfter(Date.UTC(2026, 0, 1, 0, 0, 1), { timeoutMs: 500 });
 * //=> rejects with WaitTimeoutError (code 'WAIT_TIMEOUT'): that second cannot definitely pass within 500 ms
 * await clock.commitWait(write, { signal: AbortSignal.timeout(2000) }); // AbortError after 2 s
 * ```
 */
export interface WaitOptions {
  /** Cancels the wait; it rejects with `AbortError`. */
  readonly signal?: AbortSignal;
  /**
   * Gives up after this many monotonic ms with `WaitTimeoutError` (from `commitWait`,
   * its subclass `CommitWaitTimeoutError`).
   */
  readonly timeoutMs?: number;
}

/**
 * What `TrueClock.commitWait` resolves with.
 *
 * @example
 * ```ts
 * const { timestamp, result, waitedMs } = await clock.commitWait((ts) => db.insert(ts));
 * ```
 */
export interface CommitWaitResult<T> {
  /** The commit timestamp `s` (epoch ms): `now().latest` when commit-wait began. */
  readonly timestamp: number;
  /** What the write function returned. */
  readonly result: T;
  /** How long commit-wait held the result back after the write finished (ms). */
  readonly waitedMs: number;
}

/** Below this many ms left, waits finish on `setImmediate` polls instead of a timer. */
const FINISH_WINDOW_MS = 2.5;

/**
 * Sleeps for about `remainingMs` and calls `wake`: a coarse `setTimeout` for the
 * bulk (it can fire up to a millisecond early or late), then yields to the event
 * loop on `setImmediate` until the caller sees its target pass. Returns a
 * canceller.
 * @internal
 */
export function sleepToward(
  scheduler: Scheduler,
  remainingMs: number,
  wake: () => void,
): () => void {
  const immediate = scheduler.setImmediate;
  if (immediate === undefined) {
    // Virtual time: timers fire exactly when asked, so ask for exactly what is left.
    const handle = scheduler.setTimeout(wake, Math.max(remainingMs, 1e-6));
    return () => scheduler.clearTimeout(handle);
  }
  if (remainingMs <= FINISH_WINDOW_MS) {
    let cancelled = false;
    immediate(() => {
      if (!cancelled) wake();
    });
    return () => {
      cancelled = true;
    };
  }
  const handle = scheduler.setTimeout(wake, Math.floor(remainingMs - 2));
  return () => scheduler.clearTimeout(handle);
}
