/**
 * Model-based test: random command sequences run against HybridLogicalClock
 * and against a reference model written straight from the paper's pseudocode
 * (Kulkarni et al. 2014, Fig. 5), plus the offset check and the 16-bit limit:
 * on counter exhaustion the clock borrows the next millisecond while that keeps
 * it at most maxOffsetMs + maxBorrowMs ahead of the largest physical time read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClockOffsetError,
  HlcOverflowError,
  HybridLogicalClock,
  type HlcTimestamp,
} from '../../src/index.js';
import { fcParams } from '../support/fc.js';

const T0 = Date.UTC(2026, 0, 1);
const MAX_OFFSET = 500;
const MAX_COUNTER = 65_535;

interface Model {
  pt: number; // physical clock reading (ms, may be fractional)
  l: number | undefined;
  c: number;
  // Largest floor(pt) read by a call that changed the clock (now() records it only when it
  // moves wallMs, not when it just counts); −1 before any. Borrowing is measured from it.
  maxPt: number;
  maxBorrow: number; // the clock's maxBorrowMs
}

/** Counter exhaustion at l: the borrowed wall time l + 1, or undefined past the bound. */
function borrow(m: Model, l: number, pt: number): number | undefined {
  return l + 1 - Math.max(m.maxPt, pt) <= MAX_OFFSET + m.maxBorrow ? l + 1 : undefined;
}

function commit(m: Model, l: number, c: number, pt: number, record = true): Outcome {
  m.l = l;
  m.c = c;
  if (record) m.maxPt = Math.max(m.maxPt, pt);
  return { ts: { wallMs: l, counter: c, node: 'me' } };
}

interface Real {
  hlc: HybridLogicalClock;
  setPhysical: (ms: number) => void;
}

type Outcome = { ts: HlcTimestamp } | { error: 'offset' | 'overflow' };

/** The paper's send/local rule, with the counter limit. */
function modelNow(m: Model): Outcome {
  const pt = Math.floor(m.pt);
  const lOld = m.l ?? -1;
  let l = Math.max(lOld, pt);
  let c = l === lOld ? m.c + 1 : 0;
  if (c > MAX_COUNTER) {
    const next = borrow(m, l, pt);
    if (next === undefined) return { error: 'overflow' };
    l = next;
    c = 0;
  }
  return commit(m, l, c, pt, c === 0);
}

/** The paper's receive rule, with the offset check and the counter limit. */
function modelReceive(m: Model, lm: number, cm: number): Outcome {
  const pt = Math.floor(m.pt);
  if (lm - pt > MAX_OFFSET) return { error: 'offset' };
  const lOld = m.l ?? -1;
  let l = Math.max(lOld, lm, pt);
  let c: number;
  if (l === lOld && l === lm) c = Math.max(m.c, cm) + 1;
  else if (l === lOld) c = m.c + 1;
  else if (l === lm) c = cm + 1;
  else c = 0;
  if (c > MAX_COUNTER) {
    const next = borrow(m, l, pt);
    if (next === undefined) return { error: 'overflow' };
    l = next;
    c = 0;
  }
  return commit(m, l, c, pt);
}

function outcome(f: () => HlcTimestamp): Outcome {
  try {
    return { ts: f() };
  } catch (e) {
    if (e instanceof ClockOffsetError) return { error: 'offset' };
    if (e instanceof HlcOverflowError) return { error: 'overflow' };
    throw e;
  }
}

/** A remote relative to the current physical time, biased to collide with the clock's state. */
interface RemoteSpec {
  readonly ahead: number;
  readonly counter: number;
  readonly onState: boolean;
}
const remoteSpec: fc.Arbitrary<RemoteSpec> = fc.record({
  ahead: fc.oneof(
    fc.integer({ min: -3, max: 3 }),
    fc.integer({ min: -2000, max: 2000 }),
    fc.constantFrom(MAX_OFFSET, MAX_OFFSET + 1),
  ),
  counter: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(MAX_COUNTER - 1, MAX_COUNTER)),
  onState: fc.boolean(),
});

function resolveRemote(m: Model, spec: RemoteSpec): HlcTimestamp {
  // onState: a remote with the clock's own wall time (exercises the tie cases).
  const wallMs =
    spec.onState && m.l !== undefined ? m.l : Math.max(0, Math.floor(m.pt) + spec.ahead);
  return { wallMs, counter: spec.counter, node: 'peer' };
}

/** A command that can always run (`check()` is true); the model decides what it expects. */
abstract class Step implements fc.Command<Model, Real> {
  check(): boolean {
    return true;
  }
  abstract run(m: Model, r: Real): void;
  abstract toString(): string;
}

/** A step that hands the clock a remote, placed relative to the model when it runs. */
abstract class RemoteStep extends Step {
  constructor(readonly spec: RemoteSpec) {
    super();
  }
  protected remote(m: Model): HlcTimestamp {
    return resolveRemote(m, this.spec);
  }
}

class SetPhysical extends Step {
  constructor(readonly deltaMs: number) {
    super();
  }
  override run(m: Model, r: Real): void {
    m.pt = Math.max(0, m.pt + this.deltaMs);
    r.setPhysical(m.pt);
  }
  override toString(): string {
    return `physical ${this.deltaMs >= 0 ? '+' : ''}${this.deltaMs}`;
  }
}

class Now extends Step {
  override run(m: Model, r: Real): void {
    expect(outcome(() => r.hlc.now())).toEqual(modelNow(m));
  }
  override toString(): string {
    return 'now()';
  }
}

class Burst extends Step {
  constructor(readonly count: number) {
    super();
  }
  override run(m: Model, r: Real): void {
    for (let i = 0; i < this.count; i++) expect(outcome(() => r.hlc.now())).toEqual(modelNow(m));
  }
  override toString(): string {
    return `now() ×${this.count}`;
  }
}

class Receive extends RemoteStep {
  override run(m: Model, r: Real): void {
    const remote = this.remote(m);
    expect(outcome(() => r.hlc.receive(remote))).toEqual(
      modelReceive(m, remote.wallMs, remote.counter),
    );
  }
  override toString(): string {
    return `receive(${JSON.stringify(this.spec)})`;
  }
}

class ReceiveMany extends Step {
  constructor(readonly specs: readonly RemoteSpec[]) {
    super();
  }
  override run(m: Model, r: Real): void {
    const remotes = this.specs.map((s) => resolveRemote(m, s));
    const pt = Math.floor(m.pt);
    let expected: Outcome;
    if (remotes.some((x) => x.wallMs - pt > MAX_OFFSET)) expected = { error: 'offset' };
    else if (remotes.length === 0) expected = modelNow(m);
    else {
      // One tick with the largest remote.
      const max = remotes.reduce((a, b) =>
        b.wallMs > a.wallMs || (b.wallMs === a.wallMs && b.counter > a.counter) ? b : a,
      );
      expected = modelReceive(m, max.wallMs, max.counter);
    }
    expect(outcome(() => r.hlc.receiveMany(remotes))).toEqual(expected);
  }
  override toString(): string {
    return `receiveMany(${JSON.stringify(this.specs)})`;
  }
}

class Update extends RemoteStep {
  override run(m: Model, r: Real): void {
    const remote = this.remote(m);
    const pt = Math.floor(m.pt);
    let threw = false;
    try {
      r.hlc.update(remote);
    } catch (e) {
      expect(e).toBeInstanceOf(ClockOffsetError);
      threw = true;
    }
    expect(threw).toBe(remote.wallMs - pt > MAX_OFFSET);
    if (!threw) {
      const l = m.l ?? -1;
      if (remote.wallMs > l || (remote.wallMs === l && remote.counter > m.c)) {
        m.l = remote.wallMs;
        m.c = remote.counter;
      }
      m.maxPt = Math.max(m.maxPt, pt);
    }
  }
  override toString(): string {
    return `update(${JSON.stringify(this.spec)})`;
  }
}

class Peek extends Step {
  override run(m: Model, r: Real): void {
    expect(r.hlc.peek()).toEqual(
      m.l === undefined ? undefined : { wallMs: m.l, counter: m.c, node: 'me' },
    );
  }
  override toString(): string {
    return 'peek()';
  }
}

const commands = [
  fc
    .oneof(
      fc.integer({ min: 0, max: 3 }),
      fc.double({ min: 0, max: 2, noNaN: true }),
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
    )
    .map((d) => new SetPhysical(d)),
  fc.constant(new Now()),
  fc.integer({ min: 1, max: 50 }).map((n) => new Burst(n)),
  remoteSpec.map((s) => new Receive(s)),
  fc.array(remoteSpec, { maxLength: 6 }).map((s) => new ReceiveMany(s)),
  remoteSpec.map((s) => new Update(s)),
  fc.constant(new Peek()),
];

describe('HybridLogicalClock against the paper model', () => {
  it('agrees on every timestamp, rejection and overflow', () => {
    fc.assert(
      fc.property(
        fc.commands(commands, { maxCommands: 80 }),
        fc.constantFrom(0, 1, 10),
        (cmds, maxBorrow) => {
          let physical = T0;
          const real: Real = {
            hlc: new HybridLogicalClock({
              node: 'me',
              physical: () => physical,
              maxOffsetMs: MAX_OFFSET,
              maxBorrowMs: maxBorrow,
            }),
            setPhysical: (ms) => {
              physical = ms;
            },
          };
          fc.modelRun(
            () => ({ model: { pt: T0, l: undefined, c: 0, maxPt: -1, maxBorrow }, real }),
            cmds,
          );
        },
      ),
      fcParams(10_000),
    );
  });
});
