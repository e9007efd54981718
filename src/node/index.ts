/**
 * chronobound/node — Node only: `filePersistence` for hybrid logical clocks,
 * `timeEndpoint` (the HTTP side of `httpTimeSource`), `watchProcessPauses`
 * (a pause detector that also checks on `SIGCONT`), the ClockBound version 2
 * segment (`clockboundSource` reads it, `publishClockbound` writes a clock into
 * it) and Prometheus metrics (`formatPrometheusMetrics`, `metricsEndpoint`).
 *
 * @module chronobound/node
 */
export { filePersistence } from './file-persistence.js';
export { timeEndpoint } from './time-endpoint.js';
export type { TimeEndpointOptions, TimeEndpointHandler } from './time-endpoint.js';
export { watchProcessPauses } from './pause-watch.js';
export type { ProcessPauseWatch } from './pause-watch.js';
export {
  CLOCKBOUND_DEFAULT_PATH,
  CLOCKBOUND_SEGMENT_SIZE,
  CLOCKBOUND_VERSION,
} from './clockbound-segment.js';
export type { ClockboundData, ClockboundSnapshot, ClockboundStatus } from './clockbound-segment.js';
export { readClockboundSegment } from './clockbound-reader.js';
export { ClockboundSegmentWriter } from './clockbound-writer.js';
export type { ClockboundWriterOptions } from './clockbound-writer.js';
export { clockboundSource } from './clockbound-source.js';
export type { ClockboundSource, ClockboundSourceOptions } from './clockbound-source.js';
export { publishClockbound } from './clockbound-publisher.js';
export type { ClockboundPublisher, ClockboundPublisherOptions } from './clockbound-publisher.js';
export { formatPrometheusMetrics, metricsEndpoint, PROMETHEUS_CONTENT_TYPE } from './metrics.js';
export type {
  ClockboundMetricsSource,
  MetricsEndpointOptions,
  PrometheusMetricsOptions,
} from './metrics.js';
