/**
 * chronobound — honest time for distributed systems.
 *
 * This barrel is written by hand: it exports the public core API and nothing else.
 *
 * @module
 */
export {
  ChronoboundError,
  AbortError,
  ClockUnsynchronizedError,
  CommitWaitTimeoutError,
  InvalidArgumentError,
  ClockOffsetError,
  HlcOverflowError,
  HlcParseError,
  NtpPacketError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
  HttpTimeError,
  LeaseInvalidError,
  StaleFencingTokenError,
} from './errors.js';
export type { ChronoboundErrorCode } from './errors.js';
export type {
  MonotonicSource,
  WallSource,
  SyncSample,
  SourceProblem,
  SampleListener,
  ProblemListener,
  TimeSource,
  Scheduler,
} from './sources/types.js';
export { systemMonotonic, systemWall, systemScheduler } from './sources/system.js';
export { calibrateWall } from './sources/calibrate.js';
export type { WallCalibration } from './sources/calibrate.js';
export { systemClockSource } from './sources/system-clock-source.js';
export type { SystemClockSourceOptions } from './sources/system-clock-source.js';
export { TrueClock } from './truetime/true-clock.js';
export type { TrueClockOptions, ReadyOptions, StatusListener } from './truetime/true-clock.js';
export type { WaitOptions, CommitWaitResult } from './truetime/commit-wait.js';
export { intervalContains, toNanosBigInt, fromNanosBigInt } from './truetime/interval.js';
export type { ClockStatus, TimeReading } from './truetime/interval.js';
