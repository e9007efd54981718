/**
 * The contract between a time source and the clock that consumes it: samples,
 * problems, subscription, and the host's outstanding correction.
 *
 * @module
 */

import type { MonotonicSource, SyncSample } from '../clock/types.js';
import type {
  NtpRejectionReason,
  NtsRejectionReason,
  TimeExchangeFailureReason,
} from '../errors.js';

/**
 * Every `reason` a source or `TrueClock` reports in a {@link SourceProblem}:
 * the answer to "why is my clock unsynchronized?". docs/truetime.md has the
 * table with what to do about each.
 *
 * - Any source: `'timeout'` no answer in time; `'unavailable'` the source could
 *   not be reached (socket, file, daemon gone); `'internal'` a poll failed
 *   unexpectedly (a bug: please report it); `'listener'` a sample listener threw;
 *   `'inconsistent-sample'` a new sample contradicts kept ones beyond the drift
 *   bound (a step or a slew), the newer wins; `'aborted'` the caller interrupted it.
 * - `TrueClock`: `'invalid-sample'` a sample or host correction with non-finite
 *   or negative fields was refused; `'panic-threshold'` a sample further from the
 *   system clock than `panicThresholdMs` was refused; `'stale-sample'` a sample
 *   gathered before the last disruption was refused; `'disrupted'` a suspend, VM
 *   pause or migration or a wall-clock step was seen (also the ClockBound status);
 *   `'leap-second'` the sources announce a leap second, the interval widens around it.
 * - `systemClockSource`: `'wall-step'` the wall clock jumped.
 * - `httpTimeSource`, `messageTimeSource`: {@link TimeExchangeFailureReason}
 *   (`'timeout'`, `'status'`, `'body'`, `'nonce-mismatch'`, `'network'`).
 * - `ntpSource`: every {@link NtpRejectionReason} and {@link NtsRejectionReason}
 *   (a reply refused by a check); `'no-majority'` no majority of servers agree;
 *   `'falseticker'` servers outside the majority were cast out; `'server-stopped'`
 *   a server sent kiss code DENY or RSTR and is not asked again; `'no-servers'`
 *   every server did; `'invalidated'` exchanges from before a disruption were
 *   dropped; `'nts-ke'` the NTS key exchange failed; `'nts'` no NTS request could
 *   be built (no cookie).
 * - `chronySource`: `'chrony-unsynchronized'` chronyd is not synchronized;
 *   `'chrony-local-reference'` chronyd serves its own local clock;
 *   `'chrony-protocol'` chronyd refused the request or replied malformed.
 * - `clockboundSource`: `'segment-missing'` no shared-memory file;
 *   `'segment-uninitialized'` the writer has not written it yet;
 *   `'segment-invalid'` it is malformed or unreadable; `'segment-version'` an
 *   unsupported layout version; `'segment-busy'` the writer kept it busy through
 *   every retry; `'segment-unknown'` the writer says the clock status is unknown;
 *   `'segment-expired'` past its `void_after` (is the writer running?);
 *   `'causality'` its `as_of` is ahead of this host's monotonic clock (another
 *   boot or host); `'drift-bound'` its drift bound exceeds the clock's `maxDriftPpm`.
 *
 * @example
 * ```ts
 * clock.onStatusChange(() => {
 *   const reason = clock.lastProblem?.reason; // a SourceProblemReason from the built-in sources
 *   if (reason === 'segment-expired') console.warn('is clockbound running?');
 * });
 * ```
 */
export type SourceProblemReason =
  // Any source
  | 'timeout'
  | 'unavailable'
  | 'internal'
  | 'listener'
  | 'inconsistent-sample'
  | 'aborted'
  // TrueClock
  | 'invalid-sample'
  | 'panic-threshold'
  | 'stale-sample'
  | 'disrupted'
  | 'leap-second'
  // systemClockSource
  | 'wall-step'
  // httpTimeSource, messageTimeSource
  | TimeExchangeFailureReason
  // ntpSource
  | NtpRejectionReason
  | NtsRejectionReason
  | 'no-majority'
  | 'falseticker'
  | 'server-stopped'
  | 'no-servers'
  | 'invalidated'
  | 'nts-ke'
  | 'nts'
  // chronySource
  | 'chrony-unsynchronized'
  | 'chrony-local-reference'
  | 'chrony-protocol'
  // clockboundSource
  | 'segment-missing'
  | 'segment-uninitialized'
  | 'segment-invalid'
  | 'segment-version'
  | 'segment-busy'
  | 'segment-unknown'
  | 'segment-expired'
  | 'causality'
  | 'drift-bound';

/**
 * Something that went wrong inside a source without producing a sample: a
 * timeout, a rejected reply, no majority among servers. The clock keeps the
 * latest one to explain its status.
 *
 * @example
 * ```ts
 * const source = manualSource();
 * const clock = new TrueClock({ source });
 * source.report({ source: 'ntp', reason: 'no-majority', message: 'servers disagree' });
 * clock.lastProblem; //=> { source: 'ntp', reason: 'no-majority', message: 'servers disagree' }
 * ```
 */
export interface SourceProblem {
  /** The source that reports it. */
  readonly source: string;
  /**
   * Stable short identifier; the built-in sources and `TrueClock` use only the
   * documented {@link SourceProblemReason} values, a custom source may add its own.
   */
  readonly reason: SourceProblemReason | (string & {});
  /** Human-readable explanation. */
  readonly message: string;
  /** The error behind it, if any. */
  readonly error?: Error;
}

/**
 * Receives what a source produces.
 *
 * @example
 * ```ts
 * const source = systemClockSource({ assumedErrorMs: 10 });
 * const stop = source.subscribe((s) => console.log(s.offsetMs, s.errorMs), systemMonotonic);
 * // logs Date.now() − performance.now() and a bound a little over 10 ms, once a second
 * ```
 */
export type SampleListener = (sample: SyncSample) => void;

/**
 * Receives problems reported by a source.
 *
 * @example
 * ```ts
 * const source = ntpSource({ servers: ['127.0.0.1:11123'] });
 * const stop = source.subscribe(
 *   (sample) => console.log(sample.errorMs),
 *   systemMonotonic,
 *   (p) => console.warn(p.reason, p.message), // e.g. 'timeout' while no server answers
 * );
 * ```
 */
export type ProblemListener = (problem: SourceProblem) => void;

/**
 * A source of sync samples. `TrueClock` subscribes with its own monotonic clock,
 * so samples are stamped on the clock's timescale.
 *
 * @example
 * ```ts
 * // A source of your own, e.g. a GPS receiver read once a second (readGps: epoch ms, ± 1 ms):
 * const clock = new TrueClock({
 *   source: {
 *     subscribe(onSample, mono) {
 *       const t = setInterval(() => {
 *         const at = mono.now();
 *         onSample({ monotonicAt: at, offsetMs: readGps() - at, errorMs: 1, source: 'gps' });
 *       }, 1000);
 *       return () => clearInterval(t);
 *     },
 *     close: async () => undefined,
 *     pollIntervalMs: 1000,
 *   },
 * });
 * ```
 */
export interface TimeSource {
  /**
   * Starts delivering samples; returns a function that stops. `context`, when
   * given (a `TrueClock` always gives it), is the clock's drift bound and its
   * model of how ε grows, which a source uses to age samples and to choose how
   * often to poll.
   */
  subscribe(
    onSample: SampleListener,
    monotonic: MonotonicSource,
    onProblem?: ProblemListener,
    context?: SourceContext,
  ): () => void;
  /** Frees sockets and timers. Idempotent. */
  close(): Promise<void>;
  /** How often the source expects to deliver a sample (ms). */
  readonly pollIntervalMs?: number;
  /**
   * The longest a healthy source goes between two samples (ms): its poll interval with jitter, plus
   * the spacing of the exchanges within one poll and an exchange's timeout. `TrueClock` shows
   * `free-running` after twice this; for a source that does not give it, after three
   * `pollIntervalMs` (see `TrueClockOptions.freeRunningAfterMs`).
   */
  readonly maxSampleGapMs?: number;
  /**
   * Forgets every sample whose evidence was gathered at or before `monotonicAt`
   * and gathers fresh evidence soon. `TrueClock` calls it when it sees a
   * disruption (suspend, VM pause or migration, wall-clock step), so that
   * evidence taken before it can neither end the disruption nor outvote fresh
   * evidence. Optional: without it, `TrueClock` still refuses such samples.
   */
  invalidate?(monotonicAt: number): void;
}

/**
 * A {@link TimeSource} that `await using` closes: `[Symbol.asyncDispose]()` is `close()`.
 * Every built-in source is one.
 *
 * @example
 * ```ts
 * await using source = httpTimeSource({ url: 'https://time.example.com/time' });
 * const clock = new TrueClock({ source }); // the source closes when the block ends
 * ```
 */
export interface DisposableTimeSource extends TimeSource {
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * What a clock tells the source it subscribes to, so that a source needs no
 * drift bound of its own and can poll no more often than the bound requires.
 *
 * @example
 * ```ts
 * new TrueClock({
 *   source: {
 *     subscribe(onSample, mono, onProblem, context) {
 *       context?.maxDriftPpm;                     //=> 200
 *       context?.predictUncertaintyMs(1, 60_000); //=> 12.99… (1 ms + 200 ppm of a minute, until it learns the frequency)
 *       return () => undefined;
 *     },
 *     close: async () => undefined,
 *   },
 * });
 * ```
 */
export interface SourceContext {
  /** The clock's bound on the monotonic clock's rate error (ppm): age samples with it. */
  readonly maxDriftPpm: number;
  /**
   * The ε a sample with bound `errorMs` taken now will have grown to after
   * `elapsedMs` of monotonic time, under the clock's current model: at
   * `maxDriftPpm` until it has learned the oscillator's frequency, more slowly
   * after. Never less than `errorMs`.
   */
  predictUncertaintyMs(errorMs: number, elapsedMs: number): number;
  /**
   * Where a sample's offset (`offsetMs ± errorMs` at `monotonicAt`) lies at
   * `atMonotonic`, under the clock's current model: the offset moved by the
   * learned rate, the bound grown by what is still unknown about it. Where the
   * model cannot vouch for the span (before it has learned, for a sample taken
   * before its last reset, or backwards in time) it is the drift bound's
   * `offsetMs ± (errorMs + maxDrift·|Δ|)`. Optional: without it, age with
   * `maxDriftPpm`.
   */
  ageSample?(sample: AgeableSample, atMonotonic: number): AgedSample;
}

/**
 * What {@link SourceContext.ageSample} ages: a sample's bound at its reading.
 *
 * @example
 * ```ts
 * // Inside subscribe(onSample, mono, onProblem, context), before the clock has learned anything:
 * context?.ageSample?.({ monotonicAt: 1000, offsetMs: 1_767_225_599_000, errorMs: 9.6 }, 61_000);
 * //=> { offsetMs: 1767225599000, errorMs: 21.59… } (9.6 ms + 200 ppm of 60 s)
 * ```
 */
export interface AgeableSample {
  readonly monotonicAt: number;
  readonly offsetMs: number;
  readonly errorMs: number;
}

/**
 * A sample's bound at another monotonic reading: the offset lies in `offsetMs ± errorMs`.
 *
 * @example
 * ```ts
 * const { offsetMs, errorMs } = context.ageSample(sample, mono.now()); // where the sample's offset lies now
 * ```
 */
export interface AgedSample {
  readonly offsetMs: number;
  readonly errorMs: number;
}

/**
 * What the host's own time daemon is still doing to the monotonic clock: the
 * kernel slews `CLOCK_MONOTONIC` (Node's `performance.now()`) while the daemon
 * corrects an offset, so until the correction is done the monotonic clock may
 * gain or lose up to `remainingCorrectionMs` beyond its usual rate error.
 *
 * @example
 * ```ts
 * // clock fed a 5 ms sample; the host's daemon still has 0.4 ms to slew out:
 * const clock = new TrueClock({
 *   source,
 *   hostCorrection: {
 *     subscribe(onCorrection, mono) {
 *       onCorrection({ monotonicAt: mono.now(), remainingCorrectionMs: 0.4, frequencyPpm: -12.3, source: 'chrony' });
 *       return () => undefined;
 *     },
 *     close: async () => undefined,
 *   },
 * });
 * clock.metrics().hostCorrectionMs; //=> 0.4 (added to ε until the next sample)
 * ```
 */
export interface HostCorrection {
  /** Monotonic reading at which the daemon reported it. */
  readonly monotonicAt: number;
  /** The offset the daemon is still slewing out (ms, either sign; chrony's "System time"). */
  readonly remainingCorrectionMs: number;
  /** The frequency correction the daemon applies (ppm), when it says. */
  readonly frequencyPpm?: number;
  /** Who reported it. */
  readonly source: string;
}

/**
 * Reports the host daemon's outstanding correction (e.g. `chronyHostCorrection`
 * over chronyd's cmdmon). `TrueClock` adds the largest correction seen since its
 * current sample to ε: ClockBound's `current_correction` term.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({
 *   source: chronySource(),
 *   hostCorrection: chronyHostCorrection(), // closed with the clock
 * });
 * ```
 */
export interface HostCorrectionSource {
  /** Starts reporting; returns a function that stops. */
  subscribe(
    onCorrection: (correction: HostCorrection) => void,
    monotonic: MonotonicSource,
    onProblem?: ProblemListener,
  ): () => void;
  /** Frees sockets and timers. Idempotent. */
  close(): Promise<void>;
}
