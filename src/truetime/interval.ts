/**
 * What a clock reading is: an interval that contains true time.
 *
 * @module
 */

/**
 * How much a {@link TimeReading} can be trusted.
 *
 * - `synchronized`: a recent sample backs the bound.
 * - `free-running`: no sample for a while; the bound still holds (it grows with the
 *   drift bound) and is within `maxUncertaintyMs`.
 * - `unsynchronized`: no sample yet, only an assumed bound, or ε above `maxUncertaintyMs`.
 * - `disrupted`: the watchdog saw the monotonic and wall clocks disagree (suspend,
 *   VM pause or migration, clock step); the bound was widened and strict
 *   operations refuse until the next accepted sample.
 *
 * @example
 * ```ts
 * const ok = (s: ClockStatus) => s === 'synchronized' || s === 'free-running';
 * ```
 */
export type ClockStatus = 'synchronized' | 'free-running' | 'unsynchronized' | 'disrupted';

/**
 * One honest reading: true time lies in `[earliest, latest]`. Times are epoch
 * milliseconds (fractional); `uncertaintyMs` is ε, half the width.
 *
 * @example
 * ```ts
 * const { earliest, latest, status } = clock.now();
 * ```
 */
export interface TimeReading {
  /** True time is no earlier than this (epoch ms). */
  readonly earliest: number;
  /** True time is no later than this (epoch ms). */
  readonly latest: number;
  /** Best estimate of true time, the midpoint (epoch ms). */
  readonly estimate: number;
  /** ε: half the interval width (ms). `Infinity` with no sample. */
  readonly uncertaintyMs: number;
  /** Whether the bound is backed by a measurement; see {@link ClockStatus}. */
  readonly status: ClockStatus;
}

/**
 * Whether the reading's interval contains `t`.
 *
 * @param reading - A reading from `TrueClock.now()`.
 * @param t - An epoch-ms timestamp.
 * @returns `earliest ≤ t ≤ latest`.
 *
 * @example
 * ```ts
 * intervalContains(clock.now(), Date.now()); // true when the OS clock is within the bound
 * ```
 */
export function intervalContains(reading: TimeReading, t: number): boolean {
  return reading.earliest <= t && t <= reading.latest;
}

/**
 * Converts epoch milliseconds (fractional) to integer nanoseconds without losing
 * the sub-millisecond part to double rounding.
 *
 * @param ms - Epoch milliseconds, finite.
 * @returns Nanoseconds as a bigint, rounded to the nearest nanosecond.
 * @throws {RangeError} When `ms` is not finite.
 *
 * @example
 * ```ts
 * toNanosBigInt(1.5); // 1500000n
 * ```
 */
export function toNanosBigInt(ms: number): bigint {
  const whole = Math.floor(ms);
  const nanos = Math.round((ms - whole) * 1e6);
  return BigInt(whole) * 1_000_000n + BigInt(nanos);
}

/**
 * Converts integer nanoseconds to epoch milliseconds (a double: ~0.25 µs
 * resolution at today's epoch).
 *
 * @param nanos - Nanoseconds since the epoch.
 * @returns Milliseconds, fractional.
 *
 * @example
 * ```ts
 * fromNanosBigInt(1500000n); // 1.5
 * ```
 */
export function fromNanosBigInt(nanos: bigint): number {
  return Number(nanos / 1_000_000n) + Number(nanos % 1_000_000n) / 1e6;
}
