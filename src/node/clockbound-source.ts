/**
 * `clockboundSource`: a `TimeSource` that reads a ClockBound version 2 segment —
 * written by AWS's `clockbound` daemon or by `chronobound daemon` — so that every
 * process on a host shares one clock.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireInteger } from '../_internals/validate.js';
import { systemScheduler } from '../clock/system.js';
import type {
  ProblemListener,
  SampleListener,
  SourceContext,
  SourceProblem,
  DisposableTimeSource,
  SourceProblemReason,
} from '../sources/types.js';
import type { MonotonicSource, Scheduler, SyncSample } from '../clock/types.js';
import { CLOCKBOUND_DEFAULT_PATH, type ClockboundSnapshot } from './clockbound-segment.js';
import { SegmentReader } from './clockbound-reader.js';
import { RealtimeMap, monotonicNowNs } from './host-clocks.js';

/**
 * ClockBound's client trusts a `synchronized` segment for this long past `as_of`
 * and calls it free-running after (lib.rs `CLOCKBOUND_RESTART_GRACE_PERIOD`, 5 s).
 */
const RESTART_GRACE_NS = 5_000_000_000n;

/**
 * How far `as_of` may be ahead of the local monotonic clock before the read is
 * refused as a causality breach: 1 µs, ClockBound's `causality_blur` (lib.rs
 * `compute_bound_at`: `TimeSpec::new(0, 1000)`; its comment says "1 millisecond"
 * but the value is 1000 ns). ClockBound compares against `CLOCK_MONOTONIC_COARSE`;
 * this reader compares against `CLOCK_MONOTONIC`, which is never behind the
 * coarse clock, so a segment written with coarse timestamps always passes.
 */
const CAUSALITY_BLUR_NS = 1000n;

/**
 * Options of {@link clockboundSource}.
 *
 * @example
 * ```ts
 * const source = clockboundSource({ path: '/var/run/clockbound/shm0', pollIntervalMs: 1000 });
 * source.maxSampleGapMs; //=> 1500 (1.5 poll intervals)
 * ```
 */
export interface ClockboundSourceOptions {
  /**
   * The segment.
   *
   * @defaultValue `'/var/run/clockbound/shm0'` (`CLOCKBOUND_DEFAULT_PATH`)
   */
  readonly path?: string;
  /**
   * How often to read the segment (ms). Between reads the clock ages the last sample itself. The
   * default is the rate at which both ClockBound's daemon and `chronobound daemon` rewrite it.
   *
   * @defaultValue `1000`
   */
  readonly pollIntervalMs?: number;
  /**
   * How many times one read retries at once while the writer is mid-update (odd or changing
   * generation) before it reports `'segment-busy'`; the default is about 2 ms of reads.
   *
   * @defaultValue `1000`
   */
  readonly maxRetries?: number;
  /**
   * The `source` name on samples and problems.
   *
   * @defaultValue `'clockbound'`
   */
  readonly name?: string;
  /**
   * Timers.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
}

/**
 * A {@link TimeSource} backed by a ClockBound segment, with its latest snapshot.
 *
 * @example
 * ```ts
 * const source = clockboundSource(); // /var/run/clockbound/shm0
 * const clock = new TrueClock({ source });
 * await clock.ready();
 * source.snapshot?.status; // what the daemon last published, e.g. 'synchronized'
 * ```
 */
export interface ClockboundSource extends DisposableTimeSource {
  /** The segment's path. */
  readonly path: string;
  /** How often the segment is read (ms). */
  readonly pollIntervalMs: number;
  /** The longest a healthy source goes between samples (ms): 1.5 poll intervals. */
  readonly maxSampleGapMs: number;
  /** The latest consistent snapshot read, if any (whether or not it gave a sample). */
  readonly snapshot: ClockboundSnapshot | undefined;
  /**
   * Refuses every snapshot whose `as_of` is at or before `monotonicAt` (on the
   * subscriber's timescale) and reads the segment again at once. `TrueClock`
   * calls it on a disruption it sees itself.
   *
   * @param monotonicAt - When the disruption was seen.
   *
   * @example
   * ```ts
   * source.invalidate(performance.now());
   * ```
   */
  invalidate(monotonicAt: number): void;
}

interface Subscriber {
  readonly onSample: SampleListener;
  readonly onProblem: ProblemListener | undefined;
  readonly monotonic: MonotonicSource;
  readonly context: SourceContext | undefined;
  driftReported: boolean;
}

/** A subscriber's monotonic reading paired with `CLOCK_MONOTONIC`: the tightest of a few bracketed reads. */
function pairWithMonotonic(mono: MonotonicSource): {
  readonly ns: bigint;
  readonly mono: number;
  readonly errorMs: number;
} {
  const resolution = mono.resolutionMs ?? 0;
  let best: { ns: bigint; mono: number; errorMs: number } | undefined;
  for (let i = 0; i < 3; i++) {
    const before = mono.now();
    const ns = monotonicNowNs();
    const after = mono.now();
    // The subscriber's clock at `ns` lies in [before, after + resolution].
    const errorMs = (after - before + resolution) / 2;
    if (best === undefined || errorMs < best.errorMs) {
      best = { ns, mono: (before + after + resolution) / 2, errorMs };
    }
  }
  return best as { ns: bigint; mono: number; errorMs: number };
}

function requirePositive(name: string, value: number, max: number): number {
  if (typeof value !== 'number' || !(value > 0) || !(value <= max)) {
    throw new InvalidArgumentError(name, value, `a number > 0 and ≤ ${max}`);
  }
  return value;
}

/**
 * Reads a ClockBound version 2 segment — the one AWS's `clockbound` daemon
 * keeps at `/var/run/clockbound/shm0`, or one `chronobound daemon` publishes —
 * and turns it into sync samples, so that one time daemon per host serves every
 * process.
 *
 * **What a segment says.** At `as_of` (a `CLOCK_MONOTONIC_COARSE` timestamp),
 * `CLOCK_REALTIME` was within `bound_ns` of true time, and the bound grows by
 * `max_drift_ppb` × the time since. Each sample pairs a `CLOCK_REALTIME` reading
 * (`Date.now()`, mapped to sub-microsecond precision by one edge calibration,
 * repeated when the wall clock steps) with the subscriber's monotonic clock:
 * offset = REALTIME − monotonic, error = bound + max drift × age + the mapping
 * errors. Node's `process.hrtime.bigint()` is `CLOCK_MONOTONIC` on Linux; the
 * coarse clock is the same clock as of the last tick, so it lags by less than a
 * tick (1–10 ms), which only makes the age — and so the bound — larger. Segment
 * timestamps are moved onto the subscriber's timescale (`performance.now()` for
 * a `TrueClock`) through one bracketed pair of reads of both clocks per poll.
 *
 * **What is refused** (reported through `onProblem`, no sample):
 * `'segment-missing'`, `'segment-invalid'` (wrong magic, size or field),
 * `'segment-version'` (not version 2), `'segment-uninitialized'` (generation 0),
 * `'segment-busy'` (the generation stayed odd or kept changing for `maxRetries`
 * immediate retries: never a torn read), `'segment-unknown'` (status unknown),
 * `'disrupted'` (status disrupted, or the disruption marker changed — from then
 * on snapshots whose `as_of` is not after the moment the change was seen are
 * refused as `'stale-sample'`, so no sample from before the disruption is
 * delivered), `'segment-expired'` (past `void_after`), `'causality'` (`as_of`
 * more than 1 µs ahead of the local monotonic clock), and `'drift-bound'` once
 * when the segment's drift bound exceeds the clock's `maxDriftPpm` (samples then
 * carry the difference for one poll gap).
 *
 * **Statuses.** A `synchronized` segment gives a sample on every poll for 5 s
 * past `as_of` (ClockBound's grace); a `free-running` one — or a synchronized one
 * older than that — gives a sample only when `as_of` moved, so the clock ages
 * its last sample and shows `free-running` itself when the writer stops.
 *
 * **Cost.** Node cannot map memory, so each poll is three `pread`s of the
 * segment (header, body, generation — the reader protocol needs them in that
 * order) plus a few clock reads. Measured on a 2-core x86-64 VM (Node 20, the
 * segment on tmpfs): 30 µs per poll (25–40 µs over runs), of which the three
 * system calls take about 24 (one `pread` costs 8 µs on that VM). Once a
 * minute, and after a wall-clock step, the wall-clock calibration spins for up
 * to ~1 ms more. At the default 1 s poll that is 0.003 % of a core; the clock
 * ages the sample between polls, so polling faster only notices a disruption
 * or a new bound sooner.
 *
 * @param options - Path, poll interval, retries, name.
 * @returns The source; give it to a `TrueClock`.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 *
 * @example
 * ```ts
 * import { TrueClock } from 'chronobound';
 * import { clockboundSource } from 'chronobound/node';
 *
 * const clock = new TrueClock({ source: clockboundSource() });
 * await clock.ready();
 * console.log(clock.now());
 * ```
 */
export function clockboundSource(options: ClockboundSourceOptions = {}): ClockboundSource {
  return new ClockboundSourceImpl(options);
}

class ClockboundSourceImpl implements ClockboundSource {
  readonly path: string;
  readonly pollIntervalMs: number;
  readonly maxSampleGapMs: number;
  readonly #name: string;
  readonly #scheduler: Scheduler;
  readonly #reader: SegmentReader;
  readonly #realtime = new RealtimeMap();
  readonly #subscribers = new Set<Subscriber>();
  #timer: unknown;
  #closed = false;
  #snapshot: ClockboundSnapshot | undefined;
  /** The disruption marker of the first snapshot, then of each change. */
  #marker: bigint | undefined;
  /** Snapshots with `as_of` at or before this (monotonic ns) are refused. */
  #floorNs = -1n;
  /** `as_of` of the snapshot behind the last sample. */
  #deliveredAsOf: bigint | undefined;

  constructor(options: ClockboundSourceOptions) {
    this.path = options.path ?? CLOCKBOUND_DEFAULT_PATH;
    if (typeof this.path !== 'string' || this.path === '') {
      throw new InvalidArgumentError('path', options.path, 'a file path');
    }
    this.pollIntervalMs = requirePositive(
      'pollIntervalMs',
      options.pollIntervalMs ?? 1000,
      86_400_000,
    );
    this.maxSampleGapMs = this.pollIntervalMs * 1.5;
    const retries = requireInteger('maxRetries', options.maxRetries ?? 1000, 0, 1e6);
    this.#reader = new SegmentReader(this.path, retries);
    this.#name = options.name ?? 'clockbound';
    this.#scheduler = options.scheduler ?? systemScheduler;
  }

  get snapshot(): ClockboundSnapshot | undefined {
    return this.#snapshot;
  }

  // Typed by the TimeSource contract rather than restating its signature.
  readonly subscribe: ClockboundSource['subscribe'] = (onSample, monotonic, onProblem, context) => {
    if (this.#closed) return () => undefined;
    const subscriber: Subscriber = {
      onSample,
      onProblem,
      monotonic,
      context,
      driftReported: false,
    };
    this.#subscribers.add(subscriber);
    this.#schedule(0);
    return () => {
      this.#subscribers.delete(subscriber);
      if (this.#subscribers.size === 0) this.#stop();
    };
  };

  invalidate(monotonicAt: number): void {
    const nowNs = monotonicNowNs();
    let floor = nowNs;
    if (this.#subscribers.size === 1 && Number.isFinite(monotonicAt)) {
      const [only] = this.#subscribers;
      if (only !== undefined) {
        const pair = pairWithMonotonic(only.monotonic);
        const backMs = Math.max(0, pair.mono - monotonicAt);
        floor = pair.ns - BigInt(Math.floor(backMs * 1e6));
      }
    }
    if (floor > this.#floorNs) this.#floorNs = floor;
    this.#deliveredAsOf = undefined;
    if (this.#subscribers.size > 0) this.#schedule(0);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#subscribers.clear();
    this.#stop();
    this.#reader.reopen();
    return Promise.resolve();
  }

  #stop(): void {
    if (this.#timer !== undefined) this.#scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#stop();
    this.#timer = this.#scheduler.setTimeout(() => {
      this.#timer = undefined;
      this.#poll();
      if (this.#subscribers.size > 0 && this.#timer === undefined)
        this.#schedule(this.pollIntervalMs);
    }, ms);
    unrefTimer(this.#timer);
  }

  #problem(reason: SourceProblemReason, message: string, error?: Error): void {
    const p: SourceProblem =
      error === undefined
        ? { source: this.#name, reason, message }
        : { source: this.#name, reason, message, error };
    for (const s of [...this.#subscribers]) s.onProblem?.(p);
  }

  #poll(): void {
    if (this.#closed || this.#subscribers.size === 0) return;
    const read = this.#reader.read();
    // Read the monotonic clock after the segment: a writer's as_of is then never ahead of it.
    const nowNs = monotonicNowNs();
    if (!read.ok) {
      // A missing or foreign file may be replaced: open the path again next time.
      if (read.reason !== 'segment-busy') this.#reader.reopen();
      this.#problem(read.reason, read.message, read.error);
      return;
    }
    const s = read.snapshot;
    this.#snapshot = s;
    const where = this.path;
    if (this.#marker !== undefined && s.disruptionMarker !== this.#marker) {
      if (nowNs > this.#floorNs) this.#floorNs = nowNs;
      this.#deliveredAsOf = undefined;
      this.#problem(
        'disrupted',
        `the disruption marker of ${where} changed from ${this.#marker} to ${s.disruptionMarker}: ` +
          'the clock was disrupted; only data gathered after this is used',
      );
    }
    this.#marker = s.disruptionMarker;
    if (s.asOfNs > nowNs + CAUSALITY_BLUR_NS) {
      this.#problem(
        'causality',
        `${where} claims as_of ${formatNs(s.asOfNs - nowNs)} ahead of this host's monotonic clock ` +
          '(written on another boot or another host?); refused',
      );
      return;
    }
    if (s.status === 'unknown') {
      this.#problem('segment-unknown', `${where} says the clock status is unknown`);
      return;
    }
    if (s.status === 'disrupted') {
      if (nowNs > this.#floorNs) this.#floorNs = nowNs;
      this.#deliveredAsOf = undefined;
      this.#problem('disrupted', `${where} says the clock has been disrupted`);
      return;
    }
    if (nowNs >= s.voidAfterNs) {
      this.#reader.reopen();
      this.#problem(
        'segment-expired',
        `${where} expired ${formatNs(nowNs - s.voidAfterNs)} ago (void_after passed; is its writer running?)`,
      );
      return;
    }
    if (s.asOfNs <= this.#floorNs) {
      this.#problem(
        'stale-sample',
        `${where} holds data from ${formatNs(this.#floorNs - s.asOfNs)} before the last disruption; waiting for fresh data`,
      );
      return;
    }
    const fresh = s.status === 'synchronized' && nowNs < s.asOfNs + RESTART_GRACE_NS;
    if (!fresh && this.#deliveredAsOf === s.asOfNs) return;
    this.#deliver(s);
  }

  #deliver(s: ClockboundSnapshot): void {
    const realtime = this.#realtime.current();
    const boundMs = Number(s.boundNs) / 1e6;
    const driftPpm = s.maxDriftPpb / 1000;
    for (const sub of [...this.#subscribers]) {
      const pair = pairWithMonotonic(sub.monotonic);
      const ageMs = Math.max(0, Number(pair.ns - s.asOfNs) / 1e6);
      // The clock ages the sample at its own drift bound until the next one; when the
      // segment's is larger, the sample carries the difference for one poll gap.
      const clockDriftPpm = sub.context?.maxDriftPpm ?? driftPpm;
      const shortfallPpm = Math.max(0, driftPpm - clockDriftPpm);
      if (shortfallPpm > 0 && !sub.driftReported) {
        sub.driftReported = true;
        sub.onProblem?.({
          source: this.#name,
          reason: 'drift-bound',
          message:
            `${this.path} bounds drift at ${driftPpm} ppm, above the clock's maxDriftPpm ${clockDriftPpm}; ` +
            'set maxDriftPpm to at least the writer’s',
        });
      }
      const errorMs =
        boundMs +
        driftPpm * 1e-6 * ageMs +
        shortfallPpm * 1e-6 * this.maxSampleGapMs +
        realtime.errorMs +
        pair.errorMs +
        1e-6; // the bound's nanosecond rounding
      const monotonicAt = pair.mono;
      const sample: SyncSample = {
        monotonicAt,
        // REALTIME at `pair.ns`, minus the subscriber's clock at the same instant.
        offsetMs: Number(pair.ns) / 1e6 + realtime.offsetMs - pair.mono,
        errorMs,
        source: this.#name,
        evidenceFrom: Math.min(monotonicAt, monotonicAt - Number(pair.ns - s.asOfNs) / 1e6),
      };
      sub.onSample(sample);
    }
    this.#deliveredAsOf = s.asOfNs;
  }
}

function formatNs(ns: bigint): string {
  const ms = Number(ns) / 1e6;
  return Math.abs(ms) >= 1000 ? `${(ms / 1000).toFixed(3)} s` : `${ms.toFixed(3)} ms`;
}
