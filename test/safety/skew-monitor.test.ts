import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  SkewMonitor,
  skewFromExchange,
  type PeerSkew,
  type RpcTimestamps,
} from '../../src/index.js';
import { fcParams } from '../support/fc.js';

/**
 * One request/response at true time `at`: the peer's clock reads true + offset,
 * the local clock reads true. Delays are one-way network times; `holdMs` is how
 * long the peer took to answer.
 */
function exchange(
  at: number,
  offsetMs: number,
  outMs: number,
  backMs: number,
  holdMs = 0.1,
): RpcTimestamps {
  return {
    t1: at,
    t2: at + outMs + offsetMs,
    t3: at + outMs + holdMs + offsetMs,
    t4: at + outMs + holdMs + backMs,
  };
}

describe('skewFromExchange', () => {
  it('recovers the offset exactly with symmetric delays', () => {
    const s = skewFromExchange(exchange(1000, 42, 3, 3), 0, 0, 0);
    expect(s.offsetMs).toBeCloseTo(42, 9);
    expect(s.delayMs).toBeCloseTo(6, 9);
    expect(s.errorMs).toBeCloseTo(3, 9);
  });

  it('its bound contains the true offset for any delay asymmetry and resolution (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -10_000, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 200, noNaN: true }),
        fc.double({ min: 0, max: 200, noNaN: true }),
        fc.double({ min: 0, max: 50, noNaN: true }),
        fc.constantFrom(0, 1),
        (offset, out, back, hold, resolution) => {
          const exact = exchange(1_767_225_600_000, offset, out, back, hold);
          const floor = (t: number) => (resolution ? Math.floor(t / resolution) * resolution : t);
          const ts = {
            t1: floor(exact.t1),
            t2: floor(exact.t2),
            t3: floor(exact.t3),
            t4: floor(exact.t4),
          };
          const s = skewFromExchange(ts, resolution, 0, 0);
          // Tolerance: a few ulps of epoch-ms doubles (~0.24 µs each).
          expect(Math.abs(s.offsetMs - offset)).toBeLessThanOrEqual(s.errorMs + 1e-3);
        },
      ),
      fcParams(2_000),
    );
  });

  it('rejects impossible or non-finite timestamps with a typed error', () => {
    expect(() => skewFromExchange({ t1: 0, t2: 0, t3: 10, t4: 5 })).toThrow(InvalidArgumentError);
    expect(() => skewFromExchange({ t1: 0, t2: 0, t3: 10, t4: 5 })).toThrow(/timestamps/);
    expect(() => skewFromExchange({ t1: 0, t2: NaN, t3: 0, t4: 1 })).toThrow(/t2/);
    expect(() => skewFromExchange({ t1: 5, t2: 0, t3: 0, t4: 1 })).toThrow(/t4/);
    // Within the resolution, a slightly negative delay is explained by flooring.
    expect(skewFromExchange({ t1: 0, t2: 0, t3: 1, t4: 0 }, 1).delayMs).toBe(-1);
  });
});

describe('SkewMonitor', () => {
  it('reports a peer drifting beyond the maximum after enough samples, not before', () => {
    const reported: PeerSkew[] = [];
    const monitor = new SkewMonitor({
      maxOffsetMs: 100,
      minSamples: 3,
      maxDriftPpm: 0,
      onBeyond: (p) => reported.push(p),
    });
    const driftPpm = 500; // the peer gains 0.5 ms per second
    let provingInARow = 0;
    let expectedAt: number | undefined;
    let reportedAt: number | undefined;
    for (let second = 0; second < 600; second++) {
      const at = second * 1000;
      const offset = 20 + driftPpm * 1e-6 * at;
      const out = 1 + ((second * 7) % 5);
      const back = 1 + ((second * 3) % 4);
      const state = monitor.record('b', exchange(at, offset, out, back));
      provingInARow = state.latest.excessMs > 0 ? provingInARow + 1 : 0;
      if (expectedAt === undefined && provingInARow === 3) expectedAt = second;
      if (state.beyond && reportedAt === undefined) reportedAt = second;
      // Never reported while the true offset is within the maximum.
      if (state.beyond) expect(offset).toBeGreaterThan(100);
    }
    expect(reportedAt).toBeDefined();
    expect(reported).toHaveLength(1);
    expect(reported[0]!.peer).toBe('b');
    expect(reportedAt).toBe(expectedAt); // the third proving sample in a row
    expect(monitor.beyond().map((p) => p.peer)).toEqual(['b']);
    // Offset 100 ms is crossed at 160 s; with ≤ 4 ms of error it is proven soon after.
    expect(reportedAt).toBeGreaterThan(160);
    expect(reportedAt).toBeLessThan(175);
  });

  it('a single noisy sample never triggers eviction (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }),
        fc.array(
          fc.record({
            offset: fc.double({ min: -50, max: 50, noNaN: true }),
            out: fc.double({ min: 0, max: 20, noNaN: true }),
            back: fc.double({ min: 0, max: 20, noNaN: true }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        fc.array(
          fc.record({
            index: fc.nat(),
            offset: fc.double({ min: -1e9, max: 1e9, noNaN: true }),
          }),
          { maxLength: 5 },
        ),
        (minSamples, good, noise) => {
          const monitor = new SkewMonitor({ maxOffsetMs: 100, minSamples });
          const noisyAt = new Map(noise.map((n) => [n.index % (good.length + 1), n.offset]));
          // Noisy samples are isolated: each is followed by at least one good one.
          for (let i = 0; i < good.length; i++) {
            const noisy = noisyAt.get(i);
            if (noisy !== undefined) {
              const s = monitor.record('p', exchange(i * 1000, noisy, 1, 1));
              expect(s.beyond).toBe(false);
            }
            const g = good[i]!;
            const s = monitor.record('p', exchange(i * 1000 + 500, g.offset, g.out, g.back));
            expect(s.beyond).toBe(false);
          }
          expect(monitor.beyond()).toEqual([]);
        },
      ),
      fcParams(1_000),
    );
  });

  it('never reports a peer whose true offset is within the maximum, whatever the delays (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.double({ min: -100, max: 100, noNaN: true }),
            out: fc.double({ min: 0, max: 500, noNaN: true }),
            back: fc.double({ min: 0, max: 500, noNaN: true }),
            hold: fc.double({ min: 0, max: 100, noNaN: true }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (exchanges) => {
          const monitor = new SkewMonitor({ maxOffsetMs: 100, minSamples: 2 });
          exchanges.forEach((e, i) => {
            expect(
              monitor.record('p', exchange(i * 1000, e.offset, e.out, e.back, e.hold)).beyond,
            ).toBe(false);
          });
        },
      ),
      fcParams(1_000),
    );
  });

  it('reports consistently-off peers, and says when they come back within bounds', () => {
    const beyond: string[] = [];
    const within: string[] = [];
    const monitor = new SkewMonitor({
      maxOffsetMs: 50,
      minSamples: 2,
      onBeyond: (p) => beyond.push(p.peer),
      onWithin: (p) => within.push(p.peer),
    });
    monitor.record('ok', exchange(0, 10, 2, 2));
    monitor.record('far', exchange(0, -300, 2, 2));
    expect(monitor.peer('far')?.beyond).toBe(false); // one sample is not enough
    monitor.record('far', exchange(1000, -301, 2, 2));
    expect(beyond).toEqual(['far']);
    expect(monitor.peer('far')?.offsetMs).toBeCloseTo(-300, 0);
    monitor.record('far', exchange(2000, 0, 2, 2)); // the operator fixed its clock
    expect(within).toEqual(['far']);
    expect(monitor.beyond()).toEqual([]);
    expect(monitor.peers().map((p) => p.peer)).toEqual(['ok', 'far']);
    monitor.forget('far');
    expect(monitor.peer('far')).toBeUndefined();
  });

  it('estimates from the minimum-delay sample of its window', () => {
    const monitor = new SkewMonitor({ maxOffsetMs: 1000, windowSize: 4, maxDriftPpm: 0 });
    monitor.record('p', exchange(0, 10, 40, 0)); // asymmetric: θ = 30, δ = 40
    monitor.record('p', exchange(1000, 10, 1, 1)); // θ = 10, δ = 2
    monitor.record('p', exchange(2000, 10, 0, 30)); // θ = −5, δ = 30
    const state = monitor.peer('p')!;
    expect(state.offsetMs).toBeCloseTo(10, 6);
    expect(state.errorMs).toBeCloseTo(1, 6);
    expect(state.samples).toBe(3);
    for (let i = 0; i < 4; i++) monitor.record('p', exchange(3000 + i, 10, 5, 5));
    expect(monitor.peer('p')!.samples).toBe(4);
    expect(monitor.peer('p')!.errorMs).toBeCloseTo(5, 6); // the δ = 2 sample left the window
  });

  it('rejects bad options and input with a typed error naming them', () => {
    expect(() => new SkewMonitor({ maxOffsetMs: -1 })).toThrow(/maxOffsetMs/);
    expect(() => new SkewMonitor({ maxOffsetMs: 1, minSamples: 1 })).toThrow(/minSamples/);
    expect(() => new SkewMonitor({ maxOffsetMs: 1, minSamples: 4, windowSize: 3 })).toThrow(
      /windowSize/,
    );
    const monitor = new SkewMonitor({ maxOffsetMs: 1 });
    expect(() => monitor.record(1 as unknown as string, exchange(0, 0, 1, 1))).toThrow(/peer/);
    expect(() => monitor.record('p', { t1: 0, t2: 0, t3: 0, t4: Infinity })).toThrow(
      InvalidArgumentError,
    );
    expect(monitor.peer('p')).toBeUndefined(); // nothing recorded from the bad input
  });
});
