/**
 * A time source that trusts the operating system's clock, for when there is no
 * NTP server to ask. It says honestly that its bound is an assumption.
 *
 * @module
 */
import { requireNonNegative } from '../_internals/validate.js';
import { unrefTimer } from '../_internals/timers.js';
import { calibrateWall } from '../clock/calibrate.js';
import { systemScheduler, systemWall } from '../clock/system.js';
import type { DisposableTimeSource } from './types.js';
import type { Scheduler, WallSource } from '../clock/types.js';

/**
 * Options of {@link systemClockSource}.
 *
 * @example
 * ```ts
 * const assumed = new TrueClock({ source: systemClockSource({ assumedErrorMs: 10 }) });
 * (await assumed.ready()).status; //=> 'unsynchronized' (nobody measured those 10 ms)
 * const checked = new TrueClock({ source: systemClockSource({ assumedErrorMs: 10, trusted: true }) });
 * (await checked.ready()).status; //=> 'synchronized'
 * ```
 */
export interface SystemClockSourceOptions {
  /** How far the OS clock is assumed to be from true time (ms). Nobody measured it. */
  readonly assumedErrorMs: number;
  /**
   * Mark the assumption as trustworthy (e.g. the host runs chrony and you checked
   * it). Without it, a clock fed only by this source stays `unsynchronized`.
   */
  readonly trusted?: boolean;
  /**
   * How often to check the wall clock for steps (ms).
   *
   * @defaultValue `1000`
   */
  readonly checkIntervalMs?: number;
  /**
   * How often to recalibrate on a tick edge even without a step (ms).
   *
   * @defaultValue `60_000`
   */
  readonly recalibrateIntervalMs?: number;
  /**
   * A wall-clock jump larger than this (ms) is reported as a step.
   *
   * @defaultValue `2`
   */
  readonly stepThresholdMs?: number;
  /**
   * The wall clock.
   *
   * @defaultValue `Date.now()` (`systemWall`)
   */
  readonly wall?: WallSource;
  /**
   * Timers.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
}

/**
 * A {@link TimeSource} that maps the OS wall clock onto the monotonic timescale
 * (calibrated on the tick edge, so sub-millisecond) and claims the error you
 * assume. It rechecks every second and reports a `'wall-step'` problem, with a
 * fresh sample, when the wall clock jumps.
 *
 * @param options - The assumed error and, optionally, whether to trust it.
 * @returns A source to pass to `new TrueClock({ source })`.
 * @throws {@link InvalidArgumentError} When `assumedErrorMs` is negative or not finite.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({ source: systemClockSource({ assumedErrorMs: 100 }) });
 * clock.now().status; // 'unsynchronized': the 100 ms is an assumption
 * ```
 */
export function systemClockSource(options: SystemClockSourceOptions): DisposableTimeSource {
  const assumedErrorMs = requireNonNegative('assumedErrorMs', options.assumedErrorMs);
  const wall = options.wall ?? systemWall;
  const scheduler = options.scheduler ?? systemScheduler;
  const checkIntervalMs = requireNonNegative('checkIntervalMs', options.checkIntervalMs ?? 1000);
  const recalibrateIntervalMs = options.recalibrateIntervalMs ?? 60_000;
  const stepThresholdMs = options.stepThresholdMs ?? 2;
  const assumed = options.trusted !== true;
  const name = 'system-clock';
  const stops = new Set<() => void>();

  return {
    pollIntervalMs: checkIntervalMs,
    subscribe(onSample, monotonic, onProblem) {
      let stopped = false;
      let timer: unknown;
      let calibration = calibrateWall(wall, monotonic);
      // `recheckErrorMs` widens a sample re-stamped without a fresh edge calibration:
      // the check only shows wall − mono is still within that much of the calibration.
      const emit = (monotonicAt: number, recheckErrorMs: number): void =>
        onSample({
          monotonicAt,
          offsetMs: calibration.offsetMs,
          errorMs: assumedErrorMs + calibration.errorMs + recheckErrorMs,
          source: name,
          assumed,
        });
      const check = (): void => {
        if (stopped) return;
        const mono = monotonic.now();
        // Between calibrations, wall − mono should stay within the wall resolution.
        const drift = wall.now() - (mono + calibration.offsetMs);
        const resolution = wall.resolutionMs ?? 1;
        const stepped = drift > stepThresholdMs || drift < -resolution - stepThresholdMs;
        if (stepped || mono - calibration.monotonicAt >= recalibrateIntervalMs) {
          calibration = calibrateWall(wall, monotonic);
          if (stepped) {
            onProblem?.({
              source: name,
              reason: 'wall-step',
              message: `the wall clock jumped by about ${Math.round(drift)} ms`,
            });
          }
          emit(calibration.monotonicAt, 0);
        } else {
          emit(mono, Math.abs(drift) + resolution);
        }
        timer = scheduler.setTimeout(check, checkIntervalMs);
        unrefTimer(timer);
      };
      emit(calibration.monotonicAt, 0);
      timer = scheduler.setTimeout(check, checkIntervalMs);
      unrefTimer(timer);
      const stop = (): void => {
        stopped = true;
        scheduler.clearTimeout(timer);
        stops.delete(stop);
      };
      stops.add(stop);
      return stop;
    },
    close() {
      for (const stop of [...stops]) stop();
      return Promise.resolve();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}
