/**
 * The NTS-KE messages (RFC 8915 §4): the request this client sends
 * ({@link encodeKeRequest}) and the checks that turn a response's records into
 * cookies and the negotiated NTP server ({@link interpretKeResponse}). No I/O;
 * the TLS session that carries them is in `ke.ts`.
 *
 * @module
 */
import { NTS_MAX_COOKIES, isUsableCookie } from './cookies.js';
import {
  NtsKeCriticalRecordError,
  NtsKeNegotiationError,
  NtsKeNoCookiesError,
  NtsKeProtocolError,
  NtsKeServerError,
} from './errors.js';
import {
  AEAD_AES_SIV_CMAC_256,
  NTS_PROTOCOL_NTPV4,
  NtsKeRecordType,
  encodeKeRecords,
  uint16Body,
  type NtsKeRecord,
} from './ke-records.js';

/** Longest NTPv4 Server Negotiation value (a DNS name). */
const MAX_SERVER_NAME = 255;

/**
 * The request this client sends: NTS Next Protocol Negotiation (NTPv4), AEAD
 * Algorithm Negotiation (AEAD_AES_SIV_CMAC_256) and End of Message, all critical.
 *
 * @returns The request bytes.
 *
 * @example
 * ```ts
 * socket.write(encodeKeRequest());
 * ```
 */
export function encodeKeRequest(): Uint8Array {
  return encodeKeRecords([
    { critical: true, type: NtsKeRecordType.nextProtocol, body: uint16Body(NTS_PROTOCOL_NTPV4) },
    {
      critical: true,
      type: NtsKeRecordType.aeadAlgorithm,
      body: uint16Body(AEAD_AES_SIV_CMAC_256),
    },
    { critical: true, type: NtsKeRecordType.endOfMessage, body: new Uint8Array(0) },
  ]);
}

/**
 * What a valid NTS-KE response says (without the keys, which come from TLS).
 *
 * @example
 * ```ts
 * const { records } = parseKeRecords(
 *   encodeKeRecords([
 *     { critical: true, type: NtsKeRecordType.nextProtocol, body: uint16Body(NTS_PROTOCOL_NTPV4) },
 *     { critical: false, type: NtsKeRecordType.aeadAlgorithm, body: uint16Body(AEAD_AES_SIV_CMAC_256) },
 *     { critical: false, type: NtsKeRecordType.newCookie, body: new Uint8Array(100) },
 *     { critical: false, type: NtsKeRecordType.ntpPort, body: uint16Body(1123) },
 *     { critical: true, type: NtsKeRecordType.endOfMessage, body: new Uint8Array(0) },
 *   ]),
 * );
 * interpretKeResponse(records, 'time.example:4460');
 * //=> { cookies: [Uint8Array(100)], warnings: [], ntpPort: 1123 }
 * ```
 */
export interface NtsKeResponse {
  /** The usable cookies, at most 8, in order. */
  readonly cookies: readonly Uint8Array[];
  /** The NTPv4 Server Negotiation value, when the server sent one. */
  readonly ntpServer?: string;
  /** The NTPv4 Port Negotiation value, when the server sent one. */
  readonly ntpPort?: number;
  /** Warning codes the server sent (none are assigned; they are reported, not fatal). */
  readonly warnings: readonly number[];
}

function readUint16List(record: NtsKeRecord, server: string, what: string): number[] {
  if (record.body.length % 2 !== 0) {
    throw new NtsKeProtocolError(
      server,
      `${what} record has an odd body length ${record.body.length}`,
    );
  }
  const view = new DataView(record.body.buffer, record.body.byteOffset, record.body.byteLength);
  const values: number[] = [];
  for (let i = 0; i < record.body.length; i += 2) values.push(view.getUint16(i));
  return values;
}

function readUint16(record: NtsKeRecord, server: string, what: string): number {
  if (record.body.length !== 2) {
    throw new NtsKeProtocolError(
      server,
      `${what} record has a ${record.body.length}-byte body, expected 2`,
    );
  }
  return ((record.body[0] ?? 0) << 8) | (record.body[1] ?? 0);
}

/**
 * Checks that the server chose the one value offered for `what` (the client
 * offers a single protocol and a single AEAD algorithm).
 * @throws {@link NtsKeNegotiationError} When the `record` is missing, empty (the server
 *   supports none of them) or names anything else.
 */
function checkChosen(
  server: string,
  what: 'protocol' | 'aead',
  chosen: readonly number[] | undefined,
  offered: number,
  record: string,
): void {
  if (chosen === undefined) {
    throw new NtsKeNegotiationError(server, what, `the response has no ${record} record`);
  }
  if (chosen.length === 0) {
    throw new NtsKeNegotiationError(server, what, 'the server supports none of them');
  }
  if (chosen.length !== 1 || chosen[0] !== offered) {
    throw new NtsKeNegotiationError(
      server,
      what,
      `the server chose ${chosen.join(', ')}, which was not offered`,
    );
  }
}

/**
 * Interprets the records of a complete NTS-KE response (RFC 8915 §4.1). Pure.
 *
 * Refused, each with its error: an Error record ({@link NtsKeServerError}), an
 * unknown record with the critical bit ({@link NtsKeCriticalRecordError}), no
 * agreed next protocol or AEAD algorithm, or one that was not offered
 * ({@link NtsKeNegotiationError}), no usable cookie ({@link NtsKeNoCookiesError}),
 * and malformed or duplicated negotiation records, a Next Protocol record without
 * the critical bit, or no End of Message ({@link NtsKeProtocolError}). Unknown
 * non-critical records are ignored; Warning records are reported.
 *
 * @param records - The records up to and including End of Message.
 * @param server - `host:port`, for messages.
 * @returns Cookies, negotiated NTP server and port, warnings.
 * @throws {@link NtsKeyExchangeError} One of the subclasses above.
 *
 * @example
 * ```ts
 * const response = interpretKeResponse(parseKeRecords(bytes).records, 'time.example:4460');
 * ```
 */
export function interpretKeResponse(
  records: readonly NtsKeRecord[],
  server: string,
): NtsKeResponse {
  let protocols: number[] | undefined;
  let algorithms: number[] | undefined;
  let ntpServer: string | undefined;
  let ntpPort: number | undefined;
  let ended = false;
  let unusable = 0;
  const cookies: Uint8Array[] = [];
  const warnings: number[] = [];
  for (const record of records) {
    if (ended) throw new NtsKeProtocolError(server, 'records after End of Message');
    switch (record.type) {
      case NtsKeRecordType.endOfMessage:
        if (record.body.length !== 0) {
          throw new NtsKeProtocolError(server, 'End of Message record has a body');
        }
        ended = true;
        break;
      case NtsKeRecordType.nextProtocol:
        if (protocols !== undefined) {
          throw new NtsKeProtocolError(server, 'more than one Next Protocol Negotiation record');
        }
        if (!record.critical) {
          throw new NtsKeProtocolError(
            server,
            'Next Protocol Negotiation record without the critical bit',
          );
        }
        protocols = readUint16List(record, server, 'Next Protocol Negotiation');
        break;
      case NtsKeRecordType.error:
        throw new NtsKeServerError(server, readUint16(record, server, 'Error'));
      case NtsKeRecordType.warning:
        warnings.push(readUint16(record, server, 'Warning'));
        break;
      case NtsKeRecordType.aeadAlgorithm:
        if (algorithms !== undefined) {
          throw new NtsKeProtocolError(server, 'more than one AEAD Algorithm Negotiation record');
        }
        algorithms = readUint16List(record, server, 'AEAD Algorithm Negotiation');
        break;
      case NtsKeRecordType.newCookie:
        if (!isUsableCookie(record.body)) unusable++;
        else if (cookies.length < NTS_MAX_COOKIES) cookies.push(new Uint8Array(record.body));
        break;
      case NtsKeRecordType.ntpServer: {
        if (ntpServer !== undefined) {
          throw new NtsKeProtocolError(server, 'more than one NTPv4 Server Negotiation record');
        }
        const name = Buffer.from(record.body).toString('latin1');
        if (name.length < 1 || name.length > MAX_SERVER_NAME || !/^[\x21-\x7e]+$/.test(name)) {
          throw new NtsKeProtocolError(
            server,
            `NTPv4 Server Negotiation value is not a printable host name (${record.body.length} bytes)`,
          );
        }
        ntpServer = name;
        break;
      }
      case NtsKeRecordType.ntpPort: {
        if (ntpPort !== undefined) {
          throw new NtsKeProtocolError(server, 'more than one NTPv4 Port Negotiation record');
        }
        const port = readUint16(record, server, 'NTPv4 Port Negotiation');
        if (port === 0) throw new NtsKeProtocolError(server, 'NTPv4 Port Negotiation value is 0');
        ntpPort = port;
        break;
      }
      default:
        if (record.critical) throw new NtsKeCriticalRecordError(server, record.type);
    }
  }
  if (!ended) throw new NtsKeProtocolError(server, 'the response has no End of Message record');
  checkChosen(server, 'protocol', protocols, NTS_PROTOCOL_NTPV4, 'Next Protocol');
  checkChosen(server, 'aead', algorithms, AEAD_AES_SIV_CMAC_256, 'AEAD Algorithm');
  if (cookies.length === 0) throw new NtsKeNoCookiesError(server, unusable);
  return {
    cookies,
    warnings,
    ...(ntpServer === undefined ? {} : { ntpServer }),
    ...(ntpPort === undefined ? {} : { ntpPort }),
  };
}
