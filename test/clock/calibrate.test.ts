import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { calibrateWall, systemMonotonic, systemWall } from '../../src/index.js';
import { fcParams } from '../support/fc.js';

describe('calibrateWall', () => {
  it('finds the tick edge of a 1 ms wall clock to within the bracket', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1.6e12, max: 1.9e12, noNaN: true }),
        fc.double({ min: 0.0005, max: 0.05, noNaN: true }),
        (base, readCost) => {
          let mono = 1000;
          const monoSource = { now: () => (mono += readCost) };
          const wall = { now: () => Math.floor(mono + base), resolutionMs: 1 };
          const c = calibrateWall(wall, monoSource);
          expect(c.edge).toBe(true);
          expect(Math.abs(c.offsetMs - base)).toBeLessThanOrEqual(c.errorMs + 1e-3);
          expect(c.errorMs).toBeLessThanOrEqual(2 * readCost + 1e-9);
        },
      ),
      fcParams(500),
    );
  });

  it('falls back to ±½ resolution, without hanging, when the wall clock never ticks', () => {
    let mono = 0;
    const c = calibrateWall({ now: () => 5000, resolutionMs: 1 }, { now: () => (mono += 0.01) });
    expect(c.edge).toBe(false);
    expect(c.errorMs).toBeGreaterThanOrEqual(0.5);
    expect(5000 + 0.5 - c.offsetMs).toBeCloseTo(c.monotonicAt, 6);
    // A frozen monotonic clock (virtual time) is bounded by iterations.
    const frozen = calibrateWall({ now: () => 5000 }, { now: () => 0 });
    expect(frozen.edge).toBe(false);
  });

  it('maps the real Date.now() onto performance.now() with sub-millisecond error', () => {
    const c = calibrateWall(systemWall, systemMonotonic);
    // Usually a few µs; generous because a loaded machine can preempt the spin.
    expect(c.errorMs).toBeLessThan(50);
    const mapped = systemMonotonic.now() + c.offsetMs;
    const wall = Date.now();
    // Date.now() floors, so it is at most 1 ms behind the mapped wall time.
    expect(wall).toBeGreaterThanOrEqual(Math.floor(mapped - c.errorMs - 2));
    expect(wall).toBeLessThanOrEqual(mapped + c.errorMs + 2);
  });
});
