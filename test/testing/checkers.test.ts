import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  LamportClock,
  VectorClock,
  compareLamport,
  formatLamport,
  type LamportTimestamp,
} from '../../src/index.js';
import type { CausalHistory } from '../../src/testing/index.js';
import { causalHistory } from '../../src/testing/fast-check/index.js';
import {
  checkCausalOrder,
  checkMonotonic,
  checkStrongClockConsistency,
  replayHistory,
  type CausalRelation,
} from '../../src/testing/checkers.js';
import { fcParams } from '../support/fc.js';

/**
 * n0: #0 send(m0) ─────────────┐
 * n1: #1 local   #2 send(m2)   │  #4 receive(m0)
 * n0:                 #3 receive(m2)
 */
const history: CausalHistory = {
  nodes: ['n0', 'n1'],
  maxSkewMs: 0,
  stepped: false,
  events: [
    { id: 0, node: 'n0', kind: 'send', message: 0, trueMs: 0, physicalMs: 0 },
    { id: 1, node: 'n1', kind: 'local', trueMs: 1, physicalMs: 1 },
    { id: 2, node: 'n1', kind: 'send', message: 2, trueMs: 2, physicalMs: 2 },
    { id: 3, node: 'n0', kind: 'receive', message: 2, trueMs: 3, physicalMs: 3 },
    { id: 4, node: 'n1', kind: 'receive', message: 0, trueMs: 4, physicalMs: 4 },
  ],
};
const num = (a: number, b: number): number => a - b;

function lamportStamps(h: CausalHistory): LamportTimestamp[] {
  const clocks = new Map(h.nodes.map((n) => [n, new LamportClock({ node: n })]));
  return replayHistory(h, {
    local: (e) => clocks.get(e.node)!.tick(),
    send: (e) => clocks.get(e.node)!.tick(),
    receive: (e, sent) => clocks.get(e.node)!.receive(sent),
  });
}

describe('replayHistory', () => {
  it('hands each receive the stamp of its send', () => {
    const seen: Array<[number, string]> = [];
    const stamps = replayHistory(history, {
      local: (e) => `L${e.id}`,
      send: (e) => `S${e.id}`,
      receive: (e, sent) => {
        seen.push([e.id, sent]);
        return `R${e.id}`;
      },
    });
    expect(stamps).toEqual(['S0', 'L1', 'S2', 'R3', 'R4']);
    expect(seen).toEqual([
      [3, 'S2'],
      [4, 'S0'],
    ]);
  });

  it('rejects a receive of an unsent message', () => {
    const bad = { ...history, events: [{ ...history.events[3]!, id: 0 }] };
    expect(() => replayHistory(bad, { local: () => 0, send: () => 0, receive: () => 0 })).toThrow(
      InvalidArgumentError,
    );
  });
});

describe('checkCausalOrder', () => {
  it('accepts Lamport stamps', () => {
    expect(checkCausalOrder(history, lamportStamps(history), compareLamport)).toEqual({ ok: true });
  });

  it('reports a violated message edge with both events, stamps and the chain', () => {
    // #4 receives m0 but gets a stamp below its send's.
    const stamps = [5, 1, 2, 6, 3];
    const result = checkCausalOrder(history, stamps, num);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.violation.before.id).toBe(0);
    expect(result.violation.after.id).toBe(4);
    expect([result.violation.beforeStamp, result.violation.afterStamp]).toEqual([5, 3]);
    expect(result.violation.comparison).toBe(2);
    expect(result.violation.path.map((e) => e.id)).toEqual([0, 4]);
    expect(result.message).toBe(
      'Causality violated: #0 (n0, send of message 0, physical 0) happened before ' +
        '#4 (n1, receive of message 0, physical 4), but its stamp 5 is not smaller than 3 ' +
        '(compare returned 2). Causal chain: #0 (n0, send of message 0, physical 0) → ' +
        '#4 (n1, receive of message 0, physical 4). History: 5 events on 2 nodes.',
    );
  });

  it('catches a non-transitive compare on an indirect pair, with the causal path', () => {
    // Direct edges look fine to this compare, but #1 → #3 (via #2) is inverted.
    const stamps = [0, 1, 2, 3, 4];
    const direct = new Set(['0,3', '1,2', '2,3', '2,4', '0,4']);
    const compare = (a: number, b: number): number => (direct.has(`${a},${b}`) ? -1 : 1);
    const result = checkCausalOrder(history, stamps, compare);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect([result.violation.before.id, result.violation.after.id]).toEqual([1, 3]);
    expect(result.violation.path.map((e) => e.id)).toEqual([1, 2, 3]);
    expect(result.message).toContain('Causal chain: #1');
  });

  it('treats equal stamps as a violation and uses the formatter', () => {
    const stamps = lamportStamps(history);
    stamps[4] = stamps[2]!;
    const result = checkCausalOrder(history, stamps, compareLamport, { format: formatLamport });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain('00000000000002@n1');
  });

  it('finds every planted violation on random histories', () => {
    fc.assert(
      fc.property(causalHistory({ events: { min: 2, max: 30 } }), fc.nat(), (h, pick) => {
        const stamps = lamportStamps(h);
        expect(checkCausalOrder(h, stamps, compareLamport).ok).toBe(true);
        // Plant: give a receive (or any event with a predecessor) a stamp of 0.
        const withPred = h.events.filter(
          (e) => h.events.some((p) => p.id < e.id && p.node === e.node) || e.kind === 'receive',
        );
        if (withPred.length === 0) return;
        const victim = withPred[pick % withPred.length]!;
        stamps[victim.id] = { counter: 0, node: '!' };
        const result = checkCausalOrder(h, stamps, compareLamport);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.violation.after.id).toBe(victim.id);
      }),
      fcParams(1_000),
    );
  });

  it('requires one stamp per event', () => {
    expect(() => checkCausalOrder(history, [1, 2], num)).toThrow(InvalidArgumentError);
  });
});

describe('checkStrongClockConsistency', () => {
  const relateNum = (a: number, b: number): CausalRelation =>
    a < b ? 'before' : a > b ? 'after' : 'equal';

  it('accepts vector clock stamps', () => {
    const clocks = new Map(history.nodes.map((n) => [n, VectorClock.empty()]));
    const step = (node: string, vc: VectorClock): VectorClock => (clocks.set(node, vc), vc);
    const stamps = replayHistory<VectorClock>(history, {
      local: (e) => step(e.node, clocks.get(e.node)!.increment(e.node)),
      send: (e) => step(e.node, clocks.get(e.node)!.increment(e.node)),
      receive: (e, sent) => step(e.node, clocks.get(e.node)!.merge(sent).increment(e.node)),
    });
    expect(checkStrongClockConsistency(history, stamps, (a, b) => a.compare(b))).toEqual({
      ok: true,
    });
  });

  it('rejects Lamport stamps: they order concurrent events', () => {
    const stamps = lamportStamps(history).map((s) => s.counter);
    const result = checkStrongClockConsistency(history, stamps, relateNum);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    // #0 and #1 are concurrent, but both have counter 1: 'equal'.
    expect(result.violation.expected).toBe('concurrent');
    expect(result.violation.actual).not.toBe('concurrent');
    expect(result.message).toContain('concurrent with');
  });

  it('rejects a clock that misses causality', () => {
    const result = checkStrongClockConsistency(history, [0, 0, 0, 0, 0], () => 'concurrent');
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.violation.expected).toBe('before');
      expect([result.violation.first.id, result.violation.second.id]).toEqual([1, 2]);
    }
  });
});

describe('checkMonotonic', () => {
  it('accepts increasing stamps and reports the first non-increase', () => {
    expect(checkMonotonic([1, 2, 3], num)).toEqual({ ok: true });
    expect(checkMonotonic([], num)).toEqual({ ok: true });
    const result = checkMonotonic([1, 2, 2, 1], num);
    expect(result).toEqual({
      ok: false,
      violation: { index: 2, previous: 2, current: 2, comparison: 0 },
      message: 'Stamps are not strictly increasing at index 2: 2 then 2 (compare returned 0).',
    });
    const loose = checkMonotonic([1, 2, 2, 1], num, { strict: false, format: (x) => `<${x}>` });
    expect(loose.ok).toBe(false);
    if (!loose.ok) {
      expect(loose.violation.index).toBe(3);
      expect(loose.message).toBe(
        'Stamps are not increasing at index 3: <2> then <1> (compare returned 1).',
      );
    }
  });

  it('formats bigints and objects readably by default', () => {
    const r = checkMonotonic([2n, 1n], (a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(r.ok ? '' : r.message).toContain('2n then 1n');
    const v = checkMonotonic([VectorClock.from({ a: 1 }), VectorClock.empty()], () => 1);
    expect(v.ok ? '' : v.message).toContain('a=1 then ');
  });
});
