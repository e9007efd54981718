/**
 * NTP's 64-bit timestamp format and its eras. The seconds field counts from
 * 1900-01-01 and wraps every 2³² s (about 136 years): era 0 ends on
 * 2036-02-07T06:28:16Z. A timestamp alone does not say which era it is in, so
 * every conversion to epoch time picks the era that puts it nearest a pivot,
 * normally the local estimate of the time (correct while that estimate is within
 * 68 years of the truth).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * A 64-bit NTP timestamp exactly as on the wire: unsigned 32-bit seconds since
 * the start of its era and an unsigned 32-bit binary fraction (units of 2⁻³² s).
 *
 * @example
 * ```ts
 * ntpToEpochMs({ seconds: 3_976_214_400, fraction: 0x80000000 }); //=> 1767225600500 (2026-01-01T00:00:00.5Z)
 * epochMsToNtp(Date.UTC(2026, 0, 1, 0, 0, 0, 500));                //=> { seconds: 3976214400, fraction: 2147483648 }
 * ```
 */
export interface NtpTimestamp {
  /** Seconds since the start of the era (0 … 2³² − 1). */
  readonly seconds: number;
  /** Fraction of a second in units of 2⁻³² s (0 … 2³² − 1). */
  readonly fraction: number;
}

/**
 * Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch).
 *
 * @example
 * ```ts
 * const ntpSeconds = Math.floor(Date.now() / 1000) + NTP_UNIX_OFFSET_SECONDS;
 * ```
 */
export const NTP_UNIX_OFFSET_SECONDS: number = 2_208_988_800;

/**
 * Length of one NTP era in seconds (2³²).
 *
 * @example
 * ```ts
 * const eraYears = NTP_ERA_SECONDS / 31_557_600; // ≈ 136
 * ```
 */
export const NTP_ERA_SECONDS: number = 2 ** 32;

/**
 * The first moment of era 1, 2036-02-07T06:28:16Z, in epoch ms.
 *
 * @example
 * ```ts
 * new Date(NTP_ERA1_EPOCH_MS).toISOString(); // '2036-02-07T06:28:16.000Z'
 * ```
 */
export const NTP_ERA1_EPOCH_MS: number = (NTP_ERA_SECONDS - NTP_UNIX_OFFSET_SECONDS) * 1000;

const FRACTION_SCALE = 2 ** 32;

function requireUint32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= FRACTION_SCALE) {
    throw new InvalidArgumentError(name, value, 'an unsigned 32-bit integer');
  }
}

/**
 * Converts an NTP timestamp to epoch milliseconds, choosing the era that puts it
 * nearest `pivotMs`. Exact to one double rounding (about 0.24 µs today).
 *
 * @param timestamp - Seconds and fraction as on the wire.
 * @param pivotMs - An estimate of the time the timestamp is near (epoch ms); default `Date.now()`.
 * @returns Epoch milliseconds (fractional).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a field is not an unsigned 32-bit integer or the pivot is not finite.
 *
 * @example
 * ```ts
 * ntpToEpochMs({ seconds: 0, fraction: 0 }, Date.UTC(2036, 1, 7)); // 2085978496000 (era 1)
 * ```
 */
export function ntpToEpochMs(timestamp: NtpTimestamp, pivotMs: number = Date.now()): number {
  requireUint32('seconds', timestamp.seconds);
  requireUint32('fraction', timestamp.fraction);
  if (!Number.isFinite(pivotMs))
    throw new InvalidArgumentError('pivotMs', pivotMs, 'a finite epoch-ms number');
  const era = ntpEraNear(timestamp.seconds, pivotMs);
  // The integer part is exact below 2⁵³; fraction·1000 < 2⁴² and /2³² is exact.
  const wholeMs = (era * NTP_ERA_SECONDS + timestamp.seconds - NTP_UNIX_OFFSET_SECONDS) * 1000;
  return wholeMs + (timestamp.fraction * 1000) / FRACTION_SCALE;
}

/**
 * The era that puts a seconds field nearest the pivot.
 *
 * @param seconds - The timestamp's seconds field.
 * @param pivotMs - Epoch ms the timestamp is believed to be near.
 * @returns The era number (0 until 2036, then 1; negative before 1900).
 *
 * @example
 * ```ts
 * ntpEraNear(100, Date.UTC(2036, 2, 1)); // 1
 * ```
 */
export function ntpEraNear(seconds: number, pivotMs: number): number {
  const pivotSeconds = pivotMs / 1000 + NTP_UNIX_OFFSET_SECONDS;
  return Math.round((pivotSeconds - seconds) / NTP_ERA_SECONDS);
}

/**
 * The era a moment falls in.
 *
 * @param epochMs - Epoch ms.
 * @returns 0 for 1900 … 2036-02-07T06:28:16Z, 1 after, negative before 1900.
 *
 * @example
 * ```ts
 * ntpEraOf(Date.UTC(2040, 0, 1)); // 1
 * ```
 */
export function ntpEraOf(epochMs: number): number {
  return Math.floor((Math.floor(epochMs / 1000) + NTP_UNIX_OFFSET_SECONDS) / NTP_ERA_SECONDS);
}

/**
 * Converts epoch milliseconds to an NTP timestamp (the era is dropped, as on the
 * wire), rounding to the nearest 2⁻³² s.
 *
 * @param epochMs - Epoch ms, fractional allowed.
 * @returns Seconds and fraction.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `epochMs` is not finite.
 *
 * @example
 * ```ts
 * epochMsToNtp(Date.UTC(2026, 0, 1) + 500); // { seconds: 3976214400, fraction: 2147483648 }
 * ```
 */
export function epochMsToNtp(epochMs: number): NtpTimestamp {
  if (typeof epochMs !== 'number' || !Number.isFinite(epochMs)) {
    throw new InvalidArgumentError('epochMs', epochMs, 'a finite epoch-ms number');
  }
  let wholeSeconds = Math.floor(epochMs / 1000);
  // Exact: both operands are close, so the subtraction loses nothing.
  const remainderMs = epochMs - wholeSeconds * 1000;
  let fraction = Math.round((remainderMs / 1000) * FRACTION_SCALE);
  if (fraction >= FRACTION_SCALE) {
    fraction -= FRACTION_SCALE;
    wholeSeconds += 1;
  } else if (fraction < 0) {
    fraction = 0;
  }
  const seconds =
    (((wholeSeconds + NTP_UNIX_OFFSET_SECONDS) % NTP_ERA_SECONDS) + NTP_ERA_SECONDS) %
    NTP_ERA_SECONDS;
  return { seconds, fraction };
}

/**
 * `later − earlier` in ms, computed from the raw fields so it is exact to
 * 2⁻³² s, across an era boundary too (assumes |difference| < 68 years).
 *
 * @param later - A timestamp.
 * @param earlier - Another timestamp.
 * @returns The signed difference in ms.
 *
 * @example
 * ```ts
 * ntpDifferenceMs({ seconds: 0, fraction: 0 }, { seconds: 2 ** 32 - 1, fraction: 0 }); // 1000 (across the 2036 rollover)
 * ```
 */
export function ntpDifferenceMs(later: NtpTimestamp, earlier: NtpTimestamp): number {
  let seconds = later.seconds - earlier.seconds;
  if (seconds >= NTP_ERA_SECONDS / 2) seconds -= NTP_ERA_SECONDS;
  else if (seconds < -NTP_ERA_SECONDS / 2) seconds += NTP_ERA_SECONDS;
  return seconds * 1000 + ((later.fraction - earlier.fraction) * 1000) / FRACTION_SCALE;
}

/**
 * Whether two timestamps are bit-for-bit equal.
 *
 * @param a - A timestamp.
 * @param b - Another timestamp.
 * @returns `true` when seconds and fraction both match.
 *
 * @example
 * ```ts
 * ntpTimestampEquals(reply.originTimestamp, nonce);
 * ```
 */
export function ntpTimestampEquals(a: NtpTimestamp, b: NtpTimestamp): boolean {
  return a.seconds === b.seconds && a.fraction === b.fraction;
}

/**
 * Whether a timestamp is all zeros (RFC 5905: "unknown" or "not set").
 *
 * @param timestamp - A timestamp.
 * @returns `true` when both fields are 0.
 *
 * @example
 * ```ts
 * if (isZeroNtpTimestamp(reply.transmitTimestamp)) reject();
 * ```
 */
export function isZeroNtpTimestamp(timestamp: NtpTimestamp): boolean {
  return timestamp.seconds === 0 && timestamp.fraction === 0;
}
