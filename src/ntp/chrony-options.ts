/**
 * Options of the chronyd sources ({@link ChronyTrackingOptions},
 * {@link ChronySourceOptions}, {@link ChronyHostCorrectionOptions}), the
 * {@link ChronySource} interface, their defaults, and the validated cmdmon
 * target they share.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { Scheduler, WallSource } from '../clock/types.js';
import type { TimeSource } from '../sources/types.js';
import type { ChronyTracking } from './chrony-protocol.js';

/** Default address of chronyd's command port. */
const DEFAULT_HOST = '127.0.0.1';
/** chronyd's default cmdmon port. */
const DEFAULT_PORT = 323;
/**
 * Default per-request timeout (ms).
 * @internal
 */
export const DEFAULT_TIMEOUT_MS: number = 1000;
/**
 * Default poll interval (ms).
 * @internal
 */
export const DEFAULT_POLL_INTERVAL_MS: number = 1000;
/**
 * Default drift bound (ppm) when neither the options nor the subscribing clock give one.
 * @internal
 */
export const DEFAULT_MAX_DRIFT_PPM: number = 200;

/**
 * Options of {@link readChronyTracking}.
 *
 * @example
 * ```ts
 * await readChronyTracking({ host: '127.0.0.1', port: 323, timeoutMs: 500 });
 * // the tracking report; rejects with ChronyTimeoutError after 500 ms when chronyd is not running
 * ```
 */
export interface ChronyTrackingOptions {
  /**
   * Address (or name) of chronyd's command port.
   *
   * @defaultValue `'127.0.0.1'`
   */
  readonly host?: string;
  /**
   * chronyd's `cmdport`.
   *
   * @defaultValue `323`
   */
  readonly port?: number;
  /**
   * Give up after this many ms (the request is resent twice meanwhile).
   *
   * @defaultValue `1000`
   */
  readonly timeoutMs?: number;
  /** Cancels the request with `AbortError`. */
  readonly signal?: AbortSignal;
}

/**
 * Options of {@link chronySource}.
 *
 * @example
 * ```ts
 * chronySource({ port: 323, pollIntervalMs: 1000, maxDriftPpm: 200 }).pollIntervalMs; //=> 1000
 * ```
 */
export interface ChronySourceOptions {
  /**
   * Address (or name) of chronyd's command port.
   *
   * @defaultValue `'127.0.0.1'`
   */
  readonly host?: string;
  /**
   * chronyd's `cmdport`.
   *
   * @defaultValue `323`
   */
  readonly port?: number;
  /**
   * How often to read the tracking report (ms).
   *
   * @defaultValue `1000`
   */
  readonly pollIntervalMs?: number;
  /**
   * Per-request timeout (ms).
   *
   * @defaultValue `1000`
   */
  readonly timeoutMs?: number;
  /**
   * Bound on the clock's drift (ppm) applied to the age of chronyd's last measurement. ClockBound
   * uses 15.
   *
   * @defaultValue the subscribing clock's drift bound (`SourceContext.maxDriftPpm`: a `TrueClock`
   *   hands over its `maxDriftPpm`), else `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * Accept a chronyd that serves its own clock (`local` directive, reference ID 7F7F0101) as if it
   * were synchronised, as chronyd itself does. With `false` such reports give no sample and a
   * `'chrony-local-reference'` problem.
   *
   * @defaultValue `true`
   */
  readonly allowLocalReference?: boolean;
  /**
   * The wall clock chronyd disciplines.
   *
   * @defaultValue `Date.now()` (`systemWall`)
   */
  readonly wall?: WallSource;
  /**
   * Timers for polling and timeouts.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
}

/**
 * A {@link TimeSource} backed by chronyd, with the tracking report of its
 * latest successful poll.
 *
 * @example
 * ```ts
 * const source = chronySource();
 * source.tracking; //=> undefined (before the first poll)
 * const clock = new TrueClock({ source });
 * await clock.ready();
 * source.tracking?.stratum; // chronyd's stratum, as `chronyc tracking` prints it
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
 * const clock = new TrueClock({
 *   source: ntpSource({ servers: ['0.pool.ntp.org', '1.pool.ntp.org', '2.pool.ntp.org'] }),
 *   hostCorrection: chronyHostCorrection({ port: 323, pollIntervalMs: 1000 }),
 * });
 * clock.metrics().hostCorrectionMs; // what chronyd is still slewing out of the clock, counted in ε
 * ```
 */
export interface ChronyHostCorrectionOptions {
  /**
   * Address (or name) of chronyd's command port.
   *
   * @defaultValue `'127.0.0.1'`
   */
  readonly host?: string;
  /**
   * chronyd's `cmdport`.
   *
   * @defaultValue `323`
   */
  readonly port?: number;
  /**
   * How often to read the tracking report (ms).
   *
   * @defaultValue `1000`
   */
  readonly pollIntervalMs?: number;
  /**
   * Per-request timeout (ms).
   *
   * @defaultValue `1000`
   */
  readonly timeoutMs?: number;
  /**
   * Timers for polling and timeouts.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
}

/**
 * Where to send requests, validated.
 * @internal
 */
export interface ChronyTarget {
  readonly host: string;
  readonly port: number;
  /** `host:port` for messages. */
  readonly label: string;
}

/**
 * Validates `host` and `port` (defaults: 127.0.0.1, 323) into a target.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When either is out of range.
 * @internal
 */
export function readChronyTarget(host: string | undefined, port: number | undefined): ChronyTarget {
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
