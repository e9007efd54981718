/**
 * chronyd as a time source: reads its `tracking` report over the cmdmon UDP
 * port (unprivileged from localhost) and turns it into sync samples with an
 * honest bound, the way AWS ClockBound does; and as the host's time daemon,
 * whose outstanding correction `TrueClock` adds to its bound.
 *
 * @module
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  AbortError,
  ChronoboundError,
  ChronyProtocolError,
  InvalidArgumentError,
  NtpTimeoutError,
  SourceUnavailableError,
} from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative, requirePositive } from '../_internals/validate.js';
import { calibrateWall, type WallCalibration } from '../clock/calibrate.js';
import { agedBound } from '../sources/exchange.js';
import { startPoller, type Poller } from '../sources/poller.js';
import { systemMonotonic, systemScheduler, systemWall } from '../clock/system.js';
import type {
  HostCorrection,
  HostCorrectionSource,
  ProblemListener,
  SourceProblem,
  TimeSource,
} from '../sources/types.js';
import type {
  LeapSecond,
  MonotonicSource,
  Scheduler,
  SyncSample,
  WallSource,
} from '../clock/types.js';
import {
  CHRONY_FLOAT_RELATIVE_ERROR,
  CHRONY_LOCAL_REFERENCE_ID,
  decodeChronyReplyHeader,
  decodeChronyTrackingReply,
  encodeChronyTrackingRequest,
  type ChronyTracking,
} from './chrony-protocol.js';

const DEFAULT_HOST = '127.0.0.1';
/** chronyd's default cmdmon port. */
const DEFAULT_PORT = 323;
const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_POLL_INTERVAL_MS = 1000;
const DEFAULT_MAX_DRIFT_PPM = 200;
/** A lost datagram is resent this many times within the timeout. */
const RESENDS = 2;

/**
 * Options of {@link readChronyTracking}.
 *
 * @example
 * ```ts
 * const options: ChronyTrackingOptions = { host: '127.0.0.1', port: 323, timeoutMs: 500 };
 * ```
 */
export interface ChronyTrackingOptions {
  /** Address (or name) of chronyd's command port; default `'127.0.0.1'`. */
  readonly host?: string;
  /** chronyd's `cmdport`; default 323. */
  readonly port?: number;
  /** Give up after this many ms (the request is resent twice meanwhile); default 1000. */
  readonly timeoutMs?: number;
  /** Cancels the request with `AbortError`. */
  readonly signal?: AbortSignal;
}

/**
 * Options of {@link chronySource}.
 *
 * @example
 * ```ts
 * const options: ChronySourceOptions = { port: 323, pollIntervalMs: 1000, maxDriftPpm: 200 };
 * ```
 */
export interface ChronySourceOptions {
  /** Address (or name) of chronyd's command port; default `'127.0.0.1'`. */
  readonly host?: string;
  /** chronyd's `cmdport`; default 323. */
  readonly port?: number;
  /** How often to read the tracking report (ms); default 1000. */
  readonly pollIntervalMs?: number;
  /** Per-request timeout (ms); default 1000. */
  readonly timeoutMs?: number;
  /**
   * Bound on the clock's drift (ppm) applied to the age of chronyd's last
   * measurement; default 200, the bound `TrueClock` uses. ClockBound uses 15.
   */
  readonly maxDriftPpm?: number;
  /**
   * Accept a chronyd that serves its own clock (`local` directive, reference ID
   * 7F7F0101) as if it were synchronised, as chronyd itself does; default `true`.
   * With `false` such reports give no sample and a `'chrony-local-reference'` problem.
   */
  readonly allowLocalReference?: boolean;
  /** The wall clock chronyd disciplines; default `Date.now()`. */
  readonly wall?: WallSource;
  /** Timers for polling and timeouts; default the platform's. */
  readonly scheduler?: Scheduler;
}

/**
 * A {@link TimeSource} backed by chronyd, with the tracking report of its
 * latest successful poll.
 *
 * @example
 * ```ts
 * const source: ChronySource = chronySource();
 * const clock = new TrueClock({ source });
 * await clock.ready();
 * console.log(source.tracking?.stratum);
 * ```
 */
export interface ChronySource extends TimeSource, AsyncDisposable {
  /** How often chronyd is polled (ms). */
  readonly pollIntervalMs: number;
  /**
   * The longest a healthy source goes between two samples (ms): the poll
   * interval plus one request's timeout.
   */
  readonly maxSampleGapMs: number;
  /** The tracking report of the latest poll that got one, if any. */
  readonly tracking: ChronyTracking | undefined;
  /** Same as `close()`, for `await using source = chronySource(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * Polls chronyd again at once, for every subscriber: the pending timer is
   * cancelled, and a poll already in flight finishes first and is followed by
   * a new one (never two at once). The source keeps no samples, so there is
   * nothing else to forget; a report chronyd made before `monotonicAt` carries
   * an `evidenceFrom` at or before it, which `TrueClock` refuses.
   *
   * @param monotonicAt - When the disruption was seen (the subscriber's timescale).
   *
   * @example
   * ```ts
   * const source = chronySource();
   * source.invalidate(performance.now()); // e.g. after a resume from suspend
   * ```
   */
  invalidate(monotonicAt: number): void;
}

/**
 * Options of {@link chronyHostCorrection}.
 *
 * @example
 * ```ts
 * const options: ChronyHostCorrectionOptions = { port: 323, pollIntervalMs: 1000 };
 * ```
 */
export interface ChronyHostCorrectionOptions {
  /** Address (or name) of chronyd's command port; default `'127.0.0.1'`. */
  readonly host?: string;
  /** chronyd's `cmdport`; default 323. */
  readonly port?: number;
  /** How often to read the tracking report (ms); default 1000. */
  readonly pollIntervalMs?: number;
  /** Per-request timeout (ms); default 1000. */
  readonly timeoutMs?: number;
  /** Timers for polling and timeouts; default the platform's. */
  readonly scheduler?: Scheduler;
}

/** Where to send requests, validated. */
interface Target {
  readonly host: string;
  readonly port: number;
  /** `host:port` for messages. */
  readonly label: string;
}

/** One request/reply exchange, stamped on the monotonic clock. */
interface TrackingExchange<T> {
  readonly tracking: ChronyTracking;
  /** Monotonic reading just before the first request was sent. */
  readonly sentAt: number;
  /** Monotonic reading when the reply arrived. */
  readonly receivedAt: number;
  /** What `beforeSend` returned. */
  readonly prepared: T;
}

/**
 * Reads chronyd's `tracking` report once, over its cmdmon UDP port: the same
 * numbers `chronyc tracking` prints, in milliseconds. A reply from another
 * address or port, or one that echoes another sequence number, is ignored.
 *
 * @param options - Where chronyd listens, and the timeout.
 * @returns The decoded report (whether or not chronyd is synchronised).
 * @throws {InvalidArgumentError} When an option is out of range.
 * @throws {NtpTimeoutError} When chronyd does not answer within `timeoutMs`.
 * @throws {ChronyProtocolError} When chronyd refuses (e.g. not in `cmdallow`) or the reply is malformed.
 * @throws {SourceUnavailableError} When the host cannot be resolved or the socket fails.
 * @throws {AbortError} When `signal` aborts.
 *
 * @example
 * ```ts
 * const t = await readChronyTracking({ port: 323 });
 * console.log(`stratum ${t.stratum}, system clock ${t.currentCorrectionMs} ms slow`);
 * ```
 */
export async function readChronyTracking(
  options: ChronyTrackingOptions = {},
): Promise<ChronyTracking> {
  const target = readTarget(options.host, options.port);
  const timeoutMs = requirePositive('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const exchange = await exchangeTracking(target, {
    timeoutMs,
    signal: options.signal,
    monotonic: systemMonotonic,
    scheduler: systemScheduler,
    background: false,
    beforeSend: () => undefined,
  });
  return exchange.tracking;
}

/**
 * A {@link TimeSource} that polls chronyd's tracking report and turns it into
 * sync samples. chronyd disciplines the system clock, so true time ≈ system
 * time + chronyd's current correction; the system clock is mapped onto the
 * monotonic timescale on the edge where `Date.now()` ticks (sub-millisecond).
 * Each sample's error is ClockBound's bound plus the mapping error and the age
 * of chronyd's last measurement times `maxDriftPpm`:
 *
 * ```
 * errorMs = |currentCorrection| + rootDelay/2 + rootDispersion
 *         + wall-mapping error + maxDrift · |now − refTime|
 * ```
 *
 * A report with leap status 3, or reference ID 0 at stratum 0, gives no sample
 * but a `'chrony-unsynchronized'` problem; no reply gives a `'timeout'` problem
 * (never a hang); a refusal or malformed reply gives `'chrony-protocol'`.
 *
 * @param options - Where chronyd listens, how often to poll, the drift bound.
 * @returns A source to pass to `new TrueClock({ source })`.
 * @throws {InvalidArgumentError} When an option is out of range.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({ source: chronySource({ port: 323 }) });
 * await clock.ready({ timeoutMs: 5000 });
 * const { earliest, latest } = clock.now();
 * ```
 */
export function chronySource(options: ChronySourceOptions = {}): ChronySource {
  const target = readTarget(options.host, options.port);
  const pollIntervalMs = requirePositive(
    'pollIntervalMs',
    options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
  );
  const timeoutMs = requirePositive('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  // Without the option, a subscribing clock's own drift bound is used (see subscribe).
  const explicitDriftPpm =
    options.maxDriftPpm === undefined
      ? undefined
      : requireNonNegative('maxDriftPpm', options.maxDriftPpm);
  const allowLocalReference = options.allowLocalReference ?? true;
  if (typeof allowLocalReference !== 'boolean') {
    throw new InvalidArgumentError('allowLocalReference', allowLocalReference, 'a boolean');
  }
  const wall = options.wall ?? systemWall;
  const scheduler = options.scheduler ?? systemScheduler;
  const name = `chrony ${target.label}`;
  const pollers = new PollerSet();
  let latest: ChronyTracking | undefined;

  return {
    pollIntervalMs,
    maxSampleGapMs: pollIntervalMs + timeoutMs,
    get tracking(): ChronyTracking | undefined {
      return latest;
    },
    subscribe(onSample, monotonic, onProblem, context) {
      const maxDrift = (explicitDriftPpm ?? context?.maxDriftPpm ?? DEFAULT_MAX_DRIFT_PPM) * 1e-6;
      const poller = startPolling({
        target,
        name,
        pollIntervalMs,
        timeoutMs,
        scheduler,
        monotonic,
        // Calibrate right before sending, so the mapping and the report are contemporary.
        beforeSend: () => calibrateBest(wall, monotonic),
        settle: (exchange): PollOutcome<SyncSample> => {
          latest = exchange.tracking;
          const outcome = trackingToSample({
            tracking: exchange.tracking,
            calibration: exchange.prepared,
            sentAt: exchange.sentAt,
            receivedAt: exchange.receivedAt,
            maxDrift,
            allowLocalReference,
            source: name,
          });
          return 'sample' in outcome ? { value: outcome.sample } : outcome;
        },
        onValue: onSample,
        onProblem,
      });
      return pollers.track(poller);
    },
    invalidate() {
      pollers.pollNow();
    },
    close() {
      return pollers.close();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

/**
 * A {@link HostCorrectionSource} that polls chronyd's tracking report for the
 * offset it is still slewing out of the system clock (`chronyc tracking`'s
 * "System time") and the frequency correction it applies.
 *
 * Why it matters: chronyd corrects an offset by slewing, and the kernel slews
 * `CLOCK_MONOTONIC` (Node's `performance.now()`) along with the wall clock.
 * While a correction is outstanding the monotonic clock may therefore gain or
 * lose up to that correction beyond its usual rate error, so an interval grown
 * from it must widen by as much: ClockBound's `current_correction` term.
 * `TrueClock` adds the largest remaining correction reported since its current
 * sample to ε.
 *
 * How fast a correction goes away is chrony's choice: `corrtimeratio` (default
 * 3) spreads an average correction over about three update intervals (larger
 * ones faster, smaller ones slower), and `maxslewrate` (default 83,333 ppm,
 * 83 ms per second) caps the rate. A correction appears when chronyd updates
 * the clock and then shrinks, so polling well inside chronyd's update interval
 * sees every correction near its largest; between two polls at most
 * `maxslewrate` × the poll interval of it can have been slewed out unseen.
 *
 * Each report is stamped with the monotonic reading just before its request
 * was sent. Failures go to `onProblem` with the reasons `chronySource` uses
 * (`'timeout'`, `'chrony-protocol'`, `'unavailable'`; `'listener'` when a
 * listener throws); nothing is thrown from a timer. Timers and sockets never
 * keep the process alive; the function returned by `subscribe` and `close()`
 * are idempotent.
 *
 * @param options - Where chronyd listens, how often to poll, the timeout.
 * @returns A source of host corrections for `TrueClock`.
 * @throws {InvalidArgumentError} When an option is out of range.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({
 *   source: chronySource({ port: 323 }),
 *   hostCorrection: chronyHostCorrection({ port: 323, pollIntervalMs: 500 }),
 * });
 * // Or on its own:
 * const host = chronyHostCorrection();
 * const stop = host.subscribe((c) => console.log(`${c.remainingCorrectionMs} ms left to slew`), {
 *   now: () => performance.now(),
 * });
 * ```
 */
export function chronyHostCorrection(
  options: ChronyHostCorrectionOptions = {},
): HostCorrectionSource {
  const target = readTarget(options.host, options.port);
  const pollIntervalMs = requirePositive(
    'pollIntervalMs',
    options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
  );
  const timeoutMs = requirePositive('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const scheduler = options.scheduler ?? systemScheduler;
  const name = `chrony ${target.label}`;
  const pollers = new PollerSet();

  return {
    subscribe(onCorrection, monotonic, onProblem) {
      if (typeof onCorrection !== 'function' || typeof monotonic?.now !== 'function') {
        throw new InvalidArgumentError(
          'subscribe',
          onCorrection,
          'a correction listener and a MonotonicSource',
        );
      }
      const poller = startPolling({
        target,
        name,
        pollIntervalMs,
        timeoutMs,
        scheduler,
        monotonic,
        beforeSend: () => undefined,
        settle: ({ tracking, sentAt }): PollOutcome<HostCorrection> => ({
          value: {
            monotonicAt: sentAt,
            remainingCorrectionMs: tracking.currentCorrectionMs,
            frequencyPpm: tracking.frequencyPpm,
            source: name,
          },
        }),
        onValue: onCorrection,
        onProblem,
      });
      return pollers.track(poller);
    },
    close() {
      return pollers.close();
    },
  };
}

/** The polling loops of one source's subscribers. */
class PollerSet {
  readonly #pollers = new Set<Poller>();

  /** Keeps `poller`; returns the subscriber's unsubscribe. */
  track(poller: Poller): () => void {
    this.#pollers.add(poller);
    return () => {
      poller.stop();
      this.#pollers.delete(poller);
    };
  }

  pollNow(): void {
    for (const poller of this.#pollers) poller.pollNow();
  }

  close(): Promise<void> {
    for (const poller of this.#pollers) poller.stop();
    this.#pollers.clear();
    return Promise.resolve();
  }
}

/** What one poll yields: a value for the listener, or a problem. */
type PollOutcome<R> = { readonly value: R } | { readonly problem: SourceProblem };

interface ChronyPollOptions<T, R> {
  readonly target: Target;
  /** `chrony host:port`, the `source` of problems. */
  readonly name: string;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
  readonly scheduler: Scheduler;
  readonly monotonic: MonotonicSource;
  /** Runs synchronously right before the first send of each poll. */
  readonly beforeSend: () => T;
  /** Turns a successful exchange into a value or a problem. */
  readonly settle: (exchange: TrackingExchange<T>) => PollOutcome<R>;
  readonly onValue: (value: R) => void;
  readonly onProblem: ProblemListener | undefined;
}

/**
 * Polls chronyd's tracking report every `pollIntervalMs` from now on: the loop
 * `chronySource` and `chronyHostCorrection` share, on the shared poller. It
 * never throws or rejects: failed exchanges and throwing listeners become
 * problems. `stop()` aborts the exchange in flight.
 */
function startPolling<T, R>(options: ChronyPollOptions<T, R>): Poller {
  const { name, scheduler } = options;
  const report = (problem: SourceProblem): void => {
    try {
      options.onProblem?.(problem);
    } catch {
      // A listener's bug must not stop polling.
    }
  };
  return startPoller({
    scheduler,
    poll: async (signal) => {
      let outcome: PollOutcome<R>;
      try {
        const exchange = await exchangeTracking(options.target, {
          timeoutMs: options.timeoutMs,
          signal,
          monotonic: options.monotonic,
          scheduler,
          background: true,
          beforeSend: options.beforeSend,
        });
        outcome = options.settle(exchange);
      } catch (error) {
        outcome = { problem: problemFromError(name, error) };
      }
      // Stopped meanwhile: the subscriber has gone.
      if (signal.aborted) return;
      if ('problem' in outcome) {
        report(outcome.problem);
        return;
      }
      try {
        options.onValue(outcome.value);
      } catch (error) {
        report({
          source: name,
          reason: 'listener',
          message: `a listener threw: ${String(error)}`,
          ...(error instanceof Error ? { error } : {}),
        });
      }
    },
    nextDelayMs: () => options.pollIntervalMs,
    // Not reached (the poll above catches everything), but never silent.
    onError: (error) =>
      report({
        source: name,
        reason: 'internal',
        message: `polling failed: ${String(error)}`,
        ...(error instanceof Error ? { error } : {}),
      }),
    errorDelayMs: options.pollIntervalMs,
  });
}

/**
 * What one tracking report yields.
 * @internal
 */
export type SampleOutcome = { readonly sample: SyncSample } | { readonly problem: SourceProblem };

/**
 * Inputs of {@link trackingToSample}.
 * @internal
 */
export interface TrackingSampleInput {
  readonly tracking: ChronyTracking;
  /** Wall ≈ monotonic + `calibration.offsetMs`, taken just before the request. */
  readonly calibration: WallCalibration;
  readonly sentAt: number;
  readonly receivedAt: number;
  /** Drift bound as a fraction (200 ppm = 2e-4). */
  readonly maxDrift: number;
  readonly allowLocalReference: boolean;
  readonly source: string;
}

/**
 * Turns a tracking report into a sample, or says why it cannot.
 *
 * - Estimate: true time = system time + current correction (chrony's sign:
 *   positive means the system clock is slow), so
 *   `offsetMs = (wall − mono) + currentCorrection`.
 * - Bound (ClockBound's): `|currentCorrection| + rootDelay/2 + rootDispersion`.
 *   The correction stays in the bound although the estimate applies it: while
 *   chronyd slews it out, the kernel runs CLOCK_MONOTONIC (`performance.now()`)
 *   at the slewed rate too, so extrapolating from this sample can be off by up
 *   to the correction still outstanding.
 * - Plus the wall-mapping error, chrony's float rounding, and the age of the
 *   last measurement (now − refTime) times `maxDrift`. chronyd already ages its
 *   dispersion by its own frequency estimate (skew + residual frequency +
 *   `maxclockerror`); this adds the bound the rest of chronobound assumes, so a
 *   chronyd whose frequency model is wrong cannot make the bound lie. chrony
 *   reports refTime up to 1 s early on purpose, and refreshes it only about
 *   once a minute for a `local` reference; the age errs long, the safe way.
 * - `monotonicAt` is the moment the request was sent: chronyd computed the
 *   report between then and the reply, and an earlier stamp only ages it more.
 * - `evidenceFrom` is chronyd's last measurement (refTime) mapped onto the
 *   monotonic timescale: `sentAt − (estimated true time at sentAt − refTime)`,
 *   never later than `sentAt`. The report is only as fresh as that
 *   measurement: after a suspend the kernel restores the wall clock from the
 *   RTC and chronyd keeps serving its pre-suspend report until it measures
 *   again, so "system time + correction" says nothing about the new timescale
 *   until then. Such a report maps to before the suspend (the wall clock
 *   jumped, CLOCK_MONOTONIC stood still), so it cannot end the disruption; the
 *   first report based on a measurement made after it can. refTime is on
 *   chronyd's corrected ("cooked": system + outstanding correction) timescale,
 *   the one the estimate is on, and chrony reports it up to 1 s early: the
 *   evidence is dated early, the safe way.
 * - `leapSecond`: leap status 1 announces an inserted second, 2 a deleted one
 *   (chronyd only reports one on the last day of June or December); status 3
 *   gives no sample.
 *
 * @internal
 */
export function trackingToSample(input: TrackingSampleInput): SampleOutcome {
  const { tracking, calibration, source } = input;
  const refId = tracking.refId.toString(16).toUpperCase().padStart(8, '0');
  if (tracking.leapStatus === 3 || (tracking.refId === 0 && tracking.stratum === 0)) {
    const message =
      'chronyd is not synchronised ' +
      `(leap status ${tracking.leapStatus}, stratum ${tracking.stratum}, reference ID ${refId})`;
    return {
      problem: {
        source,
        reason: 'chrony-unsynchronized',
        message,
        error: new SourceUnavailableError(source, message),
      },
    };
  }
  if (!input.allowLocalReference && tracking.refId === CHRONY_LOCAL_REFERENCE_ID) {
    const message =
      `chronyd serves its own clock as reference (local stratum ${tracking.stratum}), ` +
      'which allowLocalReference: false refuses';
    return {
      problem: {
        source,
        reason: 'chrony-local-reference',
        message,
        error: new SourceUnavailableError(source, message),
      },
    };
  }
  const correction = tracking.currentCorrectionMs;
  const offsetMs = calibration.offsetMs + correction;
  const chronyBound = Math.abs(correction) + tracking.rootDelayMs / 2 + tracking.rootDispersionMs;
  const rounding =
    (Math.abs(correction) + tracking.rootDelayMs + tracking.rootDispersionMs) *
    CHRONY_FLOAT_RELATIVE_ERROR;
  // chronyd's bound (with the mapping error) holds at its last measurement, refTime; aged
  // by the drift bound to the reply's arrival. Both ends are on chronyd's corrected
  // timescale (agedBound needs only the time between them), and a refTime in the future,
  // which is inconsistent, counts by its distance: |·| keeps the bound safe.
  const errorMs = agedBound(
    { monotonicAt: tracking.refTime, errorMs: chronyBound + rounding + calibration.errorMs },
    input.receivedAt + offsetMs,
    input.maxDrift,
  );
  if (!Number.isFinite(offsetMs) || !Number.isFinite(errorMs)) {
    const message = `chronyd's report cannot be placed in time (reference time ${tracking.refTime})`;
    return {
      problem: {
        source,
        reason: 'chrony-protocol',
        message,
        error: new ChronyProtocolError('refTime', message),
      },
    };
  }
  const evidenceFrom = Math.min(
    input.sentAt,
    input.sentAt - (input.sentAt + offsetMs - tracking.refTime),
  );
  const leapSecond = LEAP_SECONDS[tracking.leapStatus];
  return {
    sample: {
      monotonicAt: input.sentAt,
      offsetMs,
      errorMs,
      source,
      evidenceFrom,
      ...(leapSecond === undefined ? {} : { leapSecond }),
    },
  };
}

/** The leap second a tracking report's leap status announces (3 gives no sample). */
const LEAP_SECONDS: Readonly<Partial<Record<number, LeapSecond>>> = { 1: 'insert', 2: 'delete' };

/** Maps a failed exchange to a problem with a stable reason. */
function problemFromError(source: string, error: unknown): SourceProblem {
  if (error instanceof NtpTimeoutError) {
    return { source, reason: 'timeout', message: error.message, error };
  }
  if (error instanceof ChronyProtocolError) {
    return { source, reason: 'chrony-protocol', message: error.message, error };
  }
  if (error instanceof ChronoboundError) {
    return { source, reason: 'unavailable', message: error.message, error };
  }
  const wrapped = new SourceUnavailableError(source, String(error), { cause: error });
  return { source, reason: 'unavailable', message: wrapped.message, error: wrapped };
}

interface ExchangeOptions<T> {
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly monotonic: MonotonicSource;
  readonly scheduler: Scheduler;
  /** Background polls must not keep the process alive. */
  readonly background: boolean;
  /** Runs synchronously right before the first send. */
  readonly beforeSend: () => T;
}

/** Resolves the target and performs one tracking exchange. */
async function exchangeTracking<T>(
  target: Target,
  options: ExchangeOptions<T>,
): Promise<TrackingExchange<T>> {
  const operation = `chrony tracking request to ${target.label}`;
  if (options.signal?.aborted) throw new AbortError(operation, options.signal.reason);
  let address = target.host;
  let family = isIP(target.host);
  if (family === 0) {
    try {
      const resolved = await lookup(target.host);
      address = resolved.address;
      family = resolved.family;
    } catch (error) {
      throw new SourceUnavailableError(
        `chrony ${target.label}`,
        `cannot resolve ${JSON.stringify(target.host)}`,
        { cause: error },
      );
    }
    if (options.signal?.aborted) throw new AbortError(operation, options.signal.reason);
  }
  return sendAndReceive(target, address, family === 6 ? 6 : 4, operation, options);
}

function sendAndReceive<T>(
  target: Target,
  address: string,
  family: 4 | 6,
  operation: string,
  options: ExchangeOptions<T>,
): Promise<TrackingExchange<T>> {
  const { monotonic, scheduler, signal, timeoutMs } = options;
  return new Promise<TrackingExchange<T>>((resolve, reject) => {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    if (options.background) socket.unref();
    const sequence = randomSequence();
    const timers: unknown[] = [];
    let settled = false;
    let attempt = 0;
    let sentAt = Number.NaN;
    let prepared: T | undefined;

    const finish = (error: Error | undefined, exchange?: TrackingExchange<T>): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) scheduler.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try {
        socket.close();
      } catch {
        // Already closed by a failed bind; nothing to free.
      }
      if (error) reject(error);
      else resolve(exchange as TrackingExchange<T>);
    };
    const onAbort = (): void => finish(new AbortError(operation, signal?.reason));
    const later = (callback: () => void, ms: number): void => {
      const timer = scheduler.setTimeout(callback, ms);
      if (options.background) unrefTimer(timer);
      timers.push(timer);
    };
    const send = (): void => {
      const request = encodeChronyTrackingRequest(sequence, attempt++);
      socket.send(request, target.port, address, (error) => {
        if (error) {
          finish(
            new SourceUnavailableError(`chrony ${target.label}`, `send failed: ${error.message}`, {
              cause: error,
            }),
          );
        }
      });
    };

    socket.on('error', (error) =>
      finish(
        new SourceUnavailableError(`chrony ${target.label}`, `socket error: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    socket.on('message', (message, remote) => {
      if (settled) return;
      const receivedAt = monotonic.now();
      // Only chronyd's address and port may answer; anything else is ignored.
      if (remote.address !== address || remote.port !== target.port) return;
      let header;
      try {
        header = decodeChronyReplyHeader(message);
      } catch {
        return;
      }
      // A reply to an earlier request (or a guess) is not ours: keep waiting.
      if (header.packetType !== 2 || header.sequence !== sequence) return;
      let tracking: ChronyTracking;
      try {
        tracking = decodeChronyTrackingReply(message, sequence);
      } catch (error) {
        finish(error as Error);
        return;
      }
      finish(undefined, { tracking, sentAt, receivedAt, prepared: prepared as T });
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    later(() => finish(new NtpTimeoutError(target.label, timeoutMs)), timeoutMs);
    socket.bind(0, () => {
      if (settled) return;
      try {
        prepared = options.beforeSend();
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      sentAt = monotonic.now();
      send();
      for (let i = 1; i <= RESENDS; i++) {
        later(send, (timeoutMs * i) / (RESENDS + 1));
      }
    });
  });
}

/** Below this (ms) a calibration is as good as the clocks allow; no retry. */
const GOOD_CALIBRATION_MS = 0.01;

/**
 * Calibrates up to three times and keeps the tightest: a single edge bracket
 * is occasionally stretched by preemption or a cold JIT.
 */
function calibrateBest(wall: WallSource, monotonic: MonotonicSource): WallCalibration {
  let best = calibrateWall(wall, monotonic);
  for (let i = 0; i < 2 && best.errorMs > GOOD_CALIBRATION_MS; i++) {
    const next = calibrateWall(wall, monotonic);
    if (next.errorMs < best.errorMs) best = next;
  }
  return best;
}

/** A random 32-bit sequence number: a reply must echo it, so it cannot be guessed. */
function randomSequence(): number {
  const word = new Uint32Array(1);
  globalThis.crypto.getRandomValues(word);
  return word[0] ?? 0;
}

function readTarget(host: string | undefined, port: number | undefined): Target {
  const h = host ?? DEFAULT_HOST;
  if (typeof h !== 'string' || h.length === 0) {
    throw new InvalidArgumentError('host', h, 'a non-empty host name or address');
  }
  const p = port ?? DEFAULT_PORT;
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) {
    throw new InvalidArgumentError('port', p, 'an integer in [1, 65535]');
  }
  return { host: h, port: p, label: h.includes(':') ? `[${h}]:${p}` : `${h}:${p}` };
}
