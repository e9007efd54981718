/**
 * Random clock scenarios: a fast-check arbitrary of {@link ClockScenario}s that
 * shrinks towards a perfect clock and no events. Play them with `scenarioClock`
 * and `applyScenario` from `chronobound/testing`.
 *
 * @module
 */
import fc from 'fast-check';
import { InvalidArgumentError } from '../../errors.js';
import type { ClockScenario } from '../scenario.js';

/**
 * Options of {@link clockScenario}.
 *
 * @example
 * ```ts
 * fc.assert(
 *   fc.property(clockScenario({ maxDriftPpm: 200, maxSteps: 0, maxPauses: 2 }), (s) =>
 *     s.events.every((e) => e.kind !== 'step') && s.events.filter((e) => e.kind === 'pause').length <= 2,
 *   ),
 * ); // passes: no wall-clock steps, at most two pauses
 * ```
 */
export interface ClockScenarioOptions {
  /**
   * Largest |initial wall offset| (ms).
   *
   * @defaultValue `1000`
   */
  readonly maxOffsetMs?: number;
  /**
   * Largest |drift| (ppm), initially and after changes.
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * Scenario length (true ms).
   *
   * @defaultValue `60_000`
   */
  readonly durationMs?: number;
  /**
   * Most wall-clock steps.
   *
   * @defaultValue `3`
   */
  readonly maxSteps?: number;
  /**
   * Largest |step| (ms).
   *
   * @defaultValue `1000`
   */
  readonly maxStepMs?: number;
  /**
   * Most pauses.
   *
   * @defaultValue `3`
   */
  readonly maxPauses?: number;
  /**
   * Longest pause (ms).
   *
   * @defaultValue `10_000`
   */
  readonly maxPauseMs?: number;
  /**
   * Most drift changes.
   *
   * @defaultValue `1`
   */
  readonly maxDriftChanges?: number;
}

/**
 * A fast-check arbitrary of {@link ClockScenario}s. Everything it generates is
 * within the bounds given; it shrinks towards offset 0, drift 0 and fewer,
 * smaller events, so a failing property ends on a small counterexample.
 *
 * @param options - The bounds.
 * @returns The arbitrary.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a bound is negative, a count is not an integer, or
 *   `maxDriftPpm` is 1,000,000 or more.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(clockScenario({ maxDriftPpm: 200 }), (scenario) => {
 *   const sim = scenarioClock(scenario);
 *   // ... build a TrueClock on sim, then:
 *   applyScenario(sim, scenario, { everyMs: 1000, observe: () => check(clock.now(), sim.trueNow()) });
 * }));
 * ```
 */
export function clockScenario(options: ClockScenarioOptions = {}): fc.Arbitrary<ClockScenario> {
  const maxOffsetMs = bound('maxOffsetMs', options.maxOffsetMs ?? 1000);
  const maxDriftPpm = bound('maxDriftPpm', options.maxDriftPpm ?? 200);
  if (maxDriftPpm >= 1e6) {
    throw new InvalidArgumentError('maxDriftPpm', maxDriftPpm, 'a number below 1,000,000');
  }
  const durationMs = bound('durationMs', options.durationMs ?? 60_000);
  const maxStepMs = bound('maxStepMs', options.maxStepMs ?? 1000);
  const maxPauseMs = bound('maxPauseMs', options.maxPauseMs ?? 10_000);
  const maxSteps = count('maxSteps', options.maxSteps ?? 3);
  const maxPauses = count('maxPauses', options.maxPauses ?? 3);
  const maxDriftChanges = count('maxDriftChanges', options.maxDriftChanges ?? 1);

  const at = fc.double({ min: 0, max: durationMs, noNaN: true });
  const symmetric = (max: number): fc.Arbitrary<number> =>
    fc.double({ min: -max, max, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x));
  const step = fc.record({
    atMs: at,
    kind: fc.constant('step' as const),
    deltaMs: symmetric(maxStepMs),
  });
  const pause = fc.record({
    atMs: at,
    kind: fc.constant('pause' as const),
    durationMs: fc.double({ min: 0, max: maxPauseMs, noNaN: true }),
  });
  const drift = fc.record({
    atMs: at,
    kind: fc.constant('drift' as const),
    driftPpm: symmetric(maxDriftPpm),
  });
  return fc
    .record({
      offsetMs: symmetric(maxOffsetMs),
      driftPpm: symmetric(maxDriftPpm),
      steps: fc.array(step, { maxLength: maxSteps }),
      pauses: fc.array(pause, { maxLength: maxPauses }),
      drifts: fc.array(drift, { maxLength: maxDriftChanges }),
    })
    .map(({ offsetMs, driftPpm, steps, pauses, drifts }) => ({
      offsetMs,
      driftPpm,
      durationMs,
      events: [...steps, ...pauses, ...drifts].sort((a, b) => a.atMs - b.atMs),
    }));
}

function bound(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number ≥ 0');
  }
  return value;
}

function count(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(name, value, 'an integer ≥ 0');
  }
  return value;
}
