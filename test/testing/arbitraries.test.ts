import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HybridLogicalClock,
  InvalidArgumentError,
  compareHlc,
  formatHlc,
  formatLamport,
  isValidNodeId,
  type HlcTimestamp,
} from '../../src/index.js';
import { happenedBefore, type CausalHistory, type HistoryEvent } from '../../src/testing/index.js';
import {
  causalHistory,
  hlcTimestamp,
  lamportTimestamp,
  nodeId,
  vectorClock,
} from '../../src/testing/fast-check/index.js';
import { checkCausalOrder, replayHistory } from '../../src/testing/checkers.js';
import { fcParams, seed } from '../support/fc.js';

describe('timestamp arbitraries generate what they claim', () => {
  it('nodeId: valid ids within maxLength', () => {
    fc.assert(
      fc.property(nodeId(), nodeId({ maxLength: 3 }), (a, b) => {
        expect(isValidNodeId(a)).toBe(true);
        expect(isValidNodeId(b)).toBe(true);
        expect(b.length).toBeLessThanOrEqual(3);
      }),
      fcParams(2_000),
    );
    expect(() => nodeId({ maxLength: 0 })).toThrow(InvalidArgumentError);
    expect(() => nodeId({ maxLength: 65 })).toThrow(InvalidArgumentError);
  });

  it('hlcTimestamp: valid, within the requested ranges and nodes', () => {
    fc.assert(
      fc.property(
        hlcTimestamp(),
        hlcTimestamp({ minWallMs: 10, maxWallMs: 12, maxCounter: 2, nodes: ['p', 'q'] }),
        (any, narrow) => {
          expect(() => formatHlc(any)).not.toThrow();
          expect(narrow.wallMs).toBeGreaterThanOrEqual(10);
          expect(narrow.wallMs).toBeLessThanOrEqual(12);
          expect(narrow.counter).toBeLessThanOrEqual(2);
          expect(['p', 'q']).toContain(narrow.node);
        },
      ),
      fcParams(2_000),
    );
    expect(() => hlcTimestamp({ minWallMs: 5, maxWallMs: 4 })).toThrow(InvalidArgumentError);
    expect(() => hlcTimestamp({ maxCounter: 70_000 })).toThrow(InvalidArgumentError);
    expect(() => hlcTimestamp({ nodes: [] })).toThrow(InvalidArgumentError);
    expect(() => hlcTimestamp({ nodes: ['a@b'] })).toThrow(InvalidArgumentError);
  });

  it('lamportTimestamp and vectorClock: within the requested ranges', () => {
    fc.assert(
      fc.property(
        lamportTimestamp({ maxCounter: 9, nodes: ['a'] }),
        vectorClock({ nodes: ['x', 'y'], maxCounter: 4 }),
        (l, v) => {
          expect(() => formatLamport(l)).not.toThrow();
          expect(l.counter).toBeLessThanOrEqual(9);
          for (const [node, counter] of v.entries()) {
            expect(['x', 'y']).toContain(node);
            expect(counter).toBeGreaterThan(0);
            expect(counter).toBeLessThanOrEqual(4);
          }
        },
      ),
      fcParams(2_000),
    );
  });
});

/** Structural invariants every history must satisfy. */
function checkShape(h: CausalHistory): void {
  const sentBy = new Map<number, string>();
  const received = new Set<number>();
  h.events.forEach((e, i) => {
    expect(e.id).toBe(i);
    expect(h.nodes).toContain(e.node);
    if (i > 0) expect(e.trueMs).toBeGreaterThanOrEqual(h.events[i - 1]!.trueMs);
    expect(Number.isFinite(e.physicalMs)).toBe(true);
    if (e.kind === 'local') expect(e.message).toBeUndefined();
    if (e.kind === 'send') {
      expect(e.message).toBe(i);
      sentBy.set(i, e.node);
    }
    if (e.kind === 'receive') {
      const m = e.message!;
      expect(sentBy.has(m)).toBe(true); // an earlier send
      expect(sentBy.get(m)).not.toBe(e.node); // from another node
      expect(received.has(m)).toBe(false); // at most once
      received.add(m);
    }
  });
}

describe('causalHistory', () => {
  it('generates valid executions within the requested sizes', () => {
    fc.assert(
      fc.property(
        causalHistory({ nodes: { min: 2, max: 8 }, events: { min: 1, max: 50 } }),
        (h) => {
          checkShape(h);
          expect(h.nodes.length).toBeGreaterThanOrEqual(2);
          expect(h.nodes.length).toBeLessThanOrEqual(8);
          expect(h.events.length).toBeGreaterThanOrEqual(1);
          expect(h.events.length).toBeLessThanOrEqual(50);
          expect(new Set(h.nodes).size).toBe(h.nodes.length);
        },
      ),
      fcParams(2_000),
    );
  });

  it('keeps clock errors within maxSkewMs and readings monotonic unless a clock stepped', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 200 })
          .chain((maxSkewMs) =>
            causalHistory({ maxSkewMs, backwardSteps: false, events: { max: 60 } }),
          ),
        (h) => {
          checkShape(h);
          expect(h.stepped).toBe(false);
          const errors = h.events.map((e) => e.physicalMs - e.trueMs);
          if (errors.length > 0)
            expect(Math.max(...errors) - Math.min(...errors)).toBeLessThanOrEqual(h.maxSkewMs);
          const last = new Map<string, number>();
          for (const e of h.events) {
            expect(e.physicalMs).toBeGreaterThanOrEqual(last.get(e.node) ?? -Infinity);
            last.set(e.node, e.physicalMs);
          }
        },
      ),
      fcParams(2_000),
    );
  });

  it('produces the advertised clock behaviours: steps back, pauses, equal readings', () => {
    const sample = fc.sample(causalHistory({ events: { min: 20, max: 40 } }), {
      numRuns: 300,
      seed,
    });
    const stepped = sample.filter((h) => h.stepped);
    expect(stepped.length).toBeGreaterThan(10);
    let backwards = 0;
    let equal = 0;
    let pauses = 0;
    for (const h of sample) {
      const last = new Map<string, HistoryEvent>();
      for (const e of h.events) {
        const prev = last.get(e.node);
        if (prev && e.physicalMs < prev.physicalMs) backwards++;
        if (prev && e.physicalMs === prev.physicalMs) equal++;
        if (prev && e.trueMs - prev.trueMs > 1000) pauses++;
        last.set(e.node, e);
      }
    }
    expect(backwards).toBeGreaterThan(10);
    expect(equal).toBeGreaterThan(100);
    expect(pauses).toBeGreaterThan(10);
    const noSteps = fc.sample(causalHistory({ backwardSteps: false }), { numRuns: 200, seed });
    expect(noSteps.some((h) => h.stepped)).toBe(false);
  });

  it('validates its options', () => {
    expect(() => causalHistory({ nodes: { min: 3, max: 2 } })).toThrow(InvalidArgumentError);
    expect(() => causalHistory({ nodes: 0 })).toThrow(InvalidArgumentError);
    expect(() => causalHistory({ maxSkewMs: -1 })).toThrow(InvalidArgumentError);
    expect(() => causalHistory({ maxSkewMs: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => causalHistory({ resolutionsMs: [] })).toThrow(InvalidArgumentError);
    expect(() => causalHistory({ nodes: 3, nodeIds: ['a', 'b'] })).toThrow(InvalidArgumentError);
    expect(() => causalHistory({ nodes: 2, nodeIds: ['a', 'a'] })).toThrow(InvalidArgumentError);
    expect(() => causalHistory({ nodes: 2, nodeIds: ['a', 'b,c'] })).toThrow(InvalidArgumentError);
    const named = fc.sample(causalHistory({ nodes: 2, nodeIds: ['alpha', 'beta'] }), {
      numRuns: 5,
      seed,
    });
    for (const h of named) expect(h.nodes).toEqual(['alpha', 'beta']);
  });
});

describe('happenedBefore', () => {
  /** Brute force: direct edges, then Floyd–Warshall transitive closure. */
  function closure(h: CausalHistory): boolean[][] {
    const n = h.events.length;
    const r = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
    const last = new Map<string, number>();
    for (const e of h.events) {
      const prev = last.get(e.node);
      if (prev !== undefined) r[prev]![e.id] = true;
      if (e.kind === 'receive') r[e.message!]![e.id] = true;
      last.set(e.node, e.id);
    }
    for (let k = 0; k < n; k++)
      for (let i = 0; i < n; i++)
        if (r[i]![k]) for (let j = 0; j < n; j++) if (r[k]![j]) r[i]![j] = true;
    return r;
  }

  it('equals the brute-force transitive closure, and is a strict partial order', () => {
    fc.assert(
      fc.property(causalHistory({ events: { max: 70 } }), (h) => {
        const hb = happenedBefore(h);
        const r = closure(h);
        const n = h.events.length;
        for (let a = 0; a < n; a++) {
          if (hb(a, a)) expect.fail(`reflexive at ${a}`);
          for (let b = 0; b < n; b++) {
            if (hb(a, b) !== r[a]![b])
              expect.fail(`hb(${a}, ${b}) = ${hb(a, b)}, closure says ${r[a]![b]}`);
            if (hb(a, b) && hb(b, a)) expect.fail(`cycle ${a} ↔ ${b}`);
          }
        }
        expect(hb(-1, 0)).toBe(false);
        expect(hb(0, n)).toBe(false);
      }),
      fcParams(1_000),
    );
  });

  it('rejects a malformed history', () => {
    const bad: CausalHistory = {
      nodes: ['a', 'b'],
      maxSkewMs: 0,
      stepped: false,
      events: [{ id: 0, node: 'a', kind: 'receive', message: 0, trueMs: 0, physicalMs: 0 }],
    };
    expect(() => happenedBefore(bad)).toThrow(InvalidArgumentError);
  });
});

describe('shrinking', () => {
  it('shrinks a failure to a minimal counterexample (send + receive on a slower clock)', () => {
    // A broken HLC: receive ignores the remote timestamp.
    const broken = (h: CausalHistory): HlcTimestamp[] => {
      let current: HistoryEvent | undefined;
      const clocks = new Map(
        h.nodes.map((n) => [
          n,
          new HybridLogicalClock({
            node: n,
            maxOffsetMs: Infinity,
            physical: () => current!.physicalMs,
          }),
        ]),
      );
      const at = (e: HistoryEvent): HybridLogicalClock => {
        current = e;
        return clocks.get(e.node)!;
      };
      return replayHistory<HlcTimestamp>(h, {
        local: (e) => at(e).now(),
        send: (e) => at(e).now(),
        receive: (e) => at(e).now(),
      });
    };
    const out = fc.check(
      fc.property(
        causalHistory({ events: { max: 40 } }),
        (h) => checkCausalOrder(h, broken(h), compareHlc).ok,
      ),
      { seed, numRuns: 10_000 },
    );
    expect(out.failed).toBe(true);
    const [history] = out.counterexample!;
    expect(history.events.map((e) => e.kind)).toEqual(['send', 'receive']);
    expect(history.nodes).toHaveLength(2);
    const [send, receive] = history.events;
    expect(Math.floor(receive!.physicalMs)).toBeLessThanOrEqual(Math.floor(send!.physicalMs));
    const result = checkCausalOrder(history, broken(history), compareHlc, { format: formatHlc });
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.message).toMatch(
        /#0 \(n[01], send of message 0.*#1 \(n[01], receive of message 0/,
      );
  });
});
