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
export {
  timeEndpoint,
  type TimeEndpointOptions,
  type TimeEndpointHandler,
} from './time-endpoint.js';
export { watchProcessPauses, type ProcessPauseWatch } from './pause-watch.js';
export {
  CLOCKBOUND_DEFAULT_PATH,
  CLOCKBOUND_SEGMENT_SIZE,
  CLOCKBOUND_VERSION,
  type ClockboundData,
  type ClockboundSnapshot,
  type ClockboundStatus,
} from './clockbound-segment.js';
export { readClockboundSegment } from './clockbound-reader.js';
export { ClockboundSegmentWriter, type ClockboundWriterOptions } from './clockbound-writer.js';
export {
  clockboundSource,
  type ClockboundSource,
  type ClockboundSourceOptions,
} from './clockbound-source.js';
export {
  publishClockbound,
  type ClockboundPublisher,
  type ClockboundPublisherOptions,
} from './clockbound-publisher.js';
export {
  formatPrometheusMetrics,
  metricsEndpoint,
  PROMETHEUS_CONTENT_TYPE,
  type ClockboundMetricsSource,
  type MetricsEndpointOptions,
  type PrometheusMetricsOptions,
} from './metrics.js';
