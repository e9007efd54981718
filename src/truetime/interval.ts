/**
 * What a clock reading is: an interval that contains true time.
 *
 * @module
 */

import type { TimeReading } from '../clock/types.js';

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
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/RangeError | RangeError} When `ms` is not finite.
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
