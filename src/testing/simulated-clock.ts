/**
 * A simulated machine clock in virtual time: true time, a monotonic clock that
 * drifts, pauses and stops during suspend, and a wall clock that steps.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { MonotonicSource, Scheduler, WallSource } from '../clock/types.js';
import { Oscillator, SIMULATION_START_MONOTONIC_MS, SIMULATION_START_MS } from './oscillator.js';
import { flushContinuations, VirtualTimers } from './virtual-timers.js';

/**
 * Options of {@link SimulatedClock}.
 *
 * @example
 * ```ts
 * const sim = new SimulatedClock({ wallOffsetMs: 120, driftPpm: -150 });
 * sim.wall.now() - sim.trueNow(); //=> 120
 * sim.advance(10_000);
 * sim.wall.now() - sim.trueNow(); //=> 118 (1.5 ms lost at −150 ppm, floored to the wall's 1 ms)
 * ```
 */
export interface SimulatedClockOptions {
  /**
   * True time at the start (epoch ms).
   *
   * @defaultValue `Date.UTC(2026, 0, 1)` (2026-01-01T00:00:00Z)
   */
  readonly trueTimeMs?: number;
  /**
   * Monotonic reading at the start.
   *
   * @defaultValue `1000`
   */
  readonly monotonicMs?: number;
  /**
   * Wall clock minus true time at the start (ms).
   *
   * @defaultValue `0`
   */
  readonly wallOffsetMs?: number;
  /**
   * Rate error of the local oscillator in ppm of its own elapsed time: for every 1 s the monotonic
   * clock counts, true time advances 1 s − driftPpm µs. Positive runs fast. The wall clock runs on
   * the same oscillator.
   *
   * @defaultValue `0`
   */
  readonly driftPpm?: number;
  /**
   * The wall clock floors to this step (ms), like `Date.now()`.
   *
   * @defaultValue `1`
   */
  readonly wallResolutionMs?: number;
  /**
   * The monotonic clock's advertised resolution (ms).
   *
   * @defaultValue `0`
   */
  readonly monotonicResolutionMs?: number;
}

/**
 * A machine's clocks in virtual time, for tests that must not sleep. Advance true
 * time with {@link SimulatedClock.advance}; timers scheduled on it (it is a
 * `Scheduler`) fire as its monotonic clock reaches them.
 *
 * @example
 * ```ts
 * const sim = new SimulatedClock({ wallOffsetMs: 250, driftPpm: 100 });
 * const clock = new TrueClock({ source, monotonic: sim.monotonic, wall: sim.wall, scheduler: sim });
 * sim.advance(1000);
 * sim.trueNow(); // the truth the clock's interval must contain
 * ```
 */
export class SimulatedClock implements Scheduler {
  /** The simulated monotonic clock. */
  readonly monotonic: MonotonicSource;
  /** The simulated wall clock. */
  readonly wall: WallSource;
  /** Its anchor is always now: true time and the monotonic reading. */
  readonly #oscillator: Oscillator;
  readonly #timers: VirtualTimers;

  /**
   * @param options - Start times, offset, drift and resolutions.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `driftPpm` is not within ±1,000,000 or a resolution is negative.
   */
  constructor(options: SimulatedClockOptions = {}) {
    const trueTimeMs = options.trueTimeMs ?? SIMULATION_START_MS;
    this.#oscillator = new Oscillator({
      trueTimeMs,
      monotonicMs: options.monotonicMs ?? SIMULATION_START_MONOTONIC_MS,
      wallMs: trueTimeMs + (options.wallOffsetMs ?? 0),
      driftPpm: options.driftPpm ?? 0,
      driftName: 'driftPpm',
      wallResolutionMs: options.wallResolutionMs,
    });
    const monoResolution = options.monotonicResolutionMs ?? 0;
    this.monotonic = { now: () => this.#mono, resolutionMs: monoResolution };
    this.wall = {
      now: () => this.#oscillator.wallAt(this.#mono),
      resolutionMs: this.#oscillator.wallResolutionMs,
    };
    this.#timers = new VirtualTimers(() => this.#mono);
  }

  get #trueTime(): number {
    return this.#oscillator.anchorTrueMs;
  }

  get #mono(): number {
    return this.#oscillator.anchorMonotonicMs;
  }

  /**
   * True time now (epoch ms): what an honest interval must contain.
   *
   * @example
   * ```ts
   * expect(clock.now().earliest).toBeLessThanOrEqual(sim.trueNow());
   * ```
   */
  trueNow(): number {
    return this.#trueTime;
  }

  /**
   * Advances true time by `ms`, firing due timers in order (each at its due
   * monotonic time).
   *
   * @param ms - True milliseconds, ≥ 0.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is negative or not finite.
   *
   * @example
   * ```ts
   * sim.advance(60_000); // a minute of virtual time, instantly
   * ```
   */
  advance(ms: number): void {
    const endTrue = this.#trueTime + SimulatedClock.#duration(ms);
    while (this.#runNextTimerBy(endTrue));
    this.#moveTo(endTrue);
  }

  /**
   * Like {@link SimulatedClock.advance}, but lets promise continuations run after
   * every timer, so async code that awaits timers makes progress in between.
   *
   * @param ms - True milliseconds, ≥ 0.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is negative or not finite.
   *
   * @example
   * ```ts
   * const p = clock.waitUntilAfter(t);
   * await sim.advanceAsync(100);
   * await p;
   * ```
   */
  async advanceAsync(ms: number): Promise<void> {
    const endTrue = this.#trueTime + SimulatedClock.#duration(ms);
    await flushContinuations();
    while (this.#runNextTimerBy(endTrue)) await flushContinuations();
    this.#moveTo(endTrue);
    await flushContinuations();
  }

  /**
   * The process is stopped for `ms` (GC pause, SIGSTOP): all clocks move on, and
   * timers that came due fire only when it resumes, late.
   *
   * @param ms - True milliseconds, ≥ 0.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is negative or not finite.
   *
   * @example
   * ```ts
   * sim.pause(15_000); // a 15 s stop-the-world pause
   * ```
   */
  pause(ms: number): void {
    this.#moveTo(this.#trueTime + SimulatedClock.#duration(ms));
    while (this.#timers.runNextDue(this.#mono));
  }

  /**
   * The machine is suspended (or the VM paused) for `ms`: true time and the wall
   * clock move on, the monotonic clock does not.
   *
   * @param ms - True milliseconds, ≥ 0.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `ms` is negative or not finite.
   *
   * @example
   * ```ts
   * sim.suspend(3_600_000); // laptop lid closed for an hour
   * ```
   */
  suspend(ms: number): void {
    const d = SimulatedClock.#duration(ms);
    this.#oscillator.anchor(this.#trueTime + d, this.#mono);
    this.#oscillator.stepWall(d);
  }

  /**
   * Steps the wall clock by `deltaMs` (either sign), as `settimeofday` would.
   *
   * @param deltaMs - The step (ms).
   *
   * @example
   * ```ts
   * sim.stepWall(-3_600_000); // an operator sets the clock back an hour
   * ```
   */
  stepWall(deltaMs: number): void {
    this.#oscillator.stepWall(deltaMs);
  }

  /**
   * Changes the oscillator's drift from now on.
   *
   * @param driftPpm - See {@link SimulatedClockOptions.driftPpm}.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When not within ±1,000,000.
   *
   * @example
   * ```ts
   * sim.setDriftPpm(-200);
   * ```
   */
  setDriftPpm(driftPpm: number): void {
    this.#oscillator.retune('driftPpm', driftPpm, this.#trueTime, this.#mono);
  }

  /**
   * Schedules `callback` when the monotonic clock has advanced `ms`.
   *
   * @example
   * ```ts
   * sim.setTimeout(() => console.log('fired'), 100);
   * ```
   */
  setTimeout(callback: () => void, ms: number): unknown {
    return this.#timers.setTimeout(callback, ms);
  }

  /**
   * Cancels a timer.
   *
   * @example
   * ```ts
   * sim.clearTimeout(sim.setTimeout(() => {}, 10));
   * ```
   */
  clearTimeout(handle: unknown): void {
    this.#timers.clearTimeout(handle);
  }

  /**
   * Number of pending timers.
   *
   * @example
   * ```ts
   * expect(sim.pendingTimers).toBe(0); // nothing leaked
   * ```
   */
  get pendingTimers(): number {
    return this.#timers.pending;
  }

  /** Moves to the next timer's due time and runs it, if it is due by true time `endTrue`. */
  #runNextTimerBy(endTrue: number): boolean {
    const due = this.#timers.nextDue();
    if (due === undefined) return false;
    if (due > this.#mono) {
      const trueAtDue = this.#oscillator.trueTimeAt(due);
      if (trueAtDue > endTrue) return false;
      this.#oscillator.anchor(trueAtDue, due);
    }
    return this.#timers.runNextDue(this.#mono);
  }

  #moveTo(trueTime: number): void {
    this.#oscillator.anchor(trueTime, this.#oscillator.monotonicAt(trueTime));
  }

  static #duration(ms: number): number {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new InvalidArgumentError('ms', ms, 'a finite duration ≥ 0');
    }
    return ms;
  }
}
