/**
 * The oscillator's frequency, learned with a rigorous bound, so that ε grows
 * between samples at what is still unknown about the rate instead of at the
 * full drift bound.
 *
 * Write ρ(t) for the rate at which the offset (true time − monotonic reading)
 * changes: −ρ is the monotonic clock's rate error. The model assumes
 *
 * - |ρ(t)| ≤ D (`maxDriftPpm`), and
 * - |ρ(s) − ρ(t)| ≤ w·|s − t| (`maxWanderPpmPerHour`): the rate changes no faster
 *   than w, e.g. with temperature.
 *
 * Two accepted samples i < j (offset oᵢ ± eᵢ at monotonic tᵢ) bound the *average*
 * rate over [tᵢ, tⱼ] by [(oⱼ − oᵢ − eᵢ − eⱼ)/(tⱼ − tᵢ), (oⱼ − oᵢ + eᵢ + eⱼ)/(tⱼ − tᵢ)],
 * and the average of the rate over that span is within w·(τ − (tᵢ + tⱼ)/2) of the
 * rate at a later τ (the mean of w·(τ − s) over the span). So the rate at the
 * newest sample's time τ lies in the intersection, over all pairs, of those
 * intervals widened by w·(τ − (tᵢ + tⱼ)/2), and in [−D, D]. From an anchor sample
 * a, the offset at t then lies in
 *
 * ```
 * oₐ ± eₐ + [ρ_lo·Δ − w·I, ρ_hi·Δ + w·I],  Δ = t − tₐ,  I = ∫ₜₐᵗ |s − τ| ds
 * ```
 *
 * intersected with the drift-only bound oₐ ± (eₐ + D·Δ). Both hold whenever the
 * assumptions do, so their intersection does. An empty intersection of the
 * pairs means the assumptions failed (the rate jumped: a slew, a migration, a
 * leap smear beginning): the model forgets everything but the newest sample and
 * says so, and the bound falls back to the drift bound until it has learned
 * again. It falls back for good for any anchor taken before that restart (or
 * before a {@link FrequencyModel.reset}): the rate it learns afterwards says
 * nothing about the time before the break.
 *
 * @module
 * @internal
 */
import { EPOCH_ROUNDING } from '../_internals/rounding.js';

/** What the model learns from: an accepted sample. @internal */
export interface RatePoint {
  readonly monotonicAt: number;
  readonly offsetMs: number;
  readonly errorMs: number;
}

/** How many samples the model keeps (the pairs among them bound the rate). */
const MAX_POINTS = 32;

/** ∫ₐᵇ |s − c| ds for a ≤ b. */
function absIntegral(a: number, b: number, c: number): number {
  if (c <= a) return ((b - c) ** 2 - (a - c) ** 2) / 2;
  if (c >= b) return ((c - a) ** 2 - (c - b) ** 2) / 2;
  return ((c - a) ** 2 + (b - c) ** 2) / 2;
}

/**
 * The learned frequency model (see the module notes).
 * @internal
 */
export class FrequencyModel {
  readonly #maxDrift: number;
  readonly #wanderPerMs: number;
  #points: RatePoint[] = [];
  /** Bounds on the rate at `#refAt` (fractions, e.g. 1e-6 = 1 ppm). */
  #low: number;
  #high: number;
  #refAt = Number.NaN;
  /** The first sample since the last reset or restart: anchors before it are aged by the drift bound. */
  #validFrom = Number.NaN;

  /**
   * @param maxDrift - D as a fraction (200 ppm = 2e-4).
   * @param wanderPerMs - w as a fraction per millisecond (5 ppm/h = 5e-6 / 3.6e6).
   */
  constructor(maxDrift: number, wanderPerMs: number) {
    this.#maxDrift = maxDrift;
    this.#wanderPerMs = wanderPerMs;
    this.#low = -maxDrift;
    this.#high = maxDrift;
  }

  /** Bounds on the rate at the newest sample (fractions): `[-D, D]` until learned. */
  get rateBounds(): { readonly low: number; readonly high: number; readonly at: number } {
    return { low: this.#low, high: this.#high, at: this.#refAt };
  }

  /** How many samples the model rests on. */
  get size(): number {
    return this.#points.length;
  }

  /** Forgets everything (a disruption: the timescale no longer holds). */
  reset(): void {
    this.#points = [];
    this.#low = -this.#maxDrift;
    this.#high = this.#maxDrift;
    this.#refAt = Number.NaN;
    this.#validFrom = Number.NaN;
  }

  /**
   * The monotonic reading from which the model vouches for the rate: its first
   * sample since the last reset or restart; NaN when it has none. An anchor
   * before it is aged by the drift bound alone.
   */
  get validFrom(): number {
    return this.#validFrom;
  }

  /**
   * Learns from an accepted sample.
   *
   * @returns `false` when the sample contradicts the model (no rate satisfies
   *   every pair): the model then restarts from this sample alone.
   */
  add(point: RatePoint): boolean {
    if (this.#points.length === 0) this.#validFrom = point.monotonicAt;
    this.#points.push(point);
    this.#points.sort((a, b) => a.monotonicAt - b.monotonicAt);
    // Points so old that wander alone allows any rate teach nothing.
    const newest = this.#points[this.#points.length - 1] as RatePoint;
    const horizon = this.#wanderPerMs > 0 ? (2 * this.#maxDrift) / this.#wanderPerMs : Infinity;
    this.#points = this.#points
      .filter((p) => newest.monotonicAt - p.monotonicAt <= horizon)
      .slice(-MAX_POINTS);
    if (this.#solve()) return true;
    this.#points = [point];
    this.#validFrom = point.monotonicAt;
    this.#solve();
    return false;
  }

  /**
   * The interval the offset's change from `anchor` to `atMonotonic` lies in, given
   * an extra allowance `jump` (a fraction) for a rate step the wander bound does
   * not cover (a leap smear beginning). Written to {@link FrequencyModel.low} and
   * {@link FrequencyModel.high} (ms) rather than returned: `TrueClock.now()` calls
   * it on every read, and this keeps the read free of allocation.
   */
  change(anchor: RatePoint, atMonotonic: number, jump: number): void {
    const elapsed = atMonotonic - anchor.monotonicAt;
    const drift = this.#maxDrift * (elapsed < 0 ? -elapsed : elapsed);
    const ref = this.#refAt;
    // Before the model's first sample since its last break, or with no model: the drift bound.
    if (!(elapsed > 0) || !(anchor.monotonicAt >= this.#validFrom) || !(ref >= this.#validFrom)) {
      this.low = -drift;
      this.high = drift;
      return;
    }
    const wander = this.#wanderPerMs * absIntegral(anchor.monotonicAt, atMonotonic, ref);
    this.high = Math.min(drift, (this.#high + jump) * elapsed + wander);
    this.low = Math.max(-drift, (this.#low - jump) * elapsed - wander);
  }

  /** Lower end of the last {@link FrequencyModel.change} (ms). */
  low = 0;
  /** Upper end of the last {@link FrequencyModel.change} (ms). */
  high = 0;

  /**
   * The bound a sample with `errorMs` taken at `fromMonotonic` will have grown to
   * `elapsedMs` later, under the model as it stands (ms).
   */
  predict(errorMs: number, fromMonotonic: number, elapsedMs: number, jump: number): number {
    const drift = this.#maxDrift * elapsedMs;
    const ref = this.#refAt;
    if (!(fromMonotonic >= ref)) return errorMs + drift;
    const halfWidth =
      (this.#high - this.#low) / 2 + this.#wanderPerMs * (fromMonotonic - ref) + jump;
    return (
      errorMs + Math.min(drift, halfWidth * elapsedMs + (this.#wanderPerMs * elapsedMs ** 2) / 2)
    );
  }

  /** Intersects every pair's rate interval at the newest time; false if empty. */
  #solve(): boolean {
    const points = this.#points;
    const ref = (points[points.length - 1] as RatePoint).monotonicAt;
    let low = -this.#maxDrift;
    let high = this.#maxDrift;
    for (let i = 0; i < points.length; i++) {
      const a = points[i] as RatePoint;
      for (let j = i + 1; j < points.length; j++) {
        const b = points[j] as RatePoint;
        const span = b.monotonicAt - a.monotonicAt;
        if (!(span > 0)) continue;
        // The span's average rate is within w·(mean of τ − s over the span) of the rate at τ.
        const widen = this.#wanderPerMs * (ref - (a.monotonicAt + b.monotonicAt) / 2);
        const change = b.offsetMs - a.offsetMs;
        // Offsets are epoch-scale doubles: their difference carries their rounding.
        const slack =
          a.errorMs + b.errorMs + (Math.abs(a.offsetMs) + Math.abs(b.offsetMs)) * EPOCH_ROUNDING;
        low = Math.max(low, (change - slack) / span - widen);
        high = Math.min(high, (change + slack) / span + widen);
      }
    }
    if (!(low <= high)) return false;
    this.#low = low;
    this.#high = high;
    this.#refAt = ref;
    return true;
  }
}
