/**
 * @module
 */
export { filePersistence } from './file-persistence.js';
export { timeEndpoint } from './time-endpoint.js';
export type { TimeEndpointOptions, TimeEndpointHandler } from './time-endpoint.js';
export { watchProcessPauses } from './pause-watch.js';
export type { ProcessPauseWatch } from './pause-watch.js';
