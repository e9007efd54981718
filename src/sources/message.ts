/**
 * The time-exchange protocol shared by the HTTP and message-channel sources: the
 * request and reply messages, the client's four-timestamp exchange loop, and the
 * server-side answer. The wire format is defined here once.
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
import { HttpTimeError, InvalidArgumentError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative } from '../_internals/validate.js';
import type { TimeReading } from '../clock/types.js';
import { ClockFilter, estimateExchange, type FilterSample } from './exchange.js';
import { startPoller } from './poller.js';
import { systemScheduler } from '../clock/system.js';
import type { ProblemListener, SampleListener, TimeSource } from './types.js';
import type { MonotonicSource, Scheduler, SyncSample } from '../clock/types.js';

/** The `type` of a time request message. */
const REQUEST_TYPE = 'chronobound.time-request';
/** The `type` of a time reply (or refusal) message. */
const REPLY_TYPE = 'chronobound.time-reply';
/** Longest JSON text a client or server will look at; replies are 256 bytes. */
const MAX_MESSAGE_CHARS = 1024;
/** First retry after a poll that produced no sample (ms); doubles up to the poll interval. */
const RETRY_BASE_MS = 1000;
/**
 * Smallest wait (ms) before a fresh poll after `invalidate` when the monotonic
 * clock does not yet read past the disruption.
 */
const MIN_FRESH_WAIT_MS = 1;
/** A nonce is 16 random bytes as 32 lowercase hex digits. */
const NONCE_PATTERN = /^[0-9a-f]{32}$/;

/**
 * A client's time request on a message channel. Over HTTP the same nonce travels
 * in the query string instead (`GET /time?nonce=…`).
 *
 * @example
 * ```ts
 * const request: TimeRequest = { type: 'chronobound.time-request', v: 1, nonce: '00112233445566778899aabbccddeeff' };
 * ```
 */
export interface TimeRequest {
  /** Always `'chronobound.time-request'`, so apps can route it. */
  readonly type: 'chronobound.time-request';
  /** Protocol version, 1. */
  readonly v: 1;
  /** 32 lowercase hex digits (16 random bytes) the reply must echo. */
  readonly nonce: string;
}

/**
 * A server's answer: its receive (T2) and transmit (T3) times from its own
 * `TrueClock` estimate and that clock's uncertainty, so the client's bound
 * chains honestly onto the server's.
 *
 * @example
 * ```ts
 * const reply: TimeReply = {
 *   type: 'chronobound.time-reply', v: 1, nonce: '00112233445566778899aabbccddeeff',
 *   t2: 1767225600000.125, t3: 1767225600000.131, errorMs: 0.734, status: 'synchronized',
 * };
 * ```
 */
export interface TimeReply {
  /** Always `'chronobound.time-reply'`. */
  readonly type: 'chronobound.time-reply';
  /** Protocol version, 1. */
  readonly v: 1;
  /** The request's nonce, echoed. */
  readonly nonce: string;
  /** Server estimate of true time when the request arrived (epoch ms, µs resolution). */
  readonly t2: number;
  /** Server estimate of true time when the reply left (epoch ms, µs resolution). */
  readonly t3: number;
  /** The server clock's own ε at T2 and T3 (the larger), rounded up to the µs, plus 1 µs for the rounding of t2/t3. */
  readonly errorMs: number;
  /** The server clock's status; only trustworthy statuses are ever sent with times. */
  readonly status: 'synchronized' | 'free-running';
}

/**
 * A server's refusal: its clock cannot stand behind a bound right now, so it hands
 * none out. Over HTTP this is a 503 instead.
 *
 * @example
 * ```ts
 * const refusal: TimeRefusal = { type: 'chronobound.time-reply', v: 1, nonce: '00112233445566778899aabbccddeeff', status: 'unsynchronized' };
 * ```
 */
export interface TimeRefusal {
  /** Always `'chronobound.time-reply'`. */
  readonly type: 'chronobound.time-reply';
  /** Protocol version, 1. */
  readonly v: 1;
  /** The request's nonce, echoed. */
  readonly nonce: string;
  /** Why the server refused. */
  readonly status: 'unsynchronized' | 'disrupted';
}

/**
 * The clock a time server answers from: a `TrueClock`, or anything with its
 * `now()`. When `after` is present it is called first (TrueClock's runs the
 * watchdog), so a suspend the periodic check has not seen yet still refuses.
 *
 * @example
 * ```ts
 * const serverClock: TimeServerClock = new TrueClock({ source: ntpSource({ servers: ['pool.ntp.org:123'] }) });
 * ```
 */
export interface TimeServerClock {
  /** An honest reading. */
  now(): TimeReading;
  /** Strict check that throws when the clock cannot be trusted. */
  after?(t: number): boolean;
}

/**
 * The exchange loop's tuning, shared by both client sources.
 *
 * @example
 * ```ts
 * const tuning: TimeExchangeOptions = { samples: 4, pollIntervalMs: 30_000, timeoutMs: 3000 };
 * ```
 */
export interface TimeExchangeOptions {
  /** Exchanges per poll, back to back (the tightest bound wins); default 4. */
  readonly samples?: number;
  /**
   * Time between polls (ms); default 60000. Drives the clock's `free-running` status.
   * A poll that yields no sample is retried sooner: after 1 s, 2 s, 4 s, … up to this.
   */
  readonly pollIntervalMs?: number;
  /** Gives up on one exchange after this long (ms); default 5000. */
  readonly timeoutMs?: number;
  /** Bound on the local monotonic clock's rate error over an exchange (ppm); default 200. */
  readonly maxDriftPpm?: number;
  /** Timers; default the platform's. Inject a virtual one in tests. */
  readonly scheduler?: Scheduler;
  /** Name carried by samples and problems; default derived from the transport. */
  readonly name?: string;
}

/**
 * Options of {@link messageTimeSource}.
 *
 * @example
 * ```ts
 * const options: MessageTimeSourceOptions = {
 *   send: (request) => ws.send(JSON.stringify(request)),
 *   onMessage: (listener) => {
 *     const handler = (event: MessageEvent) => listener(event.data);
 *     ws.addEventListener('message', handler);
 *     return () => ws.removeEventListener('message', handler);
 *   },
 * };
 * ```
 */
export interface MessageTimeSourceOptions extends TimeExchangeOptions {
  /** Sends a request to the server; serialize it however the channel needs. */
  readonly send: (request: TimeRequest) => void;
  /**
   * Registers a listener for every incoming message (objects or JSON strings;
   * anything that is not a time reply is ignored) and returns a function that
   * unregisters it.
   */
  readonly onMessage: (listener: (message: unknown) => void) => () => void;
}

/**
 * Generates a request nonce: 16 bytes from `crypto.getRandomValues`, as hex.
 * @internal
 */
export function newTimeNonce(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/**
 * Whether `value` is a well-formed nonce (32 lowercase hex digits).
 * @internal
 */
export function isTimeNonce(value: unknown): value is string {
  return typeof value === 'string' && NONCE_PATTERN.test(value);
}

/**
 * Whether a reading can be handed out: a trustworthy status and a finite bound.
 */
function trustworthy(reading: TimeReading): boolean {
  return (
    (reading.status === 'synchronized' || reading.status === 'free-running') &&
    Number.isFinite(reading.uncertaintyMs) &&
    Number.isFinite(reading.estimate)
  );
}

/**
 * Runs the clock's strict check when it has one; `false` when it refuses.
 * @internal
 */
export function clockStandsBehindBound(clock: TimeServerClock): boolean {
  if (typeof clock.after !== 'function') return true;
  try {
    clock.after(Number.NEGATIVE_INFINITY);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds the reply from the readings at T2 and T3, or a refusal when either
 * cannot be trusted. Times are rounded to the µs and ε is rounded up, with 1 µs
 * added for the rounding of t2 and t3.
 * @internal
 */
export function composeTimeReply(
  nonce: string,
  atReceive: TimeReading,
  atTransmit: TimeReading,
  trusted: boolean = true,
): TimeReply | TimeRefusal {
  if (!trusted || !trustworthy(atReceive) || !trustworthy(atTransmit)) {
    const bad = [atTransmit.status, atReceive.status].find(
      (s): s is 'disrupted' => s === 'disrupted',
    );
    return { type: REPLY_TYPE, v: 1, nonce, status: bad ?? 'unsynchronized' };
  }
  const t2 = Math.round(atReceive.estimate * 1000) / 1000;
  const t3 = Math.max(t2, Math.round(atTransmit.estimate * 1000) / 1000);
  const epsilon = Math.max(atReceive.uncertaintyMs, atTransmit.uncertaintyMs);
  const errorMs = Math.ceil((epsilon + 0.001) * 1000) / 1000;
  return {
    type: REPLY_TYPE,
    v: 1,
    nonce,
    t2,
    t3,
    errorMs,
    status: atTransmit.status as TimeReply['status'],
  };
}

/**
 * Answers a time request that arrived on a message channel (WebSocket, worker
 * port, …). Pass every incoming message; anything that is not a well-formed time
 * request yields `undefined`, so the app routes it elsewhere. The reply never
 * contains more of the input than the validated 32-digit nonce.
 *
 * @param clock - The server's clock (a `TrueClock`).
 * @param message - An incoming message: an object or a JSON string.
 * @returns The reply to send back (serialize it as the channel needs): times with
 *   the clock's own ε, or a refusal when the clock is unsynchronized or disrupted.
 *
 * @example
 * ```ts
 * ws.on('message', (data) => {
 *   const reply = answerTimeRequest(clock, String(data));
 *   if (reply) ws.send(JSON.stringify(reply));
 *   else handleAppMessage(data);
 * });
 * ```
 */
export function answerTimeRequest(
  clock: TimeServerClock,
  message: unknown,
): TimeReply | TimeRefusal | undefined {
  const atReceive = clock.now();
  const request = typeof message === 'string' ? parseJson(message) : message;
  if (
    typeof request !== 'object' ||
    request === null ||
    (request as { type?: unknown }).type !== REQUEST_TYPE ||
    (request as { v?: unknown }).v !== 1
  ) {
    return undefined;
  }
  const nonce = (request as { nonce?: unknown }).nonce;
  if (!isTimeNonce(nonce)) return undefined;
  const trusted = clockStandsBehindBound(clock);
  return composeTimeReply(nonce, atReceive, clock.now(), trusted);
}

function parseJson(text: string): unknown {
  if (text.length > MAX_MESSAGE_CHARS) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Validates a reply (object or JSON text) against the nonce we sent.
 *
 * @throws {HttpTimeError} `'nonce-mismatch'`, `'status'` (the server refused) or `'body'`.
 * @internal
 */
export function parseTimeReply(raw: unknown, nonce: string, where: string): TimeReply {
  let reply = raw;
  if (typeof raw === 'string') {
    if (raw.length > MAX_MESSAGE_CHARS) {
      throw new HttpTimeError(where, 'body', `reply longer than ${MAX_MESSAGE_CHARS} characters`);
    }
    try {
      reply = JSON.parse(raw) as unknown;
    } catch {
      throw new HttpTimeError(where, 'body', 'reply is not JSON');
    }
  }
  if (typeof reply !== 'object' || reply === null) {
    throw new HttpTimeError(where, 'body', 'reply is not a JSON object');
  }
  const r = reply as Record<string, unknown>;
  if (r['type'] !== REPLY_TYPE || r['v'] !== 1) {
    throw new HttpTimeError(where, 'body', `reply is not a version 1 ${REPLY_TYPE}`);
  }
  if (typeof r['nonce'] !== 'string') {
    throw new HttpTimeError(where, 'body', 'reply has no nonce');
  }
  if (r['nonce'] !== nonce) {
    throw new HttpTimeError(where, 'nonce-mismatch', 'reply does not echo the nonce we sent');
  }
  const status = r['status'];
  if (status === 'unsynchronized' || status === 'disrupted') {
    throw new HttpTimeError(where, 'status', `the server's clock is ${status}`);
  }
  if (status !== 'synchronized' && status !== 'free-running') {
    throw new HttpTimeError(where, 'body', 'reply has an unknown status');
  }
  const { t2, t3, errorMs } = r;
  if (
    typeof t2 !== 'number' ||
    typeof t3 !== 'number' ||
    typeof errorMs !== 'number' ||
    !Number.isFinite(t2) ||
    !Number.isFinite(t3) ||
    !Number.isFinite(errorMs) ||
    errorMs < 0
  ) {
    throw new HttpTimeError(where, 'body', 'reply needs finite t2, t3 and errorMs ≥ 0');
  }
  if (t3 < t2) {
    throw new HttpTimeError(where, 'body', 'reply has t3 before t2');
  }
  return { type: REPLY_TYPE, v: 1, nonce, t2, t3, errorMs, status };
}

/**
 * One completed exchange turned into a sync sample (through the shared
 * four-timestamp math), or a typed error when the timestamps contradict each
 * other (the server claims to have held the request longer than the round trip).
 * The sample's `evidenceFrom` is T1: the request left then, so nothing behind the
 * sample is older, and only an exchange sent after a disruption (suspend, VM
 * pause) can end it.
 *
 * @throws {HttpTimeError} `'body'` for contradictory timestamps.
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
    throw new HttpTimeError(
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
 * resolve with the raw reply (text or object). It rejects with `HttpTimeError`
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
 * @throws {InvalidArgumentError} When an option is out of range.
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
  open: (report: (error: HttpTimeError) => void) => ExchangeTransport,
): TimeSource {
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
  };
}

/**
 * The exchange loop of one subscription: polls, filters, delivers; see
 * {@link exchangeTimeSource} for what `invalidate` does and why.
 */
function runExchanges(
  config: ExchangeConfig,
  open: (report: (error: HttpTimeError) => void) => ExchangeTransport,
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
  const report = (error: HttpTimeError): void => {
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
        reject(new HttpTimeError(where, 'timeout', `no reply within ${config.timeoutMs} ms`));
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
        report(new HttpTimeError(where, 'timeout', `no reply within ${config.timeoutMs} ms`));
      } else if (error instanceof HttpTimeError) {
        report(error);
      } else {
        report(new HttpTimeError(where, 'network', describeFailure(error)));
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

/**
 * A {@link TimeSource} that syncs over a channel the app already has open (a
 * WebSocket, a worker port, a WebRTC data channel): the same four-timestamp
 * exchange and bound as {@link httpTimeSource}, with the server answering through
 * {@link answerTimeRequest}. Replies that do not echo a pending nonce are reported
 * as `'nonce-mismatch'` and do not end the exchange; a missing reply is a
 * `'timeout'`; a throwing `send` is `'network'`. Problems carry an
 * `HttpTimeError`; none of them yields a sample. A sample that contradicts the
 * kept ones beyond `maxDriftPpm` (the server's clock stepped, or the host slewed
 * the local monotonic clock) replaces them and is reported as
 * `'inconsistent-sample'` (no error: the new sample is delivered).
 *
 * Samples carry `evidenceFrom` = T1 of their exchange. The source has
 * `maxSampleGapMs` = `pollIntervalMs + samples · timeoutMs` and
 * `invalidate(monotonicAt)`, which `TrueClock` calls when it sees a suspend,
 * VM pause or clock step: only evidence gathered after the disruption may end
 * it, so samples gathered at or before `monotonicAt` are forgotten, a reply to
 * a request sent before it is dropped, and a fresh poll starts at once.
 *
 * @param options - How to send and receive, and the exchange tuning.
 * @returns A source to pass to `new TrueClock({ source })`.
 * @throws {InvalidArgumentError} When `send`/`onMessage` are not functions or a tuning option is out of range.
 *
 * @example
 * ```ts
 * const ws = new WebSocket('wss://example.com/live');
 * const source = messageTimeSource({
 *   send: (request) => ws.send(JSON.stringify(request)),
 *   onMessage: (listener) => {
 *     const handler = (event: MessageEvent) => listener(event.data);
 *     ws.addEventListener('message', handler);
 *     return () => ws.removeEventListener('message', handler);
 *   },
 * });
 * const clock = new TrueClock({ source });
 * await clock.ready();
 * ```
 */
export function messageTimeSource(options: MessageTimeSourceOptions): TimeSource {
  if (typeof options?.send !== 'function') {
    throw new InvalidArgumentError('send', options?.send, 'a function that sends a request');
  }
  if (typeof options.onMessage !== 'function') {
    throw new InvalidArgumentError(
      'onMessage',
      options.onMessage,
      'a function that registers a message listener',
    );
  }
  const name = options.name ?? 'message';
  const config = resolveExchangeOptions(options, name, `message channel ${name}`);
  const { send, onMessage } = options;
  return exchangeTimeSource(config, (report) => {
    let pending: { nonce: string; resolve: (reply: unknown) => void } | undefined;
    const unlisten = onMessage((message) => {
      const reply = typeof message === 'string' ? replyFromText(message) : message;
      if (
        typeof reply !== 'object' ||
        reply === null ||
        (reply as { type?: unknown }).type !== REPLY_TYPE
      ) {
        return;
      }
      const nonce = (reply as { nonce?: unknown }).nonce;
      if (pending !== undefined && nonce === pending.nonce) {
        const { resolve } = pending;
        pending = undefined;
        resolve(reply);
        return;
      }
      // A stale or forged reply is reported but does not end the exchange.
      report(
        new HttpTimeError(
          config.where,
          'nonce-mismatch',
          pending === undefined
            ? 'a reply arrived with no request pending'
            : 'a reply does not echo the pending nonce',
        ),
      );
    });
    return {
      roundTrip(nonce, signal) {
        return new Promise<unknown>((resolve, reject) => {
          pending = { nonce, resolve };
          signal.addEventListener(
            'abort',
            () => {
              if (pending?.nonce === nonce) pending = undefined;
              reject(new HttpTimeError(config.where, 'timeout', 'the exchange was aborted'));
            },
            { once: true },
          );
          try {
            send({ type: REQUEST_TYPE, v: 1, nonce });
          } catch (error) {
            pending = undefined;
            reject(new HttpTimeError(config.where, 'network', describeFailure(error)));
          }
        });
      },
      close() {
        pending = undefined;
        unlisten();
      },
    };
  });
}

/** Parses a text message only when it can be a time reply; others are ignored cheaply. */
function replyFromText(text: string): unknown {
  if (text.length > MAX_MESSAGE_CHARS || !text.includes(REPLY_TYPE)) return undefined;
  return parseJson(text);
}
