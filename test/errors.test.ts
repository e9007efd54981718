import { describe, expect, it } from 'vitest';
import { ClockUnsynchronizedError } from '../src/index.js';

describe('ClockUnsynchronizedError', () => {
  it('tells a caller of ready() to check the source, not to wait for ready()', () => {
    const e = new ClockUnsynchronizedError(
      'ready()',
      'unsynchronized',
      Infinity,
      'no sample within 5000 ms; last problem: 3 of 3 servers timed out.',
    );
    expect(e.message).not.toMatch(/Wait for clock\.ready\(\)/);
    expect(e.message).toMatch(/Check the time source\.$/);
    expect(e.message).not.toMatch(/\.\./);
  });

  it('tells a caller of a strict operation to wait for ready()', () => {
    const e = new ClockUnsynchronizedError('after()', 'disrupted', 12.5);
    expect(e.message).toBe(
      'after() refused: the clock is disrupted (uncertainty 12.5 ms). Wait for clock.ready() or check the time source.',
    );
    expect(e.code).toBe('CLOCK_UNSYNCHRONIZED');
  });
});
