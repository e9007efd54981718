/**
 * chronobound/testing — clocks, sources and checkers for testing ordering code.
 *
 * @module
 */
export { SimulatedClock } from './simulated-clock.js';
export type { SimulatedClockOptions } from './simulated-clock.js';
export { ManualClock } from './manual-clock.js';
export type { ManualClockOptions } from './manual-clock.js';
export { manualSource, truthfulSample } from './manual-source.js';
export type { ManualSource } from './manual-source.js';
