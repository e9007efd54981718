/**
 * The simplest test clock: a monotonic and a wall clock you set by hand.
 *
 * @module
 */
import type { MonotonicSource } from '../clock/types.js';
import { SimulatedClock } from './simulated-clock.js';

/**
 * Options of {@link ManualClock}.
 *
 * @example
 * ```ts
 * const manual = new ManualClock({ wallMs: Date.UTC(2030, 0, 1) });
 * manual.wall.now(); //=> 1893456000000 (2030-01-01T00:00:00Z)
 * manual.now();      //=> 0 (the monotonic reading)
 * ```
 */
export interface ManualClockOptions {
  /**
   * Monotonic reading at the start.
   *
   * @defaultValue `0`
   */
  readonly monotonicMs?: number;
  /**
   * Wall-clock reading at the start (epoch ms).
   *
   * @defaultValue `Date.UTC(2026, 0, 1)` (2026-01-01T00:00:00Z)
   */
  readonly wallMs?: number;
  /**
   * The monotonic clock's advertised resolution (ms).
   *
   * @defaultValue `0`
   */
  readonly resolutionMs?: number;
}

/**
 * A monotonic clock, a wall clock and timers that only move when told to. With
 * no drift, true time equals the wall clock until you step it. It is itself a
 * `MonotonicSource` and a `Scheduler`.
 *
 * @example
 * ```ts
 * const manual = new ManualClock();
 * const clock = new TrueClock({ source, monotonic: manual, wall: manual.wall, scheduler: manual });
 * manual.advance(250);
 * manual.stepWall(3_600_000); // the wall clock jumps an hour; the monotonic clock does not
 * ```
 */
export class ManualClock extends SimulatedClock implements MonotonicSource {
  /** The monotonic clock's advertised resolution (ms). */
  readonly resolutionMs: number;

  /**
   * @param options - Start readings and resolution.
   */
  constructor(options: ManualClockOptions = {}) {
    const monotonicMs = options.monotonicMs ?? 0;
    super({
      monotonicMs,
      ...(options.wallMs === undefined ? {} : { trueTimeMs: options.wallMs }),
      wallResolutionMs: 0,
      monotonicResolutionMs: options.resolutionMs ?? 0,
    });
    this.resolutionMs = options.resolutionMs ?? 0;
  }

  /**
   * The monotonic reading.
   *
   * @example
   * ```ts
   * manual.now(); // 0 until advanced
   * ```
   */
  now(): number {
    return this.monotonic.now();
  }

  /**
   * Sets the wall clock to `wallMs` (a step, not a passage of time).
   *
   * @param wallMs - The new wall reading (epoch ms).
   *
   * @example
   * ```ts
   * manual.setWall(Date.UTC(2030, 0, 1));
   * ```
   */
  setWall(wallMs: number): void {
    this.stepWall(wallMs - this.wall.now());
  }
}
