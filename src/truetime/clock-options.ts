/**
 * The options of {@link TrueClock}, their defaults and their validation, and the
 * types its listeners and exporters see.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { systemMonotonic, systemScheduler, systemWall } from '../clock/system.js';
import type { HostCorrectionSource, TimeSource } from '../sources/types.js';
import type {
  ClockStatus,
  MonotonicSource,
  Scheduler,
  TimeReading,
  WallSource,
} from '../clock/types.js';

/**
 * Default `maxWanderPpmPerHour`. A PC's uncompensated crystal moves about 1 ppm per
 * °C, and a few ppm over a day (Mills: the median of ~20,000 NTP hosts was 78 ppm
 * off, varying "over a few parts per million, in the normal course of a day"); a
 * case or machine room that warms by a few °C within an hour under a load change
 * moves it a few ppm per hour. 5 ppm/h covers a 5 °C/h swing.
 */
const DEFAULT_MAX_WANDER_PPM_PER_HOUR = 5;

/** Default `panicThresholdMs`: ntpd's panic threshold, 1000 s. */
const DEFAULT_PANIC_THRESHOLD_MS = 1_000_000;

/** Default `leapWindowMs`: a noon-to-noon smear starts 12 h before the leap. */
const DEFAULT_LEAP_WINDOW_MS = 12 * 3600 * 1000;

/**
 * Options of {@link TrueClock}.
 *
 * @example
 * ```ts
 * const manual = new ManualClock();
 * const source = manualSource();
 * const clock = new TrueClock({
 *   source,
 *   maxDriftPpm: 200,
 *   maxUncertaintyMs: 20,
 *   monotonic: manual, wall: manual.wall, scheduler: manual, // simulated time, for the example
 * });
 * source.push(truthfulSample(manual, 5)); // ± 5 ms
 * clock.now().status;        //=> 'synchronized'
 * manual.advance(100_000);   // 100 s without a sample: ε grows by 200 ppm · 100 s = 20 ms
 * clock.now().uncertaintyMs; //=> 25.003…
 * clock.now().status;        //=> 'unsynchronized' (ε > maxUncertaintyMs)
 * ```
 */
export interface TrueClockOptions {
  /** Where sync samples come from: `ntpSource`, `chronySource`, `systemClockSource`, … */
  readonly source: TimeSource;
  /**
   * Bound on the monotonic clock's rate error, in ppm. It must cover the oscillator *and* the host
   * time daemon's slewing of `CLOCK_MONOTONIC` (see docs/truetime.md, or pass `hostCorrection`).
   * The default is TrueTime's figure.
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * How fast the monotonic clock's rate error may change (ppm per hour). The clock learns the
   * oscillator's frequency from its samples, and ε then grows at what is still unknown about it
   * (plus this wander) instead of at `maxDriftPpm`; the bound stays honest for any constant rate
   * error within ±`maxDriftPpm` plus a change within this bound. A sample that contradicts the
   * model resets it. `Infinity` turns learning off. The default covers a 5 °C/h swing of an
   * uncompensated crystal (about 1 ppm per °C).
   *
   * @defaultValue `5`
   */
  readonly maxWanderPpmPerHour?: number;
  /**
   * Above this ε (ms) the status is `unsynchronized` and strict calls throw.
   *
   * @defaultValue `50`
   */
  readonly maxUncertaintyMs?: number;
  /**
   * No sample for this long (ms) makes the status `free-running`. The default is long enough that a
   * healthy source never shows `free-running`.
   *
   * @defaultValue twice the source's `maxSampleGapMs`; for a source that does not give one,
   *   three `pollIntervalMs` (three times 64 000 when it gives neither)
   */
  readonly freeRunningAfterMs?: number;
  /**
   * The monotonic clock.
   *
   * @defaultValue `performance.now()` (`systemMonotonic`)
   */
  readonly monotonic?: MonotonicSource;
  /**
   * The wall clock the watchdog compares against.
   *
   * @defaultValue `Date.now()` (`systemWall`)
   */
  readonly wall?: WallSource;
  /**
   * Timers. Inject a virtual one in tests.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
  /**
   * How often the watchdog runs on a timer (ms); 0: no timer. Every `now()` also compares the
   * monotonic and wall clocks itself.
   *
   * @defaultValue `1000`
   */
  readonly watchdogIntervalMs?: number;
  /**
   * The host time daemon's outstanding correction (e.g. `chronyHostCorrection`
   * from `chronobound/ntp`): the largest seen since the current sample is added
   * to ε, as ClockBound adds chrony's `current_correction`. Closed with the clock.
   */
  readonly hostCorrection?: HostCorrectionSource;
  /**
   * How long before an announced leap second (ms) the interval starts to reach one second further
   * on the side the leap moves UTC, so that both a stepping and a noon-to-noon smearing reading of
   * UTC stay inside. It stays widened until a sample gathered after the leap is accepted. 0 widens
   * only from the moment the interval reaches the leap. The default, 12 h, covers a noon-to-noon
   * smear.
   *
   * @defaultValue `43_200_000` (12 h)
   */
  readonly leapWindowMs?: number;
  /**
   * The panic threshold (ms), as ntpd's 1000 s and chrony's `maxchange`: a sample whose time
   * differs from the wall clock (`Date.now()`) by more than this is refused with a
   * `'panic-threshold'` problem, since a source that far off is more likely broken or hostile than
   * the host clock. `Infinity` accepts any offset (a host whose clock starts at 1970). The default
   * is ntpd's.
   *
   * @defaultValue `1_000_000` (1000 s)
   */
  readonly panicThresholdMs?: number;
}

/**
 * Options of {@link TrueClock.ready}.
 *
 * @example
 * ```ts
 * await clock.ready({ timeoutMs: 5000 });
 * ```
 */
export interface ReadyOptions {
  /** Cancels the wait with `AbortError`. */
  readonly signal?: AbortSignal;
  /**
   * Gives up after this many ms with `ClockUnsynchronizedError`.
   *
   * @defaultValue `30_000`
   */
  readonly timeoutMs?: number;
}

/**
 * Called when the clock's status changes.
 *
 * @example
 * ```ts
 * const changes: string[] = [];
 * clock.onStatusChange((status, previous) => changes.push(`${previous} → ${status}`));
 * // … the first sample, then 100 s without one (as in TrueClockOptions' example):
 * changes; //=> ['unsynchronized → synchronized', 'synchronized → free-running', 'free-running → unsynchronized']
 * ```
 */
export type StatusListener = (
  status: ClockStatus,
  previous: ClockStatus,
  reading: TimeReading,
) => void;

/**
 * A snapshot of a clock's state for exporters (Prometheus, OpenTelemetry): see
 * {@link TrueClock.metrics}. Times in ms; counters only grow.
 *
 * @example
 * ```ts
 * clock.metrics(); // the clock of TrueClockOptions' example, just after its ± 5 ms sample
 * //=> { status: 'synchronized', uncertaintyMs: 5.003…, offsetFromWallMs: 0, sampleAgeMs: 0, sampleErrorMs: 5,
 * //     sampleSource: 'simulated', learnedRatePpm: undefined, maxDriftPpm: 200, hostCorrectionMs: 0,
 * //     samplesAccepted: 1, disruptions: 0, problems: {} }
 * gauge.set(clock.metrics().uncertaintyMs / 1000); // e.g. a Prometheus gauge in seconds
 * ```
 */
export interface ClockMetrics {
  /** The status of a reading taken now. */
  readonly status: ClockStatus;
  /** ε of a reading taken now (ms); `Infinity` without a sample. */
  readonly uncertaintyMs: number;
  /** The estimate minus the wall clock (`Date.now()`) now (ms); NaN without a sample. */
  readonly offsetFromWallMs: number;
  /** How long ago the current sample was taken (ms, monotonic); NaN without a sample. */
  readonly sampleAgeMs: number;
  /** The current sample's own bound (ms); NaN without a sample. */
  readonly sampleErrorMs: number;
  /** Where the current sample came from; `''` without one. */
  readonly sampleSource: string;
  /**
   * The learned bounds on the monotonic clock's rate error (ppm, positive: it runs
   * fast), or `undefined` until learned (or with learning off).
   */
  readonly learnedRatePpm: { readonly low: number; readonly high: number } | undefined;
  /** The configured drift bound (ppm). */
  readonly maxDriftPpm: number;
  /** The host daemon's outstanding correction counted in ε (ms). */
  readonly hostCorrectionMs: number;
  /** Samples accepted since the clock was created. */
  readonly samplesAccepted: number;
  /** Disruptions seen (watchdog, `now()` or `reportDisruption`). */
  readonly disruptions: number;
  /** Problems reported, by `reason` (`'timeout'`, `'stale-sample'`, …). */
  readonly problems: Readonly<Record<string, number>>;
}

/**
 * {@link TrueClockOptions} checked and with every default filled in.
 *
 * @example
 * ```ts
 * const { maxDriftPpm, freeRunningAfterMs } = resolveClockOptions({ source }); // 200, …
 * ```
 * @internal
 */
export interface ResolvedClockOptions {
  readonly source: TimeSource;
  readonly monotonic: MonotonicSource;
  readonly wall: WallSource;
  readonly scheduler: Scheduler;
  readonly maxDriftPpm: number;
  readonly maxUncertaintyMs: number;
  /** The user's `freeRunningAfterMs`, or the default at construction (a floor when the source's gap grows). */
  readonly freeRunningAfterMs: number;
  /** Whether the threshold follows the source's `maxSampleGapMs` as it changes. */
  readonly followsSourceGap: boolean;
  readonly maxWanderPpmPerHour: number;
  readonly panicThresholdMs: number;
  readonly leapWindowMs: number;
  readonly watchdogIntervalMs: number;
  readonly hostCorrection: HostCorrectionSource | undefined;
}

/**
 * Checks `options` (in the order of {@link TrueClockOptions}' bounds, so the first
 * bad one is named) and fills in the defaults.
 *
 * @param options - What the caller passed to `new TrueClock(...)`.
 * @returns The options with every default filled in.
 * @throws {@link InvalidArgumentError} When the source has no `subscribe()`, or a bound is negative or not a number.
 *
 * @example
 * ```ts
 * resolveClockOptions({ source, maxDriftPpm: -1 }); // throws InvalidArgumentError naming maxDriftPpm
 * ```
 * @internal
 */
export function resolveClockOptions(options: TrueClockOptions): ResolvedClockOptions {
  if (typeof options?.source?.subscribe !== 'function') {
    throw new InvalidArgumentError('source', options?.source, 'a TimeSource with subscribe()');
  }
  const source = options.source;
  const monotonic = options.monotonic ?? systemMonotonic;
  const wall = options.wall ?? systemWall;
  const scheduler = options.scheduler ?? systemScheduler;
  const maxDriftPpm = requireNonNegative('maxDriftPpm', options.maxDriftPpm ?? 200);
  const maxUncertaintyMs = requireNonNegative(
    'maxUncertaintyMs',
    options.maxUncertaintyMs ?? 50,
    true,
  );
  const gap = source.maxSampleGapMs;
  const followsSourceGap = options.freeRunningAfterMs === undefined && gap !== undefined;
  const freeRunningAfterMs = requireNonNegative(
    'freeRunningAfterMs',
    options.freeRunningAfterMs ??
      (gap !== undefined ? 2 * gap : 3 * (source.pollIntervalMs ?? 64_000)),
    true,
  );
  const maxWanderPpmPerHour = requireNonNegative(
    'maxWanderPpmPerHour',
    options.maxWanderPpmPerHour ?? DEFAULT_MAX_WANDER_PPM_PER_HOUR,
    true,
  );
  const panicThresholdMs = requireNonNegative(
    'panicThresholdMs',
    options.panicThresholdMs ?? DEFAULT_PANIC_THRESHOLD_MS,
    true,
  );
  const leapWindowMs = requireNonNegative(
    'leapWindowMs',
    options.leapWindowMs ?? DEFAULT_LEAP_WINDOW_MS,
    true,
  );
  const watchdogIntervalMs = requireNonNegative(
    'watchdogIntervalMs',
    options.watchdogIntervalMs ?? 1000,
  );
  return {
    source,
    monotonic,
    wall,
    scheduler,
    maxDriftPpm,
    maxUncertaintyMs,
    freeRunningAfterMs,
    followsSourceGap,
    maxWanderPpmPerHour,
    panicThresholdMs,
    leapWindowMs,
    watchdogIntervalMs,
    hostCorrection: options.hostCorrection,
  };
}
