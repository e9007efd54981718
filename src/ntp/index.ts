/**
 * chronobound/ntp — Node only: the RFC 5905 packet codec, an SNTP client on
 * `node:dgram`, Marzullo selection, `ntpSource` for `TrueClock`, and
 * `chronySource` / `chronyHostCorrection` (chronyd's cmdmon tracking report).
 *
 * @module chronobound/ntp
 */

// NTP: packet codec, eras, client, selection, source.
export {
  NTP_PACKET_SIZE,
  NtpMode,
  decodeNtpPacket,
  encodeNtpPacket,
  log2SecondsToMs,
  msToLog2Seconds,
  referenceIdToString,
  referenceIdFromString,
} from './packet.js';
export type { NtpPacket } from './packet.js';
export {
  NTP_UNIX_OFFSET_SECONDS,
  NTP_ERA_SECONDS,
  NTP_ERA1_EPOCH_MS,
  ntpToEpochMs,
  epochMsToNtp,
  ntpEraNear,
  ntpEraOf,
  ntpDifferenceMs,
  ntpTimestampEquals,
  isZeroNtpTimestamp,
} from './era.js';
export type { NtpTimestamp } from './era.js';
export { queryNtp } from './client.js';
export type { QueryNtpOptions } from './client.js';
export { validateNtpReply } from './reply-validation.js';
export type { NtpExchange, NtpReplyContext, NtpRejectionReason } from './reply-validation.js';
export { NtpSocket } from './ntp-socket.js';
export type { NtpAuthenticator, NtpQueryOptions, NtpSocketOptions } from './query-options.js';
export { udpTransport } from './transport.js';
export type {
  DatagramTransport,
  DatagramSocket,
  DatagramHandlers,
  DatagramPeer,
  DatagramFamily,
} from './transport.js';
export { selectOffset } from './select.js';
export type { Selection, SelectionCandidate, SelectionInterval, SelectOptions } from './select.js';
export { ntpSource } from './source.js';
export type {
  NtpSource,
  NtpSourceOptions,
  NtpServerSpec,
  NtpServerStatus,
  NtpServerState,
} from './source.js';
export {
  NtpPacketError,
  NtpRejectedError,
  NtpKissOfDeathError,
  NtpTimeoutError,
} from '../errors.js';

// chronyd (cmdmon tracking) source and codec.
export { chronySource, chronyHostCorrection, readChronyTracking } from './chrony.js';
export type {
  ChronySource,
  ChronySourceOptions,
  ChronyHostCorrectionOptions,
  ChronyTrackingOptions,
} from './chrony-options.js';
export {
  CHRONY_LOCAL_REFERENCE_ID,
  decodeChronyFloat,
  encodeChronyFloat,
  encodeChronyTrackingRequest,
  decodeChronyTrackingReply,
} from './chrony-protocol.js';
export type { ChronyTracking } from './chrony-protocol.js';
export { ChronyProtocolError, ChronyTimeoutError } from '../errors.js';

// NTS (RFC 8915): key exchange, AES-SIV, authenticated exchanges.
export * from './nts/index.js';
