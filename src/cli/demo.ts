/**
 * `chronobound demo`: the problem and the fixes, on real components.
 *
 * Three simulated nodes whose wall clocks are skewed take turns incrementing
 * one counter row in a real database (SQLite in a temp file, or PostgreSQL):
 * read the row, write value + 1 with a timestamp, through a last-write-wins
 * upsert. Every increment is causally after the one it read. The same schedule
 * runs three ways, side by side:
 *
 * - wall-clock LWW: the writer's own clock stamps the write; a node whose clock
 *   is behind writes a "past" timestamp and the database silently drops it;
 * - HLC: the hybrid logical clock receives the stamp it read, so its stamp is
 *   always larger, whatever the skew;
 * - commit-wait: each node's TrueClock (NTP against a loopback reference server,
 *   one per node with its own network delay) picks `s = now().latest` and holds
 *   the acknowledgement until `now().earliest > s`: correct order across nodes
 *   without exchanging stamps, at a price of about 2ε per write.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ClockUnsynchronizedError, InvalidArgumentError } from '../errors.js';
import { mulberry32 } from '../_internals/prng.js';
import { formatUtcMicros } from '../truetime/format.js';
import { HybridLogicalClock } from '../logical/hlc.js';
import { hlcToBigInt } from '../logical/hlc-codec.js';
import { stampWrite } from '../logical/stamp.js';
import { ntpSource } from '../ntp/source.js';
import { createNtpServer, type LoopbackNtpServer } from '../testing/node/index.js';
import { toNanosBigInt } from '../truetime/interval.js';
import { TrueClock } from '../truetime/true-clock.js';
import { guardUsage, intFlag, numberFlag } from './args.js';
import { openPostgres, openSqlite, type DemoDb } from './demo-db.js';
import { ExitCode } from './errors.js';
import { sleep, type CliIo } from './io.js';
import { lineChart, paletteColor, stackCharts } from './svg.js';

const OPTIONS = {
  rounds: { type: 'string' },
  'skew-ms': { type: 'string' },
  'poll-ms': { type: 'string' },
  seed: { type: 'string' },
  postgres: { type: 'string' },
  plot: { type: 'string' },
  'no-plot': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const HELP = `Usage: chronobound demo [options]

Three nodes with skewed clocks increment one counter row, each increment
causally after the last. Side by side: wall-clock last-write-wins silently
loses increments, a hybrid logical clock keeps them, and commit-wait keeps
them too, at a cost of about 2ε per write.

Options:
  --rounds N          increments (default 40)
  --skew-ms A,B,C     the three wall clocks' skews (default 0,-45,30)
  --poll-ms N         NTP poll interval of each node (default 1000)
  --seed N            seed for the schedule (default 42)
  --postgres URL      use PostgreSQL (needs the pg package) instead of SQLite
  --plot FILE         where to write the SVG (default chronobound-demo.svg)
  --no-plot           do not write the SVG
  --json              print the results as JSON
  -h, --help          show this help

Uses SQLite through better-sqlite3 (npm install better-sqlite3) in a temporary
file that is deleted afterwards, and three loopback NTP servers on free ports.
`;

const STRATEGIES = ['lww', 'hlc', 'commit-wait'] as const;
type Strategy = (typeof STRATEGIES)[number];

const STRATEGY_TITLE: Record<Strategy, string> = {
  lww: 'wall-clock LWW',
  hlc: 'HLC',
  'commit-wait': 'commit-wait',
};

/** One-way delays (request/reply, ms) of each node's path to its reference server. */
const PATH_DELAYS: readonly (readonly [number, number])[] = [
  [0, 0],
  [1, 3],
  [4, 4],
];

interface DemoNode {
  readonly name: string;
  readonly skewMs: number;
  readonly delays: readonly [number, number];
  readonly server: LoopbackNtpServer;
  readonly clock: TrueClock;
  readonly hlc: HybridLogicalClock;
  /** The node's (skewed) wall clock, in whole ms like Date.now(). */
  wall(): number;
  readonly commits: { readonly epsilonMs: number; readonly waitedMs: number }[];
  /** Commits the clock refused at first (fail-closed) and acknowledged after recovering. */
  readonly heldBack: { readonly status: string; readonly startedAt: number }[];
}

interface LostWrite {
  readonly round: number;
  readonly node: string;
  readonly readValue: number;
  readonly readStampMs: number;
  readonly readBy: string;
  readonly wroteStampMs: number;
}

interface StrategyResult {
  attempted: number;
  kept: number;
  lost: number;
  finalValue: number;
  firstLoss?: LostWrite;
}

interface Trace {
  readonly t: number;
  readonly node: number;
  readonly epsilonMs: number;
  readonly errorMs: number;
  readonly wallOffsetMs: number;
}

function parseSkews(value: string | undefined): number[] {
  if (value === undefined) return [0, -45, 30];
  const parts = value.split(',');
  if (parts.length !== 3) {
    throw new InvalidArgumentError(
      '--skew-ms',
      value,
      'three comma-separated numbers, e.g. 0,-45,30',
    );
  }
  return parts.map((p) => numberFlag('--skew-ms', p, 0, -400, 400));
}

/** One line on stderr: rewritten in place on a terminal, else at most one line a second. */
class Progress {
  readonly #io: CliIo;
  #lastLineAt = -Infinity;
  constructor(io: CliIo) {
    this.#io = io;
  }
  update(text: string, force: boolean = false): void {
    if (this.#io.stderr.isTTY === true) {
      this.#io.stderr.write(`\r\x1b[K${text}`);
      return;
    }
    const now = performance.now();
    if (force || now - this.#lastLineAt >= 1000) {
      this.#io.stderr.write(`${text}\n`);
      this.#lastLineAt = now;
    }
  }
  done(): void {
    if (this.#io.stderr.isTTY === true) this.#io.stderr.write('\r\x1b[K');
  }
}

function ms(value: number, digits: number = 3): string {
  return `${value.toFixed(digits)} ms`;
}

function signedMs(value: number, digits: number = 1): string {
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)} ms`;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((v, c) => v.padEnd(widths[c] ?? 0))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

function plot(nodes: readonly DemoNode[], traces: readonly Trace[], subtitle: string): string {
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

/**
 * Runs `chronobound demo`.
 * @internal
 */
export async function runDemo(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = guardUsage('demo', Object.keys(OPTIONS), argv, () =>
    parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: OPTIONS }),
  );
  if (values.help === true) {
    io.stdout.write(HELP);
    return ExitCode.ok;
  }
  const rounds = intFlag('--rounds', values.rounds, 40, 1, 10_000);
  const skews = parseSkews(values['skew-ms']);
  const pollMs = numberFlag('--poll-ms', values['poll-ms'], 1000, 50, 600_000);
  const seed = intFlag('--seed', values.seed, 42, 0, 2 ** 32 - 1);
  const plotFile =
    values['no-plot'] === true ? undefined : resolve(io.cwd, values.plot ?? 'chronobound-demo.svg');
  if (values['no-plot'] === true && values.plot !== undefined) {
    throw new InvalidArgumentError('--plot', values.plot, 'no --plot together with --no-plot');
  }

  const progress = new Progress(io);
  const started = performance.now();
  progress.update('demo: opening the database…', true);
  const db: DemoDb =
    values.postgres === undefined ? await openSqlite() : await openPostgres(values.postgres);
  const nodes: DemoNode[] = [];
  const run = `${Date.now().toString(36)}-${seed}`;
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    progress.update('demo: starting 3 loopback NTP servers and synchronizing 3 TrueClocks…', true);
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
        // maxOffsetMs must exceed the skews the demo sets up, or the HLC (rightly) refuses
        // stamps from a node that far ahead.
        hlc: new HybridLogicalClock({
          node: name,
          physical: () => Date.now() + skewMs,
          maxOffsetMs: Math.max(500, Math.max(...skews) - Math.min(...skews) + 100),
        }),
        wall: () => Date.now() + skewMs,
        commits: [],
        heldBack: [],
      });
    }
    await Promise.all(nodes.map((n) => n.clock.ready({ timeoutMs: 10_000, signal: io.signal })));

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
    sampler = setInterval(trace, 20);

    const results: Record<Strategy, StrategyResult> = {
      lww: { attempted: 0, kept: 0, lost: 0, finalValue: 0 },
      hlc: { attempted: 0, kept: 0, lost: 0, finalValue: 0 },
      'commit-wait': { attempted: 0, kept: 0, lost: 0, finalValue: 0 },
    };
    const random = mulberry32(seed);
    let previous = -1;
    let completed = 0;
    const key = 'counter';
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
        // Wall-clock LWW: stamp with the writer's own clock.
        {
          const row = await db.read(run, 'lww', key);
          const stamp = node.wall();
          const next = (row?.v ?? 0) + 1;
          const ok = await db.upsert(run, 'lww', key, next, BigInt(stamp), node.name);
          tally(results.lww, ok, round, node.name, row, stamp);
        }
        // HLC: the stamp read is received first, so the new stamp is larger.
        {
          const row = await db.read(run, 'hlc', key);
          const next = (row?.v ?? 0) + 1;
          const { result: ok } = await stampWrite(
            node.hlc,
            (ts) => db.upsert(run, 'hlc', key, next, hlcToBigInt(ts), ts.node),
            row === undefined ? {} : { after: row.ts, node: row.node },
          );
          tally(results.hlc, ok, round, node.name, row, undefined);
        }
        // Commit-wait: s = now().latest; acknowledge once now().earliest > s.
        {
          const row = await db.read(run, 'commit-wait', key);
          const next = (row?.v ?? 0) + 1;
          const ok = await commitWithRecovery(node, io.signal, (s) =>
            db.upsert(run, 'commit-wait', key, next, toNanosBigInt(s), node.name),
          );
          tally(results['commit-wait'], ok, round, node.name, row, undefined);
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
    clearInterval(sampler);
    sampler = undefined;
    trace();
    for (const s of STRATEGIES) {
      results[s].finalValue = (await db.read(run, s, key))?.v ?? 0;
    }
    progress.done();
    const elapsedS = (performance.now() - started) / 1000;

    if (plotFile !== undefined) {
      const subtitle =
        `chronobound demo, ${new Date(t0).toISOString().slice(0, 19)}Z: 3 nodes, ` +
        `skews ${skews.join('/')} ms, poll ${pollMs} ms, drift bound 200 ppm`;
      writeFileSync(plotFile, plot(nodes, traces, subtitle));
    }

    const wallOffsets = nodes.map((_, i) =>
      mean(traces.filter((t) => t.node === i).map((t) => t.wallOffsetMs)),
    );
    if (values.json === true) {
      io.stdout.write(
        `${JSON.stringify({
          database: db.description,
          rounds,
          completed,
          seed,
          elapsedS,
          plot: plotFile ?? null,
          nodes: nodes.map((n, i) => ({
            name: n.name,
            skewMs: n.skewMs,
            wallOffsetMs: wallOffsets[i],
            pathDelayMs: n.delays,
            commits: n.commits.length,
            meanEpsilonMs: mean(n.commits.map((c) => c.epsilonMs)),
            meanWaitMs: mean(n.commits.map((c) => c.waitedMs)),
            heldBack: n.heldBack.length,
          })),
          results,
        })}\n`,
      );
    } else {
      io.stdout.write(report(db, nodes, wallOffsets, results, completed, elapsedS, plotFile));
      if (completed < rounds)
        io.stdout.write(`(interrupted after ${completed} of ${rounds} rounds)\n`);
    }
    if (results.hlc.lost > 0 || results['commit-wait'].lost > 0) {
      io.stderr.write(
        'chronobound demo: unexpected: HLC or commit-wait lost a write; please report this\n',
      );
      return ExitCode.runtime;
    }
    return ExitCode.ok;
  } finally {
    progress.done();
    if (sampler !== undefined) clearInterval(sampler);
    await Promise.all(
      nodes.map(async (n) => {
        await n.clock.close();
        await n.server.close();
      }),
    );
    await db.close();
  }
}

/** Resolves once the clock can stand behind its bound again (after the next sample). */
function untilTrusted(clock: TrueClock, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const trusted = (): boolean => clock.status === 'synchronized' || clock.status === 'free-running';
  if (trusted()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error): void => {
      off();
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onAbort = (): void => finish(new Error('interrupted'));
    const off = clock.onStatusChange(() => {
      if (trusted()) finish();
    });
    const timer = setTimeout(
      () => finish(new Error(`the clock did not recover within ${timeoutMs} ms`)),
      timeoutMs,
    );
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Commit-wait, failing closed: if the clock refuses (e.g. the watchdog saw the
 * wall and monotonic clocks disagree), the write is not acknowledged until the
 * clock is trusted again and its timestamp has definitely passed. Waits held
 * back this way are counted apart from the ordinary ~2ε ones.
 */
async function commitWithRecovery(
  node: DemoNode,
  signal: AbortSignal,
  write: (s: number) => Promise<boolean>,
): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    let stamp: number | undefined;
    let written: boolean | undefined;
    const epsilonMs = node.clock.now().uncertaintyMs;
    const started = performance.now();
    try {
      const { result, waitedMs } = await node.clock.commitWait(
        async (s) => {
          stamp = s;
          written = await write(s);
          return written;
        },
        { timeoutMs: 5000, signal },
      );
      node.commits.push({ epsilonMs, waitedMs });
      return result;
    } catch (error) {
      if (!(error instanceof ClockUnsynchronizedError) || attempt >= 3) throw error;
      node.heldBack.push({ status: error.status, startedAt: started });
      await untilTrusted(node.clock, 10_000, signal);
      if (stamp === undefined || written === undefined) continue; // nothing was written: retry
      await node.clock.waitUntilAfter(stamp, { timeoutMs: 5000, signal });
      return written;
    }
  }
}

function tally(
  result: StrategyResult,
  ok: boolean,
  round: number,
  node: string,
  row: { v: number; ts: bigint | string; node: string } | undefined,
  wroteStampMs: number | undefined,
): void {
  result.attempted++;
  if (ok) {
    result.kept++;
    return;
  }
  result.lost++;
  if (result.firstLoss === undefined && row !== undefined && wroteStampMs !== undefined) {
    result.firstLoss = {
      round,
      node,
      readValue: row.v,
      readStampMs: Number(row.ts),
      readBy: row.node,
      wroteStampMs,
    };
  }
}

function report(
  db: DemoDb,
  nodes: readonly DemoNode[],
  wallOffsets: readonly number[],
  results: Record<Strategy, StrategyResult>,
  rounds: number,
  elapsedS: number,
  plotFile: string | undefined,
): string {
  const lines: string[] = [
    `chronobound demo: 3 nodes, ${rounds} read-modify-write increments of one counter row`,
    `database: ${db.description}`,
    'time: one loopback NTP reference server per node; TrueClock ignores the skewed wall clocks',
    '',
    table([
      ['node', 'wall clock vs true time', 'NTP path (out/back)', 'mean ε at commit'],
      ...nodes.map((n, i) => [
        n.name,
        signedMs(wallOffsets[i] ?? 0),
        `${n.delays[0]}/${n.delays[1]} ms`,
        ms(mean(n.commits.map((c) => c.epsilonMs))),
      ]),
    ]),
    '',
    table([
      ['', ...STRATEGIES.map((s) => STRATEGY_TITLE[s])],
      ['increments written', ...STRATEGIES.map((s) => String(results[s].attempted))],
      ['final counter', ...STRATEGIES.map((s) => String(results[s].finalValue))],
      ['silently lost', ...STRATEGIES.map((s) => String(results[s].lost))],
      [
        'extra latency per write',
        '0',
        '0',
        ms(mean(nodes.flatMap((n) => n.commits.map((c) => c.waitedMs)))),
      ],
    ]),
    '',
  ];
  const loss = results.lww.firstLoss;
  if (loss !== undefined) {
    lines.push(
      `First lost increment (wall-clock LWW), round ${loss.round}: node ${loss.node} read counter = ${loss.readValue},`,
      `  stamped ${formatUtcMicros(loss.readStampMs).slice(11, 23)}Z by node ${loss.readBy}'s clock, and wrote ${loss.readValue + 1}`,
      `  stamped ${formatUtcMicros(loss.wroteStampMs).slice(11, 23)}Z by its own clock, ${loss.readStampMs - loss.wroteStampMs} ms "earlier".`,
      `  The upsert kept ${loss.readValue}: no error, the increment is simply gone.`,
      '',
    );
  } else {
    lines.push('Wall-clock LWW lost nothing this time: try larger --skew-ms or more --rounds.', '');
  }
  lines.push(
    'HLC: every write received the stamp it read, so it is ordered after it whatever the skew.',
    'Commit-wait: no stamps exchanged; each write waits until its timestamp has definitely passed:',
    '',
    table([
      ['node', 'writes', 'mean ε', 'mean wait', 'wait / ε'],
      ...nodes.map((n) => {
        const e = mean(n.commits.map((c) => c.epsilonMs));
        const w = mean(n.commits.map((c) => c.waitedMs));
        return [n.name, String(n.commits.length), ms(e), ms(w), e > 0 ? (w / e).toFixed(2) : '—'];
      }),
    ]),
    '',
    `(the wait is about 2ε, less the time the write itself took; finished in ${elapsedS.toFixed(1)} s)`,
  );
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
