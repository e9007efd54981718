import { describe, expect, it } from 'vitest';
import { SimulatedClock, manualSource, truthfulSample } from '../../src/testing/index.js';
import { trueClockOn } from '../support/clock.js';

describe('TrueClock.metrics()', () => {
  it('snapshots status, ε, the sample, the learned rate and counters by reason', () => {
    const sim = new SimulatedClock({ driftPpm: 40, trueTimeMs: Date.UTC(2026, 2, 15) });
    const source = manualSource(64_000);
    const clock = trueClockOn(sim, source, {
      watchdogIntervalMs: 0,
    });
    const empty = clock.metrics();
    expect(empty).toMatchObject({
      status: 'unsynchronized',
      uncertaintyMs: Infinity,
      sampleSource: '',
      learnedRatePpm: undefined,
      maxDriftPpm: 200,
      samplesAccepted: 0,
      disruptions: 0,
      problems: {},
    });
    expect(empty.sampleAgeMs).toBeNaN();
    for (let i = 0; i < 12; i++) {
      source.push(truthfulSample(sim, 0.2));
      sim.advance(64_000);
    }
    source.report({ source: 'test', reason: 'timeout', message: 'no reply' });
    source.report({ source: 'test', reason: 'timeout', message: 'no reply' });
    const m = clock.metrics();
    expect(m.status).toBe('synchronized');
    expect(m.samplesAccepted).toBe(12);
    expect(m.sampleAgeMs).toBeCloseTo(64_000 * (1 + 40e-6), 0);
    expect(m.sampleErrorMs).toBe(0.2);
    expect(m.sampleSource).toBe('simulated');
    expect(m.problems).toEqual({ timeout: 2 });
    // The oscillator runs 40 ppm fast: the learned bounds contain it, and are narrow.
    expect(m.learnedRatePpm?.low).toBeLessThanOrEqual(40);
    expect(m.learnedRatePpm?.high).toBeGreaterThanOrEqual(40);
    expect((m.learnedRatePpm?.high ?? Infinity) - (m.learnedRatePpm?.low ?? 0)).toBeLessThan(5);
    sim.suspend(5_000);
    expect(clock.metrics()).toMatchObject({ status: 'disrupted', disruptions: 1 });
    expect(clock.metrics().problems['disrupted']).toBe(1);
    void clock.close();
  });
});
