import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClockFilter, type FilterSample } from '../../src/index.js';
import { fcParams } from '../support/fc.js';

function sample(monotonicAt: number, delayMs: number, offsetMs = 0): FilterSample {
  return { monotonicAt, offsetMs, delayMs, errorMs: delayMs / 2 };
}

describe('ClockFilter', () => {
  it('keeps the last 8 samples and picks the minimum-delay one', () => {
    const filter = new ClockFilter();
    const delays = [9, 4, 7, 3, 8, 6, 5, 10, 11];
    delays.forEach((d, i) => filter.add(sample(i, d, i)));
    expect(filter.samples).toHaveLength(8);
    expect(filter.samples[0]?.delayMs).toBe(4); // the first (9) fell out
    expect(filter.best()?.delayMs).toBe(3);
  });

  it('forgets the best sample once it falls out of the window', () => {
    const filter = new ClockFilter({ size: 2 });
    filter.add(sample(0, 1));
    filter.add(sample(1, 5));
    expect(filter.best()?.delayMs).toBe(1);
    filter.add(sample(2, 6));
    expect(filter.best()?.delayMs).toBe(5);
  });

  it('ages kept samples at 15 ppm so an old low-delay sample loses to a fresh one eventually', () => {
    const filter = new ClockFilter();
    filter.add(sample(0, 2)); // errorMs 1
    filter.add(sample(0, 2.2)); // errorMs 1.1, same age: loses
    expect(filter.best(0)?.delayMs).toBe(2);
    filter.add(sample(10_000, 2.1)); // 10 s later: old one is at 1 + 0.15
    expect(filter.best(10_000)?.delayMs).toBe(2.1);
    // With RFC aging disabled the oldest minimum-delay sample wins.
    const flat = new ClockFilter({ agingPpm: 0 });
    flat.add(sample(0, 2));
    flat.add(sample(10_000, 2.1));
    expect(flat.best()?.delayMs).toBe(2);
  });

  it('property: best() is a kept sample with the minimum aged bound', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.double({ min: 0, max: 10_000, noNaN: true }),
            delay: fc.double({ min: 0, max: 100, noNaN: true }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (entries) => {
          const filter = new ClockFilter();
          let t = 0;
          for (const e of entries) filter.add(sample((t += e.gap), e.delay));
          const kept = filter.samples;
          expect(kept.length).toBe(Math.min(8, entries.length));
          const best = filter.best(t);
          expect(kept).toContain(best);
          const key = (s: FilterSample): number => s.errorMs + 15e-6 * (t - s.monotonicAt);
          for (const s of kept) expect(key(best!)).toBeLessThanOrEqual(key(s));
        },
      ),
      fcParams(500),
    );
  });

  it('reports jitter as the RMS offset difference from the best sample', () => {
    const filter = new ClockFilter();
    expect(filter.jitterMs()).toBe(0);
    filter.add(sample(0, 1, 10));
    filter.add(sample(1, 2, 12));
    filter.add(sample(2, 3, 6));
    expect(filter.jitterMs()).toBeCloseTo(Math.sqrt((0 + 4 + 16) / 2), 12);
    filter.clear();
    expect(filter.samples).toHaveLength(0);
    expect(filter.best()).toBeUndefined();
  });

  it('rejects bad options and malformed samples, naming them', () => {
    expect(() => new ClockFilter({ size: 0 })).toThrow(
      expect.objectContaining({ argument: 'size' }),
    );
    expect(() => new ClockFilter({ agingPpm: -1 })).toThrow(
      expect.objectContaining({ argument: 'agingPpm' }),
    );
    const filter = new ClockFilter();
    expect(() => filter.add({ ...sample(0, 1), offsetMs: NaN })).toThrow(
      expect.objectContaining({ argument: 'offsetMs' }),
    );
    expect(() => filter.add({ ...sample(0, 1), errorMs: -1 })).toThrow(
      expect.objectContaining({ argument: 'errorMs' }),
    );
    expect(filter.samples).toHaveLength(0);
  });
});
