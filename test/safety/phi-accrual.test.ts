import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhiAccrualDetector } from '../../src/index.js';
import { logErfc } from '../../src/safety/phi-accrual.js';
import { fcParams } from '../support/fc.js';

function manual() {
  let t = 0;
  return {
    mono: { now: () => t },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('logErfc', () => {
  it('matches reference values of erfc, including far in the tail', () => {
    const reference: [number, number][] = [
      [0, 1],
      [0.5, 0.4795001221869535],
      [1, 0.15729920705028513],
      [2, 0.004677734981047266],
      [3, 2.209049699858544e-5],
      [5, 1.5374597944280349e-12],
      [10, 2.088487583762545e-45],
      [-1, 1.8427007929497148],
      [-3, 1.9999779095030015],
    ];
    for (const [x, erfc] of reference) {
      expect(Math.abs(logErfc(x) - Math.log(erfc))).toBeLessThan(2e-7);
    }
    // Where erfc underflows a double, the log form still works: ln erfc(30) ≈ −903.974117 (asymptotic series).
    expect(logErfc(30)).toBeCloseTo(-903.974117, 5);
    expect(Number.isFinite(logErfc(1e6))).toBe(true);
  });
});

describe('PhiAccrualDetector', () => {
  it('is 0 before the first heartbeat', () => {
    const { mono, advance } = manual();
    const d = new PhiAccrualDetector({ monotonic: mono });
    advance(1e6);
    expect(d.phi()).toBe(0);
    expect(d.isAvailable()).toBe(true);
  });

  it('follows −log10 of the normal tail: φ(μ) = 0.301, φ(μ+σ) = 0.7995, φ(μ+3σ) = 2.869', () => {
    const { mono, advance } = manual();
    const d = new PhiAccrualDetector({ monotonic: mono, minStdDevMs: 0, windowSize: 1000 });
    // Intervals alternate 900 and 1100 ms: μ = 1000, σ = 100.
    d.heartbeat();
    for (let i = 0; i < 200; i++) {
      advance(i % 2 === 0 ? 900 : 1100);
      d.heartbeat();
    }
    expect(d.stats.meanMs).toBeCloseTo(1000, 6);
    expect(d.stats.stdDevMs).toBeCloseTo(100, 6);
    advance(1000);
    expect(d.phi()).toBeCloseTo(-Math.log10(0.5), 5);
    advance(100);
    expect(d.phi()).toBeCloseTo(-Math.log10(0.15865525393145707), 5);
    advance(200);
    expect(d.phi()).toBeCloseTo(-Math.log10(0.0013498980316301035), 4);
  });

  it('trusts a peer that keeps beating and suspects it soon after it stops', () => {
    const { mono, advance } = manual();
    const d = new PhiAccrualDetector({ monotonic: mono, threshold: 8 });
    const jitter = [0, 30, -20, 45, -35, 10, -5, 25];
    d.heartbeat();
    for (let i = 0; i < 300; i++) {
      advance(1000 + jitter[i % jitter.length]!);
      expect(d.isAvailable()).toBe(true);
      d.heartbeat();
    }
    // Silence: suspected after μ + ~5.6σ (σ floored at 50 ms), not before μ + 5σ.
    advance(1250);
    expect(d.isAvailable()).toBe(true);
    advance(100);
    expect(d.isAvailable()).toBe(false);
    advance(10_000_000);
    expect(d.phi()).toBeGreaterThan(1e6);
  });

  it('acceptablePauseMs postpones suspicion by that much', () => {
    const run = (acceptablePauseMs: number) => {
      const { mono, advance } = manual();
      const d = new PhiAccrualDetector({ monotonic: mono, acceptablePauseMs });
      d.heartbeat();
      for (let i = 0; i < 20; i++) {
        advance(100);
        d.heartbeat();
      }
      let waited = 0;
      while (d.isAvailable()) {
        advance(10);
        waited += 10;
      }
      return waited;
    };
    expect(run(3_000) - run(0)).toBe(3_000);
  });

  it('drops the seed once real intervals arrive', () => {
    const { mono, advance } = manual();
    const d = new PhiAccrualDetector({ monotonic: mono, firstHeartbeatEstimateMs: 1000 });
    expect(d.stats).toMatchObject({ meanMs: 1000, samples: 2 });
    d.heartbeat();
    advance(100);
    d.heartbeat();
    expect(d.stats.samples).toBe(3);
    advance(100);
    d.heartbeat();
    expect(d.stats).toEqual({ meanMs: 100, stdDevMs: 0, samples: 2 });
  });

  it('φ never decreases while no heartbeat arrives (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 5_000, noNaN: true }), { minLength: 1, maxLength: 50 }),
        fc.array(fc.double({ min: 0, max: 2_000, noNaN: true }), { minLength: 1, maxLength: 30 }),
        fc.double({ min: 0, max: 200, noNaN: true }),
        (intervals, waits, minStdDevMs) => {
          const { mono, advance } = manual();
          const d = new PhiAccrualDetector({ monotonic: mono, minStdDevMs, windowSize: 20 });
          d.heartbeat();
          for (const ms of intervals) {
            advance(ms);
            d.heartbeat();
          }
          let previous = d.phi();
          expect(previous).toBeGreaterThanOrEqual(0);
          for (const ms of waits) {
            advance(ms);
            const phi = d.phi();
            expect(phi).toBeGreaterThanOrEqual(previous - 1e-9);
            previous = phi;
          }
        },
      ),
      fcParams(500),
    );
  });

  it('rejects bad options with a typed error naming them', () => {
    expect(() => new PhiAccrualDetector({ threshold: -1 })).toThrow(/threshold/);
    expect(() => new PhiAccrualDetector({ windowSize: 0 })).toThrow(/windowSize/);
    expect(() => new PhiAccrualDetector({ minStdDevMs: NaN })).toThrow(/minStdDevMs/);
    expect(() => new PhiAccrualDetector({ firstHeartbeatEstimateMs: 0 })).toThrow(
      /firstHeartbeatEstimateMs/,
    );
  });
});
