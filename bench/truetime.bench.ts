/**
 * TrueClock.now() against its peer performance.now(), in the same run.
 * Target: TrueClock.now() costs at most 1.5× performance.now().
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
});

export { sink };
