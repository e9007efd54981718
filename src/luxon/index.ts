/**
 * chronobound/luxon — readings and timestamps as luxon `DateTime` and `Interval`,
 * and ISO-8601 formatting with microseconds (luxon itself stops at milliseconds).
 *
 * `luxon` is an optional peer dependency: install it to use this entry point.
 * The core never imports it.
 *
 * @module chronobound/luxon
 */
import { DateTime, Interval } from 'luxon';
import type { Zone } from 'luxon';
import { ClockUnsynchronizedError, InvalidArgumentError } from '../errors.js';
import type { TimeReading } from '../clock/types.js';
import { formatReadingWith, insertMicros, splitMicros } from '../truetime/format.js';

/**
 * A luxon zone: an IANA name (`'Europe/Paris'`), `'utc'`, `'local'`, a fixed
 * offset (`'UTC+3'`), or a `Zone` object.
 *
 * @example
 * ```ts
 * toDateTime(1795341600123.456, 'America/New_York').zoneName; //=> 'America/New_York'
 * formatTimestamp(1795341600123.456, { zone: 'UTC+3' });       //=> '2026-11-22T13:00:00.123456+03:00'
 * ```
 */
export type ZoneLike = string | Zone;

/**
 * Options of {@link formatReading} and {@link formatTimestamp}.
 *
 * @example
 * ```ts
 * formatTimestamp(1795341600123.456, { zone: 'Europe/Paris' }); //=> '2026-11-22T11:00:00.123456+01:00'
 * formatTimestamp(1795341600123.456);                           //=> '2026-11-22T10:00:00.123456Z'
 * ```
 */
export interface FormatOptions {
  /**
   * The zone to show the time in; UTC is printed with a `Z`.
   *
   * @defaultValue `'utc'`
   */
  readonly zone?: ZoneLike;
}

function zoneOf(zone: ZoneLike | undefined): ZoneLike {
  return zone ?? 'utc';
}

function checkZone(dt: DateTime, zone: ZoneLike | undefined): DateTime {
  if (!dt.isValid) {
    throw new InvalidArgumentError(
      'zone',
      typeof zone === 'string' ? zone : zone?.name,
      `a zone luxon knows (${dt.invalidExplanation ?? dt.invalidReason ?? 'invalid'})`,
    );
  }
  return dt;
}

/**
 * A reading's interval as a luxon `Interval` from `earliest` to `latest`. luxon
 * keeps the fractional milliseconds in `toMillis()`, so the bounds are exact.
 *
 * @param reading - A reading from `TrueClock.now()`.
 * @param zone - The zone of the two `DateTime`s; default UTC.
 * @returns The interval that contains true time.
 * @throws {@link chronobound!ClockUnsynchronizedError | ClockUnsynchronizedError} When the reading has no finite bound (no sample yet).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `zone` is unknown or a bound is out of `Date` range.
 *
 * @example
 * ```ts
 * const interval = toLuxonInterval(clock.now());
 * interval.contains(DateTime.now()); // true when the OS clock is within the bound
 * ```
 */
export function toLuxonInterval(reading: TimeReading, zone?: ZoneLike): Interval {
  if (!Number.isFinite(reading.earliest) || !Number.isFinite(reading.latest)) {
    throw new ClockUnsynchronizedError(
      'toLuxonInterval()',
      reading.status,
      reading.uncertaintyMs,
      'the reading has no finite bound to turn into an interval',
    );
  }
  const start = dateTimeAt(reading.earliest, zone, 'reading.earliest');
  const end = dateTimeAt(reading.latest, zone, 'reading.latest');
  // An interval with start === end is valid and empty in luxon; ε = 0 is such a case.
  return Interval.fromDateTimes(start, end);
}

/**
 * An epoch-ms timestamp as a luxon `DateTime`. The fractional milliseconds are
 * kept in `toMillis()` (luxon displays whole milliseconds).
 *
 * @param ts - Epoch milliseconds, e.g. `clock.now().latest` or a commit timestamp.
 * @param zone - The zone; default UTC.
 * @returns A valid `DateTime`.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ts` is not finite, out of range, or `zone` is unknown.
 *
 * @example
 * ```ts
 * const { timestamp } = await clock.commitWait(write);
 * toDateTime(timestamp, 'Europe/Paris').toFormat('HH:mm:ss.SSS');
 * ```
 */
export function toDateTime(ts: number, zone?: ZoneLike): DateTime {
  return dateTimeAt(ts, zone, 'ts');
}

/** {@link toDateTime}, naming `argument` in errors. */
function dateTimeAt(ts: number, zone: ZoneLike | undefined, argument: string): DateTime {
  splitMicros(ts, argument);
  return checkZone(DateTime.fromMillis(ts, { zone: zoneOf(zone) }), zone);
}

/**
 * A luxon `DateTime` as epoch milliseconds (fractional when it carries them).
 *
 * @param dt - A valid `DateTime`.
 * @returns `dt.toMillis()`.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `dt` is invalid or not a `DateTime`.
 *
 * @example
 * ```ts
 * clock.after(fromDateTime(DateTime.fromISO('2026-11-22T10:00:00Z')));
 * ```
 */
export function fromDateTime(dt: DateTime): number {
  if (!DateTime.isDateTime(dt)) {
    throw new InvalidArgumentError('dt', dt, 'a luxon DateTime');
  }
  if (!dt.isValid) {
    throw new InvalidArgumentError(
      'dt',
      dt.invalidExplanation ?? dt.invalidReason,
      'a valid luxon DateTime',
    );
  }
  return dt.toMillis();
}

/**
 * ISO-8601 with microseconds, e.g. `2026-11-22T10:00:00.123456Z` (UTC) or
 * `2026-11-22T11:00:00.123456+01:00`. The sub-millisecond digits come from the
 * fractional epoch milliseconds, rounded to the nearest microsecond.
 *
 * @param ts - Epoch milliseconds.
 * @param options - The zone; default UTC.
 * @returns The formatted timestamp.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ts` is not finite, out of range, or the zone is unknown.
 *
 * @example
 * ```ts
 * formatTimestamp(1795341600123.456); // '2026-11-22T10:00:00.123456Z'
 * ```
 */
export function formatTimestamp(ts: number, options: FormatOptions = {}): string {
  return formatIn(ts, 'ts', options.zone);
}

function formatIn(ts: number, argument: string, zone: ZoneLike | undefined): string {
  const { wholeMs, micros } = splitMicros(ts, argument);
  const dt = checkZone(DateTime.fromMillis(wholeMs, { zone: zoneOf(zone) }), zone);
  const iso = dt.toISO({ suppressMilliseconds: false, includeOffset: true });
  return insertMicros(iso ?? dt.toString(), micros);
}

/**
 * A reading as `<estimate> ± <ε>`, e.g. `2026-11-22T10:00:00.123456Z ± 1.234 ms`;
 * ε is `∞` when the clock has no sample. The status is not included.
 *
 * @param reading - A reading from `TrueClock.now()`.
 * @param options - The zone; default UTC.
 * @returns One line of text.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the estimate is out of range or the zone is unknown.
 *
 * @example
 * ```ts
 * console.log(`${formatReading(clock.now())} (${clock.status})`);
 * ```
 */
export function formatReading(reading: TimeReading, options: FormatOptions = {}): string {
  return formatReadingWith(reading, (ms, argument) => formatIn(ms, argument, options.zone));
}
