import { systemScheduler } from '../clock/system.js';
import type { Scheduler } from '../clock/types.js';

interface Timer {
  readonly id: number;
  readonly due: number;
  readonly callback: () => void;
}

/**
 * Timers that fire in virtual time, in due order (ties in creation order), when
 * the owning clock advances. Shared by SimulatedClock (and so ManualClock) and
 * the cluster simulator's nodes.
 * @internal
 */
export class VirtualTimers implements Scheduler {
  readonly #now: () => number;
  #nextId = 1;
  #timers: Timer[] = [];

  constructor(now: () => number) {
    this.#now = now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#timers.push({ id, due: this.#now() + delay, callback });
    this.#timers.sort((a, b) => a.due - b.due || a.id - b.id);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.#timers.length;
  }

  /** The due time of the next timer, if any. */
  nextDue(): number | undefined {
    return this.#timers[0]?.due;
  }

  /** Removes and runs the next timer if it is due at or before `time`. */
  runNextDue(time: number): boolean {
    const next = this.#timers[0];
    if (next === undefined || next.due > time) return false;
    this.#timers.shift();
    next.callback();
    return true;
  }
}

/**
 * Lets pending promise continuations (and their follow-ups) run: the step
 * between events of an `advanceAsync` or `runAsync`.
 * @internal
 */
export function flushContinuations(): Promise<void> {
  const immediate = systemScheduler.setImmediate;
  if (immediate) return new Promise((resolve) => immediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, 0));
}
