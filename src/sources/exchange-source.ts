/**
 * The client side of the time exchange, shared by `httpTimeSource` and
 * `messageTimeSource`: a {@link TimeSource} that polls a server with bursts of
 * four-timestamp exchanges over a transport (one HTTP request, one message and
 * its reply), turns each into a sample, keeps the recent ones in the RFC 5905
 * clock filter and delivers the filter's pick. The transports only carry bytes;
 * the wire format is in `protocol/`.
 *
 * A client stamps T1 and T4 on its own monotonic clock; the server stamps T2
 * (receive) and T3 (transmit) with its `TrueClock` estimate and adds its own
 * uncertainty ε. The client then knows, at monotonic reading T4:
 *
 * ```
 * θ = ½[(T2 − T1) + (T3 − T4)]        offset of true time from the monotonic clock
 * δ = (T4 − T1) − (T3 − T2)           round trip minus server time
 * errorMs = δ/2 + ε + maxDrift·(T4 − T1) + resolution
 * ```
 *
 * @module
 */
import { InvalidArgumentError, TimeExchangeError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative } from '../_internals/validate.js';
import { systemScheduler } from '../clock/system.js';
import type { MonotonicSource, Scheduler, SyncSample } from '../clock/types.js';
import { newTimeNonce } from '../protocol/nonce.js';
import type { TimeReply } from '../protocol/messages.js';
import { parseTimeReply } from '../protocol/reply.js';
import { ClockFilter, type FilterSample } from './clock-filter.js';
import { estimateExchange } from './exchange.js';
import { startPoller } from './poller.js';
import type { DisposableTimeSource, ProblemListener, SampleListener } from './types.js';

/** First retry after a poll that produced no sample (ms); doubles up to the poll interval. */
const RETRY_BASE_MS = 1000;
/**
 * Smallest wait (ms) before a fresh poll after `invalidate` when the monotonic
 * clock does not yet read past the disruption.
 */
const MIN_FRESH_WAIT_MS = 1;

/**
 * The exchange loop's tuning, shared by both client sources.
 *
 * @example
 * ```ts
 * const source = messageTimeSource({ send, onMessage, samples: 4, pollIntervalMs: 30_000, timeoutMs: 3000 });
 * source.maxSampleGapMs; //=> 42000 (the interval plus 4 exchanges of at most 3 s)
 * ```
 */
export interface TimeExchangeOptions {
  /**
   * Exchanges per poll, back to back (the tightest bound wins).
   *
   * @defaultValue `4`
   */
  readonly samples?: number;
  /**
   * Time between polls (ms). Drives the clock's `free-running` status. A poll that yields no sample
   * is retried sooner: after 1 s, 2 s, 4 s, … up to this.
   *
   * @defaultValue `60_000`
   */
  readonly pollIntervalMs?: number;
  /**
   * Gives up on one exchange after this long (ms).
   *
   * @defaultValue `5000`
   */
  readonly timeoutMs?: number;
  /**
   * Bound on the local monotonic clock's rate error over an exchange (ppm).
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * Timers. Inject a virtual one in tests.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
  /**
   * Name carried by samples and problems.
   *
   * @defaultValue derived from the transport: `'http:<url>'` for `httpTimeSource`, `'message'` for
   *   `messageTimeSource`
   */
  readonly name?: string;
}

/**
 * One completed exchange turned into a sync sample (through the shared
 * four-timestamp math), or a typed error when the timestamps contradict each
 * other (the server claims to have held the request longer than the round trip).
 * The sample's `evidenceFrom` is T1: the request left then, so nothing behind the
 * sample is older, and only an exchange sent after a disruption (suspend, VM
 * pause) can end it.
 *
 * @returns The sample, on the local monotonic timescale at T4.
 * @throws {@link TimeExchangeError} `'body'` for contradictory timestamps.
 *
 * @example
 * ```ts
 * const reply = parseTimeReply(raw, nonce, 'https://example.com/time');
 * exchangeSample(1000, reply, 1020, 200, 0, 'http', 'https://example.com/time');
 * // { monotonicAt: 1020, offsetMs: θ, delayMs: δ, errorMs: δ/2 + reply.errorMs + …, evidenceFrom: 1000, source: 'http' }
 * ```
 * @internal
 */
export function exchangeSample(
  t1: number,
  reply: TimeReply,
  t4: number,
  maxDriftPpm: number,
  resolutionMs: number,
  name: string,
  where: string,
): SyncSample & FilterSample {
  const estimate = estimateExchange(
    { t1, t2: reply.t2, t3: reply.t3, t4 },
    {
      serverErrorMs: reply.errorMs,
      // t2 and t3 travel rounded to the µs.
      serverPrecisionMs: 0.001,
      localPrecisionMs: resolutionMs,
      maxDriftPpm,
    },
  );
  if (!estimate.consistent) {
    throw new TimeExchangeError(
      where,
      'body',
      `server time between receive and transmit exceeds the round trip by ${(-estimate.delayMs).toFixed(3)} ms`,
    );
  }
  return {
    monotonicAt: estimate.monotonicAt,
    offsetMs: estimate.offsetMs,
    delayMs: estimate.delayMs,
    errorMs: estimate.errorMs,
    evidenceFrom: t1,
    source: name,
  };
}

/**
 * One subscription's way to do a round trip: send a request with `nonce` and
 * resolve with the raw reply (text or object). It rejects with `TimeExchangeError`
 * for transport failures; `signal` aborts it.
 * @internal
 */
export interface ExchangeTransport {
  roundTrip(nonce: string, signal: AbortSignal): Promise<unknown>;
  close(): void;
}

/**
 * Resolved tuning of the exchange loop.
 * @internal
 */
export interface ExchangeConfig {
  readonly name: string;
  readonly where: string;
  readonly samples: number;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
  readonly maxDriftPpm: number;
  /** Whether `maxDriftPpm` was given; if not, a subscribing clock's own bound is used. */
  readonly maxDriftPpmGiven: boolean;
  readonly scheduler: Scheduler;
}

/**
 * Validates the shared options and fills in defaults.
 *
 * @throws {@link InvalidArgumentError} When an option is out of range.
 * @internal
 */
export function resolveExchangeOptions(
  options: TimeExchangeOptions,
  defaultName: string,
  where: string,
): ExchangeConfig {
  const samples = options.samples ?? 4;
  if (!Number.isInteger(samples) || samples < 1 || samples > 64) {
    throw new InvalidArgumentError('samples', samples, 'an integer from 1 to 64');
  }
  const pollIntervalMs = requireNonNegative('pollIntervalMs', options.pollIntervalMs ?? 60_000);
  if (pollIntervalMs === 0) {
    throw new InvalidArgumentError('pollIntervalMs', pollIntervalMs, 'a finite number > 0');
  }
  const timeoutMs = requireNonNegative('timeoutMs', options.timeoutMs ?? 5000);
  if (timeoutMs === 0) {
    throw new InvalidArgumentError('timeoutMs', timeoutMs, 'a finite number > 0');
  }
  const maxDriftPpm = requireNonNegative('maxDriftPpm', options.maxDriftPpm ?? 200);
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    throw new InvalidArgumentError('name', options.name, 'a non-empty string');
  }
  return {
    name: options.name ?? defaultName,
    where,
    samples,
    pollIntervalMs,
    timeoutMs,
    maxDriftPpm,
    maxDriftPpmGiven: options.maxDriftPpm !== undefined,
    scheduler: options.scheduler ?? systemScheduler,
  };
}

/**
 * One running subscription of {@link exchangeTimeSource}.
 * @internal
 */
interface ExchangeSubscription {
  /** Stops polling, aborts the exchange in flight and closes the transport. Idempotent. */
  readonly stop: () => void;
  /** See {@link exchangeTimeSource}: forget evidence gathered at or before `monotonicAt`, poll afresh. */
  readonly invalidate: (monotonicAt: number) => void;
}

/**
 * A {@link TimeSource} that polls with bursts of four-timestamp exchanges over a
 * transport, keeps the last eight results in the shared RFC 5905 clock filter
 * and delivers the filter's pick after every exchange. A poll that yields no
 * sample is retried after 1 s, 2 s, 4 s, … up to the poll interval.
 *
 * Every sample carries `evidenceFrom` = T1 of its exchange. A new sample whose
 * interval contradicts a kept one aged by `maxDriftPpm` (the server's clock
 * stepped, or the host slewed the local monotonic clock beyond the bound) drops
 * the kept one, so the newer evidence is delivered, and is reported as an
 * `'inconsistent-sample'` problem.
 *
 * `invalidate(monotonicAt)` is what `TrueClock` calls when it sees a disruption
 * (suspend, VM pause or migration, clock step). Evidence gathered before it
 * describes a timescale that no longer holds and could neither end the
 * disruption nor be trusted after it, so for every running subscription it
 * drops the filter samples gathered at or before `monotonicAt`, makes sure the
 * exchange in flight (sent at or before it) neither enters the filter nor is
 * delivered, and polls afresh at once: the waiting poll timer is cancelled, and
 * a poll in progress ends and is followed by another right away. A fresh poll
 * starts only once the monotonic clock reads past `monotonicAt`, so its
 * exchanges are evidence from after the disruption. `invalidate` throws
 * `InvalidArgumentError` for a reading that is not a finite number.
 *
 * `maxSampleGapMs` is `pollIntervalMs + samples · timeoutMs`: a poll's burst can
 * take up to `samples` timeouts before its last exchange delivers.
 * @internal
 */
export function exchangeTimeSource(
  config: ExchangeConfig,
  open: (report: (error: TimeExchangeError) => void) => ExchangeTransport,
): DisposableTimeSource {
  const subscriptions = new Set<ExchangeSubscription>();
  return {
    pollIntervalMs: config.pollIntervalMs,
    maxSampleGapMs: config.pollIntervalMs + config.samples * config.timeoutMs,
    subscribe(onSample, monotonic, onProblem, context) {
      // The clock's drift bound ages this subscription's samples unless the option set one.
      const drift =
        config.maxDriftPpmGiven || context === undefined
          ? config
          : { ...config, maxDriftPpm: context.maxDriftPpm };
      const subscription = runExchanges(drift, open, onSample, monotonic, onProblem, () =>
        subscriptions.delete(subscription),
      );
      subscriptions.add(subscription);
      return subscription.stop;
    },
    invalidate(monotonicAt) {
      if (typeof monotonicAt !== 'number' || !Number.isFinite(monotonicAt)) {
        throw new InvalidArgumentError('monotonicAt', monotonicAt, 'a finite monotonic reading');
      }
      for (const subscription of [...subscriptions]) subscription.invalidate(monotonicAt);
    },
    close() {
      for (const subscription of [...subscriptions]) subscription.stop();
      return Promise.resolve();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

/**
 * The exchange loop of one subscription: polls, filters, delivers; see
 * {@link exchangeTimeSource} for what `invalidate` does and why.
 */
function runExchanges(
  config: ExchangeConfig,
  open: (report: (error: TimeExchangeError) => void) => ExchangeTransport,
  onSample: SampleListener,
  monotonic: MonotonicSource,
  onProblem: ProblemListener | undefined,
  onStopped: () => void,
): ExchangeSubscription {
  const { scheduler, name, where } = config;
  let stopped = false;
  let inFlight: { controller: AbortController; timer: unknown } | undefined;
  /** The latest disruption `invalidate` was told of: exchanges sent at or before it are stale. */
  let invalidatedThrough = -Infinity;
  // Ranked by the drift the clock applies, so the sample handed on has the tightest bound;
  // a sample the drift bound cannot reconcile with a kept one replaces it.
  const filter = new ClockFilter<SyncSample & FilterSample>({
    agingPpm: config.maxDriftPpm,
    consistencyDriftPpm: config.maxDriftPpm,
    onInconsistent: (dropped, newer) => {
      if (stopped) return;
      let apart = 0;
      for (const kept of dropped) apart = Math.max(apart, Math.abs(kept.offsetMs - newer.offsetMs));
      const n = dropped.length;
      onProblem?.({
        source: name,
        reason: 'inconsistent-sample',
        message:
          `a new sample's offset is ${n === 1 ? '' : 'up to '}${apart.toFixed(3)} ms from ` +
          `${n === 1 ? 'a kept sample' : `${n} kept samples`}, beyond their bounds aged at ` +
          `${config.maxDriftPpm} ppm (the server's clock stepped, or the local monotonic clock ` +
          `was slewed beyond the drift bound); dropped ${n} kept sample${n === 1 ? '' : 's'}, ` +
          'the newer evidence wins',
      });
    },
  });
  const report = (error: TimeExchangeError): void => {
    if (stopped) return;
    onProblem?.({ source: name, reason: error.reason, message: error.message, error });
  };
  const transport = open(report);

  /** Runs one exchange; `true` when it produced a sample. */
  const exchangeOnce = async (): Promise<boolean> => {
    const controller = new AbortController();
    const nonce = newTimeNonce();
    let timedOut = false;
    let onTimeout: (() => void) | undefined;
    const expired = new Promise<never>((_, reject) => {
      onTimeout = () => {
        timedOut = true;
        reject(new TimeExchangeError(where, 'timeout', `no reply within ${config.timeoutMs} ms`));
      };
    });
    // The race below settles either way; this keeps the loser from being "unhandled".
    expired.catch(() => undefined);
    const timer = scheduler.setTimeout(() => {
      onTimeout?.();
      controller.abort();
    }, config.timeoutMs);
    unrefTimer(timer);
    const current = { controller, timer };
    inFlight = current;
    // T1 before anything is sent, T4 after the whole reply is in: both only widen δ.
    const t1 = monotonic.now();
    try {
      const raw = await Promise.race([transport.roundTrip(nonce, controller.signal), expired]);
      const t4 = monotonic.now();
      if (stopped) return false;
      const reply = parseTimeReply(raw, nonce, where);
      const sample = exchangeSample(
        t1,
        reply,
        t4,
        config.maxDriftPpm,
        monotonic.resolutionMs ?? 0,
        name,
        where,
      );
      // Sent at or before a disruption `invalidate` was told of: evidence from the old
      // timescale, which must neither enter the filter nor reach the clock.
      if (t1 <= invalidatedThrough) return false;
      onSample(filter.add(sample));
      return true;
    } catch (error) {
      if (stopped) return false;
      if (timedOut) {
        report(new TimeExchangeError(where, 'timeout', `no reply within ${config.timeoutMs} ms`));
      } else if (error instanceof TimeExchangeError) {
        report(error);
      } else {
        report(new TimeExchangeError(where, 'network', describeFailure(error)));
      }
      return false;
    } finally {
      scheduler.clearTimeout(timer);
      if (inFlight === current) inFlight = undefined;
    }
  };

  /** Runs one poll's burst of exchanges; `true` when at least one produced a sample. */
  const burst = async (): Promise<boolean> => {
    let succeeded = false;
    for (let i = 0; i < config.samples && !stopped; i++) {
      if (await exchangeOnce()) succeeded = true;
    }
    return succeeded;
  };

  let failedPolls = 0;
  const poller = startPoller<PollOutcome>({
    scheduler,
    // Polls only once the monotonic clock reads past the last disruption, so that
    // every exchange of the poll is evidence gathered after it; until then (coarse
    // resolution, virtual time) the poll is only a short wait.
    poll: () => {
      const behind = invalidatedThrough - monotonic.now();
      if (behind >= 0) {
        return Promise.resolve({
          freshInMs: behind + Math.max(monotonic.resolutionMs ?? 0, MIN_FRESH_WAIT_MS),
        });
      }
      return burst().then((succeeded) => ({ succeeded }));
    },
    nextDelayMs: (outcome) => {
      if ('freshInMs' in outcome) return outcome.freshInMs;
      // A poll with no sample at all (socket not open yet, offline, server refusing) is
      // retried sooner: 1 s, 2 s, 4 s, … up to the poll interval.
      failedPolls = outcome.succeeded ? 0 : failedPolls + 1;
      return outcome.succeeded
        ? config.pollIntervalMs
        : Math.min(config.pollIntervalMs, RETRY_BASE_MS * 2 ** Math.min(failedPolls - 1, 30));
    },
    onError: (error) => {
      if (stopped) return;
      onProblem?.({
        source: name,
        reason: 'internal',
        message: `polling failed: ${describeFailure(error)}`,
        ...(error instanceof Error ? { error } : {}),
      });
    },
    errorDelayMs: config.pollIntervalMs,
  });

  return {
    stop() {
      if (stopped) return;
      stopped = true;
      poller.stop();
      if (inFlight !== undefined) {
        scheduler.clearTimeout(inFlight.timer);
        inFlight.controller.abort();
      }
      transport.close();
      onStopped();
    },
    invalidate(monotonicAt) {
      if (stopped) return;
      if (monotonicAt > invalidatedThrough) invalidatedThrough = monotonicAt;
      filter.dropGatheredBefore(monotonicAt);
      // Gather fresh evidence now, not after the interval: the waiting poll is cancelled, a
      // poll in progress ends (its stale exchange is discarded) and is followed by another.
      poller.pollNow();
    },
  };
}

/**
 * What one poll of the exchange loop came to: a burst of exchanges (did any
 * give a sample?), or no burst yet because the monotonic clock does not read
 * past the last disruption (poll again in `freshInMs`).
 */
type PollOutcome = { readonly succeeded: boolean } | { readonly freshInMs: number };

/**
 * Short description of a transport failure for a problem message.
 * @internal
 */
export function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? `: ${cause.message}` : '';
    return `${error.name}: ${error.message}${detail}`.slice(0, 300);
  }
  return String(error).slice(0, 300);
}
