/**
 * The host daemon's corrections (chrony, ntpd slewing the clock), as `TrueClock`
 * tracks them: the remaining correction widens the bound, and a frequency step
 * restarts learning.
 *
 * @module
 * @internal
 */
import type { HostCorrection, SourceProblem } from '../sources/types.js';
import type { MonotonicSource } from '../clock/types.js';
import type { RateModel } from './rate.js';

/**
 * The largest |remaining correction| the host daemon reported since the current
 * sample was taken, and the latest one.
 *
 * @example
 * ```ts
 * const corrections = new HostCorrections();
 * corrections.record({ source: 'chrony', remainingCorrectionMs: -0.4 }, rate, mono); // undefined
 * corrections.sinceSampleMs; // 0.4
 * ```
 * @internal
 */
export class HostCorrections {
  /** |remaining correction| of the host daemon's latest report. */
  #nowMs = 0;
  /** The largest |remaining correction| reported since the current sample was taken. */
  sinceSampleMs = 0;

  /** A new sample backs the bound: from now on only the corrections still to come count. */
  sampleTaken(): void {
    this.sinceSampleMs = this.#nowMs;
  }

  /**
   * Records a report, and passes its frequency correction to `rate`.
   *
   * @returns The problem to report when the report is malformed (it is then ignored).
   */
  record(
    correction: HostCorrection,
    rate: RateModel,
    mono: MonotonicSource,
  ): SourceProblem | undefined {
    const magnitude = Math.abs(correction.remainingCorrectionMs);
    if (!Number.isFinite(magnitude)) {
      return {
        source: correction.source,
        reason: 'invalid-sample',
        message: `rejected a malformed host correction from ${correction.source}`,
      };
    }
    this.#nowMs = magnitude;
    if (magnitude > this.sinceSampleMs) this.sinceSampleMs = magnitude;
    const ppm = correction.frequencyPpm;
    if (ppm === undefined || !Number.isFinite(ppm)) return undefined;
    rate.hostFrequency(ppm, mono.now());
    return undefined;
  }
}
