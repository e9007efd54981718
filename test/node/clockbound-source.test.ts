import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  TrueClock,
  systemMonotonic,
  type SourceContext,
  type SyncSample,
} from '../../src/index.js';
import {
  ClockboundSegmentWriter,
  clockboundSource,
  type ClockboundData,
  type ClockboundSource,
  type ClockboundSourceOptions,
} from '../../src/node/index.js';
import {
  encodeClockboundHeader,
  encodeClockboundSegment,
} from '../../src/node/clockbound-segment.js';
import { monotonicNowNs } from '../../src/node/host-clocks.js';
import { collectSamples, type CollectedSamples } from '../support/source-samples.js';
import { tempSegment, type TempSegment } from '../support/clockbound-host.js';
import { tightestWallCalibration } from '../support/host-clocks.js';
import { StepScheduler } from '../support/step-scheduler.js';

const MS = 1_000_000n;

type Harness = CollectedSamples;

const context: SourceContext = {
  maxDriftPpm: 200,
  predictUncertaintyMs: (errorMs, elapsedMs) => errorMs + 200e-6 * elapsedMs,
};

function attach(source: ClockboundSource, ctx: SourceContext = context): Harness {
  return collectSamples(source, systemMonotonic, ctx);
}

/**
 * A source on the test's segment whose polls run one `scheduler.step()` at a
 * time, with a harness attached.
 */
function steppedSource(options: Omit<ClockboundSourceOptions, 'path' | 'scheduler'> = {}) {
  const scheduler = new StepScheduler();
  const source = clockboundSource({ path, scheduler, ...options });
  return { scheduler, source, h: attach(source) };
}

function data(overrides: Partial<ClockboundData> = {}): ClockboundData {
  const now = monotonicNowNs();
  return {
    asOfNs: now - MS,
    voidAfterNs: now + 60_000n * MS,
    boundNs: 2n * MS,
    disruptionMarker: 7n,
    maxDriftPpb: 50_000,
    status: 'synchronized',
    ...overrides,
  };
}

let segment: TempSegment;
let path: string;
let writer: ClockboundSegmentWriter;
beforeEach(() => {
  segment = tempSegment();
  ({ path } = segment);
  writer = ClockboundSegmentWriter.open(path);
});
afterEach(() => {
  writer.close();
  segment.remove();
});

describe('clockboundSource', () => {
  it('turns a synchronized segment into samples: CLOCK_REALTIME ± bound + drift × age', async () => {
    writer.write(data({ asOfNs: monotonicNowNs() - 100n * MS }));
    const { scheduler, source, h } = steppedSource();
    scheduler.step();
    expect(h.problems).toEqual([]);
    expect(h.samples).toHaveLength(1);
    const s = h.samples[0] as SyncSample;
    const cal = tightestWallCalibration();
    // The sample says "true time = REALTIME ± error"; REALTIME − performance.now() is cal.offsetMs.
    // errorMs is the 2 ms bound, 50 ppm over ~100 ms of age (5 µs), and the errors of mapping
    // the clocks (µs-level; more under load), which must cover the difference.
    expect(Math.abs(s.offsetMs - cal.offsetMs)).toBeLessThanOrEqual(
      cal.errorMs + (s.errorMs - 2.005),
    );
    expect(s.errorMs).toBeGreaterThan(2.005);
    expect(s.errorMs).toBeLessThan(3);
    expect(s.source).toBe('clockbound');
    expect(s.monotonicAt).toBeLessThanOrEqual(performance.now());
    // The evidence is as old as as_of.
    expect(s.monotonicAt - (s.evidenceFrom ?? s.monotonicAt)).toBeGreaterThan(99);
    expect(source.snapshot).toMatchObject({ status: 'synchronized', boundNs: 2n * MS });
    // A synchronized segment gives a sample on every poll.
    scheduler.step();
    expect(h.samples).toHaveLength(2);
    await source.close();
    scheduler.step();
    expect(h.samples).toHaveLength(2);
  });

  it('feeds a TrueClock whose readings contain the system clock (the segment’s truth)', async () => {
    writer.write(data());
    const cal = tightestWallCalibration();
    const clock = new TrueClock({
      source: clockboundSource({ path, pollIntervalMs: 20 }),
      maxUncertaintyMs: 50,
    });
    try {
      await clock.ready({ timeoutMs: 10_000 });
      for (let i = 0; i < 5; i++) {
        const before = performance.now();
        const r = clock.now();
        const after = performance.now();
        // Trusted either way; free-running only if a loaded machine delayed the polls.
        expect(['synchronized', 'free-running']).toContain(r.status);
        expect(r.uncertaintyMs).toBeGreaterThan(2);
        expect(r.earliest).toBeLessThanOrEqual(after + cal.offsetMs + cal.errorMs);
        expect(r.latest).toBeGreaterThanOrEqual(before + cal.offsetMs - cal.errorMs);
      }
    } finally {
      await clock.close();
    }
  });

  it.each([
    ['segment-missing', (p: string) => rmSync(p)],
    [
      'segment-invalid',
      (p: string) => {
        const bytes = encodeClockboundSegment(data(), 2);
        bytes.set([0x41, 0x4d, 0x5a, 0x4e, 0x43, 0x42, 0x02, 0x00], 0); // PROTOCOL.md's byte order
        writeFileSync(p, bytes);
      },
    ],
    [
      'segment-version',
      (p: string) => {
        const bytes = encodeClockboundSegment(data(), 2);
        bytes.set(encodeClockboundHeader(2, 3), 0);
        writeFileSync(p, bytes);
      },
    ],
    ['segment-uninitialized', (p: string) => writeFileSync(p, encodeClockboundSegment(data(), 0))],
    ['segment-busy', (p: string) => writeFileSync(p, encodeClockboundSegment(data(), 13))],
    [
      'segment-expired',
      (p: string) =>
        writeFileSync(p, encodeClockboundSegment(data({ voidAfterNs: monotonicNowNs() - 1n }), 2)),
    ],
    [
      'segment-unknown',
      (p: string) => writeFileSync(p, encodeClockboundSegment(data({ status: 'unknown' }), 2)),
    ],
    [
      'disrupted',
      (p: string) => writeFileSync(p, encodeClockboundSegment(data({ status: 'disrupted' }), 2)),
    ],
    [
      'causality',
      (p: string) =>
        writeFileSync(
          p,
          encodeClockboundSegment(data({ asOfNs: monotonicNowNs() + 1000n * MS }), 2),
        ),
    ],
  ])('refuses with %s and delivers nothing', async (reason, prepare) => {
    writer.close();
    prepare(path);
    const { scheduler, source, h } = steppedSource({ maxRetries: 20 });
    scheduler.step();
    scheduler.step();
    expect(h.samples).toEqual([]);
    expect(h.problems.map((p) => p.reason)).toEqual([reason, reason]);
    expect(h.problems[0]?.source).toBe('clockbound');
    expect(h.problems[0]?.message).toContain(path);
    await source.close();
  });

  it('honours the 1 µs causality tolerance only: as_of just written passes', () => {
    const { scheduler, h } = steppedSource();
    writer.write(data({ asOfNs: monotonicNowNs() }));
    scheduler.step();
    expect(h.problems).toEqual([]);
    expect(h.samples).toHaveLength(1);
    h.stop();
  });

  it('recovers when the file appears or is fixed (it reopens the path)', () => {
    writer.close();
    rmSync(path);
    const { scheduler, h } = steppedSource();
    scheduler.step();
    expect(h.problems.map((p) => p.reason)).toEqual(['segment-missing']);
    writer = ClockboundSegmentWriter.open(path);
    writer.write(data());
    scheduler.step();
    expect(h.samples).toHaveLength(1);
    h.stop();
  });

  it('a disruption marker change: "disrupted", then nothing from before it, then fresh data', async () => {
    writer.write(data({ disruptionMarker: 1n }));
    const { scheduler, source, h } = steppedSource();
    scheduler.step();
    expect(h.samples).toHaveLength(1);

    // The writer saw a disruption; its data is still the old as_of.
    const old = monotonicNowNs() - 5n * MS;
    writer.write(data({ disruptionMarker: 2n, asOfNs: old }));
    const seenAt = performance.now();
    scheduler.step();
    expect(h.problems.map((p) => p.reason)).toEqual(['disrupted', 'stale-sample']);
    expect(h.problems[0]?.message).toMatch(/changed from 1 to 2/);
    scheduler.step();
    expect(h.samples).toHaveLength(1);

    writer.write(data({ disruptionMarker: 2n, asOfNs: monotonicNowNs() }));
    scheduler.step();
    expect(h.samples).toHaveLength(2);
    expect(h.samples[1]?.evidenceFrom ?? -Infinity).toBeGreaterThan(seenAt);
    await source.close();
  });

  it('tells a TrueClock of a marker change through a "disrupted" problem', async () => {
    writer.write(data({ disruptionMarker: 1n }));
    const clock = new TrueClock({ source: clockboundSource({ path, pollIntervalMs: 10 }) });
    try {
      await clock.ready({ timeoutMs: 10_000 });
      writer.write(data({ disruptionMarker: 2n, asOfNs: monotonicNowNs() - 5n * MS }));
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (clock.metrics().problems['disrupted'] !== undefined) resolve();
          else setTimeout(check, 5);
        };
        check();
      });
      // Nothing gathered before the change reaches the clock.
      const accepted = clock.metrics().samplesAccepted;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if ((clock.metrics().problems['stale-sample'] ?? 0) >= 3) resolve();
          else setTimeout(check, 5);
        };
        check();
      });
      expect(clock.metrics().samplesAccepted).toBe(accepted);
      expect(clock.lastProblem?.source).toBe('clockbound');
    } finally {
      await clock.close();
    }
  });

  it('a disrupted status refuses the data behind it even after the status clears', () => {
    const asOf = monotonicNowNs() - 5n * MS;
    writer.write(data({ asOfNs: asOf, status: 'disrupted' }));
    const { scheduler, h } = steppedSource();
    scheduler.step();
    writer.write(data({ asOfNs: asOf, status: 'synchronized' }));
    scheduler.step();
    expect(h.problems.map((p) => p.reason)).toEqual(['disrupted', 'stale-sample']);
    expect(h.samples).toEqual([]);
    writer.write(data({ asOfNs: monotonicNowNs() }));
    scheduler.step();
    expect(h.samples).toHaveLength(1);
    h.stop();
  });

  it('invalidate(): refuses data from before the given moment and polls at once', () => {
    writer.write(data({ asOfNs: monotonicNowNs() - 2n * MS }));
    const { scheduler, source, h } = steppedSource();
    scheduler.step();
    expect(h.samples).toHaveLength(1);
    source.invalidate(performance.now());
    scheduler.step();
    expect(h.problems.map((p) => p.reason)).toEqual(['stale-sample']);
    writer.write(data({ asOfNs: monotonicNowNs() }));
    scheduler.step();
    expect(h.samples).toHaveLength(2);
    h.stop();
  });

  it('free-running (or synchronized past the 5 s grace): a sample only when as_of moves', () => {
    const asOf = monotonicNowNs() - 2n * MS;
    writer.write(data({ asOfNs: asOf, status: 'free-running' }));
    const { scheduler, h } = steppedSource();
    scheduler.step();
    scheduler.step();
    expect(h.samples).toHaveLength(1);
    writer.write(data({ asOfNs: monotonicNowNs(), status: 'free-running' }));
    scheduler.step();
    scheduler.step();
    expect(h.samples).toHaveLength(2);
    // ClockBound's client calls synchronized data older than 5 s free-running.
    writer.write(data({ asOfNs: monotonicNowNs() - 6000n * MS, status: 'synchronized' }));
    scheduler.step();
    scheduler.step();
    expect(h.samples).toHaveLength(3);
    expect(h.samples[2]?.errorMs).toBeGreaterThan(2 + 50e-6 * 6000);
    expect(h.problems).toEqual([]);
    h.stop();
  });

  it('a segment drift bound above the clock’s: reported once, and covered for one poll gap', () => {
    writer.write(data({ maxDriftPpb: 500_000 }));
    const { scheduler, h } = steppedSource({ pollIntervalMs: 1000 });
    scheduler.step();
    scheduler.step();
    expect(h.problems.map((p) => p.reason)).toEqual(['drift-bound']);
    // (500 − 200) ppm over 1.5 s = 0.45 ms on top of the 2 ms bound.
    expect(h.samples[0]?.errorMs).toBeGreaterThan(2.45);
    h.stop();
  });

  it('validates its options', () => {
    expect(() => clockboundSource({ pollIntervalMs: 0 })).toThrow(/pollIntervalMs/);
    expect(() => clockboundSource({ maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() => clockboundSource({ path: '' })).toThrow(/path/);
    const s = clockboundSource();
    expect(s.path).toBe('/var/run/clockbound/shm0');
    expect(s.pollIntervalMs).toBe(1000);
    expect(s.maxSampleGapMs).toBe(1500);
  });

  it('costs microseconds per poll (measured)', () => {
    writer.write(data());
    const { scheduler, h } = steppedSource();
    scheduler.step(); // the first poll calibrates the wall clock (a spin of up to ~1 ms)
    const costs: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = process.hrtime.bigint();
      scheduler.step();
      costs.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    costs.sort((a, b) => a - b);
    const median = costs[costs.length >> 1] ?? Infinity;
    console.log(
      `clockboundSource: one poll costs ${median.toFixed(1)} µs (median of 2000; p90 ${costs[1800]?.toFixed(1)} µs)`,
    );
    expect(h.samples.length).toBe(2001);
    expect(median).toBeLessThan(500); // generous: a loaded 2-core machine
    h.stop();
  });
});

describe('clockboundSource against a writer in another process', () => {
  it('never delivers a torn snapshot while the writer rewrites thousands of times a second', async () => {
    const dist = pathToFileURL(
      join(import.meta.dirname, '..', '..', 'dist', 'node', 'index.js'),
    ).href;
    // Every field derives from k, so a body mixing two updates is recognizable.
    const code = `
      import { ClockboundSegmentWriter } from ${JSON.stringify(dist)};
      const w = ClockboundSegmentWriter.open(process.argv[1]);
      let i = 0, stop = false;
      process.on('SIGTERM', () => { stop = true; });
      let announced = false;
      const loop = () => {
        for (let n = 0; n < 200 && !stop; n++) {
          i++;
          const k = i % 1000, now = process.hrtime.bigint() - 1000000n;
          w.write({ asOfNs: now, voidAfterNs: now + 10000000000n + BigInt(k), boundNs: 1000000n + BigInt(k),
            disruptionMarker: 0n, maxDriftPpb: 10000 + k, status: 'synchronized' });
        }
        if (stop) { w.close(); console.log(JSON.stringify({ writes: i })); process.exit(0); }
        if (!announced) { announced = true; console.log('ready'); }
        setImmediate(loop);
      };
      loop();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const lines: string[] = [];
    const wake = new Set<() => void>();
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      lines.push(...chunk.split('\n').filter((l) => l !== ''));
      for (const w of [...wake]) w();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (lines.includes('ready')) resolve();
        };
        wake.add(check);
        check();
        void exited.then(() => reject(new Error(`writer exited early: ${out}`)));
      });
      const source = clockboundSource({ path, pollIntervalMs: 1, maxRetries: 100 });
      let torn = 0;
      let busy = 0;
      const other: string[] = [];
      const generations = new Set<number>();
      const enough = new Promise<number>((resolve) => {
        let count = 0;
        source.subscribe(
          (sample) => {
            const s = source.snapshot;
            if (s === undefined) return;
            const k = s.boundNs - 1_000_000n;
            if (
              k < 0n ||
              k >= 1000n ||
              BigInt(s.maxDriftPpb - 10_000) !== k ||
              s.voidAfterNs - s.asOfNs !== 10_000_000_000n + k ||
              !(sample.errorMs >= 1)
            ) {
              torn++;
            }
            generations.add(s.generation);
            if (++count === 400) resolve(count);
          },
          systemMonotonic,
          (p) => {
            if (p.reason === 'segment-busy') busy++;
            else other.push(`${p.reason}: ${p.message}`);
          },
          context,
        );
      });
      const samples = await enough;
      await source.close();
      child.kill('SIGTERM');
      await exited;
      const summary = JSON.parse(lines.at(-1) ?? '{}') as { writes?: number };
      console.log(
        `clockboundSource vs a writer process: ${samples} samples from ${generations.size} generations, ` +
          `${summary.writes} writes, ${busy} busy polls, ${torn} torn`,
      );
      expect(torn).toBe(0);
      expect(other).toEqual([]);
      expect(generations.size).toBeGreaterThan(10);
      expect(summary.writes ?? 0).toBeGreaterThan(1000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
