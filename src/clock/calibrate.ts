/**
 * Maps the 1 ms wall clock onto the monotonic timescale with sub-millisecond
 * precision by catching the moment `Date.now()` ticks.
 *
 * @module
 */
import type { MonotonicSource, WallSource } from './types.js';

/**
 * The result of a calibration: `wall ≈ mono + offsetMs`, within `errorMs`.
 *
 * @example
 * ```ts
 * const { offsetMs, errorMs } = calibrateWall(systemWall, systemMonotonic);
 * ```
 */
export interface WallCalibration {
  /** Wall-clock epoch ms minus the monotonic reading. */
  readonly offsetMs: number;
  /** Bound on the mapping error (ms). */
  readonly errorMs: number;
  /** Monotonic reading at which the calibration was taken. */
  readonly monotonicAt: number;
  /** `true` when a tick edge was caught; `false` means the ±½-resolution fallback. */
  readonly edge: boolean;
}

/**
 * Calibrates the wall clock against the monotonic clock. A wall clock with 1 ms
 * resolution floors true wall time, so at the instant it changes to `w` it reads
 * exactly `w.000`; bracketing that instant between two monotonic reads gives the
 * mapping to within the bracket. Spins for at most `maxSpinMs` (default 3) of
 * monotonic time; if no tick is seen it falls back to the midpoint of the
 * current millisecond, ± half the resolution.
 *
 * @param wall - The wall clock to map (default resolution 1 ms).
 * @param mono - The monotonic clock to map onto.
 * @param maxSpinMs - Longest spin in monotonic ms before falling back.
 * @returns The mapping and its error bound.
 *
 * @example
 * ```ts
 * const c = calibrateWall(systemWall, systemMonotonic);
 * const wallNow = systemMonotonic.now() + c.offsetMs; // sub-ms wall time
 * ```
 */
export function calibrateWall(
  wall: WallSource,
  mono: MonotonicSource,
  maxSpinMs: number = 3,
): WallCalibration {
  const resolution = wall.resolutionMs ?? 1;
  let before = mono.now();
  const first = wall.now();
  const start = before;
  // Bounded by iterations too, so a frozen (virtual) monotonic clock cannot hang us.
  for (let i = 0; i < 1_000_000; i++) {
    const after = mono.now();
    const w = wall.now();
    const afterRead = mono.now();
    if (w !== first) {
      // The tick to `w` happened after the previous wall read (which was after `before`)
      // and before this read (before `afterRead`).
      const mid = (before + afterRead) / 2;
      return {
        offsetMs: w - mid,
        errorMs: (afterRead - before) / 2 + (mono.resolutionMs ?? 0),
        monotonicAt: afterRead,
        edge: true,
      };
    }
    before = after;
    if (afterRead - start > maxSpinMs) break;
  }
  const m = mono.now();
  return {
    offsetMs: first + resolution / 2 - m,
    errorMs: resolution / 2 + (m - start) + (mono.resolutionMs ?? 0),
    monotonicAt: m,
    edge: false,
  };
}
