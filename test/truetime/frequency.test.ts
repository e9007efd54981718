/**
 * The learned frequency (src/truetime/frequency.ts) through TrueClock, in virtual
 * time: honest for any oscillator whose rate error is within ±maxDriftPpm and
 * changes no faster than maxWanderPpmPerHour, and tight once it has learned.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  TrueClock,
  type AgeableSample,
  type AgedSample,
  type SourceContext,
  type SyncSample,
} from '../../src/index.js';
import { SimulatedClock, manualSource, type ManualSource } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { trueClockOn } from '../support/clock.js';

const D_PPM = 200;
const WANDER_PPM_PER_H = 5;
const HOUR = 3_600_000;
/** Far from the ends of June and December, where a leap smear may change the rate. */
const MID_MARCH = Date.UTC(2026, 2, 15);

/**
 * An oscillator: a constant error plus a sinusoidal wander whose steepest slope
 * stays within 90% of the wander bound (the rest covers the 1 s staircase the
 * simulation steps it in).
 */
const sinusoid = fc
  .record({
    base: fc.double({ min: -150, max: 150, noNaN: true }),
    periodHours: fc.double({ min: 0.5, max: 48, noNaN: true }),
    // Often the steepest allowed wander: that is where an overconfident model breaks.
    amplitudeShare: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
    phase: fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }),
  })
  .map(({ base, periodHours, amplitudeShare, phase }) => {
    // Steepest slope of A·sin(2πt/P) is 2πA/P (ppm per hour).
    const maxAmplitude = Math.min(
      (0.9 * WANDER_PPM_PER_H * periodHours) / (2 * Math.PI),
      D_PPM - 1 - Math.abs(base),
    );
    const amplitude = amplitudeShare * maxAmplitude;
    return {
      base,
      amplitude,
      periodHours,
      phase,
      driftAt: (ms: number): number =>
        base + amplitude * Math.sin((2 * Math.PI * ms) / (periodHours * HOUR) + phase),
    };
  });

/**
 * A rate that ramps at 90% of the wander bound the whole run (up to 60 gaps of
 * 1024 s, 17 h): the steepest change the bound allows, held longest, which is
 * where the widening of each pair's average rate towards the newest sample is tight.
 */
const ramp = fc
  .record({
    base: fc.double({ min: -120, max: 120, noNaN: true }),
    sign: fc.constantFrom(-1, 1),
  })
  .map(({ base, sign }) => ({
    driftAt: (ms: number): number => base + (sign * 0.9 * WANDER_PPM_PER_H * ms) / HOUR,
  }));

const oscillator = fc.oneof(sinusoid, ramp);

const schedule = fc.array(
  fc.record({
    gapMs: fc.integer({ min: 16_000, max: 1_024_000 }),
    // Tight samples whose error sits at the edge of their bound stress the model most.
    errorMs: fc.oneof(
      fc.double({ min: 0.001, max: 0.5, noNaN: true }),
      fc.double({ min: 0.01, max: 20, noNaN: true }),
    ),
    fraction: fc.oneof(fc.constantFrom(-1, 1), fc.double({ min: -1, max: 1, noNaN: true })),
    probes: fc.array(fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })), {
      minLength: 1,
      maxLength: 4,
    }),
  }),
  { minLength: 2, maxLength: 60 },
);

interface Run {
  readonly misses: number;
  readonly readings: number;
}

/**
 * Drives one scenario: the oscillator steps its drift every second; samples claim
 * `errorMs` and are off by `fraction` of it; readings come at the probe points.
 * `read` turns the clock's state into an interval (the real clock, or a rival model).
 */
function run(
  osc: { driftAt: (ms: number) => number },
  plan: readonly { gapMs: number; errorMs: number; fraction: number; probes: readonly number[] }[],
  read: (
    clock: TrueClock,
    history: readonly SyncSample[],
    mono: number,
    context: SourceContext,
    votes: readonly SyncSample[],
  ) => {
    earliest: number;
    latest: number;
  },
): Run {
  const sim = new SimulatedClock({ driftPpm: osc.driftAt(0), trueTimeMs: MID_MARCH });
  const source = capturing(manualSource(64_000));
  const clock = trueClockOn(sim, source, {
    maxDriftPpm: D_PPM,
    maxWanderPpmPerHour: WANDER_PPM_PER_H,
    maxUncertaintyMs: Infinity,
    watchdogIntervalMs: 0,
  });
  const history: SyncSample[] = [];
  /** Other servers' replies the clock never sees: a quarter of the sample's bound, off the other way. */
  const votes: SyncSample[] = [];
  let elapsed = 0;
  const advance = (ms: number): void => {
    let left = ms;
    while (left > 0) {
      const step = Math.min(1000, left);
      sim.advance(step);
      elapsed += step;
      left -= step;
      sim.setDriftPpm(osc.driftAt(elapsed));
    }
  };
  let misses = 0;
  let readings = 0;
  for (const p of plan) {
    const mono = sim.monotonic.now();
    const sample: SyncSample = {
      monotonicAt: mono,
      offsetMs: sim.trueNow() + p.fraction * p.errorMs - mono,
      errorMs: p.errorMs,
      source: 'sim',
    };
    history.push(sample);
    source.push(sample);
    let at = 0;
    for (const probe of [...p.probes].sort((a, b) => a - b)) {
      const target = probe * p.gapMs;
      advance(target - at);
      at = target;
      const mono = sim.monotonic.now();
      const voteError = p.errorMs / 4;
      votes.push({
        monotonicAt: mono,
        offsetMs: sim.trueNow() - p.fraction * voteError - mono,
        errorMs: voteError,
        source: 'vote',
      });
      const r = read(clock, history, mono, source.context(), votes);
      readings++;
      const truth = sim.trueNow();
      if (truth < r.earliest || truth > r.latest) misses++;
    }
    advance(p.gapMs - at);
  }
  void clock.close();
  return { misses, readings };
}

/** A manual source that keeps the context its subscriber (a `TrueClock`) hands over. */
function capturing(inner: ManualSource): ManualSource & { context(): SourceContext } {
  let context: SourceContext | undefined;
  return Object.assign(Object.create(inner) as ManualSource, {
    subscribe: (...args: Parameters<ManualSource['subscribe']>) => {
      context = args[3];
      return inner.subscribe(...args);
    },
    push: (sample: SyncSample) => inner.push(sample),
    context: (): SourceContext => {
      if (context === undefined) throw new Error('no context: nothing subscribed');
      return context;
    },
  });
}

/** The clock's model (`context.ageSample`) applied to `sample` at monotonic reading `at`. */
function agedBy(context: SourceContext, sample: AgeableSample, at: number): AgedSample {
  const aged = context.ageSample?.(sample, at);
  if (aged === undefined) throw new Error('TrueClock hands over ageSample');
  return aged;
}

/**
 * A clock fed 0.2 ms samples by `push()`, on an oscillator `driftPpm` off,
 * mid-March: `learn(n)` pushes and waits a 64 s poll `n` times, `vote(errorMs)`
 * is a truthful sample taken now, `ageSample` ages one by the clock's model.
 */
function quietLan(driftPpm: number) {
  const sim = new SimulatedClock({ driftPpm, trueTimeMs: MID_MARCH });
  const source = capturing(manualSource(64_000));
  const clock = trueClockOn(sim, source, { watchdogIntervalMs: 0 });
  const vote = (errorMs: number) => {
    const mono = sim.monotonic.now();
    return { monotonicAt: mono, offsetMs: sim.trueNow() - mono, errorMs };
  };
  const push = (): void => source.push({ ...vote(0.2), source: 'lan' });
  const learn = (polls: number): void => {
    for (let i = 0; i < polls; i++) {
      push();
      sim.advance(64_000);
    }
  };
  const ageSample = (sample: AgeableSample, at: number): AgedSample =>
    agedBy(source.context(), sample, at);
  return { sim, clock, push, learn, vote, ageSample };
}

describe('the learned frequency', () => {
  it('property: every reading contains true time for any oscillator within ±maxDriftPpm whose rate changes within maxWanderPpmPerHour', () => {
    let totalReadings = 0;
    fc.assert(
      fc.property(oscillator, schedule, (osc, plan) => {
        const r = run(osc, plan, (clock) => clock.now());
        totalReadings += r.readings;
        expect(r.misses).toBe(0);
      }),
      fcParams(500),
    );
    console.log(`learned frequency: ${totalReadings} readings, 0 outside the truth`);
  });

  it("property: a source's votes aged by the clock's model (SourceContext.ageSample) still contain true time, whatever their age", () => {
    let totalReadings = 0;
    // The intersection of every vote's aged interval contains the truth iff each one does.
    const agedVotes = (
      _clock: TrueClock,
      _history: readonly SyncSample[],
      mono: number,
      context: SourceContext,
      votes: readonly SyncSample[],
    ) => {
      let earliest = -Infinity;
      let latest = Infinity;
      for (const vote of votes.slice(-16)) {
        const aged = agedBy(context, vote, mono);
        earliest = Math.max(earliest, mono + aged.offsetMs - aged.errorMs);
        latest = Math.min(latest, mono + aged.offsetMs + aged.errorMs);
      }
      return { earliest, latest };
    };
    fc.assert(
      fc.property(oscillator, schedule, (osc, plan) => {
        const r = run(osc, plan, agedVotes);
        totalReadings += r.readings;
        expect(r.misses).toBe(0);
      }),
      fcParams(300),
    );
    console.log(`aged votes: ${totalReadings} readings, 0 outside the truth`);
  });

  it('property fails for a model that trusts its rate estimate without its uncertainty', () => {
    // The rival: the slope between the last two samples, extrapolated from the last
    // one with only that sample's own error: what a least-squares "drift
    // compensation" without a bound on the estimate does.
    const naive = (_clock: TrueClock, history: readonly SyncSample[], mono: number) => {
      const last = history[history.length - 1] as SyncSample;
      const prev = history[history.length - 2];
      const rate =
        prev === undefined
          ? 0
          : (last.offsetMs - prev.offsetMs) / (last.monotonicAt - prev.monotonicAt);
      const estimate = mono + last.offsetMs + rate * (mono - last.monotonicAt);
      return { earliest: estimate - last.errorMs, latest: estimate + last.errorMs };
    };
    expect(() =>
      fc.assert(
        fc.property(oscillator, schedule, (osc, plan) => {
          expect(run(osc, plan, naive).misses).toBe(0);
        }),
        fcParams(150),
      ),
    ).toThrow();
  });

  it('on a quiet LAN (0.2 ms samples every 64 s, 120 ppm off) ε grows at a few ppm after ten minutes, not at 200', () => {
    const { sim, clock, push, learn } = quietLan(120);
    learn(10);
    push();
    const fresh = clock.now().uncertaintyMs;
    sim.advance(64_000);
    const aged = clock.now();
    const growthPpm = ((aged.uncertaintyMs - fresh) / 64_000) * 1e6;
    // Goal: ≤ 25% of maxDriftPpm (50 ppm); the model does far better.
    expect(growthPpm).toBeLessThan(10);
    expect(aged.earliest).toBeLessThanOrEqual(sim.trueNow());
    expect(aged.latest).toBeGreaterThanOrEqual(sim.trueNow());
    void clock.close();
  });

  it('a contradicting sample (the host slewed the clock) resets the model to the drift bound, and says so', () => {
    const { sim, clock, push, learn } = quietLan(10);
    learn(10);
    // A slew of 150 ppm for a minute: within the drift bound, far beyond the wander bound.
    sim.setDriftPpm(160);
    sim.advance(64_000);
    push();
    expect(clock.lastProblem?.reason).toBe('inconsistent-sample');
    const fresh = clock.now().uncertaintyMs;
    sim.advance(10_000);
    const r = clock.now();
    // Back to the drift bound: 200 ppm over 10 s.
    expect(r.uncertaintyMs - fresh).toBeCloseTo(2, 1);
    expect(r.earliest).toBeLessThanOrEqual(sim.trueNow());
    expect(r.latest).toBeGreaterThanOrEqual(sim.trueNow());
    void clock.close();
  });

  it('after a reset, votes gathered before it are aged by the drift bound, not by the rate learned since', () => {
    const { sim, clock, push, learn, vote, ageSample } = quietLan(10);
    learn(10);
    const before = vote(0.05);
    // Learned: a minute later the vote has grown by far less than the drift bound's 12 ms.
    sim.advance(64_000);
    expect(ageSample(before, sim.monotonic.now()).errorMs).toBeLessThan(1);
    // The host slews: the model contradicts itself and starts again from the new sample.
    sim.setDriftPpm(160);
    sim.advance(64_000);
    push();
    expect(clock.lastProblem?.reason).toBe('inconsistent-sample');
    for (let i = 0; i < 5; i++) {
      sim.advance(64_000);
      push();
    }
    const now = sim.monotonic.now();
    const aged = ageSample(before, now);
    // The rate learned since the slew says nothing about the time before it.
    expect(aged.offsetMs).toBe(before.offsetMs);
    // The drift bound's growth, plus a few µs for the rounding of an epoch-scale offset.
    const drifted = 0.05 + 200e-6 * (now - before.monotonicAt);
    expect(aged.errorMs).toBeGreaterThanOrEqual(drifted);
    expect(aged.errorMs).toBeLessThan(drifted + 0.01);
    expect(Math.abs(sim.trueNow() - now - aged.offsetMs)).toBeLessThanOrEqual(aged.errorMs);
    // A vote gathered after the slew is aged by the new model.
    const after = vote(0.05);
    sim.advance(64_000);
    expect(ageSample(after, sim.monotonic.now()).errorMs).toBeLessThan(12.8);
    void clock.close();
  });

  it('a disruption (suspend, step) makes every vote age by the drift bound until the model has learned again', () => {
    const { sim, clock, learn, vote, ageSample } = quietLan(40);
    learn(10);
    const gathered = vote(0.2);
    clock.reportDisruption('test', 5, 'the process was stopped');
    sim.advance(10_000);
    const now = sim.monotonic.now();
    const aged = ageSample(gathered, now);
    expect(aged.offsetMs).toBe(gathered.offsetMs);
    expect(aged.errorMs).toBeCloseTo(0.2 + 200e-6 * (now - gathered.monotonicAt), 9);
    void clock.close();
  });
});
