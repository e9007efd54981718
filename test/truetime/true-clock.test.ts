import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AbortError,
  ClockUnsynchronizedError,
  CommitWaitTimeoutError,
  InvalidArgumentError,
  TrueClock,
  WaitTimeoutError,
  isChronoboundError,
  type ClockStatus,
  type TimeReading,
} from '../../src/index.js';
import {
  ManualClock,
  SimulatedClock,
  manualSource,
  truthfulSample,
} from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';

const MAX_DRIFT_PPM = 200;

function setup(
  options: {
    driftPpm?: number;
    wallOffsetMs?: number;
    maxUncertaintyMs?: number;
    freeRunningAfterMs?: number;
    resolutionMs?: number;
  } = {},
) {
  const sim = new SimulatedClock({
    driftPpm: options.driftPpm ?? 0,
    wallOffsetMs: options.wallOffsetMs ?? 0,
    monotonicResolutionMs: options.resolutionMs ?? 0,
  });
  const source = manualSource(1000);
  const clock = new TrueClock({
    source,
    maxDriftPpm: MAX_DRIFT_PPM,
    // The drift-only formula; the learned frequency is tested in frequency.test.ts.
    maxWanderPpmPerHour: Infinity,
    maxUncertaintyMs: options.maxUncertaintyMs ?? Infinity,
    ...(options.freeRunningAfterMs === undefined
      ? {}
      : { freeRunningAfterMs: options.freeRunningAfterMs }),
    monotonic: sim.monotonic,
    wall: sim.wall,
    scheduler: sim,
  });
  return { sim, source, clock };
}

type Op =
  | { kind: 'advance'; ms: number }
  | { kind: 'sample'; errorMs: number; fraction: number }
  | { kind: 'probe'; deltaMs: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('advance' as const),
    ms: fc.double({ min: 0, max: 600_000, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('sample' as const),
    errorMs: fc.double({ min: 0, max: 100, noNaN: true }),
    fraction: fc.double({ min: -1, max: 1, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('probe' as const),
    deltaMs: fc.double({ min: -200, max: 200, noNaN: true }),
  }),
);

describe('TrueClock interval', () => {
  it('contains true time for any sample error, drift within the bound, elapsed time and sample sequence; width is exactly the formula', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -MAX_DRIFT_PPM, max: MAX_DRIFT_PPM, noNaN: true }),
        fc.double({ min: -5_000, max: 5_000, noNaN: true }),
        fc.double({ min: 0, max: 0.01, noNaN: true }),
        fc.array(opArb, { minLength: 1, maxLength: 25 }),
        (driftPpm, wallOffsetMs, resolutionMs, ops) => {
          const { sim, source, clock } = setup({ driftPpm, wallOffsetMs, resolutionMs });
          for (const op of ops) {
            if (op.kind === 'advance') sim.advance(op.ms);
            else if (op.kind === 'sample')
              source.push(truthfulSample(sim, op.errorMs, op.fraction));
            const r = clock.now();
            const truth = sim.trueNow();
            if (clock.sample === undefined) {
              expect(r.status).toBe('unsynchronized');
              expect(r.uncertaintyMs).toBe(Infinity);
              continue;
            }
            expect(r.earliest).toBeLessThanOrEqual(truth);
            expect(r.latest).toBeGreaterThanOrEqual(truth);
            // ε = errorMs + maxDrift·Δ + granularity, where granularity is the
            // monotonic resolution plus the double-rounding guard |estimate|·2⁻⁴⁹.
            const s = clock.sample;
            const mono = sim.monotonic.now();
            const expected =
              s.errorMs +
              MAX_DRIFT_PPM * 1e-6 * Math.abs(mono - s.monotonicAt) +
              resolutionMs +
              Math.abs(r.estimate) * 2 ** -49;
            expect(r.uncertaintyMs).toBeCloseTo(expected, 9);
            // The endpoints are epoch-ms doubles: their difference is exact only to a few ulps (~0.25 µs each).
            expect(Math.abs(r.latest - r.earliest - 2 * expected)).toBeLessThan(1e-3);
            if (op.kind === 'probe') {
              const t = truth + op.deltaMs;
              if (clock.after(t)) expect(truth).toBeGreaterThan(t);
              if (clock.before(t)) expect(truth).toBeLessThan(t);
            }
          }
          void clock.close();
        },
      ),
      fcParams(10_000),
    );
  });

  it('after(t) and before(t) decide as soon as the interval excludes t', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 2));
    const truth = sim.trueNow();
    expect(clock.after(truth - 2.01)).toBe(true);
    expect(clock.after(truth - 1.99)).toBe(false);
    expect(clock.before(truth + 2.01)).toBe(true);
    expect(clock.before(truth + 1.99)).toBe(false);
  });

  it('keeps the sample whose bound is tightest now, and reports samples that contradict it', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    sim.advance(1000);
    source.push(truthfulSample(sim, 5)); // aged first sample: 1 + 0.2 ms < 5 ms
    expect(clock.sample?.errorMs).toBe(1);
    sim.advance(60_000); // aged first sample: 1 + 12.2 ms > 5 ms
    source.push(truthfulSample(sim, 5));
    expect(clock.sample?.errorMs).toBe(5);
    const mono = sim.monotonic.now();
    source.push({
      monotonicAt: mono,
      offsetMs: sim.trueNow() - mono + 100,
      errorMs: 1,
      source: 'liar',
    });
    expect(clock.lastProblem?.reason).toBe('inconsistent-sample');
    expect(clock.sample?.source).toBe('liar');
  });

  it('rejects malformed samples without losing the current bound', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    const before = clock.sample;
    source.push({ monotonicAt: NaN, offsetMs: 0, errorMs: 1, source: 'bad' });
    source.push({ monotonicAt: sim.monotonic.now(), offsetMs: 0, errorMs: -1, source: 'bad' });
    source.push({
      monotonicAt: sim.monotonic.now() + 1e6,
      offsetMs: 0,
      errorMs: 1,
      source: 'future',
    });
    expect(clock.sample).toBe(before);
    expect(clock.lastProblem?.reason).toBe('invalid-sample');
  });

  it('validates its options with typed errors', () => {
    const source = manualSource();
    expect(() => new TrueClock({ source, maxDriftPpm: -1 })).toThrow(InvalidArgumentError);
    expect(() => new TrueClock({ source, maxUncertaintyMs: NaN })).toThrow(/maxUncertaintyMs/);
    expect(() => new TrueClock({} as never)).toThrow(InvalidArgumentError);
  });
});

describe('TrueClock statuses', () => {
  it('moves unsynchronized → synchronized → free-running → unsynchronized → synchronized, and reports each change', () => {
    const { sim, source, clock } = setup({ maxUncertaintyMs: 10, freeRunningAfterMs: 3000 });
    const seen: Array<[ClockStatus, ClockStatus]> = [];
    clock.onStatusChange((status, previous) => seen.push([status, previous]));
    expect(clock.status).toBe('unsynchronized');
    source.push(truthfulSample(sim, 1));
    expect(clock.status).toBe('synchronized');
    sim.advance(3001);
    expect(clock.status).toBe('free-running');
    // ε = 1 + 200 ppm · Δ exceeds 10 ms after 45 s.
    sim.advance(45_000);
    expect(clock.now().uncertaintyMs).toBeGreaterThan(10);
    expect(clock.status).toBe('unsynchronized');
    source.push(truthfulSample(sim, 1));
    expect(clock.status).toBe('synchronized');
    expect(seen).toEqual([
      ['synchronized', 'unsynchronized'],
      ['free-running', 'synchronized'],
      ['unsynchronized', 'free-running'],
      ['synchronized', 'unsynchronized'],
    ]);
  });

  it('stays unsynchronized on assumed bounds, and prefers a measured sample', () => {
    const { sim, source, clock } = setup();
    source.push({ ...truthfulSample(sim, 1), assumed: true });
    expect(clock.status).toBe('unsynchronized');
    expect(() => clock.after(0)).toThrow(ClockUnsynchronizedError);
    source.push(truthfulSample(sim, 20));
    expect(clock.status).toBe('synchronized');
    source.push({ ...truthfulSample(sim, 1), assumed: true });
    expect(clock.sample?.assumed).toBeUndefined();
  });
});

describe('TrueClock watchdog', () => {
  for (const stepMs of [3_600_000, -3_600_000]) {
    it(`marks a wall step of ${stepMs / 3_600_000} h disrupted, widens the bound, fails closed, and recovers on the next sample`, () => {
      const { sim, source, clock } = setup();
      source.push(truthfulSample(sim, 1));
      sim.advance(500);
      sim.stepWall(stepMs);
      sim.advance(1000); // the watchdog timer runs
      const r = clock.now();
      expect(r.status).toBe('disrupted');
      expect(r.uncertaintyMs).toBeGreaterThanOrEqual(3_600_000);
      expect(() => clock.after(0)).toThrow(ClockUnsynchronizedError);
      expect(() => clock.after(0)).toThrow(/disrupted/);
      source.push(truthfulSample(sim, 1));
      expect(clock.status).toBe('synchronized');
      expect(clock.now().uncertaintyMs).toBeLessThan(2);
    });
  }

  it('property: on a ManualClock (wall resolution 0) no amount of plain waiting looks like a disruption', () => {
    // Epoch-ms doubles round, and a ManualClock's wall clock has no resolution to absorb it: a
    // watchdog without an allowance for rounding would see "0.000 ms" of disagreement.
    fc.assert(
      fc.property(
        fc.double({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2200, 0, 1), noNaN: true }),
        fc.array(fc.double({ min: 0.001, max: 100_000, noNaN: true }), { maxLength: 20 }),
        fc.constantFrom(0, 1, 200),
        (wallMs, waits, maxDriftPpm) => {
          const manual = new ManualClock({ wallMs });
          const source = manualSource(1000);
          const clock = new TrueClock({
            source,
            monotonic: manual,
            wall: manual.wall,
            scheduler: manual,
            maxUncertaintyMs: Infinity,
            maxDriftPpm,
          });
          source.push(truthfulSample(manual, 1));
          for (const ms of waits) {
            manual.advance(ms);
            expect(clock.now().status).not.toBe('disrupted');
          }
          void clock.close();
        },
      ),
      fcParams(200),
    );
  });

  it('keeps the interval around true time across a suspend, where the monotonic clock stopped', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    sim.suspend(10_000);
    // A strict call runs the watchdog first, so it never acts on the stale bound.
    expect(() => clock.before(sim.trueNow() + 1e9)).toThrow(ClockUnsynchronizedError);
    const r = clock.now();
    expect(r.status).toBe('disrupted');
    expect(r.earliest).toBeLessThanOrEqual(sim.trueNow());
    expect(r.latest).toBeGreaterThanOrEqual(sim.trueNow());
  });

  it('ignores a sample measured before the disruption', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    const stale = truthfulSample(sim, 1);
    sim.suspend(5_000);
    sim.advance(1000);
    expect(clock.status).toBe('disrupted');
    source.push(stale);
    expect(clock.status).toBe('disrupted');
  });

  it('does not fire on an ordinary pause, where both clocks ran', () => {
    const { sim, source, clock } = setup({ driftPpm: 150 });
    source.push(truthfulSample(sim, 1));
    sim.pause(30_000);
    sim.advance(2000);
    // 32 s without a sample is free-running (3 poll intervals), not disrupted.
    expect(clock.status).toBe('free-running');
    expect(clock.after(sim.trueNow() - 50)).toBe(true);
  });
});

async function settle<T>(sim: SimulatedClock, promise: Promise<T>, stepMs = 1, maxSteps = 100_000) {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  let trueAtSettle = NaN;
  promise.then(
    (v) => {
      done = true;
      value = v;
      trueAtSettle = sim.trueNow();
    },
    (e: unknown) => {
      done = true;
      error = e;
      trueAtSettle = sim.trueNow();
    },
  );
  for (let i = 0; i < maxSteps && !done; i++) await sim.advanceAsync(stepMs);
  return { done, value, error, trueAtSettle };
}

describe('commit-wait', () => {
  it('resolves only once true time is past the commit timestamp, for any allowed drift and offset', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: -MAX_DRIFT_PPM, max: MAX_DRIFT_PPM, noNaN: true }),
        fc.double({ min: -1000, max: 1000, noNaN: true }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 30, noNaN: true }),
        fc.double({ min: 0, max: 30_000, noNaN: true }),
        async (driftPpm, wallOffsetMs, errorMs, fraction, writeMs, ageMs) => {
          const { sim, source, clock } = setup({ driftPpm, wallOffsetMs });
          source.push(truthfulSample(sim, errorMs, fraction));
          sim.advance(ageMs);
          let writeDoneAtTrue = NaN;
          let writeDoneAtMono = NaN;
          const outcome = await settle(
            sim,
            clock.commitWait(async (ts) => {
              await new Promise<void>((resolve) => sim.setTimeout(resolve, writeMs));
              writeDoneAtTrue = sim.trueNow();
              writeDoneAtMono = sim.monotonic.now();
              return ts;
            }),
            0.25,
          );
          expect(outcome.done).toBe(true);
          expect(outcome.error).toBeUndefined();
          const { timestamp, result, waitedMs } = outcome.value!;
          expect(result).toBe(timestamp);
          expect(outcome.trueAtSettle).toBeGreaterThan(timestamp);
          // The wait after the write, not the write itself: at most the time since it finished.
          expect(waitedMs).toBeLessThanOrEqual(sim.monotonic.now() - writeDoneAtMono);
          expect(writeDoneAtTrue).toBeLessThanOrEqual(outcome.trueAtSettle);
          await clock.close();
        },
      ),
      fcParams(1_000),
    );
  });

  it('waits about 2ε and overlaps the wait with the write', async () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 5));
    const start = sim.monotonic.now();
    const fast = await settle(
      sim,
      clock.commitWait(() => 'ok'),
      0.5,
    );
    const total = sim.monotonic.now() - start;
    expect(total).toBeGreaterThanOrEqual(10);
    expect(total).toBeLessThan(10.6);
    expect(fast.value?.waitedMs).toBeGreaterThanOrEqual(10);
    const slow = await settle(
      sim,
      clock.commitWait(
        () => new Promise<string>((resolve) => sim.setTimeout(() => resolve('slow'), 50)),
      ),
      0.5,
    );
    expect(slow.value?.result).toBe('slow');
    expect(slow.value?.waitedMs).toBe(0);
  });

  it('rethrows a failed write and leaves no timer behind', async () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 5));
    const timersBefore = sim.pendingTimers;
    const boom = new Error('write failed');
    await expect(clock.commitWait(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(sim.pendingTimers).toBe(timersBefore);
  });

  it('fails closed without a sample, and when the clock becomes disrupted mid-wait', async () => {
    const { sim, source, clock } = setup();
    await expect(clock.commitWait(() => 1)).rejects.toBeInstanceOf(ClockUnsynchronizedError);
    source.push(truthfulSample(sim, 5_000));
    const waiting = clock.waitUntilAfter(sim.trueNow() + 1_000);
    sim.stepWall(60_000);
    const outcome = await settle(sim, waiting, 100);
    expect(outcome.error).toBeInstanceOf(ClockUnsynchronizedError);
    expect((outcome.error as ClockUnsynchronizedError).status).toBe('disrupted');
  });

  it('honours AbortSignal before and during the wait', async () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 50));
    const pre = new AbortController();
    pre.abort(new Error('stop'));
    await expect(
      clock.waitUntilAfter(sim.trueNow(), { signal: pre.signal }),
    ).rejects.toBeInstanceOf(AbortError);
    const ac = new AbortController();
    const during = clock.commitWait(() => 'x', { signal: ac.signal });
    await sim.advanceAsync(10);
    ac.abort();
    const outcome = await settle(sim, during);
    expect(outcome.error).toBeInstanceOf(AbortError);
  });

  it('waitUntilAfter() times out with WaitTimeoutError naming itself, the target and the timeout, not CommitWaitTimeoutError', async () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 50));
    const target = sim.trueNow() + 1_000;
    const outcome = await settle(sim, clock.waitUntilAfter(target, { timeoutMs: 200 }), 10);
    expect(outcome.error).toBeInstanceOf(WaitTimeoutError);
    expect(outcome.error).not.toBeInstanceOf(CommitWaitTimeoutError);
    expect(outcome.error).toMatchObject({
      name: 'WaitTimeoutError',
      code: 'WAIT_TIMEOUT',
      operation: 'waitUntilAfter()',
      target,
      timeoutMs: 200,
    });
    expect((outcome.error as Error).message).toBe(
      `waitUntilAfter() timed out after 200 ms waiting for ${target} to definitely pass; ` +
        'raise timeoutMs or reduce the clock uncertainty.',
    );
    expect(sim.trueNow()).toBeLessThan(target);
  });

  it('commitWait() times out with CommitWaitTimeoutError, a WaitTimeoutError, after the write', async () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 50));
    let written = NaN;
    // The wait takes about 2ε = 100 ms: 20 ms is too short.
    const outcome = await settle(
      sim,
      clock.commitWait((ts) => (written = ts), { timeoutMs: 20 }),
    );
    expect(outcome.error).toBeInstanceOf(CommitWaitTimeoutError);
    expect(outcome.error).toBeInstanceOf(WaitTimeoutError);
    expect(isChronoboundError(outcome.error, WaitTimeoutError)).toBe(true);
    expect(outcome.error).toMatchObject({
      name: 'CommitWaitTimeoutError',
      code: 'COMMIT_WAIT_TIMEOUT',
      operation: 'commitWait()',
      target: written,
      timeoutMs: 20,
    });
    expect((outcome.error as Error).message).toMatch(/^commitWait\(\) timed out after 20 ms /);
    expect(sim.trueNow()).toBeLessThanOrEqual(written);
  });

  it('finishes early when a better sample arrives mid-wait', async () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 100));
    const target = sim.trueNow() + 10;
    const waiting = clock.waitUntilAfter(target);
    await sim.advanceAsync(20);
    source.push(truthfulSample(sim, 1));
    const outcome = await settle(sim, waiting, 0.5);
    expect((outcome.value as TimeReading).earliest).toBeGreaterThan(target);
    expect(sim.trueNow()).toBeLessThan(target + 100);
  });
});

describe('ready() and close()', () => {
  it('resolves on the first sample', async () => {
    const { sim, source, clock } = setup();
    const ready = clock.ready({ timeoutMs: 1000 });
    source.push(truthfulSample(sim, 1));
    await expect(ready).resolves.toMatchObject({ status: 'synchronized' });
    await expect(clock.ready()).resolves.toMatchObject({ status: 'synchronized' });
  });

  it('rejects with a clear error naming the last problem when no sample arrives in time', async () => {
    const { sim, source, clock } = setup();
    source.report({ source: 'ntp', reason: 'timeout', message: 'no reply from 127.0.0.1:9' });
    const outcome = await settle(sim, clock.ready({ timeoutMs: 500 }), 50);
    expect(outcome.error).toBeInstanceOf(ClockUnsynchronizedError);
    expect(String(outcome.error)).toMatch(
      /no sample within 500 ms; last problem: no reply from 127.0.0.1:9/,
    );
  });

  it('close() stops the source, rejects pending waits, and is idempotent; async dispose closes too', async () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 50));
    const waiting = clock.waitUntilAfter(sim.trueNow() + 1000);
    await clock.close();
    await expect(waiting).rejects.toBeInstanceOf(ClockUnsynchronizedError);
    await clock.close();
    expect(source.closed).toBe(true);
    expect(clock.status).toBe('unsynchronized');
    expect(sim.pendingTimers).toBe(0);
    const second = setup();
    {
      await using c = second.clock;
      expect(c.status).toBe('unsynchronized');
    }
    expect(second.source.closed).toBe(true);
  });
});
