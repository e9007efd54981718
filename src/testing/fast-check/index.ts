/**
 * chronobound/testing/fast-check — fast-check arbitraries for logical timestamps,
 * causal histories and clock scenarios. Needs `fast-check` (an optional peer
 * dependency of chronobound) installed; the rest of the toolkit is in
 * `chronobound/testing`.
 *
 * @module chronobound/testing/fast-check
 */
export {
  nodeId,
  hlcTimestamp,
  lamportTimestamp,
  vectorClock,
  causalHistory,
  type NodeIdArbitraryOptions,
  type HlcTimestampArbitraryOptions,
  type LamportTimestampArbitraryOptions,
  type VectorClockArbitraryOptions,
  type CausalHistoryOptions,
} from './arbitraries.js';
export { clockScenario, type ClockScenarioOptions } from './clock-scenario.js';
