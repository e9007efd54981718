/**
 * chronobound/testing — clocks, sources and checkers for testing ordering code.
 *
 * @module chronobound/testing
 */
export { SimulatedClock } from './simulated-clock.js';
export type { SimulatedClockOptions } from './simulated-clock.js';
export { ManualClock } from './manual-clock.js';
export type { ManualClockOptions } from './manual-clock.js';
export { manualSource, truthfulSample } from './manual-source.js';
export type { ManualSource } from './manual-source.js';
export {
  nodeId,
  hlcTimestamp,
  lamportTimestamp,
  vectorClock,
  causalHistory,
  happenedBefore,
} from './arbitraries.js';
export type {
  NodeIdArbitraryOptions,
  HlcTimestampArbitraryOptions,
  LamportTimestampArbitraryOptions,
  VectorClockArbitraryOptions,
  CausalHistoryOptions,
  CausalHistory,
  HistoryEvent,
  HistoryEventKind,
} from './arbitraries.js';
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
export { clockScenario, scenarioClock, applyScenario, applyScenarioAsync } from './scenario.js';
export type {
  ClockScenario,
  ClockScenarioEvent,
  ClockScenarioOptions,
  ApplyScenarioOptions,
} from './scenario.js';
export { checkIntervalsContainTruth, checkLinearizableRegister } from './truth-checkers.js';
export type {
  TruthReading,
  IntervalViolation,
  IntervalCheckOptions,
  RegisterOp,
  RegisterViolation,
  RegisterCheckOptions,
} from './truth-checkers.js';
export { createNtpServer } from './ntp-server.js';
export type {
  LoopbackNtpServer,
  NtpServerOptions,
  NtpServerBehaviour,
  NtpServerFault,
  NtpKissCode,
} from './ntp-server.js';
export { createSimulatedNtpNetwork } from './simulated-network.js';
export type {
  SimulatedNtpNetwork,
  SimulatedNtpNetworkOptions,
  SimulatedNtpServer,
  SimulatedNtpServerOptions,
  SimulatedNtpServerBehaviour,
  SimulatedDatagram,
} from './simulated-network.js';
