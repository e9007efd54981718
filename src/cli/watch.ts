/**
 * `chronobound watch`: the uncertainty ε over time — the TrueTime sawtooth —
 * redrawn in place in a terminal, or streamed as JSON lines. Ctrl-C closes the
 * sockets and exits 0.
 *
 * @module
 */
import { formatUncertainty, formatUtcMicros } from '../truetime/format.js';
import { chronySource, readChronyTracking } from '../ntp/chrony.js';
import { ntpSource, type NtpSource } from '../ntp/source.js';
import { systemClockSource } from '../sources/system-clock-source.js';
import type { TimeSource } from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import type { TimeReading } from '../clock/types.js';
import { TrueClock } from '../truetime/true-clock.js';
import { clockFlags, formatHostPort, intFlag, numberFlag, timeSourceFlags } from './args.js';
import { clockCommandOptions, defineCommand, switchOptions } from './command.js';
import { ExitCode } from './errors.js';
import { signedMs } from './format.js';
import { sleep, type Command, type TextOut } from './io.js';
import { mergedSource } from './merged-source.js';

const OPTIONS = {
  ...clockCommandOptions('samples', 'interval-ms', 'count'),
  ...switchOptions('json'),
};

const HELP = `Usage: chronobound watch [options]

Shows ε (the half-width of [earliest, latest]) over time: it grows at the drift
bound between samples and drops when a sample arrives — the TrueTime sawtooth.

Options:
  --server host[:port]     poll this NTP server (repeatable)
  --chrony host[:port]     poll chronyd's tracking report (default port 323)
  --poll-ms N              NTP poll interval (default 16000; chronyd: 1000)
  --samples N              NTP exchanges per poll (default 1)
  --timeout-ms N           per-exchange timeout (default 1000)
  --max-drift-ppm N        drift bound, the slope of the sawtooth (default 200)
  --max-uncertainty-ms N   above this ε the clock is unsynchronized (default 50)
  --interval-ms N          redraw / output interval (default 250 on a terminal, else 1000)
  --count N                stop after N updates (default: until Ctrl-C)
  --json                   one JSON object per line instead of the live view
  -h, --help               show this help

With neither --server nor --chrony: the local chronyd (127.0.0.1:323) if it
answers, else the system clock (status unsynchronized).

Off a terminal, each line (or JSON object) carries the status and, while not
synchronized, the reason. Exit codes: 0 the clock was synchronized at least
once, 1 it never was during the run, 2 usage, 3 runtime error.
`;

/** Eighths of a block, for sub-row resolution in the terminal chart. */
const BLOCKS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/**
 * Renders `values` as a bar chart `height` rows tall, newest on the right,
 * scaled to [0, max]. Infinite values are drawn as full columns.
 * @internal
 */
export function renderChart(values: readonly number[], width: number, height: number): string[] {
  const shown = values.slice(-width);
  const finite = shown.filter((v) => Number.isFinite(v));
  const max = Math.max(...finite, 1e-9);
  const rows: string[] = [];
  for (let row = height - 1; row >= 0; row--) {
    let line = '';
    for (const v of shown) {
      const eighths = Number.isFinite(v)
        ? Math.round((Math.max(0, v) / max) * height * 8)
        : height * 8;
      const inRow = Math.min(8, Math.max(0, eighths - row * 8));
      line += BLOCKS[inRow] ?? ' ';
    }
    rows.push(line.padStart(width));
  }
  return rows;
}

interface Setup {
  readonly source: TimeSource;
  readonly label: string;
  readonly ntp?: NtpSource;
  readonly note?: string;
}

function sampleJson(sample: SyncSample | undefined, monoNow: number): object | null {
  if (sample === undefined) return null;
  return { source: sample.source, errorMs: sample.errorMs, ageMs: monoNow - sample.monotonicAt };
}

/** Why the clock is not synchronized, in one line; undefined when it is. */
function notSynchronizedBecause(
  reading: TimeReading,
  clock: TrueClock,
  maxUncertaintyMs: number,
): string | undefined {
  if (reading.status === 'synchronized') return undefined;
  const sample = clock.sample;
  if (reading.status === 'free-running' && sample !== undefined) {
    const ageS = (performance.now() - sample.monotonicAt) / 1000;
    return `no sample for ${ageS.toFixed(1)} s; the bound still holds`;
  }
  const problem = clock.lastProblem;
  if (problem !== undefined) return problem.message.replace(/\s+/g, ' ');
  if (sample === undefined) return 'no sample yet';
  if (sample.assumed === true) return `only an assumed bound (${sample.source})`;
  return `ε above --max-uncertainty-ms ${maxUncertaintyMs}`;
}

function statusLine(reading: TimeReading, reason?: string): string {
  const estimate = formatUtcMicros(reading.estimate);
  const status = `${estimate}  ε ${formatUncertainty(reading.uncertaintyMs).padStart(12)}  ${reading.status}`;
  return reason === undefined ? status : `${status}: ${reason}`;
}

function serverLines(ntp: NtpSource | undefined): string[] {
  if (ntp === undefined) return [];
  return ntp.servers().map((s) => {
    const best = s.best;
    const offset = best?.systemOffsetMs === undefined ? '—' : signedMs(best.systemOffsetMs);
    const delay = best === undefined ? '—' : `${best.delayMs.toFixed(3)} ms`;
    const role = s.selection === undefined ? '' : ` (${s.selection})`;
    const why =
      s.state !== 'ok' && s.lastRejection !== undefined ? `: ${s.lastRejection.reason}` : '';
    return `  ${s.server.padEnd(22)} offset ${offset.padStart(12)}  delay ${delay.padStart(10)}  stratum ${String(best?.stratum ?? '—').padStart(2)}  ${s.state}${role}${why}`;
  });
}

/** Redraws a block of lines in place: cursor up over the previous block, overwrite, clear. */
class LiveView {
  #previous = 0;
  constructor(private readonly out: TextOut) {}

  draw(lines: readonly string[]): void {
    const up = this.#previous > 0 ? `\x1b[${this.#previous}F` : '';
    this.out.write(`${up}${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`);
    this.#previous = lines.length;
  }
}

async function chooseSource(
  values: {
    server?: string[] | undefined;
    chrony?: string | undefined;
  },
  pollMs: number | undefined,
  samples: number,
  timeoutMs: number,
  maxDriftPpm: number,
): Promise<Setup> {
  const { servers, chrony } = timeSourceFlags(values);
  let ntp: NtpSource | undefined;
  if (servers.length > 0) {
    ntp = ntpSource({
      servers: servers.map(formatHostPort),
      pollIntervalMs: pollMs ?? 16_000,
      samplesPerPoll: samples,
      sampleSpacingMs: samples > 1 ? 1000 : 0,
      timeoutMs,
      maxDriftPpm,
    });
  }
  const chronyFor = (host: string, port: number): TimeSource =>
    chronySource({ host, port, pollIntervalMs: pollMs ?? 1000, timeoutMs, maxDriftPpm });
  if (ntp !== undefined && chrony !== undefined) {
    return {
      source: mergedSource(ntp, chronyFor(chrony.host, chrony.port)),
      label: `NTP ${servers.map(formatHostPort).join(', ')} + chronyd ${formatHostPort(chrony)}`,
      ntp,
    };
  }
  if (ntp !== undefined) {
    return { source: ntp, label: `NTP ${servers.map(formatHostPort).join(', ')}`, ntp };
  }
  if (chrony !== undefined) {
    return {
      source: chronyFor(chrony.host, chrony.port),
      label: `chronyd ${formatHostPort(chrony)}`,
    };
  }
  try {
    await readChronyTracking({ host: '127.0.0.1', port: 323, timeoutMs: 1000 });
    return { source: chronyFor('127.0.0.1', 323), label: 'chronyd 127.0.0.1:323' };
  } catch {
    return {
      source: systemClockSource({ assumedErrorMs: 1000 }),
      label: 'system clock (assumed ±1000 ms, unsynchronized)',
      note: 'no --server or --chrony given and no chronyd answered on 127.0.0.1:323; watching the system clock with an assumed ±1000 ms',
    };
  }
}

/**
 * Runs `chronobound watch`: until Ctrl-C or `--count` updates; exit code 1 when
 * the clock never synchronized within the run.
 * @internal
 */
export const runWatch: Command = defineCommand(
  { name: 'watch', options: OPTIONS, help: HELP },
  async (values, io) => {
    const live = values.json !== true && io.stdout.isTTY === true;
    const { pollMs, timeoutMs, maxDriftPpm, maxUncertaintyMs } = clockFlags(values);
    const samples = intFlag('--samples', values.samples, 1, 1, 64);
    const intervalMs = numberFlag(
      '--interval-ms',
      values['interval-ms'],
      live ? 250 : 1000,
      10,
      3_600_000,
    );
    const count = intFlag(
      '--count',
      values.count,
      Number.MAX_SAFE_INTEGER,
      1,
      Number.MAX_SAFE_INTEGER,
    );

    const setup = await chooseSource(values, pollMs, samples, timeoutMs, maxDriftPpm);
    if (setup.note !== undefined) io.stderr.write(`chronobound watch: ${setup.note}\n`);
    const clock = new TrueClock({ source: setup.source, maxDriftPpm, maxUncertaintyMs });
    const view = live ? new LiveView(io.stdout) : undefined;
    const history: number[] = [];
    let everSynchronized = false;
    if (live) io.stdout.write('\x1b[?25l');
    try {
      for (let i = 0; i < count && !io.signal.aborted; i++) {
        if (i > 0) await sleep(intervalMs, io.signal);
        if (io.signal.aborted) break;
        const reading = clock.now();
        if (reading.status === 'synchronized') everSynchronized = true;
        const reason = notSynchronizedBecause(reading, clock, maxUncertaintyMs);
        if (values.json === true) {
          const { earliest, latest, estimate, uncertaintyMs, status } = reading;
          const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
          io.stdout.write(
            `${JSON.stringify({
              earliest: finite(earliest),
              latest: finite(latest),
              estimate,
              uncertaintyMs: finite(uncertaintyMs),
              status,
              reason: reason ?? null,
              sample: sampleJson(clock.sample, performance.now()),
            })}\n`,
          );
        } else if (view !== undefined) {
          history.push(reading.uncertaintyMs);
          const width = Math.max(20, Math.min(200, (io.stdout.columns ?? 80) - 4));
          if (history.length > width) history.splice(0, history.length - width);
          const finite = history.filter((v) => Number.isFinite(v));
          const peak = finite.length > 0 ? Math.max(...finite) : 0;
          const span = ((history.length * intervalMs) / 1000).toFixed(0);
          view.draw([
            `chronobound watch — ${setup.label} — Ctrl-C to stop`,
            '',
            `  ${statusLine(reading)}`,
            '',
            `  ε over the last ${span} s (top = ${peak.toFixed(3)} ms, ${(intervalMs / 1000).toFixed(2)} s per column)`,
            ...renderChart(history, width, 8).map((l) => `  ${l}`),
            '',
            ...serverLines(setup.ntp),
            ...(reason !== undefined ? [`  not synchronized: ${reason}`] : []),
          ]);
        } else {
          io.stdout.write(`${statusLine(reading, reason)}\n`);
        }
      }
    } finally {
      if (live) io.stdout.write('\x1b[?25h');
      await clock.close();
    }
    if (everSynchronized) return ExitCode.ok;
    io.stderr.write(
      `chronobound watch: never synchronized during the run (time from ${setup.label})\n`,
    );
    return ExitCode.unsynchronized;
  },
);
