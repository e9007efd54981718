/**
 * Faults where the selection across servers is involved, over real UDP with
 * loopback servers: a suspend with several servers (and with replies in flight),
 * one liar beside one silent server, a leap second. Each test waits for events
 * (status changes, server counters) and counts trusted readings that miss the
 * servers' truth: there must be none.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TrueClock, type ClockStatus, type TimeReading } from '../../src/index.js';
import { ntpSource, type NtpSourceOptions } from '../../src/ntp/index.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { missesBracket, recordFault, trusted } from '../support/fault-table.js';
import { until } from './_helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function servers(
  count: number,
  options: Parameters<typeof createNtpServer>[0] = {},
): Promise<LoopbackNtpServer[]> {
  const list = await Promise.all(Array.from({ length: count }, () => createNtpServer(options)));
  cleanups.push(() => Promise.all(list.map((s) => s.close())).then(() => undefined));
  return list;
}

/** A port nothing answers on. */
async function deadAddress(): Promise<string> {
  const s = await createNtpServer();
  const address = s.address;
  await s.close();
  return address;
}

function clockOn(addresses: string[], extra: Partial<NtpSourceOptions> = {}) {
  let wallShiftMs = 0;
  const clock = new TrueClock({
    source: ntpSource({
      servers: addresses,
      pollIntervalMs: 300,
      samplesPerPoll: 1,
      sampleSpacingMs: 0,
      timeoutMs: 250,
      ...extra,
    }),
    // Loopback replies may be held back on purpose (150 ms); judge trust by containment only.
    maxUncertaintyMs: 1_000,
    // The suspend is emulated by moving the wall clock (and the servers) together.
    wall: { now: () => Date.now() + wallShiftMs, resolutionMs: 1 },
    // The leap-second servers run weeks ahead of the system clock, up to the leap.
    panicThresholdMs: Infinity,
  });
  cleanups.push(() => clock.close());
  const statuses: ClockStatus[] = [];
  clock.onStatusChange((s) => statuses.push(s));
  return {
    clock,
    statuses,
    shiftWall: (ms: number): void => {
      wallShiftMs += ms;
    },
  };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Reads the clock on every event-loop turn while `keepGoing()` holds, bracketing
 * each reading with the truth before and after it. Counts trusted misses.
 */
async function probe(
  clock: TrueClock,
  truthAt: (performanceNow: number) => number,
  keepGoing: (reading: TimeReading, sinceStartMs: number) => boolean,
  options: { skip?: (low: number, high: number) => boolean } = {},
): Promise<{
  readings: number;
  misses: number;
  firstUntrustedMs: number | null;
  firstUntrustedReading: number | null;
}> {
  const start = performance.now();
  let readings = 0;
  let misses = 0;
  let firstUntrustedMs: number | null = null;
  let firstUntrustedReading: number | null = null;
  for (;;) {
    const p0 = performance.now();
    const r = clock.now();
    const p1 = performance.now();
    readings++;
    const low = truthAt(p0);
    const high = truthAt(p1);
    if (firstUntrustedMs === null && !trusted(r)) {
      firstUntrustedMs = p0 - start;
      firstUntrustedReading = readings - 1;
    }
    if (!(options.skip?.(low, high) ?? false) && trusted(r) && missesBracket(r, low, high))
      misses++;
    if (!keepGoing(r, p1 - start)) break;
    await nextTurn();
  }
  return { readings, misses, firstUntrustedMs, firstUntrustedReading };
}

/**
 * Once `clock` is ready, probes it for `forMs` against `server`'s truth and
 * expects no trusted miss and a synchronized clock at the end.
 */
async function expectSynchronizedOnTruth(
  clock: TrueClock,
  server: LoopbackNtpServer,
  forMs: number,
): Promise<{ readings: number; misses: number }> {
  await clock.ready({ timeoutMs: 10_000 });
  const result = await probe(
    clock,
    (p) => server.trueAt(p),
    (_, elapsed) => elapsed < forMs,
  );
  expect(result.misses).toBe(0);
  expect(clock.now().status).toBe('synchronized');
  return result;
}

/**
 * Emulates a 5 s suspend (the servers' truth and the client's wall clock jump, the
 * monotonic clock does not), runs `atResume`, then probes until the clock is
 * synchronized again and for one more second. No trusted reading may miss and
 * the clock must resynchronize; the row goes to the fault table with
 * `outcome(resynchronizedAtMs)`.
 */
async function suspendProbeAndRecord(
  list: readonly LoopbackNtpServer[],
  clock: TrueClock,
  shiftWall: (ms: number) => void,
  scenario: string,
  outcome: (resynchronizedAtMs: string) => string,
  atResume: () => void = () => undefined,
) {
  for (const s of list) s.step(5_000);
  shiftWall(5_000);
  atResume();
  let resynchronizedAt: number | null = null;
  const result = await probe(
    clock,
    (p) => (list[0] as LoopbackNtpServer).trueAt(p),
    (r, elapsed) => {
      if (resynchronizedAt === null && r.status === 'synchronized') resynchronizedAt = elapsed;
      return resynchronizedAt === null ? elapsed < 20_000 : elapsed < resynchronizedAt + 1_000;
    },
  );
  expect(result.misses).toBe(0);
  expect(resynchronizedAt).not.toBeNull();
  recordFault({
    scenario,
    readings: result.readings,
    misses: result.misses,
    detectionMs: result.firstUntrustedMs,
    outcome: outcome(((resynchronizedAt as number | null) ?? NaN).toFixed(0)),
    time: 'real UDP',
  });
  return result;
}

describe('a suspend with three servers', () => {
  it('is not ended by the pre-suspend votes of the other servers: no trusted reading misses, and the clock resynchronizes on fresh evidence', async () => {
    const list = await servers(3, { offsetMs: 250, driftSinceMs: 0 });
    const { clock, shiftWall } = clockOn(
      list.map((s) => s.address),
      { timeoutMs: 1_000 },
    );
    await clock.ready({ timeoutMs: 10_000 });
    // Let every server's filter fill with a few exchanges.
    const before = list.map((s) => s.stats.requests);
    await until(() => list.every((s, i) => s.stats.requests >= (before[i] ?? 0) + 3), 20_000);
    const result = await suspendProbeAndRecord(
      list,
      clock,
      shiftWall,
      'suspend 5 s, three servers (pre-suspend votes in the filters)',
      (ms) =>
        `disrupted on the first reading; synchronized again after ${ms} ms on post-suspend exchanges only`,
      () => {
        // Two servers miss their first request after the resume, so the first fresh answer
        // comes alone and would be outvoted by their pre-suspend exchanges if those counted.
        list[1]?.setFault('drop', { count: 1 });
        list[2]?.setFault('drop', { count: 1 });
      },
    );
    // The very first reading after the resume already refuses trust.
    expect(result.firstUntrustedReading).toBe(0);
  });

  it('with replies in flight across it: replies to requests sent before it are not evidence', async () => {
    // Stamped at once, delivered 150 ms later: the replies cross the suspend.
    const list = await servers(3, { offsetMs: -120, driftSinceMs: 0, responseDelayMs: 150 });
    const { clock, shiftWall } = clockOn(
      list.map((s) => s.address),
      { timeoutMs: 1_000 },
    );
    await clock.ready({ timeoutMs: 10_000 });
    // Wait for the moment every server has stamped a new request.
    const seen = list.map((s) => s.stats.requests);
    await until(() => list.every((s, i) => s.stats.requests > (seen[i] ?? 0)), 20_000);
    await suspendProbeAndRecord(
      list,
      clock,
      shiftWall,
      'suspend 5 s while three replies are in flight',
      (ms) => `in-flight replies dropped; synchronized again after ${ms} ms`,
    );
  });
});

describe('a liar beside a silent server', () => {
  it('one honest, one liar that overlaps it, one silent (f = 1): the hull of the two answers, wide but true', async () => {
    const [honest] = await servers(1, { offsetMs: 40, driftSinceMs: 0, rootDispersionMs: 1 });
    // Off by 2 ms with a 1.5 ms bound: it misses the truth but overlaps the honest interval.
    const [liar] = await servers(1, { offsetMs: 42, driftSinceMs: 0, rootDispersionMs: 1.5 });
    const h = honest as LoopbackNtpServer;
    const { clock } = clockOn([
      h.address,
      (liar as LoopbackNtpServer).address,
      await deadAddress(),
    ]);
    const result = await expectSynchronizedOnTruth(clock, h, 1_500);
    recordFault({
      scenario: 'one liar (overlapping) + one silent server of three',
      readings: result.readings,
      misses: result.misses,
      detectionMs: null,
      outcome: `synchronized on the hull of both answers (ε ≈ ${clock.now().uncertaintyMs.toFixed(2)} ms)`,
      time: 'real UDP',
    });
  });

  it('two configured, one dead (f = 0): the live one alone synchronizes the clock', async () => {
    const [good] = await servers(1, { offsetMs: -75, driftSinceMs: 0 });
    const g = good as LoopbackNtpServer;
    const { clock } = clockOn([g.address, await deadAddress()]);
    await expectSynchronizedOnTruth(clock, g, 500);
  });
});

describe('a leap second over UDP', () => {
  it('three stepping servers announce an insert and step back 1 s: no trusted reading misses stepped or smeared UTC; strict calls never answer wrongly', async () => {
    const leapAt = Date.UTC(2027, 0, 1);
    const origin = performance.now();
    // Every server's leap-free clock reads leapAt − 2.5 s at `origin`.
    const offsetMs = leapAt - 2_500 - (performance.timeOrigin + origin);
    const list = await servers(3, {
      offsetMs,
      driftSinceMs: origin,
      leapSecond: { atMs: leapAt, direction: 'insert', mode: 'step' },
    });
    const s0 = list[0] as LoopbackNtpServer;
    const leapFreeAt = (p: number): number => performance.timeOrigin + p + offsetMs;
    const smearedAt = (p: number): number => {
      const t = leapFreeAt(p);
      const day = 24 * 3600 * 1000;
      return t - 1000 * Math.min(1, Math.max(0, (t - (leapAt - day / 2)) / day));
    };
    const { clock } = clockOn(
      list.map((s) => s.address),
      { pollIntervalMs: 100 },
    );
    await clock.ready({ timeoutMs: 10_000 });
    let wrongStrict = 0;
    let readings = 0;
    let misses = 0;
    while (leapFreeAt(performance.now()) < leapAt + 2_200) {
      const p0 = performance.now();
      const r = clock.now();
      // Strict calls on what the clock knows now: the truth is at least truth(p0) and at
      // most truth(p1) unless the step falls in between, and such readings are skipped.
      const truthLow = s0.trueAt(p0);
      const passed = trusted(r) ? clock.after(truthLow + 1) : false;
      const ahead = trusted(r) ? clock.before(truthLow - 1) : false;
      const p1 = performance.now();
      readings++;
      const straddles = leapFreeAt(p0) < leapAt && leapFreeAt(p1) >= leapAt;
      if (trusted(r) && !straddles) {
        if (missesBracket(r, truthLow, s0.trueAt(p1))) misses++;
        // While the clock still rests on a pre-leap sample, smeared UTC is inside too.
        if (
          clock.sample?.leapSecond !== undefined &&
          missesBracket(r, smearedAt(p0), smearedAt(p1))
        )
          misses++;
        // after(t) claims t has passed; t = truth(p0) + 1 ms has not, unless p1 − p0 > 1 ms.
        if (passed && s0.trueAt(p1) <= truthLow + 1) wrongStrict++;
        if (ahead) wrongStrict++;
      }
      await nextTurn();
    }
    expect(misses).toBe(0);
    expect(wrongStrict).toBe(0);
    // Post-leap exchanges took over: narrow again, on stepped UTC.
    await until(
      () => clock.now().uncertaintyMs < 50 && clock.sample?.leapSecond === undefined,
      5_000,
    );
    recordFault({
      scenario: 'leap second (insert), three stepping servers announce it',
      readings,
      misses,
      detectionMs: null,
      outcome: `one second wider until post-leap exchanges; ${wrongStrict} wrong strict answers`,
      time: 'real UDP',
    });
  });
});
