/**
 * The φ accrual failure detector (Hayashibara, Défago, Yared, Katayama, 2004):
 * instead of a yes/no timeout, a suspicion level that grows the longer a
 * heartbeat is overdue relative to how regularly heartbeats have arrived.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { systemMonotonic } from '../clock/system.js';
import type { MonotonicSource } from '../clock/types.js';

/**
 * Options of {@link PhiAccrualDetector}.
 *
 * @example
 * ```ts
 * const manual = new ManualClock();
 * const detector = new PhiAccrualDetector({ threshold: 8, firstHeartbeatEstimateMs: 1000, monotonic: manual });
 * detector.heartbeat();
 * manual.advance(2000);
 * detector.phi();         //=> 4.49… (twice the expected second: unlikely, not yet suspect)
 * manual.advance(500);
 * detector.isAvailable(); //=> false (φ ≈ 9.0 ≥ 8)
 * ```
 */
export interface PhiAccrualOptions {
  /**
   * φ at or above which the peer is suspected. The default, 8, means a false suspicion about once
   * in 10⁸.
   *
   * @defaultValue `8`
   */
  readonly threshold?: number;
  /**
   * Inter-arrival times kept.
   *
   * @defaultValue `200`
   */
  readonly windowSize?: number;
  /**
   * Floor on the standard deviation (ms), so very regular heartbeats do not make φ jumpy.
   *
   * @defaultValue `50`
   */
  readonly minStdDevMs?: number;
  /**
   * Added to the mean (ms): pauses this long are expected and not suspicious.
   *
   * @defaultValue `0`
   */
  readonly acceptablePauseMs?: number;
  /**
   * Assumed interval before two heartbeats have arrived (ms).
   *
   * @defaultValue `1000`
   */
  readonly firstHeartbeatEstimateMs?: number;
  /**
   * The monotonic clock.
   *
   * @defaultValue `performance.now()` (`systemMonotonic`)
   */
  readonly monotonic?: MonotonicSource;
}

/**
 * φ accrual failure detector for one monitored peer. Call
 * {@link PhiAccrualDetector.heartbeat} on each heartbeat; {@link PhiAccrualDetector.phi}
 * is `−log10(P(a heartbeat comes even later than now))`, with inter-arrival
 * times modelled as a normal distribution fitted to the recent window. φ = 1
 * means a 10 % chance the peer is merely slow, φ = 3 a 0.1 % chance.
 *
 * @example
 * ```ts
 * const detector = new PhiAccrualDetector({ threshold: 8 });
 * socket.on('heartbeat', () => detector.heartbeat());
 * setInterval(() => { if (!detector.isAvailable()) markDown(peer); }, 1000);
 * ```
 */
export class PhiAccrualDetector {
  readonly #threshold: number;
  readonly #windowSize: number;
  readonly #minStdDevMs: number;
  readonly #acceptablePauseMs: number;
  readonly #mono: MonotonicSource;
  readonly #intervals: number[] = [];
  #sum = 0;
  #sumSquares = 0;
  #last: number | undefined;
  /** How many of the oldest window entries are the seed, not measurements. */
  #seeds = 0;

  /**
   * @param options - Threshold, window, floors and the monotonic clock.
   * @throws {@link InvalidArgumentError} When an option is negative, `windowSize` is not an integer ≥ 1,
   *   or `firstHeartbeatEstimateMs` is not > 0.
   */
  constructor(options: PhiAccrualOptions = {}) {
    this.#threshold = requireNonNegative('threshold', options.threshold ?? 8);
    const windowSize = options.windowSize ?? 200;
    if (!Number.isInteger(windowSize) || windowSize < 1) {
      throw new InvalidArgumentError('windowSize', windowSize, 'an integer ≥ 1');
    }
    this.#windowSize = windowSize;
    this.#minStdDevMs = requireNonNegative('minStdDevMs', options.minStdDevMs ?? 50);
    this.#acceptablePauseMs = requireNonNegative(
      'acceptablePauseMs',
      options.acceptablePauseMs ?? 0,
    );
    const first = options.firstHeartbeatEstimateMs ?? 1000;
    if (typeof first !== 'number' || !(first > 0) || !Number.isFinite(first)) {
      throw new InvalidArgumentError(
        'firstHeartbeatEstimateMs',
        first,
        'a finite number of ms > 0',
      );
    }
    this.#mono = options.monotonic ?? systemMonotonic;
    // Seed with a guess (σ = mean/4) so φ means something after the first heartbeat.
    this.#push(first - first / 4);
    this.#push(first + first / 4);
    this.#seeds = this.#intervals.length;
  }

  /**
   * Records a heartbeat arriving now.
   *
   * @example
   * ```ts
   * detector.heartbeat();
   * ```
   */
  heartbeat(): void {
    const now = this.#mono.now();
    if (this.#last !== undefined) {
      this.#push(now - this.#last);
      // Two real intervals describe the peer better than the guess: drop the seed.
      if (this.#seeds > 0 && this.#intervals.length - this.#seeds >= 2) {
        for (const seed of this.#intervals.splice(0, this.#seeds)) {
          this.#sum -= seed;
          this.#sumSquares -= seed * seed;
        }
        this.#seeds = 0;
      }
    }
    this.#last = now;
  }

  /**
   * The suspicion level now: 0 before the first heartbeat, then growing
   * without bound while no heartbeat arrives.
   *
   * @returns φ ≥ 0 (may be `Infinity` after a very long silence).
   *
   * @example
   * ```ts
   * metrics.gauge('phi', detector.phi());
   * ```
   */
  phi(): number {
    if (this.#last === undefined) return 0;
    const n = this.#intervals.length;
    const mean = this.#sum / n + this.#acceptablePauseMs;
    const variance = Math.max(0, this.#sumSquares / n - (this.#sum / n) ** 2);
    const stdDev = Math.max(Math.sqrt(variance), this.#minStdDevMs, 1e-9);
    const z = (this.#mono.now() - this.#last - mean) / stdDev;
    // φ = −log10(P(X > elapsed)) = −log10(½·erfc(z/√2)), computed in logs to avoid underflow.
    const phi = -(Math.log(0.5) + logErfc(z / Math.SQRT2)) / Math.LN10;
    return phi > 0 ? phi : 0;
  }

  /**
   * Whether the peer is trusted: `phi() < threshold`.
   *
   * @example
   * ```ts
   * if (!detector.isAvailable()) failover();
   * ```
   */
  isAvailable(): boolean {
    return this.phi() < this.#threshold;
  }

  /**
   * The fitted inter-arrival distribution (ms); until two real intervals have been
   * seen, it includes the seed built from `firstHeartbeatEstimateMs`.
   *
   * @example
   * ```ts
   * const { meanMs, stdDevMs } = detector.stats;
   * ```
   */
  get stats(): { readonly meanMs: number; readonly stdDevMs: number; readonly samples: number } {
    const n = this.#intervals.length;
    const meanMs = this.#sum / n;
    return {
      meanMs,
      stdDevMs: Math.sqrt(Math.max(0, this.#sumSquares / n - meanMs ** 2)),
      samples: n,
    };
  }

  #push(interval: number): void {
    this.#intervals.push(interval);
    this.#sum += interval;
    this.#sumSquares += interval * interval;
    if (this.#intervals.length > this.#windowSize) {
      const old = this.#intervals.shift() as number;
      this.#sum -= old;
      this.#sumSquares -= old * old;
      if (this.#seeds > 0) this.#seeds--;
    }
  }
}

/**
 * ln(erfc(x)), from the Chebyshev fit in Press et al., "Numerical Recipes"
 * §6.2 (fractional error < 1.2·10⁻⁷), kept in log form so large x does not
 * underflow to 0.
 * @internal
 */
export function logErfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z -
    1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t *
                      (0.27886807 +
                        t *
                          (-1.13520398 +
                            t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const logTail = Math.log(t) + poly;
  return x >= 0 ? logTail : Math.log(2 - Math.exp(logTail));
}
