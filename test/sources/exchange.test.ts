import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, estimateExchange } from '../../src/index.js';
import { fcParams } from '../support/fc.js';

const EPOCH = Date.UTC(2026, 0, 1);

describe('estimateExchange', () => {
  it('computes θ, δ and λ from the four timestamps', () => {
    // Server clock = mono + EPOCH exactly; 3 ms out, 1 ms held, 7 ms back.
    const t1 = 1000;
    const t2 = EPOCH + 1003;
    const t3 = EPOCH + 1004;
    const t4 = 1011;
    const e = estimateExchange({ t1, t2, t3, t4 }, { maxDriftPpm: 0 });
    expect(e.delayMs).toBe(10);
    expect(e.offsetMs).toBe(EPOCH - 2); // asymmetry (3 − 7)/2
    expect(e.errorMs).toBe(5);
    expect(e.monotonicAt).toBe(t4);
    expect(e.consistent).toBe(true);
  });

  it('adds root delay/2, root dispersion, server error, precisions and drift', () => {
    const e = estimateExchange(
      { t1: 0, t2: 5, t3: 5, t4: 10 },
      {
        rootDelayMs: 4,
        rootDispersionMs: 1.5,
        serverErrorMs: 0.25,
        serverPrecisionMs: 0.125,
        localPrecisionMs: 0.0625,
        maxDriftPpm: 1000,
      },
    );
    expect(e.errorMs).toBeCloseTo(5 + 2 + 1.5 + 0.25 + 0.125 + 0.0625 + 0.01, 12);
  });

  it('marks a negative delay beyond the clocks’ resolution as inconsistent', () => {
    expect(estimateExchange({ t1: 0, t2: 100, t3: 120, t4: 10 }).consistent).toBe(false);
    // Within resolution: consistent, and the bound never uses a negative δ.
    const e = estimateExchange(
      { t1: 0, t2: 100, t3: 110.001, t4: 10 },
      { serverPrecisionMs: 0.001, maxDriftPpm: 0 },
    );
    expect(e.consistent).toBe(true);
    expect(e.errorMs).toBeCloseTo(0.001, 12);
  });

  it('rejects inputs that are not finite, T4 before T1 and negative bounds, naming them', () => {
    const ok = { t1: 0, t2: 1, t3: 1, t4: 2 };
    for (const name of ['t1', 't2', 't3', 't4'] as const) {
      expect(() => estimateExchange({ ...ok, [name]: NaN })).toThrow(
        expect.objectContaining({ argument: name }),
      );
    }
    expect(() => estimateExchange({ ...ok, t4: -1 })).toThrow(InvalidArgumentError);
    for (const name of [
      'rootDelayMs',
      'rootDispersionMs',
      'serverErrorMs',
      'serverPrecisionMs',
      'localPrecisionMs',
      'maxDriftPpm',
    ] as const) {
      expect(() => estimateExchange(ok, { [name]: -1 })).toThrow(
        expect.objectContaining({ argument: name }),
      );
    }
  });

  it('property: the interval contains the true offset for any delays, asymmetry, server error and drift within bound', () => {
    fc.assert(
      fc.property(
        fc.record({
          mono0: fc.double({ min: 0, max: 1e9, noNaN: true }),
          offset: fc.double({ min: -1e12, max: 2e12, noNaN: true }),
          out: fc.double({ min: 0, max: 500, noNaN: true }),
          hold: fc.double({ min: 0, max: 50, noNaN: true }),
          back: fc.double({ min: 0, max: 500, noNaN: true }),
          serverErrorMs: fc.double({ min: 0, max: 10, noNaN: true }),
          serverErrorFraction: fc.double({ min: -1, max: 1, noNaN: true }),
          driftPpm: fc.double({ min: -200, max: 200, noNaN: true }),
        }),
        (s) => {
          // True time runs at rate 1 + drift against the local monotonic clock.
          const rate = 1 + s.driftPpm * 1e-6;
          const trueAt = (mono: number): number => s.offset + s.mono0 + (mono - s.mono0) * rate;
          const serverError = s.serverErrorFraction * s.serverErrorMs;
          const t1 = s.mono0;
          const t4 = t1 + (s.out + s.hold + s.back) / rate;
          const t2 = trueAt(t1) + s.out + serverError;
          const t3 = t2 + s.hold;
          const e = estimateExchange(
            { t1, t2, t3, t4 },
            { serverErrorMs: s.serverErrorMs, maxDriftPpm: 200 },
          );
          const trueOffset = trueAt(t4) - t4;
          // Double rounding at epoch magnitudes: a few ulps.
          const slack = 4 * Number.EPSILON * Math.max(Math.abs(t2), Math.abs(trueOffset), 1);
          expect(e.consistent).toBe(true);
          expect(Math.abs(e.offsetMs - trueOffset)).toBeLessThanOrEqual(e.errorMs + slack);
        },
      ),
      fcParams(2000),
    );
  });
});
