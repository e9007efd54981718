/**
 * Notices that this process was stopped — a long GC, an event-loop stall,
 * SIGSTOP, a VM pause — from gaps in its own timer's monotonic ticks.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative } from '../_internals/validate.js';
import { systemMonotonic, systemScheduler } from '../clock/system.js';
import type { MonotonicSource, Scheduler } from '../clock/types.js';

/**
 * A detected stop. The process was stopped for between `durationMs` and
 * `maxDurationMs` (the timer's phase when the stop began is unknown).
 *
 * @example
 * ```ts
 * detector.onPause((p) => log.warn(`stopped for ≥ ${p.durationMs} ms (${p.trigger})`));
 * ```
 */
export interface PauseEvent {
  /** Lower bound on the stop (ms): how late the tick came. */
  readonly durationMs: number;
  /** Upper bound on the stop (ms): `durationMs + intervalMs`. */
  readonly maxDurationMs: number;
  /** Monotonic reading when it was noticed. */
  readonly detectedAt: number;
  /** What noticed it: `'timer'`, `'check'`, or the reason given to {@link PauseDetector.check}. */
  readonly trigger: string;
}

/**
 * Something a pause ends, such as a `Lease`.
 *
 * @example
 * ```ts
 * const manual = new ManualClock();
 * const detector = new PauseDetector({ intervalMs: 50, thresholdMs: 200, monotonic: manual, scheduler: manual });
 * const reasons: string[] = [];
 * detector.register({ invalidate: (reason) => reasons.push(reason) }); // a Lease is one
 * manual.pause(1000); // the process stops for a second; the late timer tells
 * reasons; //=> ['the process was stopped for 950.0–1000.0 ms (timer)']
 * ```
 */
export interface Invalidatable {
  /** Ends it for good, with the reason. */
  invalidate(reason: string): void;
}

/**
 * A clock a pause can disrupt, such as a `TrueClock`.
 *
 * @example
 * ```ts
 * // clock: a synchronized TrueClock on the same simulated time as `manual`
 * const detector = new PauseDetector({ monotonic: manual, scheduler: manual });
 * detector.watchClock(clock);
 * manual.pause(1000);
 * clock.now().status; //=> 'disrupted' (until a sample gathered after the pause)
 * ```
 */
export interface Disruptable {
  /** Marks the clock disrupted until its next sample. */
  reportDisruption(source: string, widenMs: number, detail: string): void;
}

/**
 * Options of {@link PauseDetector}.
 *
 * @example
 * ```ts
 * const manual = new ManualClock(); // simulated time: monotonic and timers
 * const seen: string[] = [];
 * new PauseDetector({
 *   intervalMs: 50,
 *   thresholdMs: 200,
 *   onPause: (p) => seen.push(`${p.durationMs}–${p.maxDurationMs} ms (${p.trigger})`),
 *   monotonic: manual,
 *   scheduler: manual,
 * });
 * manual.pause(1000); // the process stops for a second
 * seen; //=> ['950–1000 ms (timer)'] (the timer due at 50 ms came 950 ms late)
 * ```
 */
export interface PauseDetectorOptions {
  /**
   * How often the detector's timer ticks (ms).
   *
   * @defaultValue `100`
   */
  readonly intervalMs?: number;
  /**
   * A tick later than this (ms) counts as a pause.
   *
   * @defaultValue `250`
   */
  readonly thresholdMs?: number;
  /** Called on every pause. */
  readonly onPause?: (pause: PauseEvent) => void;
  /** A clock to mark `disrupted` on every pause (widened by `maxDurationMs`). */
  readonly clock?: Disruptable;
  /**
   * The monotonic clock.
   *
   * @defaultValue `performance.now()` (`systemMonotonic`)
   */
  readonly monotonic?: MonotonicSource;
  /**
   * Timers.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
  /**
   * Start ticking at once.
   *
   * @defaultValue `true`
   */
  readonly start?: boolean;
}

/**
 * Detects process pauses from late ticks of its own timer: a timer set for
 * `intervalMs` that fires `durationMs` later than asked means the process
 * could not run for at least that long. On a pause it calls the listeners,
 * invalidates every registered lease, and marks the clock `disrupted`.
 *
 * It cannot notice a pause before its timer (or a {@link PauseDetector.check})
 * runs, and a pause the monotonic clock itself did not see (some VM pauses) is
 * for `TrueClock`'s wall-clock watchdog. So leases must still be checked
 * against the clock, and writes fenced.
 *
 * @example
 * ```ts
 * const detector = new PauseDetector({ clock, onPause: (p) => log.warn(p) });
 * const unregister = detector.register(lease);
 * // ... on shutdown:
 * detector.stop();
 * ```
 */
export class PauseDetector {
  readonly #intervalMs: number;
  readonly #thresholdMs: number;
  readonly #mono: MonotonicSource;
  readonly #scheduler: Scheduler;
  readonly #clocks = new Set<Disruptable>();
  readonly #listeners = new Set<(pause: PauseEvent) => void>();
  readonly #registered = new Set<Invalidatable>();
  #lastTick = 0;
  #timer: unknown;
  #running = false;
  #pauses = 0;

  /**
   * @param options - Interval, threshold, listeners, clock and injectable time.
   * @throws {@link InvalidArgumentError} When `intervalMs` is not > 0 or `thresholdMs` is negative.
   */
  constructor(options: PauseDetectorOptions = {}) {
    const intervalMs = options.intervalMs ?? 100;
    if (typeof intervalMs !== 'number' || !(intervalMs > 0) || !Number.isFinite(intervalMs)) {
      throw new InvalidArgumentError('intervalMs', intervalMs, 'a finite number of ms > 0');
    }
    this.#intervalMs = intervalMs;
    this.#thresholdMs = requireNonNegative('thresholdMs', options.thresholdMs ?? 250);
    this.#mono = options.monotonic ?? systemMonotonic;
    this.#scheduler = options.scheduler ?? systemScheduler;
    if (options.onPause) this.#listeners.add(options.onPause);
    if (options.clock) this.#clocks.add(options.clock);
    if (options.start ?? true) this.start();
  }

  /**
   * Starts ticking (idempotent). The timer does not keep a Node process alive.
   *
   * @example
   * ```ts
   * const detector = new PauseDetector({ start: false });
   * detector.start();
   * ```
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lastTick = this.#mono.now();
    this.#schedule();
  }

  /**
   * Stops ticking (idempotent).
   *
   * @example
   * ```ts
   * detector.stop();
   * ```
   */
  stop(): void {
    this.#running = false;
    this.#scheduler.clearTimeout(this.#timer);
  }

  /**
   * Same as {@link PauseDetector.stop}, for `await using`.
   *
   * @example
   * ```ts
   * await using detector = new PauseDetector({ clock });
   * detector.start(); // stops when the block ends
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.stop();
    return Promise.resolve();
  }

  /**
   * Checks now, without waiting for the timer: useful right before a critical
   * write, or from a SIGCONT handler. Reports a pause if the timer is overdue by
   * more than the threshold.
   *
   * @param trigger - Shown in the event; default `'check'`.
   * @returns The pause, or `undefined` when none is visible.
   *
   * @example
   * ```ts
   * if (detector.check()) abortWrite(); // a pause happened: what we knew may be stale
   * ```
   */
  check(trigger: string = 'check'): PauseEvent | undefined {
    if (!this.#running) return undefined;
    const now = this.#mono.now();
    const lateMs = now - this.#lastTick - this.#intervalMs;
    if (!(lateMs > this.#thresholdMs)) return undefined;
    // Restart the baseline so the overdue timer does not report the same pause again.
    this.#lastTick = now;
    return this.#report(lateMs, now, trigger);
  }

  /**
   * Subscribes to pauses.
   *
   * @param listener - Called with each pause.
   * @returns A function that unsubscribes.
   *
   * @example
   * ```ts
   * const off = detector.onPause((p) => metrics.histogram('pause_ms', p.durationMs));
   * ```
   */
  onPause(listener: (pause: PauseEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Registers a lease (or anything with `invalidate(reason)`) to be
   * invalidated by the next pause. It is unregistered once invalidated.
   *
   * @param target - A `Lease`.
   * @returns A function that unregisters it (call it when releasing the lease).
   * @throws {@link InvalidArgumentError} When `target` has no `invalidate` method.
   *
   * @example
   * ```ts
   * const unregister = detector.register(lease);
   * ```
   */
  register(target: Invalidatable): () => void {
    if (typeof target?.invalidate !== 'function') {
      throw new InvalidArgumentError(
        'target',
        target,
        'an object with invalidate(reason), e.g. a Lease',
      );
    }
    this.#registered.add(target);
    return () => this.#registered.delete(target);
  }

  /**
   * Marks `clock` disrupted on every pause, like the `clock` option.
   *
   * @param clock - A `TrueClock`.
   * @returns A function that stops doing so.
   *
   * @example
   * ```ts
   * detector.watchClock(clock);
   * ```
   */
  watchClock(clock: Disruptable): () => void {
    this.#clocks.add(clock);
    return () => this.#clocks.delete(clock);
  }

  /**
   * Number of pauses seen so far.
   *
   * @example
   * ```ts
   * expect(detector.pauses).toBe(0);
   * ```
   */
  get pauses(): number {
    return this.#pauses;
  }

  #schedule(): void {
    this.#timer = this.#scheduler.setTimeout(() => this.#tick(), this.#intervalMs);
    unrefTimer(this.#timer);
  }

  #tick(): void {
    if (!this.#running) return;
    const now = this.#mono.now();
    const lateMs = now - this.#lastTick - this.#intervalMs;
    this.#lastTick = now;
    this.#schedule();
    if (lateMs > this.#thresholdMs) this.#report(lateMs, now, 'timer');
  }

  #report(lateMs: number, now: number, trigger: string): PauseEvent {
    this.#pauses++;
    const pause: PauseEvent = {
      durationMs: lateMs,
      maxDurationMs: lateMs + this.#intervalMs,
      detectedAt: now,
      trigger,
    };
    const reason = `the process was stopped for ${lateMs.toFixed(1)}–${pause.maxDurationMs.toFixed(1)} ms (${trigger})`;
    // Leases and clocks first: a listener may act on them.
    const leases = [...this.#registered];
    this.#registered.clear();
    for (const lease of leases) lease.invalidate(reason);
    for (const clock of this.#clocks)
      clock.reportDisruption('pause-detector', pause.maxDurationMs, reason);
    for (const listener of [...this.#listeners]) listener(pause);
    return pause;
  }
}
