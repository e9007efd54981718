import type { MonotonicSource, WallSource } from '../clock/types.js';

/**
 * Compares wall-clock progress with monotonic progress. They advance together
 * (within the drift bound and the wall clock's resolution) unless the machine was
 * suspended, the VM was paused or migrated (the monotonic clock stops, the wall
 * clock does not), or someone stepped the wall clock. It cannot tell these apart,
 * so any disagreement counts as a disruption.
 * @internal
 */
export class Watchdog {
  readonly #wall: WallSource;
  readonly #mono: MonotonicSource;
  readonly #maxDrift: number;
  readonly #slackMs: number;
  #wallAt: number;
  #monoAt: number;
  /** Half the monotonic window the last wall read was bracketed in. */
  #halfWindowAt: number;

  constructor(wall: WallSource, mono: MonotonicSource, maxDrift: number) {
    this.#wall = wall;
    this.#mono = mono;
    this.#maxDrift = maxDrift;
    // Two floored wall reads differ from true wall progress by under one resolution step each.
    this.#slackMs = 2 * (wall.resolutionMs ?? 1) + (mono.resolutionMs ?? 0);
    const first = this.#bracketedRead();
    this.#wallAt = first.wall;
    this.#monoAt = first.mono;
    this.#halfWindowAt = first.halfWindow;
  }

  /**
   * Reads the wall clock between two monotonic reads, so a preemption between
   * reads widens the allowance instead of looking like a disruption. Keeps the
   * narrowest of up to three tries.
   */
  #bracketedRead(): { wall: number; mono: number; halfWindow: number } {
    let best = { wall: 0, mono: 0, halfWindow: Infinity };
    for (let i = 0; i < 3 && best.halfWindow > 0.05; i++) {
      const before = this.#mono.now();
      const wall = this.#wall.now();
      const after = this.#mono.now();
      const halfWindow = (after - before) / 2;
      if (halfWindow < best.halfWindow) best = { wall, mono: before + halfWindow, halfWindow };
    }
    return best;
  }

  /**
   * The cheap test `TrueClock.now()` runs on every call with the two readings it
   * already took (monotonic first, then wall): `true` when they agree with the
   * last check within what drift and resolution allow. `false` means "run
   * {@link Watchdog.check}": a real disagreement, a preemption between the two
   * reads (the bracketed check tells them apart), or a baseline older than
   * `maxAgeMs` (re-checking keeps the drift allowance small).
   */
  agrees(mono: number, wall: number, maxAgeMs: number): boolean {
    const monoElapsed = mono - this.#monoAt;
    if (!(monoElapsed <= maxAgeMs) || monoElapsed < 0) return false;
    const discrepancy = wall - this.#wallAt - monoElapsed;
    const allowed = this.#maxDrift * monoElapsed + this.#slackMs + this.#halfWindowAt;
    return discrepancy <= allowed && discrepancy >= -allowed;
  }

  /**
   * Returns the size (ms) of the disagreement since the last check when it exceeds
   * what drift, resolution and read timing allow, else 0; then restarts from now.
   */
  check(): number {
    const { wall, mono, halfWindow } = this.#bracketedRead();
    const monoElapsed = mono - this.#monoAt;
    const discrepancy = Math.abs(wall - this.#wallAt - monoElapsed);
    const allowed =
      this.#maxDrift * Math.abs(monoElapsed) + this.#slackMs + halfWindow + this.#halfWindowAt;
    this.#wallAt = wall;
    this.#monoAt = mono;
    this.#halfWindowAt = halfWindow;
    return discrepancy > allowed ? discrepancy : 0;
  }
}
