/**
 * Rows of the adversarial table in docs/truetime.md. Each fault test measures
 * its scenario and calls `recordFault`; the row is printed, and appended as a
 * JSON line to `$CHRONOBOUND_FAULT_TABLE` when set (`npm run docs:faults`
 * renders the file into the docs).
 */
import { appendFileSync } from 'node:fs';
import type { TimeReading } from '../../src/index.js';

export interface FaultRow {
  /** What happened, in a few words. */
  readonly scenario: string;
  /** Readings taken after the fault. */
  readonly readings: number;
  /** Trusted readings (synchronized or free-running) whose interval missed the truth. */
  readonly misses: number;
  /** How long after the fault the clock stopped trusting itself or fixed its bound (ms), if it had to. */
  readonly detectionMs: number | null;
  /** What the clock did, e.g. `disrupted at once; synchronized again after 3 exchanges`. */
  readonly outcome: string;
  /** Where the test runs: virtual time or real UDP. */
  readonly time: 'virtual' | 'real UDP';
}

export function recordFault(row: FaultRow): void {
  console.log(
    `fault: ${row.scenario} | ${row.readings} readings | ${row.misses} trusted misses | ` +
      `detected after ${row.detectionMs === null ? '—' : `${row.detectionMs.toFixed(3)} ms`} | ${row.outcome}`,
  );
  const file = process.env['CHRONOBOUND_FAULT_TABLE'];
  if (file !== undefined && file !== '') appendFileSync(file, `${JSON.stringify(row)}\n`);
}

/** Whether a reading is trusted (strict calls would act on it). */
export function trusted(reading: TimeReading): boolean {
  return reading.status === 'synchronized' || reading.status === 'free-running';
}

/**
 * Whether the reading misses any of `truths`, every one of which it must contain:
 * several readings of UTC are legitimate around a leap second (stepped and
 * smeared).
 */
export function misses(reading: TimeReading, truths: readonly number[]): boolean {
  return truths.some((t) => t < reading.earliest || t > reading.latest);
}

/** Whether the reading misses a truth known only within `[low, high]` (read before and after it). */
export function missesBracket(reading: TimeReading, low: number, high: number): boolean {
  return high < reading.earliest || low > reading.latest;
}
