/**
 * TrueClock.now() against its peer performance.now(), in the same run.
 * Target: TrueClock.now() costs at most 2× performance.now() (it reads the
 * monotonic and the wall clock on every call, as ClockBound's client does, to see
 * a suspend or step at once); aim for 1.6×.
 *
 *   npx vitest bench --run bench/truetime.bench.ts
 */
import { bench, describe } from 'vitest';
import { TrueClock } from '../src/index.js';
import { manualSource } from '../src/testing/index.js';

const source = manualSource();
const clock = new TrueClock({ source, maxUncertaintyMs: Infinity, watchdogIntervalMs: 0 });
const mono = performance.now();
source.push({ monotonicAt: mono, offsetMs: Date.now() - mono, errorMs: 1, source: 'bench' });

// A second clock that has learned the oscillator's frequency from a few samples:
// its readings take the learned-rate path.
const learnedSource = manualSource();
const learned = new TrueClock({
  source: learnedSource,
  maxUncertaintyMs: Infinity,
  watchdogIntervalMs: 0,
});
const base = performance.now();
const offset = Date.now() - base;
for (const ago of [3000, 2000, 1000, 1]) {
  learnedSource.push({ monotonicAt: base - ago, offsetMs: offset, errorMs: 0.2, source: 'bench' });
}

let sink = 0;

describe('reading the clock', () => {
  bench('performance.now()', () => {
    sink += performance.now();
  });
  bench('Date.now()', () => {
    sink += Date.now();
  });
  bench('TrueClock.now()', () => {
    sink += clock.now().latest;
  });
  bench('TrueClock.now(), frequency learned', () => {
    sink += learned.now().latest;
  });
});

export { sink };
