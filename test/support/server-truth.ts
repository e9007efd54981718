/**
 * A time server's true time for tests that run in real time (a Node
 * `timeEndpoint` that browsers, other runtimes or HTTP clients sync to): by
 * definition this process's `performance.now()` plus a fixed offset that puts it
 * a chosen distance ahead of the machine's wall clock, so that a client reading
 * its own clock instead of the server's is caught. The server's `TrueClock` is
 * fed samples of exactly that truth.
 */
import { TrueClock, systemMonotonic, type SyncSample } from '../../src/index.js';
import { manualSource } from '../../src/testing/index.js';

/** What {@link serverTruth} returns. */
export interface ServerTruth {
  /** True time minus `performance.now()` (ms). */
  readonly offsetMs: number;
  /** True time now. */
  now(): number;
  /** A sample taken now saying true time is this truth, within `errorMs`, from `source`. */
  sample(errorMs: number, source?: string): SyncSample;
}

/**
 * A truth `aheadOfWallMs` ahead of `Date.now()` (as of the call).
 *
 * @example
 * ```ts
 * const truth = serverTruth(5_000);
 * source.push(truth.sample(1)); // { monotonicAt: performance.now(), offsetMs: truth.offsetMs, errorMs: 1, source: 'reference' }
 * ```
 */
export function serverTruth(aheadOfWallMs: number): ServerTruth {
  const offsetMs = Date.now() - performance.now() + aheadOfWallMs;
  return {
    offsetMs,
    now: () => performance.now() + offsetMs,
    sample: (errorMs, source = 'reference') => ({
      monotonicAt: performance.now(),
      offsetMs,
      errorMs,
      source,
    }),
  };
}

/**
 * A server `TrueClock` on the system monotonic clock, synced to `truth` within
 * `errorMs` now and again every `everyMs` (so it never goes free-running) until
 * `close()`.
 *
 * @example
 * ```ts
 * const reference = referenceClock(serverTruth(5_000), 1);
 * const handler = timeEndpoint(reference.clock);
 * // …
 * await reference.close();
 * ```
 */
export function referenceClock(
  truth: ServerTruth,
  errorMs: number,
  everyMs: number = 250,
): { clock: TrueClock; close(): Promise<void> } {
  const source = manualSource(everyMs);
  const clock = new TrueClock({ source, monotonic: systemMonotonic });
  const sync = (): void => source.push(truth.sample(errorMs));
  sync();
  const refresh = setInterval(sync, everyMs);
  return {
    clock,
    close: async () => {
      clearInterval(refresh);
      await clock.close();
    },
  };
}
