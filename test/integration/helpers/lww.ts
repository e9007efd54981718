/**
 * Last-write-wins under clock skew, as a database-independent model (DDIA
 * Fig. 8-3): nodes with skewed physical clocks write keys through a conditional
 * upsert that keeps the row with the larger `(stamp, node)`. A step either
 * blindly writes a key, reads a key and writes an increment (a causal
 * dependency through the database), or passes a message (a causal dependency
 * through the network).
 *
 * Two ways to stamp a write are compared on the same schedule:
 * - `wall`: the writer's physical clock in ms, what "LWW with timestamps" does;
 * - `hlc`: chronobound's `stampWrite`, with the row read (`after`) and messages
 *   received (`receiveStamped`) feeding the clock.
 *
 * The oracle is independent of the code under test: vector clocks kept here. A
 * causally later write is lost when the row that survives for a key was written
 * by a write that happened-before another write to the same key.
 */
import fc from 'fast-check';
import {
  HybridLogicalClock,
  formatHlc,
  hlcToBigInt,
  receiveStamped,
  stampWrite,
  type HlcTimestamp,
} from '../../../src/index.js';

/** The row of one key, as a store returns it. */
export interface LwwRow {
  readonly v: number;
  /** The stamp as the driver returns a BIGINT: bigint or decimal string. */
  readonly hlc: bigint | string;
  readonly node: string;
  readonly wid: number;
}

/** One database, one connection; `run` separates schedules sharing a table. */
export interface LwwStore {
  read(run: number, key: string): Promise<LwwRow | undefined> | LwwRow | undefined;
  /** The conditional upsert; resolves `true` if the row was written. */
  upsert(
    run: number,
    key: string,
    v: number,
    stamp: bigint,
    node: string,
    wid: number,
  ): Promise<boolean> | boolean;
}

/** Columns: `run, k` (primary key), `v`, `hlc` (BIGINT), `node`, `wid`. */
export const LWW_TABLE = 'lww';

/**
 * The recipe's conditional upsert, with `?` placeholders (SQLite); replace them
 * with `$n` for PostgreSQL. A row value compare breaks ties between nodes.
 */
export const LWW_UPSERT_SQL = `INSERT INTO ${LWW_TABLE} (run, k, v, hlc, node, wid)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run, k) DO UPDATE
SET v = excluded.v, hlc = excluded.hlc, node = excluded.node, wid = excluded.wid
WHERE (excluded.hlc, excluded.node) > (${LWW_TABLE}.hlc, ${LWW_TABLE}.node)`;

/** Numbers `?` placeholders `$1, $2, …` for PostgreSQL (shared with the crash tests' forked writer). */
export { dollarParams } from '../fixtures/crash-sql.mjs';

export type Step =
  | {
      readonly kind: 'write';
      readonly node: number;
      readonly key: number;
      readonly advance: number;
    }
  | { readonly kind: 'rmw'; readonly node: number; readonly key: number; readonly advance: number }
  | {
      readonly kind: 'message';
      readonly from: number;
      readonly to: number;
      readonly advance: number;
    };

export interface Scenario {
  /** Each node's physical clock minus true time (ms), within ±250. */
  readonly offsets: readonly number[];
  readonly keys: number;
  readonly steps: readonly Step[];
}

export interface Outcome {
  /** Writes issued, and how many the upsert applied. */
  readonly writes: number;
  readonly applied: number;
  /** Causally later writes that lost to a write that happened before them. */
  readonly lost: ReadonlyArray<{ key: string; survivor: number; lostWrite: number }>;
  /** Every stamp issued, in issue order per node (for the monotonicity check). */
  readonly stampsByNode: ReadonlyArray<readonly bigint[]>;
}

const T0 = Date.UTC(2026, 0, 1);

/** Random schedules: 2–4 nodes with skews up to ±250 ms, 1–3 keys, 1–24 steps. */
export const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({ nodes: fc.integer({ min: 2, max: 4 }), keys: fc.integer({ min: 1, max: 3 }) })
  .chain(({ nodes, keys }) =>
    fc.record({
      offsets: fc.array(fc.integer({ min: -250, max: 250 }), {
        minLength: nodes,
        maxLength: nodes,
      }),
      keys: fc.constant(keys),
      steps: fc.array(stepArb(nodes, keys), { minLength: 1, maxLength: 24 }),
    }),
  );

function stepArb(nodes: number, keys: number): fc.Arbitrary<Step> {
  const node = fc.integer({ min: 0, max: nodes - 1 });
  const key = fc.integer({ min: 0, max: keys - 1 });
  // Mostly small steps of true time, so skews dominate and ties happen.
  const advance = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 5 }),
    fc.integer({ min: 0, max: 400 }),
  );
  return fc.oneof(
    fc.record({ kind: fc.constant('write' as const), node, key, advance }),
    fc.record({ kind: fc.constant('rmw' as const), node, key, advance }),
    fc.record({ kind: fc.constant('message' as const), from: node, to: node, advance }),
  );
}

/**
 * DDIA Fig. 8-3 as a schedule: node A's clock is 100 ms ahead of node B's; A
 * writes x, B reads it 1 ms later (true time) and increments it.
 */
export const ddiaFigure83: Scenario = {
  offsets: [100, 0],
  keys: 1,
  steps: [
    { kind: 'write', node: 0, key: 0, advance: 0 },
    { kind: 'rmw', node: 1, key: 0, advance: 1 },
  ],
};

type Vc = number[];
const happenedBefore = (a: Vc, b: Vc): boolean =>
  a.every((x, i) => x <= (b[i] as number)) && a.some((x, i) => x < (b[i] as number));
const merge = (into: Vc, other: Vc): void => {
  for (let i = 0; i < into.length; i++) into[i] = Math.max(into[i] as number, other[i] as number);
};

/**
 * Runs `scenario` against `store` under schedule `run`, stamping writes with
 * `scheme`, then reads every key back and checks it against the oracle.
 */
export async function runScenario(
  store: LwwStore,
  run: number,
  scenario: Scenario,
  scheme: 'wall' | 'hlc',
): Promise<Outcome> {
  const n = scenario.offsets.length;
  const names = scenario.offsets.map((_, i) => `n${i}`);
  let trueTime = T0;
  const physical = (i: number) => trueTime + (scenario.offsets[i] as number);
  const clocks = names.map(
    (node, i) => new HybridLogicalClock({ node, physical: () => physical(i), maxOffsetMs: 1000 }),
  );
  const vcs: Vc[] = names.map(() => new Array<number>(n).fill(0));
  const writeVc = new Map<number, { key: string; vc: Vc }>();
  const stampsByNode: bigint[][] = names.map(() => []);
  let writes = 0;
  let applied = 0;

  const write = async (i: number, key: string, v: number, after?: LwwRow): Promise<void> => {
    const wid = ++writes;
    const vc = vcs[i] as Vc;
    vc[i] = (vc[i] as number) + 1;
    writeVc.set(wid, { key, vc: [...vc] });
    const node = names[i] as string;
    let stamp: bigint;
    if (scheme === 'wall') {
      stamp = BigInt(Math.floor(physical(i)));
    } else {
      const options = after ? { after: after.hlc, node: after.node } : {};
      stamp = stampWrite(clocks[i] as HybridLogicalClock, (ts) => hlcToBigInt(ts), options).result;
    }
    (stampsByNode[i] as bigint[]).push(stamp);
    if (await store.upsert(run, key, v, stamp, node, wid)) applied++;
  };

  for (const step of scenario.steps) {
    trueTime += step.advance;
    if (step.kind === 'write') {
      await write(step.node, `k${step.key}`, writes + 1);
    } else if (step.kind === 'rmw') {
      const key = `k${step.key}`;
      const row = await store.read(run, key);
      if (row) merge(vcs[step.node] as Vc, (writeVc.get(Number(row.wid)) as { vc: Vc }).vc);
      await write(step.node, key, row ? Number(row.v) + 1 : 1, row);
    } else {
      const sent: HlcTimestamp = (clocks[step.from] as HybridLogicalClock).now();
      const from = vcs[step.from] as Vc;
      from[step.from] = (from[step.from] as number) + 1;
      const carried = [...from];
      if (scheme === 'hlc') receiveStamped(clocks[step.to] as HybridLogicalClock, formatHlc(sent));
      merge(vcs[step.to] as Vc, carried);
    }
  }

  const lost: Array<{ key: string; survivor: number; lostWrite: number }> = [];
  for (let k = 0; k < scenario.keys; k++) {
    const key = `k${k}`;
    const row = await store.read(run, key);
    if (!row) continue;
    const survivor = writeVc.get(Number(row.wid));
    if (!survivor) throw new Error(`row ${key} holds unknown write ${row.wid}`);
    for (const [wid, w] of writeVc) {
      if (w.key === key && happenedBefore(survivor.vc, w.vc)) {
        lost.push({ key, survivor: Number(row.wid), lostWrite: wid });
      }
    }
  }
  return { writes, applied, lost, stampsByNode };
}
