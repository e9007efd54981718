/**
 * TrueClock: an honest clock. Every reading is an interval that contains true time.
 *
 * @module
 */
import {
  ClockUnsynchronizedError,
  CommitWaitTimeoutError,
  InvalidArgumentError,
  WaitTimeoutError,
} from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import type { HostCorrectionSource, SourceProblem, TimeSource } from '../sources/types.js';
import type { MonotonicSource, SyncSample, WallSource } from '../clock/types.js';
import type { CommitWaitResult, WaitOptions } from './sleep.js';
import type { ClockStatus, TimeReading } from '../clock/types.js';
import { LEAP_SECOND_MS } from './leap.js';
import { REPRESENTATION_ERROR } from './rate.js';
import { ClockState } from './clock-state.js';
import { clockMetrics, StatusPolicy } from './status.js';
import {
  commitWaitAt,
  waitFor,
  waitForSample,
  waitForTrust,
  type ClockWaitContext,
  type Waiter,
} from './waits.js';
import {
  resolveClockOptions,
  type ClockMetrics,
  type ReadyOptions,
  type StatusListener,
  type TrueClockOptions,
} from './clock-options.js';

export type {
  ClockMetrics,
  ReadyOptions,
  StatusListener,
  TrueClockOptions,
} from './clock-options.js';

/**
 * `now()` compares its monotonic and wall reads with the watchdog's last
 * bracketed check; past this age (ms) it re-checks instead, so the drift
 * allowance, and with it the smallest disruption it can miss, stays small.
 */
const WATCHDOG_BASELINE_MAX_AGE_MS = 1000;

/**
 * An honest clock in the style of Spanner's TrueTime: `now()` returns an
 * interval `[earliest, latest]` that contains true time, computed from the last
 * sync sample and a drift bound:
 *
 * ```
 * estimate = mono + offsetMs
 * ε        = errorMs + maxDrift·|mono − monotonicAt| + granularity
 * [earliest, latest] = [estimate − ε, estimate + ε]
 * ```
 *
 * `now()` never throws. Strict operations (`after`, `before`, `waitUntilAfter`,
 * `commitWait`) fail closed with `ClockUnsynchronizedError` when the status is
 * `unsynchronized` or `disrupted`.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({ source: ntpSource({ servers: ['127.0.0.1:11123'] }) });
 * await clock.ready();
 * const { earliest, latest } = clock.now();
 * const { timestamp } = await clock.commitWait((ts) => db.insert(ts));
 * await clock.close();
 * ```
 */
export class TrueClock {
  readonly #source: TimeSource;
  readonly #mono: MonotonicSource;
  readonly #wall: WallSource;
  readonly #maxDrift: number;
  readonly #maxDriftPpm: number;
  readonly #status: StatusPolicy;
  readonly #granularityMs: number;
  readonly #hostCorrection: HostCorrectionSource | undefined;
  /** The sample, the disruption and the last problem, and what changes them. */
  readonly #state: ClockState;
  readonly #unsubscribe: () => void;
  #lastStatus: ClockStatus = 'unsynchronized';
  readonly #waiters = new Set<Waiter>();
  readonly #statusListeners = new Set<StatusListener>();
  readonly #waitContext: ClockWaitContext;

  /**
   * Creates a clock and subscribes to its source.
   *
   * @param options - The source, bounds and injectable clocks.
   * @throws {@link InvalidArgumentError} When a bound is negative or not a number.
   */
  constructor(options: TrueClockOptions) {
    const resolved = resolveClockOptions(options);
    this.#source = resolved.source;
    this.#mono = resolved.monotonic;
    this.#wall = resolved.wall;
    this.#maxDriftPpm = resolved.maxDriftPpm;
    this.#maxDrift = this.#maxDriftPpm * 1e-6;
    this.#status = new StatusPolicy(
      resolved.maxUncertaintyMs,
      resolved.freeRunningAfterMs,
      resolved.followsSourceGap ? this.#source : undefined,
    );
    this.#granularityMs = this.#mono.resolutionMs ?? 0;
    this.#waitContext = {
      monotonic: this.#mono,
      scheduler: resolved.scheduler,
      waiters: this.#waiters,
      read: (strict, operation) => (strict ? this.#trustedReading(operation) : this.now()),
      now: () => this.now(),
      refresh: () => {
        // As strict operations do: a disruption not yet seen must count. Refreshing
        // also makes the next status change an event a waiter hears.
        this.#state.runWatchdog();
        this.#refreshStatus();
        return this.now();
      },
      closed: () => this.#state.closed,
      lastProblem: () => this.#state.lastProblem,
      onStatusChange: (listener) => this.onStatusChange(listener),
    };
    this.#hostCorrection = resolved.hostCorrection;
    this.#state = new ClockState(resolved, {
      now: () => this.now(),
      refreshStatus: () => this.#refreshStatus(),
      wakeWaiters: () => {
        for (const waiter of [...this.#waiters]) waiter.wake();
      },
    });
    this.#unsubscribe = this.#state.subscribe();
  }

  /**
   * Reads the clock. Never throws; cheap (two clock reads and one small object).
   * It reads the wall clock too, as ClockBound's client does, so a suspend, VM
   * pause or clock step is noticed by the very next call: the status is
   * `disrupted` at once, not only after the next watchdog tick.
   *
   * @returns The interval that contains true time, and its status.
   *
   * @example
   * ```ts
   * const { earliest, latest, uncertaintyMs, status } = clock.now();
   * ```
   */
  now(): TimeReading {
    let mono = this.#mono.now();
    const wall = this.#wall.now();
    const state = this.#state;
    if (!state.closed && !state.watchdog.agrees(mono, wall, WATCHDOG_BASELINE_MAX_AGE_MS)) {
      state.runWatchdog();
      mono = this.#mono.now();
    }
    const sample = state.sample;
    if (sample === undefined) {
      return {
        earliest: -Infinity,
        latest: Infinity,
        estimate: wall,
        uncertaintyMs: Infinity,
        status: 'unsynchronized',
      };
    }
    let estimate: number;
    let grownMs: number;
    const rate = state.rate;
    if (!rate.learned) {
      const elapsed = mono - sample.monotonicAt;
      estimate = mono + sample.offsetMs;
      grownMs = this.#maxDrift * (elapsed < 0 ? -elapsed : elapsed);
    } else {
      rate.ageTo(sample, mono);
      estimate = mono + sample.offsetMs + rate.shiftMs;
      grownMs = rate.spreadMs;
    }
    const uncertaintyMs =
      sample.errorMs +
      grownMs +
      this.#granularityMs +
      state.disruptionMs +
      state.corrections.sinceSampleMs +
      (estimate < 0 ? -estimate : estimate) * REPRESENTATION_ERROR;
    let earliest = estimate - uncertaintyMs;
    let latest = estimate + uncertaintyMs;
    const leaps = state.leaps;
    const leap = leaps.current;
    if (leap !== undefined && latest + leaps.windowMs >= leap.stepAtMs) {
      // Stepped UTC repeats (insert) or skips (delete) a second; a smeared UTC lies between.
      if (leap.direction === 'insert') earliest -= LEAP_SECOND_MS;
      else latest += LEAP_SECOND_MS;
    }
    return {
      earliest,
      latest,
      estimate,
      uncertaintyMs:
        leap === undefined ? uncertaintyMs : Math.max(estimate - earliest, latest - estimate),
      status: this.#status.statusAt(
        state.closed,
        state.disruptionMs,
        sample,
        uncertaintyMs,
        mono - state.lastSampleAt,
      ),
    };
  }

  /**
   * The current status; shorthand for `now().status`.
   *
   * @example
   * ```ts
   * if (clock.status === 'disrupted') pauseWrites();
   * ```
   */
  get status(): ClockStatus {
    return this.now().status;
  }

  /**
   * The sync sample the bound currently rests on, if any.
   *
   * @example
   * ```ts
   * console.log(clock.sample?.source, clock.sample?.errorMs);
   * ```
   */
  get sample(): SyncSample | undefined {
    return this.#state.sample;
  }

  /**
   * The latest problem a source reported (timeout, rejection, no majority…), or
   * the watchdog's disruption, if any.
   *
   * @example
   * ```ts
   * if (clock.status === 'unsynchronized') console.warn(clock.lastProblem?.message);
   * ```
   */
  get lastProblem(): SourceProblem | undefined {
    return this.#state.lastProblem;
  }

  /**
   * A snapshot for metrics exporters: the reading's status and ε, the current
   * sample, the learned rate, and counters of samples, disruptions and problems
   * by reason. Cheap; takes one reading.
   *
   * @returns The snapshot.
   *
   * @example
   * ```ts
   * const { uncertaintyMs, status, problems } = clock.metrics();
   * console.log(`ε ${uncertaintyMs} ms, ${status}, ${problems['timeout'] ?? 0} timeouts`);
   * ```
   */
  metrics(): ClockMetrics {
    const reading = this.now();
    const state = this.#state;
    return clockMetrics(
      reading,
      state.sample,
      this.#mono.now(),
      this.#wall,
      state.rate,
      this.#maxDriftPpm,
      state.corrections.sinceSampleMs,
      state.counters,
    );
  }

  /**
   * Whether `t` has definitely passed: `now().earliest > t`.
   *
   * @param t - An epoch-ms timestamp.
   * @returns `true` only if every time in the interval is after `t`.
   * @throws {@link ClockUnsynchronizedError} When the status is `unsynchronized` or `disrupted`.
   *
   * @example
   * ```ts
   * if (clock.after(lease.expiry)) reclaim();
   * ```
   */
  after(t: number): boolean {
    return this.#trustedReading('after()').earliest > t;
  }

  /**
   * Whether `t` has definitely not arrived yet: `now().latest < t`.
   *
   * @param t - An epoch-ms timestamp.
   * @returns `true` only if every time in the interval is before `t`.
   * @throws {@link ClockUnsynchronizedError} When the status is `unsynchronized` or `disrupted`.
   *
   * @example
   * ```ts
   * if (clock.before(deadline)) doWork();
   * ```
   */
  before(t: number): boolean {
    return this.#trustedReading('before()').latest < t;
  }

  /**
   * Resolves on the first accepted sample (at once if there is one).
   *
   * @param options - Abort signal and timeout (default 30 s).
   * @returns The first reading backed by a sample.
   * @throws {@link ClockUnsynchronizedError} When no sample arrives in time (names the last problem).
   * @throws {@link AbortError} When `signal` aborts.
   *
   * @example
   * ```ts
   * await clock.ready({ timeoutMs: 5000 });
   * ```
   */
  ready(options: ReadyOptions = {}): Promise<TimeReading> {
    const timeoutMs = requireNonNegative('timeoutMs', options.timeoutMs ?? 30_000, true);
    return waitForSample(
      this.#waitContext,
      timeoutMs,
      options.signal,
      () => this.#state.sample !== undefined,
    );
  }

  /**
   * Resolves once strict operations would act: at once with the current reading
   * when the status is `synchronized` or `free-running`, else on the first status
   * change to one of them. Unlike {@link TrueClock.ready}, which resolves on any
   * clock that has had a sample, it also waits out `disrupted` (until a sample
   * gathered after the disruption) and `unsynchronized` with a sample (ε above
   * `maxUncertaintyMs`, an assumed sample).
   *
   * @param options - Abort signal and timeout (default 30 s).
   * @returns The first trusted reading.
   * @throws {@link ClockUnsynchronizedError} When the clock is not trusted within `timeoutMs`, or is
   *   closed (names the last problem).
   * @throws {@link AbortError} When `signal` aborts.
   *
   * @example
   * ```ts
   * try { clock.after(t) } catch { await clock.whenTrusted({ timeoutMs: 10_000 }) } // { status: 'synchronized', … }
   * ```
   */
  whenTrusted(options: ReadyOptions = {}): Promise<TimeReading> {
    const timeoutMs = requireNonNegative('timeoutMs', options.timeoutMs ?? 30_000, true);
    return waitForTrust(this.#waitContext, timeoutMs, options.signal);
  }

  /**
   * Waits until `t` has definitely passed (`now().earliest > t`). Sleeps with a
   * timer for the bulk and finishes on short polls, so it resolves well under a
   * millisecond after the moment `earliest` passes `t`.
   *
   * @param t - An epoch-ms timestamp.
   * @param options - Abort signal and timeout.
   * @returns The first reading whose `earliest` is after `t`.
   * @throws {@link ClockUnsynchronizedError} When the clock is, or becomes, untrustworthy.
   * @throws {@link WaitTimeoutError} When `timeoutMs` elapses first.
   * @throws {@link AbortError} When `signal` aborts.
   *
   * @example
   * ```ts
   * await clock.waitUntilAfter(leaseExpiry, { timeoutMs: 10_000 });
   * ```
   */
  waitUntilAfter(t: number, options: WaitOptions = {}): Promise<TimeReading> {
    return this.#waitUntilAfter(
      t,
      options,
      (ms) => new WaitTimeoutError('waitUntilAfter()', t, ms),
    );
  }

  /** The body of `waitUntilAfter`; `onTimeout` is the error its caller throws on timeout. */
  #waitUntilAfter(
    t: number,
    options: WaitOptions,
    onTimeout: (timeoutMs: number) => WaitTimeoutError,
  ): Promise<TimeReading> {
    if (typeof t !== 'number' || Number.isNaN(t)) {
      return Promise.reject(new InvalidArgumentError('t', t, 'an epoch-ms number'));
    }
    const timeoutMs = requireNonNegative('timeoutMs', options.timeoutMs ?? Infinity, true);
    return waitFor(
      this.#waitContext,
      'waitUntilAfter()',
      options.signal,
      timeoutMs,
      (reading) =>
        reading.earliest > t ? reading : (t - reading.earliest) / (1 - this.#maxDrift) + 1e-9,
      true,
      () => onTimeout(timeoutMs),
    );
  }

  /**
   * Commit-wait (Spanner): picks `s = now().latest`, runs `write(s)`, and resolves
   * only once `now().earliest > s`, so any transaction that starts after this one
   * resolves gets a larger timestamp. The wait overlaps the write; it costs about
   * 2ε per write. If `write` throws, the wait is cancelled and the error rethrown.
   * If the wait fails, the write has happened but must not be acknowledged.
   *
   * @param write - The write, given its commit timestamp.
   * @param options - Abort signal and timeout for the wait.
   * @returns The timestamp, the write's result and how long the result was held back.
   * @throws {@link ClockUnsynchronizedError} When the clock is, or becomes, untrustworthy.
   * @throws {@link CommitWaitTimeoutError} When `timeoutMs` elapses first (a {@link WaitTimeoutError}).
   * @throws {@link AbortError} When `signal` aborts.
   *
   * @example
   * ```ts
   * const { timestamp, result } = await clock.commitWait((ts) => db.insert({ id, ts }));
   * ```
   */
  async commitWait<T>(
    write: (timestamp: number) => T | PromiseLike<T>,
    options: WaitOptions = {},
  ): Promise<CommitWaitResult<T>> {
    const timestamp = this.#trustedReading('commitWait()').latest;
    return commitWaitAt(
      timestamp,
      write,
      options,
      (t, waitOptions) =>
        this.#waitUntilAfter(t, waitOptions, (ms) => new CommitWaitTimeoutError(t, ms)),
      this.#mono,
    );
  }

  /**
   * Subscribes to status changes (checked on every sample, problem and watchdog run).
   *
   * @param listener - Called with the new status, the previous one and a reading.
   * @returns A function that unsubscribes.
   *
   * @example
   * ```ts
   * const off = clock.onStatusChange((s) => metrics.gauge('clock_status', s));
   * ```
   */
  onStatusChange(listener: StatusListener): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  /**
   * Marks the clock `disrupted` from outside, e.g. by a pause detector that saw
   * the process stopped: the bound is widened by `widenMs` and strict operations
   * (and leases) refuse until a sample taken after this call is accepted. Without
   * a sample the clock is already `unsynchronized` and this does nothing.
   *
   * @param source - Who reports it (shown in `lastProblem.source`), e.g. `'pause-detector'`.
   * @param widenMs - How far true time may have moved unseen (ms, > 0), e.g. the pause length.
   * @param detail - Human-readable cause, shown in `lastProblem.message` and in refusals.
   * @throws {@link InvalidArgumentError} When `widenMs` is not a finite number > 0.
   *
   * @example
   * ```ts
   * detector.onPause((p) => clock.reportDisruption('pause-detector', p.maxDurationMs, 'process stopped'));
   * ```
   */
  reportDisruption(source: string, widenMs: number, detail: string): void {
    if (typeof widenMs !== 'number' || !(widenMs > 0) || !Number.isFinite(widenMs)) {
      throw new InvalidArgumentError('widenMs', widenMs, 'a finite number > 0');
    }
    this.#state.reportDisruption(source, widenMs, detail);
  }

  /**
   * Stops the source and the watchdog and rejects pending waits. Idempotent.
   *
   * @example
   * ```ts
   * await clock.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#state.closed) return;
    this.#state.close();
    this.#unsubscribe();
    for (const waiter of [...this.#waiters]) {
      waiter.fail(
        new ClockUnsynchronizedError('wait', 'unsynchronized', Infinity, 'the clock was closed'),
      );
    }
    this.#refreshStatus();
    await Promise.all([this.#source.close(), this.#hostCorrection?.close()]);
  }

  /**
   * Same as {@link TrueClock.close}, for `await using clock = new TrueClock(...)`.
   *
   * @example
   * ```ts
   * await using clock = new TrueClock({ source });
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A reading strict operations may act on, after running the watchdog. */
  #trustedReading(operation: string): TimeReading {
    this.#state.runWatchdog();
    const reading = this.now();
    if (reading.status === 'synchronized' || reading.status === 'free-running') return reading;
    const detail = this.#state.refusalDetail(reading.status);
    throw new ClockUnsynchronizedError(operation, reading.status, reading.uncertaintyMs, detail);
  }

  #refreshStatus(): void {
    const reading = this.now();
    const previous = this.#lastStatus;
    if (reading.status === previous) return;
    this.#lastStatus = reading.status;
    for (const listener of [...this.#statusListeners]) listener(reading.status, previous, reading);
  }
}
