import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { startPoller, type Poller, type PollerOptions } from '../../src/sources/poller.js';
import type { Scheduler } from '../../src/clock/types.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { fcParams } from '../support/fc.js';

/** Resolves after `ms` of virtual time. */
function sleep(sim: SimulatedClock, ms: number): Promise<void> {
  return new Promise((resolve) => sim.setTimeout(resolve, ms));
}

/**
 * A poller whose n-th poll (from 0) takes `durationMs(n)` of virtual time and
 * returns n; it records when polls start and end and what went to `onError`.
 */
function harness(
  options: {
    durationMs?: (n: number) => number;
    nextDelayMs?: (n: number) => number;
  } & Partial<Omit<PollerOptions<number>, 'scheduler' | 'nextDelayMs'>> = {},
) {
  const sim = new SimulatedClock({ monotonicMs: 0 });
  const starts: number[] = [];
  const ends: number[] = [];
  const errors: unknown[] = [];
  const delaysAsked: number[] = [];
  const signals: AbortSignal[] = [];
  let active = 0;
  let maxActive = 0;
  const { durationMs = () => 10, nextDelayMs = () => 1000, ...rest } = options;
  const poller = startPoller<number>({
    scheduler: sim,
    poll: async (signal) => {
      const n = starts.length;
      starts.push(sim.monotonic.now());
      signals.push(signal);
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        await sleep(sim, durationMs(n));
      } finally {
        active--;
        ends.push(sim.monotonic.now());
      }
      return n;
    },
    nextDelayMs: (n) => {
      delaysAsked.push(n);
      return nextDelayMs(n);
    },
    onError: (error) => errors.push(error),
    errorDelayMs: 500,
    ...rest,
  });
  return {
    sim,
    poller,
    starts,
    ends,
    errors,
    delaysAsked,
    signals,
    maxActive: () => maxActive,
  };
}

describe('startPoller', () => {
  it('polls at once, then waits nextDelayMs(outcome) after each poll ends', async () => {
    const { sim, starts, ends, delaysAsked, errors } = harness({
      durationMs: () => 10,
      nextDelayMs: (n) => [1000, 2000, 4000][n] ?? 30_000,
    });
    // The first poll started synchronously, inside startPoller.
    expect(starts).toEqual([0]);
    await sim.advanceAsync(40_000);
    expect(starts).toEqual([0, 1010, 3020, 7030, 37_040]);
    expect(ends).toEqual([10, 1020, 3030, 7040, 37_050]);
    expect(delaysAsked).toEqual([0, 1, 2, 3, 4]);
    expect(errors).toEqual([]);
  });

  it('pollNow() while waiting cancels the wait, polls at once, and the interval restarts from there', async () => {
    const { sim, poller, starts } = harness({ nextDelayMs: () => 1000 });
    await sim.advanceAsync(500);
    poller.pollNow();
    expect(starts).toEqual([0, 500]);
    expect(sim.pendingTimers).toBe(1); // the new poll's own work, not the old wait
    await sim.advanceAsync(1_500);
    expect(starts).toEqual([0, 500, 1510]);
  });

  it('pollNow() during a poll: one more poll right after it, however often it is called', async () => {
    const { sim, poller, starts, ends, delaysAsked, maxActive } = harness({
      durationMs: () => 100,
      nextDelayMs: () => 1000,
    });
    await sim.advanceAsync(50);
    poller.pollNow();
    poller.pollNow();
    poller.pollNow();
    expect(starts).toEqual([0]); // the poll in flight is left to end
    await sim.advanceAsync(100);
    expect(ends[0]).toBe(100);
    expect(starts).toEqual([0, 100]);
    // The coalesced poll replaced the wait: nextDelayMs was not asked about poll 0.
    expect(delaysAsked).toEqual([]);
    await sim.advanceAsync(2_200);
    expect(starts).toEqual([0, 100, 1200, 2300]);
    expect(delaysAsked).toEqual([1, 2]);
    expect(maxActive()).toBe(1);
  });

  it('a pollNow() from inside the poll coalesces too', async () => {
    const sim = new SimulatedClock({ monotonicMs: 0 });
    const starts: number[] = [];
    let active = 0;
    let maxActive = 0;
    const poller: Poller = startPoller<number>({
      scheduler: sim,
      poll: async () => {
        starts.push(sim.monotonic.now());
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(sim, 10);
        // Before the first poll ends it asks for another: that one must not overlap it.
        if (starts.length === 1) poller.pollNow();
        active--;
        return starts.length;
      },
      nextDelayMs: () => 1000,
      onError: () => {},
      errorDelayMs: 1000,
    });
    await sim.advanceAsync(1_100);
    expect(starts).toEqual([0, 10, 1020]);
    expect(maxActive).toBe(1);
    poller.stop();
  });

  it('a pollNow() from inside nextDelayMs wins over the delay it returns', async () => {
    const ref: { poller?: Poller } = {};
    const h = harness({
      durationMs: () => 10,
      nextDelayMs: (n) => {
        if (n === 1) ref.poller?.pollNow();
        return 1000;
      },
    });
    ref.poller = h.poller;
    await h.sim.advanceAsync(2_500);
    expect(h.starts).toEqual([0, 1010, 1020, 2030]);
    expect(h.maxActive()).toBe(1);
    h.poller.stop();
  });

  it('stop() cancels the wait, is idempotent, and pollNow() after it does nothing', async () => {
    const { sim, poller, starts, signals, delaysAsked } = harness();
    await sim.advanceAsync(100);
    expect(sim.pendingTimers).toBe(1);
    poller.stop();
    poller.stop();
    expect(sim.pendingTimers).toBe(0);
    expect(signals[0]?.aborted).toBe(true);
    poller.pollNow();
    await sim.advanceAsync(10_000);
    expect(starts).toEqual([0]);
    expect(delaysAsked).toEqual([0]);
    expect(sim.pendingTimers).toBe(0);
  });

  it('a poll that ends after stop() schedules nothing and asks nothing', async () => {
    const { sim, poller, starts, ends, delaysAsked, errors } = harness({ durationMs: () => 100 });
    await sim.advanceAsync(50);
    poller.pollNow(); // pending "again" must not survive stop()
    poller.stop();
    await sim.advanceAsync(10_000);
    expect(ends).toEqual([100]);
    expect(starts).toEqual([0]);
    expect(delaysAsked).toEqual([]);
    expect(errors).toEqual([]);
    expect(sim.pendingTimers).toBe(0);
  });

  it('stop() from inside the poll or from nextDelayMs ends the loop', async () => {
    let handle: Poller | undefined;
    const sim = new SimulatedClock({ monotonicMs: 0 });
    let polls = 0;
    handle = startPoller<number>({
      scheduler: sim,
      poll: async () => {
        polls++;
        await sleep(sim, 10);
        if (polls === 2) handle?.stop();
        return polls;
      },
      nextDelayMs: (n) => {
        expect(n).toBe(1);
        return 100;
      },
      onError: (error) => {
        throw error;
      },
      errorDelayMs: 100,
    });
    await sim.advanceAsync(10_000);
    expect(polls).toBe(2);
    expect(sim.pendingTimers).toBe(0);

    let calls = 0;
    handle = startPoller<number>({
      scheduler: sim,
      poll: () => Promise.resolve(++calls),
      nextDelayMs: () => {
        handle?.stop();
        return 0;
      },
      onError: () => {},
      errorDelayMs: 100,
    });
    await sim.advanceAsync(10_000);
    expect(calls).toBe(1);
    expect(sim.pendingTimers).toBe(0);
  });

  it('a throwing or rejecting poll is reported and polling goes on after errorDelayMs', async () => {
    const sim = new SimulatedClock({ monotonicMs: 0 });
    const errors: unknown[] = [];
    const starts: number[] = [];
    const poller = startPoller<number>({
      scheduler: sim,
      poll: (): Promise<number> => {
        starts.push(sim.monotonic.now());
        if (starts.length === 1) throw new Error('sync throw');
        if (starts.length === 2) return Promise.reject(new Error('rejected'));
        return Promise.resolve(starts.length);
      },
      nextDelayMs: () => 1000,
      onError: (error) => errors.push(error),
      errorDelayMs: 300,
    });
    await sim.advanceAsync(2_000);
    expect(starts).toEqual([0, 300, 600, 1600]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['sync throw', 'rejected']);
    poller.stop();
  });

  it('a throwing nextDelayMs, or one that returns no number, is reported and the loop goes on', async () => {
    const sim = new SimulatedClock({ monotonicMs: 0 });
    const errors: unknown[] = [];
    const starts: number[] = [];
    const answers: (() => number)[] = [
      () => {
        throw new Error('policy bug');
      },
      () => Number.NaN,
      () => 'soon' as unknown as number,
    ];
    const poller = startPoller<number>({
      scheduler: sim,
      poll: () => Promise.resolve(starts.push(sim.monotonic.now()) - 1),
      nextDelayMs: (n) => (answers[n] ?? (() => 1000))(),
      onError: (error) => {
        errors.push(error);
        throw new Error('and the error listener throws too');
      },
      errorDelayMs: 200,
    });
    await sim.advanceAsync(2_000);
    expect(starts).toEqual([0, 200, 400, 600, 1600]);
    expect((errors[0] as Error).message).toBe('policy bug');
    expect(errors[1]).toBeInstanceOf(InvalidArgumentError);
    expect(errors[2]).toBeInstanceOf(InvalidArgumentError);
    expect(errors).toHaveLength(3);
    poller.stop();
  });

  it('a throwing scheduler is reported, and pollNow() brings the loop back', async () => {
    const sim = new SimulatedClock({ monotonicMs: 0 });
    let broken = true;
    const scheduler: Scheduler = {
      setTimeout(callback, ms) {
        if (broken) throw new Error('no timers left');
        return sim.setTimeout(callback, ms);
      },
      clearTimeout: (handle) => sim.clearTimeout(handle),
    };
    const errors: unknown[] = [];
    let polls = 0;
    const poller = startPoller<number>({
      scheduler,
      poll: () => Promise.resolve(++polls),
      nextDelayMs: () => 1000,
      onError: (error) => errors.push(error),
      errorDelayMs: 1000,
    });
    await sim.advanceAsync(5_000);
    expect(polls).toBe(1);
    expect((errors[0] as Error).message).toBe('no timers left');
    broken = false;
    poller.pollNow();
    await sim.advanceAsync(2_500);
    expect(polls).toBe(4);
    poller.stop();
    expect(sim.pendingTimers).toBe(0);
  });

  it('a poll rejecting because stop() aborted it is not reported', async () => {
    const sim = new SimulatedClock({ monotonicMs: 0 });
    const errors: unknown[] = [];
    const poller = startPoller<number>({
      scheduler: sim,
      poll: (signal) =>
        new Promise<number>((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
        ),
      nextDelayMs: () => 1000,
      onError: (error) => errors.push(error),
      errorDelayMs: 1000,
    });
    poller.stop();
    await sim.advanceAsync(5_000);
    expect(errors).toEqual([]);
    expect(sim.pendingTimers).toBe(0);
  });

  it('Infinity waits for pollNow(); a negative delay means at once', async () => {
    const delays = [Infinity, -5, 1000];
    const { sim, poller, starts } = harness({
      durationMs: () => 10,
      nextDelayMs: (n) => delays[n] ?? 1000,
    });
    await sim.advanceAsync(100_000);
    expect(starts).toEqual([0]);
    expect(sim.pendingTimers).toBe(0);
    poller.pollNow();
    await sim.advanceAsync(1_100);
    expect(starts).toEqual([0, 100_000, 100_010, 101_020]);
    poller.stop();
  });

  it('pollAfter(ms) replaces the pending wait with a timer, coalesces during a poll, and does nothing after stop()', async () => {
    const { sim, poller, starts } = harness({ durationMs: () => 10, nextDelayMs: () => 10_000 });
    await sim.advanceAsync(100);
    poller.pollAfter(0);
    // Not before returning: from a timer.
    expect(starts).toEqual([0]);
    await sim.advanceAsync(0);
    expect(starts).toEqual([0, 100]);
    poller.pollAfter(50); // during that poll: one more right after it
    await sim.advanceAsync(10);
    expect(starts).toEqual([0, 100, 110]);
    await sim.advanceAsync(1_000);
    poller.pollAfter(300); // a later poll than the pending wait's is fine too
    await sim.advanceAsync(299);
    expect(starts).toEqual([0, 100, 110]);
    await sim.advanceAsync(1);
    expect(starts).toEqual([0, 100, 110, 1_410]);
    expect(() => poller.pollAfter(-1)).toThrow(InvalidArgumentError);
    expect(() => poller.pollAfter(Number.NaN)).toThrow(InvalidArgumentError);
    poller.stop();
    poller.pollAfter(0);
    await sim.advanceAsync(100_000);
    expect(starts).toHaveLength(4);
  });

  it('initialDelayMs defers the first poll (Infinity: until pollNow())', async () => {
    const later = harness({ initialDelayMs: 250 });
    expect(later.starts).toEqual([]);
    await later.sim.advanceAsync(300);
    expect(later.starts).toEqual([250]);
    later.poller.stop();

    const idle = harness({ initialDelayMs: Infinity });
    await idle.sim.advanceAsync(10_000);
    expect(idle.starts).toEqual([]);
    expect(idle.sim.pendingTimers).toBe(0);
    idle.poller.pollNow();
    expect(idle.starts).toEqual([10_000]);
    idle.poller.stop();
  });

  it('unrefs every wait, so an idle loop never keeps the process alive', async () => {
    const handles: ReturnType<typeof setTimeout>[] = [];
    const scheduler: Scheduler = {
      setTimeout(callback, ms) {
        const handle = setTimeout(callback, ms);
        handles.push(handle);
        return handle;
      },
      clearTimeout(handle) {
        clearTimeout(handle as ReturnType<typeof setTimeout>);
      },
    };
    let polls = 0;
    const poller = startPoller<void>({
      scheduler,
      poll: () => {
        polls++;
        return Promise.resolve();
      },
      nextDelayMs: () => (polls < 3 ? 1 : 60_000),
      onError: () => {},
      errorDelayMs: 60_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(polls).toBe(3);
    expect(handles).toHaveLength(3);
    for (const handle of handles) expect(handle.hasRef()).toBe(false);
    poller.stop();

    const deferred = startPoller<void>({
      scheduler,
      poll: () => Promise.resolve(),
      nextDelayMs: () => 1000,
      onError: () => {},
      errorDelayMs: 1000,
      initialDelayMs: 60_000,
    });
    expect(handles[3]?.hasRef()).toBe(false);
    deferred.stop();
  });

  it.each([
    ['poll', { poll: 1 }],
    ['nextDelayMs', { nextDelayMs: undefined }],
    ['onError', { onError: null }],
    ['errorDelayMs', { errorDelayMs: -1 }],
    ['errorDelayMs', { errorDelayMs: Infinity }],
    ['initialDelayMs', { initialDelayMs: Number.NaN }],
  ])('rejects a bad %s', (argument, bad) => {
    const sim = new SimulatedClock();
    const options = {
      scheduler: sim,
      poll: () => Promise.resolve(0),
      nextDelayMs: () => 1000,
      onError: () => {},
      errorDelayMs: 1000,
      ...bad,
    } as unknown as PollerOptions<number>;
    expect(() => startPoller(options)).toThrow(InvalidArgumentError);
    try {
      startPoller(options);
    } catch (e) {
      expect((e as InvalidArgumentError).argument).toBe(argument);
    }
    expect(sim.pendingTimers).toBe(0);
  });
});

/** What the property test saw, in order. */
type PollEvent =
  | { readonly kind: 'start'; readonly t: number }
  | { readonly kind: 'end'; readonly t: number; readonly n: number }
  | { readonly kind: 'asked'; readonly n: number }
  | { readonly kind: 'pollNow'; readonly t: number }
  | { readonly kind: 'stop'; readonly t: number };

type Op = { readonly advance: number } | { readonly pollNow: number } | { readonly stop: true };

describe('startPoller (property, virtual time)', () => {
  const EPS = 1e-6;

  /**
   * Replays the log against the contract: never two polls at once; a pollNow()
   * while idle starts a poll at once; pollNow() calls during a poll add exactly
   * one poll, right when it ends, and nextDelayMs is not asked then; otherwise
   * the next poll comes exactly max(0, nextDelayMs(outcome)) after the end
   * (Infinity: only on pollNow()), and none is missed; nothing after stop().
   */
  function check(log: readonly PollEvent[], delayOf: (n: number) => number, endT: number): void {
    let active = false;
    let stopped = false;
    let again = false;
    let dueAt: number | undefined = 0; // the first poll starts at once
    let mustStartAt: number | undefined;
    let mustAsk: number | undefined;
    for (const [i, e] of log.entries()) {
      const where = `event ${i} ${JSON.stringify(e)}`;
      if (mustAsk !== undefined) {
        expect(e, `${where}: nextDelayMs must be asked first`).toEqual({
          kind: 'asked',
          n: mustAsk,
        });
        mustAsk = undefined;
        continue;
      }
      if (mustStartAt !== undefined) {
        expect(e.kind, `${where}: a poll must start at ${mustStartAt}`).toBe('start');
      }
      if ('t' in e && dueAt !== undefined && dueAt !== Infinity && !active && !stopped) {
        expect(e.t, `${where}: the poll due at ${dueAt} was missed`).toBeLessThanOrEqual(
          dueAt + EPS,
        );
      }
      switch (e.kind) {
        case 'start':
          expect(active, `${where}: two polls at once`).toBe(false);
          expect(stopped, `${where}: a poll after stop()`).toBe(false);
          if (mustStartAt !== undefined) {
            expect(e.t).toBeCloseTo(mustStartAt, 6);
          } else {
            expect(dueAt, `${where}: a poll nobody asked for`).toBeDefined();
            expect(e.t).toBeCloseTo(dueAt as number, 6);
          }
          active = true;
          again = false;
          dueAt = undefined;
          mustStartAt = undefined;
          break;
        case 'end':
          active = false;
          if (stopped) break;
          if (again) {
            mustStartAt = e.t;
          } else {
            mustAsk = e.n;
            dueAt = e.t + Math.max(0, delayOf(e.n));
          }
          break;
        case 'asked':
          throw new Error(`${where}: nextDelayMs asked when it should not be`);
        case 'pollNow':
          if (stopped) break;
          if (active) again = true;
          else mustStartAt = e.t;
          break;
        case 'stop':
          stopped = true;
          dueAt = undefined;
          break;
      }
    }
    expect(mustStartAt, 'a pollNow() that started nothing').toBeUndefined();
    expect(mustAsk, 'an end whose delay was never asked').toBeUndefined();
    if (!stopped && !active && dueAt !== undefined && dueAt !== Infinity) {
      expect(endT, `the poll due at ${dueAt} never came`).toBeLessThan(dueAt + EPS);
    }
  }

  it('never overlaps, coalesces pollNow(), waits exactly nextDelayMs, stops for good (any timing)', async () => {
    const delay = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 1500 }) },
      { weight: 1, arbitrary: fc.integer({ min: -100, max: -1 }) },
      { weight: 1, arbitrary: fc.constant(Infinity) },
    );
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 0, max: 2000 }).map((advance) => ({ advance })) },
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }).map((pollNow) => ({ pollNow })) },
      { weight: 1, arbitrary: fc.constant({ stop: true as const }) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 5 }),
        fc.array(delay, { minLength: 1, maxLength: 5 }),
        fc.array(op, { maxLength: 25 }),
        async (durations, delays, ops) => {
          const sim = new SimulatedClock({ monotonicMs: 0 });
          const log: PollEvent[] = [];
          const now = (): number => sim.monotonic.now();
          const delayOf = (n: number): number => delays[n % delays.length] as number;
          let polls = 0;
          const poller = startPoller<number>({
            scheduler: sim,
            poll: async () => {
              const n = polls++;
              log.push({ kind: 'start', t: now() });
              await sleep(sim, durations[n % durations.length] as number);
              log.push({ kind: 'end', t: now(), n });
              return n;
            },
            nextDelayMs: (n) => {
              log.push({ kind: 'asked', n });
              return delayOf(n);
            },
            onError: (error) => {
              throw new Error(`unexpected onError: ${String(error)}`);
            },
            errorDelayMs: 1,
          });
          for (const o of ops) {
            if ('advance' in o) {
              await sim.advanceAsync(o.advance);
            } else if ('pollNow' in o) {
              for (let k = 0; k < o.pollNow; k++) {
                log.push({ kind: 'pollNow', t: now() });
                poller.pollNow();
              }
            } else {
              log.push({ kind: 'stop', t: now() });
              poller.stop();
            }
          }
          await sim.advanceAsync(3_000);
          check(log, delayOf, now());
          poller.stop();
          await sim.advanceAsync(1_000);
          expect(sim.pendingTimers).toBe(0);
        },
      ),
      fcParams(300),
    );
  });
});
