/**
 * The code of the walk-through in docs/testing.md. If this file changes, update the
 * doc (the shrunk counterexample shown there is asserted below for seed 42).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HybridLogicalClock, compareHlc, type HlcTimestamp } from '../../src/index.js';
import { ClusterSimulator } from '../../src/testing/index.js';
import { seed } from '../support/fc.js';

// --- doc: register ---
/** A last-write-wins register: keeps the value with the highest timestamp it has seen. */
class LwwRegister<V, S> {
  value: V | undefined;
  stamp: S | undefined;
  constructor(private readonly compare: (a: S, b: S) => number) {}
  apply(value: V, stamp: S): void {
    if (this.stamp === undefined || this.compare(stamp, this.stamp) > 0) {
      this.value = value;
      this.stamp = stamp;
    }
  }
}
// --- end ---

// --- doc: scenario ---
interface Setup {
  offsetA: number; // node a's wall clock minus true time (ms)
  offsetB: number;
  delayMs: number; // one-way network delay
}

/**
 * Node a writes 1 and replicates it to b. Node b, having applied a's write, writes 2
 * and replicates it back. b's write happened after a's (it saw it), so both replicas
 * must end with 2.
 */
function run<S>(
  setup: Setup,
  makeStamper: (node: ReturnType<ClusterSimulator['node']>) => {
    stamp(): S;
    observe(remote: S): void;
  },
  compare: (a: S, b: S) => number,
): { a: number | undefined; b: number | undefined } {
  const sim = new ClusterSimulator({
    seed: 1,
    nodes: [
      { id: 'a', offsetMs: setup.offsetA },
      { id: 'b', offsetMs: setup.offsetB },
    ],
    network: { delayMs: [setup.delayMs, setup.delayMs] },
  });
  const a = { node: sim.node('a'), register: new LwwRegister<number, S>(compare) };
  const b = { node: sim.node('b'), register: new LwwRegister<number, S>(compare) };
  const stamperA = makeStamper(a.node);
  const stamperB = makeStamper(b.node);
  type Write = { value: number; stamp: S };

  b.node.onMessage<Write>((m) => {
    stamperB.observe(m.payload.stamp);
    b.register.apply(m.payload.value, m.payload.stamp);
    const stamp = stamperB.stamp(); // a write that causally follows a's
    b.register.apply(2, stamp);
    b.node.send('a', { value: 2, stamp });
  });
  a.node.onMessage<Write>((m) => {
    stamperA.observe(m.payload.stamp);
    a.register.apply(m.payload.value, m.payload.stamp);
  });
  sim.at(1_000, () => {
    const stamp = stamperA.stamp();
    a.register.apply(1, stamp);
    a.node.send('b', { value: 1, stamp });
  });
  sim.run(10_000);
  void sim.close();
  return { a: a.register.value, b: b.register.value };
}

const setups: fc.Arbitrary<Setup> = fc.record({
  offsetA: fc.integer({ min: -100, max: 100 }),
  offsetB: fc.integer({ min: -100, max: 100 }),
  delayMs: fc.integer({ min: 1, max: 50 }),
});
// --- end ---

// --- doc: buggy ---
/** Timestamps from the node's wall clock (what `Date.now()` would give). */
const wallClock = (node: ReturnType<ClusterSimulator['node']>) => ({
  stamp: () => node.wall.now(),
  observe: () => {},
});

const causalWriteWins = fc.property(setups, (setup) => {
  const result = run(setup, wallClock, (x, y) => x - y);
  expect(result).toEqual({ a: 2, b: 2 });
});
// --- end ---

// --- doc: fixed ---
/** Hybrid logical clock timestamps over the same wall clock. */
const hybrid = (node: ReturnType<ClusterSimulator['node']>) => {
  const hlc = new HybridLogicalClock({ node: node.id, physical: () => node.wall.now() });
  return {
    stamp: () => hlc.now(),
    observe: (remote: HlcTimestamp) => void hlc.receive(remote),
  };
};

const causalWriteWinsWithHlc = fc.property(setups, (setup) => {
  const result = run(setup, hybrid, compareHlc);
  expect(result).toEqual({ a: 2, b: 2 });
});
// --- end ---

describe('docs/testing.md walk-through', () => {
  it('fast-check finds and shrinks the lost update of a wall-clock LWW register', () => {
    let message = '';
    let cause: unknown;
    try {
      fc.assert(causalWriteWins, { seed });
    } catch (e) {
      message = (e as Error).message;
      cause = (e as Error).cause;
    }
    expect(message).toMatch(/Property failed after \d+ tests/);
    expect(message).toMatch(
      /Counterexample: \[\{"offsetA":-?\d+,"offsetB":-?\d+,"delayMs":\d+\}\]/,
    );
    const details = fc.check(causalWriteWins, { seed });
    const [shrunk] = details.counterexample as [Setup];
    // The lost update needs b's clock behind a's by at least the network delay.
    expect(shrunk.offsetA - shrunk.offsetB).toBeGreaterThanOrEqual(shrunk.delayMs);
    // The output printed in docs/testing.md (seed 42).
    if (seed === 42) {
      expect(shrunk).toEqual({ offsetA: 0, offsetB: -1, delayMs: 1 });
      if (process.env['PRINT_WALKTHROUGH']) console.log(message, '\n---\n', String(cause));
    }
  });

  it('the HLC register passes the same property', () => {
    fc.assert(causalWriteWinsWithHlc, { seed, numRuns: 500 });
  });
});
