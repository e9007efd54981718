/**
 * Relating this host's real clocks for tests that compare readings with them:
 * `Date.now()` onto `performance.now()` (the tightest of a few edge
 * calibrations), and a `CLOCK_MONOTONIC` instant (`process.hrtime.bigint()`,
 * shared by every thread and process) onto this process's `performance.now()`.
 */
import {
  calibrateWall,
  systemMonotonic,
  systemWall,
  type WallCalibration,
} from '../../src/index.js';
import { monotonicNowNs } from '../../src/node/host-clocks.js';

/**
 * The tightest (smallest `errorMs`) of `attempts` edge calibrations of
 * `Date.now()` onto `performance.now()`.
 *
 * @example
 * ```ts
 * const { offsetMs } = tightestWallCalibration();
 * source.push({ monotonicAt: performance.now(), offsetMs: offsetMs + 3, errorMs: 0.5, source: 'manual' });
 * ```
 */
export function tightestWallCalibration(attempts: number = 6): WallCalibration {
  let best = calibrateWall(systemWall, systemMonotonic);
  for (let i = 1; i < attempts; i++) {
    const next = calibrateWall(systemWall, systemMonotonic);
    if (next.errorMs < best.errorMs) best = next;
  }
  return best;
}

/**
 * Maps `CLOCK_MONOTONIC` readings (ns, as another process's
 * `process.hrtime.bigint()`) onto this process's `performance.now()`, through the
 * tightest of a few pairs of `performance.now()` reads bracketing one
 * `CLOCK_MONOTONIC` read (error ≪ 10 µs).
 *
 * @example
 * ```ts
 * const at = performanceAtMonotonicNs();
 * at(BigInt(reading.h1)); // that instant on this process's performance.now() timescale
 * ```
 */
export function performanceAtMonotonicNs(): (ns: bigint) => number {
  let best = { mid: 0, ns: 0n, width: Infinity };
  for (let i = 0; i < 5; i++) {
    const a = performance.now();
    const ns = monotonicNowNs();
    const b = performance.now();
    if (b - a < best.width) best = { mid: (a + b) / 2, ns, width: b - a };
  }
  return (ns) => best.mid + Number(ns - best.ns) / 1e6;
}
