/**
 * The four-timestamp exchange (RFC 5905 §8) and the clock filter (§10), shared by
 * every source that asks a server for the time: NTP over UDP, time over HTTP or a
 * message channel, peer clock checks over RPC.
 *
 * The client stamps T1 (request sent) and T4 (reply received) with its own
 * monotonic clock; the server stamps T2 (request received) and T3 (reply sent)
 * with its clock in epoch ms. Then θ is "server time minus local monotonic
 * reading" at T4, which is exactly a {@link SyncSample}'s `offsetMs`.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';

/**
 * The four timestamps of one request/response exchange.
 *
 * @example
 * ```ts
 * const ts: ExchangeTimestamps = { t1: 1000, t2: 1_767_225_600_010, t3: 1_767_225_600_011, t4: 1020 };
 * ```
 */
export interface ExchangeTimestamps {
  /** Request sent, on the local monotonic timescale (ms). */
  readonly t1: number;
  /** Request received by the server, server clock (epoch ms). */
  readonly t2: number;
  /** Reply sent by the server, server clock (epoch ms). */
  readonly t3: number;
  /** Reply received, on the local monotonic timescale (ms). */
  readonly t4: number;
}

/**
 * What bounds an exchange beyond its own delay: the server's distance from true
 * time, both clocks' resolutions and the local drift over the exchange.
 *
 * @example
 * ```ts
 * const bound: ExchangeBoundOptions = { rootDelayMs: 12, rootDispersionMs: 3, serverPrecisionMs: 0.001 };
 * ```
 */
export interface ExchangeBoundOptions {
  /** NTP root delay: the server's round trip to its reference (ms); half of it counts. Default 0. */
  readonly rootDelayMs?: number;
  /** NTP root dispersion: the server's accumulated error bound (ms). Default 0. */
  readonly rootDispersionMs?: number;
  /** Any other bound on the server clock's error, e.g. its own TrueClock ε (ms). Default 0. */
  readonly serverErrorMs?: number;
  /** Resolution of the server's timestamps T2/T3 (ms). Default 0. */
  readonly serverPrecisionMs?: number;
  /** Resolution of the local timestamps T1/T4 (ms). Default 0. */
  readonly localPrecisionMs?: number;
  /** Bound on the local clock's rate error (ppm), charged over T4 − T1. Default 200. */
  readonly maxDriftPpm?: number;
}

/**
 * The result of one exchange: offset θ, round-trip delay δ and error bound λ.
 *
 * @example
 * ```ts
 * const e: ExchangeEstimate = estimateExchange(ts);
 * const sample = { monotonicAt: e.monotonicAt, offsetMs: e.offsetMs, errorMs: e.errorMs, source: 'x' };
 * ```
 */
export interface ExchangeEstimate {
  /** The local monotonic reading the offset refers to: T4. */
  readonly monotonicAt: number;
  /** θ = ½[(T2 − T1) + (T3 − T4)]: server time minus local monotonic reading (ms). */
  readonly offsetMs: number;
  /** δ = (T4 − T1) − (T3 − T2): time spent on the network (ms). */
  readonly delayMs: number;
  /**
   * λ: the true offset at T4 lies within `offsetMs ± errorMs`:
   * max(δ, 0)/2 + rootDelay/2 + rootDispersion + serverError + both precisions
   * + maxDrift·(T4 − T1).
   */
  readonly errorMs: number;
  /**
   * `false` when the timestamps cannot come from a real exchange: δ is negative
   * beyond what the clocks' resolutions, the drift bound and double rounding
   * explain (the server claims to have held
   * the request longer than the whole round trip). Such an exchange must be
   * discarded.
   */
  readonly consistent: boolean;
}

/**
 * Computes offset, delay and error bound of one exchange.
 *
 * Why the bound holds: the request left at T1 and reached the server no earlier,
 * so the offset is at most T2 − T1; the reply left at T3 and arrived no later
 * than T4, so it is at least T3 − T4. θ is the middle of that range and δ/2 its
 * half-width. The server's own distance from true time, the resolution of the
 * four readings and the local drift during the exchange widen it.
 *
 * @param timestamps - T1..T4 (T1, T4 monotonic ms; T2, T3 server epoch ms).
 * @param bound - The server's error terms, resolutions and the drift bound.
 * @returns θ, δ, λ and whether the timestamps are consistent.
 * @throws {InvalidArgumentError} When a timestamp is not a finite number, T4 < T1,
 *   or a bound term is negative.
 *
 * @example
 * ```ts
 * const t1 = mono.now();
 * const { t2, t3 } = await askServer();
 * const t4 = mono.now();
 * const { offsetMs, errorMs } = estimateExchange({ t1, t2, t3, t4 }, { serverErrorMs: 0.5 });
 * ```
 */
export function estimateExchange(
  timestamps: ExchangeTimestamps,
  bound: ExchangeBoundOptions = {},
): ExchangeEstimate {
  const { t1, t2, t3, t4 } = timestamps;
  for (const [name, value] of [
    ['t1', t1],
    ['t2', t2],
    ['t3', t3],
    ['t4', t4],
  ] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new InvalidArgumentError(name, value, 'a finite number of milliseconds');
    }
  }
  if (t4 < t1) throw new InvalidArgumentError('t4', t4, `a monotonic reading ≥ t1 (${t1})`);
  const rootDelay = requireNonNegative('rootDelayMs', bound.rootDelayMs ?? 0);
  const rootDispersion = requireNonNegative('rootDispersionMs', bound.rootDispersionMs ?? 0);
  const serverError = requireNonNegative('serverErrorMs', bound.serverErrorMs ?? 0);
  const serverPrecision = requireNonNegative('serverPrecisionMs', bound.serverPrecisionMs ?? 0);
  const localPrecision = requireNonNegative('localPrecisionMs', bound.localPrecisionMs ?? 0);
  const maxDrift = requireNonNegative('maxDriftPpm', bound.maxDriftPpm ?? 200) * 1e-6;

  const roundTrip = t4 - t1;
  const delayMs = roundTrip - (t3 - t2);
  // θ = ½[(T2 − T1) + (T3 − T4)] = (T2 − T1) − δ/2: one epoch-scale rounding, not two.
  const offsetMs = t2 - t1 - delayMs / 2;
  const precision = serverPrecision + localPrecision;
  const errorMs =
    Math.max(delayMs, 0) / 2 +
    rootDelay / 2 +
    rootDispersion +
    serverError +
    precision +
    maxDrift * roundTrip;
  // A real exchange can show δ < 0 only through the clocks' resolution, the local
  // clock's rate error over the exchange, and rounding of epoch-scale doubles.
  const tolerance =
    2 * precision +
    2 * maxDrift * roundTrip +
    8 * Number.EPSILON * Math.max(Math.abs(t1), Math.abs(t2), Math.abs(t3), Math.abs(t4)) +
    Number.MIN_VALUE;
  return {
    monotonicAt: t4,
    offsetMs,
    delayMs,
    errorMs,
    consistent: delayMs >= -tolerance,
  };
}

/**
 * One entry of a {@link ClockFilter}: at least what {@link estimateExchange} returns.
 *
 * @example
 * ```ts
 * const s: FilterSample = { monotonicAt: 1020, offsetMs: 1_767_225_599_000, delayMs: 19, errorMs: 9.6 };
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
  /** When the evidence was gathered (T1); default `monotonicAt`. See `SyncSample.evidenceFrom`. */
  readonly evidenceFrom?: number;
}

/**
 * Options of {@link ClockFilter}.
 *
 * @example
 * ```ts
 * const options: ClockFilterOptions = { size: 8, agingPpm: 15 };
 * ```
 */
export interface ClockFilterOptions {
  /** How many recent samples to keep; default 8 (RFC 5905). */
  readonly size?: number;
  /**
   * How fast a kept sample's dispersion grows with age when ranking (ppm); default
   * 15, RFC 5905's PHI. It only ranks; the bound a consumer applies is its own.
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
   * With a drift bound (ppm), a new sample whose interval cannot overlap a kept
   * sample's interval aged by this bound proves the kept one wrong (the local
   * clock was slewed or stepped beyond the bound): the kept one is dropped, the
   * newer evidence wins, and `onInconsistent` hears of it. Default: no check.
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
   * @throws {InvalidArgumentError} When `size` is not a positive integer, `agingPpm` is
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
   * @throws {InvalidArgumentError} When a field is not a finite number or `errorMs` is negative.
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

/**
 * The bound a sample gives at another monotonic reading: `errorMs` grown by the
 * drift bound over the time between, `errorMs + drift·|at − monotonicAt|`.
 * The one formula every consumer of samples ages them with.
 *
 * @param sample - Where the bound starts (`monotonicAt`, `errorMs`).
 * @param atMonotonic - When the bound is wanted.
 * @param drift - The drift bound as a fraction (200 ppm = 2e-4).
 * @returns The aged bound (ms).
 *
 * @example
 * ```ts
 * agedBound({ monotonicAt: 0, errorMs: 1 }, 10_000, 200e-6); // 3
 * ```
 * @internal
 */
export function agedBound(
  sample: { readonly monotonicAt: number; readonly errorMs: number },
  atMonotonic: number,
  drift: number,
): number {
  const elapsed = atMonotonic - sample.monotonicAt;
  return sample.errorMs + drift * (elapsed < 0 ? -elapsed : elapsed);
}
