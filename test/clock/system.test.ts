import { afterEach, describe, expect, it, vi } from 'vitest';
import { measureResolution } from '../../src/clock/system.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.resetModules();
});

describe('measureResolution', () => {
  it('measures the step of a ticking clock', () => {
    let t = 0;
    expect(measureResolution(() => (t += 0.1))).toBeCloseTo(0.1, 9);
  });

  it('returns, with a documented 5 ms, for a clock that never ticks (Cloudflare Workers between I/O)', () => {
    let reads = 0;
    const frozen = (): number => {
      reads++;
      return 42;
    };
    expect(measureResolution(frozen)).toBe(5);
    expect(reads).toBeLessThanOrEqual(20_001);
  });

  it('reports a whole step for a coarse clock it sees tick only once', () => {
    // A 1 ms clock read every 0.0001 ms: one tick within the read budget.
    let reads = 0;
    const coarse = (): number => Math.floor((reads++ * 0.0001 + 0.42) / 1) * 1;
    expect(measureResolution(coarse)).toBe(1);
  });

  it('systemMonotonic.resolutionMs does not hang when performance.now() is frozen', async () => {
    vi.spyOn(performance, 'now').mockReturnValue(1234.5);
    const { systemMonotonic } = await import('../../src/clock/system.js');
    expect(systemMonotonic.resolutionMs).toBe(5);
  });
});
