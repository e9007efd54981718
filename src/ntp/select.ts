/**
 * Marzullo's intersection across servers (RFC 5905 §11.2.1), in its honest form.
 *
 * Each server's best sample says "the offset at monotonic time t is within
 * θ ± λ". Aged to a common reference time R with the drift bound φ, that is the
 * interval [θ − λ − φ|R − t|, θ + λ + φ|R − t|]. Assume at most f of the m
 * servers are falsetickers (their interval misses the true offset), with f < m/2.
 * Then the true offset is covered by at least m − f intervals, so it lies between
 * the lowest and the highest point that m − f intervals cover. That hull is what
 * this module returns: its midpoint as the offset and its half-width as the bound.
 *
 * RFC 5905 instead tries f = 0, 1, … and stops at the first f for which such a
 * point exists. That answer is tighter but not guaranteed: a falseticker whose
 * interval overlaps the truechimers' (but misses the truth) makes f = 0 succeed
 * with an intersection that excludes the true offset. So the default here is the
 * largest f below m/2, and callers who can vouch for fewer falsetickers may lower it.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';

/**
 * One server's vote: its (filtered) sample.
 *
 * @example
 * ```ts
 * const c: SelectionCandidate = { id: 'a:123', monotonicAt: 5000, offsetMs: 1.7e12, errorMs: 2 };
 * ```
 */
export interface SelectionCandidate {
  /** Which server (shown in `truechimers` / `falsetickers`). */
  readonly id: string;
  /** Monotonic reading the sample refers to (ms). */
  readonly monotonicAt: number;
  /** Offset at `monotonicAt` (ms). */
  readonly offsetMs: number;
  /** Error bound at `monotonicAt` (ms). */
  readonly errorMs: number;
}

/**
 * Options of {@link selectOffset}.
 *
 * @example
 * ```ts
 * const options: SelectOptions = { maxDriftPpm: 200, voters: 4 };
 * ```
 */
export interface SelectOptions {
  /** Drift bound used to age samples to the reference time (ppm); default 200. */
  readonly maxDriftPpm?: number;
  /** Reference monotonic time; default the newest candidate's `monotonicAt`. */
  readonly atMonotonic?: number;
  /**
   * m, the number of servers that vote; default the number of candidates. Pass the
   * number of configured servers to require a majority of all of them, so that
   * silent servers count against agreement.
   */
  readonly voters?: number;
  /** f, the most falsetickers to tolerate; default the largest f < m/2. */
  readonly maxFalsetickers?: number;
}

/**
 * A candidate's interval at the reference time.
 *
 * @example
 * ```ts
 * const i: SelectionInterval = { id: 'a', low: -2, high: 2 };
 * ```
 */
export interface SelectionInterval {
  /** The candidate's id. */
  readonly id: string;
  /** Lowest offset it allows at the reference time (ms). */
  readonly low: number;
  /** Highest offset it allows at the reference time (ms). */
  readonly high: number;
}

/**
 * The outcome of {@link selectOffset}.
 *
 * @example
 * ```ts
 * const r: Selection = selectOffset(candidates);
 * if (r.ok) console.log(r.offsetMs, r.errorMs, r.falsetickers);
 * ```
 */
export type Selection =
  | {
      /** A majority agrees. */
      readonly ok: true;
      /** The reference time (ms, monotonic). */
      readonly monotonicAt: number;
      /** Midpoint of [low, high] (ms). */
      readonly offsetMs: number;
      /** Half-width of [low, high] (ms). */
      readonly errorMs: number;
      /** Lowest offset covered by at least `required` intervals. */
      readonly low: number;
      /** Highest offset covered by at least `required` intervals. */
      readonly high: number;
      /** Candidates whose interval meets [low, high]. */
      readonly truechimers: readonly string[];
      /** Candidates cast out: their interval misses [low, high]. */
      readonly falsetickers: readonly string[];
      /** m. */
      readonly voters: number;
      /** m − f: how many intervals had to agree. */
      readonly required: number;
      /** Every candidate's interval at the reference time. */
      readonly intervals: readonly SelectionInterval[];
    }
  | {
      /** No point is covered by enough intervals. */
      readonly ok: false;
      /** `'no-candidates'` (nothing to select from) or `'no-majority'`. */
      readonly reason: 'no-candidates' | 'no-majority';
      /** The reference time (ms, monotonic); NaN without candidates. */
      readonly monotonicAt: number;
      /** m. */
      readonly voters: number;
      /** m − f. */
      readonly required: number;
      /** Every candidate's interval at the reference time. */
      readonly intervals: readonly SelectionInterval[];
    };

/**
 * Selects the offset that a majority of servers supports (see the module notes).
 *
 * @param candidates - One sample per server.
 * @param options - Drift bound, reference time, m and f.
 * @returns The agreed offset and bound, or why there is none.
 * @throws {InvalidArgumentError} When a candidate is malformed, `voters` is smaller
 *   than the number of candidates, or `maxFalsetickers` is not below voters/2.
 *
 * @example
 * ```ts
 * const r = selectOffset([a, b, c].map((x) => ({ id: x.server, ...x })));
 * if (r.ok) onSample({ monotonicAt: r.monotonicAt, offsetMs: r.offsetMs, errorMs: r.errorMs, source: 'ntp' });
 * ```
 */
export function selectOffset(
  candidates: readonly SelectionCandidate[],
  options: SelectOptions = {},
): Selection {
  const drift = requireNonNegative('maxDriftPpm', options.maxDriftPpm ?? 200) * 1e-6;
  for (const c of candidates) {
    if (
      !Number.isFinite(c.monotonicAt) ||
      !Number.isFinite(c.offsetMs) ||
      !(c.errorMs >= 0) ||
      !Number.isFinite(c.errorMs)
    ) {
      throw new InvalidArgumentError(
        'candidates',
        c,
        'finite monotonicAt, offsetMs and errorMs ≥ 0',
      );
    }
  }
  const voters = options.voters ?? candidates.length;
  if (!Number.isInteger(voters) || voters < candidates.length) {
    throw new InvalidArgumentError('voters', options.voters, `an integer ≥ ${candidates.length}`);
  }
  const tolerated = options.maxFalsetickers ?? Math.max(0, Math.ceil(voters / 2) - 1);
  if (!Number.isInteger(tolerated) || tolerated < 0 || (voters > 0 && tolerated * 2 >= voters)) {
    throw new InvalidArgumentError(
      'maxFalsetickers',
      options.maxFalsetickers,
      'an integer f ≥ 0 with f < voters/2',
    );
  }
  const required = Math.max(1, voters - tolerated);
  if (candidates.length === 0) {
    return {
      ok: false,
      reason: 'no-candidates',
      monotonicAt: NaN,
      voters,
      required,
      intervals: [],
    };
  }
  let at = options.atMonotonic ?? -Infinity;
  if (options.atMonotonic === undefined)
    for (const c of candidates) at = Math.max(at, c.monotonicAt);
  if (!Number.isFinite(at))
    throw new InvalidArgumentError('atMonotonic', options.atMonotonic, 'a finite number');

  const intervals: SelectionInterval[] = candidates.map((c) => {
    const width = c.errorMs + drift * Math.abs(at - c.monotonicAt);
    return { id: c.id, low: c.offsetMs - width, high: c.offsetMs + width };
  });
  if (candidates.length < required) {
    return { ok: false, reason: 'no-majority', monotonicAt: at, voters, required, intervals };
  }
  // Closed intervals: at equal values an interval's start counts before another's end.
  const lows = intervals.map((i) => i.low).sort((a, b) => a - b);
  const highs = intervals.map((i) => i.high).sort((a, b) => a - b);
  const low = coveredFrom(lows, highs, required);
  const high = -coveredFrom(
    highs.map((h) => -h).reverse(),
    lows.map((l) => -l).reverse(),
    required,
  );
  if (!(low <= high)) {
    return { ok: false, reason: 'no-majority', monotonicAt: at, voters, required, intervals };
  }
  const truechimers: string[] = [];
  const falsetickers: string[] = [];
  for (const i of intervals)
    (i.low <= high && i.high >= low ? truechimers : falsetickers).push(i.id);
  return {
    ok: true,
    monotonicAt: at,
    offsetMs: low + (high - low) / 2,
    errorMs: (high - low) / 2,
    low,
    high,
    truechimers,
    falsetickers,
    voters,
    required,
    intervals,
  };
}

/**
 * The lowest point covered by at least `required` of the closed intervals given
 * by sorted `starts` and `ends` (paired implicitly); NaN when there is none.
 */
function coveredFrom(starts: readonly number[], ends: readonly number[], required: number): number {
  let depth = 0;
  let e = 0;
  for (const s of starts) {
    // Intervals that ended strictly before this start no longer cover it.
    while (e < ends.length && (ends[e] as number) < s) {
      depth--;
      e++;
    }
    depth++;
    if (depth >= required) return s;
  }
  return NaN;
}
