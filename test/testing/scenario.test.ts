import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import {
  SimulatedClock,
  applyScenario,
  applyScenarioAsync,
  checkIntervalsContainTruth,
  manualSource,
  scenarioClock,
  truthfulSample,
  type ClockScenario,
  type TruthReading,
} from '../../src/testing/index.js';
import { clockScenario, type ClockScenarioOptions } from '../../src/testing/fast-check/index.js';
import { fcParams, seed } from '../support/fc.js';
import { trueClockOn } from '../support/clock.js';

describe('clockScenario generates what it claims', () => {
  const options: ClockScenarioOptions = {
    maxOffsetMs: 500,
    maxDriftPpm: 100,
    durationMs: 30_000,
    maxSteps: 2,
    maxStepMs: 250,
    maxPauses: 4,
    maxPauseMs: 3_000,
    maxDriftChanges: 2,
  };

  it('stays within every bound, with events sorted inside the duration', () => {
    fc.assert(
      fc.property(clockScenario(options), (s) => {
        expect(Math.abs(s.offsetMs)).toBeLessThanOrEqual(500);
        expect(Math.abs(s.driftPpm)).toBeLessThanOrEqual(100);
        expect(s.durationMs).toBe(30_000);
        const count = (kind: string) => s.events.filter((e) => e.kind === kind).length;
        expect(count('step')).toBeLessThanOrEqual(2);
        expect(count('pause')).toBeLessThanOrEqual(4);
        expect(count('drift')).toBeLessThanOrEqual(2);
        s.events.forEach((e, i) => {
          expect(e.atMs).toBeGreaterThanOrEqual(0);
          expect(e.atMs).toBeLessThanOrEqual(30_000);
          if (i > 0) expect(e.atMs).toBeGreaterThanOrEqual(s.events[i - 1]!.atMs);
          if (e.kind === 'step') expect(Math.abs(e.deltaMs)).toBeLessThanOrEqual(250);
          if (e.kind === 'pause') {
            expect(e.durationMs).toBeGreaterThanOrEqual(0);
            expect(e.durationMs).toBeLessThanOrEqual(3_000);
          }
          if (e.kind === 'drift') expect(Math.abs(e.driftPpm)).toBeLessThanOrEqual(100);
        });
      }),
      fcParams(1_000),
    );
  });

  it('actually generates every kind of event, both signs, and empty scenarios', () => {
    const samples = fc.sample(clockScenario(options), { seed, numRuns: 500 });
    const kinds = new Set(samples.flatMap((s) => s.events.map((e) => e.kind)));
    expect([...kinds].sort()).toEqual(['drift', 'pause', 'step']);
    expect(samples.some((s) => s.offsetMs < -100) && samples.some((s) => s.offsetMs > 100)).toBe(
      true,
    );
    expect(samples.some((s) => s.driftPpm < -50) && samples.some((s) => s.driftPpm > 50)).toBe(
      true,
    );
    expect(samples.some((s) => s.events.length === 0)).toBe(true);
    expect(samples.some((s) => s.events.length >= 5)).toBe(true);
  });

  it('shrinks a failure to a small counterexample', () => {
    // "No scenario has a pause longer than 1 s" is false; the shrunk answer is one bare pause.
    const details = fc.check(
      fc.property(clockScenario(options), (s) =>
        s.events.every((e) => e.kind !== 'pause' || e.durationMs <= 1_000),
      ),
      { seed },
    );
    expect(details.failed).toBe(true);
    const [shrunk] = details.counterexample as [ClockScenario];
    expect(shrunk.offsetMs).toBe(0);
    expect(shrunk.driftPpm).toBe(0);
    expect(shrunk.events).toHaveLength(1);
    expect(shrunk.events[0]).toMatchObject({ kind: 'pause', atMs: 0 });
    expect((shrunk.events[0] as { durationMs: number }).durationMs).toBeLessThan(1_001);
  });

  it('rejects bad bounds with a typed error naming them', () => {
    expect(() => clockScenario({ maxOffsetMs: -1 })).toThrow(/maxOffsetMs/);
    expect(() => clockScenario({ maxSteps: 1.5 })).toThrow(/maxSteps/);
    expect(() => clockScenario({ maxDriftPpm: 1e6 })).toThrow(InvalidArgumentError);
  });
});

describe('applyScenario', () => {
  it('puts the SimulatedClock through exactly the scenario', () => {
    const scenario: ClockScenario = {
      offsetMs: 120,
      driftPpm: 100,
      durationMs: 10_000,
      events: [
        { atMs: 2_000, kind: 'step', deltaMs: -50 },
        { atMs: 4_000, kind: 'pause', durationMs: 3_000 },
        { atMs: 5_000, kind: 'drift', driftPpm: -100 }, // inside the pause: happens at 7 s
      ],
    };
    const sim = scenarioClock(scenario, { wallResolutionMs: 0 });
    const start = sim.trueNow();
    const mono0 = sim.monotonic.now();
    expect(sim.wall.now() - start).toBeCloseTo(120, 6);
    let fired = 0;
    sim.setTimeout(() => fired++, 4_500 / (1 - 100e-6)); // due inside the pause: fires late
    const seen: [number, string | undefined, number][] = [];
    applyScenario(sim, scenario, {
      everyMs: 2_500,
      observe: (s, e) => seen.push([s.trueNow() - start, e?.kind, fired]),
    });
    expect(seen.map(([t, kind]) => [Math.round(t), kind])).toEqual([
      [2_000, 'step'],
      [2_500, undefined],
      [7_000, 'pause'], // observed after it is applied, i.e. when it ends
      [7_000, 'drift'],
      [7_500, undefined],
      [10_000, undefined],
    ]);
    expect(seen[2]![2]).toBe(1); // the timer fired when the pause ended
    expect(sim.trueNow() - start).toBeCloseTo(10_000, 3);
    // Monotonic: 7 s at +100 ppm, 3 s at −100 ppm (in its own ms).
    expect(sim.monotonic.now() - mono0).toBeCloseTo(7_000 / (1 - 1e-4) + 3_000 / (1 + 1e-4), 3);
    // Wall: offset, the step, and the drift it accumulated.
    const wallOffset = sim.wall.now() - sim.trueNow();
    const driftGain = 7_000 / (1 - 1e-4) - 7_000 + (3_000 / (1 + 1e-4) - 3_000);
    expect(wallOffset).toBeCloseTo(120 - 50 + driftGain, 3);
  });

  it('async variant lets awaiting code run between timers', async () => {
    const scenario: ClockScenario = { offsetMs: 0, driftPpm: 0, durationMs: 1_000, events: [] };
    const sim = scenarioClock(scenario);
    let steps = 0;
    const loop = async () => {
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((resolve) => sim.setTimeout(resolve, 100));
        steps++;
      }
    };
    const done = loop();
    await applyScenarioAsync(sim, scenario);
    await done;
    expect(steps).toBe(5);
    expect(() => applyScenario(sim, scenario, { everyMs: 0 })).toThrow(/everyMs/);
  });

  it('TrueClock intervals contain true time through any scenario within the drift bound (property)', () => {
    fc.assert(
      fc.property(
        clockScenario({ maxDriftPpm: 200, durationMs: 120_000, maxPauseMs: 20_000 }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        (scenario, errorMs, fraction) => {
          const sim = scenarioClock(scenario);
          const source = manualSource(10_000);
          const clock = trueClockOn(sim, source, { maxDriftPpm: 200 });
          // A reference sample every 10 s of local time.
          const poll = (): void => {
            source.push(truthfulSample(sim, errorMs, fraction));
            sim.setTimeout(poll, 10_000);
          };
          poll();
          const readings: TruthReading[] = [];
          applyScenario(sim, scenario, {
            everyMs: 1_000,
            observe: (s, e) =>
              readings.push({
                reading: clock.now(),
                trueTime: s.trueNow(),
                label: e?.kind ?? 'tick',
              }),
          });
          const result = checkIntervalsContainTruth(readings);
          if (!result.ok) throw new Error(result.message);
          void clock.close();
        },
      ),
      fcParams(150),
    );
  });

  it('the same check catches a clock that assumes less drift than the scenario has', () => {
    const details = fc.check(
      fc.property(clockScenario({ maxDriftPpm: 200, maxSteps: 0 }), (scenario) => {
        const sim = scenarioClock(scenario, { wallResolutionMs: 0 });
        const source = manualSource(60_000);
        // Wrong: the oscillator drifts up to 200 ppm.
        const clock = trueClockOn(sim, source, { maxDriftPpm: 1 });
        source.push(truthfulSample(sim, 0.1));
        const readings: TruthReading[] = [];
        applyScenario(sim, scenario, {
          everyMs: 5_000,
          observe: (s) => readings.push({ reading: clock.now(), trueTime: s.trueNow() }),
        });
        void clock.close();
        return checkIntervalsContainTruth(readings).ok;
      }),
      { seed, numRuns: 200 },
    );
    expect(details.failed).toBe(true);
  });
});

describe('scenarioClock', () => {
  it('starts a SimulatedClock at the scenario offset and drift', () => {
    const sim = scenarioClock(
      { offsetMs: -250, driftPpm: 200, durationMs: 1, events: [] },
      { wallResolutionMs: 0 },
    );
    expect(sim).toBeInstanceOf(SimulatedClock);
    expect(sim.wall.now() - sim.trueNow()).toBeCloseTo(-250, 6);
    const m = sim.monotonic.now();
    sim.advance(1_000_000);
    expect(sim.monotonic.now() - m).toBeCloseTo(1_000_000 / (1 - 200e-6), 2);
  });
});
