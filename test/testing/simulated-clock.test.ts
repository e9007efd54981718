import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import { ManualClock, SimulatedClock } from '../../src/testing/index.js';

describe('SimulatedClock', () => {
  it('drifts as specified: true elapsed = monotonic elapsed · (1 − drift)', () => {
    const sim = new SimulatedClock({ driftPpm: 100 });
    const m0 = sim.monotonic.now();
    const t0 = sim.trueNow();
    sim.advance(1_000_000);
    const monoElapsed = sim.monotonic.now() - m0;
    expect(sim.trueNow() - t0).toBeCloseTo(monoElapsed * (1 - 100e-6), 6);
  });

  it('fires timers in order at their monotonic due time, late after a pause, never during suspend', () => {
    const sim = new SimulatedClock();
    const fired: Array<[string, number]> = [];
    sim.setTimeout(() => fired.push(['b', sim.monotonic.now()]), 20);
    sim.setTimeout(() => fired.push(['a', sim.monotonic.now()]), 10);
    const cancelled = sim.setTimeout(() => fired.push(['x', 0]), 15);
    sim.clearTimeout(cancelled);
    sim.advance(25);
    expect(fired).toEqual([
      ['a', 1010],
      ['b', 1020],
    ]);
    sim.setTimeout(() => fired.push(['late', sim.monotonic.now()]), 5);
    sim.pause(100);
    expect(fired.at(-1)).toEqual(['late', 1125]);
    sim.setTimeout(() => fired.push(['after-suspend', sim.monotonic.now()]), 5);
    const wallBefore = sim.wall.now();
    sim.suspend(60_000);
    expect(fired.at(-1)?.[0]).toBe('late');
    expect(sim.wall.now() - wallBefore).toBe(60_000);
    expect(sim.monotonic.now()).toBe(1125);
    sim.advance(5);
    expect(fired.at(-1)?.[0]).toBe('after-suspend');
  });

  it('floors the wall clock to its resolution and steps it on request', () => {
    const sim = new SimulatedClock({ trueTimeMs: 1000.7, wallOffsetMs: 0 });
    expect(sim.wall.now()).toBe(1000);
    sim.stepWall(-500);
    expect(sim.wall.now()).toBe(500);
    expect(sim.trueNow()).toBe(1000.7);
  });

  it('rejects impossible drift and negative durations', () => {
    expect(() => new SimulatedClock({ driftPpm: 2e6 })).toThrow(InvalidArgumentError);
    expect(() => new SimulatedClock().advance(-1)).toThrow(InvalidArgumentError);
  });
});

describe('ManualClock', () => {
  it('moves only when told, with exact wall readings', () => {
    const manual = new ManualClock({ monotonicMs: 5, wallMs: 1_000_000.25 });
    expect(manual.now()).toBe(5);
    expect(manual.wall.now()).toBe(1_000_000.25);
    manual.advance(10);
    expect(manual.now()).toBe(15);
    expect(manual.wall.now()).toBe(1_000_010.25);
    manual.setWall(42);
    expect(manual.wall.now()).toBe(42);
    expect(manual.now()).toBe(15);
  });
});
