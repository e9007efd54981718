/**
 * chronyd as a time source: reads its `tracking` report over the cmdmon UDP
 * port (unprivileged from localhost) and turns it into sync samples with an
 * honest bound, the way AWS ClockBound does; and as the host's time daemon,
 * whose outstanding correction `TrueClock` adds to its bound. The options,
 * transport, polling loop and report-to-sample step live in `chrony-options.ts`,
 * `chrony-transport.ts`, `chrony-polling.ts` and `chrony-sample.ts`.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative, requirePositive } from '../_internals/validate.js';
import { systemMonotonic, systemScheduler, systemWall } from '../clock/system.js';
import type { HostCorrection, HostCorrectionSource } from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import {
  DEFAULT_MAX_DRIFT_PPM,
  DEFAULT_TIMEOUT_MS,
  readChronyTarget,
  type ChronyHostCorrectionOptions,
  type ChronySource,
  type ChronySourceOptions,
  type ChronyTrackingOptions,
} from './chrony-options.js';
import { PollerSet, readPollSettings, startPolling, type PollOutcome } from './chrony-polling.js';
import type { ChronyTracking } from './chrony-protocol.js';
import { calibrateBest, trackingToSample } from './chrony-sample.js';
import { exchangeTracking } from './chrony-transport.js';

/**
 * Reads chronyd's `tracking` report once, over its cmdmon UDP port: the same
 * numbers `chronyc tracking` prints, in milliseconds. A reply from another
 * address or port, or one that echoes another sequence number, is ignored.
 *
 * @param options - Where chronyd listens, and the timeout.
 * @returns The decoded report (whether or not chronyd is synchronised).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 * @throws {@link ChronyTimeoutError} When chronyd does not answer within `timeoutMs`.
 * @throws {@link ChronyProtocolError} When chronyd refuses (e.g. not in `cmdallow`) or the reply is malformed.
 * @throws {@link chronobound!SourceUnavailableError | SourceUnavailableError} When the host cannot be resolved or the socket fails.
 * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts.
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
  const target = readChronyTarget(options.host, options.port);
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
 * A `TimeSource` that polls chronyd's tracking report and turns it into
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
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({ source: chronySource({ port: 323 }) });
 * await clock.ready({ timeoutMs: 5000 });
 * const { earliest, latest } = clock.now();
 * ```
 */
export function chronySource(options: ChronySourceOptions = {}): ChronySource {
  const settings = readPollSettings(options);
  const { pollIntervalMs, timeoutMs, name } = settings;
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
        ...settings,
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
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
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
  const settings = readPollSettings(options);
  const { name } = settings;
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
        ...settings,
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
