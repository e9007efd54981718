/**
 * An SNTP client (RFC 5905 client mode, RFC 4330) on `node:dgram`: one exchange
 * at a time per request, T1/T4 stamped with the monotonic clock, a random
 * transmit timestamp as nonce, and a validation step that says why a reply was
 * refused. A reply that fails validation is reported and ignored; the exchange
 * keeps waiting for a valid one until its timeout, so a spoofed packet cannot end it.
 *
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { isIP } from 'node:net';
import {
  AbortError,
  InvalidArgumentError,
  NtpKissOfDeathError,
  NtpPacketError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
} from '../errors.js';
import { estimateExchange } from '../sources/exchange.js';
import { systemMonotonic, systemScheduler, systemWall } from '../clock/system.js';
import type { MonotonicSource, Scheduler, SyncSample, WallSource } from '../clock/types.js';
import {
  isZeroNtpTimestamp,
  ntpDifferenceMs,
  ntpTimestampEquals,
  ntpToEpochMs,
  type NtpTimestamp,
} from './era.js';
import {
  NTP_PACKET_SIZE,
  NtpMode,
  decodeNtpPacket,
  encodeNtpPacket,
  log2SecondsToMs,
  msToLog2Seconds,
  referenceIdToString,
  type NtpPacket,
} from './packet.js';
import {
  udpTransport,
  type DatagramFamily,
  type DatagramPeer,
  type DatagramSocket,
  type DatagramTransport,
} from './transport.js';

/**
 * Every reason a reply can be refused, as `NtpRejectedError.reason`.
 *
 * @example
 * ```ts
 * const r: NtpRejectionReason = 'origin-mismatch';
 * ```
 */
export type NtpRejectionReason =
  | 'truncated'
  | 'malformed'
  | 'unexpected-address'
  | 'origin-mismatch'
  | 'stale-transmit'
  | 'duplicate'
  | 'wrong-mode'
  | 'unsupported-version'
  | 'kiss-of-death'
  | 'unsynchronized'
  | 'stratum-too-high'
  | 'zero-transmit'
  | 'absurd-delay'
  | 'reference-after-transmit'
  | 'negative-delay'
  | 'root-distance';

/**
 * One accepted exchange with a server. It is a {@link SyncSample} (`source` is
 * the server), so it can feed a `TrueClock` directly, and a `FilterSample`.
 *
 * @example
 * ```ts
 * const x: NtpExchange = await queryNtp({ host: '127.0.0.1', port: 11123 });
 * console.log(x.offsetMs, x.delayMs, x.errorMs, x.stratum);
 * ```
 */
export interface NtpExchange extends SyncSample {
  /** `host:port` of the server. */
  readonly server: string;
  /** Round-trip network delay δ (ms). */
  readonly delayMs: number;
  /** Request sent (local monotonic ms). */
  readonly t1: number;
  /** Request received by the server (epoch ms). */
  readonly t2: number;
  /** Reply sent by the server (epoch ms). */
  readonly t3: number;
  /** Reply received (local monotonic ms); equals `monotonicAt`. */
  readonly t4: number;
  /** The server's stratum (1 primary … 15). */
  readonly stratum: number;
  /** The server's leap indicator (0–2). */
  readonly leap: number;
  /** The reply's NTP version (3 or 4). */
  readonly version: number;
  /** The server's precision (ms). */
  readonly precisionMs: number;
  /** The server's root delay (ms). */
  readonly rootDelayMs: number;
  /** The server's root dispersion (ms). */
  readonly rootDispersionMs: number;
  /** The server's reference ID, rendered (`'GPS'`, `'192.0.2.1'`, …). */
  readonly referenceId: string;
  /**
   * Server time minus the local wall clock (`Date.now()`) at T4, for display only:
   * `Date.now()` has 1 ms steps and may itself step.
   */
  readonly systemOffsetMs?: number;
  /** The decoded reply. */
  readonly reply: NtpPacket;
}

/**
 * What a reply is validated against: the exchange it claims to answer.
 *
 * @example
 * ```ts
 * const ctx: NtpReplyContext = { server: '127.0.0.1:123', nonce, t1, t4: mono.now() };
 * ```
 */
export interface NtpReplyContext {
  /** `host:port`, for messages and `NtpExchange.server`. */
  readonly server: string;
  /** The transmit timestamp we sent; the reply's origin must equal it exactly. */
  readonly nonce: NtpTimestamp;
  /** Request sent (local monotonic ms). */
  readonly t1: number;
  /** Reply received (local monotonic ms). */
  readonly t4: number;
  /** Local wall clock at T4 (epoch ms): era pivot and `systemOffsetMs`. Default `Date.now()`. */
  readonly wallMs?: number;
  /** Resolution of the local monotonic clock (ms); default 0. */
  readonly localPrecisionMs?: number;
  /** Bound on the local clock's rate error over the exchange (ppm); default 200. */
  readonly maxDriftPpm?: number;
  /** Refuse replies whose bound λ exceeds this (ms); default 1000 (RFC 5905 MAXDIST). */
  readonly maxRootDistanceMs?: number;
  /** Transmit timestamp of the last reply accepted from this server (duplicate test). */
  readonly previousTransmit?: NtpTimestamp;
}

/**
 * Validates a reply to one of our requests and computes θ, δ and λ (see
 * `estimateExchange`). Pure: no I/O, no clock reads.
 *
 * Checks, in order, each with its own reason: length (`truncated`), origin equals
 * our nonce (`origin-mismatch`), mode 4 (`wrong-mode`), version 3 or 4
 * (`unsupported-version`), stratum 0 (`kiss-of-death`, with the kiss code), leap
 * indicator 3 (`unsynchronized`), stratum ≥ 16 (`stratum-too-high`), transmit
 * timestamp 0 (`zero-transmit`), transmit equal to the previous reply's
 * (`duplicate`), transmit before receive (`absurd-delay`), a nonzero reference
 * timestamp more than the server's precision after transmit
 * (`reference-after-transmit`; RFC 5905 A.5.1.1), negative round-trip delay
 * (`negative-delay`), λ above the limit (`root-distance`).
 *
 * @param bytes - The datagram.
 * @param context - The exchange it should answer.
 * @returns The accepted exchange.
 * @throws {NtpRejectedError} With the reason; {@link NtpKissOfDeathError} for a kiss code.
 *
 * @example
 * ```ts
 * try {
 *   const x = validateNtpReply(msg, { server, nonce, t1, t4 });
 * } catch (e) {
 *   if (e instanceof NtpRejectedError) console.warn(e.reason);
 * }
 * ```
 */
export function validateNtpReply(bytes: Uint8Array, context: NtpReplyContext): NtpExchange {
  const { server } = context;
  let reply: NtpPacket;
  try {
    reply = decodeNtpPacket(bytes);
  } catch (error) {
    const field = error instanceof NtpPacketError ? error.field : 'packet';
    throw new NtpRejectedError(
      server,
      field === 'length' ? 'truncated' : 'malformed',
      error instanceof Error ? error.message : String(error),
    );
  }
  if (!ntpTimestampEquals(reply.originTimestamp, context.nonce)) {
    throw new NtpRejectedError(
      server,
      'origin-mismatch',
      'origin timestamp is not the nonce we sent',
    );
  }
  if (reply.mode !== NtpMode.server) {
    throw new NtpRejectedError(server, 'wrong-mode', `mode ${reply.mode}, expected 4 (server)`);
  }
  if (reply.version !== 3 && reply.version !== 4) {
    throw new NtpRejectedError(
      server,
      'unsupported-version',
      `version ${reply.version}, expected 3 or 4`,
    );
  }
  if (reply.stratum === 0) {
    throw new NtpKissOfDeathError(server, referenceIdToString(reply.referenceId, 0));
  }
  if (reply.leap === 3) {
    throw new NtpRejectedError(
      server,
      'unsynchronized',
      'leap indicator 3: the server clock is not synchronized',
    );
  }
  if (reply.stratum >= 16) {
    throw new NtpRejectedError(
      server,
      'stratum-too-high',
      `stratum ${reply.stratum} (16 means unsynchronized)`,
    );
  }
  if (isZeroNtpTimestamp(reply.transmitTimestamp)) {
    throw new NtpRejectedError(server, 'zero-transmit', 'transmit timestamp is zero');
  }
  if (
    context.previousTransmit !== undefined &&
    ntpTimestampEquals(reply.transmitTimestamp, context.previousTransmit)
  ) {
    throw new NtpRejectedError(
      server,
      'duplicate',
      'same transmit timestamp as the previous reply',
    );
  }
  const wallMs = context.wallMs ?? Date.now();
  const serverPrecisionMs = log2SecondsToMs(reply.precision);
  const localPrecisionMs = context.localPrecisionMs ?? 0;
  const holdMs = ntpDifferenceMs(reply.transmitTimestamp, reply.receiveTimestamp);
  if (holdMs < -2 * serverPrecisionMs) {
    throw new NtpRejectedError(
      server,
      'absurd-delay',
      `the server claims to have sent its reply ${(-holdMs).toFixed(3)} ms before receiving the request`,
    );
  }
  // A server cannot have set its clock after it sent the reply (RFC 5905 A.5.1.1; ntpd
  // and NTPsec call such a packet bogus). Checked after `absurd-delay`, the more
  // specific diagnosis when the transmit stamp itself is early. A zero reference
  // means "never set". Era-aware difference, so a reference just before the 2036
  // rollover and a transmit just after compare correctly; the precision absorbs
  // equal stamps rounded differently.
  if (!isZeroNtpTimestamp(reply.referenceTimestamp)) {
    const referenceAheadMs = ntpDifferenceMs(reply.referenceTimestamp, reply.transmitTimestamp);
    if (referenceAheadMs > serverPrecisionMs) {
      const shown =
        referenceAheadMs >= 0.001 ? referenceAheadMs.toFixed(3) : referenceAheadMs.toExponential(2);
      throw new NtpRejectedError(
        server,
        'reference-after-transmit',
        `reference timestamp is ${shown} ms after the transmit timestamp ` +
          `(more than the server's precision, ${serverPrecisionMs.toExponential(2)} ms)`,
      );
    }
  }
  // The era pivot: our best idea of the time. Only needs to be right within 68 years.
  const t2 = ntpToEpochMs(reply.receiveTimestamp, wallMs);
  const t3 = t2 + holdMs;
  const estimate = estimateExchange(
    { t1: context.t1, t2, t3, t4: context.t4 },
    {
      rootDelayMs: reply.rootDelayMs,
      rootDispersionMs: reply.rootDispersionMs,
      serverPrecisionMs,
      localPrecisionMs,
      maxDriftPpm: context.maxDriftPpm ?? 200,
    },
  );
  if (!estimate.consistent) {
    throw new NtpRejectedError(
      server,
      'negative-delay',
      `round-trip delay ${estimate.delayMs.toFixed(3)} ms: the server claims to have held the request ` +
        'longer than the whole exchange took',
    );
  }
  const maxRootDistanceMs = context.maxRootDistanceMs ?? 1000;
  if (!(estimate.errorMs <= maxRootDistanceMs)) {
    throw new NtpRejectedError(
      server,
      'root-distance',
      `error bound ${estimate.errorMs.toFixed(3)} ms exceeds maxRootDistanceMs ${maxRootDistanceMs}`,
    );
  }
  return {
    source: server,
    server,
    monotonicAt: estimate.monotonicAt,
    offsetMs: estimate.offsetMs,
    errorMs: estimate.errorMs,
    evidenceFrom: context.t1,
    delayMs: estimate.delayMs,
    t1: context.t1,
    t2,
    t3,
    t4: context.t4,
    stratum: reply.stratum,
    leap: reply.leap,
    version: reply.version,
    precisionMs: serverPrecisionMs,
    rootDelayMs: reply.rootDelayMs,
    rootDispersionMs: reply.rootDispersionMs,
    referenceId: referenceIdToString(reply.referenceId, reply.stratum),
    systemOffsetMs: context.t4 + estimate.offsetMs - wallMs,
    reply,
  };
}

/**
 * Options of one exchange ({@link queryNtp}, {@link NtpSocket.query}).
 *
 * @example
 * ```ts
 * const options: NtpQueryOptions = { host: '127.0.0.1', port: 11123, timeoutMs: 500 };
 * ```
 */
export interface NtpQueryOptions {
  /** Server host name or IP address. */
  readonly host: string;
  /** UDP port; default 123. */
  readonly port?: number;
  /** Give up after this many ms; default 1000. */
  readonly timeoutMs?: number;
  /** Clock for T1/T4; default `performance.now()`. Samples are on its timescale. */
  readonly monotonic?: MonotonicSource;
  /** Wall clock for the era pivot and `systemOffsetMs`; default `Date.now()`. */
  readonly wall?: WallSource;
  /** Cancels the exchange with `AbortError`. */
  readonly signal?: AbortSignal;
  /** Timer for the timeout; default the platform's. */
  readonly scheduler?: Scheduler;
  /** NTP version to send; default 4. */
  readonly version?: 3 | 4;
  /** Poll exponent to advertise (log₂ s); default 6. */
  readonly poll?: number;
  /** Local drift bound charged over the exchange (ppm); default 200. */
  readonly maxDriftPpm?: number;
  /** Refuse replies whose bound exceeds this (ms); default 1000. */
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
 * let request: NtsRequest;
 * const authenticate: NtpAuthenticator = {
 *   build: (header) => (request = session.buildRequest(header)).bytes,
 *   verify: (reply) => (session.verifyReply(reply, request), reply.subarray(0, 48)),
 *   abandon: () => session.abandon(request),
 * };
 * await socket.query({ host, port, authenticate });
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
   * @throws {NtpRejectedError} When the reply is not authentic; with reason
   *   `'nts-nak'` the exchange ends at once (the server cannot serve this request).
   */
  verify(reply: Uint8Array, request: Uint8Array): Uint8Array;
  /** Called when the exchange ends without an accepted reply (timeout, abort, NAK). */
  abandon?(): void;
}

/**
 * Options of {@link queryNtp}: one exchange, optionally on a shared socket.
 *
 * @example
 * ```ts
 * const options: QueryNtpOptions = { host: 'time.example', socket };
 * ```
 */
export interface QueryNtpOptions extends NtpQueryOptions {
  /** Use this socket (not closed afterwards) instead of a fresh one. */
  readonly socket?: NtpSocket;
  /** Transport for the fresh socket (ignored with `socket`); default {@link udpTransport}. */
  readonly transport?: DatagramTransport;
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
   * How datagrams travel and host names resolve; default {@link udpTransport}
   * (`node:dgram` and `node:dns`). A simulated network runs exchanges in virtual time.
   */
  readonly transport?: DatagramTransport;
}

interface Target {
  readonly address: string;
  readonly port: number;
  readonly name: string;
  readonly family: DatagramFamily;
}

/** One family's socket: opening (`socket` undefined) or open. */
interface Slot {
  ready: Promise<DatagramSocket>;
  socket: DatagramSocket | undefined;
}

interface Pending {
  readonly target: Target;
  readonly nonce: NtpTimestamp;
  t1: number;
  readonly options: NtpQueryOptions;
  readonly monotonic: MonotonicSource;
  readonly wall: WallSource;
  /** The datagram sent (for an authenticated exchange's `verify`). */
  request: Uint8Array;
  /** Last refusal of a datagram that carried our nonce and came from the server. */
  answeredBadly: NtpRejectedError | undefined;
  settle(error: Error | undefined, exchange?: NtpExchange): void;
}

type HistoryState = 'answered' | 'abandoned';

/** How many finished nonces to remember, to tell late and repeated replies from spoofs. */
const HISTORY_SIZE = 64;

function formatServer(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function nonceKey(bytes: Uint8Array, offset: number): string {
  let key = '';
  for (let i = offset; i < offset + 8; i++) key += (bytes[i] ?? 0).toString(16).padStart(2, '0');
  return key;
}

function timestampKey(ts: NtpTimestamp): string {
  return ts.seconds.toString(16).padStart(8, '0') + ts.fraction.toString(16).padStart(8, '0');
}

function randomNonce(): NtpTimestamp {
  const words = new Uint32Array(2);
  do randomFillSync(words);
  while (words[0] === 0 && words[1] === 0);
  return { seconds: words[0] ?? 1, fraction: words[1] ?? 0 };
}

/**
 * A UDP socket for NTP exchanges with one or more servers. Keeping one open
 * across exchanges (as `ntpSource` does) lets it recognise a late reply to an
 * abandoned request (`stale-transmit`) and a second copy of an answered one
 * (`duplicate`), rather than calling both spoofs. Sockets (one per address
 * family) are opened lazily on its {@link DatagramTransport}, held open (`ref`)
 * only while an exchange is pending, and freed by `close()`.
 *
 * @example
 * ```ts
 * const socket = new NtpSocket();
 * const a = await socket.query({ host: '127.0.0.1', port: 11123 });
 * const b = await socket.query({ host: '127.0.0.1', port: 11123 });
 * await socket.close();
 * ```
 */
export class NtpSocket {
  readonly #onRejected: ((error: NtpRejectedError) => void) | undefined;
  readonly #transport: DatagramTransport;
  readonly #slots = new Map<DatagramFamily, Slot>();
  readonly #pending = new Map<string, Pending>();
  readonly #history = new Map<string, { state: HistoryState; target: Target }>();
  readonly #lastTransmit = new Map<string, NtpTimestamp>();
  #closed = false;

  /**
   * @param options - Where to report refused datagrams; the transport.
   * @throws {InvalidArgumentError} When `transport` has no `open` function.
   */
  constructor(options: NtpSocketOptions = {}) {
    this.#onRejected = options.onRejected;
    const transport = options.transport ?? udpTransport;
    if (typeof transport?.open !== 'function') {
      throw new InvalidArgumentError('transport', transport, 'a DatagramTransport with open()');
    }
    this.#transport = transport;
  }

  /**
   * Whether `close()` was called.
   *
   * @example
   * ```ts
   * if (!socket.closed) await socket.query(options);
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * How many exchanges are waiting for a reply.
   *
   * @example
   * ```ts
   * console.log(socket.pending);
   * ```
   */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Runs one exchange. Several may run at once (each has its own nonce).
   *
   * @param options - Server, timeout, clocks, limits.
   * @returns The accepted exchange.
   * @throws {InvalidArgumentError} When an option is out of range.
   * @throws {NtpTimeoutError} When no valid reply arrives in time.
   * @throws {NtpRejectedError} When the server did reply in time, but only with refused replies
   *   (the last such reason; {@link NtpKissOfDeathError} for a kiss code).
   * @throws {SourceUnavailableError} When the host does not resolve or the socket fails.
   * @throws {AbortError} When `signal` aborts or the socket is closed.
   *
   * @example
   * ```ts
   * const x = await socket.query({ host: '127.0.0.1', port: 11123, timeoutMs: 500 });
   * ```
   */
  async query(options: NtpQueryOptions): Promise<NtpExchange> {
    if (typeof options?.host !== 'string' || options.host.length === 0) {
      throw new InvalidArgumentError('host', options?.host, 'a host name or IP address');
    }
    const port = options.port ?? 123;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidArgumentError('port', options.port, 'an integer in [1, 65535]');
    }
    const timeoutMs = options.timeoutMs ?? 1000;
    if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
      throw new InvalidArgumentError('timeoutMs', options.timeoutMs, 'a finite number ≥ 0');
    }
    const version = options.version ?? 4;
    if (version !== 3 && version !== 4) {
      throw new InvalidArgumentError('version', options.version, '3 or 4');
    }
    const authenticate = options.authenticate;
    if (
      authenticate !== undefined &&
      (typeof authenticate?.build !== 'function' || typeof authenticate.verify !== 'function')
    ) {
      throw new InvalidArgumentError(
        'authenticate',
        authenticate,
        'an object with build(header) and verify(reply, request)',
      );
    }
    if (authenticate !== undefined && version !== 4) {
      throw new InvalidArgumentError('version', options.version, '4 with `authenticate`');
    }
    const name = formatServer(options.host, port);
    if (this.#closed) throw new AbortError(`NTP query to ${name}`, 'the socket is closed');
    if (options.signal?.aborted)
      throw new AbortError(`NTP query to ${name}`, options.signal.reason);

    const scheduler = options.scheduler ?? systemScheduler;
    const monotonic = options.monotonic ?? systemMonotonic;
    const wall = options.wall ?? systemWall;
    const started = monotonic.now();
    const address = await this.#resolve(options.host, name, timeoutMs, scheduler);
    const remaining = timeoutMs - (monotonic.now() - started);
    if (options.signal?.aborted)
      throw new AbortError(`NTP query to ${name}`, options.signal.reason);
    if (this.#closed) throw new AbortError(`NTP query to ${name}`, 'the socket is closed');
    if (remaining <= 0) throw new NtpTimeoutError(name, timeoutMs);
    const family: DatagramFamily = isIP(address) === 6 ? 6 : 4;
    const target: Target = { address, port, name, family };
    let socket: DatagramSocket;
    try {
      socket = await this.#socketFor(family);
    } catch (error) {
      if (this.#closed) throw new AbortError(`NTP query to ${name}`, 'the socket was closed');
      throw new SourceUnavailableError(
        name,
        `cannot open a UDP socket: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    // close() may have run while the socket was being bound.
    if (this.#closed) throw new AbortError(`NTP query to ${name}`, 'the socket is closed');

    return new Promise<NtpExchange>((resolve, reject) => {
      let nonce = randomNonce();
      while (this.#pending.has(timestampKey(nonce)) || this.#history.has(timestampKey(nonce))) {
        nonce = randomNonce();
      }
      const key = timestampKey(nonce);
      const signal = options.signal;
      const onAbort = (): void =>
        pending.settle(new AbortError(`NTP query to ${name}`, signal?.reason));
      const pending: Pending = {
        target,
        nonce,
        t1: 0,
        options,
        monotonic,
        wall,
        request: new Uint8Array(0),
        answeredBadly: undefined,
        settle: (error, exchange) => {
          if (!this.#pending.delete(key)) return;
          scheduler.clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.#remember(key, { state: error ? 'abandoned' : 'answered', target });
          this.#refreshRef();
          if (error) {
            try {
              authenticate?.abandon?.();
            } catch {
              // A hook's bug must not hide the exchange's own failure.
            }
            reject(error);
          } else resolve(exchange as NtpExchange);
        },
      };
      const header = encodeNtpPacket({
        leap: 0,
        version,
        mode: NtpMode.client,
        poll: Math.max(-128, Math.min(127, Math.round(options.poll ?? 6))),
        precision: msToLog2Seconds(monotonic.resolutionMs ?? 0.001),
        transmitTimestamp: nonce,
      });
      let request: Uint8Array;
      try {
        request = authenticate === undefined ? header : authenticate.build(header);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      pending.request = request;
      this.#pending.set(key, pending);
      this.#refreshRef();
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = scheduler.setTimeout(() => {
        pending.settle(pending.answeredBadly ?? new NtpTimeoutError(name, timeoutMs));
      }, remaining);
      // T1 as late as possible before the datagram leaves.
      pending.t1 = monotonic.now();
      try {
        const sent = socket.send(request, address, port);
        sent?.then(undefined, (error: unknown) => {
          pending.settle(
            new SourceUnavailableError(
              name,
              `cannot send to ${address}:${port}: ${error instanceof Error ? error.message : String(error)}`,
              { cause: error },
            ),
          );
        });
      } catch (error) {
        // The socket closed under us (close() or a socket error).
        pending.settle(
          new SourceUnavailableError(name, `cannot send: ${String(error)}`, { cause: error }),
        );
      }
    });
  }

  /**
   * Closes the underlying sockets and aborts pending exchanges. Idempotent.
   *
   * @example
   * ```ts
   * await socket.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of [...this.#pending.values()]) {
      pending.settle(
        new AbortError(`NTP query to ${pending.target.name}`, 'the socket was closed'),
      );
    }
    // A socket still opening is closed as soon as it opens (its query then sees
    // `closed` and aborts); one that fails to open needs no closing.
    const closing = [...this.#slots.values()].map((slot) =>
      slot.ready.then(
        (socket) => closeQuietly(socket),
        () => undefined,
      ),
    );
    this.#slots.clear();
    await Promise.all(closing);
  }

  async #resolve(
    host: string,
    name: string,
    timeoutMs: number,
    scheduler: Scheduler,
  ): Promise<string> {
    if (isIP(host) !== 0) return host;
    const transport = this.#transport;
    if (transport.lookup === undefined) {
      throw new SourceUnavailableError(
        name,
        `cannot resolve ${host}: the transport resolves no names (give an IP address)`,
      );
    }
    let timer: unknown;
    try {
      const found = await Promise.race([
        transport.lookup(host),
        new Promise<never>((_, reject) => {
          timer = scheduler.setTimeout(
            () => reject(new NtpTimeoutError(name, timeoutMs)),
            timeoutMs,
          );
        }),
      ]);
      if (typeof found !== 'string' || isIP(found) === 0) {
        throw new Error(`the transport resolved it to ${String(found)}, not an IP address`);
      }
      return found;
    } catch (error) {
      if (error instanceof NtpTimeoutError) throw error;
      throw new SourceUnavailableError(
        name,
        `cannot resolve ${host}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    } finally {
      scheduler.clearTimeout(timer);
    }
  }

  #socketFor(family: DatagramFamily): Promise<DatagramSocket> {
    const existing = this.#slots.get(family);
    if (existing !== undefined) return existing.ready;
    // The slot exists before the transport is asked, so its handlers can name it.
    const slot = { socket: undefined } as Slot;
    const handlers = {
      onMessage: (bytes: Uint8Array, from: DatagramPeer): void => {
        // Only the current socket of this family speaks for it.
        if (this.#slots.get(family) === slot) this.#receive(bytes, from);
      },
      onError: (error: Error): void => this.#fail(family, slot, error),
    };
    const ready = (async () => this.#transport.open(family, handlers))();
    slot.ready = ready;
    this.#slots.set(family, slot);
    ready.then(
      (socket) => {
        slot.socket = socket;
        if (this.#slots.get(family) === slot) this.#refreshRef();
      },
      () => {
        // Failed to open: the next exchange tries a fresh socket.
        if (this.#slots.get(family) === slot) this.#slots.delete(family);
      },
    );
    return ready;
  }

  #fail(family: DatagramFamily, slot: Slot, error: Error): void {
    if (this.#slots.get(family) !== slot) return;
    this.#slots.delete(family);
    if (slot.socket !== undefined) void closeQuietly(slot.socket);
    for (const pending of [...this.#pending.values()]) {
      if (pending.target.family === family) {
        pending.settle(
          new SourceUnavailableError(pending.target.name, `socket error: ${error.message}`, {
            cause: error,
          }),
        );
      }
    }
  }

  #receive(msg: Uint8Array, rinfo: DatagramPeer): void {
    const key = msg.length >= 32 ? nonceKey(msg, 24) : undefined;
    const pending = key === undefined ? undefined : this.#pending.get(key);
    if (pending !== undefined) {
      // Stamp T4 before anything else.
      const t4 = pending.monotonic.now();
      const wallMs = pending.wall.now();
      const { target } = pending;
      if (rinfo.address !== target.address || rinfo.port !== target.port) {
        this.#report(
          new NtpRejectedError(
            target.name,
            'unexpected-address',
            `reply came from ${formatServer(rinfo.address, rinfo.port)}`,
          ),
          pending,
        );
        return;
      }
      const previous = this.#lastTransmit.get(`${target.address}|${target.port}`);
      const options = pending.options;
      try {
        const verified =
          options.authenticate === undefined
            ? msg
            : options.authenticate.verify(msg, pending.request);
        const exchange = validateNtpReply(verified, {
          server: target.name,
          nonce: pending.nonce,
          t1: pending.t1,
          t4,
          wallMs,
          localPrecisionMs: pending.monotonic.resolutionMs ?? 0,
          ...(options.maxDriftPpm === undefined ? {} : { maxDriftPpm: options.maxDriftPpm }),
          ...(options.maxRootDistanceMs === undefined
            ? {}
            : { maxRootDistanceMs: options.maxRootDistanceMs }),
          ...(previous === undefined ? {} : { previousTransmit: previous }),
        });
        this.#lastTransmit.set(
          `${target.address}|${target.port}`,
          exchange.reply.transmitTimestamp,
        );
        pending.settle(undefined, exchange);
      } catch (error) {
        const rejection =
          error instanceof NtpRejectedError
            ? error
            : new NtpRejectedError(target.name, 'malformed', String(error));
        pending.answeredBadly = rejection;
        this.#report(rejection, pending);
        // An NTS NAK: the server cannot use this request's cookie; waiting longer is pointless.
        if (rejection.reason === 'nts-nak') pending.settle(rejection);
      }
      return;
    }
    // Not an answer to anything pending: classify it for the report.
    const from = formatServer(rinfo.address, rinfo.port);
    const past = key === undefined ? undefined : this.#history.get(key);
    const known = (t: Target): boolean => t.address === rinfo.address && t.port === rinfo.port;
    const expected =
      [...this.#pending.values()].some((p) => known(p.target)) ||
      (past !== undefined && known(past.target));
    let rejection: NtpRejectedError;
    if (!expected) {
      const name = past?.target.name ?? this.#pending.values().next().value?.target.name ?? from;
      rejection = new NtpRejectedError(name, 'unexpected-address', `datagram from ${from}`);
    } else if (msg.length < NTP_PACKET_SIZE) {
      rejection = new NtpRejectedError(from, 'truncated', `${msg.length} bytes`);
    } else if (past?.state === 'answered') {
      rejection = new NtpRejectedError(
        past.target.name,
        'duplicate',
        'a second reply to an answered request',
      );
    } else if (past?.state === 'abandoned') {
      rejection = new NtpRejectedError(
        past.target.name,
        'stale-transmit',
        'a late reply to a request that was already given up',
      );
    } else {
      rejection = new NtpRejectedError(
        from,
        'origin-mismatch',
        'origin timestamp matches no request of ours',
      );
    }
    this.#report(rejection, undefined);
  }

  #report(rejection: NtpRejectedError, to: Pending | undefined): void {
    const targets = to ? [to] : [...this.#pending.values()];
    for (const p of targets) safeCall(p.options.onRejected, rejection);
    safeCall(this.#onRejected, rejection);
  }

  #remember(key: string, entry: { state: HistoryState; target: Target }): void {
    this.#history.delete(key);
    this.#history.set(key, entry);
    if (this.#history.size > HISTORY_SIZE) {
      const oldest = this.#history.keys().next().value;
      if (oldest !== undefined) this.#history.delete(oldest);
    }
  }

  /** Keeps the process alive only while an exchange is pending. */
  #refreshRef(): void {
    for (const { socket } of this.#slots.values()) {
      if (socket === undefined) continue;
      try {
        if (this.#pending.size > 0) socket.ref?.();
        else socket.unref?.();
      } catch {
        // closed
      }
    }
  }
}

/** Closes a transport socket, swallowing errors (it may already be closed). */
async function closeQuietly(socket: DatagramSocket): Promise<void> {
  try {
    await socket.close();
  } catch {
    // already closed after an error
  }
}

function safeCall(
  listener: ((e: NtpRejectedError) => void) | undefined,
  e: NtpRejectedError,
): void {
  if (listener === undefined) return;
  try {
    listener(e);
  } catch {
    // A listener's bug must not break the socket's dispatch.
  }
}

/**
 * One NTP exchange: sends a client-mode request with a random transmit timestamp,
 * waits for a reply that echoes it from the server's address, validates it and
 * returns θ (offset of server time from the monotonic clock at T4), δ and λ.
 * Refused replies are passed to `onRejected` and otherwise ignored.
 *
 * @param options - Server, timeout, clocks, limits; `socket` to reuse one.
 * @returns The accepted exchange (a `SyncSample`).
 * @throws {InvalidArgumentError} When an option is out of range.
 * @throws {NtpTimeoutError} When no valid reply arrives in time.
 * @throws {NtpRejectedError} When the server replied in time but every reply was refused.
 * @throws {SourceUnavailableError} When the host does not resolve or the socket fails.
 * @throws {AbortError} When `signal` aborts.
 *
 * @example
 * ```ts
 * const x = await queryNtp({ host: '127.0.0.1', port: 11123, timeoutMs: 500 });
 * console.log(`offset from performance.now(): ${x.offsetMs} ± ${x.errorMs} ms`);
 * ```
 */
export async function queryNtp(options: QueryNtpOptions): Promise<NtpExchange> {
  if (options?.socket !== undefined) return options.socket.query(options);
  const socket = new NtpSocket(
    options?.transport === undefined ? {} : { transport: options.transport },
  );
  try {
    return await socket.query(options);
  } finally {
    await socket.close();
  }
}
