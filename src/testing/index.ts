/**
 * chronobound/testing — clocks, sources and checkers for testing ordering code.
 * Browser-safe: no `node:` imports and no fast-check. The fast-check arbitraries
 * are in `chronobound/testing/fast-check`, the loopback NTP server in
 * `chronobound/testing/node`.
 *
 * @module chronobound/testing
 */
export { SimulatedClock, type SimulatedClockOptions } from './simulated-clock.js';
export { ManualClock, type ManualClockOptions } from './manual-clock.js';
export { manualSource, truthfulSample, type ManualSource } from './manual-source.js';
export {
  happenedBefore,
  type CausalHistory,
  type HistoryEvent,
  type HistoryEventKind,
} from './history.js';
export {
  replayHistory,
  checkCausalOrder,
  checkStrongClockConsistency,
  checkMonotonic,
  type CheckResult,
  type CheckOptions,
  type ReplayHandlers,
  type CausalViolation,
  type CausalRelation,
  type RelationViolation,
  type MonotonicViolation,
  type MonotonicOptions,
} from './checkers.js';
export { ClusterSimulator, type ClusterOptions, type TraceEntry } from './cluster.js';
export { ClusterNode, type ClusterNodeOptions } from './cluster-node.js';
export type { NetworkOptions, Partition, Message, MessageHandler } from './cluster-network.js';
export {
  scenarioClock,
  applyScenario,
  applyScenarioAsync,
  type ClockScenario,
  type ClockScenarioEvent,
  type ApplyScenarioOptions,
} from './scenario.js';
export {
  checkIntervalsContainTruth,
  checkLinearizableRegister,
  type TruthReading,
  type IntervalViolation,
  type IntervalCheckOptions,
  type RegisterOp,
  type RegisterViolation,
  type RegisterCheckOptions,
} from './truth-checkers.js';
export type { NtpServerBehaviour, NtpServerFault, NtpKissCode } from './ntp-reply.js';
export {
  createSimulatedNtpNetwork,
  type SimulatedNtpNetwork,
  type SimulatedNtpNetworkOptions,
  type SimulatedNtpServer,
  type SimulatedNtpServerOptions,
  type SimulatedNtpServerBehaviour,
  type SimulatedDatagram,
} from './simulated-network.js';
