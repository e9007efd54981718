import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import {
  checkIntervalsContainTruth,
  checkLinearizableRegister,
  type RegisterOp,
  type TruthReading,
} from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';

const T = Date.UTC(2026, 0, 1);

describe('checkIntervalsContainTruth', () => {
  it('passes when every interval contains true time (endpoints included)', () => {
    const readings: TruthReading[] = [
      { reading: { earliest: T - 1, latest: T + 1 }, trueTime: T },
      { reading: { earliest: T, latest: T }, trueTime: T },
      { reading: { earliest: -Infinity, latest: Infinity, status: 'unsynchronized' }, trueTime: T },
    ];
    expect(checkIntervalsContainTruth(readings)).toEqual({ ok: true });
    expect(checkIntervalsContainTruth([])).toEqual({ ok: true });
  });

  it('names the first reading that missed, by how much, on which side, and how many missed', () => {
    const result = checkIntervalsContainTruth([
      { reading: { earliest: T - 1, latest: T + 1 }, trueTime: T },
      {
        reading: { earliest: T - 3, latest: T - 0.5, status: 'synchronized' },
        trueTime: T,
        label: 'node a after pause',
      },
      { reading: { earliest: T + 2, latest: T + 4 }, trueTime: T },
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.violation).toMatchObject({
      index: 1,
      side: 'after-latest',
      missedByMs: 0.5,
      failures: 2,
      checked: 3,
    });
    expect(result.message).toBe(
      `Reading #1 (node a after pause) [${T - 3}, ${T - 0.5}], status synchronized does not ` +
        `contain true time ${T} (2026-01-01T00:00:00.000Z): true time is 0.5 ms after latest. ` +
        '2 of 3 checked readings missed.',
    );
  });

  it('checks only the statuses asked for, and counts NaN bounds as misses', () => {
    const readings: TruthReading[] = [
      { reading: { earliest: T + 5, latest: T + 6, status: 'disrupted' }, trueTime: T },
      { reading: { earliest: NaN, latest: NaN, status: 'synchronized' }, trueTime: T },
    ];
    const only = checkIntervalsContainTruth(readings, { statuses: ['disrupted'] });
    expect(only.ok).toBe(false);
    if (!only.ok) expect(only.violation).toMatchObject({ side: 'before-earliest', missedByMs: 5 });
    const sync = checkIntervalsContainTruth(readings, { statuses: ['synchronized'] });
    expect(sync.ok).toBe(false);
    if (!sync.ok) expect(sync.violation.checked).toBe(1);
    expect(checkIntervalsContainTruth(readings, { statuses: ['free-running'] }).ok).toBe(true);
  });

  it('agrees with a direct check on any readings (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            lo: fc.double({ min: -10, max: 10, noNaN: true }),
            width: fc.double({ min: 0, max: 10, noNaN: true }),
            truth: fc.double({ min: -10, max: 10, noNaN: true }),
          }),
        ),
        (rows) => {
          const readings = rows.map((r) => ({
            reading: { earliest: T + r.lo, latest: T + r.lo + r.width },
            trueTime: T + r.truth,
          }));
          const misses = readings.filter(
            (r) => !(r.reading.earliest <= r.trueTime && r.trueTime <= r.reading.latest),
          );
          const result = checkIntervalsContainTruth(readings);
          expect(result.ok).toBe(misses.length === 0);
          if (!result.ok) {
            expect(result.violation.failures).toBe(misses.length);
            expect(result.violation.reading).toBe(misses[0]);
            expect(result.violation.missedByMs).toBeGreaterThan(0);
          }
        },
      ),
      fcParams(1_000),
    );
  });

  it('rejects malformed input with a typed error naming it', () => {
    expect(() => checkIntervalsContainTruth('x' as never)).toThrow(InvalidArgumentError);
    expect(() =>
      checkIntervalsContainTruth([{ reading: { earliest: 0, latest: 1 }, trueTime: NaN }]),
    ).toThrow(/readings\[0\]\.trueTime/);
  });
});

/**
 * Builds register operations of one kind: `(value, invokeMs, completeMs?, extra?)`;
 * without `completeMs` the operation is still pending.
 */
const operation =
  (kind: RegisterOp<number>['kind']) =>
  (
    value: number,
    invokeMs: number,
    completeMs?: number,
    extra: Partial<RegisterOp<number>> = {},
  ): RegisterOp<number> => ({
    kind,
    value,
    invokeMs,
    ...(completeMs === undefined ? {} : { completeMs }),
    ...extra,
  });
const w = operation('write');
const r = operation('read');

/** Brute force: try every subset of unfinished writes and every order. */
function naiveLinearizable(ops: RegisterOp<number>[], initial: number): boolean {
  const done = ops.filter((op) => op.completeMs !== undefined);
  const pendingWrites = ops.filter((op) => op.completeMs === undefined && op.kind === 'write');
  for (let mask = 0; mask < 1 << pendingWrites.length; mask++) {
    const chosen = [...done, ...pendingWrites.filter((_, i) => mask & (1 << i))];
    const permute = (order: RegisterOp<number>[], rest: RegisterOp<number>[]): boolean => {
      if (rest.length === 0) {
        let value = initial;
        for (let i = 0; i < order.length; i++) {
          const op = order[i]!;
          for (let j = i + 1; j < order.length; j++) {
            if ((order[j]!.completeMs ?? Infinity) < op.invokeMs) return false;
          }
          if (op.kind === 'write') value = op.value;
          else if (op.value !== value) return false;
        }
        return true;
      }
      return rest.some((op, i) =>
        permute(
          [...order, op],
          rest.filter((_, j) => j !== i),
        ),
      );
    };
    if (permute([], chosen)) return true;
  }
  return false;
}

describe('checkLinearizableRegister', () => {
  it('accepts a sequential history and concurrent operations in either order', () => {
    expect(
      checkLinearizableRegister([w(1, 0, 10), r(1, 11, 12), w(2, 13, 20), r(2, 21, 22)], {
        initial: 0,
      }).ok,
    ).toBe(true);
    // The read overlaps the write: old or new value are both fine.
    expect(checkLinearizableRegister([w(1, 0, 10), r(0, 5, 6)], { initial: 0 }).ok).toBe(true);
    expect(checkLinearizableRegister([w(1, 0, 10), r(1, 5, 6)], { initial: 0 }).ok).toBe(true);
  });

  it('rejects a stale read with a minimal counterexample and a readable message', () => {
    const ops = [
      w(1, 0, 10, { client: 'a' }),
      r(1, 2, 3, { client: 'c' }), // irrelevant to the failure
      w(2, 12, 20, { client: 'b' }),
      r(1, 25, 30, { client: 'c' }),
    ];
    const result = checkLinearizableRegister(ops, { initial: 0 });
    expect(result.ok).toBe(false);
    if (result.ok || result.violation.kind !== 'not-linearizable')
      throw new Error('expected a violation');
    expect(result.violation.indices).toEqual([0, 2, 3]);
    expect(result.message).toBe(
      'Not linearizable: no order of these 3 operations (a minimal subset of 4; initial value 0; ' +
        'times in ms after 0) respects real time and explains every read:\n' +
        '  #0 write(1) by a [0, 10]\n' +
        '  #2 write(2) by b [12, 20]\n' +
        '  #3 read() → 1 by c [25, 30]',
    );
  });

  it('lets an unfinished write take effect or not, and ignores unfinished reads', () => {
    expect(checkLinearizableRegister([w(1, 0), r(1, 5, 6)], { initial: 0 }).ok).toBe(true);
    expect(checkLinearizableRegister([w(1, 0), r(0, 5, 6)], { initial: 0 }).ok).toBe(true);
    expect(checkLinearizableRegister([w(1, 0), r(1, 5, 6), r(0, 7, 8)], { initial: 0 }).ok).toBe(
      false,
    );
    expect(checkLinearizableRegister([r(9, 0)], { initial: 0 }).ok).toBe(true);
    // A write invoked after a read completed cannot explain it.
    expect(checkLinearizableRegister([r(1, 0, 1), w(1, 2)], { initial: 0 }).ok).toBe(false);
  });

  it('agrees with a brute-force search over all orders on small histories (property)', () => {
    const op = fc.record({
      kind: fc.constantFrom('write' as const, 'read' as const),
      value: fc.integer({ min: 0, max: 2 }),
      invokeMs: fc.integer({ min: 0, max: 20 }),
      length: fc.option(fc.integer({ min: 0, max: 10 }), { freq: 5 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 6 }), (raw) => {
        const ops: RegisterOp<number>[] = raw.map(({ kind, value, invokeMs, length }) =>
          length === null
            ? { kind, value, invokeMs }
            : { kind, value, invokeMs, completeMs: invokeMs + length },
        );
        const result = checkLinearizableRegister(ops, { initial: 0 });
        expect(result.ok).toBe(naiveLinearizable(ops, 0));
        if (!result.ok && result.violation.kind === 'not-linearizable') {
          // The core is itself a counterexample, and minimal: removing any read, or any
          // write whose value no remaining read returns, fixes it.
          const core = [...result.violation.ops];
          expect(naiveLinearizable(core, 0)).toBe(false);
          for (let i = 0; i < core.length; i++) {
            const rest = core.filter((_, j) => j !== i);
            const op = core[i]!;
            if (op.kind === 'write' && rest.some((o) => o.kind === 'read' && o.value === op.value))
              continue;
            expect(naiveLinearizable(rest, 0)).toBe(true);
          }
        }
      }),
      fcParams(1_000),
    );
  });

  it('accepts every history of a real atomic register (property)', () => {
    // Each op takes effect at a random instant inside its interval, one at a time.
    const op = fc.record({
      kind: fc.constantFrom('write' as const, 'read' as const),
      invokeMs: fc.integer({ min: 0, max: 1_000 }),
      before: fc.integer({ min: 0, max: 50 }),
      after: fc.integer({ min: 0, max: 50 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (raw) => {
        const byPoint = raw
          .map((o, i) => ({ ...o, i, point: o.invokeMs + o.before + i / 1000 }))
          .sort((a, b) => a.point - b.point);
        let value = 0;
        const ops: RegisterOp<number>[] = [];
        for (const o of byPoint) {
          if (o.kind === 'write') value = o.i + 1;
          ops.push({ kind: o.kind, value, invokeMs: o.invokeMs, completeMs: o.point + o.after });
        }
        const result = checkLinearizableRegister(ops, { initial: 0 });
        if (!result.ok) throw new Error(result.message);
      }),
      fcParams(300),
    );
  });

  it('checks that commit-wait timestamps follow real time', () => {
    const good = [
      w(1, 0, 10, { timestamp: 5 }),
      w(2, 11, 20, { timestamp: 12 }),
      r(2, 21, 22, { timestamp: 21 }),
    ];
    expect(checkLinearizableRegister(good, { initial: 0 }).ok).toBe(true);
    const bad = [
      w(1, 0, 10, { timestamp: 15, client: 'a' }),
      w(2, 11, 20, { timestamp: 12, client: 'b' }),
    ];
    const result = checkLinearizableRegister(bad, { initial: 0 });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.violation).toMatchObject({ kind: 'timestamp-order', indices: [0, 1] });
    expect(result.message).toContain(
      '#0 completed before #1 was invoked, but its timestamp 15 is not below 12',
    );
    // Without timestamps on every op, only linearizability is checked.
    expect(checkLinearizableRegister([bad[0]!, w(2, 11, 20)], { initial: 0 }).ok).toBe(true);
  });

  it('uses custom equality and formatting', () => {
    const ops: RegisterOp<{ v: number }>[] = [
      { kind: 'write', value: { v: 1 }, invokeMs: 0, completeMs: 1 },
      { kind: 'read', value: { v: 2 }, invokeMs: 2, completeMs: 3 },
    ];
    const result = checkLinearizableRegister(ops, {
      initial: { v: 0 },
      equals: (a, b) => a.v === b.v,
      format: (x) => `v${x.v}`,
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain('read() → v2');
    const same = [ops[0]!, { ...ops[1]!, value: { v: 1 } }];
    expect(
      checkLinearizableRegister(same, { initial: { v: 0 }, equals: (a, b) => a.v === b.v }).ok,
    ).toBe(true);
  });

  it('rejects malformed operations and oversized histories with a typed error naming them', () => {
    expect(() =>
      checkLinearizableRegister([{ kind: 'cas', value: 1, invokeMs: 0 } as never]),
    ).toThrow(/ops\[0\]\.kind/);
    expect(() => checkLinearizableRegister([w(1, 5, 4)])).toThrow(/ops\[0\]\.completeMs/);
    expect(() => checkLinearizableRegister([w(1, NaN, 4)])).toThrow(/ops\[0\]\.invokeMs/);
    expect(() => checkLinearizableRegister([w(1, 0, 4, { timestamp: NaN })])).toThrow(/timestamp/);
    expect(() => checkLinearizableRegister([w(1, 0), w(2, 0)], { maxOps: 1 })).toThrow(
      InvalidArgumentError,
    );
  });
});
