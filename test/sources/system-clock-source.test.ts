import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, TrueClock, systemClockSource } from '../../src/index.js';
import { SimulatedClock } from '../../src/testing/index.js';
import { trueClockOn } from '../support/clock.js';

function clockOn(sim: SimulatedClock, trusted: boolean) {
  const source = systemClockSource({ assumedErrorMs: 5, trusted, wall: sim.wall, scheduler: sim });
  return trueClockOn(sim, source, { watchdogIntervalMs: 0 });
}

describe('systemClockSource', () => {
  it('says honestly that its bound is an assumption unless trusted', async () => {
    const sim = new SimulatedClock({ wallOffsetMs: 3 });
    const untrusted = clockOn(sim, false);
    expect(untrusted.now().status).toBe('unsynchronized');
    expect(untrusted.sample?.assumed).toBe(true);
    const trusted = clockOn(sim, true);
    const r = trusted.now();
    expect(r.status).toBe('synchronized');
    // The OS clock is 3 ms off; the assumed ±5 ms (plus calibration error) covers it.
    expect(r.earliest).toBeLessThanOrEqual(sim.trueNow());
    expect(r.latest).toBeGreaterThanOrEqual(sim.trueNow());
    await untrusted.close();
    await trusted.close();
  });

  it('reports a wall step with a fresh calibration, and the clock follows the stepped clock', async () => {
    const sim = new SimulatedClock();
    const source = systemClockSource({
      assumedErrorMs: 5,
      trusted: true,
      wall: sim.wall,
      scheduler: sim,
    });
    const problems: string[] = [];
    const offsets: number[] = [];
    const stop = source.subscribe(
      (s) => offsets.push(s.offsetMs),
      sim.monotonic,
      (p) => problems.push(p.reason),
    );
    sim.advance(1500);
    sim.stepWall(3_600_000);
    sim.advance(1000);
    expect(problems).toEqual(['wall-step']);
    expect(offsets.at(-1)! - offsets[0]!).toBeCloseTo(3_600_000, 0);
    stop();
    expect(sim.pendingTimers).toBe(0);

    // Through a TrueClock: the watchdog marks the step disrupted, and the source's
    // next sample (taken after the step was seen) restores a synchronized bound.
    const clock = clockOn(sim, true);
    sim.advance(1500);
    sim.stepWall(-3_600_000);
    sim.advance(1000);
    expect(clock.status).toBe('disrupted');
    sim.advance(1000);
    expect(clock.status).toBe('synchronized');
    expect(clock.now().estimate - sim.trueNow()).toBeCloseTo(0, -1);
    await clock.close();
    expect(sim.pendingTimers).toBe(0);
  });

  it('rejects a negative assumed error', () => {
    expect(() => systemClockSource({ assumedErrorMs: -1 })).toThrow(InvalidArgumentError);
  });

  it('works on the real clocks', async () => {
    const clock = new TrueClock({
      source: systemClockSource({ assumedErrorMs: 10, trusted: true }),
    });
    await clock.ready({ timeoutMs: 10_000 });
    // The OS clock read during now() lies between these two readings, and the interval, built
    // from that clock with an assumed ±10 ms, must contain it however long the machine stalls.
    const before = Date.now();
    const r = clock.now();
    const after = Date.now();
    expect(r.earliest).toBeLessThanOrEqual(after);
    expect(r.latest).toBeGreaterThanOrEqual(before);
    // The assumption is in the bound; calibration adds the bracket of two clock reads, which a
    // loaded 2-core machine stretches to tens of ms (29 ms seen under load): a generous limit.
    expect(r.uncertaintyMs).toBeGreaterThanOrEqual(10);
    expect(r.uncertaintyMs).toBeLessThan(500);
    await clock.close();
  });
});
