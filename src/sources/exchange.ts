/**
 * The four-timestamp exchange (RFC 5905 §8), shared by every source that asks a
 * server for the time: NTP over UDP, time over HTTP or a message channel, peer
 * clock checks over RPC. The clock filter (§10) that picks among the results is
 * in `clock-filter.ts`.
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
 * estimateExchange({ t1: 1000, t2: 1_767_225_600_010, t3: 1_767_225_600_011, t4: 1020 });
 * //=> { monotonicAt: 1020, offsetMs: 1767225599000.5, delayMs: 19, errorMs: 9.504, consistent: true }
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
 * const ts = { t1: 1000, t2: 1_767_225_600_010, t3: 1_767_225_600_011, t4: 1020 };
 * estimateExchange(ts, { rootDelayMs: 12, rootDispersionMs: 3, serverPrecisionMs: 0.001 }).errorMs;
 * //=> 18.505 (9.5 of round trip + 6 of root delay + 3 of dispersion + 0.001 of precision + drift)
 * ```
 */
export interface ExchangeBoundOptions {
  /**
   * NTP root delay: the server's round trip to its reference (ms); half of it counts.
   *
   * @defaultValue `0`
   */
  readonly rootDelayMs?: number;
  /**
   * NTP root dispersion: the server's accumulated error bound (ms).
   *
   * @defaultValue `0`
   */
  readonly rootDispersionMs?: number;
  /**
   * Any other bound on the server clock's error, e.g. its own TrueClock ε (ms).
   *
   * @defaultValue `0`
   */
  readonly serverErrorMs?: number;
  /**
   * Resolution of the server's timestamps T2/T3 (ms).
   *
   * @defaultValue `0`
   */
  readonly serverPrecisionMs?: number;
  /**
   * Resolution of the local timestamps T1/T4 (ms).
   *
   * @defaultValue `0`
   */
  readonly localPrecisionMs?: number;
  /**
   * Bound on the local clock's rate error (ppm), charged over T4 − T1.
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
}

/**
 * The result of one exchange: offset θ, round-trip delay δ and error bound λ.
 *
 * @example
 * ```ts
 * // The server claims it held the request 30 ms of a 20 ms round trip:
 * estimateExchange({ t1: 1000, t2: 1_767_225_600_010, t3: 1_767_225_600_040, t4: 1020 });
 * //=> { monotonicAt: 1020, offsetMs: 1767225599015, delayMs: -10, errorMs: 0.004, consistent: false } (discard it)
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
 * @throws {@link InvalidArgumentError} When a timestamp is not a finite number, T4 < T1,
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
