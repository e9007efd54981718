/**
 * The floor of the house: the clocks every other module reads (monotonic, wall,
 * timers) and the two shapes that travel between layers — a sync sample and a
 * reading. Nothing here imports anything.
 *
 * @module
 */

/**
 * How much a {@link TimeReading} can be trusted.
 *
 * - `synchronized`: a recent sample backs the bound.
 * - `free-running`: no sample for a while; the bound still holds (it grows with the
 *   drift bound) and is within `maxUncertaintyMs`.
 * - `unsynchronized`: no sample yet, only an assumed bound, or ε above `maxUncertaintyMs`.
 * - `disrupted`: the watchdog saw the monotonic and wall clocks disagree (suspend,
 *   VM pause or migration, clock step); the bound was widened and strict
 *   operations refuse until the next accepted sample.
 *
 * @example
 * ```ts
 * const ok = (s: ClockStatus) => s === 'synchronized' || s === 'free-running';
 * ```
 */
export type ClockStatus = 'synchronized' | 'free-running' | 'unsynchronized' | 'disrupted';

/**
 * One honest reading: true time lies in `[earliest, latest]`. Times are epoch
 * milliseconds (fractional); `uncertaintyMs` is ε, half the width.
 *
 * @example
 * ```ts
 * const { earliest, latest, status } = clock.now();
 * ```
 */
export interface TimeReading {
  /** True time is no earlier than this (epoch ms). */
  readonly earliest: number;
  /** True time is no later than this (epoch ms). */
  readonly latest: number;
  /** Best estimate of true time, the midpoint (epoch ms). */
  readonly estimate: number;
  /** ε: half the interval width (ms). `Infinity` with no sample. */
  readonly uncertaintyMs: number;
  /** Whether the bound is backed by a measurement; see {@link ClockStatus}. */
  readonly status: ClockStatus;
}

/**
 * A clock that never goes backwards and never jumps: `performance.now()`-style
 * milliseconds from an arbitrary origin. Intervals only ever grow from it.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({
 *   source: systemClockSource({ assumedErrorMs: 50 }),
 *   monotonic: { now: () => performance.now(), resolutionMs: 0.005 }, // every bound adds 5 µs
 * });
 * ```
 */
export interface MonotonicSource {
  /** The current reading in milliseconds from an arbitrary origin. */
  now(): number;
  /**
   * Smallest step the clock can show (ms); added to every bound.
   *
   * @defaultValue `0`
   */
  readonly resolutionMs?: number;
}

/**
 * A wall clock in epoch milliseconds, like `Date.now()`. It may step in either
 * direction at any time; never subtract two readings to measure a duration.
 *
 * @example
 * ```ts
 * let t = 0; // a fake monotonic clock: 0.25 ms per read
 * const mono = { now: () => (t += 0.25) };
 * const wall = { now: () => 1_700_000_000_000 + Math.floor(t), resolutionMs: 1 }; // ticks at t = 1
 * calibrateWall(wall, mono);
 * //=> { offsetMs: 1700000000000.125, errorMs: 0.375, monotonicAt: 1.25, edge: true }
 * ```
 */
export interface WallSource {
  /** The current wall-clock reading in epoch milliseconds. */
  now(): number;
  /** Smallest step the clock can show (ms); `Date.now()` has 1. */
  readonly resolutionMs?: number;
}

/**
 * A sync sample: "at monotonic reading `monotonicAt`, true time was
 * `monotonicAt + offsetMs`, give or take `errorMs`".
 *
 * @example
 * ```ts
 * const manual = new ManualClock(); // wall and true time 2026-01-01T00:00:00Z, monotonic 0
 * const source = manualSource();
 * const clock = new TrueClock({ source, monotonic: manual, wall: manual.wall, scheduler: manual });
 * source.push({ monotonicAt: 0, offsetMs: Date.UTC(2026, 0, 1), errorMs: 5, source: 'manual' });
 * clock.now().estimate;      //=> 1767225600000 (2026-01-01T00:00:00Z)
 * clock.now().uncertaintyMs; //=> 5.003… (the sample's 5 ms, plus the epoch's float rounding)
 * ```
 */
export interface SyncSample {
  /** Monotonic reading (on the clock's own timescale) the sample refers to. */
  readonly monotonicAt: number;
  /** True time minus the monotonic reading at `monotonicAt` (ms). */
  readonly offsetMs: number;
  /** Bound on the error of `monotonicAt + offsetMs` as true time (ms, ≥ 0). */
  readonly errorMs: number;
  /** Human-readable name of where the sample came from. */
  readonly source: string;
  /**
   * `true` when `errorMs` is an assumption nobody measured (e.g. the system clock
   * with an assumed error). A clock fed only such samples stays `unsynchronized`.
   */
  readonly assumed?: boolean;
  /**
   * Monotonic reading at which the oldest evidence behind this sample was gathered: for an
   * exchange, T1 (when the request left); for a selection, the oldest T1 among the votes. Only a
   * sample whose evidence is all newer than a disruption (suspend, VM pause, clock step) can end
   * it.
   *
   * @defaultValue `monotonicAt`
   */
  readonly evidenceFrom?: number;
  /**
   * A leap second the sources announce (a majority of them, for a selection) for
   * the end of the current UTC month: `'insert'` (NTP leap indicator 1, the last
   * minute has 61 s) or `'delete'` (indicator 2, 59 s). See `TrueClock`'s leap handling.
   */
  readonly leapSecond?: LeapSecond;
}

/**
 * The direction of an announced leap second: `'insert'` makes UTC (and Unix
 * time) repeat a second, `'delete'` skips one.
 *
 * @example
 * ```ts
 * const manual = new ManualClock({ wallMs: Date.UTC(2026, 5, 30, 23) }); // an hour before July
 * const source = manualSource();
 * const clock = new TrueClock({ source, monotonic: manual, wall: manual.wall, scheduler: manual });
 * source.push({ monotonicAt: 0, offsetMs: Date.UTC(2026, 5, 30, 23), errorMs: 5, source: 'ntp', leapSecond: 'insert' });
 * const r = clock.now();
 * r.estimate - r.earliest; //=> 1005.003… (UTC will repeat a second: the interval reaches 1 s further back)
 * r.latest - r.estimate;   //=> 5.003…
 * ```
 */
export type LeapSecond = 'insert' | 'delete';

/**
 * Timers, injectable so tests can run in virtual time. `setImmediate`, when
 * present, is used to finish waits precisely after a coarse `setTimeout`.
 *
 * @example
 * ```ts
 * const manual = new ManualClock(); // a Scheduler whose timers fire only when advanced
 * const hlc = new HybridLogicalClock({ node: 'a', overflowPolicy: 'wait', scheduler: manual });
 * const clock = new TrueClock({ source, monotonic: manual, wall: manual.wall, scheduler: manual });
 * manual.advance(1000); // runs the timers due in that second, the watchdog's among them
 * ```
 */
export interface Scheduler {
  /** Calls `callback` after at least `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer returned by `setTimeout`. */
  clearTimeout(handle: unknown): void;
  /** Calls `callback` soon, after pending I/O; absent in virtual-time schedulers. */
  readonly setImmediate?: (callback: () => void) => void;
}

// `TrueClock` and the etcd election are `AsyncDisposable` (`await using clock = …`),
// so the published declarations name `Symbol.asyncDispose`, which TypeScript knows
// only with the `esnext.disposable` lib or `@types/node`. Declaring it here, as
// `@types/node` does (it merges with either), lets a browser project with
// `lib: ["ES2022", "DOM"]` check the package's declarations (TS2550 otherwise).
// Here because every declaration file that names a clock loads this one.
declare global {
  interface SymbolConstructor {
    /** The method `await using` calls when its scope ends (explicit resource management). */
    readonly asyncDispose: unique symbol;
  }
}
