/**
 * chronobound — honest time for distributed systems.
 *
 * This barrel is written by hand: it exports the public core API and nothing else.
 *
 * @module chronobound
 */
export {
  ChronoboundError,
  isChronoboundError,
  AbortError,
  ClockUnsynchronizedError,
  CommitWaitTimeoutError,
  WaitTimeoutError,
  InvalidArgumentError,
  ClockOffsetError,
  HlcOverflowError,
  HlcParseError,
  NtpPacketError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
  TimeExchangeError,
  HttpTimeError,
  LeaseInvalidError,
  StaleFencingTokenError,
  HlcPersistenceError,
  NtpKissOfDeathError,
  ChronyProtocolError,
  ChronyTimeoutError,
  type ChronoboundErrorCode,
} from './errors.js';
export type {
  SourceProblem,
  SourceProblemReason,
  SampleListener,
  ProblemListener,
  TimeSource,
  DisposableTimeSource,
  SourceContext,
  AgeableSample,
  AgedSample,
  HostCorrection,
  HostCorrectionSource,
} from './sources/types.js';
export type {
  MonotonicSource,
  WallSource,
  SyncSample,
  Scheduler,
  LeapSecond,
  ClockStatus,
  TimeReading,
} from './clock/types.js';
export { systemMonotonic, systemWall, systemScheduler } from './clock/system.js';
export { calibrateWall, type WallCalibration } from './clock/calibrate.js';
export { systemClockSource, type SystemClockSourceOptions } from './sources/system-clock-source.js';
export {
  TrueClock,
  type TrueClockOptions,
  type ReadyOptions,
  type StatusListener,
  type ClockMetrics,
} from './truetime/true-clock.js';
export type { WaitOptions, CommitWaitResult } from './truetime/sleep.js';
export { intervalContains, toNanosBigInt, fromNanosBigInt } from './truetime/interval.js';

// Logical clocks: Lamport, hybrid logical, vector; node ids; encodings.
export {
  isValidNodeId,
  nodeIdProblem,
  validateNodeId,
  MAX_NODE_ID_LENGTH,
  NODE_ID_SEPARATORS,
} from './logical/node-id.js';
export {
  LamportClock,
  compareLamport,
  formatLamport,
  parseLamport,
  type LamportTimestamp,
  type LamportClockOptions,
} from './logical/lamport.js';
export {
  HybridLogicalClock,
  type HlcTimestamp,
  type HlcUpperBound,
  type HlcPersistence,
} from './logical/hlc.js';
export { HLC_MAX_COUNTER, HLC_MAX_WALL_MS } from './logical/hlc-range.js';
export type {
  HlcOffsetMode,
  HlcOffsetPolicy,
  HlcOverflowMode,
  HlcOverflowPolicy,
  HybridLogicalClockOptions,
  HlcWaitOptions,
} from './logical/hlc-options.js';
export {
  compareHlc,
  hlcToBigInt,
  hlcFromBigInt,
  formatHlc,
  parseHlc,
  hlcToBytes,
  hlcFromBytes,
} from './logical/hlc-codec.js';
export { VectorClock, type VectorOrder } from './logical/vector.js';
export {
  sqlHlc,
  decodeHlc,
  receiveStamped,
  stampWrite,
  type EncodedHlc,
  type SqlHlc,
  type Stamped,
  type StampWriteOptions,
  type ReceivedStamp,
} from './logical/stamp.js';
export {
  estimateExchange,
  type ExchangeTimestamps,
  type ExchangeBoundOptions,
  type ExchangeEstimate,
} from './sources/exchange.js';
export { ClockFilter, type FilterSample, type ClockFilterOptions } from './sources/clock-filter.js';

// Safety tools: leases, fencing tokens, skew monitor, pause detector, φ accrual.
export {
  Lease,
  type LeaseClock,
  type LeaseOptions,
  type AcquireLeaseOptions,
} from './safety/lease.js';
export {
  FencingTokenIssuer,
  FencingGuard,
  type FencingTokenStore,
  type FencingTokenIssuerOptions,
} from './safety/fencing.js';
export {
  SkewMonitor,
  skewFromExchange,
  type RpcTimestamps,
  type SkewSample,
  type PeerSkew,
  type SkewMonitorOptions,
} from './safety/skew-monitor.js';
export {
  PauseDetector,
  type PauseEvent,
  type PauseDetectorOptions,
  type Invalidatable,
  type Disruptable,
} from './safety/pause-detector.js';
export { PhiAccrualDetector, type PhiAccrualOptions } from './safety/phi-accrual.js';
export {
  httpTimeSource,
  type HttpTimeSourceOptions,
  type FetchLike,
  type FetchResponseLike,
  type HttpTimeRequestInit,
} from './sources/http.js';
export { messageTimeSource, type MessageTimeSourceOptions } from './sources/message.js';
export type { TimeExchangeOptions } from './sources/exchange-source.js';
export type { TimeRequest, TimeReply, TimeRefusal } from './protocol/messages.js';

// Serving time: the server side of httpTimeSource and messageTimeSource.
export { answerTimeRequest, type TimeServerClock } from './server/answer.js';
export { createTimeHandler, type TimeHandler } from './server/time-handler.js';
export type { TimeHandlerOptions } from './server/http-answer.js';
