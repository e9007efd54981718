/**
 * The oscillator model shared by `SimulatedClock` and the cluster simulator's
 * nodes: a monotonic clock that counts at a drifting rate against true time, and
 * a wall clock that runs on the same oscillator with its own offset and steps,
 * floored to its resolution like `Date.now()`.
 *
 * @module
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * 2026-01-01T00:00:00Z: a fixed, recognisable start for simulations.
 * @internal
 */
export const SIMULATION_START_MS: number = Date.UTC(2026, 0, 1);

/**
 * The monotonic reading a simulated machine starts at unless told otherwise.
 * @internal
 */
export const SIMULATION_START_MONOTONIC_MS = 1000;

/**
 * Where an {@link Oscillator} starts.
 * @internal
 */
export interface OscillatorStart {
  /** True time at the start, on the owner's time line. */
  readonly trueTimeMs: number;
  /** Monotonic reading at the start. */
  readonly monotonicMs: number;
  /** The exact wall reading at the start (epoch ms): true time plus the wall offset. */
  readonly wallMs: number;
  /** Rate error (ppm); see `SimulatedClockOptions.driftPpm`. */
  readonly driftPpm: number;
  /** The option name a bad `driftPpm` is reported under. */
  readonly driftName: string;
  /** The wall floors to this step (ms); 0 for exact readings. Checked ≥ 0. */
  readonly wallResolutionMs: number | undefined;
}

/**
 * Monotonic milliseconds per true millisecond for a drift of `driftPpm`, so that
 * true elapsed = monotonic elapsed · (1 − drift).
 *
 * @param name - The option name to report a bad value under.
 * @param driftPpm - Rate error of the oscillator (ppm), positive runs fast.
 * @returns The rate.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `driftPpm` is not a number within ±1,000,000.
 *
 * @example
 * ```ts
 * rateFor('driftPpm', 100); // 1.000100010001: 100 ppm fast
 * ```
 * @internal
 */
export function rateFor(name: string, driftPpm: number): number {
  if (typeof driftPpm !== 'number' || !(Math.abs(driftPpm) < 1e6)) {
    throw new InvalidArgumentError(name, driftPpm, 'a number within ±1,000,000 ppm');
  }
  return 1 / (1 - driftPpm * 1e-6);
}

/**
 * A drifting oscillator and the wall clock it drives. It maps true time to
 * monotonic readings from an anchor (a true time and the monotonic reading
 * there); moving the anchor, changing the rate or stepping the wall is up to
 * its owner, who decides what happens during pauses and suspends.
 *
 * @example
 * ```ts
 * const osc = new Oscillator({ trueTimeMs: 0, monotonicMs: 1000, wallMs: 5000, driftPpm: 0, driftName: 'driftPpm', wallResolutionMs: 1 });
 * osc.monotonicAt(250); // 1250
 * osc.wallAt(1250.7); // 5250
 * ```
 * @internal
 */
export class Oscillator {
  /** The wall clock's resolution (ms). */
  readonly wallResolutionMs: number;
  #anchorTrue: number;
  #anchorMono: number;
  #rate: number;
  /** Wall reading minus monotonic reading, before flooring. */
  #wallBase: number;

  /**
   * @param start - Anchor, wall reading, drift and resolution at the start.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the drift is out of range or the resolution is negative.
   */
  constructor(start: OscillatorStart) {
    this.#anchorTrue = start.trueTimeMs;
    this.#anchorMono = start.monotonicMs;
    this.#wallBase = start.wallMs - start.monotonicMs;
    this.#rate = rateFor(start.driftName, start.driftPpm);
    const resolution = start.wallResolutionMs ?? 1;
    if (!(resolution >= 0)) {
      throw new InvalidArgumentError('wallResolutionMs', start.wallResolutionMs, 'a number ≥ 0');
    }
    this.wallResolutionMs = resolution;
  }

  /** The true time of the anchor. */
  get anchorTrueMs(): number {
    return this.#anchorTrue;
  }

  /** The monotonic reading at the anchor. */
  get anchorMonotonicMs(): number {
    return this.#anchorMono;
  }

  /** The monotonic reading at true time `trueTime`, at the current rate. */
  monotonicAt(trueTime: number): number {
    return this.#anchorMono + (trueTime - this.#anchorTrue) * this.#rate;
  }

  /** The true time at which the monotonic clock reads `monotonic`, at the current rate. */
  trueTimeAt(monotonic: number): number {
    return this.#anchorTrue + (monotonic - this.#anchorMono) / this.#rate;
  }

  /** Moves the anchor: later readings count from `monotonic` at `trueTime`. */
  anchor(trueTime: number, monotonic: number): void {
    this.#anchorTrue = trueTime;
    this.#anchorMono = monotonic;
  }

  /**
   * Changes the drift from the anchor (`trueTime`, `monotonic`) on.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `driftPpm` is out of range (nothing changes then).
   */
  retune(name: string, driftPpm: number, trueTime: number, monotonic: number): void {
    const rate = rateFor(name, driftPpm);
    this.anchor(trueTime, monotonic);
    this.#rate = rate;
  }

  /** Steps the wall clock by `deltaMs` (either sign). */
  stepWall(deltaMs: number): void {
    this.#wallBase += deltaMs;
  }

  /** The wall reading when the monotonic clock reads `monotonic`, floored to the resolution. */
  wallAt(monotonic: number): number {
    const exact = monotonic + this.#wallBase;
    return this.wallResolutionMs > 0
      ? Math.floor(exact / this.wallResolutionMs) * this.wallResolutionMs
      : exact;
  }
}
