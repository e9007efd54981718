import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { ClockUnsynchronizedError, InvalidArgumentError } from '../../src/index.js';
import {
  formatReading,
  formatTimestamp,
  fromDateTime,
  toDateTime,
  toLuxonInterval,
} from '../../src/luxon/index.js';
import { formatUtcMicros } from '../../src/truetime/format.js';
import { truthfulSample } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { simulatedRig } from '../support/clock.js';
import { centredReading } from '../support/readings.js';

const T = Date.UTC(2026, 10, 22, 10, 0, 0); // 2026-11-22T10:00:00Z

/** What a clock with no sample reads: no finite bound. */
const unsynchronized = centredReading(T, Infinity, 'unsynchronized');

/** Parses our microsecond ISO back to epoch ms (µs precision) without luxon. */
function parseMicros(iso: string): number {
  const m = /^(.*T\d{2}:\d{2}:\d{2}\.\d{3})(\d{3})(Z|[+-]\d{2}:\d{2})$/.exec(iso);
  if (!m) throw new Error(`not a microsecond ISO string: ${iso}`);
  return Date.parse(`${m[1]}${m[3]}`) + Number(m[2]) / 1000;
}

const epochMs = fc.double({ min: -1e13, max: 1e13, noNaN: true });

describe('formatReading', () => {
  it('prints the estimate with microseconds and ε with three decimals', () => {
    expect(formatReading(centredReading(T + 123.456, 1.234))).toBe(
      '2026-11-22T10:00:00.123456Z ± 1.234 ms',
    );
  });

  it('rounds to the nearest microsecond, carrying into the seconds', () => {
    expect(formatReading(centredReading(T + 999.9996, 0.0004))).toBe(
      '2026-11-22T10:00:01.000000Z ± 0.000 ms',
    );
  });

  it('prints ∞ for a clock with no sample', () => {
    expect(formatReading(unsynchronized)).toBe('2026-11-22T10:00:00.000000Z ± ∞ ms');
  });

  it('shows other zones with their offset', () => {
    expect(formatReading(centredReading(T + 0.5, 2), { zone: 'Europe/Paris' })).toBe(
      '2026-11-22T11:00:00.000500+01:00 ± 2.000 ms',
    );
  });

  it('names an unknown zone', () => {
    expect(() => formatReading(centredReading(T, 1), { zone: 'Mars/Olympus' })).toThrow(
      InvalidArgumentError,
    );
    expect(() => formatReading(centredReading(T, 1), { zone: 'Mars/Olympus' })).toThrow(/zone/);
  });

  it('formats a real TrueClock reading', async () => {
    const { sim, source, clock } = simulatedRig({ sim: { trueTimeMs: T } });
    source.push(truthfulSample(sim, 1.5));
    sim.advance(1000);
    // ε = 1.5 + 200 ppm × 1000 ms = 1.7 ms, plus the ~3 µs double-rounding guard.
    expect(formatReading(clock.now())).toBe('2026-11-22T10:00:01.000000Z ± 1.703 ms');
    await clock.close();
  });
});

describe('formatTimestamp', () => {
  it('matches the luxon-free formatter in UTC, and parses back within half a microsecond', () => {
    fc.assert(
      fc.property(epochMs, (ms) => {
        const text = formatTimestamp(ms);
        expect(text).toBe(formatUtcMicros(ms));
        expect(Math.abs(parseMicros(text) - ms)).toBeLessThanOrEqual(
          0.0005 + Math.abs(ms) * 2 ** -50,
        );
      }),
      fcParams(300),
    );
  });

  it('handles times before the epoch', () => {
    expect(formatTimestamp(-1.5)).toBe('1969-12-31T23:59:59.998500Z');
  });

  it('rejects non-finite and out-of-range input, naming it', () => {
    expect(() => formatTimestamp(Number.NaN)).toThrow(/Invalid ts/);
    expect(() => formatTimestamp(Infinity)).toThrow(InvalidArgumentError);
    expect(() => formatTimestamp(9e15)).toThrow(InvalidArgumentError);
  });
});

describe('toDateTime / fromDateTime', () => {
  it('round-trips fractional epoch milliseconds exactly', () => {
    fc.assert(
      fc.property(epochMs, (ms) => {
        expect(fromDateTime(toDateTime(ms))).toBe(ms);
        expect(fromDateTime(toDateTime(ms, 'America/New_York'))).toBe(ms);
      }),
      fcParams(300),
    );
  });

  it('defaults to UTC and honours a zone', () => {
    expect(toDateTime(T).zoneName).toBe('UTC');
    expect(toDateTime(T, 'Asia/Tokyo').hour).toBe(19);
  });

  it('rejects an invalid DateTime and things that are not DateTimes', () => {
    expect(() => fromDateTime(DateTime.invalid('broken'))).toThrow(InvalidArgumentError);
    expect(() => fromDateTime({ toMillis: () => 1 } as unknown as DateTime)).toThrow(/Invalid dt/);
  });

  it('rejects a bad timestamp or zone', () => {
    expect(() => toDateTime(Number.NaN)).toThrow(/Invalid ts/);
    expect(() => toDateTime(T, 'No/Such_Zone')).toThrow(/Invalid zone/);
  });
});

describe('toLuxonInterval', () => {
  it('spans exactly [earliest, latest] and contains what the reading contains', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 4e12, noNaN: true }),
        fc.double({ min: 0, max: 1e4, noNaN: true }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        (estimate, eps, where) => {
          const r = centredReading(estimate, eps);
          const interval = toLuxonInterval(r);
          expect(interval.isValid).toBe(true);
          expect(interval.start?.toMillis()).toBe(r.earliest);
          expect(interval.end?.toMillis()).toBe(r.latest);
          const inside = Math.min(r.latest, Math.max(r.earliest, estimate + where * eps));
          // luxon intervals are half-open: [start, end).
          if (inside < r.latest) expect(interval.contains(DateTime.fromMillis(inside))).toBe(true);
          expect(interval.contains(DateTime.fromMillis(r.latest + 1))).toBe(false);
        },
      ),
      fcParams(300),
    );
  });

  it('refuses a reading with no finite bound', () => {
    expect(unsynchronized).toMatchObject({ earliest: -Infinity, latest: Infinity });
    expect(() => toLuxonInterval(unsynchronized)).toThrow(ClockUnsynchronizedError);
  });
});

describe('the built chronobound/luxon entry point', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const run = (args: string[]): string =>
    execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();

  it('imports as ESM and requires as CommonJS, with luxon resolved as a peer', () => {
    expect(
      run([
        '--input-type=module',
        '-e',
        "import { formatTimestamp } from 'chronobound/luxon'; console.log(formatTimestamp(1795341600123.456))",
      ]),
    ).toBe('2026-11-22T10:00:00.123456Z');
    expect(
      run([
        '-e',
        "const { formatReading } = require('chronobound/luxon'); console.log(formatReading({ estimate: 1795341600123.456, uncertaintyMs: 1.234, earliest: 0, latest: 0, status: 'synchronized' }, { zone: 'Asia/Tokyo' }))",
      ]),
    ).toBe('2026-11-22T19:00:00.123456+09:00 ± 1.234 ms');
  });
});
