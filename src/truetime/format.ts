/**
 * Microsecond ISO-8601 formatting of epoch-ms timestamps and readings, without
 * luxon: the CLI uses these so it runs where the optional `luxon` peer is not
 * installed, and `chronobound/luxon` builds its zone-aware variants on them.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { TimeReading } from '../clock/types.js';

/** Largest |epoch ms| a `Date` (and luxon) can represent: ±100,000,000 days. */
const MAX_DATE_MS = 8.64e15;

/**
 * An epoch-ms timestamp split into whole milliseconds and the microseconds
 * (0–999) past them, rounded to the nearest microsecond.
 * @internal
 */
export interface SplitMicros {
  readonly wholeMs: number;
  readonly micros: number;
}

/**
 * Splits a fractional epoch-ms timestamp into whole ms and sub-ms microseconds.
 * Floors toward −∞, so a negative timestamp's micros are still 0–999.
 *
 * @throws {@link InvalidArgumentError} When `ms` is not a finite number a `Date` can hold.
 * @internal
 */
export function splitMicros(ms: number, argument: string = 'timestamp'): SplitMicros {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) {
    throw new InvalidArgumentError(argument, ms, 'a finite epoch-ms number within ±8.64e15');
  }
  const totalMicros = Math.round(ms * 1000);
  const wholeMs = Math.floor(totalMicros / 1000);
  return { wholeMs, micros: totalMicros - wholeMs * 1000 };
}

/**
 * Inserts the microsecond digits after the milliseconds of an ISO-8601 string
 * such as `2026-11-22T10:00:00.123Z` or `…00.123+01:00`.
 * @internal
 */
export function insertMicros(isoWithMillis: string, micros: number): string {
  const digits = String(micros).padStart(3, '0');
  return isoWithMillis.replace(/(T\d{2}:\d{2}:\d{2}\.\d{3})/, `$1${digits}`);
}

/**
 * Formats an epoch-ms timestamp as UTC ISO-8601 with microseconds,
 * e.g. `2026-11-22T10:00:00.123456Z`.
 *
 * @throws {@link InvalidArgumentError} When `ms` is not finite or out of `Date` range.
 * @internal
 */
export function formatUtcMicros(ms: number, argument: string = 'timestamp'): string {
  const { wholeMs, micros } = splitMicros(ms, argument);
  return insertMicros(new Date(wholeMs).toISOString(), micros);
}

/**
 * Formats ε in milliseconds with three decimals (microseconds): `1.234 ms`,
 * or `∞ ms` when there is no bound.
 * @internal
 */
export function formatUncertainty(uncertaintyMs: number): string {
  if (uncertaintyMs === Infinity) return '∞ ms';
  return `${uncertaintyMs.toFixed(3)} ms`;
}

/**
 * `<estimate> ± <ε>` with the timestamp formatter given.
 * @internal
 */
export function formatReadingWith(
  reading: TimeReading,
  formatTimestamp: (ms: number, argument: string) => string,
): string {
  return `${formatTimestamp(reading.estimate, 'reading.estimate')} ± ${formatUncertainty(reading.uncertaintyMs)}`;
}
