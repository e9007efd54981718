import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  ClockOffsetError,
  HLC_MAX_COUNTER,
  HlcOverflowError,
  HybridLogicalClock,
  InvalidArgumentError,
  compareHlc,
  type HlcPersistence,
  type HlcTimestamp,
  type HlcUpperBound,
  type HybridLogicalClockOptions,
  type Scheduler,
} from '../../src/index.js';
import { checkMonotonic } from '../../src/testing/checkers.js';
import { fcParams } from '../support/fc.js';
import { catchError, expectInvalidArgument } from '../support/errors.js';
import {
  T0,
  hlcStamp,
  manualHlc,
  manualPhysical,
  memoryPersistence,
  type ManualPhysical,
} from '../support/hlc-clocks.js';

const ts = (wallMs: number, counter: number, node = 'peer'): HlcTimestamp =>
  hlcStamp(wallMs, counter, node);

/** Same (l, c) state: peek and the next timestamp agree. */
function sameState(a: HybridLogicalClock, b: HybridLogicalClock): void {
  expect(a.peek()).toEqual(b.peek());
  expect(a.now()).toEqual(b.now());
}

describe('now()', () => {
  it('follows physical time and counts within one millisecond', () => {
    const { hlc, time } = manualHlc();
    expect(hlc.peek()).toBeUndefined();
    expect(hlc.now()).toEqual({ wallMs: T0, counter: 0, node: 'me' });
    expect(hlc.now()).toEqual({ wallMs: T0, counter: 1, node: 'me' });
    time.add(0.7);
    expect(hlc.now()).toEqual({ wallMs: T0, counter: 2, node: 'me' }); // floored
    time.add(0.3);
    expect(hlc.now()).toEqual({ wallMs: T0 + 1, counter: 0, node: 'me' });
    expect(hlc.peek()).toEqual({ wallMs: T0 + 1, counter: 0, node: 'me' });
    expect(hlc.peek()).toEqual({ wallMs: T0 + 1, counter: 0, node: 'me' }); // peek does not tick
  });

  it('defaults to Date.now()', () => {
    const hlc = new HybridLogicalClock({ node: 'a' });
    const before = Date.now();
    const t = hlc.now();
    expect(t.wallMs).toBeGreaterThanOrEqual(before);
    expect(t.wallMs).toBeLessThanOrEqual(Date.now());
  });

  it('keeps increasing when physical time steps back an hour', () => {
    const { hlc, time } = manualHlc();
    const stamps = [hlc.now(), hlc.now()];
    time.add(-3_600_000);
    for (let i = 0; i < 100; i++) stamps.push(hlc.now());
    time.add(3_600_000 + 5);
    stamps.push(hlc.now());
    const result = checkMonotonic(stamps, compareHlc);
    expect(result.ok, result.ok ? '' : result.message).toBe(true);
    expect(stamps[2]).toEqual(ts(T0, 2, 'me'));
    expect(stamps.at(-1)).toEqual(ts(T0 + 5, 0, 'me'));
  });

  it('rejects a broken physical clock without changing state', () => {
    let value = T0;
    const hlc = new HybridLogicalClock({ node: 'a', physical: () => value });
    hlc.now();
    for (const bad of [Number.NaN, -1, 2 ** 48, Infinity]) {
      value = bad;
      expectInvalidArgument(() => hlc.now(), 'physical()');
      expect(() => hlc.receive(ts(T0, 0))).toThrow(InvalidArgumentError);
    }
    value = T0;
    expect(hlc.now()).toEqual(ts(T0, 1, 'a'));
  });
});

describe('receive()', () => {
  it('implements the four cases of the paper', () => {
    // pt is largest: (pt, 0)
    let { hlc, time } = manualHlc();
    hlc.now();
    time.add(10);
    expect(hlc.receive(ts(T0 + 5, 9))).toEqual(ts(T0 + 10, 0, 'me'));
    // local l is largest: (l, c + 1)
    ({ hlc, time } = manualHlc());
    hlc.update(ts(T0 + 100, 4));
    expect(hlc.receive(ts(T0 + 50, 9))).toEqual(ts(T0 + 100, 5, 'me'));
    // remote is largest: (lm, cm + 1)
    ({ hlc, time } = manualHlc());
    hlc.now();
    expect(hlc.receive(ts(T0 + 100, 7))).toEqual(ts(T0 + 100, 8, 'me'));
    // local and remote tie: (l, max(c, cm) + 1)
    ({ hlc, time } = manualHlc());
    hlc.update(ts(T0 + 100, 4));
    expect(hlc.receive(ts(T0 + 100, 9))).toEqual(ts(T0 + 100, 10, 'me'));
    expect(hlc.receive(ts(T0 + 100, 2))).toEqual(ts(T0 + 100, 11, 'me'));
    // pt ties with the remote, above l: (lm, cm + 1)
    ({ hlc, time } = manualHlc());
    expect(hlc.receive(ts(T0, 3))).toEqual(ts(T0, 4, 'me'));
  });

  it('is greater than the remote and than everything before', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: -50, max: 50 }),
            fc.integer({ min: -2000, max: 500 }),
            fc.nat({ max: 1000 }),
          ),
          { maxLength: 40 },
        ),
        (steps) => {
          const { hlc, time } = manualHlc({ maxOffsetMs: 500 });
          let last: HlcTimestamp | undefined;
          for (const [dt, ahead, counter] of steps) {
            time.add(dt);
            const remote = ts(time.now() + ahead, counter);
            const got = hlc.receive(remote);
            expect(compareHlc(remote, got)).toBeLessThan(0);
            if (last) expect(compareHlc(last, got)).toBeLessThan(0);
            last = got;
          }
        },
      ),
      fcParams(2_000),
    );
  });

  it('rejects a remote too far ahead with ClockOffsetError and leaves the clock unchanged', () => {
    const { hlc } = manualHlc({ maxOffsetMs: 500 });
    const twin = manualHlc({ maxOffsetMs: 500 }).hlc;
    hlc.now();
    twin.now();
    const err = catchError(() => hlc.receive(ts(T0 + 501, 0)));
    expect(err).toBeInstanceOf(ClockOffsetError);
    const e = err as ClockOffsetError;
    expect([e.remoteMs, e.physicalMs, e.offsetMs, e.maxOffsetMs, e.code]).toEqual([
      T0 + 501,
      T0,
      501,
      500,
      'CLOCK_OFFSET',
    ]);
    expect(() => hlc.update(ts(T0 + 501, 0))).toThrow(ClockOffsetError);
    expect(() => hlc.receiveMany([ts(T0, 1), ts(T0 + 501, 0)])).toThrow(ClockOffsetError);
    sameState(hlc, twin);
    // Exactly at the limit is accepted.
    expect(hlc.receive(ts(T0 + 500, 0))).toEqual(ts(T0 + 500, 1, 'me'));
  });

  it('maxOffsetMs: Infinity disables the check', () => {
    const { hlc } = manualHlc({ maxOffsetMs: Infinity });
    expect(hlc.receive(ts(T0 + 10 ** 9, 0)).wallMs).toBe(T0 + 10 ** 9);
  });

  it("offsetPolicy: 'clamp' ignores the excess, reports it and carries on", () => {
    const reports: ClockOffsetError[] = [];
    const { hlc } = manualHlc({
      maxOffsetMs: 500,
      offsetPolicy: 'clamp',
      onOffsetReport: (e) => reports.push(e),
    });
    const got = hlc.receive(ts(T0 + 3_600_000, 9));
    expect(got).toEqual(ts(T0 + 500, 1, 'me'));
    expect(reports).toHaveLength(1);
    expect(reports[0]?.remoteMs).toBe(T0 + 3_600_000);
    hlc.update(ts(T0 + 7_200_000, 0));
    expect(reports).toHaveLength(2);
    expect(hlc.peek()).toEqual(ts(T0 + 500, 1, 'me'));
    const many = hlc.receiveMany([ts(T0 + 10 ** 7, 0), ts(T0 + 100, 3)]);
    expect(many).toEqual(ts(T0 + 500, 2, 'me'));
    expect(reports).toHaveLength(3);
  });

  it('a throwing onOffsetReport aborts the call and leaves the clock unchanged', () => {
    const { hlc } = manualHlc({
      offsetPolicy: 'clamp',
      onOffsetReport: () => {
        throw new Error('quarantine');
      },
    });
    const twin = manualHlc().hlc;
    hlc.now();
    twin.now();
    expect(() => hlc.receive(ts(T0 + 10_000, 0))).toThrow('quarantine');
    sameState(hlc, twin);
  });

  it('rejects malformed remotes, naming the field, without changing state', () => {
    const { hlc } = manualHlc();
    const twin = manualHlc().hlc;
    hlc.now();
    twin.now();
    const bad: Array<[string, unknown]> = [
      ['remote.wallMs', { wallMs: -1, counter: 0, node: 'p' }],
      ['remote.wallMs', { wallMs: 1.5, counter: 0, node: 'p' }],
      ['remote.wallMs', { wallMs: Number.NaN, counter: 0, node: 'p' }],
      ['remote.wallMs', { wallMs: '5', counter: 0, node: 'p' }],
      ['remote.wallMs', { wallMs: 2 ** 48, counter: 0, node: 'p' }],
      ['remote.counter', { wallMs: T0, counter: 65_536, node: 'p' }],
      ['remote.counter', { wallMs: T0, counter: -1, node: 'p' }],
      ['remote.counter', { wallMs: T0, counter: 0.5, node: 'p' }],
      ['remote.counter', { wallMs: T0, counter: '1', node: 'p' }],
    ];
    for (const [argument, remote] of bad) {
      const r = remote as HlcTimestamp;
      for (const call of [() => hlc.receive(r), () => hlc.update(r)]) {
        expectInvalidArgument(call, argument);
      }
      expectInvalidArgument(
        () => hlc.receiveMany([ts(T0, 0), r]),
        argument.replace('remote', 'remotes[1]'),
      );
    }
    sameState(hlc, twin);
  });
});

describe('receiveMany()', () => {
  it('takes ONE tick for a whole batch', () => {
    const { hlc } = manualHlc();
    const batch = Array.from({ length: 10_000 }, (_, i) => ts(T0, i % 100, `n${i % 7}`));
    const got = hlc.receiveMany(batch);
    expect(got).toEqual(ts(T0, 100, 'me'));
    for (const r of batch) expect(compareHlc(r, got)).toBeLessThan(0);
    // Receiving the same batch one by one would have burned 10 000 counter values.
    const { hlc: slow } = manualHlc();
    let last: HlcTimestamp | undefined;
    for (const r of batch) last = slow.receive(r);
    expect(last?.counter).toBe(10_000);
  });

  it('equals receive() of the largest remote', () => {
    const remote = fc.record({
      wallMs: fc.integer({ min: T0 - 5, max: T0 + 5 }),
      counter: fc.nat({ max: 5 }),
      node: fc.constantFrom('p', 'q'),
    });
    fc.assert(
      fc.property(fc.array(remote, { minLength: 1, maxLength: 20 }), (batch) => {
        const a = manualHlc().hlc;
        const b = manualHlc().hlc;
        a.now();
        b.now();
        const max = [...batch].sort(compareHlc).at(-1) as HlcTimestamp;
        expect(a.receiveMany(batch)).toEqual(b.receive(max));
      }),
      fcParams(1_000),
    );
  });

  it('with an empty batch behaves like now()', () => {
    const { hlc } = manualHlc();
    hlc.now();
    expect(hlc.receiveMany([])).toEqual(ts(T0, 1, 'me'));
  });
});

describe('update()', () => {
  it('observes without ticking; the next timestamp is above the remote', () => {
    const { hlc } = manualHlc();
    hlc.update(ts(T0 + 100, 7));
    expect(hlc.peek()).toEqual(ts(T0 + 100, 7, 'me'));
    hlc.update(ts(T0 + 50, 9)); // older: no effect
    expect(hlc.peek()).toEqual(ts(T0 + 100, 7, 'me'));
    expect(hlc.now()).toEqual(ts(T0 + 100, 8, 'me'));
  });
});

describe('counter overflow', () => {
  it('never wraps: after 65 536 stamps in one millisecond it borrows the next one', () => {
    const { hlc, time } = manualHlc();
    for (let i = 0; i <= HLC_MAX_COUNTER; i++) expect(hlc.now().counter).toBe(i);
    expect(hlc.now()).toEqual(ts(T0 + 1, 0, 'me'));
    time.add(1);
    expect(hlc.now()).toEqual(ts(T0 + 1, 1, 'me'));
    time.add(1);
    expect(hlc.now()).toEqual(ts(T0 + 2, 0, 'me'));
  });

  it('without room to borrow (maxOffsetMs + maxBorrowMs = 0): throws HlcOverflowError, state unchanged', () => {
    const { hlc, time } = manualHlc({ maxOffsetMs: 0, maxBorrowMs: 0 });
    for (let i = 0; i <= HLC_MAX_COUNTER; i++) expect(hlc.now().counter).toBe(i);
    const err = catchError(() => hlc.now());
    expect(err).toBeInstanceOf(HlcOverflowError);
    expect((err as HlcOverflowError).wallMs).toBe(T0);
    expect(hlc.peek()).toEqual(ts(T0, HLC_MAX_COUNTER, 'me'));
    expect(() => hlc.receive(ts(T0, 3))).toThrow(HlcOverflowError);
    expect(() => hlc.receiveMany([ts(T0, 3)])).toThrow(HlcOverflowError);
    expect(hlc.peek()).toEqual(ts(T0, HLC_MAX_COUNTER, 'me'));
    time.add(1);
    expect(hlc.now()).toEqual(ts(T0 + 1, 0, 'me'));
  });

  it('a remote at the maximum counter borrows instead of wrapping', () => {
    const { hlc } = manualHlc();
    expect(hlc.receive(ts(T0 + 10, HLC_MAX_COUNTER))).toEqual(ts(T0 + 11, 0, 'me'));
    const strict = manualHlc({ maxOffsetMs: 10, maxBorrowMs: 0 }).hlc;
    expect(() => strict.receive(ts(T0 + 10, HLC_MAX_COUNTER))).toThrow(HlcOverflowError);
    expect(strict.peek()).toBeUndefined();
  });

  it("async methods reject in 'throw' mode", async () => {
    const { hlc } = manualHlc({ maxOffsetMs: 0, maxBorrowMs: 0 });
    hlc.update(ts(T0, HLC_MAX_COUNTER));
    await expect(hlc.nowAsync()).rejects.toBeInstanceOf(HlcOverflowError);
    await expect(hlc.receiveAsync(ts(T0, 1))).rejects.toBeInstanceOf(HlcOverflowError);
  });

  it("'wait' mode: nowAsync/receiveAsync wait on the scheduler until they may borrow", async () => {
    const { hlc, timers } = waitingClock(3);
    hlc.update(ts(T0 + 3, HLC_MAX_COUNTER)); // l is 3 ms ahead of physical time: the bound
    expect(() => hlc.now()).toThrow(HlcOverflowError); // sync calls cannot wait
    const pending = hlc.nowAsync();
    await flush();
    expect(timers.delays).toEqual([1]); // until T0 + 4 is at most 3 ms ahead
    timers.fire(); // advances the physical clock by the delay
    await expect(pending).resolves.toEqual(ts(T0 + 4, 0, 'me'));

    hlc.update(ts(T0 + 4, HLC_MAX_COUNTER));
    const received = hlc.receiveAsync(ts(T0 + 4, 9));
    const many = hlc.receiveManyAsync([ts(T0 + 4, 1)]);
    await flush();
    timers.fire();
    await flush();
    timers.fire();
    const [r, m] = await Promise.all([received, many]);
    expect(compareHlc(ts(T0 + 4, HLC_MAX_COUNTER), r)).toBeLessThan(0);
    expect(compareHlc(r, m)).not.toBe(0);
  });

  it("'wait' mode: a physical clock that does not move as promised is re-checked", async () => {
    const { hlc, time, timers } = waitingClock(0, 0); // timers fire without time passing
    hlc.update(ts(T0, HLC_MAX_COUNTER));
    const p = hlc.nowAsync();
    await flush();
    timers.fire();
    await flush();
    timers.fire();
    await flush();
    expect(timers.delays.length).toBeGreaterThanOrEqual(3); // still waiting, never wrapped
    time.add(1);
    timers.fire();
    await expect(p).resolves.toEqual(ts(T0 + 1, 0, 'me'));
  });

  it("'wait' mode: an AbortSignal cancels the wait", async () => {
    const { hlc, timers } = waitingClock(0);
    hlc.update(ts(T0, HLC_MAX_COUNTER));
    const ac = new AbortController();
    const p = hlc.nowAsync({ signal: ac.signal });
    await flush();
    ac.abort(new Error('shutdown'));
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(timers.pending).toBe(0);
    await expect(hlc.nowAsync({ signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });
});

describe('persistence', () => {
  it('stores an upper bound before issuing at or past it', () => {
    const p = memoryPersistence();
    const { hlc, time } = manualHlc({
      persistence: p,
      persistWindowMs: 1000,
      maxOffsetMs: Infinity,
    });
    hlc.now();
    expect(p.stored).toEqual([T0 + 1000]);
    time.add(999);
    hlc.now();
    expect(p.stored).toEqual([T0 + 1000]);
    time.add(1);
    hlc.now();
    expect(p.stored).toEqual([T0 + 1000, T0 + 2000]);
    hlc.update(ts(T0 + 2400, 0)); // observing does not store
    expect(p.stored).toHaveLength(2);
    hlc.receive(ts(T0 + 2450, 0));
    expect(p.stored).toEqual([T0 + 1000, T0 + 2000, T0 + 3450]);
  });

  it('a restarted clock starts above the stored bound, even with physical time an hour behind', () => {
    const p = memoryPersistence();
    const first = manualHlc({ persistence: p }).hlc;
    const issued = [first.now(), first.now()];
    const second = manualHlc({ persistence: p }, T0 - 3_600_000).hlc;
    expect(second.peek()).toEqual(ts(T0 + 1000, 0, 'me'));
    const next = second.now();
    for (const old of issued) expect(compareHlc(old, next)).toBeLessThan(0);
  });

  it('a failing store issues nothing and leaves the clock unchanged', () => {
    let fail = true;
    const persistence: HlcPersistence = {
      load: () => undefined,
      store: () => {
        if (fail) throw new Error('disk full');
      },
    };
    const { hlc } = manualHlc({ persistence });
    expect(() => hlc.now()).toThrow('disk full');
    expect(() => hlc.receive(ts(T0, 0))).toThrow('disk full');
    expect(hlc.peek()).toBeUndefined();
    fail = false;
    expect(hlc.now()).toEqual(ts(T0, 0, 'me'));
  });

  it('rejects a malformed loaded bound', () => {
    for (const loaded of [
      { wallMs: -1 },
      { wallMs: 1.5 },
      { wallMs: 2 ** 48 },
      { wallMs: '5' },
      null,
      5,
    ]) {
      expectInvalidArgument(
        () => manualHlc({ persistence: { load: () => loaded as HlcUpperBound, store: () => {} } }),
        'persistence.load()',
      );
    }
  });

  it('never reissues across crashes between any two operations (in-memory persistence)', () => {
    type Op =
      | { kind: 'now' }
      | { kind: 'receive'; ahead: number; counter: number }
      | { kind: 'many'; ahead: number }
      | { kind: 'update'; ahead: number }
      | { kind: 'tick'; ms: number }
      | { kind: 'crash'; stepMs: number; failStore: boolean };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ kind: 'now' as const }),
      fc.record({
        kind: fc.constant('receive' as const),
        ahead: fc.integer({ min: -2000, max: 600 }),
        counter: fc.nat({ max: 0xffff }),
      }),
      fc.record({
        kind: fc.constant('many' as const),
        ahead: fc.integer({ min: -2000, max: 600 }),
      }),
      fc.record({
        kind: fc.constant('update' as const),
        ahead: fc.integer({ min: -2000, max: 600 }),
      }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 1500 }) }),
      fc.record({
        kind: fc.constant('crash' as const),
        stepMs: fc.oneof(fc.constant(0), fc.integer({ min: -3_600_000, max: 2000 })),
        failStore: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 60 }),
        fc.integer({ min: 1, max: 2000 }),
        (ops, window) => {
          const p = memoryPersistence();
          const time = manualPhysical();
          let failNext = false;
          const persistence: HlcPersistence = {
            load: () => p.load(),
            store: (u) => {
              if (failNext) {
                failNext = false;
                throw new Error('crash during store');
              }
              p.store(u);
            },
          };
          const make = (): HybridLogicalClock =>
            new HybridLogicalClock({
              node: 'me',
              physical: time.now,
              persistence,
              persistWindowMs: window,
              maxOffsetMs: 500,
            });
          let hlc = make();
          let maxBefore: HlcTimestamp | undefined; // largest issued by earlier incarnations
          let maxNow: HlcTimestamp | undefined; // largest issued by this incarnation
          const issue = (f: () => HlcTimestamp): void => {
            let got: HlcTimestamp;
            try {
              got = f();
            } catch (e) {
              if (e instanceof ClockOffsetError || e instanceof HlcOverflowError) return;
              if (e instanceof Error && e.message === 'crash during store') return;
              throw e;
            }
            if (maxBefore) expect(compareHlc(maxBefore, got)).toBeLessThan(0);
            if (maxNow) expect(compareHlc(maxNow, got)).toBeLessThan(0);
            maxNow = got;
          };
          for (const o of ops) {
            const remote = (ahead: number, counter = 0): HlcTimestamp =>
              ts(Math.max(0, time.now() + ahead), counter);
            switch (o.kind) {
              case 'now':
                issue(() => hlc.now());
                break;
              case 'receive':
                issue(() => hlc.receive(remote(o.ahead, o.counter)));
                break;
              case 'many':
                issue(() => hlc.receiveMany([remote(o.ahead), remote(o.ahead - 7, 3)]));
                break;
              case 'update':
                try {
                  hlc.update(remote(o.ahead));
                } catch (e) {
                  expect(e).toBeInstanceOf(ClockOffsetError);
                }
                break;
              case 'tick':
                time.add(o.ms);
                break;
              case 'crash':
                // The process dies; memory is gone, only the stored bound survives.
                if (maxNow && (!maxBefore || compareHlc(maxBefore, maxNow) < 0))
                  maxBefore = { ...maxNow, node: 'me' };
                maxNow = undefined;
                time.set(Math.max(0, time.now() + o.stepMs));
                failNext = o.failStore;
                hlc = make();
                break;
            }
          }
        },
      ),
      fcParams(10_000),
    );
  });
});

describe('options', () => {
  it('validates every option, naming it', () => {
    const cases: Array<[string, Partial<HybridLogicalClockOptions>]> = [
      ['options.node', { node: '' }],
      ['options.node', { node: 'a@b' }],
      ['options.maxOffsetMs', { maxOffsetMs: -1 }],
      ['options.maxOffsetMs', { maxOffsetMs: Number.NaN }],
      ['options.maxBorrowMs', { maxBorrowMs: -1 }],
      ['options.maxBorrowMs', { maxBorrowMs: Number.NaN }],
      ['options.offsetPolicy', { offsetPolicy: 'ignore' as 'throw' }],
      ['options.overflowPolicy', { overflowPolicy: 'wrap' as 'throw' }],
      ['options.onOffset', { onOffset: 'ignore' as 'throw' }],
      ['options.onOverflow', { onOverflow: 'wrap' as 'throw' }],
      ['options.onOffset', { offsetPolicy: 'clamp', onOffset: 'throw' }],
      ['options.onOverflow', { overflowPolicy: 'wait', onOverflow: 'throw' }],
      ['options.persistWindowMs', { persistWindowMs: 0 }],
      ['options.persistWindowMs', { persistWindowMs: Infinity }],
      ['options.physical', { physical: 5 as unknown as () => number }],
      ['options.persistence', { persistence: {} as HlcPersistence }],
    ];
    for (const [argument, options] of cases) {
      expectInvalidArgument(() => new HybridLogicalClock({ node: 'a', ...options }), argument);
    }
  });

  it('still takes the deprecated onOffset / onOverflow names', () => {
    const physical = (): number => T0;
    const clamped = new HybridLogicalClock({ node: 'a', physical, onOffset: 'clamp' });
    expect(clamped.receive(ts(T0 + 60_000, 0)).wallMs).toBe(T0 + 500);
    const strict = new HybridLogicalClock({ node: 'a', physical });
    expect(catchError(() => strict.receive(ts(T0 + 60_000, 0)))).toBeInstanceOf(ClockOffsetError);
  });

  it('reads only the injected physical clock', () => {
    const spy = vi.spyOn(Date, 'now');
    const { hlc } = manualHlc();
    hlc.now();
    hlc.receive(ts(T0, 1));
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });
});

/** Timers the test fires by hand; firing advances the physical clock by the delay × rate. */
function fakeTimers(
  time: ManualPhysical,
  rate = 1,
): Scheduler & { fire(): void; delays: number[]; readonly pending: number } {
  let queue: Array<{ id: number; callback: () => void; ms: number }> = [];
  let id = 0;
  const delays: number[] = [];
  return {
    delays,
    get pending() {
      return queue.length;
    },
    setTimeout(callback, ms) {
      delays.push(ms);
      queue.push({ id: ++id, callback, ms });
      return id;
    },
    clearTimeout(handle) {
      queue = queue.filter((t) => t.id !== handle);
    },
    fire() {
      const t = queue.shift();
      if (!t) throw new Error('no timer pending');
      time.add(t.ms * rate);
      t.callback();
    },
  };
}

/**
 * A clock in 'wait' mode that never borrows, `maxOffsetMs` ahead at most, on a
 * physical clock set by hand and timers fired by hand (each advancing it by its
 * delay × `rate`).
 */
function waitingClock(maxOffsetMs: number, rate = 1) {
  const time = manualPhysical();
  const timers = fakeTimers(time, rate);
  const hlc = new HybridLogicalClock({
    node: 'me',
    physical: time.now,
    overflowPolicy: 'wait',
    scheduler: timers,
    maxOffsetMs,
    maxBorrowMs: 0,
  });
  return { hlc, time, timers };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
