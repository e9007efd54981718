/**
 * Prometheus text exposition (format 0.0.4) of a clock's `metrics()` snapshot,
 * the per-server status of an `ntpSource` and a ClockBound publisher, and an
 * HTTP handler that serves it at `/metrics`.
 *
 * Names follow Prometheus' conventions: a `chronobound_` prefix, base units
 * (`_seconds`), `_total` for counters, one-hot gauges for states (like
 * node_exporter's `node_systemd_unit_state{state=…}`), HELP and TYPE lines.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NtpServerState, NtpServerStatus } from '../ntp/source.js';
import type { ClockStatus } from '../clock/types.js';
import type { ClockMetrics, TrueClock } from '../truetime/true-clock.js';
import type { ClockboundData, ClockboundStatus } from './clockbound-segment.js';

/**
 * What a ClockBound publisher contributes to the metrics: a `ClockboundPublisher`
 * (from `publishClockbound`) fits.
 *
 * @example
 * ```ts
 * const publisher = publishClockbound(clock, { path: '/tmp/clockbound/shm0' }); // a ClockboundMetricsSource
 * const text = formatPrometheusMetrics(clock.metrics(), { clockbound: publisher });
 * text.split('\n').find((line) => line.startsWith('chronobound_clockbound_writes_total'));
 * //=> 'chronobound_clockbound_writes_total 1' (publishClockbound writes at once, then every `updateMs`)
 * ```
 */
export interface ClockboundMetricsSource {
  /** Updates written. */
  readonly writes: number;
  /** The latest data written. */
  readonly last: ClockboundData | undefined;
}

/**
 * Options of {@link formatPrometheusMetrics}.
 *
 * @example
 * ```ts
 * const ntp = ntpSource({ servers: ['127.0.0.1:11123'] });
 * const clock = new TrueClock({ source: ntp });
 * formatPrometheusMetrics(clock.metrics(), { ntpServers: ntp.servers() });
 * // adds the chronobound_ntp_server_* series, one per server: reach, state, delay, offset, stratum, poll interval
 * ```
 */
export interface PrometheusMetricsOptions {
  /** Per-server NTP status, e.g. `ntpSource(...).servers()`. */
  readonly ntpServers?: readonly NtpServerStatus[];
  /** A ClockBound publisher (`publishClockbound(...)`): its write count and latest bound. */
  readonly clockbound?: ClockboundMetricsSource;
}

/**
 * The content type of the text exposition format.
 *
 * @example
 * ```ts
 * res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE);
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE: string = 'text/plain; version=0.0.4; charset=utf-8';

const CLOCK_STATUSES: readonly ClockStatus[] = [
  'synchronized',
  'free-running',
  'unsynchronized',
  'disrupted',
];
const NTP_STATES: readonly NtpServerState[] = [
  'pending',
  'ok',
  'rejected',
  'unreachable',
  'backing-off',
  'stopped',
];
const CLOCKBOUND_STATUSES: readonly ClockboundStatus[] = [
  'unknown',
  'synchronized',
  'free-running',
  'disrupted',
];

type Labels = Readonly<Record<string, string>>;

/** Go's ParseFloat spellings for the special values; JavaScript's for the rest. */
function value(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

class Exposition {
  readonly #lines: string[] = [];

  family(
    name: string,
    type: 'gauge' | 'counter',
    help: string,
    samples: ReadonlyArray<readonly [Labels, number]>,
  ): void {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) {
      const keys = Object.keys(labels);
      const rendered =
        keys.length === 0
          ? ''
          : `{${keys.map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`).join(',')}}`;
      this.#lines.push(`${name}${rendered} ${value(v)}`);
    }
  }

  /** A family of one sample without labels. */
  single(name: string, type: 'gauge' | 'counter', help: string, v: number): void {
    this.family(name, type, help, [[{}, v]]);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

const seconds = (ms: number): number => ms / 1000;

/**
 * Formats a clock's {@link ClockMetrics} snapshot — plus, optionally, per-server
 * NTP status and a ClockBound publisher — as Prometheus text exposition.
 *
 * | metric | type | meaning |
 * |---|---|---|
 * | `chronobound_status{status}` | gauge | 1 for the clock's status, 0 for the other three |
 * | `chronobound_uncertainty_seconds` | gauge | ε now (`+Inf` without a sample) |
 * | `chronobound_system_clock_offset_seconds` | gauge | the estimate minus `Date.now()` |
 * | `chronobound_sample_age_seconds` | gauge | age of the sample the bound rests on |
 * | `chronobound_sample_error_seconds` | gauge | that sample's own bound |
 * | `chronobound_sample_source_info{source}` | gauge | 1, naming the sample's source |
 * | `chronobound_learned_frequency_ppm{bound}` | gauge | learned rate error bounds `low`/`high` (absent until learned) |
 * | `chronobound_max_drift_ppm` | gauge | the configured drift bound |
 * | `chronobound_host_correction_seconds` | gauge | the host daemon's outstanding correction counted in ε |
 * | `chronobound_samples_accepted_total` | counter | samples accepted |
 * | `chronobound_disruptions_total` | counter | disruptions seen |
 * | `chronobound_problems_total{reason}` | counter | problems by reason |
 * | `chronobound_ntp_server_reach{server}` | gauge | the 8-bit reachability register |
 * | `chronobound_ntp_server_state{server,state}` | gauge | 1 for the server's state |
 * | `chronobound_ntp_server_delay_seconds{server}` | gauge | round-trip delay of its best exchange |
 * | `chronobound_ntp_server_offset_seconds{server}` | gauge | its time minus the system clock |
 * | `chronobound_ntp_server_stratum{server}` | gauge | its stratum |
 * | `chronobound_ntp_server_poll_interval_seconds{server}` | gauge | its current poll interval |
 * | `chronobound_clockbound_writes_total` | counter | segment updates written |
 * | `chronobound_clockbound_bound_seconds` | gauge | the bound last published (around the system clock) |
 * | `chronobound_clockbound_status{status}` | gauge | 1 for the status last published |
 *
 * Values without data are `NaN`, as the exposition format allows.
 *
 * @param metrics - `clock.metrics()`.
 * @param options - Per-server NTP status; a ClockBound publisher.
 * @returns The exposition text, ending in a newline.
 *
 * @example
 * ```ts
 * const text = formatPrometheusMetrics(clock.metrics(), { ntpServers: ntp.servers() });
 * ```
 */
export function formatPrometheusMetrics(
  metrics: ClockMetrics,
  options: PrometheusMetricsOptions = {},
): string {
  const out = new Exposition();
  out.family(
    'chronobound_status',
    'gauge',
    'The clock status: 1 for the current one (synchronized, free-running, unsynchronized, disrupted).',
    CLOCK_STATUSES.map((s) => [{ status: s }, metrics.status === s ? 1 : 0]),
  );
  out.single(
    'chronobound_uncertainty_seconds',
    'gauge',
    'Half-width of the interval [earliest, latest] now (+Inf without a sample).',
    seconds(metrics.uncertaintyMs),
  );
  out.single(
    'chronobound_system_clock_offset_seconds',
    'gauge',
    'The clock estimate minus the system wall clock (Date.now()).',
    seconds(metrics.offsetFromWallMs),
  );
  out.single(
    'chronobound_sample_age_seconds',
    'gauge',
    'Age of the sync sample the bound rests on (monotonic).',
    seconds(metrics.sampleAgeMs),
  );
  out.single(
    'chronobound_sample_error_seconds',
    'gauge',
    "The current sync sample's own error bound.",
    seconds(metrics.sampleErrorMs),
  );
  out.family(
    'chronobound_sample_source_info',
    'gauge',
    'Where the current sync sample came from (value 1).',
    metrics.sampleSource === '' ? [] : [[{ source: metrics.sampleSource }, 1]],
  );
  const rate = metrics.learnedRatePpm;
  out.family(
    'chronobound_learned_frequency_ppm',
    'gauge',
    "Learned bounds on the monotonic clock's rate error, in ppm (positive: it runs fast).",
    rate === undefined
      ? []
      : [
          [{ bound: 'low' }, rate.low],
          [{ bound: 'high' }, rate.high],
        ],
  );
  out.single(
    'chronobound_max_drift_ppm',
    'gauge',
    "The configured bound on the monotonic clock's rate error, in ppm.",
    metrics.maxDriftPpm,
  );
  out.single(
    'chronobound_host_correction_seconds',
    'gauge',
    "The host time daemon's outstanding correction counted in the uncertainty.",
    seconds(metrics.hostCorrectionMs),
  );
  out.single(
    'chronobound_samples_accepted_total',
    'counter',
    'Sync samples accepted.',
    metrics.samplesAccepted,
  );
  out.single(
    'chronobound_disruptions_total',
    'counter',
    'Disruptions seen (suspend, VM pause or migration, clock step, reported pause).',
    metrics.disruptions,
  );
  out.family(
    'chronobound_problems_total',
    'counter',
    'Problems reported by the time sources and the watchdog, by reason.',
    Object.keys(metrics.problems)
      .sort()
      .map((reason) => [{ reason }, metrics.problems[reason] ?? 0]),
  );
  if (options.ntpServers !== undefined) ntpFamilies(out, options.ntpServers);
  if (options.clockbound !== undefined) clockboundFamilies(out, options.clockbound);
  return out.text();
}

function ntpFamilies(out: Exposition, servers: readonly NtpServerStatus[]): void {
  const per = (pick: (s: NtpServerStatus) => number): Array<[Labels, number]> =>
    servers.map((s) => [{ server: s.server }, pick(s)]);
  out.family(
    'chronobound_ntp_server_reach',
    'gauge',
    'NTP reachability register (8 bits, bit 0 the latest poll).',
    per((s) => s.reach),
  );
  out.family(
    'chronobound_ntp_server_state',
    'gauge',
    "The NTP server's state after its latest poll: 1 for the current one.",
    servers.flatMap((s) =>
      NTP_STATES.map((state): [Labels, number] => [
        { server: s.server, state },
        s.state === state ? 1 : 0,
      ]),
    ),
  );
  out.family(
    'chronobound_ntp_server_delay_seconds',
    'gauge',
    "Round-trip delay of the server's best exchange in the clock filter.",
    per((s) => (s.best === undefined ? Number.NaN : seconds(s.best.delayMs))),
  );
  out.family(
    'chronobound_ntp_server_offset_seconds',
    'gauge',
    "The server's time minus the system wall clock, from its best exchange.",
    per((s) => seconds(s.best?.systemOffsetMs ?? Number.NaN)),
  );
  out.family(
    'chronobound_ntp_server_stratum',
    'gauge',
    "The server's stratum in its best exchange.",
    per((s) => s.best?.stratum ?? Number.NaN),
  );
  out.family(
    'chronobound_ntp_server_poll_interval_seconds',
    'gauge',
    'The interval until the next poll of the server, before jitter (+Inf once stopped).',
    per((s) => seconds(s.pollIntervalMs)),
  );
}

function clockboundFamilies(out: Exposition, facts: ClockboundMetricsSource): void {
  out.single(
    'chronobound_clockbound_writes_total',
    'counter',
    'Updates written to the ClockBound segment.',
    facts.writes,
  );
  const last = facts.last;
  out.single(
    'chronobound_clockbound_bound_seconds',
    'gauge',
    'The bound last published in the ClockBound segment (around the system wall clock).',
    last === undefined ? Number.NaN : Number(last.boundNs) / 1e9,
  );
  out.family(
    'chronobound_clockbound_status',
    'gauge',
    'The clock status last published in the ClockBound segment: 1 for the current one.',
    last === undefined
      ? []
      : CLOCKBOUND_STATUSES.map((s) => [{ status: s }, last.status === s ? 1 : 0]),
  );
}

/**
 * Options of {@link metricsEndpoint}.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * createServer(metricsEndpoint(clock, { path: '/metrics', ntp: source })).listen(9464, '127.0.0.1');
 * // GET /metrics → 200 in the text exposition format (PROMETHEUS_CONTENT_TYPE); other paths → 404
 * ```
 */
export interface MetricsEndpointOptions {
  /**
   * The path it answers on.
   *
   * @defaultValue `'/metrics'`
   */
  readonly path?: string;
  /** An `ntpSource` whose `servers()` are exported per server. */
  readonly ntp?: { servers(): readonly NtpServerStatus[] };
  /** A ClockBound publisher whose writes and bound are exported. */
  readonly clockbound?: ClockboundMetricsSource;
}

/**
 * A `node:http` handler serving {@link formatPrometheusMetrics} for `clock` at
 * `GET /metrics` (and `HEAD`). Other paths get 404, or `next()` when given;
 * other methods 405. Every request takes a fresh snapshot.
 *
 * @param clock - The clock to export.
 * @param options - Path, NTP source, ClockBound publisher.
 * @returns A `(req, res, next?)` handler.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * createServer(metricsEndpoint(clock, { ntp: source })).listen(9464, '127.0.0.1');
 * ```
 */
export function metricsEndpoint(
  clock: Pick<TrueClock, 'metrics'>,
  options: MetricsEndpointOptions = {},
): (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void {
  const path = options.path ?? '/metrics';
  return (req, res, next) => {
    const url = req.url ?? '/';
    const pathname = url.split('?')[0];
    if (pathname !== path) {
      if (next !== undefined) {
        next();
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' })
        .end('method not allowed\n');
      return;
    }
    let body: string;
    try {
      const formatOptions: PrometheusMetricsOptions = {
        ...(options.ntp !== undefined ? { ntpServers: options.ntp.servers() } : {}),
        ...(options.clockbound !== undefined ? { clockbound: options.clockbound } : {}),
      };
      body = formatPrometheusMetrics(clock.metrics(), formatOptions);
    } catch (error) {
      res
        .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        .end(`cannot collect metrics: ${(error as Error).message}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': PROMETHEUS_CONTENT_TYPE,
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
