/**
 * What a `TrueClock`'s bound rests on, and the state machine that changes it:
 * samples accepted or refused, problems reported, and disruptions (reported
 * from outside, announced by a source, or seen by the watchdog, which also runs
 * on a timer). `TrueClock.now()` reads its fields.
 *
 * @module
 * @internal
 */
import { unrefTimer } from '../_internals/timers.js';
import type { HostCorrection, SourceProblem, TimeSource } from '../sources/types.js';
import type { ClockStatus, SyncSample, TimeReading } from '../clock/types.js';
import type { ResolvedClockOptions } from './clock-options.js';
import { LeapTracker } from './leap.js';
import { RateModel } from './rate.js';
import { beyondPanicThreshold, malformedSample, preferSample, staleSample } from './acceptance.js';
import { Watchdog } from './watchdog.js';
import { HostCorrections } from './host-correction.js';
import { ClockCounters } from './status.js';

/**
 * What the state asks of the clock that holds it.
 *
 * @example
 * ```ts
 * // as TrueClock's constructor builds its state, with the clock as the host:
 * const state = new ClockState(resolved, { now: () => clock.now(), refreshStatus, wakeWaiters });
 * ```
 * @internal
 */
export interface ClockStateHost {
  /** The clock's reading; the panic threshold compares a sample with it. */
  now(): TimeReading;
  /** Brings the reported status up to date; listeners hear of a change. */
  refreshStatus(): void;
  /** Wakes the pending waits: a sample or a disruption may settle them. */
  wakeWaiters(): void;
}

/**
 * The sample a clock's bound rests on, its disruption and its last problem, with
 * the transitions between them: {@link ClockState.accept} a sample (or refuse it
 * as a problem), {@link ClockState.problem}, {@link ClockState.reportDisruption},
 * {@link ClockState.runWatchdog}. A disruption widens the bound until a sample
 * gathered after it is accepted.
 *
 * @example
 * ```ts
 * const state = new ClockState(resolveClockOptions({ source }), host);
 * const unsubscribe = state.subscribe();
 * state.sample; // the first accepted sample, once the source delivers one
 * ```
 * @internal
 */
export class ClockState {
  /** The sample the bound rests on, if any. */
  sample: SyncSample | undefined;
  /** Monotonic time the last sample was accepted. */
  lastSampleAt: number = -Infinity;
  /** How far disruptions since the last sample widen the bound (ms); > 0 while `disrupted`. */
  disruptionMs: number = 0;
  /** Set by {@link ClockState.close}; nothing changes the state after it. */
  closed: boolean = false;
  /** The drift bound and the learned frequency. */
  readonly rate: RateModel;
  /** The leap second the sources announced, if any. */
  readonly leaps: LeapTracker;
  readonly corrections: HostCorrections = new HostCorrections();
  readonly counters: ClockCounters = new ClockCounters();
  readonly watchdog: Watchdog;

  readonly #options: ResolvedClockOptions;
  readonly #host: ClockStateHost;
  readonly #source: TimeSource;
  readonly #granularityMs: number;
  #disruptedAt = -Infinity;
  #disruptionDetail = '';
  #lastProblem: SourceProblem | undefined;
  #watchdogTimer: unknown;

  /**
   * Takes the watchdog's first reading and starts its timer.
   *
   * @param options - The clock's resolved options.
   * @param host - The clock that holds this state.
   */
  constructor(options: ResolvedClockOptions, host: ClockStateHost) {
    this.#options = options;
    this.#host = host;
    this.#source = options.source;
    this.#granularityMs = options.monotonic.resolutionMs ?? 0;
    const maxDrift = options.maxDriftPpm * 1e-6;
    this.rate = new RateModel(maxDrift, options.maxWanderPpmPerHour);
    this.leaps = new LeapTracker(maxDrift, options.leapWindowMs);
    this.watchdog = new Watchdog(options.wall, options.monotonic, maxDrift);
    this.#scheduleWatchdog();
  }

  /**
   * The latest problem a source reported, or the last disruption.
   *
   * @example
   * ```ts
   * state.lastProblem?.reason; // 'timeout'
   * ```
   */
  get lastProblem(): SourceProblem | undefined {
    return this.#lastProblem;
  }

  /**
   * Subscribes to the source and the host correction source, if any.
   *
   * @returns A function that unsubscribes from both.
   */
  subscribe(): () => void {
    const mono = this.#options.monotonic;
    const hostCorrection = this.#options.hostCorrection;
    const unsubscribeHostCorrection = hostCorrection?.subscribe(
      (correction) => this.#hostCorrection(correction),
      mono,
      (problem) => this.problem(problem),
    );
    const unsubscribe = this.#source.subscribe(
      (sample) => this.accept(sample),
      mono,
      (problem) => this.#sourceProblem(problem),
      {
        maxDriftPpm: this.#options.maxDriftPpm,
        predictUncertaintyMs: (errorMs, elapsedMs) =>
          this.rate.predict(errorMs, elapsedMs, mono.now(), this.sample),
        ageSample: (sample, atMonotonic) => this.rate.ageSample(sample, atMonotonic),
      },
    );
    return () => {
      unsubscribe();
      unsubscribeHostCorrection?.();
    };
  }

  /** Stops the watchdog's timer; from now on nothing changes the state. */
  close(): void {
    this.closed = true;
    this.#options.scheduler.clearTimeout(this.#watchdogTimer);
  }

  /**
   * Why strict operations refuse a reading with `status`, for the error message.
   *
   * @example
   * ```ts
   * state.refusalDetail('disrupted'); // 'the watchdog saw the monotonic and wall clocks disagree by …'
   * ```
   */
  refusalDetail(status: ClockStatus): string | undefined {
    if (this.closed) return 'the clock was closed';
    return status === 'disrupted' ? this.#disruptionDetail : this.#lastProblem?.message;
  }

  /**
   * A sample from the source: refused (as a problem) when malformed, beyond the
   * panic threshold or gathered before the last disruption; else it ends a
   * disruption, teaches the rate model, and backs the bound when it is tighter.
   */
  accept(sample: SyncSample): void {
    if (this.closed) return;
    const mono = this.#options.monotonic.now();
    const malformed = malformedSample(sample, mono, this.#granularityMs);
    if (malformed !== undefined) {
      this.problem(malformed);
      return;
    }
    const evidenceFrom = sample.evidenceFrom ?? sample.monotonicAt;
    // A disruption that happened before this sample arrived must be seen first.
    this.runWatchdog();
    const refused =
      beyondPanicThreshold(
        sample,
        mono,
        this.#options.panicThresholdMs,
        () => this.#options.wall.now(),
        this.sample === undefined ? undefined : () => this.#host.now(),
      ) ?? staleSample(sample, evidenceFrom, this.#disruptedAt);
    if (refused !== undefined) {
      this.problem(refused);
      return;
    }
    if (this.disruptionMs > 0) {
      this.disruptionMs = 0;
      this.sample = undefined;
    }
    const current = this.sample;
    const afterLeap = current !== undefined && this.leaps.gatheredAfter(evidenceFrom, current);
    if (afterLeap) {
      // The offsets on either side of a step differ by a second: no rate spans it.
      this.leaps.current = undefined;
      this.rate.reset();
    }
    const contradiction = this.rate.learn(sample);
    if (contradiction !== undefined) this.problem(contradiction);
    if (
      current === undefined ||
      afterLeap ||
      preferSample(sample, current, mono, this.rate, (problem) => this.problem(problem))
    ) {
      this.sample = sample;
      this.corrections.sampleTaken();
    }
    if (sample.leapSecond !== undefined) {
      const announced = this.leaps.announce(sample, sample.leapSecond);
      if (announced !== undefined) this.problem(announced);
    }
    this.counters.samplesAccepted++;
    this.lastSampleAt = mono;
    this.#host.refreshStatus();
    this.#host.wakeWaiters();
  }

  /** Records `problem` as the last one, counts it, and refreshes the status. */
  problem(problem: SourceProblem): void {
    this.#lastProblem = problem;
    this.counters.problem(problem.reason);
    this.#host.refreshStatus();
  }

  /**
   * The body of `TrueClock.reportDisruption`, its arguments checked: disrupts the
   * clock, widening the bound by `widenMs` until the next sample.
   */
  reportDisruption(source: string, widenMs: number, detail: string): void {
    this.#disrupt(
      source,
      widenMs,
      `${detail}; bound widened by ${widenMs.toFixed(3)} ms until the next sample`,
    );
  }

  /** Runs the watchdog's check; a disagreement disrupts the clock. */
  runWatchdog(): void {
    if (this.closed) return;
    const discrepancy = this.watchdog.check();
    if (discrepancy > 0) {
      this.#disrupt(
        'watchdog',
        discrepancy,
        `the watchdog saw the monotonic and wall clocks disagree by ${discrepancy.toFixed(3)} ms ` +
          '(suspend, VM pause or clock step); bound widened until the next sample',
      );
    }
  }

  #hostCorrection(correction: HostCorrection): void {
    if (this.closed) return;
    const malformed = this.corrections.record(correction, this.rate, this.#options.monotonic);
    if (malformed !== undefined) this.problem(malformed);
  }

  /**
   * A source's problem. One that says `'disrupted'` (a ClockBound daemon, a host
   * agent that saw a VM migration) disrupts the clock: how far time moved is not
   * known, so the bound is unbounded until a sample gathered after it.
   */
  #sourceProblem(problem: SourceProblem): void {
    if (problem.reason === 'disrupted' && this.sample !== undefined) {
      this.#disrupt(problem.source, Infinity, problem.message);
      return;
    }
    this.problem(problem);
  }

  #disrupt(source: string, widenMs: number, message: string): void {
    if (this.closed) return;
    // Remembered even before the first sample: a reply in flight across a suspend
    // must not become the first sample.
    this.#disruptedAt = this.#options.monotonic.now();
    this.counters.disruptions++;
    this.rate.reset();
    this.#source.invalidate?.(this.#disruptedAt);
    if (this.sample === undefined) {
      this.problem({ source, reason: 'disrupted', message });
      return;
    }
    this.disruptionMs += widenMs;
    this.#disruptionDetail = message;
    this.problem({ source, reason: 'disrupted', message });
    this.#host.wakeWaiters();
  }

  #scheduleWatchdog(): void {
    const intervalMs = this.#options.watchdogIntervalMs;
    if (intervalMs === 0 || this.closed) return;
    this.#watchdogTimer = this.#options.scheduler.setTimeout(() => {
      this.runWatchdog();
      this.#host.refreshStatus();
      this.#scheduleWatchdog();
    }, intervalMs);
    unrefTimer(this.#watchdogTimer);
  }
}
