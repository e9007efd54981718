/**
 * The RFC 5905 clock filter (§10), shared by every source that keeps the recent
 * results of four-timestamp exchanges with one server (NTP, time over HTTP or a
 * message channel) and hands on the most trustworthy one.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { agedBound } from './exchange.js';

/**
 * One entry of a {@link ClockFilter}: at least what `estimateExchange` returns.
 *
 * @example
 * ```ts
 * const filter = new ClockFilter();
 * filter.add({ monotonicAt: 1000, offsetMs: 1_767_225_599_000, delayMs: 40, errorMs: 20.2 });
 * filter.add({ monotonicAt: 2000, offsetMs: 1_767_225_599_002, delayMs: 8, errorMs: 4.2 });
 * filter.add({ monotonicAt: 3000, offsetMs: 1_767_225_598_990, delayMs: 30, errorMs: 15.2 });
 * //=> { monotonicAt: 2000, offsetMs: 1767225599002, delayMs: 8, errorMs: 4.2 } (the tightest once aged)
 * ```
 */
export interface FilterSample {
  /** Monotonic reading the offset refers to (ms). */
  readonly monotonicAt: number;
  /** Offset at `monotonicAt` (ms). */
  readonly offsetMs: number;
  /** Round-trip delay of the exchange (ms). */
  readonly delayMs: number;
  /** Error bound at `monotonicAt` (ms). */
  readonly errorMs: number;
  /**
   * When the evidence was gathered (T1). See `SyncSample.evidenceFrom`.
   *
   * @defaultValue `monotonicAt`
   */
  readonly evidenceFrom?: number;
}

/**
 * Options of {@link ClockFilter}.
 *
 * @example
 * ```ts
 * const filter = new ClockFilter({ size: 2, agingPpm: 15 });
 * filter.add({ monotonicAt: 1000, offsetMs: 1_767_225_599_002, delayMs: 8, errorMs: 4.2 });
 * filter.add({ monotonicAt: 2000, offsetMs: 1_767_225_599_000, delayMs: 40, errorMs: 20.2 });
 * filter.add({ monotonicAt: 3000, offsetMs: 1_767_225_598_990, delayMs: 30, errorMs: 15.2 });
 * //=> { monotonicAt: 3000, offsetMs: 1767225598990, delayMs: 30, errorMs: 15.2 } (the tight one fell out of the 2 kept)
 * filter.jitterMs(); //=> 10
 * ```
 */
export interface ClockFilterOptions {
  /**
   * How many recent samples to keep. The default is RFC 5905's.
   *
   * @defaultValue `8`
   */
  readonly size?: number;
  /**
   * How fast a kept sample's dispersion grows with age when ranking (ppm). It only ranks; the bound
   * a consumer applies is its own. The default is RFC 5905's PHI.
   *
   * @defaultValue `15`
   */
  readonly agingPpm?: number;
  /**
   * Ranks instead of `agingPpm`: the bound a kept sample gives at `atMonotonic`,
   * e.g. aged by a clock's learned frequency (`SourceContext.ageSample`), so an
   * older sample with a tight bound beats a newer loose one for as long as it
   * really is tighter. It only ranks; a consumer still applies its own bound.
   */
  readonly rank?: (sample: FilterSample, atMonotonic: number) => number;
  /**
   * With a drift bound (ppm), a new sample whose interval cannot overlap a kept sample's interval
   * aged by this bound proves the kept one wrong (the local clock was slewed or stepped beyond the
   * bound): the kept one is dropped, the newer evidence wins, and `onInconsistent` hears of it.
   *
   * @defaultValue `undefined`: no check
   */
  readonly consistencyDriftPpm?: number;
  /** Called with the samples a new one contradicted, after they were dropped. */
  readonly onInconsistent?: (dropped: readonly FilterSample[], newer: FilterSample) => void;
}

/**
 * The RFC 5905 clock filter: keeps the last `size` samples from one server and
 * picks the one with the smallest error bound once aged, which is the
 * minimum-delay sample unless it has grown old. Low delay means little room for
 * asymmetry, so this sample's offset is the most trustworthy.
 *
 * @example
 * ```ts
 * const filter = new ClockFilter();
 * filter.add(estimateExchange(ts1));
 * filter.add(estimateExchange(ts2));
 * const best = filter.best(mono.now()); // the lowest-delay of the recent samples
 * ```
 */
export class ClockFilter<T extends FilterSample = FilterSample> {
  readonly #size: number;
  readonly #aging: number;
  readonly #rank: ClockFilterOptions['rank'];
  readonly #consistencyDrift: number | undefined;
  readonly #onInconsistent: ClockFilterOptions['onInconsistent'];
  #samples: T[] = [];

  /**
   * @param options - Window size and ranking age rate.
   * @throws {@link InvalidArgumentError} When `size` is not a positive integer, `agingPpm` is
   *   negative or `rank` is not a function.
   */
  constructor(options: ClockFilterOptions = {}) {
    const size = options.size ?? 8;
    if (!Number.isInteger(size) || size < 1) {
      throw new InvalidArgumentError('size', options.size, 'a positive integer');
    }
    this.#size = size;
    this.#aging = requireNonNegative('agingPpm', options.agingPpm ?? 15) * 1e-6;
    if (options.rank !== undefined && typeof options.rank !== 'function') {
      throw new InvalidArgumentError(
        'rank',
        options.rank,
        'a function (sample, atMonotonic) => ms',
      );
    }
    this.#rank = options.rank;
    this.#consistencyDrift =
      options.consistencyDriftPpm === undefined
        ? undefined
        : requireNonNegative('consistencyDriftPpm', options.consistencyDriftPpm) * 1e-6;
    this.#onInconsistent = options.onInconsistent;
  }

  /**
   * Adds a sample, dropping the oldest beyond `size`.
   *
   * @param sample - A sample from this filter's server.
   * @returns The best sample, ranked at the new sample's time.
   * @throws {@link InvalidArgumentError} When a field is not a finite number or `errorMs` is negative.
   *
   * @example
   * ```ts
   * const best = filter.add({ ...estimateExchange(ts), source: 'a' });
   * ```
   */
  add(sample: T): T {
    for (const field of ['monotonicAt', 'offsetMs', 'delayMs', 'errorMs'] as const) {
      if (!Number.isFinite(sample[field])) {
        throw new InvalidArgumentError(field, sample[field], 'a finite number');
      }
    }
    if (sample.errorMs < 0)
      throw new InvalidArgumentError('errorMs', sample.errorMs, 'a number ≥ 0');
    const drift = this.#consistencyDrift;
    if (drift !== undefined) {
      const contradicted = this.#samples.filter(
        (kept) =>
          Math.abs(kept.offsetMs - sample.offsetMs) >
          agedBound(kept, sample.monotonicAt, drift) + sample.errorMs,
      );
      if (contradicted.length > 0) {
        this.#samples = this.#samples.filter((kept) => !contradicted.includes(kept));
        this.#onInconsistent?.(contradicted, sample);
      }
    }
    this.#samples.push(sample);
    if (this.#samples.length > this.#size) this.#samples.shift();
    return this.best(sample.monotonicAt) as T;
  }

  /**
   * The sample with the smallest aged bound: `rank(sample, at)` when given, else
   * `errorMs + agingPpm·|at − monotonicAt|`.
   *
   * @param atMonotonic - When to rank; default the newest sample's time.
   * @returns The best sample, or `undefined` when the filter is empty.
   *
   * @example
   * ```ts
   * const best = filter.best(mono.now());
   * ```
   */
  best(atMonotonic?: number): T | undefined {
    const at = atMonotonic ?? this.#samples[this.#samples.length - 1]?.monotonicAt ?? 0;
    let best: T | undefined;
    let bestKey = Infinity;
    const rank = this.#rank;
    for (const s of this.#samples) {
      const key =
        rank === undefined ? s.errorMs + this.#aging * Math.abs(at - s.monotonicAt) : rank(s, at);
      // Ties go to the newer sample (later in the array).
      if (key <= bestKey) {
        best = s;
        bestKey = key;
      }
    }
    return best;
  }

  /**
   * RMS difference between the kept offsets and the best one (RFC 5905 jitter).
   * Offsets on a monotonic timescale move only by drift, so they compare directly.
   *
   * @returns The jitter in ms; 0 with fewer than two samples.
   *
   * @example
   * ```ts
   * if (filter.jitterMs() > 5) console.warn('noisy path');
   * ```
   */
  jitterMs(): number {
    const best = this.best();
    if (best === undefined || this.#samples.length < 2) return 0;
    let sum = 0;
    for (const s of this.#samples) sum += (s.offsetMs - best.offsetMs) ** 2;
    return Math.sqrt(sum / (this.#samples.length - 1));
  }

  /**
   * The kept samples, oldest first.
   *
   * @example
   * ```ts
   * console.log(filter.samples.map((s) => s.delayMs));
   * ```
   */
  get samples(): readonly T[] {
    return this.#samples.slice();
  }

  /**
   * Forgets every sample whose evidence was gathered at or before `monotonicAt`
   * (`evidenceFrom`, else `monotonicAt`): after a disruption such as a suspend,
   * older samples describe a timescale that no longer holds.
   *
   * @param monotonicAt - The disruption's monotonic reading.
   * @returns How many samples were dropped.
   *
   * @example
   * ```ts
   * filter.dropGatheredBefore(disruptedAt);
   * ```
   */
  dropGatheredBefore(monotonicAt: number): number {
    const before = this.#samples.length;
    this.#samples = this.#samples.filter((s) => (s.evidenceFrom ?? s.monotonicAt) > monotonicAt);
    return before - this.#samples.length;
  }

  /**
   * Forgets every sample (e.g. after a step of the server's clock).
   *
   * @example
   * ```ts
   * filter.clear();
   * ```
   */
  clear(): void {
    this.#samples = [];
  }
}
