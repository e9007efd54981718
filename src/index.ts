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
