import { afterEach, describe, expect, it } from 'vitest';
import {
  ClockUnsynchronizedError,
  InvalidArgumentError,
  SourceUnavailableError,
  TrueClock,
  type ClockStatus,
  type MonotonicSource,
  type SourceProblem,
  type SyncSample,
} from '../../src/index.js';
import { ntpSource, type NtpSourceOptions } from '../../src/ntp/index.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { openSockets, settleSockets, until } from './_helpers.js';
import { requireNumber, requirePositive } from '../../src/_internals/validate.js';

/** performance.now() that remembers its last reading, to know the truth at that instant. */
function recordingMonotonic(): MonotonicSource & { last: number } {
  const m = {
    last: 0,
    resolutionMs: 0.001,
    now: () => (m.last = performance.now()),
  };
  return m;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(
  options: Parameters<typeof createNtpServer>[0] = {},
): Promise<LoopbackNtpServer> {
  const s = await createNtpServer(options);
  cleanups.push(() => s.close());
  return s;
}

function fast(servers: string[], extra: Partial<NtpSourceOptions> = {}): NtpSourceOptions {
  return {
    servers,
    pollIntervalMs: 40,
    samplesPerPoll: 2,
    sampleSpacingMs: 0,
    timeoutMs: 100,
    // A fixed interval: at 40 ms any drift bound would let the adaptive policy lengthen it
    // (test/ntp/polling.test.ts covers the policy in virtual time).
    targetUncertaintyMs: 0,
    ...extra,
  };
}

function clockFor(
  source: ReturnType<typeof ntpSource>,
  extra: Partial<ConstructorParameters<typeof TrueClock>[0]> = {},
) {
  const monotonic = recordingMonotonic();
  const problems: SourceProblem[] = [];
  const clock = new TrueClock({
    source,
    monotonic,
    watchdogIntervalMs: 0,
    maxUncertaintyMs: 1000,
    ...extra,
  });
  cleanups.push(() => clock.close());
  return { clock, monotonic, problems };
}

describe('ntpSource', () => {
  it('feeds a TrueClock whose interval contains the server’s true time', async () => {
    const s = await server({
      offsetMs: 3_600_000,
      requestDelayMs: 1,
      responseDelayMs: 4,
      driftPpm: 50,
    });
    // The server answers in about 5 ms; a 2 s timeout keeps a loaded machine's late reply from
    // counting as a failure (at 100 ms the server was once 'unreachable' at the end).
    const source = ntpSource(fast([s.address], { timeoutMs: 2000 }));
    // Generous: a loaded CI machine may stall the 40 ms poll loop for a while.
    const { clock, monotonic } = clockFor(source, {
      freeRunningAfterMs: 5000,
      panicThresholdMs: Infinity, // the server is an hour ahead of the system clock on purpose
    });
    // Not ready(): on a loaded machine the first exchange's ε can exceed maxUncertaintyMs.
    await clock.whenTrusted({ timeoutMs: 10_000 });
    for (let i = 0; i < 20; i++) {
      const r = clock.now();
      const truth = s.trueAt(monotonic.last);
      expect(r.earliest).toBeLessThanOrEqual(truth);
      expect(r.latest).toBeGreaterThanOrEqual(truth);
      expect(r.status).toBe('synchronized');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const [status] = source.servers();
    expect(status).toMatchObject({
      server: s.address,
      state: 'ok',
      selection: 'truechimer',
      consecutiveFailures: 0,
    });
    expect(status!.reach & 1).toBe(1);
    expect(status!.best?.stratum).toBe(1);
    expect(source.pollIntervalMs).toBe(40);
    expect(source.lastSelection()).toMatchObject({ ok: true, configured: 1 });
  });

  it('with three servers casts out a falseticker, reports it, and keeps the truth', async () => {
    const good1 = await server({ offsetMs: 10, responseDelayMs: 2 });
    const good2 = await server({ offsetMs: 10, requestDelayMs: 2 });
    const liar = await server({ offsetMs: 900 });
    const source = ntpSource(fast([good1.address, good2.address, liar.address]));
    const { clock, monotonic } = clockFor(source);
    const problems: SourceProblem[] = [];
    const unsubscribe = source.subscribe(
      () => undefined,
      monotonic,
      (p) => problems.push(p),
    );
    cleanups.push(() => Promise.resolve(unsubscribe()));
    await clock.ready({ timeoutMs: 2000 });
    await until(() => source.servers().every((x) => x.selection !== undefined));
    const r = clock.now();
    const truth = good1.trueAt(monotonic.last);
    expect(r.earliest).toBeLessThanOrEqual(truth);
    expect(r.latest).toBeGreaterThanOrEqual(truth);
    expect(r.uncertaintyMs).toBeLessThan(100);
    expect(source.servers().map((x) => x.selection)).toEqual([
      'truechimer',
      'truechimer',
      'falseticker',
    ]);
    expect(
      problems.some((p) => p.reason === 'falseticker' && p.message.includes(liar.address)),
    ).toBe(true);
  });

  it("delivers no sample when no majority agrees, and says 'no-majority'", async () => {
    const a = await server({ offsetMs: 0 });
    const b = await server({ offsetMs: 5000 });
    const source = ntpSource(fast([a.address, b.address]));
    const samples: SyncSample[] = [];
    const problems: SourceProblem[] = [];
    const monotonic = recordingMonotonic();
    const unsubscribe = source.subscribe(
      (x) => samples.push(x),
      monotonic,
      (p) => problems.push(p),
    );
    cleanups.push(async () => {
      unsubscribe();
      await source.close();
    });
    await until(() => problems.some((p) => p.reason === 'no-majority'));
    expect(samples).toHaveLength(0);
    expect(source.lastSelection()).toMatchObject({ ok: false, reason: 'no-majority', required: 2 });
  });

  it('backs off on a RATE kiss code and stops on DENY', async () => {
    const rate = await server({ kissCode: 'RATE' });
    const deny = await server({ kissCode: 'DENY' });
    const ok = await server();
    const source = ntpSource(
      fast([rate.address, deny.address, ok.address], { timeoutMs: 50, samplesPerPoll: 1 }),
    );
    const problems: SourceProblem[] = [];
    const unsubscribe = source.subscribe(
      () => undefined,
      recordingMonotonic(),
      (p) => problems.push(p),
    );
    cleanups.push(async () => {
      unsubscribe();
      await source.close();
    });
    await until(() => ok.stats.requests >= 8, 5000);
    const [r, d] = source.servers();
    expect(r).toMatchObject({ state: 'backing-off', kissCode: 'RATE' });
    expect(r!.pollIntervalMs).toBeGreaterThanOrEqual(80);
    expect(rate.stats.requests).toBeLessThan(ok.stats.requests / 2);
    expect(d).toMatchObject({ state: 'stopped', kissCode: 'DENY', pollIntervalMs: Infinity });
    expect(deny.stats.requests).toBe(1);
    expect(problems.some((p) => p.reason === 'server-stopped')).toBe(true);
    expect(problems.filter((p) => p.reason === 'kiss-of-death').length).toBeGreaterThanOrEqual(2);
  });

  it('reports refused replies with their reasons while they arrive', async () => {
    const s = await server();
    s.setFault('bad-origin', { thenValid: true });
    const source = ntpSource(fast([s.address]));
    const problems: SourceProblem[] = [];
    const samples: SyncSample[] = [];
    const unsubscribe = source.subscribe(
      (x) => samples.push(x),
      recordingMonotonic(),
      (p) => problems.push(p),
    );
    cleanups.push(async () => {
      unsubscribe();
      await source.close();
    });
    await until(() => samples.length >= 2);
    expect(problems.some((p) => p.reason === 'origin-mismatch' && p.error !== undefined)).toBe(
      true,
    );
    expect(source.servers()[0]?.lastRejection?.reason).toBe('origin-mismatch');
  });

  it('against a port with nothing listening: ready() rejects clearly, no unhandled rejection, no leak', async () => {
    const probe = await createNtpServer();
    const port = probe.port;
    await probe.close();
    const before = openSockets();
    const source = ntpSource(fast([`127.0.0.1:${port}`], { timeoutMs: 30 }));
    const { clock } = clockFor(source);
    const error: unknown = await clock.ready({ timeoutMs: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClockUnsynchronizedError);
    expect((error as Error).message).toMatch(/No reply from 127\.0\.0\.1:\d+/);
    expect(clock.now().status).toBe('unsynchronized');
    expect(clock.lastProblem?.reason).toBe('timeout');
    expect(source.servers()[0]).toMatchObject({ state: 'unreachable' });
    expect(source.servers()[0]!.consecutiveFailures).toBeGreaterThan(0);
    await clock.close();
    await source.close(); // idempotent after the clock closed it
    expect(await settleSockets(before)).toBe(before);
  });

  it('when the server goes away the clock goes free-running, then unsynchronized, with ε growing', async () => {
    const s = await server({ offsetMs: 77 });
    const source = ntpSource(fast([s.address], { pollIntervalMs: 30, timeoutMs: 20 }));
    const { clock, monotonic } = clockFor(source, {
      maxDriftPpm: 20_000, // 2%: lets ε cross the limit in a fraction of a second
      maxUncertaintyMs: 8,
      freeRunningAfterMs: 90,
    });
    const changes: ClockStatus[] = [];
    clock.onStatusChange((status) => changes.push(status));
    await clock.ready({ timeoutMs: 2000 });
    await s.close();
    const statuses: ClockStatus[] = [];
    const widths: number[] = [];
    await until(() => {
      const r = clock.now();
      widths.push(r.uncertaintyMs);
      if (statuses[statuses.length - 1] !== r.status) statuses.push(r.status);
      const truth = s.trueAt(monotonic.last);
      expect(r.earliest).toBeLessThanOrEqual(truth);
      expect(r.latest).toBeGreaterThanOrEqual(truth);
      return r.status === 'unsynchronized';
    }, 3000);
    expect(statuses).toEqual(['synchronized', 'free-running', 'unsynchronized']);
    expect(changes).toContain('free-running'); // listeners hear it too (on the timeout problems)
    for (let i = 1; i < widths.length; i++)
      expect(widths[i]).toBeGreaterThanOrEqual(widths[i - 1]!);
    expect(clock.lastProblem?.reason).toBe('timeout');
  });

  it('close() frees every socket, is idempotent, and a closed source refuses subscribers', async () => {
    const a = await server();
    const b = await server();
    const before = openSockets();
    const source = ntpSource(fast([a.address, b.address]));
    const samples: SyncSample[] = [];
    source.subscribe((x) => samples.push(x), recordingMonotonic());
    await until(() => samples.length > 0);
    expect(openSockets()).toBeGreaterThan(before);
    await Promise.all([source.close(), source.close()]);
    await source.close();
    expect(await settleSockets(before)).toBe(before);
    // A datagram sent just before close() may still be in flight: let it land.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const requests = a.stats.requests;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(a.stats.requests).toBe(requests);
    expect(() => source.subscribe(() => undefined, recordingMonotonic())).toThrow(
      SourceUnavailableError,
    );
  });

  it('an aborted signal closes the source', async () => {
    const s = await server();
    const ac = new AbortController();
    const source = ntpSource(fast([s.address], { signal: ac.signal }));
    const samples: SyncSample[] = [];
    source.subscribe((x) => samples.push(x), recordingMonotonic());
    await until(() => samples.length > 0);
    ac.abort();
    await source.close();
    expect(() => source.subscribe(() => undefined, recordingMonotonic())).toThrow(
      SourceUnavailableError,
    );
  });

  it('unsubscribing the last subscriber stops polling and frees sockets; subscribing again restarts', async () => {
    const s = await server();
    const before = openSockets();
    const source = ntpSource(fast([s.address]));
    cleanups.push(() => source.close());
    const mono = recordingMonotonic();
    const samples: SyncSample[] = [];
    const off = source.subscribe((x) => samples.push(x), mono);
    await until(() => samples.length > 0);
    off();
    expect(await settleSockets(before)).toBe(before);
    // One timescale per source: a different monotonic clock is refused while subscribed.
    const off2 = source.subscribe((x) => samples.push(x), mono);
    expect(() => source.subscribe(() => undefined, recordingMonotonic())).toThrow(
      InvalidArgumentError,
    );
    const n = samples.length;
    await until(() => samples.length > n);
    off2();
  });

  it('validates its options and server strings, naming them', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ servers: [] }, 'servers'],
      [{ servers: ['a:0'] }, 'servers'],
      [{ servers: ['a:x'] }, 'servers'],
      [{ servers: [''] }, 'servers'],
      [{ servers: ['a', 'a:123'] }, 'servers'],
      [{ servers: ['a'], pollIntervalMs: 0 }, 'pollIntervalMs'],
      [{ servers: ['a'], samplesPerPoll: 0 }, 'samplesPerPoll'],
      [{ servers: ['a'], timeoutMs: -5 }, 'timeoutMs'],
      [{ servers: ['a'], maxDriftPpm: -1 }, 'maxDriftPpm'],
      [{ servers: ['a'], maxRootDistanceMs: 0 }, 'maxRootDistanceMs'],
      [{ servers: ['a', 'b'], maxFalsetickers: 2 }, 'maxFalsetickers'],
      [{ servers: ['a'], version: 2 }, 'version'],
    ];
    for (const [options, argument] of bad) {
      expect(() => ntpSource(options as never)).toThrow(expect.objectContaining({ argument }));
    }
    const names = ntpSource({
      servers: ['time.example', '192.0.2.1:1123', '[::1]:11123', '::1', '[2001:db8::1]'],
    })
      .servers()
      .map((x) => x.server);
    expect(names).toEqual([
      'time.example:123',
      '192.0.2.1:1123',
      '[::1]:11123',
      '[::1]:123',
      '[2001:db8::1]:123',
    ]);
  });
});

describe('option validators', () => {
  it('requireNumber refuses ±Infinity and NaN whatever its bounds, as "finite" says', () => {
    expect(requireNumber('x', 5)).toBe(5);
    expect(requireNumber('x', -1e300)).toBe(-1e300);
    for (const bad of [Infinity, -Infinity, Number.NaN, '1' as unknown as number]) {
      expect(() => requireNumber('x', bad)).toThrow(InvalidArgumentError);
    }
    expect(() => requireNumber('x', 11, 0, 10)).toThrow(/x/);
  });

  it('requirePositive (one validator for ntpSource and chronySource) refuses 0, negatives, ±Infinity and NaN', () => {
    expect(requirePositive('timeoutMs', 1e-9)).toBe(1e-9);
    for (const bad of [0, -1, Infinity, -Infinity, Number.NaN]) {
      expect(() => requirePositive('timeoutMs', bad)).toThrow(InvalidArgumentError);
      expect(() => ntpSource({ servers: ['127.0.0.1'], timeoutMs: bad })).toThrow(/timeoutMs/);
    }
  });
});
