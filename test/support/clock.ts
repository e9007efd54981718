/**
 * Building clocks for tests: a `TrueClock` on a `SimulatedClock`'s clocks and
 * timers (the construction nearly every test repeats), the usual rig of a
 * simulated machine, a manual source and that clock, running a promise to its
 * end in virtual time, and a monotonic clock that remembers its last reading.
 */
import { TrueClock, type TrueClockOptions } from '../../src/index.js';
import type { MonotonicSource, TimeSource } from '../../src/index.js';
import {
  SimulatedClock,
  manualSource,
  type ManualSource,
  type SimulatedClockOptions,
} from '../../src/testing/index.js';

/** `TrueClock` options other than the source and the clocks the simulation supplies. */
export type SimulatedTrueClockOptions = Omit<
  TrueClockOptions,
  'source' | 'monotonic' | 'wall' | 'scheduler'
>;

/**
 * `sim`'s monotonic and wall clocks and its timers, as the options of anything
 * that takes injected time (`TrueClock`, `queryNtp`, sources).
 *
 * @example
 * ```ts
 * await queryNtp({ host, transport: network, ...clocksOf(sim) });
 * ```
 */
export function clocksOf(sim: SimulatedClock): {
  monotonic: MonotonicSource;
  wall: SimulatedClock['wall'];
  scheduler: SimulatedClock;
} {
  return { monotonic: sim.monotonic, wall: sim.wall, scheduler: sim };
}

/**
 * A `TrueClock` fed by `source` that reads `sim`'s monotonic and wall clocks and
 * schedules on `sim`.
 *
 * @example
 * ```ts
 * const clock = trueClockOn(sim, source, { maxDriftPpm: 200 });
 * ```
 */
export function trueClockOn(
  sim: SimulatedClock,
  source: TimeSource,
  options: SimulatedTrueClockOptions = {},
): TrueClock {
  return new TrueClock({ ...options, source, ...clocksOf(sim) });
}

/**
 * A simulated machine, a manual source polled every `pollIntervalMs` (default
 * 1000), and a `TrueClock` on both.
 *
 * @example
 * ```ts
 * const { sim, source, clock } = simulatedRig({ sim: { driftPpm: 50 } });
 * source.push(truthfulSample(sim, 1));
 * ```
 */
export function simulatedRig(
  options: {
    readonly sim?: SimulatedClockOptions;
    readonly clock?: SimulatedTrueClockOptions;
    readonly pollIntervalMs?: number;
  } = {},
): { sim: SimulatedClock; source: ManualSource; clock: TrueClock } {
  const sim = new SimulatedClock(options.sim);
  const source = manualSource(options.pollIntervalMs ?? 1000);
  const clock = trueClockOn(sim, source, options.clock);
  return { sim, source, clock };
}

/**
 * Runs `p` while advancing `sim` in steps of `stepMs` (letting promise
 * continuations run between timers) until it settles or `limitMs` of virtual time
 * have passed, and returns it.
 *
 * @example
 * ```ts
 * const exchange = await settle(sim, queryNtp({ host, transport: network, ...clocksOf(sim) }));
 * ```
 */
export async function settle<T>(
  sim: SimulatedClock,
  p: Promise<T>,
  { stepMs = 10, limitMs = 60_000 }: { stepMs?: number; limitMs?: number } = {},
): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; !done && t < limitMs; t += stepMs) await sim.advanceAsync(stepMs);
  return p;
}

/**
 * `performance.now()` that remembers its last reading, to know the truth at that
 * instant.
 *
 * @example
 * ```ts
 * const monotonic = recordingMonotonic();
 * await queryNtp({ host, port, monotonic });
 * monotonic.last; // the reading taken for T4
 * ```
 */
export function recordingMonotonic(): MonotonicSource & { last: number } {
  const m = {
    last: 0,
    resolutionMs: 0.001,
    now: () => (m.last = performance.now()),
  };
  return m;
}
