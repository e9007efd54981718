/**
 * A time source driven by hand, for tests of code that consumes samples.
 *
 * @module
 */
import type {
  ProblemListener,
  SampleListener,
  SourceProblem,
  TimeSource,
} from '../sources/types.js';
import type { MonotonicSource, SyncSample } from '../clock/types.js';
import type { SimulatedClock } from './simulated-clock.js';

/**
 * A {@link TimeSource} whose samples you push.
 *
 * @example
 * ```ts
 * const source = manualSource();
 * const clock = new TrueClock({ source, monotonic: sim.monotonic, wall: sim.wall, scheduler: sim });
 * source.push({ monotonicAt: sim.monotonic.now(), offsetMs: sim.trueNow() - sim.monotonic.now(), errorMs: 1, source: 'test' });
 * ```
 */
export interface ManualSource extends TimeSource {
  /** Delivers a sample to every subscriber. */
  push(sample: SyncSample): void;
  /** Reports a problem to every subscriber. */
  report(problem: SourceProblem): void;
  /** The monotonic clock of the latest subscriber, if any. */
  readonly monotonic: MonotonicSource | undefined;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /** The monotonic readings `invalidate()` was called with (by a `TrueClock` on a disruption), oldest first. */
  readonly invalidations: readonly number[];
}

/**
 * Creates a {@link ManualSource}.
 *
 * @param pollIntervalMs - Advertised poll interval (drives `free-running`); default 1000.
 * @returns A source you push samples into.
 *
 * @example
 * ```ts
 * const source = manualSource(500);
 * ```
 */
export function manualSource(pollIntervalMs: number = 1000): ManualSource {
  const subscribers = new Map<symbol, { onSample: SampleListener; onProblem?: ProblemListener }>();
  let monotonic: MonotonicSource | undefined;
  let closed = false;
  const invalidations: number[] = [];
  return {
    pollIntervalMs,
    invalidate(monotonicAt) {
      invalidations.push(monotonicAt);
    },
    subscribe(onSample, mono, onProblem) {
      const key = Symbol('subscriber');
      subscribers.set(key, onProblem ? { onSample, onProblem } : { onSample });
      monotonic = mono;
      return () => subscribers.delete(key);
    },
    close() {
      closed = true;
      subscribers.clear();
      return Promise.resolve();
    },
    push(sample) {
      for (const s of [...subscribers.values()]) s.onSample(sample);
    },
    report(problem) {
      for (const s of [...subscribers.values()]) s.onProblem?.(problem);
    },
    get monotonic() {
      return monotonic;
    },
    get closed() {
      return closed;
    },
    get invalidations() {
      return invalidations.slice();
    },
  };
}

/**
 * Builds a sample that tells the truth about `sim` within `errorMs`: the actual
 * error is `errorFraction · errorMs` (in [−1, 1]).
 *
 * @param sim - The simulated machine: a `SimulatedClock` or a cluster node.
 * @param errorMs - The bound the sample claims.
 * @param errorFraction - Where in the bound the actual error lies; default 0.
 * @param source - The sample's source name; default `'simulated'`.
 * @returns A sample stamped at the simulated monotonic clock's current reading.
 *
 * @example
 * ```ts
 * source.push(truthfulSample(sim, 2, -1)); // claims ±2 ms, is 2 ms early
 * ```
 */
export function truthfulSample(
  sim: Pick<SimulatedClock, 'monotonic' | 'trueNow'>,
  errorMs: number,
  errorFraction: number = 0,
  source: string = 'simulated',
): SyncSample {
  const mono = sim.monotonic.now();
  return {
    monotonicAt: mono,
    offsetMs: sim.trueNow() + errorFraction * errorMs - mono,
    errorMs,
    source,
  };
}
