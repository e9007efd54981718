/**
 * Leap seconds, as NTP announces them: leap indicator 1 (insert) or 2 (delete)
 * for the last minute of the current UTC month (RFC 5905 §7.3; leap seconds are
 * only ever scheduled at a month's end, ITU-R TF.460).
 *
 * Unix time has no leap seconds. A stepping clock repeats the second before
 * midnight on an insert (it steps back 1 s at midnight) and skips 23:59:59 on a
 * delete; a smearing one (Google, AWS: linear, noon to noon) spreads the second
 * over 24 h. On the timescale that ignores the leap, the stepped reading lies
 * 1 s below it after an insert and 1 s above it after a delete, and the smeared
 * reading lies between the two. That is why `TrueClock` widens one side only.
 *
 * @module
 * @internal
 */
import { agedBound } from '../sources/exchange.js';
import type { SourceProblem } from '../sources/types.js';
import type { LeapSecond, SyncSample } from '../clock/types.js';

/** One leap second (ms). @internal */
export const LEAP_SECOND_MS = 1000;

/**
 * The Unix time (ms, on the pre-leap timescale) at which a stepping clock steps
 * for a leap announced at `epochMs`: midnight after the month's last day for an
 * insert (the clock goes back to 23:59:59), one second earlier for a delete (it
 * skips from 23:59:59 to 00:00:00).
 *
 * @param epochMs - When the announcement was current (epoch ms).
 * @param direction - `'insert'` or `'delete'`.
 * @returns The step's instant (epoch ms).
 *
 * @example
 * ```ts
 * leapStepAt(Date.UTC(2016, 11, 31, 12), 'insert'); // Date.UTC(2017, 0, 1)
 * ```
 * @internal
 */
export function leapStepAt(epochMs: number, direction: LeapSecond): number {
  const at = new Date(epochMs);
  const endOfMonth = Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1);
  return direction === 'insert' ? endOfMonth : endOfMonth - LEAP_SECOND_MS;
}

/**
 * How much faster or slower (a fraction) a smearing server's clock may run than
 * a stepping one's: one second spread over 12 h, the shortest smear in use
 * (Google and AWS spread it over 24 h). The frequency model allows a rate step
 * this large near the ends of June and December, where every leap second so far
 * was scheduled, because smearing servers do not announce the leap. @internal
 */
export const LEAP_SMEAR_RATE: number = LEAP_SECOND_MS / (12 * 3600 * 1000);

/** How far from the end of June or December a smear may reach, or its effect on learned rates (ms). */
const SMEAR_REACH_MS = 36 * 3600 * 1000;

/**
 * Whether `epochMs` lies within 36 h of the end of June or December: where a
 * smearing server may change its rate without warning.
 *
 * @param epochMs - A time (epoch ms).
 * @returns Whether a leap smear may be under way or have just changed the rate.
 *
 * @example
 * ```ts
 * nearLeapSmear(Date.UTC(2026, 11, 31, 12)); // true
 * nearLeapSmear(Date.UTC(2026, 10, 15)); // false
 * ```
 * @internal
 */
export function nearLeapSmear(epochMs: number): boolean {
  const at = new Date(epochMs);
  const year = at.getUTCFullYear();
  for (const end of [
    Date.UTC(year - 1, 11, 31, 24),
    Date.UTC(year, 5, 30, 24),
    Date.UTC(year, 11, 31, 24),
  ]) {
    if (Math.abs(epochMs - end) <= SMEAR_REACH_MS) return true;
  }
  return false;
}

/** A leap second announced by the sources: where the stepped UTC steps, on the pre-leap timescale. @internal */
export interface AnnouncedLeap {
  readonly stepAtMs: number;
  readonly direction: LeapSecond;
}

/**
 * The leap second the sources announced, until a sample gathered after its step.
 * `TrueClock` widens its interval by one second on one side from `windowMs`
 * before the step.
 *
 * @example
 * ```ts
 * const leaps = new LeapTracker(200e-6, 1000);
 * leaps.announce(sample, 'insert')?.reason; // 'leap-second' (the first time)
 * leaps.current?.stepAtMs; // midnight after the month's last day
 * ```
 * @internal
 */
export class LeapTracker {
  readonly #maxDrift: number;
  /** How long before the step the interval widens (ms). */
  readonly windowMs: number;
  /** The announced leap, if any. */
  current: AnnouncedLeap | undefined;

  /**
   * @param maxDrift - The drift bound (a fraction), to age a sample's bound to its evidence.
   * @param windowMs - How long before the step the interval widens (ms).
   */
  constructor(maxDrift: number, windowMs: number) {
    this.#maxDrift = maxDrift;
    this.windowMs = windowMs;
  }

  /**
   * Whether evidence gathered from `evidenceFrom` on lies past the announced leap's
   * step, judged on the pre-leap timescale of `current` (with its bound).
   */
  gatheredAfter(evidenceFrom: number, current: SyncSample): boolean {
    const leap = this.current;
    if (leap === undefined) return false;
    const earliest =
      evidenceFrom + current.offsetMs - agedBound(current, evidenceFrom, this.#maxDrift);
    return earliest > leap.stepAtMs;
  }

  /**
   * Records the leap `sample` announces.
   *
   * @returns The problem to report when the announcement is new.
   */
  announce(sample: SyncSample, direction: LeapSecond): SourceProblem | undefined {
    // The announcement was current when the evidence was gathered: a reply stamped just
    // before the leap may be read just after it, and must not move it to next month.
    const evidenceFrom = sample.evidenceFrom ?? sample.monotonicAt;
    const stepAtMs = leapStepAt(
      evidenceFrom + sample.offsetMs - agedBound(sample, evidenceFrom, this.#maxDrift),
      direction,
    );
    const known = this.current;
    if (known?.stepAtMs === stepAtMs && known.direction === direction) return undefined;
    this.current = { stepAtMs, direction };
    return {
      source: sample.source,
      reason: 'leap-second',
      message:
        `the sources announce a leap second (${direction}) at ${new Date(stepAtMs).toISOString()}; ` +
        `the interval reaches one second further from ${this.windowMs} ms before it until a sample gathered after it`,
    };
  }
}
