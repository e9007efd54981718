/**
 * The platform's clocks and timers, usable in Node, browsers and edge runtimes.
 *
 * @module
 */
import type { MonotonicSource, Scheduler, WallSource } from './types.js';

let measuredResolution: number | undefined;

/**
 * Reads of a clock that never ticks before `measureResolution` gives up: about
 * 10–15 ms of CPU on a frozen Workers isolate, whose CPU budget is small. A
 * clock that ticks more slowly than that is assumed 5 ms coarse, which only
 * widens bounds; a tick that is seen is a whole step, so nothing is narrowed.
 */
const MAX_RESOLUTION_READS = 20_000;

/**
 * The resolution assumed for a clock that did not tick while it was measured:
 * 5 ms, or a clock that is frozen between I/O events, as on Cloudflare Workers.
 */
const UNTICKING_RESOLUTION_MS = 5;

/**
 * Measures the step of `performance.now()` (browsers coarsen it to 5–100 µs,
 * some to 1 ms). Bounded twice: it stops after about 5 ms of the clock's own time
 * and after a fixed number of reads, so a clock that does not advance while code
 * runs (Cloudflare Workers advance it only on I/O) cannot hang it.
 * @internal
 */
export function measureResolution(now: () => number = () => performance.now()): number {
  let smallest = Infinity;
  let previous = now();
  const start = previous;
  for (
    let seen = 0, reads = 0;
    seen < 8 && previous - start < 5 && reads < MAX_RESOLUTION_READS;
    reads++
  ) {
    const next = now();
    if (next !== previous) {
      smallest = Math.min(smallest, next - previous);
      previous = next;
      seen++;
    }
  }
  // A clock that did not tick while measured is at least that coarse.
  return Number.isFinite(smallest) ? smallest : UNTICKING_RESOLUTION_MS;
}

/**
 * The platform's monotonic clock, `performance.now()`. Its `resolutionMs` is
 * measured once, on first access.
 *
 * @example
 * ```ts
 * const t0 = systemMonotonic.now();
 * ```
 */
export const systemMonotonic: MonotonicSource = {
  now: () => performance.now(),
  get resolutionMs(): number {
    measuredResolution ??= measureResolution();
    return measuredResolution;
  },
};

/**
 * The platform's wall clock, `Date.now()`, with 1 ms resolution. It can step.
 *
 * @example
 * ```ts
 * const epochMs = systemWall.now();
 * ```
 */
export const systemWall: WallSource = { now: () => Date.now(), resolutionMs: 1 };

type ImmediateFn = (callback: () => void) => void;

function findImmediate(): ImmediateFn | undefined {
  const g = globalThis as { setImmediate?: (cb: () => void) => unknown };
  if (typeof g.setImmediate === 'function') {
    const setImmediateFn = g.setImmediate.bind(globalThis);
    return (cb) => void setImmediateFn(cb);
  }
  if (typeof MessageChannel === 'function') {
    // Browsers: a message round-trip yields to the event loop without the 4 ms clamp.
    return (cb) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        cb();
      };
      channel.port2.postMessage(undefined);
    };
  }
  return undefined;
}

const immediate = findImmediate();

/**
 * The platform's timers (`setTimeout`, and `setImmediate` or a `MessageChannel`
 * for precise finishing of waits).
 *
 * @example
 * ```ts
 * systemScheduler.setTimeout(() => console.log('later'), 10);
 * ```
 */
export const systemScheduler: Scheduler = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  ...(immediate ? { setImmediate: immediate } : {}),
};
