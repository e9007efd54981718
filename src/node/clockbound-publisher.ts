/**
 * `publishClockbound`: keeps a ClockBound version 2 segment up to date from a
 * `TrueClock`, so that every process on the host — chronobound's
 * `clockboundSource`, or ClockBound's own C and Rust clients — reads one clock.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import type { ClockStatus } from '../clock/types.js';
import type { TrueClock } from '../truetime/true-clock.js';
import {
  CLOCKBOUND_DEFAULT_PATH,
  type ClockboundData,
  type ClockboundStatus,
} from './clockbound-segment.js';
import { ClockboundSegmentWriter, DEFAULT_COARSE_TICK_MS } from './clockbound-writer.js';
import { RealtimeMap, monotonicNowNs } from './host-clocks.js';

/**
 * ClockBound's daemon lets data stand for 1000 s past `as_of` (clock_bound_runner.rs
 * `write_clock_error_bound`), "how long a linear model of drift is valid".
 */
const DEFAULT_MAX_VALIDITY_MS = 1_000_000;

/** A reading bracketed by more than this (ns) was preempted: read again. */
const LOOSE_BRACKET_NS = 50_000n;

/**
 * Options of {@link publishClockbound}.
 *
 * @example
 * ```ts
 * const publisher = publishClockbound(clock, { path: '/var/run/clockbound/shm0', updateMs: 1000, maxUncertaintyMs: 50 });
 * publisher.last?.status; // 'unknown' until the clock's first sample, then the clock's status
 * ```
 */
export interface ClockboundPublisherOptions {
  /**
   * The segment.
   *
   * @defaultValue `'/var/run/clockbound/shm0'` (`CLOCKBOUND_DEFAULT_PATH`)
   */
  readonly path?: string;
  /**
   * How often the segment is rewritten (ms); status changes are written at once. The default is
   * ClockBound's daemon's rate.
   *
   * @defaultValue `1000`
   */
  readonly updateMs?: number;
  /**
   * Above this bound (ms) the data is void: `void_after` is set to when the bound, growing at the
   * drift bound, would reach it. Give the clock's own value; the default is TrueClock's default
   * `maxUncertaintyMs`.
   *
   * @defaultValue `50`
   */
  readonly maxUncertaintyMs?: number;
  /**
   * Cap on how long data stands past `as_of` (ms). The default is ClockBound's 1000 s.
   *
   * @defaultValue `1_000_000`
   */
  readonly maxValidityMs?: number;
  /**
   * How far a reader's `CLOCK_MONOTONIC_COARSE` may lag `CLOCK_MONOTONIC` (ms). `as_of` is written
   * this much earlier than the moment the bound was computed, so that ClockBound's clients, which
   * check `as_of` against the coarse clock with a 1 µs tolerance, do not see it in the future; the
   * bound is then aged by this much more than needed (4 µs at 200 ppm). The default is two ticks at
   * HZ=100: the lag is nominally under one tick, but a tickless kernel in a VM was measured at up
   * to 5.9 ms with a 4 ms tick.
   *
   * @defaultValue `20`
   */
  readonly coarseTickMs?: number;
  /**
   * Called when a scheduled update fails (e.g. the file system errors).
   *
   * @defaultValue none: such failures are ignored
   */
  readonly onError?: (error: Error) => void;
}

/**
 * A running publication of a clock into a ClockBound segment.
 *
 * @example
 * ```ts
 * const publisher = publishClockbound(clock, { path: '/tmp/clockbound/shm0' }); // clock: no sample yet
 * publisher.writes;       //=> 1 (the first write is made at once)
 * publisher.last?.status; //=> 'unknown' (nothing to stand behind yet)
 * publisher.generation;   //=> 2 (for a new segment)
 * await publisher.close(); // marks the segment unusable
 * ```
 */
export interface ClockboundPublisher {
  /** The segment's path. */
  readonly path: string;
  /** Updates written (including the first, `unknown` one). */
  readonly writes: number;
  /** The generation now in the file. */
  readonly generation: number;
  /** The data of the latest update. */
  readonly last: ClockboundData | undefined;
  /**
   * Writes the clock's current state now (the timer does this every `updateMs`).
   *
   * @returns What was written.
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When the publisher is closed or the file system fails.
   */
  update(): ClockboundData;
  /** Stops updating, marks the segment unusable (status unknown, `void_after` past) and closes the file. Idempotent. */
  close(): Promise<void>;
  /** Same as `close()`, for `await using publisher = publishClockbound(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const STATUS_MAP: Readonly<Record<ClockStatus, ClockboundStatus>> = {
  synchronized: 'synchronized',
  'free-running': 'free-running',
  disrupted: 'disrupted',
  unsynchronized: 'unknown',
};

function requireRange(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !(value >= min) || !(value <= max)) {
    throw new InvalidArgumentError(name, value, `a number from ${min} to ${max}`);
  }
  return value;
}

/**
 * Publishes `clock` into a ClockBound version 2 segment, rewritten every
 * `updateMs` and on every status change, in place (see
 * {@link ClockboundSegmentWriter}).
 *
 * **What is written.** ClockBound's segment bounds `CLOCK_REALTIME`, not the
 * clock's estimate: readers compute `[REALTIME − bound, REALTIME + bound]`. So
 * the bound is the distance from the system clock to the far end of the clock's
 * interval, `max(latest − REALTIME, REALTIME − earliest)`, with REALTIME read
 * to sub-microsecond precision around the reading. It includes the system
 * clock's own error: a host whose wall clock is 30 ms off publishes a bound of
 * at least 30 ms. Since the kernel slews `CLOCK_REALTIME` and `CLOCK_MONOTONIC`
 * together, the bound grows no faster than the clock's drift bound, which is
 * published as `max_drift_ppb`.
 *
 * - `as_of`: `CLOCK_MONOTONIC` (`process.hrtime.bigint()`) just before the
 *   reading, minus `coarseTickMs` (ClockBound's readers use the coarse clock).
 * - status: `synchronized`, `free-running` and `disrupted` as the clock says;
 *   `unsynchronized` (no sample yet, or ε too large) is `unknown`, with
 *   `void_after` in the past. So the segment reads `unknown` from the first
 *   write until the clock's first sample (graceful start).
 * - `void_after`: when the bound, growing at the drift bound, reaches
 *   `maxUncertaintyMs` (capped at `maxValidityMs`): a reader of a segment whose
 *   writer died stops trusting it then.
 * - disruption marker: the earlier writer's marker (on a restart) plus the
 *   number of disruptions the clock has seen; disruption support stays off
 *   (ClockBound's clients would compare the marker with the VMClock device's).
 *
 * On a restart the segment is reused in place and its generation continues;
 * the first write is made at once and says `unknown` until the new clock has a
 * sample, so readers never see data the new writer cannot stand behind.
 * `close()` marks the segment unusable.
 *
 * @param clock - The host's clock.
 * @param options - Path, update interval, limits.
 * @returns The running publisher.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} The file system's error when the segment cannot be opened or created.
 *
 * @example
 * ```ts
 * import { TrueClock } from 'chronobound';
 * import { ntpSource } from 'chronobound/ntp';
 * import { publishClockbound } from 'chronobound/node';
 *
 * const clock = new TrueClock({ source: ntpSource({ servers: ['time.aws.com'] }) });
 * const publisher = publishClockbound(clock, { path: '/var/run/clockbound/shm0' });
 * process.once('SIGTERM', () => void publisher.close().then(() => clock.close()));
 * ```
 */
export function publishClockbound(
  clock: TrueClock,
  options: ClockboundPublisherOptions = {},
): ClockboundPublisher {
  const path = options.path ?? CLOCKBOUND_DEFAULT_PATH;
  const updateMs = requireRange('updateMs', options.updateMs ?? 1000, 1, 3_600_000);
  const maxUncertaintyMs = requireRange(
    'maxUncertaintyMs',
    options.maxUncertaintyMs ?? 50,
    0,
    Infinity,
  );
  const maxValidityMs = requireRange(
    'maxValidityMs',
    options.maxValidityMs ?? DEFAULT_MAX_VALIDITY_MS,
    0,
    1e12,
  );
  const coarseTickMs = requireRange(
    'coarseTickMs',
    options.coarseTickMs ?? DEFAULT_COARSE_TICK_MS,
    0,
    1000,
  );
  const writer = ClockboundSegmentWriter.open(path, { coarseTickMs });
  return new Publisher(clock, writer, {
    updateMs,
    maxUncertaintyMs,
    maxValidityMs,
    coarseTickNs: BigInt(Math.round(coarseTickMs * 1e6)),
    onError: options.onError,
  });
}

interface Settings {
  readonly updateMs: number;
  readonly maxUncertaintyMs: number;
  readonly maxValidityMs: number;
  readonly coarseTickNs: bigint;
  readonly onError: ((error: Error) => void) | undefined;
}

class Publisher implements ClockboundPublisher {
  readonly #clock: TrueClock;
  readonly #writer: ClockboundSegmentWriter;
  readonly #settings: Settings;
  readonly #realtime = new RealtimeMap();
  readonly #markerBase: bigint;
  readonly #offStatus: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** An update is running (the clock's status listeners may fire inside it). */
  #updating = false;
  /** A status change arrived during an update: write once more after it. */
  #again = false;

  constructor(clock: TrueClock, writer: ClockboundSegmentWriter, settings: Settings) {
    this.#clock = clock;
    this.#writer = writer;
    this.#settings = settings;
    // Continue the earlier writer's marker: a restart is not a disruption.
    this.#markerBase = writer.previous?.disruptionMarker ?? 0n;
    try {
      this.update();
    } catch (error) {
      writer.close();
      throw error;
    }
    this.#offStatus = clock.onStatusChange(() => this.#safeUpdate());
    this.#schedule();
  }

  get path(): string {
    return this.#writer.path;
  }

  get writes(): number {
    return this.#writer.writes;
  }

  get generation(): number {
    return this.#writer.generation;
  }

  get last(): ClockboundData | undefined {
    return this.#writer.writes > 0 ? this.#writer.last : undefined;
  }

  update(): ClockboundData {
    if (this.#closed) throw new Error(`the ClockBound publisher for ${this.path} is closed`);
    this.#updating = true;
    let data: ClockboundData;
    try {
      data = this.#compute();
      this.#writer.write(data);
      while (this.#again && !this.#closed) {
        this.#again = false;
        data = this.#compute();
        this.#writer.write(data);
      }
    } finally {
      this.#updating = false;
      this.#again = false;
    }
    return data;
  }

  /** The segment's body for the clock's state now. */
  #compute(): ClockboundData {
    const { maxUncertaintyMs, maxValidityMs, coarseTickNs } = this.#settings;
    const metrics = this.#clock.metrics();
    const realtime = this.#realtime.current();
    // Bracket the reading with CLOCK_MONOTONIC; a preemption inside the bracket
    // widens the bound, so take the tightest of a few readings.
    let beforeNs = monotonicNowNs();
    let reading = this.#clock.now();
    let afterNs = monotonicNowNs();
    for (let i = 0; i < 2 && afterNs - beforeNs > LOOSE_BRACKET_NS; i++) {
      const b = monotonicNowNs();
      const r = this.#clock.now();
      const a = monotonicNowNs();
      if (a - b < afterNs - beforeNs) {
        beforeNs = b;
        reading = r;
        afterNs = a;
      }
    }
    // REALTIME at the instant of the reading lies in [low, high].
    const low = Number(beforeNs) / 1e6 + realtime.offsetMs - realtime.errorMs;
    const high = Number(afterNs) / 1e6 + realtime.offsetMs + realtime.errorMs;
    const boundMs = Math.max(reading.latest - low, high - reading.earliest);
    let status = STATUS_MAP[reading.status];
    const finite = Number.isFinite(boundMs) && boundMs >= 0 && boundMs < 9e12;
    if (!finite && status !== 'disrupted') status = 'unknown';
    const maxDriftPpb = Math.min(999_999_999, Math.ceil(metrics.maxDriftPpm * 1000));
    const asOfNs = beforeNs - coarseTickNs > 0n ? beforeNs - coarseTickNs : 0n;
    let voidAfterNs = asOfNs;
    if (status === 'synchronized' || status === 'free-running') {
      const driftPerMs = maxDriftPpb * 1e-9;
      const headroomMs = maxUncertaintyMs - boundMs;
      const validMs =
        headroomMs <= 0
          ? 0
          : driftPerMs > 0
            ? Math.min(maxValidityMs, headroomMs / driftPerMs)
            : maxValidityMs;
      voidAfterNs = asOfNs + BigInt(Math.floor(validMs * 1e6));
    }
    const data: ClockboundData = {
      asOfNs,
      voidAfterNs,
      boundNs: finite ? BigInt(Math.ceil(boundMs * 1e6)) : 0n,
      disruptionMarker: this.#markerBase + BigInt(metrics.disruptions),
      maxDriftPpb,
      status,
      disruptionSupport: false,
    };
    return data;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#offStatus();
    try {
      this.#writer.markUnusable();
    } finally {
      this.#writer.close();
    }
    return Promise.resolve();
  }

  #safeUpdate(): void {
    if (this.#closed) return;
    if (this.#updating) {
      this.#again = true;
      return;
    }
    try {
      this.update();
    } catch (error) {
      this.#settings.onError?.(error as Error);
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#safeUpdate();
      this.#schedule();
    }, this.#settings.updateMs);
    unrefTimer(this.#timer);
  }
}
