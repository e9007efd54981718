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
  type NtpPacket,
} from './packet.js';
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
  type NtpTimestamp,
} from './era.js';
export { queryNtp, type QueryNtpOptions } from './client.js';
export {
  validateNtpReply,
  type NtpExchange,
  type NtpReplyContext,
  type NtpRejectionReason,
} from './reply-validation.js';
export { NtpSocket } from './ntp-socket.js';
export type { NtpAuthenticator, NtpQueryOptions, NtpSocketOptions } from './query-options.js';
export {
  udpTransport,
  type DatagramTransport,
  type DatagramSocket,
  type DatagramHandlers,
  type DatagramPeer,
  type DatagramFamily,
} from './transport.js';
export {
  selectOffset,
  type Selection,
  type SelectionCandidate,
  type SelectionInterval,
  type SelectOptions,
} from './select.js';
export {
  ntpSource,
  type NtpSource,
  type NtpSourceOptions,
  type NtpServerSpec,
  type NtpServerStatus,
  type NtpServerState,
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
  type ChronyTracking,
} from './chrony-protocol.js';
export { ChronyProtocolError, ChronyTimeoutError } from '../errors.js';

// NTS (RFC 8915): key exchange, AES-SIV, authenticated exchanges.
export * from './nts/index.js';
