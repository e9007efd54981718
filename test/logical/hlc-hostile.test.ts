/**
 * The hybrid logical clock under hostile remote stamps (issue 15): a stamp the
 * clock accepts — within `maxOffsetMs` — must not stop local progress, and no
 * stamp may exhaust the 48-bit wall time for good or leave a persisted bound
 * that cannot be loaded again.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClockOffsetError,
  HLC_MAX_COUNTER,
  HLC_MAX_WALL_MS,
  HlcOverflowError,
  HybridLogicalClock,
  InvalidArgumentError,
  compareHlc,
  type HlcTimestamp,
} from '../../src/index.js';
import { HLC_MAX_REMOTE_WALL_MS } from '../../src/logical/hlc-range.js';
import { fcParams } from '../support/fc.js';
import { expectInvalidArgument } from '../support/errors.js';
import { T0, hlcStamp, manualHlc, memoryPersistence } from '../support/hlc-clocks.js';

/** The documented default of `maxBorrowMs`. */
const DEFAULT_BORROW_MS = 10;

const ts = (wallMs: number, counter: number, node = 'evil'): HlcTimestamp =>
  hlcStamp(wallMs, counter, node);

describe('a hostile stamp within maxOffsetMs does not stop local progress', () => {
  it('one remote at (physical + 500 ms, counter 65534): 10 000 local now() over 500 ms all succeed', () => {
    const { hlc, time } = manualHlc();
    const got = hlc.receive(ts(T0 + 500, 65_534));
    expect(got).toEqual(ts(T0 + 500, HLC_MAX_COUNTER, 'me'));
    let last = got;
    let failures = 0;
    let maxLead = 0;
    for (let i = 0; i < 10_000; i++) {
      const pt = T0 + i * 0.05;
      time.set(pt);
      try {
        const s = hlc.now();
        if (compareHlc(last, s) >= 0) expect.fail(`${JSON.stringify(s)} ≤ ${JSON.stringify(last)}`);
        maxLead = Math.max(maxLead, s.wallMs - Math.floor(pt));
        last = s;
      } catch (e) {
        if (!(e instanceof HlcOverflowError)) throw e;
        failures++;
      }
    }
    expect(failures).toBe(0);
    // It borrowed one millisecond: (T0 + 501, 0), then counted.
    expect(maxLead).toBeLessThanOrEqual(500 + DEFAULT_BORROW_MS);
    expect(hlc.peek()).toEqual(ts(T0 + 501, 9_999, 'me'));
  });

  it('20 such remotes in 10 s: 0 of 10 000 local calls fail', () => {
    const { hlc, time } = manualHlc();
    let failures = 0;
    let last: HlcTimestamp | undefined;
    for (let i = 0; i < 10_000; i++) {
      const pt = T0 + i; // 10 000 ms
      time.set(pt);
      if (i % 500 === 0) {
        const r = hlc.receive(ts(pt + 500, 65_534));
        if (last && compareHlc(last, r) >= 0) expect.fail('receive went backwards');
        last = r;
      }
      try {
        const s = hlc.now();
        if (last && compareHlc(last, s) >= 0) expect.fail('now() went backwards');
        last = s;
      } catch (e) {
        if (!(e instanceof HlcOverflowError)) throw e;
        failures++;
      }
    }
    expect(failures).toBe(0);
  });

  it('update() with counter 65535 at the offset limit: the next now() borrows the next millisecond', () => {
    const { hlc } = manualHlc();
    hlc.update(ts(T0 + 500, HLC_MAX_COUNTER));
    expect(hlc.now()).toEqual(ts(T0 + 501, 0, 'me'));
    expect(hlc.now()).toEqual(ts(T0 + 501, 1, 'me'));
  });

  it('receive() of a remote at counter 65535 borrows instead of overflowing', () => {
    const { hlc } = manualHlc();
    expect(hlc.receive(ts(T0 + 10, HLC_MAX_COUNTER))).toEqual(ts(T0 + 11, 0, 'me'));
    expect(hlc.receiveMany([ts(T0 + 11, HLC_MAX_COUNTER), ts(T0, 3)])).toEqual(
      ts(T0 + 12, 0, 'me'),
    );
  });

  it('maxOffsetMs: 0 still borrows (the bound is maxOffsetMs + maxBorrowMs)', () => {
    const { hlc } = manualHlc({ maxOffsetMs: 0 });
    hlc.update(ts(T0, HLC_MAX_COUNTER));
    expect(hlc.now()).toEqual(ts(T0 + 1, 0, 'me'));
  });

  it('a remote cannot push the clock past maxOffsetMs + 1 ms by itself', () => {
    const { hlc } = manualHlc();
    // Each remote ties with the clock's wall time at the maximum counter: one borrow each,
    // until the clock is past the offset limit and the next such remote is refused.
    for (let i = 0; i < 600; i++) {
      const l = (hlc.peek() ?? ts(T0, 0)).wallMs;
      try {
        hlc.receive(ts(l, HLC_MAX_COUNTER));
      } catch (e) {
        expect(e).toBeInstanceOf(ClockOffsetError);
        break;
      }
    }
    expect(hlc.peek()?.wallMs).toBe(T0 + 501);
    for (let i = 0; i < 1000; i++) hlc.now();
  });
});

describe('past the borrowing bound', () => {
  it('maxOffsetMs + maxBorrowMs ahead of physical time: HlcOverflowError, clock unchanged', () => {
    const { hlc, time } = manualHlc({ maxOffsetMs: 0, maxBorrowMs: 2 });
    let count = 0;
    for (;;) {
      try {
        hlc.now();
        count++;
      } catch (e) {
        expect(e).toBeInstanceOf(HlcOverflowError);
        expect((e as HlcOverflowError).wallMs).toBe(T0 + 2);
        expect((e as Error).message).toMatch(/maxBorrowMs/);
        break;
      }
    }
    expect(count).toBe(3 * 65_536); // T0, T0 + 1, T0 + 2: three milliseconds of counter
    expect(hlc.peek()).toEqual(ts(T0 + 2, HLC_MAX_COUNTER, 'me'));
    time.set(T0 + 1); // one more millisecond may be borrowed now
    expect(hlc.now()).toEqual(ts(T0 + 3, 0, 'me'));
  });

  it('maxOffsetMs: 0, maxBorrowMs: 0 never borrows (the counter alone, as before)', () => {
    const { hlc, time } = manualHlc({ maxOffsetMs: 0, maxBorrowMs: 0 });
    for (let i = 0; i <= HLC_MAX_COUNTER; i++) hlc.now();
    expect(() => hlc.now()).toThrow(HlcOverflowError);
    time.set(T0 + 1);
    expect(hlc.now()).toEqual(ts(T0 + 1, 0, 'me'));
  });

  it('validates maxBorrowMs', () => {
    for (const bad of [-1, Number.NaN, '5'])
      expectInvalidArgument(() => manualHlc({ maxBorrowMs: bad as number }), 'options.maxBorrowMs');
    expect(manualHlc({ maxBorrowMs: Infinity }).hlc.maxBorrowMs).toBe(Infinity);
    expect(manualHlc().hlc.maxBorrowMs).toBe(DEFAULT_BORROW_MS);
  });
});

describe('property: hostile remotes within maxOffsetMs, arbitrary interleavings', () => {
  type Op =
    | { kind: 'now' }
    | { kind: 'burst'; count: number }
    | { kind: 'tick'; ms: number }
    | { kind: 'receive'; ahead: number; counter: number; onState: boolean }
    | { kind: 'update'; ahead: number; counter: number; onState: boolean }
    | { kind: 'many'; aheads: number[]; counter: number }
    | { kind: 'restart' };

  const hostileCounter = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constantFrom(HLC_MAX_COUNTER, HLC_MAX_COUNTER - 1, HLC_MAX_COUNTER - 2),
    },
    { weight: 1, arbitrary: fc.nat({ max: HLC_MAX_COUNTER }) },
  );
  /**
   * Where the remote is: a fraction in [0, 1] of maxOffsetMs ahead of physical time (1: at
   * the limit), or a negative integer: that many ms behind it.
   */
  const ahead = fc.oneof(
    fc.constant(1),
    fc.double({ min: 0, max: 1, noNaN: true }),
    fc.integer({ min: -2000, max: -1 }),
  );
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: 'now' as const }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('burst' as const), count: fc.nat({ max: 300 }) }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('tick' as const),
        ms: fc.oneof(
          fc.constant(0),
          fc.double({ min: 0, max: 2, noNaN: true }),
          fc.integer({ min: 0, max: 700 }),
          fc.integer({ min: -3_600_000, max: 0 }), // physical time steps back
        ),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('receive' as const),
        ahead,
        counter: hostileCounter,
        onState: fc.boolean(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('update' as const),
        ahead,
        counter: hostileCounter,
        onState: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('many' as const),
        aheads: fc.array(ahead, { maxLength: 4 }),
        counter: hostileCounter,
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  );

  it('every stamp is above everything issued or seen before; now() never throws; the lead stays bounded', () => {
    let borrowed = 0; // stamps (l + 1, 0) issued ahead of physical time: the runs exercise borrowing
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 80 }),
        fc.constantFrom(0, 1, 5, 500),
        fc.constantFrom(undefined, 1, 3, 50),
        fc.integer({ min: 1, max: 2000 }),
        (ops, maxOffsetMs, maxBorrowMs, window) => {
          let t = T0;
          let maxPhysical = T0;
          const persistence = memoryPersistence();
          const make = (): HybridLogicalClock =>
            new HybridLogicalClock({
              node: 'me',
              physical: () => t,
              maxOffsetMs,
              ...(maxBorrowMs === undefined ? {} : { maxBorrowMs }),
              persistence,
              persistWindowMs: window,
            });
          const bound = maxOffsetMs + (maxBorrowMs ?? DEFAULT_BORROW_MS);
          let hlc = make();
          let allowance = bound; // the largest lead over physical time a stamp may have
          let seen: HlcTimestamp | undefined; // the largest stamp issued or seen so far
          let maxIssued: HlcTimestamp | undefined; // the largest stamp issued so far
          const see = (s: HlcTimestamp): void => {
            if (!seen || compareHlc(seen, s) < 0) seen = s;
          };
          const issued = (s: HlcTimestamp, what: string): void => {
            if (seen && compareHlc(seen, { ...s, node: '~' }) >= 0)
              throw new Error(`${what} issued ${JSON.stringify(s)} ≤ ${JSON.stringify(seen)}`);
            // Borrowing never takes the clock further ahead than the bound; only a restart
            // (the persisted window) may start it further ahead, and then it only counts.
            const lead = s.wallMs - Math.floor(maxPhysical);
            if (lead > allowance) throw new Error(`${what}: lead ${lead} > ${allowance}`);
            see(s);
            maxIssued = s;
            if (s.counter === 0 && s.wallMs > Math.floor(t)) borrowed++;
          };
          /** A remote at most maxOffsetMs ahead of physical time. */
          const remote = (a: number, counter: number, onState: boolean): HlcTimestamp => {
            const pt = Math.floor(t);
            const l = hlc.peek()?.wallMs;
            // onState: the clock's own wall time (the tie case), if it is within maxOffsetMs.
            if (onState && l !== undefined && l - pt <= maxOffsetMs) return ts(l, counter);
            const wallMs = Number.isInteger(a) && a < 0 ? pt + a : Math.floor(pt + a * maxOffsetMs);
            return ts(Math.max(0, wallMs), counter);
          };
          for (const o of ops) {
            switch (o.kind) {
              case 'now':
                issued(hlc.now(), 'now()');
                break;
              case 'burst':
                for (let i = 0; i < o.count; i++) issued(hlc.now(), 'now() in a burst');
                break;
              case 'tick':
                t = Math.max(0, t + o.ms);
                maxPhysical = Math.max(maxPhysical, t);
                break;
              case 'receive': {
                const r = remote(o.ahead, o.counter, o.onState);
                see(r);
                issued(hlc.receive(r), `receive(${JSON.stringify(r)})`);
                break;
              }
              case 'update': {
                const r = remote(o.ahead, o.counter, o.onState);
                hlc.update(r);
                see(r);
                break;
              }
              case 'many': {
                const rs = o.aheads.map((a) => remote(a, o.counter, false));
                rs.forEach(see);
                issued(hlc.receiveMany(rs), `receiveMany(${JSON.stringify(rs)})`);
                break;
              }
              case 'restart':
                // Only the persisted bound survives; it must always load again. It covers
                // what was issued: remotes only observed with update() are forgotten.
                hlc = make();
                seen = maxIssued;
                maxPhysical = t;
                allowance = Math.max(bound, (hlc.peek()?.wallMs ?? 0) - Math.floor(t));
                break;
            }
          }
        },
      ),
      fcParams(5_000),
    );
    expect(borrowed).toBeGreaterThan(1_000);
  });
});

describe('maxOffsetMs: Infinity cannot exhaust the clock for good', () => {
  it('a remote beyond 2^48 − 2^40 is refused, naming it, clock unchanged', () => {
    expect(HLC_MAX_REMOTE_WALL_MS).toBe(2 ** 48 - 2 ** 40);
    for (const wallMs of [HLC_MAX_WALL_MS, HLC_MAX_REMOTE_WALL_MS + 1]) {
      const { hlc } = manualHlc({ maxOffsetMs: Infinity });
      const before = hlc.now();
      const calls: Array<[string, () => unknown]> = [
        ['remote.wallMs', () => hlc.receive(ts(wallMs, 0))],
        ['remote.wallMs', () => hlc.update(ts(wallMs, 0))],
        ['remotes[1].wallMs', () => hlc.receiveMany([ts(T0, 0), ts(wallMs, 0)])],
      ];
      for (const [argument, call] of calls) {
        expect(expectInvalidArgument(call, argument).message).toContain(String(wallMs));
        expect(hlc.peek()).toEqual(before);
      }
      expect(hlc.now()).toEqual(ts(T0, 1, 'me'));
    }
  });

  it("'clamp' mode refuses it too (there is no offset to clamp to)", () => {
    const { hlc } = manualHlc({ maxOffsetMs: Infinity, offsetPolicy: 'clamp' });
    expect(() => hlc.receive(ts(HLC_MAX_WALL_MS, 0))).toThrow(InvalidArgumentError);
    expect(hlc.peek()).toBeUndefined();
  });

  it('a remote at the limit with counter 65535 is accepted; the clock keeps issuing and restarts', () => {
    const persistence = memoryPersistence();
    const make = (): HybridLogicalClock =>
      new HybridLogicalClock({
        node: 'me',
        physical: () => T0,
        maxOffsetMs: Infinity,
        persistence,
      });
    const hlc = make();
    const got = hlc.receive(ts(HLC_MAX_REMOTE_WALL_MS, HLC_MAX_COUNTER));
    expect(got).toEqual(ts(HLC_MAX_REMOTE_WALL_MS + 1, 0, 'me'));
    let last = got;
    for (let i = 0; i < 3 * 65_536; i++) last = hlc.now();
    expect(last).toEqual(ts(HLC_MAX_REMOTE_WALL_MS + 4, 0, 'me'));
    const again = make(); // the stored bound loads
    expect(compareHlc(last, again.now())).toBeLessThan(0);
  });

  it('the stored bound never leaves the 48-bit range, so it always loads again', () => {
    const persistence = memoryPersistence();
    let t = HLC_MAX_WALL_MS - 5;
    const make = (): HybridLogicalClock =>
      new HybridLogicalClock({
        node: 'me',
        physical: () => t,
        persistence,
        persistWindowMs: 1000,
      });
    const hlc = make();
    const s = hlc.now();
    expect(s.wallMs).toBe(HLC_MAX_WALL_MS - 5);
    expect(persistence.value()).toBe(HLC_MAX_WALL_MS);
    const again = make(); // loads
    expect(again.peek()?.wallMs).toBe(HLC_MAX_WALL_MS);
    // Nothing can be issued above a bound of 2^48 − 1: it says so rather than reissuing.
    expect(() => again.now()).toThrow(HlcOverflowError);
    t = HLC_MAX_WALL_MS;
    expect(() => make().now()).toThrow(HlcOverflowError);
    expect(persistence.value()).toBe(HLC_MAX_WALL_MS);
  });
});
