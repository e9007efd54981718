/**
 * chronobound/testing/node — a programmable NTP server on the loopback
 * interface, for tests against real UDP (Node only). The browser-safe toolkit,
 * including a simulated NTP network in virtual time, is in `chronobound/testing`.
 *
 * @module chronobound/testing/node
 */
export {
  createNtpServer,
  type LoopbackNtpServer,
  type NtpServerOptions,
  type NtpServerBehaviour,
  type NtpServerFault,
  type NtpKissCode,
} from './ntp-server.js';
