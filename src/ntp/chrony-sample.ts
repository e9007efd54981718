/**
 * From chronyd's tracking report to a sync sample: the estimate, ClockBound's
 * bound aged by the drift bound, the evidence time and the leap second, or the
 * problem that says why a report gives no sample; and the wall-clock calibration
 * each report is mapped with.
 *
 * @module
 */
import { ChronyProtocolError, SourceUnavailableError } from '../errors.js';
import { calibrateWall, type WallCalibration } from '../clock/calibrate.js';
import { agedBound } from '../sources/exchange.js';
import type { SourceProblem } from '../sources/types.js';
import type { LeapSecond, MonotonicSource, SyncSample, WallSource } from '../clock/types.js';
import {
  CHRONY_FLOAT_RELATIVE_ERROR,
  CHRONY_LOCAL_REFERENCE_ID,
  type ChronyTracking,
} from './chrony-protocol.js';

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
 * - `evidenceFrom` is chronyd's last measurement (refTime) mapped onto the
 *   monotonic timescale: `sentAt − (estimated true time at sentAt − refTime)`,
 *   never later than `sentAt`. The report is only as fresh as that
 *   measurement: after a suspend the kernel restores the wall clock from the
 *   RTC and chronyd keeps serving its pre-suspend report until it measures
 *   again, so "system time + correction" says nothing about the new timescale
 *   until then. Such a report maps to before the suspend (the wall clock
 *   jumped, CLOCK_MONOTONIC stood still), so it cannot end the disruption; the
 *   first report based on a measurement made after it can. refTime is on
 *   chronyd's corrected ("cooked": system + outstanding correction) timescale,
 *   the one the estimate is on, and chrony reports it up to 1 s early: the
 *   evidence is dated early, the safe way.
 * - `leapSecond`: leap status 1 announces an inserted second, 2 a deleted one
 *   (chronyd only reports one on the last day of June or December); status 3
 *   gives no sample.
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
  // chronyd's bound (with the mapping error) holds at its last measurement, refTime; aged
  // by the drift bound to the reply's arrival. Both ends are on chronyd's corrected
  // timescale (agedBound needs only the time between them), and a refTime in the future,
  // which is inconsistent, counts by its distance: |·| keeps the bound safe.
  const errorMs = agedBound(
    { monotonicAt: tracking.refTime, errorMs: chronyBound + rounding + calibration.errorMs },
    input.receivedAt + offsetMs,
    input.maxDrift,
  );
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
  const evidenceFrom = Math.min(
    input.sentAt,
    input.sentAt - (input.sentAt + offsetMs - tracking.refTime),
  );
  const leapSecond = LEAP_SECONDS[tracking.leapStatus];
  return {
    sample: {
      monotonicAt: input.sentAt,
      offsetMs,
      errorMs,
      source,
      evidenceFrom,
      ...(leapSecond === undefined ? {} : { leapSecond }),
    },
  };
}

/** The leap second a tracking report's leap status announces (3 gives no sample). */
const LEAP_SECONDS: Readonly<Partial<Record<number, LeapSecond>>> = { 1: 'insert', 2: 'delete' };

/** Below this (ms) a calibration is as good as the clocks allow; no retry. */
const GOOD_CALIBRATION_MS = 0.01;

/**
 * Calibrates up to three times and keeps the tightest: a single edge bracket
 * is occasionally stretched by preemption or a cold JIT.
 * @internal
 */
export function calibrateBest(wall: WallSource, monotonic: MonotonicSource): WallCalibration {
  let best = calibrateWall(wall, monotonic);
  for (let i = 0; i < 2 && best.errorMs > GOOD_CALIBRATION_MS; i++) {
    const next = calibrateWall(wall, monotonic);
    if (next.errorMs < best.errorMs) best = next;
  }
  return best;
}
