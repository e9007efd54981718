/**
 * `chronobound now`: one honest reading from NTP servers, chronyd, or — when
 * neither answers — the system clock, labelled `unsynchronized`.
 *
 * Every server is asked `--samples` times; the clock filter keeps each
 * server's lowest-delay exchange; Marzullo's intersection across servers
 * casts out falsetickers; the agreed offset and bound feed a `TrueClock`,
 * whose `now()` is printed.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { formatUtcMicros } from '../truetime/format.js';
import { NTS_KE_PORT } from '../ntp/nts/ke.js';
import { selectOffset } from '../ntp/select.js';
import { systemClockSource } from '../sources/system-clock-source.js';
import { systemMonotonic } from '../clock/system.js';
import type { TimeSource } from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import type { TimeReading } from '../clock/types.js';
import { TrueClock } from '../truetime/true-clock.js';
import { hostPortFlag, intFlag, numberFlag } from './args.js';
import { defineCommand, switchOptions, TIME_SOURCE_OPTIONS, valueOptions } from './command.js';
import { ExitCode } from './errors.js';
import { signedMs, table } from './format.js';
import { Progress, type Command } from './io.js';
import {
  cliWords,
  collectChrony,
  collectNtp,
  collectNts,
  type Burst,
  type Collected,
  type ServerReport,
} from './now-servers.js';

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
  --samples N              exchanges per NTP server; the lowest-delay one is kept (default 1)
  --interval-ms N          pause between exchanges with one server (default 1000; be polite
                           to public servers)
  --timeout-ms N           per-exchange timeout (default 2000)
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

/** What the progress line says while `now` waits for its servers. */
function waitingFor(servers: number, chrony: boolean, samples: number, intervalMs: number): string {
  const parts: string[] = [];
  if (servers > 0) {
    const each = samples > 1 ? `, ${samples} exchanges each ${intervalMs / 1000} s apart` : '';
    parts.push(`${servers} server${servers === 1 ? '' : 's'}${each}`);
  }
  if (chrony) parts.push('chronyd');
  return parts.join(' and ');
}

/**
 * Runs `chronobound now`.
 * @internal
 */
export const runNow: Command = defineCommand(
  { name: 'now', options: OPTIONS, help: HELP },
  async (values, io) => {
    const nts = values.nts === true;
    const servers = (values.server ?? []).map((s) =>
      hostPortFlag('--server', s, nts ? NTS_KE_PORT : 123),
    );
    if (nts && servers.length === 0) {
      throw new InvalidArgumentError('--nts', true, 'at least one --server (an NTS-KE server)');
    }
    const ca = readCa(values['nts-ca'], nts);
    const chrony =
      values.chrony === undefined ? undefined : hostPortFlag('--chrony', values.chrony, 323);
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

    const reports: ServerReport[] = [];
    const candidates: Collected['samples'] = [];
    const explicit = servers.length > 0 || chrony !== undefined;
    // A line on stderr while the servers are asked (only on a terminal: stdout and
    // its JSON stay clean, and so do logs).
    const progress = new Progress(io, 'silent');
    const askChrony = chrony !== undefined || !explicit;
    const asking = waitingFor(servers.length, askChrony, samples, intervalMs);
    const total = servers.length + (askChrony ? 1 : 0);
    let finished = 0;
    const showProgress = (): void =>
      progress.update(`chronobound now: asking ${asking}… ${finished} of ${total} done`);
    const oneDone = (): void => {
      finished++;
      showProgress();
    };
    showProgress();
    const burst: Burst = {
      samples,
      intervalMs,
      timeoutMs,
      signal: io.signal,
      onServerDone: oneDone,
    };
    const [ntp, chronyResult] = await Promise.all([
      servers.length === 0
        ? undefined
        : nts
          ? collectNts(servers, ca, burst)
          : collectNtp(servers, burst),
      explicit
        ? chrony === undefined
          ? undefined
          : collectChrony(chrony, timeoutMs, io.signal).finally(oneDone)
        : collectChrony(
            { host: '127.0.0.1', port: 323 },
            Math.min(timeoutMs, 1000),
            io.signal,
          ).finally(oneDone),
    ]).finally(() => progress.done());
    for (const c of [ntp, chronyResult]) {
      if (c === undefined) continue;
      reports.push(...c.reports);
      candidates.push(...c.samples);
    }

    let sourceName: string;
    let source: TimeSource;
    let note: string | undefined;
    // Like ntpSource: the configured servers set how many may lie (f), so a silent
    // server still counts towards f; a − f of the a answers must overlap.
    const configured = servers.length + (chrony === undefined ? (explicit ? 0 : 1) : 1);
    const selection =
      candidates.length === 0
        ? undefined
        : selectOffset(
            candidates.map(({ id, sample }) => ({ id, ...sample })),
            {
              atMonotonic: systemMonotonic.now(),
              configured: explicit ? configured : candidates.length,
            },
          );
    if (selection?.ok === true) {
      const falsetickers = new Set(selection.falsetickers);
      for (let i = 0; i < reports.length; i++) {
        const r = reports[i];
        if (r !== undefined && falsetickers.has(r.server)) {
          reports[i] = {
            ...r,
            accepted: false,
            reason: 'falseticker: outside the majority’s interval',
          };
        }
      }
      const used = selection.truechimers.length;
      sourceName =
        candidates.length === 1
          ? (candidates[0]?.id ?? 'ntp')
          : `${used} of ${candidates.length} servers agree (Marzullo)`;
      source = oneSample({
        monotonicAt: selection.monotonicAt,
        offsetMs: selection.offsetMs,
        errorMs: selection.errorMs,
        source: sourceName,
      });
    } else {
      const noMajority =
        selection === undefined
          ? undefined
          : candidates.length <= selection.maxFalsetickers
            ? `no majority: ${candidates.length} of ${configured} configured sources answered, and up to ${selection.maxFalsetickers} may be wrong`
            : 'no majority: the answers do not overlap';
      if (noMajority !== undefined) {
        for (let i = 0; i < reports.length; i++) {
          const r = reports[i];
          if (r?.accepted === true) reports[i] = { ...r, accepted: false, reason: noMajority };
        }
      }
      sourceName = `system clock (assumed ±${assumedErrorMs} ms)`;
      source = systemClockSource({ assumedErrorMs, checkIntervalMs: 3_600_000 });
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
      const keFailure = (ntp as { readonly keFailure?: string | undefined } | undefined)?.keFailure;
      note = explicit
        ? noMajority !== undefined
          ? `no usable time server (${noMajority})`
          : keFailure !== undefined
            ? `no usable time server: ${cliWords(keFailure).replace(/\.$/, '')}`
            : 'no usable time server: none answered with an acceptable reply'
        : 'no --server or --chrony given and no chronyd answered on 127.0.0.1:323';
      note += `; showing the system clock with an assumed ±${assumedErrorMs} ms, unsynchronized`;
    }

    const { reading, problem } = await readClock(source, maxUncertaintyMs);
    if (values.json === true) {
      io.stdout.write(`${JSON.stringify(toJson(reading, sourceName, reports))}\n`);
    } else {
      io.stdout.write(human(reading, sourceName, reports));
    }
    if (reading.status === 'synchronized') return ExitCode.ok;
    if (note === undefined) {
      note =
        reading.uncertaintyMs === Infinity && problem !== undefined
          ? `not synchronized: ${problem}`
          : `not synchronized: ε ${reading.uncertaintyMs.toFixed(3)} ms is above --max-uncertainty-ms ${maxUncertaintyMs}`;
    }
    io.stderr.write(`chronobound now: ${note}\n`);
    return ExitCode.unsynchronized;
  },
);
