/**
 * `chronobound now`: one honest reading from NTP servers, chronyd, or — when
 * neither answers — the system clock, labelled `unsynchronized`.
 *
 * The NTP servers are one `ntpSource`: its first round asks each `--samples`
 * times, its clock filter keeps each server's best exchange, and its
 * selection (Marzullo's intersection) casts out falsetickers. chronyd, when
 * asked too, is one more vote. The agreed offset and bound feed a `TrueClock`,
 * whose `now()` is printed.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { formatUtcMicros } from '../truetime/format.js';
import { NTS_KE_PORT } from '../ntp/nts/ke.js';
import { systemClockSource } from '../sources/system-clock-source.js';
import type { TimeSource } from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import type { TimeReading } from '../clock/types.js';
import { TrueClock } from '../truetime/true-clock.js';
import { formatHostPort, intFlag, numberFlag, timeSourceFlags } from './args.js';
import { defineCommand, switchOptions, TIME_SOURCE_OPTIONS, valueOptions } from './command.js';
import { ExitCode } from './errors.js';
import { signedMs, table } from './format.js';
import type { Command } from './io.js';
import { ask, cliWords, type Asked, type ServerReport } from './now-servers.js';

const OPTIONS = {
  ...TIME_SOURCE_OPTIONS,
  ...valueOptions(
    'nts-ca',
    'samples',
    'interval-ms',
    'timeout-ms',
    'max-uncertainty-ms',
    'assumed-error-ms',
  ),
  ...switchOptions('nts', 'json'),
};

const HELP = `Usage: chronobound now [options]

Prints one reading [earliest, latest] that contains true time.

Options:
  --server host[:port]     ask this NTP server (repeatable; default port 123)
  --nts                    authenticate with NTS (RFC 8915): each --server names an
                           NTS-KE server, host[:port] with default port 4460
  --nts-ca FILE            trust only this CA certificate (PEM) for NTS-KE, instead of
                           the system store (needs --nts)
  --chrony host[:port]     read chronyd's tracking report (default port 323)
  --samples N              exchanges per NTP server; the clock filter keeps the best one
                           (default 1); a server that does not answer is not asked again
  --interval-ms N          pause between exchanges with one server (default 1000; be polite
                           to public servers)
  --timeout-ms N           per-exchange timeout (default 2000; an NTS key exchange gets
                           at least 5000)
  --max-uncertainty-ms N   above this ε the reading is unsynchronized (default 50)
  --assumed-error-ms N     error assumed for the system clock fallback (default 1000)
  --json                   print one JSON object instead of text
  -h, --help               show this help

With neither --server nor --chrony, the local chronyd (127.0.0.1:323) is used if
it answers, otherwise the system clock with an assumed error, honestly reported
as unsynchronized.

Exit codes: 0 synchronized, 1 not synchronized / no usable server, 2 usage, 3 runtime error.
`;

/**
 * A row of the JSON `servers` array: the report, and its server again under the
 * old name `address`, kept for one version (deprecated; see docs/cli.md).
 * @internal
 */
export interface ServerJson extends ServerReport {
  /** @deprecated The same as `server`; removed in the next minor version. */
  readonly address: string;
}

/** What `--json` prints. @internal */
export interface NowJson {
  readonly earliest: number | null;
  readonly latest: number | null;
  readonly estimate: number;
  readonly uncertaintyMs: number | null;
  readonly status: TimeReading['status'];
  readonly source: string;
  readonly servers: readonly ServerJson[];
}

/** Reads the `--nts-ca` file, or refuses the flag. */
function readCa(file: string | undefined, nts: boolean): string | undefined {
  if (file === undefined) return undefined;
  if (!nts) throw new InvalidArgumentError('--nts-ca', file, 'to be given with --nts');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const why = typeof code === 'string' ? code : String(error);
    throw new InvalidArgumentError('--nts-ca', file, `a readable PEM file (${why})`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new InvalidArgumentError('--nts-ca', file, 'a PEM file with a CERTIFICATE block');
  }
  return text;
}

/** A source that delivers one fixed sample: the reading is computed by TrueClock. */
function oneSample(sample: SyncSample): TimeSource {
  return {
    subscribe(onSample) {
      onSample(sample);
      return () => undefined;
    },
    close: () => Promise.resolve(),
  };
}

async function readClock(
  source: TimeSource,
  maxUncertaintyMs: number,
): Promise<{ reading: TimeReading; problem: string | undefined }> {
  const clock = new TrueClock({ source, maxUncertaintyMs, watchdogIntervalMs: 0 });
  try {
    // The clock's own refusal (e.g. the panic threshold) says why it is not synchronized.
    return { reading: clock.now(), problem: clock.lastProblem?.message };
  } finally {
    await clock.close();
  }
}

function cell(value: number | null, format: (v: number) => string): string {
  return value === null ? '—' : format(value);
}

function human(reading: TimeReading, sourceName: string, reports: readonly ServerReport[]): string {
  const ts = (ms: number): string =>
    Number.isFinite(ms) ? formatUtcMicros(ms) : ms > 0 ? '+∞' : '−∞';
  const eps = Number.isFinite(reading.uncertaintyMs)
    ? `± ${reading.uncertaintyMs.toFixed(3)} ms`
    : '± ∞';
  const lines = [
    `earliest  ${ts(reading.earliest)}`,
    `estimate  ${ts(reading.estimate)}`,
    `latest    ${ts(reading.latest)}`,
    `ε         ${eps}`,
    `status    ${reading.status}`,
    `source    ${sourceName}`,
    '',
  ];
  const rows = [['server', 'offset', 'delay', 'stratum', 'λ', 'result']];
  for (const r of reports) {
    rows.push([
      r.server,
      cell(r.offsetMs, (v) => signedMs(v)),
      cell(r.delayMs, (v) => `${v.toFixed(3)} ms`),
      cell(r.stratum, String),
      cell(r.errorMs, (v) => `${v.toFixed(3)} ms`),
      r.accepted ? 'accepted' : (r.reason ?? 'rejected'),
    ]);
  }
  lines.push(table(rows), '');
  return lines.join('\n');
}

function toJson(reading: TimeReading, source: string, servers: readonly ServerReport[]): NowJson {
  const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return {
    earliest: finite(reading.earliest),
    latest: finite(reading.latest),
    estimate: reading.estimate,
    uncertaintyMs: finite(reading.uncertaintyMs),
    status: reading.status,
    source,
    servers: servers.map((r) => ({ ...r, address: r.server })),
  };
}

/** What the reading rests on: its name, the source that gives it and, if unsynchronized, why. */
interface Basis {
  /** The report rows, falsetickers marked, and the system clock's when it is used. */
  readonly reports: readonly ServerReport[];
  readonly sourceName: string;
  readonly source: TimeSource;
  readonly note: string | undefined;
}

/**
 * The agreed sample, or the system clock with an assumed error and why; marks
 * falsetickers (or, without a majority, every answer) in the report rows.
 */
function basis(asked: Asked, explicit: boolean, assumedErrorMs: number): Basis {
  const { selection } = asked;
  const reports = [...asked.reports];
  if (selection?.ok === true) {
    const falsetickers = new Set(selection.falsetickers);
    for (const [i, r] of reports.entries()) {
      if (falsetickers.has(r.server)) {
        reports[i] = {
          ...r,
          accepted: false,
          reason: 'falseticker: outside the majority’s interval',
        };
      }
    }
    const answered = selection.intervals.length;
    const sourceName =
      answered === 1
        ? (selection.truechimers[0] ?? 'ntp')
        : `${selection.truechimers.length} of ${answered} servers agree (Marzullo)`;
    const { monotonicAt, offsetMs, errorMs } = selection;
    const source = oneSample({ monotonicAt, offsetMs, errorMs, source: sourceName });
    return { reports, sourceName, source, note: undefined };
  }
  const answered = selection?.intervals.length ?? 0;
  const noMajority =
    selection?.ok !== false || selection.reason !== 'no-majority'
      ? undefined
      : answered <= selection.maxFalsetickers
        ? `no majority: ${answered} of ${selection.configured} configured sources answered, and up to ${selection.maxFalsetickers} may be wrong`
        : 'no majority: the answers do not overlap';
  if (noMajority !== undefined) {
    for (const [i, r] of reports.entries()) {
      if (r.accepted) reports[i] = { ...r, accepted: false, reason: noMajority };
    }
  }
  reports.push({
    server: 'system clock',
    kind: 'system',
    offsetMs: 0,
    delayMs: null,
    stratum: null,
    errorMs: assumedErrorMs,
    accepted: false,
    reason: 'assumed error, not measured',
  });
  const why = !explicit
    ? 'no --server or --chrony given and no chronyd answered on 127.0.0.1:323'
    : noMajority !== undefined
      ? `no usable time server (${noMajority})`
      : asked.keFailure !== undefined
        ? `no usable time server: ${cliWords(asked.keFailure).replace(/\.$/, '')}`
        : 'no usable time server: none answered with an acceptable reply';
  return {
    reports,
    sourceName: `system clock (assumed ±${assumedErrorMs} ms)`,
    source: systemClockSource({ assumedErrorMs, checkIntervalMs: 3_600_000 }),
    note: `${why}; showing the system clock with an assumed ±${assumedErrorMs} ms, unsynchronized`,
  };
}

/**
 * Runs `chronobound now`.
 * @internal
 */
export const runNow: Command = defineCommand(
  { name: 'now', options: OPTIONS, help: HELP },
  async (values, io) => {
    const nts = values.nts === true;
    const { servers, chrony } = timeSourceFlags(values, nts ? NTS_KE_PORT : 123);
    const names = servers.map(formatHostPort);
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) throw new InvalidArgumentError('--server', twice, 'each server once');
    if (nts && servers.length === 0) {
      throw new InvalidArgumentError('--nts', true, 'at least one --server (an NTS-KE server)');
    }
    const ca = readCa(values['nts-ca'], nts);
    const samples = intFlag('--samples', values.samples, 1, 1, 64);
    const intervalMs = numberFlag('--interval-ms', values['interval-ms'], 1000, 0, 3_600_000);
    const timeoutMs = numberFlag('--timeout-ms', values['timeout-ms'], 2000, 1, 600_000);
    const maxUncertaintyMs = numberFlag(
      '--max-uncertainty-ms',
      values['max-uncertainty-ms'],
      50,
      0,
    );
    const assumedErrorMs = numberFlag('--assumed-error-ms', values['assumed-error-ms'], 1000, 0);

    const explicit = servers.length > 0 || chrony !== undefined;
    const asked = await ask(
      {
        servers,
        asking: { nts, ca, samples, intervalMs, timeoutMs, signal: io.signal },
        chrony: explicit ? chrony : { host: '127.0.0.1', port: 323 },
        chronyTimeoutMs: explicit ? timeoutMs : Math.min(timeoutMs, 1000),
        explicit,
      },
      io,
    );
    const { reports, sourceName, source, note } = basis(asked, explicit, assumedErrorMs);
    const { reading, problem } = await readClock(source, maxUncertaintyMs);
    if (values.json === true) {
      io.stdout.write(`${JSON.stringify(toJson(reading, sourceName, reports))}\n`);
    } else {
      io.stdout.write(human(reading, sourceName, reports));
    }
    if (reading.status === 'synchronized') return ExitCode.ok;
    const why =
      note ??
      (reading.uncertaintyMs === Infinity && problem !== undefined
        ? `not synchronized: ${problem}`
        : `not synchronized: ε ${reading.uncertaintyMs.toFixed(3)} ms is above --max-uncertainty-ms ${maxUncertaintyMs}`);
    io.stderr.write(`chronobound now: ${why}\n`);
    return ExitCode.unsynchronized;
  },
);
