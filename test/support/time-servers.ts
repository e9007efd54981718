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

/** A well-formed request nonce (32 lowercase hex digits). */
export const TEST_NONCE = '0123456789abcdef0123456789abcdef';

/**
 * Queries every time server must refuse with 400 (the Node endpoint and the
 * Fetch-API handler alike): `[what, query string]`.
 */
export const BAD_TIME_QUERIES: readonly (readonly [string, string])[] = [
  ['no query', ''],
  ['an empty query', '?'],
  ['an empty nonce', '?nonce='],
  ['a short nonce', '?nonce=abc'],
  ['an uppercase nonce', `?nonce=${TEST_NONCE.toUpperCase()}`],
  ['33 digits', `?nonce=${TEST_NONCE}0`],
  ['a non-hex nonce', `?nonce=${'g'.repeat(32)}`],
  ['an extra parameter after', `?nonce=${TEST_NONCE}&x=1`],
  ['an extra parameter before', `?x=1&nonce=${TEST_NONCE}`],
  ['two nonces', `?nonce=${TEST_NONCE}&nonce=${TEST_NONCE}`],
  ['an encoded nonce', `?nonce=%30${TEST_NONCE.slice(1)}`],
  ['another parameter name', `?n=${TEST_NONCE}`],
  ['a script', `?nonce=<script>alert(1)</script>`],
  ['an 8 kB nonce', `?nonce=${'a'.repeat(8192)}`],
];
