import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  InvalidArgumentError,
  TimeExchangeError,
  answerTimeRequest,
  intervalContains,
  messageTimeSource,
  type MessageTimeSourceOptions,
  type SyncSample,
  type TimeRequest,
  type TimeServerClock,
  type TimeSource,
} from '../../src/index.js';
import { SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { expectInvalidArgument } from '../support/errors.js';
import {
  TEST_NONCE as NONCE,
  fakeServerClock,
  testServerClock as serverClock,
} from '../support/time-servers.js';
import { trueClockOn } from '../support/clock.js';
import { collectUntilTestEnds, expectOnlyProblems } from '../support/source-samples.js';

/** The two legs of one exchange: request to the server, reply back. */
interface Legs {
  upMs: number;
  downMs: number;
}

/**
 * An in-memory duplex channel in virtual time: each direction delivers after a
 * delay chosen per message. The server side answers with answerTimeRequest.
 */
function channel(
  sim: SimulatedClock,
  server: TimeServerClock,
  delays: (n: number) => Legs,
  options: { serialize?: boolean; onRequest?: (request: TimeRequest) => void } = {},
) {
  const listeners = new Set<(message: unknown) => void>();
  const deliver = (message: unknown) => {
    for (const l of [...listeners]) l(message);
  };
  let n = 0;
  let unlistened = 0;
  return {
    deliver,
    get listeners() {
      return listeners.size;
    },
    get unlistened() {
      return unlistened;
    },
    send: (request: TimeRequest): void => {
      options.onRequest?.(request);
      const { upMs, downMs } = delays(n++);
      const wire: unknown = options.serialize ? JSON.stringify(request) : request;
      sim.setTimeout(() => {
        const reply = answerTimeRequest(server, wire);
        if (reply === undefined) return;
        const back: unknown = options.serialize ? JSON.stringify(reply) : reply;
        sim.setTimeout(() => deliver(back), downMs);
      }, upMs);
    },
    onMessage: (listener: (message: unknown) => void): (() => void) => {
      listeners.add(listener);
      return () => {
        unlistened++;
        listeners.delete(listener);
      };
    },
  };
}

/**
 * A message source over a {@link channel} with these delays to a server clock
 * synced to ±1 ms (unless `synced: false`), in a fresh virtual universe, and
 * what it delivers.
 */
function overChannel(
  delays: (n: number) => Legs,
  tuning: Omit<MessageTimeSourceOptions, 'send' | 'onMessage' | 'scheduler'> = {},
  { synced = true, serialize = false }: { synced?: boolean; serialize?: boolean } = {},
) {
  const sim = new SimulatedClock();
  const { clock: server, sync } = serverClock(sim);
  if (synced) sync();
  const ch = channel(sim, server, delays, { serialize });
  const source = messageTimeSource({
    send: ch.send,
    onMessage: ch.onMessage,
    scheduler: sim,
    ...tuning,
  });
  return { sim, ch, source, ...collectUntilTestEnds(source, sim.monotonic) };
}

describe('messageTimeSource', () => {
  it('syncs over a channel that carries objects', async () => {
    const sim = new SimulatedClock({ wallOffsetMs: 4_000 });
    const { clock: server, sync } = serverClock(sim, 1.5, 0.7);
    sync();
    const ch = channel(sim, server, () => ({ upMs: 12, downMs: 3 }));
    const source = messageTimeSource({ send: ch.send, onMessage: ch.onMessage, scheduler: sim });
    const clock = trueClockOn(sim, source, { watchdogIntervalMs: 0 });
    onTestFinished(() => clock.close());
    const ready = clock.ready({ timeoutMs: 1000 });
    await sim.advanceAsync(100);
    await ready;
    expect(clock.sample?.source).toBe('message');
    for (let i = 0; i < 10; i++) {
      await sim.advanceAsync(5_003);
      expect(intervalContains(clock.now(), sim.trueNow())).toBe(true);
    }
  });

  it('syncs over a channel that carries JSON text', async () => {
    const { sim, samples, problems } = overChannel(
      () => ({ upMs: 2, downMs: 2 }),
      { samples: 2, name: 'ws' },
      { serialize: true },
    );
    await sim.advanceAsync(20);
    expect(problems).toEqual([]);
    expect(samples).toHaveLength(2);
    expect(samples[0]?.source).toBe('ws');
  });

  it('ignores app messages sharing the channel', async () => {
    const { sim, ch, samples, problems } = overChannel(() => ({ upMs: 5, downMs: 5 }), {
      samples: 1,
    });
    ch.deliver({ type: 'chat', text: 'hello' });
    ch.deliver('plain text');
    ch.deliver(new Uint8Array(8));
    ch.deliver(null);
    await sim.advanceAsync(20);
    expect(problems).toEqual([]);
    expect(samples).toHaveLength(1);
  });

  it('a reply with a foreign nonce is reported and does not end the exchange', async () => {
    const { sim, ch, samples, problems } = overChannel(() => ({ upMs: 5, downMs: 5 }), {
      samples: 1,
    });
    await sim.advanceAsync(3);
    // A forged reply: right shape, wrong nonce, absurd times.
    ch.deliver({
      type: 'chronobound.time-reply',
      v: 1,
      nonce: NONCE,
      t2: 0,
      t3: 0,
      errorMs: 0,
      status: 'synchronized',
    });
    await sim.advanceAsync(20);
    expect(problems.map((p) => p.reason)).toEqual(['nonce-mismatch']);
    expect(problems[0]?.error).toBeInstanceOf(TimeExchangeError);
    expect(samples).toHaveLength(1);
    expect(
      Math.abs((samples[0] as SyncSample).offsetMs - (sim.trueNow() - sim.monotonic.now())),
    ).toBeLessThan(10);
  });

  it('a late reply to a timed-out request is reported, not used', async () => {
    const { sim, samples, problems } = overChannel(
      (n) => (n === 0 ? { upMs: 150, downMs: 10 } : { upMs: 1, downMs: 1 }),
      { samples: 2, timeoutMs: 100 },
    );
    await sim.advanceAsync(500);
    expect(problems.map((p) => p.reason)).toEqual(['timeout', 'nonce-mismatch']);
    expect(samples).toHaveLength(1);
  });

  it('a refusal (server clock unsynchronized) is a status problem with no sample', async () => {
    const { sim, samples, problems } = overChannel(
      () => ({ upMs: 1, downMs: 1 }),
      { samples: 1 },
      { synced: false },
    );
    await sim.advanceAsync(10);
    expectOnlyProblems(samples, problems, ['status']);
    expect(problems[0]?.message).toMatch(/unsynchronized/);
  });

  it('a malformed reply carrying our nonce is a body problem', async () => {
    const sim = new SimulatedClock();
    let sent: TimeRequest | undefined;
    const listeners: ((m: unknown) => void)[] = [];
    const source = messageTimeSource({
      send: (r) => {
        sent = r;
      },
      onMessage: (l) => {
        listeners.push(l);
        return () => {};
      },
      scheduler: sim,
      samples: 1,
    });
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(1);
    expect(sent?.nonce).toMatch(/^[0-9a-f]{32}$/);
    for (const l of listeners)
      l({
        type: 'chronobound.time-reply',
        v: 1,
        nonce: sent?.nonce,
        t2: 'soon',
        status: 'synchronized',
      });
    await sim.advanceAsync(1);
    expectOnlyProblems(samples, problems, ['body']);
  });

  it('a send that throws (channel closed) is a network problem', async () => {
    const sim = new SimulatedClock();
    const source = messageTimeSource({
      send: () => {
        throw new Error('WebSocket is already in CLOSING or CLOSED state.');
      },
      onMessage: () => () => {},
      scheduler: sim,
      samples: 1,
    });
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(1);
    expectOnlyProblems(samples, problems, ['network']);
    expect(problems[0]?.message).toMatch(/CLOSED/);
  });

  it('retries a poll that yielded nothing after 1 s, 2 s, 4 s … (socket not open yet), then at the poll interval', async () => {
    const sim = new SimulatedClock();
    const { clock: server, sync } = serverClock(sim);
    sync();
    let open = false;
    const sentAt: number[] = [];
    const ch = channel(sim, server, () => ({ upMs: 1, downMs: 1 }));
    const source = messageTimeSource({
      send: (request) => {
        sentAt.push(sim.monotonic.now());
        if (!open) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
        ch.send(request);
      },
      onMessage: ch.onMessage,
      scheduler: sim,
      samples: 1,
      pollIntervalMs: 30_000,
    });
    const start = sim.monotonic.now();
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(3_500);
    expect(sentAt.map((t) => t - start)).toEqual([0, 1000, 3000]);
    expect(problems.map((p) => p.reason)).toEqual(['network', 'network', 'network']);
    open = true;
    await sim.advanceAsync(4_000); // the retry at 7 s succeeds
    expect(samples).toHaveLength(1);
    await sim.advanceAsync(29_000);
    expect(sentAt).toHaveLength(4);
    await sim.advanceAsync(2_000); // back on the 30 s poll interval
    expect(sentAt).toHaveLength(5);
    expect(samples).toHaveLength(2);
  });

  it('no reply is a timeout problem', async () => {
    const sim = new SimulatedClock();
    const source = messageTimeSource({
      send: () => {},
      onMessage: () => () => {},
      scheduler: sim,
      samples: 2,
      timeoutMs: 300,
    });
    const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(700);
    expectOnlyProblems(samples, problems, ['timeout', 'timeout']);
    // …and retried a second later (at 1.6 s, timing out at 1.9 s), not after the full poll interval.
    await sim.advanceAsync(1_300);
    expect(problems).toHaveLength(3);
  });

  it('close() unregisters the listener and leaves no timers', async () => {
    const { sim, ch, source, samples, problems } = overChannel(() => ({ upMs: 50, downMs: 50 }));
    expect(ch.listeners).toBe(1);
    await sim.advanceAsync(10);
    await source.close();
    expect(ch.listeners).toBe(0);
    expect(ch.unlistened).toBe(1);
    await sim.advanceAsync(200);
    expectOnlyProblems(samples, problems, []);
    expect(sim.pendingTimers).toBe(0);
  });

  it.each([
    ['send', { send: 1, onMessage: () => () => {} }],
    ['onMessage', { send: () => {}, onMessage: undefined }],
    ['samples', { send: () => {}, onMessage: () => () => {}, samples: 0 }],
    ['timeoutMs', { send: () => {}, onMessage: () => () => {}, timeoutMs: NaN }],
  ])('rejects a bad %s', (argument, options) => {
    expectInvalidArgument(() => messageTimeSource(options as never), argument);
  });

  it('contains the server truth for any asymmetry, server ε and error, and client drift (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: -200, max: 200, noNaN: true }),
        fc.double({ min: 0, max: 30, noNaN: true }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        fc.array(
          fc.record({
            upMs: fc.double({ min: 0, max: 250, noNaN: true }),
            downMs: fc.double({ min: 0, max: 250, noNaN: true }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.double({ min: 0, max: 100_000, noNaN: true }),
        async (driftPpm, epsilonMs, fraction, legs, laterMs) => {
          const sim = new SimulatedClock({ driftPpm });
          const server = fakeServerClock(sim, epsilonMs, () => fraction * epsilonMs);
          const ch = channel(sim, server, (n) => legs[n % legs.length] as Legs, {
            serialize: true,
          });
          const source = messageTimeSource({
            send: ch.send,
            onMessage: ch.onMessage,
            scheduler: sim,
            samples: legs.length,
          });
          const clock = trueClockOn(sim, source, {
            maxUncertaintyMs: Infinity,
            watchdogIntervalMs: 0,
          });
          try {
            await sim.advanceAsync(legs.reduce((t, l) => t + l.upMs + l.downMs, 0) + 5);
            expect(clock.sample).toBeDefined();
            expect(intervalContains(clock.now(), sim.trueNow())).toBe(true);
            await sim.advanceAsync(laterMs);
            expect(intervalContains(clock.now(), sim.trueNow())).toBe(true);
          } finally {
            await clock.close();
          }
        },
      ),
      fcParams(1000),
    );
  });
});

/** Calls the source's `invalidate`, which it must have. */
function invalidate(source: TimeSource, monotonicAt: number): void {
  expect(typeof source.invalidate).toBe('function');
  source.invalidate?.(monotonicAt);
}

describe('messageTimeSource: evidence, consistency and invalidation', () => {
  /** A channel to a server that is `stepMs.value` off true time, with per-exchange delays. */
  function setup(
    delays: (n: number) => Legs,
    options: { samples?: number; pollIntervalMs?: number; timeoutMs?: number } = {},
  ) {
    const sim = new SimulatedClock();
    const step = { ms: 0 };
    const sentAt: number[] = [];
    const ch = channel(
      sim,
      fakeServerClock(sim, 0.5, () => step.ms),
      delays,
      { onRequest: () => sentAt.push(sim.monotonic.now()) },
    );
    const source = messageTimeSource({
      send: ch.send,
      onMessage: ch.onMessage,
      scheduler: sim,
      ...options,
    });
    return { sim, step, sentAt, source, ...collectUntilTestEnds(source, sim.monotonic) };
  }

  it('every sample carries evidenceFrom: the T1 of its exchange', async () => {
    // Each exchange is faster than the last, so each one is delivered.
    const { sim, sentAt, samples } = setup((n) => ({ upMs: 10 - 3 * n, downMs: 2 }), {
      samples: 3,
    });
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(3);
    expect(samples.map((s) => s.evidenceFrom)).toEqual(sentAt);
    for (const s of samples) expect(s.monotonicAt).toBeGreaterThan(s.evidenceFrom as number);
  });

  it('a sample that contradicts the kept ones (the server stepped 10 s) replaces them and is reported', async () => {
    // A tight first poll, then slow exchanges: without the check, the old sample's
    // aged bound (≈ 1.5 + 200 ppm · 10 s) would beat the new ones (≈ 20.5) for minutes.
    const { sim, step, samples, problems } = setup(
      (n) => (n < 2 ? { upMs: 1, downMs: 1 } : { upMs: 20, downMs: 20 }),
      { samples: 2, pollIntervalMs: 10_000 },
    );
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(2);
    const before = samples[1] as SyncSample;
    step.ms = 10_000;
    await sim.advanceAsync(10_000);
    expect(samples).toHaveLength(4);
    const after = samples[2] as SyncSample;
    expect(after).not.toBe(before);
    expect(after.evidenceFrom).toBeGreaterThan(before.monotonicAt);
    expect(after.offsetMs - before.offsetMs).toBeCloseTo(10_000, 2);
    // What it delivers is the truth the server now tells.
    expect(Math.abs(sim.monotonic.now() + after.offsetMs - (sim.trueNow() + 10_000))).toBeLessThan(
      after.errorMs,
    );
    expect(samples[3]?.evidenceFrom).toBeGreaterThan(before.monotonicAt);
    expect(problems.map((p) => p.reason)).toEqual(['inconsistent-sample']);
    expect(problems[0]?.source).toBe('message');
    expect(problems[0]?.message).toMatch(/\b(9999\.99\d|10000\.00\d) ms\b/);
    expect(problems[0]?.message).toMatch(/dropped 2 kept samples/);
  });

  it('has maxSampleGapMs = pollIntervalMs + samples × timeoutMs', () => {
    const send = (): void => {};
    const onMessage = () => () => {};
    expect(messageTimeSource({ send, onMessage }).maxSampleGapMs).toBe(60_000 + 4 * 5_000);
    expect(
      messageTimeSource({ send, onMessage, pollIntervalMs: 30_000, samples: 2, timeoutMs: 3_000 })
        .maxSampleGapMs,
    ).toBe(36_000);
  });

  it('invalidate() while waiting: drops the samples gathered before, polls at once, and the poll interval restarts from there', async () => {
    const { sim, sentAt, samples, problems, source } = setup(
      (n) => (n < 2 ? { upMs: 1, downMs: 1 } : { upMs: 10, downMs: 10 }),
      { samples: 2, pollIntervalMs: 30_000 },
    );
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(2);
    await sim.advanceAsync(10_000);
    const disruptedAt = sim.monotonic.now() - 5_000;
    invalidate(source, disruptedAt);
    // Sent at once, not at the 30 s poll.
    expect(sentAt).toHaveLength(3);
    expect(sentAt[2]).toBe(sim.monotonic.now());
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(4);
    // The fresh samples are delivered although the old ones had tighter bounds:
    // those were forgotten.
    for (const s of samples.slice(2)) {
      expect(s.evidenceFrom).toBeGreaterThan(disruptedAt);
      expect(s.errorMs).toBeGreaterThan(10);
    }
    const freshAt = sentAt[2] as number;
    // The poll that was due at ≈ 30 s was cancelled; the next one is 30 s after the fresh one.
    await sim.advanceAsync(freshAt + 29_000 - sim.monotonic.now());
    expect(sentAt).toHaveLength(4);
    await sim.advanceAsync(2_000);
    expect(sentAt).toHaveLength(6);
    expect(sentAt[4]).toBeGreaterThanOrEqual(freshAt + 30_000);
    expect(problems).toEqual([]);
  });

  it('invalidate() with an exchange in flight: its reply is neither filtered nor delivered, and a fresh poll follows right away', async () => {
    const { sim, sentAt, samples, problems, source } = setup(
      (n) => (n === 1 ? { upMs: 50, downMs: 50 } : { upMs: 5, downMs: 5 }),
      { samples: 1, pollIntervalMs: 30_000 },
    );
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(1);
    await sim.advanceAsync(30_000); // the second poll is in flight
    expect(sentAt).toHaveLength(2);
    const disruptedAt = sim.monotonic.now();
    expect(sentAt[1]).toBeLessThanOrEqual(disruptedAt);
    invalidate(source, disruptedAt);
    expect(sentAt).toHaveLength(2); // the poll in progress is left to end
    await sim.advanceAsync(200);
    // The stale reply came back at sentAt[1] + 100 and was dropped; the fresh poll went out then.
    expect(sentAt).toHaveLength(3);
    expect(sentAt[2]).toBe((sentAt[1] as number) + 100);
    expect(samples).toHaveLength(2);
    expect(samples[1]?.evidenceFrom).toBe(sentAt[2]);
    expect(problems).toEqual([]);
    // And it is back on the poll interval after that.
    await sim.advanceAsync(30_000);
    expect(sentAt).toHaveLength(4);
  });

  it('invalidate() at the current reading polls as soon as the monotonic clock has moved past it', async () => {
    const { sim, sentAt, samples, source } = setup(() => ({ upMs: 2, downMs: 2 }), {
      samples: 1,
      pollIntervalMs: 30_000,
    });
    await sim.advanceAsync(100);
    const disruptedAt = sim.monotonic.now();
    invalidate(source, disruptedAt);
    // An exchange sent now would be evidence from the disruption's own instant.
    expect(sentAt).toHaveLength(1);
    await sim.advanceAsync(10);
    expect(sentAt).toHaveLength(2);
    expect(sentAt[1]).toBeGreaterThan(disruptedAt);
    expect(samples).toHaveLength(2);
    expect(samples[1]?.evidenceFrom).toBeGreaterThan(disruptedAt);
  });

  it('invalidate() keeps the samples gathered after the disruption', async () => {
    const { sim, sentAt, samples, source } = setup(
      (n) =>
        [
          { upMs: 1, downMs: 1 },
          { upMs: 3, downMs: 3 },
          { upMs: 4, downMs: 4 },
        ][n] ?? {
          upMs: 30,
          downMs: 30,
        },
      { samples: 3, pollIntervalMs: 30_000 },
    );
    await sim.advanceAsync(100);
    expect(samples).toHaveLength(3);
    // Between the first exchange and the second.
    invalidate(source, (sentAt[0] as number) + 1);
    await sim.advanceAsync(500);
    expect(samples).toHaveLength(6);
    // The slow fresh exchanges lose to the second one, which was gathered after.
    for (const s of samples.slice(3)) expect(s.evidenceFrom).toBe(sentAt[1]);
  });

  it('invalidate() reaches every subscription, ignores stopped ones and rejects a reading that is not finite', async () => {
    const { sim, sentAt, source, stop } = setup(() => ({ upMs: 1, downMs: 1 }), {
      samples: 1,
      pollIntervalMs: 30_000,
    });
    const other = collectUntilTestEnds(source, sim.monotonic);
    await sim.advanceAsync(100);
    expect(sentAt).toHaveLength(2);
    invalidate(source, sim.monotonic.now() - 1);
    expect(sentAt).toHaveLength(4);
    await sim.advanceAsync(100);
    expect(other.samples).toHaveLength(2);
    stop();
    invalidate(source, sim.monotonic.now() - 1);
    expect(sentAt).toHaveLength(5);
    expect(() => source.invalidate?.(Number.NaN)).toThrow(InvalidArgumentError);
    await source.close();
    invalidate(source, sim.monotonic.now() - 1);
    expect(sentAt).toHaveLength(5);
    await sim.advanceAsync(100_000);
    expect(sim.pendingTimers).toBe(0);
  });
});

describe('the drift bound comes from the subscribing clock', () => {
  it('without maxDriftPpm, a subscriber’s context sets the drift charged over an exchange; the option still wins', async () => {
    const errorsFor = async (
      options: { maxDriftPpm?: number },
      contextPpm: number | undefined,
    ): Promise<number> => {
      const sim = new SimulatedClock();
      const { clock, sync } = serverClock(sim, 0);
      sync();
      // 1 s each way: the drift charged over the 2 s exchange is what differs.
      const ch = channel(sim, clock, () => ({ upMs: 1000, downMs: 1000 }));
      const source = messageTimeSource({
        send: ch.send,
        onMessage: ch.onMessage,
        samples: 1,
        scheduler: sim,
        ...options,
      });
      const { samples } = collectUntilTestEnds(
        source,
        sim.monotonic,
        contextPpm === undefined
          ? undefined
          : { maxDriftPpm: contextPpm, predictUncertaintyMs: (e, t) => e + contextPpm * 1e-6 * t },
      );
      await sim.advanceAsync(2_500);
      expect(samples).toHaveLength(1);
      return (samples[0] as SyncSample).errorMs;
    };
    const base = await errorsFor({}, undefined); // 200 ppm by default
    const fromContext = await errorsFor({}, 50);
    const fromOption = await errorsFor({ maxDriftPpm: 100 }, 50);
    // 2 s of exchange: 200 ppm → 0.4 ms, 50 ppm → 0.1 ms, 100 ppm → 0.2 ms.
    expect(base - fromContext).toBeCloseTo(0.3, 6);
    expect(fromOption - fromContext).toBeCloseTo(0.1, 6);
  });
});
