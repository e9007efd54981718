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
} from './errors.js';
export type { ChronoboundErrorCode } from './errors.js';
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
} from './clock/types.js';
export { systemMonotonic, systemWall, systemScheduler } from './clock/system.js';
export { calibrateWall } from './clock/calibrate.js';
export type { WallCalibration } from './clock/calibrate.js';
export { systemClockSource } from './sources/system-clock-source.js';
export type { SystemClockSourceOptions } from './sources/system-clock-source.js';
export { TrueClock } from './truetime/true-clock.js';
export type {
  TrueClockOptions,
  ReadyOptions,
  StatusListener,
  ClockMetrics,
} from './truetime/true-clock.js';
export type { WaitOptions, CommitWaitResult } from './truetime/sleep.js';
export { intervalContains, toNanosBigInt, fromNanosBigInt } from './truetime/interval.js';
export type { ClockStatus, TimeReading } from './clock/types.js';

// Logical clocks: Lamport, hybrid logical, vector; node ids; encodings.
export {
  isValidNodeId,
  nodeIdProblem,
  validateNodeId,
  MAX_NODE_ID_LENGTH,
  NODE_ID_SEPARATORS,
} from './logical/node-id.js';
export { LamportClock, compareLamport, formatLamport, parseLamport } from './logical/lamport.js';
export type { LamportTimestamp, LamportClockOptions } from './logical/lamport.js';
export { HybridLogicalClock } from './logical/hlc.js';
export { HLC_MAX_COUNTER, HLC_MAX_WALL_MS } from './logical/hlc-range.js';
export type { HlcTimestamp, HlcUpperBound, HlcPersistence } from './logical/hlc.js';
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
export { VectorClock } from './logical/vector.js';
export type { VectorOrder } from './logical/vector.js';
export { sqlHlc, decodeHlc, receiveStamped, stampWrite } from './logical/stamp.js';
export type {
  EncodedHlc,
  SqlHlc,
  Stamped,
  StampWriteOptions,
  ReceivedStamp,
} from './logical/stamp.js';
export { estimateExchange } from './sources/exchange.js';
export type {
  ExchangeTimestamps,
  ExchangeBoundOptions,
  ExchangeEstimate,
} from './sources/exchange.js';
export { ClockFilter } from './sources/clock-filter.js';
export type { FilterSample, ClockFilterOptions } from './sources/clock-filter.js';

// Safety tools: leases, fencing tokens, skew monitor, pause detector, φ accrual.
export { Lease } from './safety/lease.js';
export type { LeaseClock, LeaseOptions, AcquireLeaseOptions } from './safety/lease.js';
export { FencingTokenIssuer, FencingGuard } from './safety/fencing.js';
export type { FencingTokenStore, FencingTokenIssuerOptions } from './safety/fencing.js';
export { SkewMonitor, skewFromExchange } from './safety/skew-monitor.js';
export type {
  RpcTimestamps,
  SkewSample,
  PeerSkew,
  SkewMonitorOptions,
} from './safety/skew-monitor.js';
export { PauseDetector } from './safety/pause-detector.js';
export type {
  PauseEvent,
  PauseDetectorOptions,
  Invalidatable,
  Disruptable,
} from './safety/pause-detector.js';
export { PhiAccrualDetector } from './safety/phi-accrual.js';
export type { PhiAccrualOptions } from './safety/phi-accrual.js';
export { httpTimeSource } from './sources/http.js';
export type {
  HttpTimeSourceOptions,
  FetchLike,
  FetchResponseLike,
  HttpTimeRequestInit,
} from './sources/http.js';
export { messageTimeSource } from './sources/message.js';
export type { MessageTimeSourceOptions } from './sources/message.js';
export type { TimeExchangeOptions } from './sources/exchange-source.js';
export type { TimeRequest, TimeReply, TimeRefusal } from './protocol/messages.js';

// Serving time: the server side of httpTimeSource and messageTimeSource.
export { answerTimeRequest } from './server/answer.js';
export type { TimeServerClock } from './server/answer.js';
export { createTimeHandler } from './server/time-handler.js';
export type { TimeHandler } from './server/time-handler.js';
export type { TimeHandlerOptions } from './server/http-answer.js';
