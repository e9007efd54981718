/**
 * The rules a sync sample must pass before `TrueClock` accepts it, as pure
 * functions: each returns the problem to report, or undefined when the sample passes.
 *
 * @module
 * @internal
 */
import { agedBound } from '../sources/exchange.js';
import type { SourceProblem } from '../sources/types.js';
import type { SyncSample, TimeReading } from '../clock/types.js';
import type { RateModel } from './rate.js';

/**
 * A sample with non-finite numbers, a negative bound, a time after `mono`, or
 * evidence that starts after it was taken.
 *
 * @example
 * ```ts
 * malformedSample({ ...sample, errorMs: -1 }, mono, 0)?.reason; // 'invalid-sample'
 * ```
 * @internal
 */
export function malformedSample(
  sample: SyncSample,
  mono: number,
  granularityMs: number,
): SourceProblem | undefined {
  const evidenceFrom = sample.evidenceFrom ?? sample.monotonicAt;
  if (
    !Number.isFinite(sample.monotonicAt) ||
    !Number.isFinite(sample.offsetMs) ||
    !(sample.errorMs >= 0) ||
    sample.monotonicAt > mono + granularityMs ||
    !(evidenceFrom <= sample.monotonicAt)
  ) {
    return {
      source: sample.source,
      reason: 'invalid-sample',
      message: `rejected a malformed sample from ${sample.source}`,
    };
  }
  return undefined;
}

/**
 * A sample further than the panic threshold from both references the clock
 * has: the wall clock, and its own current interval (widened by any
 * disruption). Either alone would refuse good samples: after an operator steps
 * the wall clock the interval is right; after a long suspend the wall clock is.
 * `readWall` is called once to judge and once more for the message; `reading`
 * only when the wall clock alone would refuse.
 *
 * @example
 * ```ts
 * beyondPanicThreshold(sample, mono, 1000, () => wall.now(), () => clock.now())?.reason; // 'panic-threshold' or undefined
 * ```
 * @internal
 */
export function beyondPanicThreshold(
  sample: SyncSample,
  mono: number,
  thresholdMs: number,
  readWall: () => number,
  reading: (() => TimeReading) | undefined,
): SourceProblem | undefined {
  const time = mono + sample.offsetMs;
  if (Math.abs(time - readWall()) <= thresholdMs) return undefined;
  if (reading !== undefined) {
    const { earliest, latest } = reading();
    if (time >= earliest - thresholdMs && time <= latest + thresholdMs) return undefined;
  }
  const fromWallMs = sample.offsetMs + mono - readWall();
  return {
    source: sample.source,
    reason: 'panic-threshold',
    message:
      `refused a sample from ${sample.source} that puts the time ${(fromWallMs / 1000).toFixed(3)} s ` +
      `from the system clock, beyond panicThresholdMs (${thresholdMs} ms); ` +
      'pass panicThresholdMs: Infinity if the system clock itself may be that far off',
  };
}

/**
 * Evidence gathered before the last disruption describes a timescale that no
 * longer holds: it can neither end the disruption nor back a reading.
 *
 * @example
 * ```ts
 * staleSample(sample, sample.monotonicAt, disruptedAt)?.reason; // 'stale-sample' when disruptedAt ≥ evidenceFrom
 * ```
 * @internal
 */
export function staleSample(
  sample: SyncSample,
  evidenceFrom: number,
  disruptedAt: number,
): SourceProblem | undefined {
  if (evidenceFrom > disruptedAt) return undefined;
  return {
    source: sample.source,
    reason: 'stale-sample',
    message:
      `refused a sample from ${sample.source} gathered ${(disruptedAt - evidenceFrom).toFixed(3)} ms ` +
      'before the last disruption; waiting for fresh evidence',
  };
}

/**
 * Whether `next` gives a better bound than `current` from now on. When the two
 * contradict each other the newer evidence wins and `report` hears of it.
 *
 * @example
 * ```ts
 * preferSample(next, current, mono, rate, report); // true when next's aged bound is tighter
 * ```
 * @internal
 */
export function preferSample(
  next: SyncSample,
  current: SyncSample,
  mono: number,
  rate: RateModel,
  report: (problem: SourceProblem) => void,
): boolean {
  if ((next.assumed === true) !== (current.assumed === true)) return current.assumed === true;
  const nextBound = agedBound(next, mono, rate.maxDrift);
  const currentBound = agedBound(current, mono, rate.maxDrift);
  const gap = Math.abs(next.offsetMs - current.offsetMs);
  // Contradiction is judged at the drift bound, so that only a real one counts.
  if (gap > nextBound + currentBound) {
    report({
      source: next.source,
      reason: 'inconsistent-sample',
      message: `a sample from ${next.source} disagrees with the previous bound by ${gap.toFixed(3)} ms`,
    });
    return true;
  }
  // Which bound is tighter from now on, under the learned frequency when there is one.
  return rate.boundAt(next, mono) <= rate.boundAt(current, mono);
}
