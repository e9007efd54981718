/**
 * chronobound against a real chronyd (Debian `chrony`): chronySource over the
 * cmdmon port, checked against `chronyc tracking`; ntpSource against chronyd's
 * NTP server; and chronyd as the client of our loopback NTP server.
 *
 * Two chronyds run side by side: `upstream` serves its own clock (`local
 * stratum 8`) over NTP; `downstream` synchronises to it with `offset 2.5`, so
 * it believes the system clock is 2.5 s slow and reports non-trivial numbers
 * (correction, root delay, dispersion, stratum 9) without touching the clock
 * (`-x`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClockUnsynchronizedError,
  TrueClock,
  systemMonotonic,
  type HostCorrection,
  type TimeReading,
  type WallCalibration,
} from '../../src/index.js';
import {
  CHRONY_LOCAL_REFERENCE_ID,
  chronyHostCorrection,
  chronySource,
  ntpSource,
  readChronyTracking,
} from '../../src/ntp/index.js';
import { createNtpServer } from '../../src/testing/node/index.js';
import {
  chronydMeasureOffset,
  locateChronyc,
  locateChronyd,
  parseChronycTracking,
  startChronyd,
  waitForTracking,
  type ChronydHandle,
} from './helpers/chronyd.js';
import { tightestWallCalibration } from '../support/host-clocks.js';

// Throws under CI when chronyd is missing: there it is a failure, never a skip.
const chronyd = locateChronyd();
const chronyc = locateChronyc();
if (chronyd === undefined || chronyc === undefined) {
  console.warn('chronyd/chronyc not installed: skipping the chrony integration tests.');
}

const CHRONY_OFFSET_S = 2.5;

/**
 * Reads the clock between two monotonic reads and checks that the interval
 * holds `system time + shiftMs` (system time mapped from Date.now() at sub-ms
 * precision). Returns the reading and where the target was.
 */
function expectContains(
  clock: TrueClock,
  cal: WallCalibration,
  shiftMs: number,
): { reading: TimeReading; target: number } {
  const before = systemMonotonic.now();
  const reading = clock.now();
  const after = systemMonotonic.now();
  const low = before + cal.offsetMs + shiftMs - cal.errorMs;
  const high = after + cal.offsetMs + shiftMs + cal.errorMs;
  expect(reading.earliest, 'earliest must not be after the target').toBeLessThanOrEqual(high);
  expect(reading.latest, 'latest must not be before the target').toBeGreaterThanOrEqual(low);
  return { reading, target: (low + high) / 2 };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(chronyd === undefined || chronyc === undefined)('real chronyd', () => {
  let upstream: ChronydHandle;
  let downstream: ChronydHandle;

  beforeAll(async () => {
    upstream = await startChronyd({ localStratum: 8 });
    downstream = await startChronyd({
      localStratum: false,
      serveNtp: false,
      extraConfig: [
        `server 127.0.0.1 port ${upstream.ntpPort} iburst minpoll -2 maxpoll -2 offset ${CHRONY_OFFSET_S}`,
      ],
    });
    await waitForTracking(downstream.cmdPort, (t) => t.leapStatus !== 3 && t.stratum === 9);
  });

  afterAll(async () => {
    await downstream?.stop();
    await upstream?.stop();
  });

  it('chronySource gives synchronized readings that contain the system time (local reference)', async () => {
    const source = chronySource({ port: upstream.cmdPort, pollIntervalMs: 200 });
    await using clock = new TrueClock({ source });
    await clock.ready({ timeoutMs: 5000 });
    expect(source.tracking?.refId).toBe(CHRONY_LOCAL_REFERENCE_ID);
    for (let i = 0; i < 5; i++) {
      const { reading } = expectContains(clock, tightestWallCalibration(), 0);
      expect(reading.status).toBe('synchronized');
      // chronyd reports no delay or dispersion for its own clock: what is left is 200 ppm
      // over the age of the reference time (refreshed about once a minute for a local
      // reference) and the tick-edge mapping (µs when idle, ms on a loaded machine).
      const ageMs = Date.now() - (source.tracking?.refTime ?? -Infinity);
      expect(reading.uncertaintyMs).toBeLessThan(200e-6 * ageMs + 5);
      await sleep(60);
    }
  });

  it('decodes the same numbers chronyc tracking prints', async () => {
    const first = await readChronyTracking({ port: downstream.cmdPort });
    const text = await downstream.chronyc('tracking');
    const second = await readChronyTracking({ port: downstream.cmdPort });
    const printed = parseChronycTracking(text);

    expect(printed.refIdHex).toBe(first.refId.toString(16).toUpperCase().padStart(8, '0'));
    expect(printed.refIdHex).toBe('7F000001');
    expect(first.ipAddr).toBe('127.0.0.1');
    expect(printed.stratum).toBe(first.stratum);
    expect(first.stratum).toBe(9);
    expect(printed.leapStatus).toBe('Normal');
    expect(first.leapStatus).toBe(0);

    // chronyc read in between our two reads; chronyd may update (every 0.25 s) meanwhile,
    // so each value must lie within the span of ours, give or take 50 µs.
    const between = (
      label: string,
      ours: (t: typeof first) => number,
      printedValue: number,
      tolerance: number = 0.05,
    ): void => {
      const lo = Math.min(ours(first), ours(second)) - tolerance;
      const hi = Math.max(ours(first), ours(second)) + tolerance;
      expect(printedValue, label).toBeGreaterThanOrEqual(lo);
      expect(printedValue, label).toBeLessThanOrEqual(hi);
    };
    between('system time', (t) => t.currentCorrectionMs, printed.systemTimeS * 1000);
    between('last offset', (t) => t.lastOffsetMs, printed.lastOffsetS * 1000);
    between('rms offset', (t) => t.rmsOffsetMs, printed.rmsOffsetS * 1000);
    between('root delay', (t) => t.rootDelayMs, printed.rootDelayS * 1000);
    between('root dispersion', (t) => t.rootDispersionMs, printed.rootDispersionS * 1000);
    // chronyc prints the update interval with one decimal.
    between('update interval', (t) => t.lastUpdateIntervalS, printed.updateIntervalS, 0.05);

    // The sign convention: offset 2.5 makes chronyd think the system clock is 2.5 s slow.
    expect(printed.systemTimeS).toBeGreaterThan(0);
    expect(Math.abs(first.currentCorrectionMs - CHRONY_OFFSET_S * 1000)).toBeLessThan(5);
    expect(first.rootDelayMs).toBeGreaterThan(0);
  });

  it('chronySource follows chronyd’s correction: true time = system time + 2.5 s', async () => {
    const source = chronySource({ port: downstream.cmdPort, pollIntervalMs: 200 });
    // |correction| stays in the bound (ClockBound's formula), so ε is about 2.5 s here.
    await using clock = new TrueClock({ source, maxUncertaintyMs: 10_000 });
    await clock.ready({ timeoutMs: 5000 });
    for (let i = 0; i < 3; i++) {
      const cal = tightestWallCalibration();
      const { reading, target } = expectContains(clock, cal, CHRONY_OFFSET_S * 1000);
      expectContains(clock, cal, 0);
      expect(reading.status).toBe('synchronized');
      expect(Math.abs(reading.estimate - target)).toBeLessThan(5 + cal.errorMs);
      expect(reading.uncertaintyMs).toBeGreaterThanOrEqual(CHRONY_OFFSET_S * 1000 - 5);
      await sleep(60);
    }
  });

  it('chronyHostCorrection reports chronyd’s remaining correction and frequency', async () => {
    const host = chronyHostCorrection({ port: downstream.cmdPort, pollIntervalMs: 200 });
    try {
      // The first report, or the last problem after a generous deadline (a loaded
      // machine may lose a poll to a timeout; the next one goes on).
      const correction = await new Promise<HostCorrection>((resolve, reject) => {
        let last = 'none';
        const deadline = setTimeout(
          () => reject(new Error(`no host correction within 10 s; last problem: ${last}`)),
          10_000,
        );
        host.subscribe(
          (c) => {
            clearTimeout(deadline);
            resolve(c);
          },
          systemMonotonic,
          (p) => (last = `${p.reason}: ${p.message}`),
        );
      });
      expect(Number.isFinite(correction.remainingCorrectionMs)).toBe(true);
      expect(Number.isFinite(correction.frequencyPpm)).toBe(true);
      expect(correction.source).toBe(`chrony 127.0.0.1:${downstream.cmdPort}`);
      // chronyd is slewing nothing out (-x): it still believes the clock 2.5 s slow.
      expect(Math.abs(correction.remainingCorrectionMs - CHRONY_OFFSET_S * 1000)).toBeLessThan(5);
    } finally {
      await host.close();
    }
  });

  it('an unsynchronised chronyd gives no sample, only chrony-unsynchronized problems', async () => {
    await using lonely = await startChronyd({ localStratum: false, serveNtp: false });
    const tracking = await readChronyTracking({ port: lonely.cmdPort });
    expect(tracking).toMatchObject({ refId: 0, stratum: 0, leapStatus: 3, ipAddr: null });
    const printed = parseChronycTracking(await lonely.chronyc('tracking'));
    expect(printed.leapStatus).toBe('Not synchronised');
    expect(printed.refIdHex).toBe('00000000');

    await using clock = new TrueClock({
      source: chronySource({ port: lonely.cmdPort, pollIntervalMs: 100 }),
    });
    await expect(clock.ready({ timeoutMs: 400 })).rejects.toBeInstanceOf(ClockUnsynchronizedError);
    expect(clock.lastProblem?.reason).toBe('chrony-unsynchronized');
    expect(clock.sample).toBeUndefined();
  });

  it('a stopped chronyd gives a timeout problem, never a hang', async () => {
    const gone = await startChronyd({ serveNtp: false });
    const port = gone.cmdPort;
    await gone.stop();
    const source = chronySource({ port, pollIntervalMs: 5000, timeoutMs: 200 });
    const started = performance.now();
    const problem = await new Promise<{ reason: string }>((resolve) => {
      source.subscribe(() => undefined, systemMonotonic, resolve);
    });
    await source.close();
    expect(problem.reason).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('ntpSource against chronyd’s NTP server gives synchronized readings containing the system time', async () => {
    const source = ntpSource({
      servers: [`127.0.0.1:${upstream.ntpPort}`],
      pollIntervalMs: 500,
      samplesPerPoll: 4,
      sampleSpacingMs: 0,
    });
    await using clock = new TrueClock({ source });
    // Not ready(): its first sample may carry ε over maxUncertaintyMs on a loaded machine.
    await clock.whenTrusted({ timeoutMs: 5000 });
    for (let i = 0; i < 5; i++) {
      const { reading } = expectContains(clock, tightestWallCalibration(), 0);
      expect(reading.status).toBe('synchronized');
      await sleep(60);
    }
  });

  it.each([2500, -750])(
    'chronyd -Q agrees with the loopback NTP server at offset %d ms',
    async (offsetMs) => {
      const server = await createNtpServer({ offsetMs });
      try {
        const measured = await chronydMeasureOffset([
          `server 127.0.0.1 port ${server.port} iburst minpoll -4 maxpoll -4`,
        ]);
        // The server's clock is performance.timeOrigin + performance.now() + offset,
        // which is not exactly Date.now() + offset: compare with the true difference.
        const cal = tightestWallCalibration();
        const p = systemMonotonic.now();
        const expectedMs = server.trueAt(p) - (p + cal.offsetMs);
        expect(Math.abs(expectedMs - offsetMs)).toBeLessThan(50);
        // Within chronyd's own error (largest delay/2 + dispersion of its measurements,
        // 0.1–0.6 ms on loopback), our mapping error, and 50 µs for chronyd's regression
        // over its samples and its 1 µs printout.
        const errorMs = measured.errorS * 1000 + cal.errorMs + 0.05;
        expect(Math.abs(measured.offsetS * 1000 - expectedMs), measured.output).toBeLessThanOrEqual(
          errorMs,
        );
      } finally {
        await server.close();
      }
    },
  );
});
