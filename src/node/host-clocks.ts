/**
 * The host clocks a ClockBound segment is stamped in, read from Node:
 * `CLOCK_MONOTONIC` now ({@link monotonicNowNs}, {@link hrtimeMonotonic}) and
 * `CLOCK_REALTIME` mapped onto it ({@link RealtimeMap}).
 *
 * @module
 */
import process from 'node:process';
import { calibrateWall } from '../clock/calibrate.js';
import { systemWall } from '../clock/system.js';
import type { MonotonicSource } from '../clock/types.js';

/** The current `CLOCK_MONOTONIC` reading (ns). libuv's `uv_hrtime()` reads exactly that clock on Linux. @internal */
export function monotonicNowNs(): bigint {
  return process.hrtime.bigint();
}

/**
 * `CLOCK_MONOTONIC` as a {@link MonotonicSource} in ms (`process.hrtime.bigint()`).
 * @internal
 */
export const hrtimeMonotonic: MonotonicSource = {
  now: () => Number(process.hrtime.bigint()) / 1e6,
  resolutionMs: 1e-6,
};

/** A wall-clock calibration this tight (ms) is not retried. */
const TIGHT_CALIBRATION_MS = 0.02;

/**
 * `CLOCK_REALTIME` mapped onto `CLOCK_MONOTONIC` with sub-microsecond error.
 *
 * On Linux both clocks come from one timekeeper and are slewed together, so
 * `REALTIME − MONOTONIC` only changes when the wall clock is stepped (settimeofday,
 * an NTP step, a leap second). One edge calibration of `Date.now()` (a spin of
 * up to ~1 ms, `calibrateWall`; repeated up to 4 times if a preemption widened
 * it past 20 µs) therefore holds until a step; every use checks
 * the mapping against one `Date.now()` read (1 ms granularity, so a step larger
 * than about 1 ms is caught at once) and calibrates again on a mismatch, and at
 * least every `maxAgeMs`.
 * @internal
 */
export class RealtimeMap {
  #offsetMs = 0;
  #errorMs = Infinity;
  #at = -Infinity;
  readonly #maxAgeMs: number;
  /** Calibrations done (for tests and cost accounting). */
  calibrations = 0;

  constructor(maxAgeMs: number = 60_000) {
    this.#maxAgeMs = maxAgeMs;
  }

  /** `REALTIME (epoch ms) ≈ MONOTONIC (ms) + offsetMs`, within `errorMs`. */
  current(): { readonly offsetMs: number; readonly errorMs: number } {
    const before = hrtimeMonotonic.now();
    const wall = systemWall.now();
    const after = hrtimeMonotonic.now();
    const fresh = before - this.#at <= this.#maxAgeMs;
    const consistent =
      wall <= after + this.#offsetMs + this.#errorMs &&
      wall + 1 >= before + this.#offsetMs - this.#errorMs;
    if (!fresh || !consistent) {
      // A preemption inside the spin widens the bracket: keep the tightest of a few.
      let best = calibrateWall(systemWall, hrtimeMonotonic, 3);
      for (let i = 0; i < 4 && (!best.edge || best.errorMs > TIGHT_CALIBRATION_MS); i++) {
        const next = calibrateWall(systemWall, hrtimeMonotonic, 3);
        if (!best.edge || (next.edge && next.errorMs < best.errorMs)) best = next;
      }
      this.#offsetMs = best.offsetMs;
      this.#errorMs = best.errorMs;
      this.#at = best.monotonicAt;
      this.calibrations++;
    }
    return { offsetMs: this.#offsetMs, errorMs: this.#errorMs };
  }
}
