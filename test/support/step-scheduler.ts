/**
 * A scheduler whose timers run only when told, so that each `step()` is exactly
 * one poll of a source that schedules itself (as `clockboundSource` does).
 */
import type { Scheduler } from '../../src/index.js';

/**
 * Holds every timer until {@link StepScheduler.step}.
 *
 * @example
 * ```ts
 * const scheduler = new StepScheduler();
 * const source = clockboundSource({ path, scheduler });
 * source.subscribe(onSample, systemMonotonic);
 * scheduler.step(); // one poll of the segment
 * ```
 */
export class StepScheduler implements Scheduler {
  #pending = new Map<number, () => void>();
  #next = 1;
  setTimeout(callback: () => void): unknown {
    const id = this.#next++;
    this.#pending.set(id, callback);
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }
  /** Runs the pending timers (one poll); timers they set wait for the next step. */
  step(): void {
    const due = [...this.#pending.values()];
    this.#pending.clear();
    for (const run of due) run();
  }
}
