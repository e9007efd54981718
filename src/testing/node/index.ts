/**
 * chronobound/testing/node — a programmable NTP server on the loopback
 * interface, for tests against real UDP (Node only). The browser-safe toolkit,
 * including a simulated NTP network in virtual time, is in `chronobound/testing`.
 *
 * @module chronobound/testing/node
 */
export { createNtpServer } from './ntp-server.js';
export type {
  LoopbackNtpServer,
  NtpServerOptions,
  NtpServerBehaviour,
  NtpServerFault,
  NtpKissCode,
} from './ntp-server.js';
