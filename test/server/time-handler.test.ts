import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  InvalidArgumentError,
  createTimeHandler,
  httpTimeSource,
  intervalContains,
  type FetchLike,
  type TimeHandler,
  type TimeHandlerOptions,
  type TimeReply,
  type TimeServerClock,
} from '../../src/index.js';
import { SimulatedClock, truthfulSample } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import {
  BAD_TIME_QUERIES,
  BAD_TIME_SERVER_OPTIONS,
  NOT_TIME_PATHS,
  TEST_NONCE as NONCE,
  expectStampedBy,
  expectTimeReplyResponse,
  syncedServerClock,
  testServerClock as serverClock,
} from '../support/time-servers.js';
import { trueClockOn } from '../support/clock.js';
import { collectUntilTestEnds, expectOnlyProblems } from '../support/source-samples.js';

const ORIGIN = 'https://time.example';

/** A handler over a clock synced to ±2 ms, in a fresh virtual universe. */
function syncedHandler(options?: TimeHandlerOptions) {
  const sim = new SimulatedClock();
  const { clock, sync } = serverClock(sim, 2);
  sync();
  return { sim, clock, handler: createTimeHandler(clock, options) };
}

function ask(handler: TimeHandler, pathAndQuery: string, init?: RequestInit) {
  return Promise.resolve(handler(new Request(`${ORIGIN}${pathAndQuery}`, init)));
}

describe('createTimeHandler: the reply', () => {
  it('answers GET /time?nonce=… with a fixed 256-byte JSON reply, no-store, stamped from the clock', async () => {
    const { sim, clock, handler } = syncedHandler();
    sim.advance(500);
    const reply = await expectTimeReplyResponse(await ask(handler, `/time?nonce=${NONCE}`));
    // No virtual time passes inside the handler: T2 = T3 = the clock's estimate now, and
    // ε = 2 + 200 ppm · 0.5 s = 2.1 ms, rounded up to the µs, + 1 µs for rounding t2/t3.
    expectStampedBy(reply, clock);
    expect(reply.t3).toBe(reply.t2);
    expect(Math.abs(reply.t2 - sim.trueNow())).toBeLessThanOrEqual(reply.errorMs);
  });

  it('every 200 reply is the same size and echoes its own nonce', async () => {
    const { handler } = syncedHandler();
    for (let i = 0; i < 20; i++) {
      const nonce = i.toString(16).padStart(32, 'f');
      await expectTimeReplyResponse(await ask(handler, `/time?nonce=${nonce}`), nonce);
    }
  });

  it('passes free-running through with its times', async () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim, 1, 0, { freeRunningAfterMs: 1_000 });
    sync();
    sim.advance(5_000);
    expect(clock.now().status).toBe('free-running');
    const res = await ask(createTimeHandler(clock), `/time?nonce=${NONCE}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as TimeReply).status).toBe('free-running');
  });

  it('honours path and allowOrigin, on refusals too', async () => {
    const { handler } = syncedHandler({ path: '/api/v1/time', allowOrigin: 'https://app.example' });
    expect((await ask(handler, `/time?nonce=${NONCE}`)).status).toBe(404);
    const res = await ask(handler, `/api/v1/time?nonce=${NONCE}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const refused = await ask(handler, '/api/v1/time?nonce=abc');
    expect(refused.status).toBe(400);
    expect(refused.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });
});

describe('createTimeHandler: refusals echo nothing of the request', () => {
  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'])(
    'refuses %s with 405 and Allow: GET',
    async (method) => {
      const { handler } = syncedHandler();
      const res = await ask(handler, `/time?nonce=${NONCE}`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.text()).toBe('method not allowed: use GET\n');
    },
  );

  it.each(NOT_TIME_PATHS)('answers 404 on %s', async (path) => {
    const { handler } = syncedHandler();
    const res = await ask(handler, path);
    expect(res.status).toBe(404);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toBe('not found\n');
  });

  it.each(BAD_TIME_QUERIES)('answers 400 to %s', async (_what, query) => {
    const { handler } = syncedHandler();
    const res = await ask(handler, `/time${query}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toBe(
      'expected exactly one query parameter: nonce=<32 lowercase hex digits>\n',
    );
  });

  it('refuses a request body (413) unless declared within maxBodyBytes, and never reads it', async () => {
    const { clock, handler } = syncedHandler();
    const declared = await ask(handler, `/time?nonce=${NONCE}`, {
      headers: { 'Content-Length': '10' },
    });
    expect(declared.status).toBe(413);
    expect(await declared.text()).toBe('request body not accepted\n');
    const chunked = await ask(handler, `/time?nonce=${NONCE}`, {
      headers: { 'Transfer-Encoding': 'chunked' },
    });
    expect(chunked.status).toBe(413);
    const garbage = await ask(handler, `/time?nonce=${NONCE}`, {
      headers: { 'Content-Length': 'ten' },
    });
    expect(garbage.status).toBe(413);
    const empty = await ask(handler, `/time?nonce=${NONCE}`, {
      headers: { 'Content-Length': '0' },
    });
    expect(empty.status).toBe(200);
    const tolerant = createTimeHandler(clock, { maxBodyBytes: 16 });
    expect(
      (await ask(tolerant, `/time?nonce=${NONCE}`, { headers: { 'Content-Length': '16' } })).status,
    ).toBe(200);
    expect(
      (await ask(tolerant, `/time?nonce=${NONCE}`, { headers: { 'Content-Length': '17' } })).status,
    ).toBe(413);
  });

  it('answers 503 while its clock is unsynchronized, then 200 once synced', async () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    const handler = createTimeHandler(clock);
    const refused = await ask(handler, `/time?nonce=${NONCE}`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(await refused.text()).toBe('clock unsynchronized\n');
    sync();
    expect((await ask(handler, `/time?nonce=${NONCE}`)).status).toBe(200);
  });

  it('answers 503 when its clock only has an assumed bound or ε above its maximum', async () => {
    const sim = new SimulatedClock();
    const { clock, source } = serverClock(sim, 1, 0, { maxUncertaintyMs: 10 });
    const handler = createTimeHandler(clock);
    source.push({ ...truthfulSample(sim, 1), assumed: true });
    expect((await ask(handler, `/time?nonce=${NONCE}`)).status).toBe(503);
    source.push(truthfulSample(sim, 1));
    expect((await ask(handler, `/time?nonce=${NONCE}`)).status).toBe(200);
    sim.advance(60_000); // ε = 1 + 200 ppm · 60 s = 13 ms
    expect((await ask(handler, `/time?nonce=${NONCE}`)).status).toBe(503);
  });

  it('answers 503 after a suspend disrupted its clock, before the periodic watchdog noticed', async () => {
    const { sim, handler } = syncedHandler();
    sim.suspend(30_000);
    const res = await ask(handler, `/time?nonce=${NONCE}`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('clock disrupted\n');
  });

  it('checks in order: path, method, body, query, clock', async () => {
    const sim = new SimulatedClock();
    const { clock } = serverClock(sim); // never synced: the clock check would say 503
    const handler = createTimeHandler(clock);
    const body = { headers: { 'Content-Length': '5' } };
    expect((await ask(handler, '/nope?nonce=x', { method: 'POST', ...body })).status).toBe(404);
    expect((await ask(handler, '/time?nonce=x', { method: 'POST', ...body })).status).toBe(405);
    expect((await ask(handler, '/time?nonce=x', body)).status).toBe(413);
    expect((await ask(handler, '/time?nonce=x')).status).toBe(400);
    expect((await ask(handler, `/time?nonce=${NONCE}`)).status).toBe(503);
  });
});

describe('createTimeHandler: options', () => {
  it.each(BAD_TIME_SERVER_OPTIONS)('rejects a bad %s, naming it', (argument, options) => {
    const { clock } = serverClock(new SimulatedClock());
    expect(() => createTimeHandler(clock, options)).toThrow(InvalidArgumentError);
    expect(() => createTimeHandler(clock, options)).toThrow(expect.objectContaining({ argument }));
  });

  it('rejects something that is not a clock', () => {
    expect(() => createTimeHandler({} as TimeServerClock)).toThrow(
      expect.objectContaining({ argument: 'clock' }),
    );
  });
});

/**
 * A `fetch` in virtual time that hands each request to `handler` after `upMs`
 * and delivers its response `downMs` later, the way a server across a network
 * would; an abort rejects it as the platform's fetch does.
 */
function fetchThrough(
  sim: SimulatedClock,
  handler: TimeHandler,
  legs: (n: number) => { upMs: number; downMs: number },
): FetchLike {
  let n = 0;
  return (url, init) =>
    new Promise((resolve, reject) => {
      const { upMs, downMs } = legs(n++);
      let timer = sim.setTimeout(() => {
        void Promise.resolve(handler(new Request(url, { method: init.method }))).then(
          (response) => {
            timer = sim.setTimeout(() => resolve(response), downMs);
          },
        );
      }, upMs);
      init.signal.addEventListener('abort', () => {
        sim.clearTimeout(timer);
        reject(new DOMException('The operation was aborted.', 'AbortError'));
      });
    });
}

describe('createTimeHandler ↔ httpTimeSource', () => {
  it('a client synced through the handler contains the server truth, with the server’s ε chained into its bound', async () => {
    const sim = new SimulatedClock({ wallOffsetMs: 4_000 });
    const { clock: server, sync } = serverClock(sim, 1.5, 0.7);
    sync();
    const handler = createTimeHandler(server);
    const source = httpTimeSource({
      url: 'https://time.example/time',
      scheduler: sim,
      fetch: fetchThrough(sim, handler, (n) => ({ upMs: 12 + (n % 3), downMs: 3 })),
    });
    const client = trueClockOn(sim, source, { watchdogIntervalMs: 0 });
    onTestFinished(() => client.close());
    const ready = client.ready({ timeoutMs: 1_000 });
    await sim.advanceAsync(200);
    await ready;
    expect(client.lastProblem).toBeUndefined();
    for (let i = 0; i < 10; i++) {
      await sim.advanceAsync(5_003);
      const r = client.now();
      expect(r.status).toBe('synchronized');
      expect(intervalContains(r, sim.trueNow())).toBe(true);
      // At least the server's own ε (1.5 ms synced, growing since) and half a round trip.
      expect(r.uncertaintyMs).toBeGreaterThan(1.5 + 7.5);
      // The client's wall clock is 4 s off; the synced clock is not fooled by it.
      expect(intervalContains(r, sim.wall.now())).toBe(false);
    }
  });

  it('a server whose clock is unsynchronized gives the client status problems and no sample', async () => {
    const sim = new SimulatedClock();
    const { clock: server } = serverClock(sim);
    const source = httpTimeSource({
      url: 'https://time.example/time',
      scheduler: sim,
      samples: 2,
      fetch: fetchThrough(sim, createTimeHandler(server), () => ({ upMs: 1, downMs: 1 })),
    });
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(10);
    for (const p of expectOnlyProblems(samples, problems, ['status', 'status']))
      expect(p.message).toMatch(/HTTP 503/);
  });
});

describe('createTimeHandler: a reply’s bound contains the server clock’s true time (property)', () => {
  it('for any sync error within the claimed bound, oscillator drift, age of the sample and hold time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: -150, max: 150, noNaN: true }), // server oscillator drift (ppm)
        fc.double({ min: 0, max: 20, noNaN: true }), // the sample's claimed bound (ms)
        fc.double({ min: -1, max: 1, noNaN: true }), // where in the bound its error sits
        fc.double({ min: 0, max: 60_000, noNaN: true }), // age of the sample (ms)
        fc.double({ min: 0, max: 50, noNaN: true }), // server hold time between T2 and T3 (ms)
        async (driftPpm, errorMs, fraction, ageMs, holdMs) => {
          const sim = new SimulatedClock({ driftPpm });
          const { clock, sync } = syncedServerClock(sim, errorMs, fraction);
          try {
            sync();
            sim.advance(ageMs);
            // Records the truth at each reading and holds the request between T2 and T3
            // (the strict check runs in between).
            const truths: number[] = [];
            const observed: TimeServerClock = {
              now: () => {
                truths.push(sim.trueNow());
                return clock.now();
              },
              after: (t) => {
                sim.advance(holdMs);
                return clock.after(t);
              },
            };
            const res = await createTimeHandler(observed)(
              new Request(`${ORIGIN}/time?nonce=${NONCE}`),
            );
            expect(res.status).toBe(200);
            const reply = (await res.json()) as TimeReply;
            const [atT2, atT3] = truths as [number, number];
            expect(truths).toHaveLength(2);
            expect(Math.abs(reply.t2 - atT2)).toBeLessThanOrEqual(reply.errorMs);
            expect(Math.abs(reply.t3 - atT3)).toBeLessThanOrEqual(reply.errorMs);
          } finally {
            await clock.close();
          }
        },
      ),
      fcParams(300),
    );
  });
});
