import type { MonotonicSource, WallSource } from '../sources/types.js';

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

  constructor(wall: WallSource, mono: MonotonicSource, maxDrift: number) {
    this.#wall = wall;
    this.#mono = mono;
    this.#maxDrift = maxDrift;
    // Two floored wall reads differ from true wall progress by under one resolution step each.
    this.#slackMs = 2 * (wall.resolutionMs ?? 1) + (mono.resolutionMs ?? 0);
    this.#wallAt = wall.now();
    this.#monoAt = mono.now();
  }

  /**
   * Returns the size (ms) of the disagreement since the last check when it exceeds
   * what drift and resolution allow, else 0; then restarts from now.
   */
  check(): number {
    const wall = this.#wall.now();
    const mono = this.#mono.now();
    const monoElapsed = mono - this.#monoAt;
    const discrepancy = Math.abs(wall - this.#wallAt - monoElapsed);
    this.#wallAt = wall;
    this.#monoAt = mono;
    return discrepancy > this.#maxDrift * Math.abs(monoElapsed) + this.#slackMs ? discrepancy : 0;
  }
}
