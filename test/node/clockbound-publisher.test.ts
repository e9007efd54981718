import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TrueClock } from '../../src/index.js';
import { publishClockbound, readClockboundSegment } from '../../src/node/index.js';
import { monotonicNowNs } from '../../src/node/host-clocks.js';
import { manualSource, type ManualSource } from '../../src/testing/index.js';
import { tempSegment, type TempSegment } from '../support/clockbound-host.js';
import { tightestWallCalibration } from '../support/host-clocks.js';

let segment: TempSegment;
let path: string;
let source: ManualSource;
let clock: TrueClock;
let wallOffsetMs: number;
let wallErrorMs: number;

beforeEach(() => {
  segment = tempSegment();
  ({ path } = segment);
  source = manualSource(60_000);
  clock = new TrueClock({ source, watchdogIntervalMs: 0, maxDriftPpm: 100 });
  const best = tightestWallCalibration();
  wallOffsetMs = best.offsetMs;
  wallErrorMs = best.errorMs;
});
afterEach(async () => {
  await clock.close();
  segment.remove();
});

/** A sample saying true time is the system clock plus `aheadMs`, within `errorMs`. */
function push(aheadMs: number, errorMs: number): void {
  source.push({
    monotonicAt: performance.now(),
    offsetMs: wallOffsetMs + aheadMs,
    errorMs,
    source: 'manual',
  });
}

describe('publishClockbound', () => {
  it('says unknown until the first sample, then writes the change at once', async () => {
    const publisher = publishClockbound(clock, { path, updateMs: 3_600_000 });
    try {
      expect(publisher.writes).toBe(1);
      const first = readClockboundSegment(path);
      expect(first.status).toBe('unknown');
      expect(first.voidAfterNs).toBeLessThanOrEqual(monotonicNowNs());
      expect(first.maxDriftPpb).toBe(100_000);
      expect(first.disruptionSupport).toBe(false);

      push(5, 1);
      // The status change is written without waiting for the timer.
      expect(publisher.writes).toBe(2);
      const s = readClockboundSegment(path);
      expect(s.status).toBe('synchronized');
      // The bound is around the system clock: 5 ms away, ± 1 ms, plus the (µs-level, more under
      // load) errors of mapping the wall clock, here and in the publisher.
      expect(Number(s.boundNs) / 1e6).toBeGreaterThanOrEqual(6 - wallErrorMs);
      expect(Number(s.boundNs) / 1e6).toBeLessThan(6.5 + wallErrorMs);
      // as_of is 20 ms early, for readers on the coarse clock.
      const now = monotonicNowNs();
      expect(now - s.asOfNs).toBeGreaterThanOrEqual(20_000_000n);
      expect(now - s.asOfNs).toBeLessThan(2_000_000_000n);
      // void_after: when 6 ms growing at 100 ppm reaches the 50 ms limit, (50 − 6) / 100e-6 ms = 440 s.
      const validS = Number(s.voidAfterNs - s.asOfNs) / 1e9;
      expect(validS).toBeGreaterThan(435);
      expect(validS).toBeLessThan(441);
      expect(publisher.last?.boundNs).toBe(s.boundNs);
    } finally {
      await publisher.close();
    }
    const closed = readClockboundSegment(path);
    expect(closed.status).toBe('unknown');
    expect(closed.voidAfterNs).toBeLessThan(monotonicNowNs());
    expect(() => publisher.update()).toThrow(/closed/);
    await publisher.close();
  });

  it('rewrites every updateMs', async () => {
    push(0, 0.5);
    const publisher = publishClockbound(clock, { path, updateMs: 10 });
    try {
      const start = publisher.generation;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (publisher.writes >= 5) resolve();
          else setTimeout(check, 5);
        };
        check();
      });
      expect(readClockboundSegment(path).generation).toBeGreaterThanOrEqual(start + 8);
    } finally {
      await publisher.close();
    }
  });

  it('publishes a disruption at once, bumps the marker, and a restart continues the marker', async () => {
    push(0, 0.5);
    const first = publishClockbound(clock, { path, updateMs: 3_600_000 });
    clock.reportDisruption('test', 5, 'a pause');
    const disrupted = readClockboundSegment(path);
    expect(disrupted.status).toBe('disrupted');
    expect(disrupted.disruptionMarker).toBe(1n);
    expect(disrupted.voidAfterNs).toBe(disrupted.asOfNs);
    await first.close();
    const generation = readClockboundSegment(path).generation;

    const fresh = new TrueClock({ source: manualSource(), watchdogIntervalMs: 0 });
    const second = publishClockbound(fresh, { path, updateMs: 3_600_000 });
    try {
      const restarted = readClockboundSegment(path);
      expect(restarted.disruptionMarker).toBe(1n); // a restart is not a disruption
      expect(restarted.generation).toBe(generation + 2);
      expect(restarted.status).toBe('unknown');
    } finally {
      await second.close();
      await fresh.close();
    }
  });

  it('above maxUncertaintyMs the data is void at once', async () => {
    push(0, 0.5);
    const publisher = publishClockbound(clock, { path, maxUncertaintyMs: 0.1 });
    try {
      const s = readClockboundSegment(path);
      expect(s.voidAfterNs).toBe(s.asOfNs);
    } finally {
      await publisher.close();
    }
  });

  it('validates its options and reports an unusable path', () => {
    expect(() => publishClockbound(clock, { path, updateMs: 0 })).toThrow(/updateMs/);
    expect(() => publishClockbound(clock, { path, coarseTickMs: -1 })).toThrow(/coarseTickMs/);
    writeFileSync(path, 'a plain file');
    expect(() => publishClockbound(clock, { path: join(path, 'shm0') })).toThrow(/ENOTDIR|EEXIST/);
  });
});
