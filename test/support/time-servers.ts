/**
 * Server clocks for the time-exchange tests, in a SimulatedClock's virtual
 * universe: a real TrueClock synced by hand, and a fake `{ now() }` clock whose
 * error and claimed ε the test chooses.
 */
import { TrueClock, type TimeReading, type TimeServerClock } from '../../src/index.js';
import { manualSource, truthfulSample, type SimulatedClock } from '../../src/testing/index.js';

/**
 * A server TrueClock in the same virtual universe, synced by `sync()` to within
 * `errorMs` (the sample's error is `fraction · errorMs`). Close it when done.
 */
export function syncedServerClock(
  sim: SimulatedClock,
  errorMs = 1,
  fraction = 0,
): { clock: TrueClock; sync: () => void } {
  const source = manualSource(1000);
  const clock = new TrueClock({
    source,
    monotonic: sim.monotonic,
    wall: sim.wall,
    scheduler: sim,
    watchdogIntervalMs: 0,
  });
  return { clock, sync: () => source.push(truthfulSample(sim, errorMs, fraction)) };
}

/** A fake server clock: truth + `errorMs()`, claiming ±`epsilonMs`, with the given status. */
export function fakeServerClock(
  sim: SimulatedClock,
  epsilonMs: number,
  errorMs: () => number,
  status: TimeReading['status'] = 'synchronized',
): TimeServerClock {
  return {
    now() {
      const estimate = sim.trueNow() + errorMs();
      return {
        estimate,
        earliest: estimate - epsilonMs,
        latest: estimate + epsilonMs,
        uncertaintyMs: epsilonMs,
        status,
      };
    },
  };
}
