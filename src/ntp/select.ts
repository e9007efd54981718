/**
 * Marzullo's intersection across servers (RFC 5905 §11.2.1), in its honest form.
 *
 * Each answering server's best sample says "the offset at monotonic time t is
 * within θ ± λ". Aged to a common reference time R with the drift bound φ, that
 * is the interval [θ − λ − φ|R − t|, θ + λ + φ|R − t|]; a caller with a learned
 * frequency (a `TrueClock`'s `SourceContext.ageSample`) passes `age` to move θ
 * by the learned rate and widen λ only by what is unknown about it. The fault model is set by
 * the *configured* servers: at most f of them are falsetickers (their interval
 * misses the true offset), f = ⌊(configured − 1)/2⌋ unless the caller says
 * otherwise. Of the a servers that answered, then, at least a − f cover the true
 * offset, so it lies between the lowest and the highest point that a − f
 * intervals cover. That hull is what this module returns: its midpoint as the
 * offset and its half-width as the bound. When a ≤ f nothing is guaranteed to
 * cover the truth, and the answer is `no-majority`.
 *
 * | configured | f | answering | must overlap | e.g. |
 * |---|---|---|---|---|
 * | 1 | 0 | 1 | 1 | the server's own interval |
 * | 2 | 0 | 2 | 2 | their intersection; disjoint: no-majority |
 * | 2 | 0 | 1 | 1 | one dead: the live one |
 * | 3 | 1 | 3 | 2 | one liar cast out |
 * | 3 | 1 | 2 | 1 | one silent, one liar: the hull of both (wide, true) |
 * | 3 | 1 | 1 | — | no-majority |
 * | 5 | 2 | 4 | 2 | |
 *
 * Counting silent servers against agreement instead (requiring configured − f
 * overlaps) is *wrong*: with one silent server and one liar of three, it would
 * require both answers to overlap and return their intersection, which a liar
 * that overlaps the honest interval moves off the truth.
 *
 * RFC 5905 instead tries f = 0, 1, … and stops at the first f for which such a
 * point exists. That answer is tighter but not guaranteed: a falseticker whose
 * interval overlaps the truechimers' (but misses the truth) makes f = 0 succeed
 * with an intersection that excludes the true offset. So the default here is the
 * largest f below half the configured servers, and callers who can vouch for
 * fewer falsetickers may lower it.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { agedBound } from '../sources/exchange.js';

/**
 * One server's vote: its (filtered) sample.
 *
 * @example
 * ```ts
 * const candidates = [
 *   { id: 'a:123', monotonicAt: 5000, offsetMs: 1_767_225_595_000, errorMs: 2 },
 *   { id: 'b:123', monotonicAt: 5000, offsetMs: 1_767_225_595_001, errorMs: 2 },
 *   { id: 'c:123', monotonicAt: 5000, offsetMs: 1_767_225_595_250, errorMs: 2 },
 * ];
 * selectOffset(candidates).ok; //=> true (a and b agree; c is a falseticker)
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
 * // candidates: a and b agree, c is 250 ms off (see SelectionCandidate)
 * selectOffset(candidates, { maxDriftPpm: 200, configured: 4 }).required; //=> 2 (f = 1 of 4 configured)
 * selectOffset(candidates, { maxFalsetickers: 0 });
 * //=> { ok: false, reason: 'no-majority', required: 3, … } (all three must agree, and c does not)
 * ```
 */
export interface SelectOptions {
  /**
   * Drift bound used to age samples to the reference time (ppm).
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * Ages a candidate to the reference time instead of the drift bound: where its
   * offset lies then (`offsetMs ± errorMs`), e.g. under a clock's learned
   * frequency (`SourceContext.ageSample`). It must be honest: the selection is
   * only as good as the intervals it gets. Its answer is used only when it is
   * finite and no wider than the drift bound's.
   */
  readonly age?: (
    candidate: SelectionCandidate,
    atMonotonic: number,
  ) => { readonly offsetMs: number; readonly errorMs: number };
  /**
   * Reference monotonic time.
   *
   * @defaultValue the newest candidate's `monotonicAt`
   */
  readonly atMonotonic?: number;
  /**
   * How many servers are configured (answering or not). It sets the default f: a silent server
   * still counts towards how many liars there may be.
   *
   * @defaultValue the number of candidates
   */
  readonly configured?: number;
  /**
   * f, the most falsetickers to tolerate, 0 ≤ f < configured.
   *
   * @defaultValue ⌊(configured − 1)/2⌋
   */
  readonly maxFalsetickers?: number;
}

/**
 * A candidate's interval at the reference time.
 *
 * @example
 * ```ts
 * selectOffset([
 *   { id: 'a:123', monotonicAt: 5000, offsetMs: 1_767_225_595_000, errorMs: 2 },
 *   { id: 'b:123', monotonicAt: 4000, offsetMs: 1_767_225_595_001, errorMs: 2 },
 * ]).intervals;
 * //=> [{ id: 'a:123', low: 1767225594998, high: 1767225595002 },
 * //    { id: 'b:123', low: 1767225594998.8, high: 1767225595003.2 }] (b aged 1 s at 200 ppm)
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
 * selectOffset(candidates); // a and b agree, c is 250 ms off (see SelectionCandidate)
 * //=> { ok: true, monotonicAt: 5000, offsetMs: 1767225595000.5, errorMs: 1.5, low: 1767225594999, high: 1767225595002,
 * //     truechimers: ['a:123', 'b:123'], falsetickers: ['c:123'], configured: 3, maxFalsetickers: 1, required: 2, intervals: […] }
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
      /** How many servers are configured. */
      readonly configured: number;
      /** f: how many falsetickers were tolerated. */
      readonly maxFalsetickers: number;
      /** answering − f: how many intervals had to agree. */
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
      /** How many servers are configured. */
      readonly configured: number;
      /** f. */
      readonly maxFalsetickers: number;
      /** answering − f (at least 1). */
      readonly required: number;
      /** Every candidate's interval at the reference time. */
      readonly intervals: readonly SelectionInterval[];
    };

/**
 * Selects the offset that a majority of servers supports (see the module notes).
 *
 * @param candidates - One sample per server.
 * @param options - Drift bound (or an ageing function), reference time, configured servers and f.
 * @returns The agreed offset and bound, or why there is none.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a candidate is malformed, `configured` is smaller
 *   than the number of candidates, or `maxFalsetickers` is not in [0, configured).
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
  const configured = options.configured ?? candidates.length;
  if (!Number.isInteger(configured) || configured < candidates.length) {
    throw new InvalidArgumentError(
      'configured',
      options.configured,
      `an integer ≥ ${candidates.length}`,
    );
  }
  const tolerated = options.maxFalsetickers ?? defaultMaxFalsetickers(configured);
  if (
    !Number.isInteger(tolerated) ||
    tolerated < 0 ||
    (configured > 0 && tolerated >= configured)
  ) {
    throw new InvalidArgumentError(
      'maxFalsetickers',
      options.maxFalsetickers,
      'an integer f with 0 ≤ f < configured',
    );
  }
  const required = Math.max(1, candidates.length - tolerated);
  const counts = { configured, maxFalsetickers: tolerated, required };
  if (candidates.length === 0) {
    return { ok: false, reason: 'no-candidates', monotonicAt: NaN, ...counts, intervals: [] };
  }
  let at = options.atMonotonic ?? -Infinity;
  if (options.atMonotonic === undefined)
    for (const c of candidates) at = Math.max(at, c.monotonicAt);
  if (!Number.isFinite(at))
    throw new InvalidArgumentError('atMonotonic', options.atMonotonic, 'a finite number');

  const age = options.age;
  const intervals: SelectionInterval[] = candidates.map((c) => {
    const width = agedBound(c, at, drift);
    const aged = age?.(c, at);
    if (
      aged !== undefined &&
      Number.isFinite(aged.offsetMs) &&
      aged.errorMs >= 0 &&
      aged.errorMs <= width
    ) {
      return { id: c.id, low: aged.offsetMs - aged.errorMs, high: aged.offsetMs + aged.errorMs };
    }
    return { id: c.id, low: c.offsetMs - width, high: c.offsetMs + width };
  });
  // With a ≤ f answers, every one of them may be a liar.
  if (candidates.length <= tolerated) {
    return { ok: false, reason: 'no-majority', monotonicAt: at, ...counts, intervals };
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
    return { ok: false, reason: 'no-majority', monotonicAt: at, ...counts, intervals };
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
    ...counts,
    intervals,
  };
}

/**
 * The default number of falsetickers tolerated among `configured` servers:
 * the largest f below half of them, ⌊(configured − 1)/2⌋.
 *
 * @param configured - How many servers are configured.
 * @returns f.
 *
 * @example
 * ```ts
 * defaultMaxFalsetickers(3); // 1
 * ```
 */
export function defaultMaxFalsetickers(configured: number): number {
  return Math.max(0, Math.floor((configured - 1) / 2));
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
