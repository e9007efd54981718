/**
 * What `chronobound demo` prints: the report of the counter demo, as text or
 * JSON, and its SVG plot.
 *
 * @module
 */
import { formatUtcMicros } from '../truetime/format.js';
import type { DemoDb } from './demo-db.js';
import { mean, STRATEGIES, type DemoNode, type StrategyId } from './demo-strategies.js';
import { ms, signedMs, table } from './format.js';
import { lineChart, paletteColor, stackCharts } from './svg.js';

/** An increment the database silently dropped. @internal */
export interface LostWrite {
  readonly round: number;
  readonly node: string;
  readonly readValue: number;
  readonly readStampMs: number;
  readonly readBy: string;
  readonly wroteStampMs: number;
}

/** One strategy's tally. @internal */
export interface StrategyResult {
  attempted: number;
  kept: number;
  lost: number;
  finalValue: number;
  firstLoss?: LostWrite;
}

/** One sample of every node's clock, for the plot. @internal */
export interface Trace {
  readonly t: number;
  readonly node: number;
  readonly epsilonMs: number;
  readonly errorMs: number;
  readonly wallOffsetMs: number;
}

/** What the counter demo measured. @internal */
export interface CounterOutcome {
  readonly db: DemoDb;
  readonly nodes: readonly DemoNode[];
  readonly wallOffsets: readonly number[];
  readonly results: Record<StrategyId, StrategyResult>;
  readonly completed: number;
  readonly elapsedS: number;
  readonly plotFile: string | undefined;
}

/** The demo's tables set their columns three spaces apart. @internal */
export const DEMO_COLUMN_GAP = '   ';

/**
 * The two stacked charts: ε per node, and offsets from true time.
 * @internal
 */
export function plot(
  nodes: readonly DemoNode[],
  traces: readonly Trace[],
  subtitle: string,
): string {
  const eps = lineChart({
    title: 'ε per node: the TrueTime sawtooth',
    subtitle,
    xLabel: 'seconds',
    yLabel: 'ε (ms)',
    yInclude: [0],
    lines: nodes.map((n, i) => ({
      name: `${n.name} (path ${n.delays[0]}/${n.delays[1]} ms)`,
      color: paletteColor(i),
      points: traces.filter((t) => t.node === i).map((t) => [t.t, t.epsilonMs] as const),
    })),
  });
  const offsets = lineChart({
    title: 'Offset from true time: wall clocks (dashed) vs TrueClock estimate ± ε (bands)',
    xLabel: 'seconds',
    yLabel: 'offset (ms)',
    yInclude: [0],
    bands: nodes.map((n, i) => ({
      name: `${n.name} TrueClock ± ε`,
      color: paletteColor(i),
      points: traces
        .filter((t) => t.node === i)
        .map((t) => [t.t, t.errorMs - t.epsilonMs, t.errorMs + t.epsilonMs] as const),
    })),
    lines: nodes.map((n, i) => ({
      name: `${n.name} wall clock`,
      color: paletteColor(i),
      dashed: true,
      points: traces.filter((t) => t.node === i).map((t) => [t.t, t.wallOffsetMs] as const),
    })),
  });
  return stackCharts([eps, offsets]);
}

/** Per node: the commit-wait figures the report and the JSON share (means, ms). */
function commitFigures(n: DemoNode): {
  epsilonMs: number;
  writeMs: number;
  waitMs: number;
  lateMs: number;
} {
  return {
    epsilonMs: mean(n.commits.map((c) => c.epsilonMs)),
    writeMs: mean(n.commits.map((c) => c.writeMs)),
    waitMs: mean(n.commits.map((c) => c.waitedMs)),
    lateMs: mean(n.commits.map((c) => c.lateMs)),
  };
}

/**
 * The counter demo's result as one JSON object.
 * @internal
 */
export function counterJson(outcome: CounterOutcome, rounds: number, seed: number): string {
  const { db, nodes, wallOffsets, results, completed, elapsedS, plotFile } = outcome;
  return `${JSON.stringify({
    database: db.description,
    rounds,
    completed,
    seed,
    elapsedS,
    plot: plotFile ?? null,
    nodes: nodes.map((n, i) => {
      const f = commitFigures(n);
      return {
        name: n.name,
        skewMs: n.skewMs,
        wallOffsetMs: wallOffsets[i],
        pathDelayMs: n.delays,
        commits: n.commits.length,
        meanEpsilonMs: f.epsilonMs,
        meanWriteMs: f.writeMs,
        meanWaitMs: f.waitMs,
        meanLateMs: f.lateMs,
        heldBack: n.heldBack.length,
      };
    }),
    results,
  })}\n`;
}

/**
 * The counter demo's report, for people.
 * @internal
 */
export function counterReport(outcome: CounterOutcome): string {
  const { db, nodes, wallOffsets, results, completed, elapsedS, plotFile } = outcome;
  const lines: string[] = [
    `chronobound demo: 3 nodes, ${completed} read-modify-write increments of one counter row`,
    `database: ${db.description}`,
    'time: one loopback NTP reference server per node; TrueClock ignores the skewed wall clocks',
    '',
    table(
      [
        ['node', 'wall clock vs true time', 'NTP path (out/back)', 'mean ε at commit'],
        ...nodes.map((n, i) => [
          n.name,
          signedMs(wallOffsets[i] ?? 0, 1),
          `${n.delays[0]}/${n.delays[1]} ms`,
          ms(commitFigures(n).epsilonMs),
        ]),
      ],
      DEMO_COLUMN_GAP,
    ),
    '',
    table(
      [
        ['', ...STRATEGIES.map((s) => s.title)],
        ['increments written', ...STRATEGIES.map((s) => String(results[s.id].attempted))],
        ['final counter', ...STRATEGIES.map((s) => String(results[s.id].finalValue))],
        ['silently lost', ...STRATEGIES.map((s) => String(results[s.id].lost))],
        [
          'extra latency per write',
          ...STRATEGIES.map((s) => {
            const extra = s.extraLatencyMs(nodes);
            return extra === 0 ? '0' : ms(extra);
          }),
        ],
      ],
      DEMO_COLUMN_GAP,
    ),
    '',
    ...lossLines(results.lww.firstLoss),
    'HLC: every write received the stamp it read, so it is ordered after it whatever the skew.',
    'Commit-wait: no stamps exchanged; each write waits until its timestamp has definitely passed:',
    '',
    ...commitWaitLines(nodes),
    `(finished in ${elapsedS.toFixed(1)} s)`,
  ];
  const held = nodes.flatMap((n) => n.heldBack.map((h) => `${n.name} (${h.status})`));
  if (held.length > 0) {
    lines.push(
      `${held.length} commit(s) refused at first, failing closed, and acknowledged only after the next`,
      `  NTP sample: ${held.join(', ')}. A 'disrupted' clock means the watchdog saw the wall and`,
      '  monotonic clocks disagree beyond the drift bound (a pause, a step, or a busy machine).',
    );
  }
  if (plotFile !== undefined) lines.push(`plot: ${plotFile}`);
  lines.push('');
  return lines.join('\n');
}

function lossLines(loss: LostWrite | undefined): string[] {
  if (loss === undefined) {
    return ['Wall-clock LWW lost nothing this time: try larger --skew-ms or more --rounds.', ''];
  }
  return [
    `First lost increment (wall-clock LWW), round ${loss.round}: node ${loss.node} read counter = ${loss.readValue},`,
    `  stamped ${formatUtcMicros(loss.readStampMs).slice(11, 23)}Z by node ${loss.readBy}'s clock, and wrote ${loss.readValue + 1}`,
    `  stamped ${formatUtcMicros(loss.wroteStampMs).slice(11, 23)}Z by its own clock, ${
      loss.readStampMs === loss.wroteStampMs
        ? `the same millisecond: a tie, which LWW gives to the larger node name (${loss.readBy})`
        : `${loss.readStampMs - loss.wroteStampMs} ms "earlier"`
    }.`,
    `  The upsert kept ${loss.readValue}: no error, the increment is simply gone.`,
    '',
  ];
}

/**
 * The commit-wait table and what its numbers mean. The acknowledgement comes
 * once `earliest` passes `s = latest` at the stamp: 2ε after the stamp (the
 * interval's width), plus however late the wait woke after that moment. The
 * write runs inside that time, not on top of it. Both parts are measured.
 */
function commitWaitLines(nodes: readonly DemoNode[]): string[] {
  const measured = nodes.filter((n) => n.commits.length > 0);
  const rows = nodes.map((n) => {
    const f = commitFigures(n);
    const total = f.writeMs + f.waitMs;
    if (n.commits.length === 0) return [n.name, '0', '—', '—', '—', '—'];
    return [
      n.name,
      String(n.commits.length),
      ms(f.epsilonMs),
      ms(total),
      f.epsilonMs > 0 ? `${(total / f.epsilonMs).toFixed(2)} ε` : '—',
      ms(f.lateMs),
    ];
  });
  const late = mean(measured.map((n) => commitFigures(n).lateMs));
  const write = mean(measured.map((n) => commitFigures(n).writeMs));
  return [
    table(
      [['node', 'writes', 'mean ε', 'write + wait', 'in ε', 'woke late by'], ...rows],
      DEMO_COLUMN_GAP,
    ),
    '',
    '(each acknowledgement waits from its stamp s = latest until earliest > s: 2ε, the width of',
    `  the interval, plus how late the wait woke after that moment — ${ms(late, 2)} on average here,`,
    `  timer and event-loop delay on this machine; the write, ${ms(write, 2)}, overlaps the wait)`,
  ];
}
