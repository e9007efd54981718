import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import {
  NTP_ERA1_EPOCH_MS,
  epochMsToNtp,
  ntpDifferenceMs,
  ntpEraNear,
  ntpEraOf,
  ntpToEpochMs,
  queryNtp,
} from '../../src/ntp/index.js';
import { createNtpServer } from '../../src/testing/node/index.js';
import { fcParams } from '../support/fc.js';
import { suiteFixture } from '../support/suite-fixture.js';

const ROLLOVER = Date.UTC(2036, 1, 7, 6, 28, 16);
const YEAR_MS = 365.25 * 86_400_000;

describe('NTP eras', () => {
  it('knows where era 1 starts', () => {
    expect(NTP_ERA1_EPOCH_MS).toBe(ROLLOVER);
    expect(epochMsToNtp(ROLLOVER)).toEqual({ seconds: 0, fraction: 0 });
    expect(epochMsToNtp(ROLLOVER - 1000)).toEqual({ seconds: 2 ** 32 - 1, fraction: 0 });
    expect(ntpEraOf(ROLLOVER - 1)).toBe(0);
    expect(ntpEraOf(ROLLOVER)).toBe(1);
    expect(ntpEraOf(Date.UTC(1899, 11, 31))).toBe(-1);
  });

  it('picks the era nearest the pivot across the 2036 rollover', () => {
    const justAfter = { seconds: 5, fraction: 0 };
    const justBefore = { seconds: 2 ** 32 - 5, fraction: 0 };
    for (const pivot of [ROLLOVER - 1000, ROLLOVER, ROLLOVER + 1000, Date.UTC(2026, 0, 1)]) {
      expect(ntpToEpochMs(justAfter, pivot)).toBe(ROLLOVER + 5000);
      expect(ntpToEpochMs(justBefore, pivot)).toBe(ROLLOVER - 5000);
    }
    // The 1900 reading only wins when the pivot is nearer 1900 than 2036.
    expect(ntpToEpochMs(justAfter, Date.UTC(1950, 0, 1))).toBe(Date.UTC(1900, 0, 1) + 5000);
    expect(ntpEraNear(0, Date.UTC(2100, 0, 1))).toBe(1);
  });

  it('property: epochMsToNtp then ntpToEpochMs returns the time to 2⁻³² s, in any era, with a pivot within 60 years', () => {
    fc.assert(
      fc.property(
        fc.double({ min: Date.UTC(1850, 0, 1), max: Date.UTC(2150, 0, 1), noNaN: true }),
        fc.double({ min: -60 * YEAR_MS, max: 60 * YEAR_MS, noNaN: true }),
        (ms, pivotDelta) => {
          const back = ntpToEpochMs(epochMsToNtp(ms), ms + pivotDelta);
          // Half a fraction unit plus the double's own rounding at this magnitude.
          const ulp = 2 * Number.EPSILON * Math.abs(ms);
          expect(Math.abs(back - ms)).toBeLessThanOrEqual(1000 / 2 ** 33 + ulp);
        },
      ),
      fcParams(5000),
    );
  });

  it('keeps sub-microsecond precision and carries a fraction that rounds up', () => {
    const base = Date.UTC(2026, 0, 1);
    const t = base + 0.000_25; // 250 ns, as near as a double at this magnitude gets (244 ns)
    const ts = epochMsToNtp(t);
    expect(ts.fraction).toBe(Math.round(((t - base) / 1000) * 2 ** 32));
    expect(ts.fraction).toBeGreaterThan(0);
    expect(Math.abs(ntpToEpochMs(ts, t) - t)).toBeLessThan(0.000_001);
    const carry = epochMsToNtp(Date.UTC(2026, 0, 1) + 999.999_999_99);
    expect(carry.fraction).toBe(0);
  });

  it('differences are exact and correct across the rollover', () => {
    expect(
      ntpDifferenceMs({ seconds: 1, fraction: 0 }, { seconds: 2 ** 32 - 1, fraction: 0 }),
    ).toBe(2000);
    expect(
      ntpDifferenceMs({ seconds: 2 ** 32 - 1, fraction: 0 }, { seconds: 1, fraction: 0 }),
    ).toBe(-2000);
    expect(ntpDifferenceMs({ seconds: 10, fraction: 1 }, { seconds: 10, fraction: 0 })).toBe(
      1000 / 2 ** 32,
    );
  });

  it('rejects malformed timestamps and pivots, naming them', () => {
    expect(() => ntpToEpochMs({ seconds: -1, fraction: 0 })).toThrow(
      expect.objectContaining({ argument: 'seconds' }),
    );
    expect(() => ntpToEpochMs({ seconds: 0, fraction: 2 ** 32 })).toThrow(
      expect.objectContaining({ argument: 'fraction' }),
    );
    expect(() => ntpToEpochMs({ seconds: 0, fraction: 0 }, NaN)).toThrow(InvalidArgumentError);
    expect(() => epochMsToNtp(Infinity)).toThrow(expect.objectContaining({ argument: 'epochMs' }));
  });
});

describe('a real exchange across the 2036 rollover', () => {
  const ntp = suiteFixture(createNtpServer);

  // The server's clock sits just before, at, and after the rollover; the client's
  // wall clock (the era pivot) is today's, ten years earlier.
  for (const around of [-2000, -0.5, -0.001, 0, 0.001, 3, 86_400_000 * 365 * 4]) {
    it(`server at rollover ${around >= 0 ? '+' : ''}${around} ms: offset within the bound`, async () => {
      const server = ntp();
      const stepBefore = ROLLOVER + around - server.trueNow();
      server.step(stepBefore);
      const x = await queryNtp({ host: server.host, port: server.port, timeoutMs: 1000 });
      const truth = server.trueAt(x.t4) - x.t4;
      expect(Math.abs(x.offsetMs - truth)).toBeLessThanOrEqual(x.errorMs);
      expect(x.t2).toBeGreaterThan(ROLLOVER - 10_000);
      server.step(-stepBefore);
    });
  }

  it('with the client pivot already in era 1, a server still in era 0 is read correctly', async () => {
    const server = ntp();
    server.step(ROLLOVER - 50 - server.trueNow());
    const x = await queryNtp({
      host: server.host,
      port: server.port,
      wall: { now: () => ROLLOVER + 10 * YEAR_MS },
    });
    expect(Math.abs(x.offsetMs - (server.trueAt(x.t4) - x.t4))).toBeLessThanOrEqual(x.errorMs);
    expect(x.t2).toBeLessThan(ROLLOVER);
  });
});
