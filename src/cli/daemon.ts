/**
 * `chronobound daemon`: one `TrueClock` for the whole host. It publishes the
 * clock as a ClockBound version 2 segment, rewritten every update (read by
 * `clockboundSource` and by ClockBound's own clients), and as Prometheus
 * metrics over HTTP. SIGINT/SIGTERM mark the segment unusable, close the
 * server and exit 0.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import { InvalidArgumentError } from '../errors.js';
import { chronyHostCorrection, chronySource } from '../ntp/chrony.js';
import { ntpSource, type NtpSource } from '../ntp/source.js';
import type { HostCorrectionSource, SourceProblem, TimeSource } from '../sources/types.js';
import type { ClockStatus, TimeReading } from '../clock/types.js';
import { TrueClock } from '../truetime/true-clock.js';
import { CLOCKBOUND_DEFAULT_PATH } from '../node/clockbound-segment.js';
import { publishClockbound, type ClockboundPublisher } from '../node/clockbound-publisher.js';
import { metricsEndpoint } from '../node/metrics.js';
import {
  clockFlags,
  formatHostPort,
  type HostPort,
  hostPortFlag,
  numberFlag,
  timeSourceFlags,
} from './args.js';
import { clockCommandOptions, defineCommand, switchOptions } from './command.js';
import { ExitCode } from './errors.js';
import { untilAborted, type Command } from './io.js';

const OPTIONS = {
  ...clockCommandOptions('segment', 'metrics', 'update-ms'),
  ...switchOptions('no-metrics', 'json'),
};

const HELP = `Usage: chronobound daemon [options]

Runs one honest clock for the whole host and publishes it:
  - as a ClockBound version 2 shared-memory segment, rewritten every update, which
    chronobound's clockboundSource and AWS ClockBound's C/Rust clients read;
  - as Prometheus metrics over HTTP (GET /metrics).

Options:
  --server host[:port]     poll this NTP server (repeatable; default port 123)
  --chrony host[:port]     read chronyd's tracking report instead (default port 323);
                           the default when no --server is given: 127.0.0.1:323
  --segment PATH           the segment file (default ${CLOCKBOUND_DEFAULT_PATH})
  --metrics host[:port]    where to serve /metrics (default 127.0.0.1:9464; port 0
                           picks a free one)
  --no-metrics             do not serve metrics
  --update-ms N            rewrite the segment every N ms (default 1000); status
                           changes are written at once
  --poll-ms N              NTP poll interval (default 64000) or chronyd poll
                           interval (default 1000)
  --timeout-ms N           per-request timeout (default 1000)
  --max-drift-ppm N        bound on the local oscillator's drift, published as the
                           segment's max drift (default 200)
  --max-uncertainty-ms N   above this ε the segment says "unknown" (default 50)
  --json                   log events as JSON lines
  -h, --help               show this help

Stops on Ctrl-C (SIGINT) or SIGTERM: the segment is marked unusable (status
unknown, void_after in the past), the metrics server is closed, exit code 0.
`;

/** One line of the event log. */
function logLine(json: boolean, event: Record<string, unknown>, text: string): string {
  return json ? `${JSON.stringify(event)}\n` : `chronobound daemon: ${text}\n`;
}

/** The line for a status change: the clock's reading and what the segment now holds. */
function statusLine(
  json: boolean,
  status: ClockStatus,
  previous: ClockStatus,
  reading: TimeReading,
  published: ClockboundPublisher,
  lastProblem: SourceProblem | undefined,
): string {
  const problem =
    status === 'synchronized' || status === 'free-running' ? undefined : lastProblem?.message;
  return logLine(
    json,
    {
      event: 'status',
      status,
      previous,
      uncertaintyMs: Number.isFinite(reading.uncertaintyMs) ? reading.uncertaintyMs : null,
      boundNs: published.last === undefined ? null : Number(published.last.boundNs),
      generation: published.generation,
      ...(problem !== undefined ? { problem } : {}),
    },
    `${status} (${describeReading(reading)})${problem !== undefined ? `: ${problem}` : ''}`,
  );
}

function describeReading(reading: TimeReading): string {
  return Number.isFinite(reading.uncertaintyMs)
    ? `ε ${reading.uncertaintyMs.toFixed(3)} ms`
    : 'ε ∞';
}

interface Setup {
  readonly source: TimeSource;
  readonly hostCorrection?: HostCorrectionSource;
  readonly label: string;
  readonly ntp?: NtpSource;
}

function chooseSource(
  servers: readonly HostPort[],
  chrony: HostPort | undefined,
  pollMs: number | undefined,
  timeoutMs: number,
  maxDriftPpm: number,
): Setup {
  if (servers.length > 0) {
    const ntp = ntpSource({
      servers: servers.map(formatHostPort),
      ...(pollMs !== undefined ? { pollIntervalMs: pollMs } : {}),
      timeoutMs,
      maxDriftPpm,
    });
    return { source: ntp, ntp, label: `NTP ${servers.map(formatHostPort).join(', ')}` };
  }
  const target = chrony ?? { host: '127.0.0.1', port: 323 };
  return {
    source: chronySource({
      host: target.host,
      port: target.port,
      pollIntervalMs: pollMs ?? 1000,
      timeoutMs,
      maxDriftPpm,
    }),
    // chronyd slews the host clock; its outstanding correction is added to ε.
    hostCorrection: chronyHostCorrection({
      host: target.host,
      port: target.port,
      pollIntervalMs: pollMs ?? 1000,
      timeoutMs,
    }),
    label: `chronyd ${formatHostPort(target)}`,
  };
}

/** `--metrics host[:port]`; port 0 (any free port) is allowed here, unlike a server's port. */
function metricsFlag(value: string | undefined): HostPort {
  const text = value ?? '127.0.0.1:9464';
  const anyPort = /:0+$/.test(text.trim());
  const parsed = hostPortFlag('--metrics', anyPort ? text.trim().replace(/:0+$/, '') : text, 9464);
  return anyPort ? { host: parsed.host, port: 0 } : parsed;
}

function listen(server: Server, address: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const where = formatHostPort(address);
      if (error.code === 'EADDRINUSE') {
        reject(
          new Error(
            `address ${where} is already in use; pick another --metrics host:port (port 0 picks a free one)`,
          ),
        );
      } else if (error.code === 'EACCES') {
        reject(new Error(`permission denied for ${where}; ports below 1024 need privileges`));
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new Error(`cannot serve metrics on ${where}: the address is not on this machine`));
      } else {
        reject(error);
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(address.port, address.host);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Runs `chronobound daemon` until the process is signalled.
 * @internal
 */
export const runDaemon: Command = defineCommand(
  { name: 'daemon', options: OPTIONS, help: HELP },
  async (values, io) => {
    const { servers, chrony } = timeSourceFlags(values);
    if (servers.length > 0 && chrony !== undefined) {
      throw new InvalidArgumentError(
        '--chrony',
        values.chrony,
        'either --server (NTP) or --chrony, not both',
      );
    }
    const segment = values.segment ?? CLOCKBOUND_DEFAULT_PATH;
    if (segment.trim() === '') throw new InvalidArgumentError('--segment', segment, 'a file path');
    if (values['no-metrics'] === true && values.metrics !== undefined) {
      throw new InvalidArgumentError('--metrics', values.metrics, 'no --metrics with --no-metrics');
    }
    const metricsAt = values['no-metrics'] === true ? undefined : metricsFlag(values.metrics);
    const updateMs = numberFlag('--update-ms', values['update-ms'], 1000, 10, 3_600_000);
    const { pollMs, timeoutMs, maxDriftPpm, maxUncertaintyMs } = clockFlags(values);
    const json = values.json === true;
    if (io.signal.aborted) return ExitCode.ok;

    const setup = chooseSource(servers, chrony, pollMs, timeoutMs, maxDriftPpm);
    const clock = new TrueClock({
      source: setup.source,
      maxDriftPpm,
      maxUncertaintyMs,
      ...(setup.hostCorrection !== undefined ? { hostCorrection: setup.hostCorrection } : {}),
    });
    let publisher: ClockboundPublisher | undefined;
    let server: Server | undefined;
    let offStatus: (() => void) | undefined;
    let failures = 0;
    let live = false;
    const held: string[] = [];
    try {
      try {
        publisher = publishClockbound(clock, {
          path: segment,
          updateMs,
          maxUncertaintyMs,
          onError: (error) => {
            // Logged once per run of failures, so a full disk does not flood the log.
            if (failures++ === 0) {
              io.stderr.write(`chronobound daemon: cannot update ${segment}: ${error.message}\n`);
            }
          },
        });
      } catch (error) {
        throw new Error(`cannot publish the segment at ${segment}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const published = publisher;
      // Registered after the publisher's own listener, so the segment is rewritten
      // before the line describing it is composed.
      offStatus = clock.onStatusChange((status, previous, reading) => {
        const line = statusLine(json, status, previous, reading, published, clock.lastProblem);
        if (status === 'synchronized') failures = 0;
        if (live) io.stdout.write(line);
        else held.push(line);
      });
      let metricsUrl: string | null = null;
      if (metricsAt !== undefined) {
        server = createServer(
          metricsEndpoint(clock, {
            ...(setup.ntp !== undefined ? { ntp: setup.ntp } : {}),
            clockbound: published,
          }),
        );
        await listen(server, metricsAt);
        const bound = server.address();
        const port = typeof bound === 'object' && bound !== null ? bound.port : metricsAt.port;
        metricsUrl = `http://${formatHostPort({ host: metricsAt.host, port })}/metrics`;
      }
      io.stdout.write(
        logLine(
          json,
          {
            event: 'started',
            segment,
            metrics: metricsUrl,
            source: setup.label,
            updateMs,
          },
          `publishing ${segment} every ${updateMs} ms` +
            `${metricsUrl === null ? '' : `, metrics at ${metricsUrl}`}; time from ${setup.label}; Ctrl-C to stop`,
        ),
      );
      // Status lines held back until the start line is out, then written as they come.
      for (const line of held.splice(0)) io.stdout.write(line);
      live = true;
      await untilAborted(io.signal);
    } finally {
      offStatus?.();
      await publisher?.close();
      if (server !== undefined) await closeServer(server);
      await clock.close();
    }
    io.stderr.write(
      `chronobound daemon: stopped after ${publisher?.writes ?? 0} updates; ${segment} marked unusable\n`,
    );
    return ExitCode.ok;
  },
);
