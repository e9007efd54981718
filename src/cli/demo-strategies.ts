/**
 * The three ways `chronobound demo` orders its increments, as data: each
 * strategy reads the counter row, writes value + 1 and says whether the
 * last-write-wins upsert kept it. They differ only in how the write's stamp is
 * chosen.
 *
 * @module
 */
import { ClockUnsynchronizedError } from '../errors.js';
import type { HybridLogicalClock } from '../logical/hlc.js';
import { hlcToBigInt } from '../logical/hlc-codec.js';
import { stampWrite } from '../logical/stamp.js';
import type { LoopbackNtpServer } from '../testing/node/index.js';
import { toNanosBigInt } from '../truetime/interval.js';
import type { TrueClock } from '../truetime/true-clock.js';
import type { DemoDb, DemoRow } from './demo-db.js';

/** One commit-wait, measured from the moment the stamp was chosen. @internal */
export interface CommitTiming {
  /** ε of the reading taken right before the stamp `s = now().latest` (ms). */
  readonly epsilonMs: number;
  /** The write itself, from the stamp until the database answered (ms). */
  readonly writeMs: number;
  /** How long the acknowledgement was held after the write (`waitedMs`, ms). */
  readonly waitedMs: number;
  /**
   * How far `earliest` was past `s` when the acknowledgement came (ms): how late
   * the wait woke after the moment it could have (timers, a busy event loop).
   */
  readonly lateMs: number;
}

/** A node of the demo: a skewed wall clock, an HLC, and an honest clock on its own NTP server. @internal */
export interface DemoNode {
  readonly name: string;
  readonly skewMs: number;
  readonly delays: readonly [number, number];
  readonly server: LoopbackNtpServer;
  readonly clock: TrueClock;
  readonly hlc: HybridLogicalClock;
  /** The node's (skewed) wall clock, in whole ms like Date.now(). */
  wall(): number;
  readonly commits: CommitTiming[];
  /** Commits the clock refused at first (fail-closed) and acknowledged after recovering. */
  readonly heldBack: { readonly status: string; readonly startedAt: number }[];
}

/** What one increment did. @internal */
export interface Increment {
  /** Whether the upsert kept the write. */
  readonly written: boolean;
  /** The row the increment read. */
  readonly read: DemoRow | undefined;
  /** The wall-clock stamp written, for strategies that stamp with plain ms (for the loss report). */
  readonly stampMs?: number;
}

/** Where an increment happens. @internal */
export interface IncrementContext {
  readonly db: DemoDb;
  readonly run: string;
  readonly key: string;
  readonly node: DemoNode;
  readonly signal: AbortSignal;
}

/** @internal */
export type StrategyId = 'lww' | 'hlc' | 'commit-wait';

/** One way of stamping writes. @internal */
export interface Strategy {
  readonly id: StrategyId;
  /** Column title in the report. */
  readonly title: string;
  /** Reads the row and writes value + 1. */
  increment(context: IncrementContext): Promise<Increment>;
  /** Mean extra latency per write this strategy adds (ms), from the nodes' records. */
  extraLatencyMs(nodes: readonly DemoNode[]): number;
}

/** The strategies, in report order. @internal */
export const STRATEGIES: readonly Strategy[] = [
  {
    id: 'lww',
    title: 'wall-clock LWW',
    // The writer's own clock stamps the write.
    async increment({ db, run, key, node }) {
      const read = await db.read(run, 'lww', key);
      const stampMs = node.wall();
      const written = await db.upsert(
        run,
        'lww',
        key,
        (read?.v ?? 0) + 1,
        BigInt(stampMs),
        node.name,
      );
      return { written, read, stampMs };
    },
    extraLatencyMs: () => 0,
  },
  {
    id: 'hlc',
    title: 'HLC',
    // The stamp read is received first, so the new stamp is larger.
    async increment({ db, run, key, node }) {
      const read = await db.read(run, 'hlc', key);
      const next = (read?.v ?? 0) + 1;
      const { result: written } = await stampWrite(
        node.hlc,
        (ts) => db.upsert(run, 'hlc', key, next, hlcToBigInt(ts), ts.node),
        read === undefined ? {} : { after: read.ts, node: read.node },
      );
      return { written, read };
    },
    extraLatencyMs: () => 0,
  },
  {
    id: 'commit-wait',
    title: 'commit-wait',
    // s = now().latest; acknowledge once now().earliest > s.
    async increment({ db, run, key, node, signal }) {
      const read = await db.read(run, 'commit-wait', key);
      const next = (read?.v ?? 0) + 1;
      const written = await commitWithRecovery(node, signal, (s) =>
        db.upsert(run, 'commit-wait', key, next, toNanosBigInt(s), node.name),
      );
      return { written, read };
    },
    extraLatencyMs: (nodes) => mean(nodes.flatMap((n) => n.commits.map((c) => c.waitedMs))),
  },
];

/** @internal */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * Commit-wait, failing closed: if the clock refuses (e.g. the watchdog saw the
 * wall and monotonic clocks disagree), the write is not acknowledged until the
 * clock is trusted again and its timestamp has definitely passed. Waits held
 * back this way are counted apart from the ordinary ones.
 */
async function commitWithRecovery(
  node: DemoNode,
  signal: AbortSignal,
  write: (s: number) => Promise<boolean>,
): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    let stamp: number | undefined;
    let written: boolean | undefined;
    let writtenAt = Number.NaN;
    const epsilonMs = node.clock.now().uncertaintyMs;
    const started = performance.now();
    try {
      const { result, waitedMs, timestamp } = await node.clock.commitWait(
        async (s) => {
          stamp = s;
          written = await write(s);
          writtenAt = performance.now();
          return written;
        },
        { timeoutMs: 5000, signal },
      );
      const lateMs = node.clock.now().earliest - timestamp;
      node.commits.push({ epsilonMs, writeMs: writtenAt - started, waitedMs, lateMs });
      return result;
    } catch (error) {
      if (!(error instanceof ClockUnsynchronizedError) || attempt >= 3) throw error;
      node.heldBack.push({ status: error.status, startedAt: started });
      await node.clock.whenTrusted({ timeoutMs: 10_000, signal });
      if (stamp === undefined || written === undefined) continue; // nothing was written: retry
      await node.clock.waitUntilAfter(stamp, { timeoutMs: 5000, signal });
      return written;
    }
  }
}
