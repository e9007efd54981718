import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromNanosBigInt, intervalContains, toNanosBigInt } from '../../src/index.js';
import { fcParams } from '../support/fc.js';

describe('nanosecond helpers', () => {
  it('round-trip integer nanoseconds exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 19n), max: 10n ** 19n }), (ns) => {
        const ms = fromNanosBigInt(ns);
        // A double keeps ~0.25 µs at today's epoch, so the round trip is within that.
        const back = toNanosBigInt(ms);
        const diff = back > ns ? back - ns : ns - back;
        expect(diff <= BigInt(Math.ceil(Math.abs(ms) * 2 ** -52 * 1e6)) + 1n).toBe(true);
      }),
      fcParams(2_000),
    );
    expect(toNanosBigInt(1.5)).toBe(1_500_000n);
    expect(toNanosBigInt(-1.5)).toBe(-1_500_000n);
    expect(fromNanosBigInt(1_700_000_000_000_123_456n) - 1_700_000_000_000).toBeCloseTo(
      0.123456,
      3,
    );
  });

  it('intervalContains is inclusive at both ends', () => {
    const r = {
      earliest: 1,
      latest: 2,
      estimate: 1.5,
      uncertaintyMs: 0.5,
      status: 'synchronized' as const,
    };
    expect(intervalContains(r, 1)).toBe(true);
    expect(intervalContains(r, 2)).toBe(true);
    expect(intervalContains(r, 2.0001)).toBe(false);
  });
});
