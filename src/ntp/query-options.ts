/**
 * Options of one NTP exchange on an {@link NtpSocket} ({@link NtpQueryOptions}),
 * of the socket itself ({@link NtpSocketOptions}), and the per-exchange
 * authentication hook ({@link NtpAuthenticator}) NTS plugs in.
 *
 * @module
 */
import type { NtpRejectedError } from '../errors.js';
import type { MonotonicSource, Scheduler, WallSource } from '../clock/types.js';
import type { DatagramTransport } from './transport.js';

/**
 * Options of one exchange ({@link queryNtp}, {@link NtpSocket.query}).
 *
 * @example
 * ```ts
 * await new NtpSocket().query({ host: '127.0.0.1', port: 11123, timeoutMs: 500 });
 * //=> { server: '127.0.0.1:11123', offsetMs: …, delayMs: …, errorMs: …, stratum: …, … }
 * // or, when nothing answers, rejects with NtpTimeoutError after 500 ms
 * ```
 */
export interface NtpQueryOptions {
  /** Server host name or IP address. */
  readonly host: string;
  /**
   * UDP port.
   *
   * @defaultValue `123`
   */
  readonly port?: number;
  /**
   * Give up after this many ms.
   *
   * @defaultValue `1000`
   */
  readonly timeoutMs?: number;
  /**
   * Clock for T1/T4. Samples are on its timescale.
   *
   * @defaultValue `performance.now()` (`systemMonotonic`)
   */
  readonly monotonic?: MonotonicSource;
  /**
   * Wall clock for the era pivot and `systemOffsetMs`.
   *
   * @defaultValue `Date.now()` (`systemWall`)
   */
  readonly wall?: WallSource;
  /** Cancels the exchange with `AbortError`. */
  readonly signal?: AbortSignal;
  /**
   * Timer for the timeout.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
  /**
   * NTP version to send.
   *
   * @defaultValue `4`
   */
  readonly version?: 3 | 4;
  /**
   * Poll exponent to advertise (log₂ s).
   *
   * @defaultValue `6`
   */
  readonly poll?: number;
  /**
   * Local drift bound charged over the exchange (ppm).
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * Refuse replies whose bound exceeds this (ms).
   *
   * @defaultValue `1000`
   */
  readonly maxRootDistanceMs?: number;
  /** Called for every refused datagram while the exchange waits. */
  readonly onRejected?: (error: NtpRejectedError) => void;
  /**
   * Authenticates this exchange (e.g. NTS, RFC 8915): `build` turns the 48-byte
   * client header into the datagram to send, and `verify` checks a reply that
   * carries our nonce and returns its verified 48-byte header, or throws an
   * `NtpRejectedError` (an `NtsRejectedError` says which check failed). The
   * header is then checked by `validateNtpReply` as usual. Requires version 4.
   */
  readonly authenticate?: NtpAuthenticator;
}

/**
 * A per-exchange authentication hook for {@link NtpSocket.query}; `ntpSource`
 * builds one from an `NtsSession` for every exchange with an NTS server.
 *
 * @example
 * ```ts
 * // One NTS-protected exchange over an NtpSocket, as ntpSource makes for an NTS server:
 * const ke = await ntsKeyExchange({ host: 'time.example' });
 * const session = new NtsSession(ke);
 * const sent = new Map<Uint8Array, NtsRequest>();
 * const exchange = await new NtpSocket().query({
 *   host: ke.ntpHost,
 *   port: ke.ntpPort,
 *   authenticate: {
 *     build: (header) => {
 *       const request = session.buildRequest(header);
 *       sent.set(request.bytes, request);
 *       return request.bytes;
 *     },
 *     verify: (reply, bytes) => (session.verifyReply(reply, sent.get(bytes)!), reply.subarray(0, 48)),
 *     abandon: () => sent.forEach((request) => session.abandon(request)),
 *   },
 * });
 * exchange.offsetMs; // from a reply authenticated under the session's keys
 * ```
 */
export interface NtpAuthenticator {
  /**
   * Wraps the client header into the datagram to send.
   * @throws When the request cannot be built (e.g. no cookie left); the exchange then fails with it.
   */
  build(header48: Uint8Array): Uint8Array;
  /**
   * Verifies a reply to `request` (the bytes `build` returned).
   * @returns The verified 48-byte NTP header.
   * @throws {@link NtpRejectedError} When the reply is not authentic; with reason
   *   `'nts-nak'` the exchange ends at once (the server cannot serve this request).
   */
  verify(reply: Uint8Array, request: Uint8Array): Uint8Array;
  /** Called when the exchange ends without an accepted reply (timeout, abort, NAK). */
  abandon?(): void;
}

/**
 * Options of {@link NtpSocket}.
 *
 * @example
 * ```ts
 * const socket = new NtpSocket({ onRejected: (e) => console.warn(e.reason) });
 * ```
 */
export interface NtpSocketOptions {
  /** Called for every refused datagram, including ones that arrive between exchanges. */
  readonly onRejected?: (error: NtpRejectedError) => void;
  /**
   * How datagrams travel and host names resolve (`udpTransport`: `node:dgram` and `node:dns`). A
   * simulated network runs exchanges in virtual time.
   *
   * @defaultValue {@link udpTransport}
   */
  readonly transport?: DatagramTransport;
}
