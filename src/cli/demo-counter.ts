/**
 * The default `chronobound demo`: three nodes with skewed wall clocks take
 * turns incrementing one counter row, and every strategy of
 * {@link STRATEGIES} runs the same schedule side by side.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { mulberry32 } from '../_internals/prng.js';
import { HybridLogicalClock } from '../logical/hlc.js';
import { ntpSource } from '../ntp/source.js';
import { createNtpServer } from '../testing/node/index.js';
import { TrueClock } from '../truetime/true-clock.js';
import type { DemoDb } from './demo-db.js';
import {
  counterJson,
  counterReport,
  plot,
  type CounterOutcome,
  type StrategyResult,
  type Trace,
} from './demo-report.js';
import {
  mean,
  STRATEGIES,
  type DemoNode,
  type Increment,
  type StrategyId,
} from './demo-strategies.js';
import { ExitCode } from './errors.js';
import { sleep, type CliIo, type Progress } from './io.js';

/** The counter demo's settings, parsed from the command line. @internal */
export interface CounterOptions {
  readonly rounds: number;
  readonly skews: readonly number[];
  readonly pollMs: number;
  readonly seed: number;
  readonly plotFile: string | undefined;
  readonly json: boolean;
}

/** One-way delays (request/reply, ms) of each node's path to its reference server. */
const PATH_DELAYS: readonly (readonly [number, number])[] = [
  [0, 0],
  [1, 3],
  [4, 4],
];

const KEY = 'counter';

/**
 * Runs the counter demo on an open database; the caller closes it.
 * @internal
 */
export async function runCounterDemo(
  options: CounterOptions,
  db: DemoDb,
  io: CliIo,
  progress: Progress,
): Promise<number> {
  const started = performance.now();
  const nodes: DemoNode[] = [];
  try {
    progress.update('demo: starting 3 loopback NTP servers and synchronizing 3 TrueClocks…', true);
    await startNodes(options, nodes);
    await Promise.all(nodes.map((n) => n.clock.ready({ timeoutMs: 10_000, signal: io.signal })));
    const tracer = startTracing(nodes);
    const run = `${Date.now().toString(36)}-${options.seed}`;
    const results = Object.fromEntries(
      STRATEGIES.map((s) => [s.id, { attempted: 0, kept: 0, lost: 0, finalValue: 0 }]),
    ) as Record<StrategyId, StrategyResult>;
    let completed: number;
    try {
      completed = await runRounds(options, nodes, db, run, results, io, progress);
    } finally {
      tracer.stop();
    }
    for (const s of STRATEGIES) results[s.id].finalValue = (await db.read(run, s.id, KEY))?.v ?? 0;
    progress.done();
    const outcome: CounterOutcome = {
      db,
      nodes,
      wallOffsets: nodes.map((_, i) =>
        mean(tracer.traces.filter((t) => t.node === i).map((t) => t.wallOffsetMs)),
      ),
      results,
      completed,
      elapsedS: (performance.now() - started) / 1000,
      plotFile: options.plotFile,
    };
    writePlot(options, outcome, tracer);
    printOutcome(options, outcome, io);
    if (results.hlc.lost > 0 || results['commit-wait'].lost > 0) {
      io.stderr.write(
        'chronobound demo: unexpected: HLC or commit-wait lost a write; please report this\n',
      );
      return ExitCode.runtime;
    }
    return ExitCode.ok;
  } finally {
    progress.done();
    await Promise.all(
      nodes.map(async (n) => {
        await n.clock.close();
        await n.server.close();
      }),
    );
  }
}

/** Starts one loopback NTP server and one synchronizing TrueClock per node. */
async function startNodes(options: CounterOptions, nodes: DemoNode[]): Promise<void> {
  const { skews, pollMs } = options;
  // maxOffsetMs must exceed the skews the demo sets up, or the HLC (rightly) refuses
  // stamps from a node that far ahead.
  const maxOffsetMs = Math.max(500, Math.max(...skews) - Math.min(...skews) + 100);
  for (let i = 0; i < 3; i++) {
    const delays = PATH_DELAYS[i] ?? [0, 0];
    const skewMs = skews[i] ?? 0;
    const server = await createNtpServer({
      requestDelayMs: delays[0],
      responseDelayMs: delays[1],
    });
    const name = String.fromCharCode(65 + i);
    const clock = new TrueClock({
      source: ntpSource({
        servers: [server.address],
        pollIntervalMs: pollMs,
        samplesPerPoll: 1,
        sampleSpacingMs: 0,
        timeoutMs: 1000,
        name: `ntp-${name}`,
      }),
    });
    nodes.push({
      name,
      skewMs,
      delays,
      server,
      clock,
      hlc: new HybridLogicalClock({ node: name, physical: () => Date.now() + skewMs, maxOffsetMs }),
      wall: () => Date.now() + skewMs,
      commits: [],
      heldBack: [],
    });
  }
}

interface Tracer {
  readonly t0: number;
  readonly traces: readonly Trace[];
  stop(): void;
}

/** Samples every node's clock against true time every 20 ms, for the plot. */
function startTracing(nodes: readonly DemoNode[]): Tracer {
  // Truth is the reference servers' clock (all three share it: offset 0).
  const reference = nodes[0]?.server;
  const truth = (): number => reference?.trueNow() ?? Date.now();
  const t0 = truth();
  const traces: Trace[] = [];
  const trace = (): void => {
    const now = truth();
    nodes.forEach((n, i) => {
      const r = n.clock.now();
      traces.push({
        t: (now - t0) / 1000,
        node: i,
        epsilonMs: r.uncertaintyMs,
        errorMs: r.estimate - now,
        wallOffsetMs: n.wall() - now,
      });
    });
  };
  trace();
  let timer: ReturnType<typeof setInterval> | undefined = setInterval(trace, 20);
  return {
    t0,
    traces,
    stop() {
      if (timer === undefined) return;
      clearInterval(timer);
      timer = undefined;
      trace();
    },
  };
}

/** The schedule: each round, another node increments through every strategy. Returns the rounds completed. */
async function runRounds(
  options: CounterOptions,
  nodes: readonly DemoNode[],
  db: DemoDb,
  run: string,
  results: Record<StrategyId, StrategyResult>,
  io: CliIo,
  progress: Progress,
): Promise<number> {
  const { rounds } = options;
  const random = mulberry32(options.seed);
  let previous = -1;
  let completed = 0;
  for (let round = 1; round <= rounds && !io.signal.aborted; round++) {
    // Hand the counter to another node each round, after a short pause.
    let who = Math.floor(random() * 3);
    if (who === previous) who = (who + 1 + Math.floor(random() * 2)) % 3;
    previous = who;
    const node = nodes[who];
    if (node === undefined) break;
    await sleep(30 + random() * 90, io.signal);
    if (io.signal.aborted) break;
    try {
      for (const strategy of STRATEGIES) {
        const increment = await strategy.increment({
          db,
          run,
          key: KEY,
          node,
          signal: io.signal,
        });
        tally(results[strategy.id], increment, round, node.name);
      }
    } catch (error) {
      // Ctrl-C in the middle of a round: report what was done so far.
      if (io.signal.aborted) break;
      throw error;
    }
    completed = round;
    progress.update(
      `demo: round ${round}/${rounds} (node ${node.name})  LWW lost ${results.lww.lost}  ` +
        `HLC lost ${results.hlc.lost}  commit-wait lost ${results['commit-wait'].lost}`,
    );
  }
  return completed;
}

function tally(result: StrategyResult, increment: Increment, round: number, node: string): void {
  result.attempted++;
  if (increment.written) {
    result.kept++;
    return;
  }
  result.lost++;
  const { read, stampMs } = increment;
  if (result.firstLoss === undefined && read !== undefined && stampMs !== undefined) {
    result.firstLoss = {
      round,
      node,
      readValue: read.v,
      readStampMs: Number(read.ts),
      readBy: read.node,
      wroteStampMs: stampMs,
    };
  }
}

function writePlot(options: CounterOptions, outcome: CounterOutcome, tracer: Tracer): void {
  if (options.plotFile === undefined) return;
  const subtitle =
    `chronobound demo, ${new Date(tracer.t0).toISOString().slice(0, 19)}Z: 3 nodes, ` +
    `skews ${options.skews.join('/')} ms, poll ${options.pollMs} ms, drift bound 200 ppm`;
  writeFileSync(options.plotFile, plot(outcome.nodes, tracer.traces, subtitle));
}

function printOutcome(options: CounterOptions, outcome: CounterOutcome, io: CliIo): void {
  if (options.json) {
    io.stdout.write(counterJson(outcome, options.rounds, options.seed));
    return;
  }
  io.stdout.write(counterReport(outcome));
  if (outcome.completed < options.rounds) {
    io.stdout.write(`(interrupted after ${outcome.completed} of ${options.rounds} rounds)\n`);
  }
}
