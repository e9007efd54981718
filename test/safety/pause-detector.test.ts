import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClockUnsynchronizedError,
  InvalidArgumentError,
  Lease,
  PauseDetector,
  type PauseDetectorOptions,
  type PauseEvent,
  type Scheduler,
} from '../../src/index.js';
import { SimulatedClock, truthfulSample } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { simulatedRig } from '../support/clock.js';

function setup() {
  const { sim, source, clock } = simulatedRig({
    sim: { driftPpm: 50 },
    clock: { maxDriftPpm: 200, maxUncertaintyMs: Infinity, freeRunningAfterMs: Infinity },
  });
  source.push(truthfulSample(sim, 1));
  return { sim, source, clock };
}

/** A detector ticking every 100 ms with a 250 ms threshold, and the pauses it reports. */
function recordingDetector(options: PauseDetectorOptions) {
  const pauses: PauseEvent[] = [];
  const detector = new PauseDetector({
    intervalMs: 100,
    thresholdMs: 250,
    onPause: (p) => pauses.push(p),
    ...options,
  });
  return { detector, pauses };
}

describe('PauseDetector', () => {
  it('with SimulatedClock.pause: reports the length, invalidates leases, disrupts the clock', () => {
    const { sim, source, clock } = setup();
    const { detector, pauses } = recordingDetector({
      monotonic: sim.monotonic,
      scheduler: sim,
      clock,
    });
    const lease = Lease.acquire(clock, 60_000, { token: 7n });
    detector.register(lease);

    sim.advance(10_000); // normal running: ticks on time
    expect(pauses).toEqual([]);
    expect(lease.isValid()).toBe(true);

    sim.advance(30);
    sim.pause(15_000); // stop-the-world, well within the lease
    expect(pauses).toHaveLength(1);
    const pause = pauses[0]!;
    expect(pause.trigger).toBe('timer');
    // The stop is between what the tick saw and one interval more (monotonic ms; drift 50 ppm).
    const monoPause = 15_000 / (1 - 50e-6);
    expect(pause.durationMs).toBeLessThanOrEqual(monoPause + 1e-6);
    expect(pause.maxDurationMs).toBeGreaterThanOrEqual(monoPause - 1e-6);
    expect(pause.maxDurationMs - pause.durationMs).toBe(100);
    expect(detector.pauses).toBe(1);

    // The lease had 45 s left by the clock, but the pause ended it.
    expect(lease.isValid()).toBe(false);
    expect(lease.invalidReason).toMatch(/stopped for 14\d{3}\.\d–15\d{3}\.\d ms \(timer\)/);
    expect(() => lease.assertValid()).toThrow(/stopped/);

    // The clock is disrupted and widened until a sample from after the pause.
    const reading = clock.now();
    expect(reading.status).toBe('disrupted');
    expect(clock.lastProblem?.source).toBe('pause-detector');
    expect(() => clock.after(0)).toThrow(ClockUnsynchronizedError);
    expect(() => clock.after(0)).toThrow(/process was stopped/);
    expect(reading.uncertaintyMs).toBeGreaterThan(pause.maxDurationMs);
    sim.advance(1);
    source.push(truthfulSample(sim, 1));
    expect(clock.now().status).toBe('synchronized');
    expect(clock.after(0)).toBe(true);

    // New leases work again; old ones stay dead.
    expect(Lease.acquire(clock, 1000).isValid()).toBe(true);
    expect(lease.isValid()).toBe(false);
    detector.stop();
    void clock.close();
  });

  it('reports a pause exactly when it exceeds the threshold, with bounds that contain it (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 99.9, noNaN: true }), // where in the tick interval the stop begins
        fc.double({ min: 0, max: 5_000, noNaN: true }),
        (phase, pauseMs) => {
          // Tolerance 1e-3: SimulatedClock derives monotonic steps from epoch-ms doubles (ulp ~2.4e-4).
          const sim = new SimulatedClock();
          const { detector, pauses } = recordingDetector({
            monotonic: sim.monotonic,
            scheduler: sim,
          });
          sim.advance(1_000 + phase);
          sim.pause(pauseMs);
          sim.advance(1_000);
          if (pauseMs > 350) {
            expect(pauses).toHaveLength(1);
            expect(pauses[0]!.durationMs).toBeLessThanOrEqual(pauseMs + 1e-3);
            expect(pauses[0]!.maxDurationMs).toBeGreaterThanOrEqual(pauseMs - 1e-3);
          } else if (pauseMs <= 250) {
            expect(pauses).toEqual([]);
          }
          detector.stop();
          expect(sim.pendingTimers).toBe(0);
        },
      ),
      fcParams(500),
    );
  });

  it('check() notices an overdue timer at once, and the late tick does not report it twice', () => {
    let mono = 0;
    const timers: (() => void)[] = [];
    const scheduler: Scheduler = {
      setTimeout: (cb) => timers.push(cb),
      clearTimeout: () => undefined,
    };
    const { detector, pauses } = recordingDetector({ monotonic: { now: () => mono }, scheduler });
    mono = 300;
    expect(detector.check()).toBeUndefined(); // 200 ms late: within the threshold
    mono = 5_000;
    const seen = detector.check('before-write');
    expect(seen).toMatchObject({
      durationMs: 4_900,
      maxDurationMs: 5_000,
      trigger: 'before-write',
    });
    timers.shift()!(); // the overdue tick finally runs
    expect(pauses).toHaveLength(1);
  });

  it('registered targets are invalidated once; unregistered ones are left alone', () => {
    const sim = new SimulatedClock();
    const detector = new PauseDetector({ monotonic: sim.monotonic, scheduler: sim });
    const reasons: string[] = [];
    const a = { invalidate: (r: string) => reasons.push(`a: ${r}`) };
    const b = { invalidate: (r: string) => reasons.push(`b: ${r}`) };
    detector.register(a);
    const unregister = detector.register(b);
    unregister();
    sim.pause(1_000);
    sim.pause(1_000);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^a: the process was stopped/);
    expect(detector.pauses).toBe(2);
    expect(() => detector.register({} as never)).toThrow(InvalidArgumentError);
  });

  it('stop() cancels its timer; start() resumes without reporting the stopped time', () => {
    const sim = new SimulatedClock();
    const pauses: PauseEvent[] = [];
    const detector = new PauseDetector({
      monotonic: sim.monotonic,
      scheduler: sim,
      start: false,
      onPause: (p) => pauses.push(p),
    });
    expect(sim.pendingTimers).toBe(0);
    detector.start();
    expect(sim.pendingTimers).toBe(1);
    detector.stop();
    expect(sim.pendingTimers).toBe(0);
    sim.advance(10_000);
    expect(detector.check()).toBeUndefined();
    detector.start();
    sim.advance(1_000);
    expect(pauses).toEqual([]);
  });

  it('watchClock and onPause subscriptions can be removed', () => {
    const { sim, clock } = setup();
    const detector = new PauseDetector({ monotonic: sim.monotonic, scheduler: sim });
    const stopWatching = detector.watchClock(clock);
    const seen: number[] = [];
    const off = detector.onPause((p) => seen.push(p.durationMs));
    stopWatching();
    off();
    sim.pause(2_000);
    expect(detector.pauses).toBe(1);
    expect(seen).toEqual([]);
    expect(clock.now().status).toBe('synchronized');
    void clock.close();
  });

  it('rejects bad options with a typed error naming them', () => {
    expect(() => new PauseDetector({ intervalMs: 0, start: false })).toThrow(/intervalMs/);
    expect(() => new PauseDetector({ thresholdMs: -1, start: false })).toThrow(/thresholdMs/);
  });
});

describe('TrueClock.reportDisruption', () => {
  it('marks the clock disrupted and widens the bound until a later sample', () => {
    const { sim, source, clock } = setup();
    const before = clock.now().uncertaintyMs;
    clock.reportDisruption('test', 500, 'a hypervisor said so');
    const r = clock.now();
    expect(r.status).toBe('disrupted');
    expect(r.uncertaintyMs).toBeCloseTo(before + 500, 6);
    expect(clock.lastProblem).toMatchObject({ source: 'test', reason: 'disrupted' });
    expect(() => clock.before(Infinity)).toThrow(/a hypervisor said so/);
    // A sample stamped before the disruption does not end it.
    const stale = truthfulSample(sim, 1);
    sim.advance(10);
    clock.reportDisruption('test', 1, 'again');
    source.push(stale);
    expect(clock.now().status).toBe('disrupted');
    sim.advance(1);
    source.push(truthfulSample(sim, 1));
    expect(clock.now().status).toBe('synchronized');
    void clock.close();
  });

  it('on a clock without a sample it is remembered: evidence gathered before it is refused; a bad width is rejected', () => {
    const { sim, source, clock } = simulatedRig();
    const before = sim.monotonic.now();
    sim.advance(10);
    clock.reportDisruption('test', 10, 'x');
    expect(clock.now().status).toBe('unsynchronized');
    expect(clock.lastProblem).toMatchObject({ source: 'test', reason: 'disrupted' });
    // A reply whose request left before the disruption must not become the first sample.
    source.push({ ...truthfulSample(sim, 1), evidenceFrom: before });
    expect(clock.sample).toBeUndefined();
    expect(clock.lastProblem?.reason).toBe('stale-sample');
    sim.advance(1);
    source.push(truthfulSample(sim, 1));
    expect(clock.now().status).toBe('synchronized');
    expect(() => clock.reportDisruption('test', 0, 'x')).toThrow(InvalidArgumentError);
    expect(() => clock.reportDisruption('test', NaN, 'x')).toThrow(/widenMs/);
    void clock.close();
  });
});
