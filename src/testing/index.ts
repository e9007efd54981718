/**
 * chronobound/testing — clocks, sources and checkers for testing ordering code.
 * Browser-safe: no `node:` imports and no fast-check. The fast-check arbitraries
 * are in `chronobound/testing/fast-check`, the loopback NTP server in
 * `chronobound/testing/node`.
 *
 * @module chronobound/testing
 */
export { SimulatedClock } from './simulated-clock.js';
export type { SimulatedClockOptions } from './simulated-clock.js';
export { ManualClock } from './manual-clock.js';
export type { ManualClockOptions } from './manual-clock.js';
export { manualSource, truthfulSample } from './manual-source.js';
export type { ManualSource } from './manual-source.js';
export { happenedBefore } from './history.js';
export type { CausalHistory, HistoryEvent, HistoryEventKind } from './history.js';
export {
  replayHistory,
  checkCausalOrder,
  checkStrongClockConsistency,
  checkMonotonic,
} from './checkers.js';
export type {
  CheckResult,
  CheckOptions,
  ReplayHandlers,
  CausalViolation,
  CausalRelation,
  RelationViolation,
  MonotonicViolation,
  MonotonicOptions,
} from './checkers.js';
export { ClusterSimulator } from './cluster.js';
export type { ClusterOptions, TraceEntry } from './cluster.js';
export { ClusterNode } from './cluster-node.js';
export type { ClusterNodeOptions } from './cluster-node.js';
export type { NetworkOptions, Partition, Message, MessageHandler } from './cluster-network.js';
export { scenarioClock, applyScenario, applyScenarioAsync } from './scenario.js';
export type { ClockScenario, ClockScenarioEvent, ApplyScenarioOptions } from './scenario.js';
export { checkIntervalsContainTruth, checkLinearizableRegister } from './truth-checkers.js';
export type {
  TruthReading,
  IntervalViolation,
  IntervalCheckOptions,
  RegisterOp,
  RegisterViolation,
  RegisterCheckOptions,
} from './truth-checkers.js';
export type { NtpServerBehaviour, NtpServerFault, NtpKissCode } from './ntp-reply.js';
export { createSimulatedNtpNetwork } from './simulated-network.js';
export type {
  SimulatedNtpNetwork,
  SimulatedNtpNetworkOptions,
  SimulatedNtpServer,
  SimulatedNtpServerOptions,
  SimulatedNtpServerBehaviour,
  SimulatedDatagram,
} from './simulated-network.js';
