/**
 * Faults a hostile reviewer would try, in virtual time: no trusted reading may
 * miss the truth after the stated detection point. The selection across real
 * servers is tried over UDP in test/ntp/faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  ClockUnsynchronizedError,
  type HostCorrection,
  type HostCorrectionSource,
  type MonotonicSource,
  type SyncSample,
  type TimeReading,
} from '../../src/index.js';
import { SimulatedClock, manualSource, truthfulSample } from '../../src/testing/index.js';
import { misses, recordFault, trusted } from '../support/fault-table.js';
import { trueClockOn } from '../support/clock.js';

function setup(
  options: {
    watchdogIntervalMs?: number;
    trueTimeMs?: number;
    hostCorrection?: HostCorrectionSource;
    leapWindowMs?: number;
    maxUncertaintyMs?: number;
  } = {},
) {
  const sim = new SimulatedClock(
    options.trueTimeMs === undefined ? {} : { trueTimeMs: options.trueTimeMs },
  );
  const source = manualSource(1000);
  const clock = trueClockOn(sim, source, {
    maxDriftPpm: 200,
    maxUncertaintyMs: options.maxUncertaintyMs ?? 50,
    watchdogIntervalMs: options.watchdogIntervalMs ?? 1000,
    ...(options.hostCorrection ? { hostCorrection: options.hostCorrection } : {}),
    ...(options.leapWindowMs === undefined ? {} : { leapWindowMs: options.leapWindowMs }),
  });
  return { sim, source, clock };
}

describe('a suspend', () => {
  it('is seen by now() and status themselves, before any watchdog tick', () => {
    const { sim, source, clock } = setup({ watchdogIntervalMs: 1000 });
    source.push(truthfulSample(sim, 0.5));
    sim.advance(400); // the watchdog's next tick is 600 ms away
    sim.suspend(10_000);
    expect(clock.status).toBe('disrupted');
    expect(() => clock.before(sim.trueNow() + 1)).toThrow(ClockUnsynchronizedError);
    let readings = 0;
    let missed = 0;
    let firstDisrupted: number | null = null;
    const start = sim.monotonic.now();
    for (let i = 0; i < 24_000; i++) {
      const r = clock.now();
      readings++;
      if (firstDisrupted === null && r.status === 'disrupted')
        firstDisrupted = sim.monotonic.now() - start;
      if (trusted(r) && misses(r, [sim.trueNow()])) missed++;
      sim.advance(0.05);
    }
    expect(missed).toBe(0);
    expect(firstDisrupted).toBe(0);
    expect(source.invalidations).toHaveLength(1);
    recordFault({
      scenario: 'suspend 10 s, between watchdog ticks',
      readings,
      misses: missed,
      detectionMs: firstDisrupted,
      outcome: 'disrupted on the first now() after resume; the source is invalidated',
      time: 'virtual',
    });
  });

  it('with a reply in flight: the request left before it, so the reply cannot end the disruption, with or without an earlier sample', () => {
    for (const hadSample of [false, true]) {
      const { sim, source, clock } = setup();
      if (hadSample) source.push(truthfulSample(sim, 0.5));
      sim.advance(100);
      // The request leaves; the server stamps T2/T3 with the pre-suspend truth.
      const t1 = sim.monotonic.now();
      const staleOffset = sim.trueNow() - t1;
      sim.suspend(5_000);
      sim.advance(1);
      const reply: SyncSample = {
        monotonicAt: sim.monotonic.now(),
        offsetMs: staleOffset,
        errorMs: 1,
        source: 'in-flight',
        evidenceFrom: t1,
      };
      // Delivered before anyone read the clock: the clock must run its check first.
      source.push(reply);
      expect(clock.lastProblem?.reason).toBe('stale-sample');
      const r = clock.now();
      expect(trusted(r)).toBe(false);
      expect(r.status).toBe(hadSample ? 'disrupted' : 'unsynchronized');
      // Fresh evidence ends it.
      sim.advance(1);
      source.push(truthfulSample(sim, 0.5));
      const after = clock.now();
      expect(after.status).toBe('synchronized');
      expect(misses(after, [sim.trueNow()])).toBe(false);
      recordFault({
        scenario: `suspend 5 s with a reply in flight (${hadSample ? 'after' : 'before'} the first sample)`,
        readings: 2,
        misses: 0,
        detectionMs: 0,
        outcome: `the reply is refused as 'stale-sample'; ${hadSample ? 'disrupted' : 'unsynchronized'} until fresh evidence`,
        time: 'virtual',
      });
    }
  });
});

/** UTC midnight that ends December 2026. */
const LEAP = Date.UTC(2027, 0, 1);
const DAY = 24 * 3600 * 1000;

/** Stepped UTC for a leap-free reading `t`: back 1 s at the leap (insert) / skip 23:59:59 (delete). */
function stepped(t: number, direction: 'insert' | 'delete'): number {
  if (direction === 'insert') return t >= LEAP ? t - 1000 : t;
  return t >= LEAP - 1000 ? t + 1000 : t;
}

/** Noon-to-noon smeared UTC for a leap-free reading `t`. */
function smeared(t: number, direction: 'insert' | 'delete'): number {
  const progress = Math.min(1, Math.max(0, (t - (LEAP - DAY / 2)) / DAY));
  return direction === 'insert' ? t - 1000 * progress : t + 1000 * progress;
}

describe('a leap second', () => {
  for (const direction of ['insert', 'delete'] as const) {
    it(`${direction}: stepping servers announce it; every reading contains stepped UTC, and smeared UTC until post-leap evidence; strict calls never answer wrongly`, () => {
      const { sim, source, clock } = setup({ trueTimeMs: LEAP - 3000 });
      const stepAt = direction === 'insert' ? LEAP : LEAP - 1000;
      // A stepping server, asked every 100 ms over a 0.4 ms path.
      const poll = (): void => {
        const t1 = sim.monotonic.now();
        sim.advance(0.4);
        const mono = sim.monotonic.now();
        const leapFree = sim.trueNow();
        source.push({
          monotonicAt: mono,
          offsetMs: stepped(leapFree - 0.2, direction) - (mono - 0.2),
          errorMs: 0.2 + 0.001,
          source: 'stepping',
          evidenceFrom: t1,
          ...(leapFree < stepAt ? { leapSecond: direction } : {}),
        });
      };
      let readings = 0;
      let missed = 0;
      let wrongStrict = 0;
      let widenedAtStep = false;
      let nextPoll = sim.trueNow();
      while (sim.trueNow() < LEAP + 2_200) {
        if (sim.trueNow() >= nextPoll) {
          poll();
          nextPoll += 100;
        }
        const t = sim.trueNow();
        const r: TimeReading = clock.now();
        readings++;
        const announced = clock.sample?.leapSecond !== undefined;
        const truths = announced
          ? [stepped(t, direction), smeared(t, direction)]
          : [stepped(t, direction)];
        if (trusted(r) && misses(r, truths)) missed++;
        if (trusted(r)) {
          // A moment that has not come in stepped UTC must not count as passed, and
          // one that has come must not count as ahead.
          if (clock.after(stepped(t, direction) + 0.5)) wrongStrict++;
          if (clock.before(stepped(t, direction) - 0.5)) wrongStrict++;
        }
        if (Math.abs(t - stepAt) < 1 && r.latest - r.earliest > 1000) widenedAtStep = true;
        sim.advance(1);
      }
      expect(missed).toBe(0);
      expect(wrongStrict).toBe(0);
      expect(widenedAtStep).toBe(true);
      // After the leap, post-leap samples narrowed the bound again.
      const end = clock.now();
      expect(end.status).toBe('synchronized');
      expect(end.latest - end.earliest).toBeLessThan(10);
      recordFault({
        scenario: `leap second (${direction}), stepping servers announce it`,
        readings,
        misses: missed,
        detectionMs: null,
        outcome: `interval one second wider from 12 h before until post-leap evidence; ${wrongStrict} wrong strict answers`,
        time: 'virtual',
      });
    });
  }

  it('smearing servers (no announcement): the drift bound covers the 11.6 ppm smear', () => {
    const { sim, source, clock } = setup({ trueTimeMs: LEAP - DAY / 2 - 60_000 });
    let missed = 0;
    let readings = 0;
    // 26 h at one sample per 64 s, a reading every 7 s.
    for (let k = 0; k < (26 * 3600) / 64; k++) {
      const mono = sim.monotonic.now();
      source.push({
        monotonicAt: mono,
        offsetMs: smeared(sim.trueNow(), 'insert') - mono,
        errorMs: 0.3,
        source: 'smearing',
      });
      for (let j = 0; j < 9; j++) {
        sim.advance(7_000);
        const r = clock.now();
        readings++;
        if (trusted(r) && misses(r, [smeared(sim.trueNow(), 'insert')])) missed++;
      }
      sim.advance(1);
    }
    expect(missed).toBe(0);
    recordFault({
      scenario: 'leap second smeared over 24 h, no announcement',
      readings,
      misses: missed,
      detectionMs: null,
      outcome: 'nothing to detect: the smear is 11.6 ppm, inside the 200 ppm drift bound',
      time: 'virtual',
    });
  });
});

/** A host daemon whose outstanding correction the test sets. */
function manualHostCorrection(): HostCorrectionSource & {
  report(remainingCorrectionMs: number): void;
} {
  let listener: ((c: HostCorrection) => void) | undefined;
  let mono: MonotonicSource | undefined;
  return {
    subscribe(onCorrection, monotonic) {
      listener = onCorrection;
      mono = monotonic;
      return () => (listener = undefined);
    },
    close: () => Promise.resolve(),
    report(remainingCorrectionMs) {
      listener?.({
        monotonicAt: mono?.now() ?? 0,
        remainingCorrectionMs,
        source: 'host-daemon',
      });
    },
  };
}

describe('the host slews the monotonic clock', () => {
  /**
   * The daemon corrects `correctionMs` by running the clock `slewPpm` fast; samples
   * come every 64 s. Returns the trusted misses during the slew and after the first
   * sample that follows it.
   */
  function slew(correctionMs: number, slewPpm: number, withHostCorrection: boolean) {
    const host = manualHostCorrection();
    const { sim, source, clock } = setup({
      ...(withHostCorrection ? { hostCorrection: host } : {}),
      maxUncertaintyMs: Infinity,
    });
    source.push(truthfulSample(sim, 0.3));
    sim.advance(1_000);
    const slewMs = (correctionMs / slewPpm) * 1e6;
    host.report(correctionMs);
    sim.setDriftPpm(slewPpm);
    let during = 0;
    let readingsDuring = 0;
    const end = sim.monotonic.now() + slewMs;
    while (sim.monotonic.now() < end) {
      sim.advance(Math.min(250, end - sim.monotonic.now()));
      host.report(correctionMs * Math.max(0, (end - sim.monotonic.now()) / slewMs));
      const r = clock.now();
      readingsDuring++;
      if (misses(r, [sim.trueNow()])) during++;
    }
    sim.setDriftPpm(0);
    host.report(0);
    sim.advance(64_000 - (slewMs % 64_000));
    source.push(truthfulSample(sim, 0.3));
    const problem = clock.lastProblem?.reason;
    let after = 0;
    for (let i = 0; i < 600; i++) {
      sim.advance(100);
      const r = clock.now();
      if (trusted(r) && misses(r, [sim.trueNow()])) after++;
    }
    return { during, readingsDuring, after, problem, status: clock.now().status };
  }

  it('(a) without the daemon’s word: readings miss during the slew (it is invisible), never after the next exchange, and the contradiction is reported', () => {
    const r = slew(5_333, 83_333, false);
    expect(r.during).toBeGreaterThan(0);
    expect(r.after).toBe(0);
    expect(r.problem).toBe('inconsistent-sample');
    recordFault({
      scenario: 'host slews 5.3 s at 83,333 ppm (chronyd maxslewrate), maxDriftPpm 200',
      readings: r.readingsDuring + 600,
      misses: r.during,
      detectionMs: null,
      outcome: `misses only until the next exchange (${r.during} of ${r.readingsDuring} during the slew), then 'inconsistent-sample' and the newer evidence wins`,
      time: 'virtual',
    });
  });

  it('(b) with the daemon’s outstanding correction in ε: no reading misses at all', () => {
    for (const [correctionMs, slewPpm] of [
      [5_333, 83_333],
      [20, 500],
    ] as const) {
      const without = slew(correctionMs, slewPpm, false);
      const withHost = slew(correctionMs, slewPpm, true);
      // The same slew is invisible without the daemon's word…
      expect(without.during).toBeGreaterThan(0);
      // …and covered with it.
      expect(withHost.during).toBe(0);
      expect(withHost.after).toBe(0);
      recordFault({
        scenario: `host slews ${correctionMs} ms at ${slewPpm.toLocaleString('en-US')} ppm, hostCorrection reads the daemon`,
        readings: withHost.readingsDuring + 600,
        misses: withHost.during + withHost.after,
        detectionMs: 0,
        outcome: 'the outstanding correction is in ε from the daemon’s first report',
        time: 'virtual',
      });
    }
  });
});

describe('free-running follows the source’s cadence', () => {
  it('a healthy source that samples every 7 s with maxSampleGapMs 7.5 s never shows free-running', () => {
    const sim = new SimulatedClock();
    const manual = manualSource(1000);
    const source = { ...manual, maxSampleGapMs: 7_500 };
    const clock = trueClockOn(sim, source);
    const statuses = new Set<string>();
    for (let i = 0; i < 100; i++) {
      manual.push(truthfulSample(sim, 0.3));
      for (let j = 0; j < 7; j++) {
        sim.advance(1000);
        statuses.add(clock.now().status);
      }
    }
    expect([...statuses]).toEqual(['synchronized']);
    // Silent for longer than twice the gap: free-running.
    sim.advance(15_001);
    expect(clock.now().status).toBe('free-running');
  });
});

describe('the panic threshold', () => {
  it('refuses a sample 1e12 ms away from the system clock (a broken or hostile source), unless told otherwise', () => {
    for (const panicThresholdMs of [undefined, Infinity]) {
      const sim = new SimulatedClock();
      const source = manualSource(1000);
      const clock = trueClockOn(sim, source, {
        ...(panicThresholdMs === undefined ? {} : { panicThresholdMs }),
      });
      const mono = sim.monotonic.now();
      source.push({
        monotonicAt: mono,
        offsetMs: sim.trueNow() + 1e12 - mono,
        errorMs: 1,
        source: 'far',
      });
      if (panicThresholdMs === undefined) {
        expect(clock.sample).toBeUndefined();
        expect(clock.now().status).toBe('unsynchronized');
        expect(clock.lastProblem?.reason).toBe('panic-threshold');
        expect(clock.lastProblem?.message).toMatch(/1000000000\.000 s from the system clock/);
        // 999 s away is still accepted: the default is ntpd's 1000 s.
        source.push({
          monotonicAt: mono,
          offsetMs: sim.trueNow() + 999_000 - mono,
          errorMs: 1,
          source: 'near',
        });
        expect(clock.sample?.source).toBe('near');
      } else {
        expect(clock.sample?.source).toBe('far');
      }
      void clock.close();
    }
  });
});

describe('a source that reports a disruption', () => {
  it('(a ClockBound daemon, a host agent) disrupts the clock until a sample gathered after it', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 0.5));
    sim.advance(100);
    source.report({ source: 'clockbound', reason: 'disrupted', message: 'the VM migrated' });
    const r = clock.now();
    expect(r.status).toBe('disrupted');
    expect(r.uncertaintyMs).toBe(Infinity);
    expect(source.invalidations).toHaveLength(1);
    sim.advance(1);
    source.push(truthfulSample(sim, 0.5));
    expect(clock.now().status).toBe('synchronized');
  });
});
