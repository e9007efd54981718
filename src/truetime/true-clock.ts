/**
 * TrueClock: an honest clock. Every reading is an interval that contains true time.
 *
 * @module
 */
import {
  ClockUnsynchronizedError,
  CommitWaitTimeoutError,
  InvalidArgumentError,
} from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative } from '../_internals/validate.js';
import type { HostCorrectionSource, SourceProblem, TimeSource } from '../sources/types.js';
import type { MonotonicSource, Scheduler, SyncSample, WallSource } from '../clock/types.js';
import type { CommitWaitResult, WaitOptions } from './sleep.js';
import type { ClockStatus, TimeReading } from '../clock/types.js';
import { LEAP_SECOND_MS, LeapTracker } from './leap.js';
import { RateModel, REPRESENTATION_ERROR } from './rate.js';
import { beyondPanicThreshold, malformedSample, preferSample, staleSample } from './acceptance.js';
import { Watchdog } from './watchdog.js';
import { HostCorrections } from './host-correction.js';
import { ClockCounters, clockMetrics, StatusPolicy } from './status.js';
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
  readonly #scheduler: Scheduler;
  readonly #maxDrift: number;
  readonly #maxDriftPpm: number;
  readonly #status: StatusPolicy;
  readonly #granularityMs: number;
  readonly #watchdog: Watchdog;
  readonly #watchdogIntervalMs: number;
  readonly #unsubscribe: () => void;
  readonly #hostCorrection: HostCorrectionSource | undefined;
  readonly #unsubscribeHostCorrection: (() => void) | undefined;
  /** The leap second the sources announced, if any. */
  readonly #leaps: LeapTracker;
  readonly #panicThresholdMs: number;
  /** The drift bound and the learned frequency. */
  readonly #rate: RateModel;

  #sample: SyncSample | undefined;
  readonly #corrections = new HostCorrections();
  #lastSampleAt = -Infinity;
  #disruptionMs = 0;
  #disruptedAt = -Infinity;
  #disruptionDetail = '';
  #lastProblem: SourceProblem | undefined;
  #lastStatus: ClockStatus = 'unsynchronized';
  #closed = false;
  readonly #counters = new ClockCounters();
  #watchdogTimer: unknown;
  readonly #waiters = new Set<Waiter>();
  readonly #statusListeners = new Set<StatusListener>();
  readonly #waitContext: ClockWaitContext;

  /**
   * Creates a clock and subscribes to its source.
   *
   * @param options - The source, bounds and injectable clocks.
   * @throws {InvalidArgumentError} When a bound is negative or not a number.
   */
  constructor(options: TrueClockOptions) {
    const resolved = resolveClockOptions(options);
    this.#source = resolved.source;
    this.#mono = resolved.monotonic;
    this.#wall = resolved.wall;
    this.#scheduler = resolved.scheduler;
    this.#maxDriftPpm = resolved.maxDriftPpm;
    this.#maxDrift = this.#maxDriftPpm * 1e-6;
    this.#status = new StatusPolicy(
      resolved.maxUncertaintyMs,
      resolved.freeRunningAfterMs,
      resolved.followsSourceGap ? this.#source : undefined,
    );
    this.#rate = new RateModel(this.#maxDrift, resolved.maxWanderPpmPerHour);
    this.#panicThresholdMs = resolved.panicThresholdMs;
    this.#leaps = new LeapTracker(this.#maxDrift, resolved.leapWindowMs);
    this.#watchdogIntervalMs = resolved.watchdogIntervalMs;
    this.#granularityMs = this.#mono.resolutionMs ?? 0;
    this.#waitContext = {
      monotonic: this.#mono,
      scheduler: this.#scheduler,
      waiters: this.#waiters,
      read: (strict, operation) => (strict ? this.#trustedReading(operation) : this.now()),
      now: () => this.now(),
      refresh: () => {
        // As strict operations do: a disruption not yet seen must count. Refreshing
        // also makes the next status change an event a waiter hears.
        this.#runWatchdog();
        this.#refreshStatus();
        return this.now();
      },
      closed: () => this.#closed,
      lastProblem: () => this.#lastProblem,
      onStatusChange: (listener) => this.onStatusChange(listener),
    };
    this.#watchdog = new Watchdog(this.#wall, this.#mono, this.#maxDrift);
    this.#scheduleWatchdog();
    this.#hostCorrection = resolved.hostCorrection;
    this.#unsubscribeHostCorrection = this.#hostCorrection?.subscribe(
      (correction) => {
        if (this.#closed) return;
        const malformed = this.#corrections.record(correction, this.#rate, this.#mono);
        if (malformed !== undefined) this.#problem(malformed);
      },
      this.#mono,
      (problem) => this.#problem(problem),
    );
    this.#unsubscribe = this.#source.subscribe(
      (sample) => this.#accept(sample),
      this.#mono,
      (problem) => this.#sourceProblem(problem),
      {
        maxDriftPpm: this.#maxDriftPpm,
        predictUncertaintyMs: (errorMs, elapsedMs) =>
          this.#rate.predict(errorMs, elapsedMs, this.#mono.now(), this.#sample),
        ageSample: (sample, atMonotonic) => this.#rate.ageSample(sample, atMonotonic),
      },
    );
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
    if (!this.#closed && !this.#watchdog.agrees(mono, wall, WATCHDOG_BASELINE_MAX_AGE_MS)) {
      this.#runWatchdog();
      mono = this.#mono.now();
    }
    const sample = this.#sample;
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
    const rate = this.#rate;
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
      this.#disruptionMs +
      this.#corrections.sinceSampleMs +
      (estimate < 0 ? -estimate : estimate) * REPRESENTATION_ERROR;
    let earliest = estimate - uncertaintyMs;
    let latest = estimate + uncertaintyMs;
    const leaps = this.#leaps;
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
        this.#closed,
        this.#disruptionMs,
        sample,
        uncertaintyMs,
        mono - this.#lastSampleAt,
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
    return this.#sample;
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
    return this.#lastProblem;
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
    return clockMetrics(
      reading,
      this.#sample,
      this.#mono.now(),
      this.#wall,
      this.#rate,
      this.#maxDriftPpm,
      this.#corrections.sinceSampleMs,
      this.#counters,
    );
  }

  /**
   * Whether `t` has definitely passed: `now().earliest > t`.
   *
   * @param t - An epoch-ms timestamp.
   * @returns `true` only if every time in the interval is after `t`.
   * @throws {ClockUnsynchronizedError} When the status is `unsynchronized` or `disrupted`.
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
   * @throws {ClockUnsynchronizedError} When the status is `unsynchronized` or `disrupted`.
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
   * @throws {ClockUnsynchronizedError} When no sample arrives in time (names the last problem).
   * @throws {AbortError} When `signal` aborts.
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
      () => this.#sample !== undefined,
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
   * @throws {ClockUnsynchronizedError} When the clock is not trusted within `timeoutMs`, or is
   *   closed (names the last problem).
   * @throws {AbortError} When `signal` aborts.
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
   * @throws {ClockUnsynchronizedError} When the clock is, or becomes, untrustworthy.
   * @throws {CommitWaitTimeoutError} When `timeoutMs` elapses first.
   * @throws {AbortError} When `signal` aborts.
   *
   * @example
   * ```ts
   * await clock.waitUntilAfter(leaseExpiry, { timeoutMs: 10_000 });
   * ```
   */
  waitUntilAfter(t: number, options: WaitOptions = {}): Promise<TimeReading> {
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
      () => new CommitWaitTimeoutError(t, timeoutMs),
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
   * @throws {ClockUnsynchronizedError} When the clock is, or becomes, untrustworthy.
   * @throws {CommitWaitTimeoutError} When `timeoutMs` elapses first.
   * @throws {AbortError} When `signal` aborts.
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
      (t, waitOptions) => this.waitUntilAfter(t, waitOptions),
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
   * Stops the source and the watchdog and rejects pending waits. Idempotent.
   *
   * @example
   * ```ts
   * await clock.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#scheduler.clearTimeout(this.#watchdogTimer);
    this.#unsubscribe();
    this.#unsubscribeHostCorrection?.();
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
    this.#runWatchdog();
    const reading = this.now();
    if (reading.status === 'synchronized' || reading.status === 'free-running') return reading;
    const detail = this.#closed
      ? 'the clock was closed'
      : reading.status === 'disrupted'
        ? this.#disruptionDetail
        : this.#lastProblem?.message;
    throw new ClockUnsynchronizedError(operation, reading.status, reading.uncertaintyMs, detail);
  }

  #accept(sample: SyncSample): void {
    if (this.#closed) return;
    const mono = this.#mono.now();
    const malformed = malformedSample(sample, mono, this.#granularityMs);
    if (malformed !== undefined) {
      this.#problem(malformed);
      return;
    }
    const evidenceFrom = sample.evidenceFrom ?? sample.monotonicAt;
    // A disruption that happened before this sample arrived must be seen first.
    this.#runWatchdog();
    const refused =
      beyondPanicThreshold(
        sample,
        mono,
        this.#panicThresholdMs,
        () => this.#wall.now(),
        this.#sample === undefined ? undefined : () => this.now(),
      ) ?? staleSample(sample, evidenceFrom, this.#disruptedAt);
    if (refused !== undefined) {
      this.#problem(refused);
      return;
    }
    if (this.#disruptionMs > 0) {
      this.#disruptionMs = 0;
      this.#sample = undefined;
    }
    const current = this.#sample;
    const afterLeap = current !== undefined && this.#leaps.gatheredAfter(evidenceFrom, current);
    if (afterLeap) {
      // The offsets on either side of a step differ by a second: no rate spans it.
      this.#leaps.current = undefined;
      this.#rate.reset();
    }
    const contradiction = this.#rate.learn(sample);
    if (contradiction !== undefined) this.#problem(contradiction);
    if (
      current === undefined ||
      afterLeap ||
      preferSample(sample, current, mono, this.#rate, (problem) => this.#problem(problem))
    ) {
      this.#sample = sample;
      this.#corrections.sampleTaken();
    }
    if (sample.leapSecond !== undefined) {
      const announced = this.#leaps.announce(sample, sample.leapSecond);
      if (announced !== undefined) this.#problem(announced);
    }
    this.#counters.samplesAccepted++;
    this.#lastSampleAt = mono;
    this.#refreshStatus();
    this.#wakeWaiters();
  }

  /**
   * A source's problem. One that says `'disrupted'` (a ClockBound daemon, a host
   * agent that saw a VM migration) disrupts the clock: how far time moved is not
   * known, so the bound is unbounded until a sample gathered after it.
   */
  #sourceProblem(problem: SourceProblem): void {
    if (problem.reason === 'disrupted' && this.#sample !== undefined) {
      this.#disrupt(problem.source, Infinity, problem.message);
      return;
    }
    this.#problem(problem);
  }

  #problem(problem: SourceProblem): void {
    this.#lastProblem = problem;
    this.#counters.problem(problem.reason);
    this.#refreshStatus();
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
   * @throws {InvalidArgumentError} When `widenMs` is not a finite number > 0.
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
    this.#disrupt(
      source,
      widenMs,
      `${detail}; bound widened by ${widenMs.toFixed(3)} ms until the next sample`,
    );
  }

  #runWatchdog(): void {
    if (this.#closed) return;
    const discrepancy = this.#watchdog.check();
    if (discrepancy > 0) {
      this.#disrupt(
        'watchdog',
        discrepancy,
        `the watchdog saw the monotonic and wall clocks disagree by ${discrepancy.toFixed(3)} ms ` +
          '(suspend, VM pause or clock step); bound widened until the next sample',
      );
    }
  }

  #disrupt(source: string, widenMs: number, message: string): void {
    if (this.#closed) return;
    // Remembered even before the first sample: a reply in flight across a suspend
    // must not become the first sample.
    this.#disruptedAt = this.#mono.now();
    this.#counters.disruptions++;
    this.#rate.reset();
    this.#source.invalidate?.(this.#disruptedAt);
    if (this.#sample === undefined) {
      this.#problem({ source, reason: 'disrupted', message });
      return;
    }
    this.#disruptionMs += widenMs;
    this.#disruptionDetail = message;
    this.#problem({ source, reason: 'disrupted', message });
    this.#wakeWaiters();
  }

  #scheduleWatchdog(): void {
    if (this.#watchdogIntervalMs === 0 || this.#closed) return;
    this.#watchdogTimer = this.#scheduler.setTimeout(() => {
      this.#runWatchdog();
      this.#refreshStatus();
      this.#scheduleWatchdog();
    }, this.#watchdogIntervalMs);
    unrefTimer(this.#watchdogTimer);
  }

  #wakeWaiters(): void {
    for (const waiter of [...this.#waiters]) waiter.wake();
  }

  #refreshStatus(): void {
    const reading = this.now();
    const previous = this.#lastStatus;
    if (reading.status === previous) return;
    this.#lastStatus = reading.status;
    for (const listener of [...this.#statusListeners]) listener(reading.status, previous, reading);
  }
}
