/**
 * The clock's rate model: how far a sample's offset may have moved since it was
 * taken, from the learned frequency when there is one, else from the drift bound.
 *
 * @module
 * @internal
 */
import { agedBound } from '../sources/exchange.js';
import type { AgeableSample, AgedSample, SourceProblem } from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import { FrequencyModel } from './frequency.js';
import { LEAP_SMEAR_RATE, nearLeapSmear } from './leap.js';

/**
 * Relative rounding guard: a double at epoch-ms magnitude rounds by about
 * |t|·2⁻⁵³ per operation; 2⁻⁴⁹ (16 such steps) covers the few additions a
 * reading takes. At today's epoch this is about 3 µs. @internal
 */
export const REPRESENTATION_ERROR: number = 2 ** -49;

/**
 * The drift bound and, when `maxWanderPpmPerHour` is finite, the learned
 * frequency; `TrueClock` holds one and asks it how samples age.
 *
 * @example
 * ```ts
 * const rate = new RateModel(200e-6, Infinity);
 * rate.learned; // false: learning is off
 * rate.boundAt(sample, mono); // sample.errorMs + 200e-6·|mono − sample.monotonicAt|
 * ```
 * @internal
 */
export class RateModel {
  /** The drift bound (a fraction). */
  readonly maxDrift: number;
  readonly #wanderPerMs: number;
  /** The learned frequency; undefined when learning is off. */
  readonly #frequency: FrequencyModel | undefined;
  #smearMinute = Number.NaN;
  #smearRate = 0;
  /** The host daemon's frequency correction when learning (re)started, and when. */
  #hostFrequency: { readonly ppm: number; readonly at: number } | undefined;

  /**
   * @param maxDrift - The drift bound (a fraction, e.g. 200e-6).
   * @param maxWanderPpmPerHour - How fast the rate may change; Infinity turns learning off.
   */
  constructor(maxDrift: number, maxWanderPpmPerHour: number) {
    this.maxDrift = maxDrift;
    this.#wanderPerMs = (maxWanderPpmPerHour * 1e-6) / 3_600_000;
    this.#frequency = Number.isFinite(maxWanderPpmPerHour)
      ? new FrequencyModel(this.maxDrift, this.#wanderPerMs)
      : undefined;
  }

  /** Whether the learned frequency bounds ageing (two or more samples since its last reset). */
  get learned(): boolean {
    const frequency = this.#frequency;
    return frequency !== undefined && frequency.size >= 2;
  }

  /** The midpoint of the offset change found by the last {@link RateModel.ageTo}. */
  shiftMs = 0;
  /** The half-width of the offset change found by the last {@link RateModel.ageTo}. */
  spreadMs = 0;

  /**
   * Ages `sample` to `mono` under the learned frequency into `shiftMs` and
   * `spreadMs` (fields, so `now()` allocates nothing). Only when `learned`.
   */
  ageTo(sample: SyncSample, mono: number): void {
    const frequency = this.#frequency as FrequencyModel;
    frequency.change(sample, mono, this.#smearAllowance(mono, sample));
    const { low, high } = frequency;
    this.shiftMs = (low + high) / 2;
    this.spreadMs = (high - low) / 2;
  }

  /** The learned rate bounds, for metrics; undefined unless learned. */
  get rateBounds(): { readonly low: number; readonly high: number } | undefined {
    return this.learned ? this.#frequency?.rateBounds : undefined;
  }

  /** Forgets the learned frequency (after a disruption, a leap, a host frequency step). */
  reset(): void {
    this.#frequency?.reset();
  }

  /**
   * Feeds the frequency model.
   *
   * @returns The problem to report when the sample contradicts it (learning starts again).
   */
  learn(sample: SyncSample): SourceProblem | undefined {
    const frequency = this.#frequency;
    if (frequency === undefined || sample.assumed === true) return undefined;
    if (frequency.add(sample)) return undefined;
    return {
      source: sample.source,
      reason: 'inconsistent-sample',
      message:
        `a sample from ${sample.source} contradicts the learned frequency (the rate changed faster ` +
        'than maxWanderPpmPerHour allows, or the host slewed the clock); learning starts again',
    };
  }

  /** ε of a sample with bound `errorMs` taken at `mono`, `elapsedMs` later (for sources' polling). */
  predict(
    errorMs: number,
    elapsedMs: number,
    mono: number,
    current: SyncSample | undefined,
  ): number {
    const frequency = this.#frequency;
    if (frequency === undefined || frequency.size < 2 || current === undefined) {
      return errorMs + this.maxDrift * elapsedMs;
    }
    return frequency.predict(errorMs, mono, elapsedMs, this.#smearAllowance(mono, current));
  }

  /**
   * A source's sample aged to `at` under the learned model (for its filter and
   * selection), or by the drift bound where the model cannot vouch for the span:
   * `FrequencyModel.change` falls back for an anchor before the model's last reset.
   */
  ageSample(sample: AgeableSample, at: number): AgedSample {
    const frequency = this.#frequency;
    const elapsed = at - sample.monotonicAt;
    if (frequency === undefined || frequency.size < 2 || !(elapsed > 0)) {
      return { offsetMs: sample.offsetMs, errorMs: agedBound(sample, at, this.maxDrift) };
    }
    frequency.change(sample, at, this.#smearAllowance(at, sample));
    const { low, high } = frequency;
    const offsetMs = sample.offsetMs + (low + high) / 2;
    // The shifted offset is an epoch-scale double: allow for its rounding.
    const rounding = (offsetMs < 0 ? -offsetMs : offsetMs) * REPRESENTATION_ERROR;
    return { offsetMs, errorMs: sample.errorMs + (high - low) / 2 + rounding };
  }

  /** The bound `sample` gives at `mono`: aged by the learned frequency, else by the drift bound. */
  boundAt(sample: SyncSample, mono: number): number {
    const frequency = this.#frequency;
    if (frequency === undefined || frequency.size < 2)
      return agedBound(sample, mono, this.maxDrift);
    frequency.change(sample, mono, this.#smearAllowance(mono, sample));
    const { low, high } = frequency;
    return sample.errorMs + (high - low) / 2;
  }

  /**
   * The host daemon's frequency correction `ppm`, reported at `mono`. The daemon
   * steers CLOCK_MONOTONIC's rate too: a frequency change faster than the wander
   * bound breaks the learned model's assumption, so learning starts again.
   */
  hostFrequency(ppm: number, mono: number): void {
    const known = this.#hostFrequency;
    if (known === undefined || this.#frequency?.size === 0) {
      this.#hostFrequency = { ppm, at: mono };
      return;
    }
    if (Math.abs(ppm - known.ppm) * 1e-6 > this.#wanderPerMs * (mono - known.at)) {
      this.#frequency?.reset();
      this.#hostFrequency = { ppm, at: mono };
    }
  }

  /**
   * A rate step the wander bound does not cover, near where a leap smear may start
   * or end. Cached per minute of estimated time: `now()` calls it on every read,
   * and the window's edges are 36 h wide.
   */
  #smearAllowance(mono: number, sample: { readonly offsetMs: number }): number {
    const minute = Math.floor((mono + sample.offsetMs) / 60_000);
    if (minute !== this.#smearMinute) {
      this.#smearMinute = minute;
      this.#smearRate = nearLeapSmear(minute * 60_000) ? LEAP_SMEAR_RATE : 0;
    }
    return this.#smearRate;
  }
}
