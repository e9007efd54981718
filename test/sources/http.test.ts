import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  HttpTimeError,
  TimeExchangeError,
  TrueClock,
  httpTimeSource,
  intervalContains,
  type FetchLike,
  type FetchResponseLike,
  type HttpTimeRequestInit,
  type HttpTimeSourceOptions,
  type MonotonicSource,
  type SourceProblem,
  type SyncSample,
  type TimeReading,
  type TimeSource,
} from '../../src/index.js';
import { timeReplyBody } from '../../src/protocol/http.js';
import { composeTimeReply } from '../../src/protocol/reply.js';
import { SimulatedClock, type SimulatedClockOptions } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { trueClockOn } from '../support/clock.js';
import { expectInvalidArgument } from '../support/errors.js';
import { collectUntilTestEnds, expectOnlyProblems } from '../support/source-samples.js';
import { centredReading } from '../support/readings.js';
import { TEST_NONCE } from '../support/time-servers.js';

const URL_BASE = 'http://time.test/time';
const NONCE = /^[0-9a-f]{32}$/;

/** A server whose clock estimate is `truth + errorMs(at)` and which claims ±epsilonMs. */
interface ServerModel {
  epsilonMs: number;
  /** The server's actual error at a true time (must stay within ±epsilonMs for an honest server). */
  errorAt(trueMs: number): number;
  status?: TimeReading['status'];
}

function reading(sim: SimulatedClock, server: ServerModel): TimeReading {
  const truth = sim.trueNow();
  return centredReading(truth + server.errorAt(truth), server.epsilonMs, server.status);
}

interface Leg {
  upMs: number;
  holdMs: number;
  downMs: number;
}

/** The requests a fake fetch was given, in order. */
type FetchLog = { url: string; init: HttpTimeRequestInit }[];

/**
 * A fake `fetch` in virtual time: the request takes `upMs` to reach the server,
 * which stamps T2, holds it `holdMs`, stamps T3 and the reply takes `downMs`
 * back. Bodies are built by the same code as the real endpoint.
 */
function fakeFetch(
  sim: SimulatedClock,
  server: ServerModel,
  legs: (n: number) => Leg,
  log: FetchLog = [],
): FetchLike {
  let n = 0;
  return (url, init) =>
    new Promise<FetchResponseLike>((resolve, reject) => {
      log.push({ url, init });
      const leg = legs(n++);
      const nonce = new URL(url).searchParams.get('nonce') ?? '';
      let timer = sim.setTimeout(() => {
        const atReceive = reading(sim, server);
        timer = sim.setTimeout(() => {
          const reply = composeTimeReply(nonce, atReceive, reading(sim, server));
          const body = 't2' in reply ? timeReplyBody(reply) : JSON.stringify(reply);
          timer = sim.setTimeout(() => resolve(new Response(body)), leg.downMs);
        }, leg.holdMs);
      }, leg.upMs);
      init.signal.addEventListener('abort', () => {
        sim.clearTimeout(timer);
        reject(new DOMException('The operation was aborted.', 'AbortError'));
      });
    });
}

/** Records the true time at every monotonic reading the source takes. */
function recordingMonotonic(
  sim: SimulatedClock,
): MonotonicSource & { truthAt: Map<number, number> } {
  const truthAt = new Map<number, number>();
  return {
    truthAt,
    now() {
      const m = sim.monotonic.now();
      truthAt.set(m, sim.trueNow());
      return m;
    },
    resolutionMs: 0,
  };
}

/** A leg as long each way, with no hold at the server. */
const symmetric = (ms: number): Leg => ({ upMs: ms, holdMs: 0, downMs: ms });

interface ExactServerPoll extends Omit<HttpTimeSourceOptions, 'url' | 'scheduler' | 'fetch'> {
  /** The simulated machine's options. */
  readonly sim?: SimulatedClockOptions;
  /** Wraps the fetch, to replace some of the replies. */
  readonly wrap?: (inner: FetchLike) => FetchLike;
}

/**
 * An `httpTimeSource` on a fresh SimulatedClock, polling `URL_BASE` through
 * {@link fakeFetch} with these legs to an exact server that claims ±`epsilonMs`,
 * and what its fetch saw: the requests (`log`), when each left (`sentAt`,
 * monotonic ms) and how many were aborted.
 */
function pollExactServer(
  epsilonMs: number,
  legs: (n: number) => Leg,
  { sim: simOptions, wrap = (f) => f, ...tuning }: ExactServerPoll = {},
) {
  const sim = new SimulatedClock(simOptions);
  const log: FetchLog = [];
  const sentAt: number[] = [];
  let aborted = 0;
  const inner = fakeFetch(sim, { epsilonMs, errorAt: () => 0 }, legs, log);
  const source = httpTimeSource({
    url: URL_BASE,
    scheduler: sim,
    ...tuning,
    fetch: wrap((url, init) => {
      sentAt.push(sim.monotonic.now());
      init.signal.addEventListener('abort', () => aborted++);
      return inner(url, init);
    }),
  });
  return { sim, source, log, sentAt, aborted: () => aborted };
}

describe('httpTimeSource: the exchange', () => {
  it('sends GET <url>?nonce=<32 hex> with cache: no-store, a fresh nonce each time', async () => {
    const { sim, source, log } = pollExactServer(1, () => symmetric(5), { samples: 3 });
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(100);
    expect(problems).toEqual([]);
    expect(samples).toHaveLength(3);
    expect(log).toHaveLength(3);
    const nonces = log.map(({ url, init }) => {
      const u = new URL(url);
      expect(u.origin + u.pathname).toBe(URL_BASE);
      expect([...u.searchParams.keys()]).toEqual(['nonce']);
      expect(init.method).toBe('GET');
      expect(init.cache).toBe('no-store');
      return u.searchParams.get('nonce');
    });
    for (const n of nonces) expect(n).toMatch(NONCE);
    expect(new Set(nonces).size).toBe(3);
  });

  it('computes θ and the bound δ/2 + server ε + drift·Δ exactly', async () => {
    const { sim, source } = pollExactServer(2, () => ({ upMs: 30, holdMs: 4, downMs: 10 }), {
      sim: { driftPpm: 0 },
      samples: 1,
      maxDriftPpm: 100,
    });
    const mono = recordingMonotonic(sim);
    const { samples } = collectUntilTestEnds(source, mono);
    const t1 = sim.monotonic.now();
    await sim.advanceAsync(60);
    expect(samples).toHaveLength(1);
    const s = samples[0] as SyncSample;
    expect(s.monotonicAt).toBe(t1 + 44);
    // δ = 44 − 4 = 40; θ is off by the asymmetry (30 − 10)/2 = 10 ms.
    const truthAtT4 = mono.truthAt.get(s.monotonicAt) as number;
    expect(s.monotonicAt + s.offsetMs - truthAtT4).toBeCloseTo(10, 6);
    // 20 (δ/2) + 2.001 (server ε rounded up, +1 µs) + 0.001 (t2/t3 rounding) + 100 ppm · 44 ms.
    expect(s.errorMs).toBeCloseTo(20 + 2.001 + 0.001 + 100e-6 * 44, 9);
    expect(Math.abs(s.monotonicAt + s.offsetMs - truthAtT4)).toBeLessThanOrEqual(s.errorMs);
    expect(s.source).toBe(`http:${URL_BASE}`);
  });

  it('delivers the tightest of the recent exchanges (clock filter), so a slow exchange does not widen the bound', async () => {
    const delays = [80, 4, 60, 100];
    const { sim, source } = pollExactServer(
      0.5,
      (n) => ({ upMs: delays[n] ?? 1, holdMs: 0, downMs: 1 }),
      { samples: 4 },
    );
    const { samples } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(400);
    expect(samples).toHaveLength(4);
    const errors = samples.map((s) => s.errorMs);
    // After the 4 ms exchange, every later delivery is still that one.
    expect(errors[2]).toBe(errors[1]);
    expect(errors[3]).toBe(errors[1]);
    expect(errors[1]).toBeLessThan(errors[0] as number);
    expect(samples[3]).toBe(samples[1]);
  });

  it('polls again after pollIntervalMs and reports it on the source', async () => {
    const { sim, source, log } = pollExactServer(1, () => symmetric(1), {
      samples: 2,
      pollIntervalMs: 10_000,
    });
    expect(source.pollIntervalMs).toBe(10_000);
    collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(9_000);
    expect(log).toHaveLength(2);
    await sim.advanceAsync(2_000);
    expect(log).toHaveLength(4);
  });

  it('feeds a TrueClock: ready() resolves and the interval contains the server truth, with the server at a 5 s offset from the client wall clock', async () => {
    const sim = new SimulatedClock({ wallOffsetMs: -5_000, driftPpm: 150 });
    const server: ServerModel = { epsilonMs: 3, errorAt: () => 2.5 };
    const source = httpTimeSource({
      url: URL_BASE,
      scheduler: sim,
      fetch: fakeFetch(sim, server, (n) => ({ upMs: 20 + n, holdMs: 1, downMs: 5 })),
    });
    const clock = trueClockOn(sim, source, { watchdogIntervalMs: 0 });
    onTestFinished(() => clock.close());
    const ready = clock.ready({ timeoutMs: 10_000 });
    await sim.advanceAsync(200);
    const first = await ready;
    expect(first.status).toBe('synchronized');
    for (let i = 0; i < 20; i++) {
      await sim.advanceAsync(7_919);
      const r = clock.now();
      expect(intervalContains(r, sim.trueNow())).toBe(true);
      // The wall clock is 5 s off; the synced clock is not fooled by it.
      expect(intervalContains(r, sim.wall.now())).toBe(false);
    }
  });
});

describe('httpTimeSource: failures are typed problems and yield no sample', () => {
  function failing(
    respond: (url: string, init: HttpTimeRequestInit) => Promise<FetchResponseLike>,
    options: { timeoutMs?: number } = {},
  ) {
    const sim = new SimulatedClock();
    const source = httpTimeSource({
      url: URL_BASE,
      samples: 1,
      scheduler: sim,
      fetch: respond,
      ...options,
    });
    return { sim, source, ...collectUntilTestEnds(source, sim.monotonic) };
  }

  async function expectProblem(
    respond: (url: string, init: HttpTimeRequestInit) => Promise<FetchResponseLike>,
    reason: string,
    advanceMs = 10,
  ): Promise<TimeExchangeError> {
    const { sim, samples, problems } = failing(respond);
    await sim.advanceAsync(advanceMs);
    const [problem] = expectOnlyProblems(samples, problems, [reason]) as [SourceProblem];
    expect(problem.source).toBe(`http:${URL_BASE}`);
    expect(problem.error).toBeInstanceOf(TimeExchangeError);
    // The former name still works for users who check it.
    expect(problem.error).toBeInstanceOf(HttpTimeError);
    const error = problem.error as TimeExchangeError;
    expect(error.name).toBe('TimeExchangeError');
    expect(error.code).toBe('HTTP_TIME');
    expect(error.reason).toBe(reason);
    expect(error.endpoint).toBe(URL_BASE);
    expect(error.url).toBe(URL_BASE);
    return error;
  }

  const goodBody = (url: string, patch: Record<string, unknown> = {}): string =>
    JSON.stringify({
      type: 'chronobound.time-reply',
      v: 1,
      nonce: new URL(url).searchParams.get('nonce'),
      t2: 1_767_225_600_000,
      t3: 1_767_225_600_000.5,
      errorMs: 1,
      status: 'synchronized',
      ...patch,
    });

  it('timeout: aborts the request after timeoutMs', async () => {
    let aborted = false;
    const { sim, samples, problems } = failing(
      (_url, init) =>
        new Promise((_, reject) => {
          init.signal.addEventListener('abort', () => {
            aborted = true;
            reject(new DOMException('aborted', 'AbortError'));
          });
        }),
      { timeoutMs: 250 },
    );
    await sim.advanceAsync(249);
    expect(problems).toEqual([]);
    await sim.advanceAsync(2);
    expect(aborted).toBe(true);
    expectOnlyProblems(samples, problems, ['timeout']);
    expect(problems[0]?.error).toBeInstanceOf(TimeExchangeError);
    expect(problems[0]?.message).toMatch(/no reply within 250 ms/);
  });

  it('timeout: even when the fetch ignores the abort signal', async () => {
    const { sim, samples, problems } = failing(() => new Promise(() => {}), { timeoutMs: 100 });
    await sim.advanceAsync(150);
    expectOnlyProblems(samples, problems, ['timeout']);
  });

  it('non-2xx status', async () => {
    const error = await expectProblem(
      () => Promise.resolve(new Response('clock unsynchronized\n', { status: 503 })),
      'status',
    );
    expect(error.message).toMatch(/HTTP 503/);
    await expectProblem(() => Promise.resolve(new Response('x', { status: 404 })), 'status');
    await expectProblem(() => Promise.resolve(new Response('x', { status: 302 })), 'status');
  });

  it('network failure', async () => {
    const error = await expectProblem(
      () => Promise.reject(new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') })),
      'network',
    );
    expect(error.message).toMatch(/ECONNREFUSED/);
    await expectProblem(() => {
      throw new TypeError('synchronous throw');
    }, 'network');
  });

  it('a reply that does not echo our nonce', async () => {
    await expectProblem(
      (url) => Promise.resolve(new Response(goodBody(url, { nonce: TEST_NONCE }))),
      'nonce-mismatch',
    );
  });

  it('a 200 reply saying the server clock is unsynchronized', async () => {
    await expectProblem(
      (url) =>
        Promise.resolve(
          new Response(
            JSON.stringify({
              type: 'chronobound.time-reply',
              v: 1,
              nonce: new URL(url).searchParams.get('nonce'),
              status: 'unsynchronized',
            }),
          ),
        ),
      'status',
    );
  });

  const malformed: [string, (url: string) => BodyInit | null, ResponseInit?][] = [
    ['empty body', () => ''],
    ['not JSON', () => 'the time is now'],
    ['a JSON array', () => '[1,2,3]'],
    ['a JSON string', () => '"hello"'],
    ['null', () => 'null'],
    ['another message type', (u) => goodBody(u, { type: 'chronobound.time-request' })],
    ['a future version', (u) => goodBody(u, { v: 2 })],
    ['no nonce', (u) => goodBody(u, { nonce: undefined })],
    ['numeric nonce', (u) => goodBody(u, { nonce: 12 })],
    ['t2 as a string', (u) => goodBody(u, { t2: '1767225600000' })],
    ['t3 null', (u) => goodBody(u, { t3: null })],
    ['errorMs missing', (u) => goodBody(u, { errorMs: undefined })],
    ['negative errorMs', (u) => goodBody(u, { errorMs: -1 })],
    ['an infinite t2', (u) => goodBody(u).replace(/"t2":[0-9.]+/, '"t2":1e999')],
    ['t3 before t2', (u) => goodBody(u, { t3: 1_767_225_599_999 })],
    ['unknown status', (u) => goodBody(u, { status: 'fine' })],
    ['server held it longer than the round trip', (u) => goodBody(u, { t3: 1_767_225_601_000 })],
    ['a 5 kB body', (u) => goodBody(u).padEnd(5000, ' ')],
    ['a 5 kB body with no content-length', (u) => streamOf(goodBody(u).padEnd(5000, ' '))],
    ['invalid UTF-8', () => new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])],
  ];
  for (const [what, body, init] of malformed) {
    it(`malformed body: ${what}`, async () => {
      await expectProblem((url) => Promise.resolve(new Response(body(url), init)), 'body');
    });
  }

  it('after failures, a good reply is accepted and the clock becomes ready', async () => {
    let n = 0;
    const { sim, source } = pollExactServer(1, () => symmetric(2), {
      samples: 3,
      wrap: (good) => (url, init) =>
        n++ < 2 ? Promise.resolve(new Response('nope', { status: 500 })) : good(url, init),
    });
    const clock = trueClockOn(sim, source, { watchdogIntervalMs: 0 });
    onTestFinished(() => clock.close());
    const ready = clock.ready({ timeoutMs: 1000 });
    await sim.advanceAsync(10);
    expect((await ready).status).toBe('synchronized');
    expect(clock.lastProblem?.reason).toBe('status');
  });

  it('close() aborts the exchange in flight, cancels timers and delivers nothing more', async () => {
    const { sim, source, aborted } = pollExactServer(1, () => symmetric(50));
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(20);
    await source.close();
    await source.close();
    await sim.advanceAsync(1_000_000);
    expect(aborted()).toBe(1);
    expectOnlyProblems(samples, problems, []);
    expect(sim.pendingTimers).toBe(0);
  });

  it('unsubscribing stops one subscription only', async () => {
    const { sim, source } = pollExactServer(1, () => symmetric(1), {
      samples: 1,
      pollIntervalMs: 1000,
    });
    const a = collectUntilTestEnds(source, sim.monotonic);
    const b = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(10);
    a.stop();
    await sim.advanceAsync(5_000);
    expect(a.samples).toHaveLength(1);
    expect(b.samples.length).toBeGreaterThanOrEqual(5);
    await source.close();
    expect(sim.pendingTimers).toBe(0);
  });
});

function streamOf(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.subarray(i, i + 1000));
      controller.close();
    },
  });
}

describe('httpTimeSource: options', () => {
  const fetch: FetchLike = () => new Promise(() => {});
  it.each([
    ['url', { url: '' }],
    ['url', { url: 'not a url' }],
    ['url', { url: '/time' }], // relative, and there is no page to resolve it against
    ['url', { url: 'ftp://example.com/time' }],
    ['url', { url: 42 }],
    ['samples', { url: URL_BASE, samples: 0 }],
    ['samples', { url: URL_BASE, samples: 1.5 }],
    ['samples', { url: URL_BASE, samples: 65 }],
    ['pollIntervalMs', { url: URL_BASE, pollIntervalMs: 0 }],
    ['pollIntervalMs', { url: URL_BASE, pollIntervalMs: Infinity }],
    ['timeoutMs', { url: URL_BASE, timeoutMs: 0 }],
    ['timeoutMs', { url: URL_BASE, timeoutMs: -1 }],
    ['maxDriftPpm', { url: URL_BASE, maxDriftPpm: -1 }],
    ['fetch', { url: URL_BASE, fetch: 'fetch' }],
    ['name', { url: URL_BASE, name: '' }],
  ])('rejects a bad %s', (argument, options) => {
    expectInvalidArgument(() => httpTimeSource({ fetch, ...options } as never), argument);
  });

  it('accepts a URL object and a custom name', () => {
    const source = httpTimeSource({ url: new URL(URL_BASE), fetch, name: 'edge' });
    expect(source.pollIntervalMs).toBe(60_000);
  });
});

describe('httpTimeSource: the interval contains the server truth (property)', () => {
  interface Scenario {
    clientDriftPpm: number;
    epsilonMs: number;
    errorFraction: number;
    serverDriftPpm: number;
    legs: Leg[];
    resolutionMs: number;
    probes: number[];
  }

  const scenario: fc.Arbitrary<Scenario> = fc.record({
    clientDriftPpm: fc.double({ min: -200, max: 200, noNaN: true }),
    epsilonMs: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 50, noNaN: true })),
    errorFraction: fc.double({ min: -1, max: 1, noNaN: true }),
    serverDriftPpm: fc.double({ min: -200, max: 200, noNaN: true }),
    legs: fc.array(
      fc.record({
        upMs: fc.double({ min: 0, max: 300, noNaN: true }),
        holdMs: fc.double({ min: 0, max: 20, noNaN: true }),
        downMs: fc.double({ min: 0, max: 300, noNaN: true }),
      }),
      { minLength: 1, maxLength: 6 },
    ),
    resolutionMs: fc.constantFrom(0, 0.005, 0.1, 1),
    probes: fc.array(fc.double({ min: 0, max: 120_000, noNaN: true }), {
      minLength: 1,
      maxLength: 4,
    }),
  });

  /**
   * Runs one scenario. With `lie`, the server claims ε = 0 while its clock is
   * off by up to the scenario's ε, which an honest check must catch.
   */
  async function run(s: Scenario, lie = false): Promise<void> {
    const sim = new SimulatedClock({ driftPpm: s.clientDriftPpm, wallOffsetMs: -5_000 });
    // A browser's performance.now() is coarsened: floor the readings and say so.
    const r = s.resolutionMs;
    const mono: MonotonicSource & { truthAt: Map<number, number> } = {
      truthAt: new Map(),
      now() {
        const m = sim.monotonic.now();
        const floored = r > 0 ? Math.floor(m / r) * r : m;
        if (!this.truthAt.has(floored)) this.truthAt.set(floored, sim.trueNow());
        return floored;
      },
      resolutionMs: r,
    };
    const start = sim.trueNow();
    const server: ServerModel = {
      epsilonMs: lie ? 0 : s.epsilonMs,
      // The server's estimate error drifts slowly but stays within its ε.
      errorAt: (t) =>
        Math.max(
          -s.epsilonMs,
          Math.min(
            s.epsilonMs,
            s.errorFraction * s.epsilonMs + s.serverDriftPpm * 1e-6 * (t - start),
          ),
        ),
    };
    const samples: SyncSample[] = [];
    const problems: SourceProblem[] = [];
    const inner = httpTimeSource({
      url: URL_BASE,
      samples: s.legs.length,
      scheduler: sim,
      maxDriftPpm: 200,
      fetch: fakeFetch(sim, server, (n) => s.legs[n % s.legs.length] as Leg),
    });
    const source: TimeSource = {
      pollIntervalMs: inner.pollIntervalMs ?? 60_000,
      subscribe: (onSample, m, onProblem) =>
        inner.subscribe(
          (sample) => {
            samples.push(sample);
            onSample(sample);
          },
          m,
          (p) => {
            problems.push(p);
            onProblem?.(p);
          },
        ),
      close: () => inner.close(),
    };
    const clock = new TrueClock({
      source,
      maxDriftPpm: 200,
      maxUncertaintyMs: Infinity,
      monotonic: mono,
      wall: sim.wall,
      scheduler: sim,
      watchdogIntervalMs: 0,
    });
    try {
      const burst = s.legs.reduce((t, l) => t + l.upMs + l.holdMs + l.downMs, 0);
      await sim.advanceAsync(burst + 10);
      expect(problems).toEqual([]);
      expect(samples).toHaveLength(s.legs.length);
      for (const sample of samples) {
        // At the sample's own reference point (exact only for an exact monotonic clock).
        if (r === 0) {
          const truth = mono.truthAt.get(sample.monotonicAt) as number;
          expect(Math.abs(sample.monotonicAt + sample.offsetMs - truth)).toBeLessThanOrEqual(
            sample.errorMs,
          );
        }
      }
      // Not vacuous: the tightest bound is close to the best possible for this path.
      const best = Math.min(...samples.map((x) => x.errorMs));
      const ideal = Math.min(...s.legs.map((l) => (l.upMs + l.downMs) / 2));
      expect(best).toBeLessThanOrEqual(ideal + server.epsilonMs + 0.01 + 2 * r + 0.2);
      for (const probe of s.probes) {
        await sim.advanceAsync(probe);
        const reading = clock.now();
        expect(reading.status === 'synchronized' || reading.status === 'free-running').toBe(true);
        const truth = sim.trueNow();
        if (!intervalContains(reading, truth)) {
          throw new Error(
            `truth ${truth} outside [${reading.earliest}, ${reading.latest}] (ε ${reading.uncertaintyMs})`,
          );
        }
      }
    } finally {
      await clock.close();
    }
  }

  it('for any delay asymmetry, server ε and error, client drift within the bound and timer coarsening (≥ 1,000 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, (s) => run(s)),
      fcParams(1000),
    );
  });

  it('catches a server that understates its ε (the property can fail)', async () => {
    const lying = scenario.filter(
      (s) =>
        s.epsilonMs > 5 &&
        Math.abs(s.errorFraction) > 0.9 &&
        s.legs.every((l) => l.upMs + l.downMs < 20),
    );
    const failure = await fc
      .assert(
        fc.asyncProperty(lying, (s) => run(s, true)),
        { ...fcParams(200), endOnFailure: true },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(failure).toBeInstanceOf(Error);
    // The cause is the containment (or per-sample bound) check, not some other failure.
    expect(String((failure as Error).cause)).toMatch(/outside \[|to be less than or equal/);
  });
});

describe('httpTimeSource: evidence, consistency and invalidation', () => {
  it('every sample carries evidenceFrom: T1, when the request left', async () => {
    const { sim, source, sentAt } = pollExactServer(
      1,
      (n) => ({ upMs: 9 - 4 * n, holdMs: 1, downMs: 3 }),
      { samples: 2 },
    );
    const { samples } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(2);
    expect(samples.map((s) => s.evidenceFrom)).toEqual(sentAt);
    expect(samples[1]?.monotonicAt).toBe((sentAt[1] as number) + 9);
  });

  it('has maxSampleGapMs = pollIntervalMs + samples × timeoutMs', () => {
    const fetch: FetchLike = () => new Promise(() => {});
    expect(httpTimeSource({ url: URL_BASE, fetch }).maxSampleGapMs).toBe(80_000);
    expect(
      httpTimeSource({ url: URL_BASE, fetch, pollIntervalMs: 10_000, samples: 3, timeoutMs: 2_000 })
        .maxSampleGapMs,
    ).toBe(16_000);
  });

  it('after the host slewed the monotonic clock far beyond maxDriftPpm, the newer sample wins and the contradiction is reported', async () => {
    const { sim, source } = pollExactServer(0.5, (n) => symmetric(n === 0 ? 1 : 20), {
      samples: 1,
      pollIntervalMs: 10_000,
    });
    const mono = recordingMonotonic(sim);
    const { samples, problems } = collectUntilTestEnds(source, mono);
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(1);
    // 5 % fast for a while: ≈ 470 ms gained, where 200 ppm allows 2 ms.
    sim.setDriftPpm(50_000);
    await sim.advanceAsync(9_000);
    sim.setDriftPpm(0);
    await sim.advanceAsync(1_000);
    expect(samples).toHaveLength(2);
    const [old, fresh] = samples as [SyncSample, SyncSample];
    expect(fresh).not.toBe(old);
    expect(fresh.evidenceFrom).toBeGreaterThan(old.monotonicAt);
    expect(old.offsetMs - fresh.offsetMs).toBeGreaterThan(400);
    // The delivered sample holds the truth at its own reference point.
    const truth = mono.truthAt.get(fresh.monotonicAt) as number;
    expect(Math.abs(fresh.monotonicAt + fresh.offsetMs - truth)).toBeLessThanOrEqual(fresh.errorMs);
    expect(problems.map((p) => p.reason)).toEqual(['inconsistent-sample']);
    const gap = (old.offsetMs - fresh.offsetMs).toFixed(3);
    expect(problems[0]?.message).toContain(`${gap} ms`);
    expect(problems[0]?.message).toMatch(/dropped 1 kept sample\b/);
  });

  it('invalidate() lets the request in flight end, drops its reply, and polls again right away', async () => {
    const { sim, source, sentAt, aborted } = pollExactServer(
      1,
      (n) => symmetric(n === 1 ? 40 : 2),
      { samples: 2, pollIntervalMs: 30_000 },
    );
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(10); // the first exchange is done, the second in flight
    expect(samples).toHaveLength(1);
    expect(sentAt).toHaveLength(2);
    const disruptedAt = sim.monotonic.now();
    expect(typeof source.invalidate).toBe('function');
    source.invalidate?.(disruptedAt);
    await sim.advanceAsync(200);
    expect(aborted()).toBe(0);
    // Nothing gathered at or before the disruption reached us after it.
    expect(samples.slice(1).map((s) => (s.evidenceFrom as number) > disruptedAt)).toEqual([
      true,
      true,
    ]);
    // The fresh poll left as the stale reply came in.
    expect(sentAt).toHaveLength(4);
    expect(sentAt[2]).toBe((sentAt[1] as number) + 80);
    expect(problems).toEqual([]);
  });
});
