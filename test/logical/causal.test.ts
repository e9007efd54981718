/**
 * The three clocks on random message-passing executions (2–8 nodes, skewed,
 * drifting, stepping and pausing physical clocks), against the true
 * happened-before relation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HybridLogicalClock,
  LamportClock,
  VectorClock,
  compareHlc,
  compareLamport,
  formatHlc,
  formatLamport,
  type HlcTimestamp,
} from '../../src/index.js';
import { happenedBefore, type CausalHistory, type HistoryEvent } from '../../src/testing/index.js';
import { causalHistory } from '../../src/testing/fast-check/index.js';
import {
  type CausalRelation,
  checkCausalOrder,
  checkStrongClockConsistency,
  replayHistory,
} from '../../src/testing/checkers.js';
import { fcParams } from '../support/fc.js';

const histories = causalHistory({ nodes: { min: 2, max: 8 }, events: { max: 50 } });
/** Clocks within the skew bound: no backward steps. */
const boundedHistories = causalHistory({
  nodes: { min: 2, max: 8 },
  events: { max: 50 },
  backwardSteps: false,
  maxSkewMs: 40,
});

/** Replays a history through one HLC per node, each reading its node's physical clock. */
function replayHlc(history: CausalHistory, maxOffsetMs = Infinity): HlcTimestamp[] {
  let current: HistoryEvent | undefined;
  const clocks = new Map(
    history.nodes.map((node) => [
      node,
      new HybridLogicalClock({
        node,
        maxOffsetMs,
        physical: () => (current as HistoryEvent).physicalMs,
      }),
    ]),
  );
  const at = (e: HistoryEvent): HybridLogicalClock => {
    current = e;
    return clocks.get(e.node) as HybridLogicalClock;
  };
  return replayHistory<HlcTimestamp>(history, {
    local: (e) => at(e).now(),
    send: (e) => at(e).now(),
    receive: (e, sent) => at(e).receive(sent),
  });
}

const mirror = (r: CausalRelation): CausalRelation =>
  r === 'before' ? 'after' : r === 'after' ? 'before' : r;

function assertOk(result: { ok: true } | { ok: false; message: string }): void {
  if (!result.ok) expect.fail(result.message);
}

describe('happened-before ⇒ strictly smaller timestamp', () => {
  it('Lamport clocks', () => {
    fc.assert(
      fc.property(histories, (history) => {
        const clocks = new Map(history.nodes.map((n) => [n, new LamportClock({ node: n })]));
        const stamps = replayHistory(history, {
          local: (e) => clocks.get(e.node)!.tick(),
          send: (e) => clocks.get(e.node)!.tick(),
          receive: (e, sent) => clocks.get(e.node)!.receive(sent),
        });
        assertOk(checkCausalOrder(history, stamps, compareLamport, { format: formatLamport }));
      }),
      fcParams(10_000),
    );
  });

  it('hybrid logical clocks, with arbitrary physical clocks (steps back of up to an hour)', () => {
    fc.assert(
      fc.property(histories, (history) => {
        const stamps = replayHlc(history);
        assertOk(checkCausalOrder(history, stamps, compareHlc, { format: formatHlc }));
      }),
      fcParams(10_000),
    );
  });
});

describe('vector clocks characterize causality exactly', () => {
  it('compare() equals the true happened-before relation', () => {
    fc.assert(
      fc.property(histories, (history) => {
        const clocks = new Map(history.nodes.map((n) => [n, VectorClock.empty()]));
        const stamps = replayHistory<VectorClock>(history, {
          local: (e) => {
            const vc = clocks.get(e.node)!.increment(e.node);
            clocks.set(e.node, vc);
            return vc;
          },
          send: (e) => {
            const vc = clocks.get(e.node)!.increment(e.node);
            clocks.set(e.node, vc);
            return vc;
          },
          receive: (e, sent) => {
            const vc = clocks.get(e.node)!.merge(sent).increment(e.node);
            clocks.set(e.node, vc);
            return vc;
          },
        });
        assertOk(
          checkStrongClockConsistency(history, stamps, (a, b) => a.compare(b), {
            format: (v) => v.encode(),
          }),
        );
        // And the reverse direction, for antisymmetry.
        assertOk(
          checkStrongClockConsistency(history, stamps, (a, b) => mirror(b.compare(a)), {
            format: (v) => v.encode(),
          }),
        );
      }),
      fcParams(10_000),
    );
  });
});

describe('HLC bounds from the paper (Kulkarni et al. 2014)', () => {
  it('Theorems 2–4 on arbitrary clocks: l ≥ pt; l > pt only via a predecessor; c bounded by same-l predecessors', () => {
    fc.assert(
      fc.property(histories, (history) => {
        const stamps = replayHlc(history);
        const hb = happenedBefore(history);
        const events = history.events;
        for (let f = 0; f < events.length; f++) {
          const e = events[f]!;
          const s = stamps[f]!;
          const pt = Math.floor(e.physicalMs);
          // Theorem 2: l.f ≥ pt.f.
          if (s.wallMs < pt) expect.fail(`event ${f}: l=${s.wallMs} < pt=${pt}`);
          // Theorem 3: l.f > pt.f ⇒ some g → f had pt.g = l.f.
          if (s.wallMs > pt) {
            let found = false;
            for (let g = 0; g < f && !found; g++)
              found = hb(g, f) && Math.floor(events[g]!.physicalMs) === s.wallMs;
            if (!found) expect.fail(`event ${f}: l=${s.wallMs} is no predecessor's physical time`);
          }
          // Theorem 4: c.f ≤ |{g : g → f ∧ l.g = l.f}|.
          let sameL = 0;
          for (let g = 0; g < f; g++) if (hb(g, f) && stamps[g]!.wallMs === s.wallMs) sameL++;
          if (s.counter > sameL)
            expect.fail(`event ${f}: c=${s.counter} > ${sameL} predecessors with l=${s.wallMs}`);
        }
      }),
      fcParams(10_000),
    );
  });

  it('with clocks within ε of each other: l − pt ≤ ε, and maxOffsetMs = ε never rejects', () => {
    fc.assert(
      fc.property(boundedHistories, (history) => {
        expect(history.stepped).toBe(false);
        const epsilon = history.maxSkewMs;
        // maxOffsetMs = ε: a correct remote is never more than ε ahead, so nothing throws.
        const stamps = replayHlc(history, epsilon);
        const hb = happenedBefore(history);
        history.events.forEach((e, f) => {
          const s = stamps[f]!;
          const lead = s.wallMs - Math.floor(e.physicalMs);
          if (lead > epsilon) expect.fail(`event ${f}: l − pt = ${lead} > ε = ${epsilon}`);
          // Corollary 2: counters stay small — bounded by predecessors within ε of l.
          let near = 0;
          for (let g = 0; g < f; g++)
            if (hb(g, f) && history.events[g]!.physicalMs >= s.wallMs - epsilon) near++;
          if (s.counter > near)
            expect.fail(`event ${f}: c=${s.counter} > ${near} predecessors within ε of l`);
        });
      }),
      fcParams(10_000),
    );
  });

  it('counters stay far below 65535 in long executions', () => {
    const long = causalHistory({
      nodes: { min: 2, max: 8 },
      events: { min: 200, max: 400 },
      backwardSteps: false,
      maxSkewMs: 20,
      resolutionsMs: [16],
    });
    fc.assert(
      fc.property(long, (history) => {
        const stamps = replayHlc(history, 20);
        const maxCounter = Math.max(...stamps.map((s) => s.counter));
        expect(maxCounter).toBeLessThanOrEqual(history.events.length);
        expect(maxCounter).toBeLessThan(400);
      }),
      fcParams(200),
    );
  });
});
