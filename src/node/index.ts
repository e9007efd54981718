/**
 * chronobound/node — Node only: `filePersistence` for hybrid logical clocks,
 * `timeEndpoint` (the HTTP side of `httpTimeSource`), and `watchProcessPauses`
 * (a pause detector that also checks on `SIGCONT`).
 *
 * @module chronobound/node
 */
export { filePersistence } from './file-persistence.js';
export { timeEndpoint } from './time-endpoint.js';
export type { TimeEndpointOptions, TimeEndpointHandler } from './time-endpoint.js';
export { watchProcessPauses } from './pause-watch.js';
export type { ProcessPauseWatch } from './pause-watch.js';
