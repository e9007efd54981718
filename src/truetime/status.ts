/**
 * How `TrueClock` names its state: the status of a reading, and the counters
 * and snapshot its `metrics()` reports.
 *
 * @module
 * @internal
 */
import type { TimeSource } from '../sources/types.js';
import type { ClockStatus, SyncSample, TimeReading, WallSource } from '../clock/types.js';
import type { ClockMetrics } from './clock-options.js';
import type { RateModel } from './rate.js';

/**
 * The status rules with the clock's thresholds: `disrupted` until a fresh
 * sample, `unsynchronized` above `maxUncertaintyMs` or on an assumed sample,
 * `free-running` once the source has been silent too long.
 *
 * @example
 * ```ts
 * const policy = new StatusPolicy(100, 60_000, undefined);
 * policy.statusAt(false, 0, sample, 5, 1000); // 'synchronized'
 * ```
 * @internal
 */
export class StatusPolicy {
  readonly #maxUncertaintyMs: number;
  /** The user's `freeRunningAfterMs`, or the default at construction (a floor when the source's gap grows). */
  readonly #freeRunningAfterMs: number;
  /** The source whose current `maxSampleGapMs` the threshold follows, if it does. */
  readonly #gapSource: TimeSource | undefined;

  /**
   * @param maxUncertaintyMs - Above this ε the clock is `unsynchronized`.
   * @param freeRunningAfterMs - Silence (ms) after which the clock is `free-running`.
   * @param gapSource - The source, when the threshold follows its `maxSampleGapMs`.
   */
  constructor(
    maxUncertaintyMs: number,
    freeRunningAfterMs: number,
    gapSource: TimeSource | undefined,
  ) {
    this.#maxUncertaintyMs = maxUncertaintyMs;
    this.#freeRunningAfterMs = freeRunningAfterMs;
    this.#gapSource = gapSource;
  }

  /** The status of a reading with bound `uncertaintyMs`, `silentMs` after the last sample. */
  statusAt(
    closed: boolean,
    disruptionMs: number,
    sample: SyncSample,
    uncertaintyMs: number,
    silentMs: number,
  ): ClockStatus {
    if (closed) return 'unsynchronized';
    if (disruptionMs > 0) return 'disrupted';
    if (sample.assumed === true || !(uncertaintyMs <= this.#maxUncertaintyMs))
      return 'unsynchronized';
    if (silentMs <= this.#freeRunningAfterMs) return 'synchronized';
    // A source that polls less often as it settles says so through its current gap.
    const gap = this.#gapSource?.maxSampleGapMs;
    return gap !== undefined && silentMs <= 2 * gap ? 'synchronized' : 'free-running';
  }
}

/**
 * What happened to a clock so far: samples accepted, disruptions, problems by reason.
 *
 * @example
 * ```ts
 * const counters = new ClockCounters();
 * counters.problem('timeout');
 * counters.problems.get('timeout'); // 1
 * ```
 * @internal
 */
export class ClockCounters {
  samplesAccepted = 0;
  disruptions = 0;
  readonly problems: Map<string, number> = new Map<string, number>();

  /** Counts one problem with reason `reason`. */
  problem(reason: string): void {
    this.problems.set(reason, (this.problems.get(reason) ?? 0) + 1);
  }
}

/**
 * The snapshot `TrueClock.metrics()` returns, from a reading taken just before.
 *
 * @example
 * ```ts
 * clockMetrics(clock.now(), clock.sample, mono.now(), wall, rate, 200, 0, counters).status; // 'synchronized'
 * ```
 * @internal
 */
export function clockMetrics(
  reading: TimeReading,
  sample: SyncSample | undefined,
  mono: number,
  wall: WallSource,
  rate: RateModel,
  maxDriftPpm: number,
  hostCorrectionMs: number,
  counters: ClockCounters,
): ClockMetrics {
  const bounds = rate.rateBounds;
  return {
    status: reading.status,
    uncertaintyMs: reading.uncertaintyMs,
    offsetFromWallMs: sample === undefined ? Number.NaN : reading.estimate - wall.now(),
    sampleAgeMs: sample === undefined ? Number.NaN : mono - sample.monotonicAt,
    sampleErrorMs: sample?.errorMs ?? Number.NaN,
    sampleSource: sample?.source ?? '',
    // The model bounds d(true − mono)/d(mono); the clock's own rate error is its negative.
    learnedRatePpm:
      bounds !== undefined ? { low: -bounds.high * 1e6, high: -bounds.low * 1e6 } : undefined,
    maxDriftPpm,
    hostCorrectionMs,
    samplesAccepted: counters.samplesAccepted,
    disruptions: counters.disruptions,
    problems: Object.fromEntries(counters.problems),
  };
}
