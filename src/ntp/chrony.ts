/**
 * chronyd as a time source: reads its `tracking` report over the cmdmon UDP
 * port (unprivileged from localhost) and turns it into sync samples with an
 * honest bound, the way AWS ClockBound does.
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
import { requireNonNegative } from '../_internals/validate.js';
import { calibrateWall, type WallCalibration } from '../sources/calibrate.js';
import { systemMonotonic, systemScheduler, systemWall } from '../sources/system.js';
import type {
  MonotonicSource,
  Scheduler,
  SourceProblem,
  SyncSample,
  TimeSource,
  WallSource,
} from '../sources/types.js';
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
export interface ChronySource extends TimeSource {
  /** How often chronyd is polled (ms). */
  readonly pollIntervalMs: number;
  /** The tracking report of the latest poll that got one, if any. */
  readonly tracking: ChronyTracking | undefined;
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
 *         + wall-mapping error + maxDrift · (now − refTime)
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
  const maxDrift =
    requireNonNegative('maxDriftPpm', options.maxDriftPpm ?? DEFAULT_MAX_DRIFT_PPM) * 1e-6;
  const allowLocalReference = options.allowLocalReference ?? true;
  if (typeof allowLocalReference !== 'boolean') {
    throw new InvalidArgumentError('allowLocalReference', allowLocalReference, 'a boolean');
  }
  const wall = options.wall ?? systemWall;
  const scheduler = options.scheduler ?? systemScheduler;
  const name = `chrony ${target.label}`;
  const stops = new Set<() => void>();
  let latest: ChronyTracking | undefined;

  return {
    pollIntervalMs,
    get tracking(): ChronyTracking | undefined {
      return latest;
    },
    subscribe(onSample, monotonic, onProblem) {
      const abort = new AbortController();
      let stopped = false;
      let timer: unknown;
      const poll = async (): Promise<void> => {
        let outcome: SampleOutcome;
        try {
          const exchange = await exchangeTracking(target, {
            timeoutMs,
            signal: abort.signal,
            monotonic,
            scheduler,
            background: true,
            // Calibrate right before sending, so the mapping and the report are contemporary.
            beforeSend: () => calibrateBest(wall, monotonic),
          });
          latest = exchange.tracking;
          outcome = trackingToSample({
            tracking: exchange.tracking,
            calibration: exchange.prepared,
            sentAt: exchange.sentAt,
            receivedAt: exchange.receivedAt,
            maxDrift,
            allowLocalReference,
            source: name,
          });
        } catch (error) {
          outcome = { problem: problemFromError(name, error) };
        }
        if (stopped) return;
        // Schedule first: a throwing listener must not stop the polling.
        timer = scheduler.setTimeout(() => void poll(), pollIntervalMs);
        unrefTimer(timer);
        if ('sample' in outcome) onSample(outcome.sample);
        else onProblem?.(outcome.problem);
      };
      const stop = (): void => {
        if (stopped) return;
        stopped = true;
        abort.abort();
        scheduler.clearTimeout(timer);
        stops.delete(stop);
      };
      stops.add(stop);
      void poll();
      return stop;
    },
    close() {
      for (const stop of [...stops]) stop();
      return Promise.resolve();
    },
  };
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
  // A refTime in the future is inconsistent; counting its distance keeps the bound safe.
  const ageMs = Math.abs(input.receivedAt + offsetMs - tracking.refTime);
  const errorMs = chronyBound + rounding + calibration.errorMs + input.maxDrift * ageMs;
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
  return { sample: { monotonicAt: input.sentAt, offsetMs, errorMs, source } };
}

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

function requirePositive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number > 0');
  }
  return value;
}
