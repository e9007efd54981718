/**
 * One NTS-protected NTP exchange (RFC 8915 §5.7). {@link validateNtsReply} is
 * the pure step — the NTS checks of the session, then exactly the header checks
 * of a plain reply (`validateNtpReply`) — and {@link queryNts} the standalone
 * client: key exchange if needed, one request on its own `node:dgram` socket,
 * and on an NTS NAK one fresh key exchange and another try.
 *
 * @module
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { randomFillSync } from 'node:crypto';
import { isIP } from 'node:net';
import {
  AbortError,
  InvalidArgumentError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
} from '../../errors.js';
import { systemMonotonic, systemWall } from '../../clock/system.js';
import type { MonotonicSource, WallSource } from '../../clock/types.js';
import { validateNtpReply, type NtpExchange, type NtpReplyContext } from '../reply-validation.js';
import type { NtpTimestamp } from '../era.js';
import { NtpMode, encodeNtpPacket, msToLog2Seconds } from '../packet.js';
import { NtsRejectedError } from './errors.js';
import { ntsKeyExchange, NTS_KE_PORT } from './ke.js';
import { NtsSession, type NtsRequest } from './session.js';

/**
 * What an NTS reply is validated against: the plain exchange context plus the
 * session and the request it should answer.
 *
 * @example
 * ```ts
 * validateNtsReply(bytes, { server: '127.0.0.1:123', nonce, t1, t4: mono.now(), session, request });
 * // the exchange when the reply authenticates; NtsRejectedError (e.g. 'nts-bad-tag') when it does not
 * ```
 */
export interface NtsReplyContext extends NtpReplyContext {
  /** The session that built the request. */
  readonly session: NtsSession;
  /** The request the reply should answer. */
  readonly request: NtsRequest;
}

/**
 * An accepted, authenticated exchange: an `NtpExchange` (a `SyncSample`) whose
 * reply was verified under the session's S2C key.
 *
 * @example
 * ```ts
 * const x = await queryNts({ host: 'time.example' });
 * x.authenticated;   //=> true
 * x.cookiesReceived; // the fresh cookies its reply brought, one for each the request spent or asked for
 * x.offsetMs;        // as any NTP exchange
 * ```
 */
export interface NtsAuthenticatedExchange extends NtpExchange {
  /** Always true: nothing unauthenticated gets this far. */
  readonly authenticated: true;
  /** Cookies the reply brought. */
  readonly cookiesReceived: number;
  /** Cookies the session holds now. */
  readonly cookiesLeft: number;
}

/**
 * Validates an NTS reply: first the session's NTS checks (Unique Identifier,
 * authenticator, tag; see {@link NtsSession.verifyReply}), then the same header
 * checks as any NTP reply (`validateNtpReply`: origin, mode, stratum, kiss codes,
 * delays, root distance). Pure apart from the session's bookkeeping (the request
 * is marked answered and its cookies are taken as soon as it authenticates).
 *
 * @param bytes - The datagram.
 * @param context - Session, request and the plain exchange context.
 * @returns The accepted exchange.
 * @throws {@link NtsRejectedError} When an NTS check fails (never downgraded to plain NTP).
 * @throws {@link NtpRejectedError} When the authenticated header fails a check;
 *   `NtpKissOfDeathError` for an authenticated kiss code.
 *
 * @example
 * ```ts
 * const x = validateNtsReply(msg, { server, nonce, t1, t4, session, request });
 * ```
 */
export function validateNtsReply(
  bytes: Uint8Array,
  context: NtsReplyContext,
): NtsAuthenticatedExchange {
  const verified = context.session.verifyReply(bytes, context.request, context.server);
  const exchange = validateNtpReply(bytes, context);
  return {
    ...exchange,
    authenticated: true,
    cookiesReceived: verified.cookiesReceived,
    cookiesLeft: verified.cookiesHeld,
  };
}

/**
 * Options of {@link queryNts}.
 *
 * @example
 * ```ts
 * const first = await queryNts({ host: 'time.example', ca: pem, timeoutMs: 3000 });
 * first.keyExchanges; //=> 1
 * const next = await queryNts({ host: 'time.example', ca: pem, session: first.session });
 * next.keyExchanges;  //=> 0 (the session still had cookies)
 * ```
 */
export interface QueryNtsOptions {
  /** NTS-KE server host name or IP address. */
  readonly host: string;
  /**
   * NTS-KE TCP port.
   *
   * @defaultValue `4460` (`NTS_KE_PORT`)
   */
  readonly port?: number;
  /** Trust only this CA (PEM string or bytes) instead of the system store. */
  readonly ca?: string | Uint8Array;
  /**
   * Name the certificate must match (and SNI).
   *
   * @defaultValue `host`
   */
  readonly servername?: string;
  /**
   * Give up after this many ms, key exchange included.
   *
   * @defaultValue `5000`
   */
  readonly timeoutMs?: number;
  /**
   * Clock for T1/T4. The sample is on its timescale.
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
  /** Cancels with `AbortError`. */
  readonly signal?: AbortSignal;
  /**
   * Reuse this session: no key exchange while it has cookies, and it is rekeyed
   * in place when it needs one. Without it a fresh session is made (and returned).
   */
  readonly session?: NtsSession;
  /** Send NTP here instead of the negotiated server (e.g. through a port forward). */
  readonly ntpHost?: string;
  /** Send NTP to this port instead of the negotiated one. */
  readonly ntpPort?: number;
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
  /**
   * Poll exponent to advertise (log₂ s).
   *
   * @defaultValue `6`
   */
  readonly poll?: number;
  /**
   * At most this many key exchanges (the first, and one per NTS NAK).
   *
   * @defaultValue `2`
   */
  readonly maxKeyExchanges?: number;
  /** Called for every refused datagram while the exchange waits. */
  readonly onRejected?: (error: NtpRejectedError) => void;
}

/**
 * The result of {@link queryNts}: an authenticated exchange, and the session to
 * pass back in for the next one.
 *
 * @example
 * ```ts
 * const first = await queryNts({ host });
 * const second = await queryNts({ host, session: first.session }); // no key exchange
 * ```
 */
export interface NtsExchange extends NtsAuthenticatedExchange {
  /** Key exchanges this call ran (0 when the session still had cookies). */
  readonly keyExchanges: number;
  /** The session (keys and cookies) that was used. */
  readonly session: NtsSession;
}

function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function randomNonce(): NtpTimestamp {
  const words = new Uint32Array(2);
  do randomFillSync(words);
  while (words[0] === 0 && words[1] === 0);
  return { seconds: words[0] ?? 1, fraction: words[1] ?? 0 };
}

function requirePort(name: string, value: unknown): void {
  if (
    value !== undefined &&
    (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535)
  ) {
    throw new InvalidArgumentError(name, value, 'an integer in [1, 65535]');
  }
}

type Outcome = { readonly exchange: NtsAuthenticatedExchange } | { readonly nak: NtsRejectedError };

/**
 * One NTS-protected NTP exchange with everything it takes: an NTS key exchange
 * (unless `session` still has cookies), an authenticated request on a fresh UDP
 * socket, and a reply that must pass every NTS check and every header check.
 * Refused replies go to `onRejected` and are otherwise ignored, so a forged
 * datagram cannot end the exchange; an unauthenticated reply is never used. On
 * an NTS NAK the cookies are dropped and the key exchange and request are
 * repeated, up to `maxKeyExchanges` key exchanges.
 *
 * @param options - Key-exchange server, CA, timeout, clocks, session.
 * @returns The authenticated exchange (a `SyncSample`) and its session.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 * @throws {@link NtsKeyExchangeError} When the key exchange fails (a subclass says how).
 * @throws {@link NtpTimeoutError} When no reply arrives in time.
 * @throws {@link NtpRejectedError} When replies arrived in time but all were refused
 *   (the last refusal; {@link NtsRejectedError} for an NTS reason).
 * @throws {@link chronobound!SourceUnavailableError | SourceUnavailableError} When the NTP host does not resolve or the socket fails.
 * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts.
 *
 * @example
 * ```ts
 * const x = await queryNts({ host: 'time.cloudflare.com' });
 * console.log(`offset ${x.offsetMs} ± ${x.errorMs} ms, authenticated`);
 * ```
 */
export async function queryNts(options: QueryNtsOptions): Promise<NtsExchange> {
  if (typeof options?.host !== 'string' || options.host.length === 0) {
    throw new InvalidArgumentError('host', options?.host, 'a host name or IP address');
  }
  requirePort('port', options.port);
  requirePort('ntpPort', options.ntpPort);
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new InvalidArgumentError('timeoutMs', options.timeoutMs, 'a finite number > 0');
  }
  const maxKeyExchanges = options.maxKeyExchanges ?? 2;
  if (!Number.isInteger(maxKeyExchanges) || maxKeyExchanges < 1) {
    throw new InvalidArgumentError('maxKeyExchanges', options.maxKeyExchanges, 'an integer ≥ 1');
  }
  if (options.session !== undefined && !(options.session instanceof NtsSession)) {
    throw new InvalidArgumentError('session', options.session, 'an NtsSession');
  }
  const monotonic = options.monotonic ?? systemMonotonic;
  const wall = options.wall ?? systemWall;
  const signal = options.signal;
  const keName = formatAddress(options.host, options.port ?? NTS_KE_PORT);
  const started = monotonic.now();
  const remaining = (): number => timeoutMs - (monotonic.now() - started);
  const checkAbort = (): void => {
    if (signal?.aborted) throw new AbortError(`NTS query to ${keName}`, signal.reason);
  };
  checkAbort();

  let session = options.session;
  let keyExchanges = 0;
  const keyExchange = async (): Promise<NtsSession> => {
    const left = remaining();
    if (left <= 0) throw new NtpTimeoutError(keName, timeoutMs);
    const ke = await ntsKeyExchange({
      host: options.host,
      port: options.port ?? NTS_KE_PORT,
      timeoutMs: left,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      ...(signal === undefined ? {} : { signal }),
    });
    keyExchanges++;
    if (session === undefined) session = new NtsSession(ke);
    else session.rekey(ke);
    return session;
  };
  let current = session === undefined || session.needsKeyExchange ? await keyExchange() : session;

  let socket: Socket | undefined;
  let socketType: 'udp4' | 'udp6' | undefined;
  try {
    for (;;) {
      checkAbort();
      const ntpHost = options.ntpHost ?? current.ntpHost;
      const ntpPort = options.ntpPort ?? current.ntpPort;
      const name = formatAddress(ntpHost, ntpPort);
      const address = isIP(ntpHost) !== 0 ? ntpHost : await resolve(ntpHost, name);
      const family = isIP(address) === 6 ? 'udp6' : 'udp4';
      if (socket === undefined || socketType !== family) {
        closeQuietly(socket);
        socket = await openSocket(family, name);
        socketType = family;
      }
      const left = remaining();
      if (left <= 0) throw new NtpTimeoutError(name, timeoutMs);
      const outcome = await exchangeOnce(socket, current, {
        address,
        port: ntpPort,
        name,
        timeoutMs,
        waitMs: left,
        monotonic,
        wall,
        options,
      });
      if ('exchange' in outcome) {
        return { ...outcome.exchange, keyExchanges, session: current };
      }
      if (keyExchanges >= maxKeyExchanges) throw outcome.nak;
      current = await keyExchange();
    }
  } finally {
    closeQuietly(socket);
  }
}

async function resolve(host: string, name: string): Promise<string> {
  try {
    return (await lookup(host)).address;
  } catch (error) {
    throw new SourceUnavailableError(
      name,
      `cannot resolve ${host}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

function openSocket(type: 'udp4' | 'udp6', name: string): Promise<Socket> {
  return new Promise<Socket>((resolvePromise, reject) => {
    const socket = createSocket(type);
    const onError = (error: Error): void => {
      closeQuietly(socket);
      reject(
        new SourceUnavailableError(name, `cannot open a UDP socket: ${error.message}`, {
          cause: error,
        }),
      );
    };
    socket.once('error', onError);
    socket.bind(0, () => {
      socket.off('error', onError);
      resolvePromise(socket);
    });
  });
}

function closeQuietly(socket: Socket | undefined): void {
  try {
    socket?.close();
  } catch {
    // already closed
  }
}

interface ExchangeParameters {
  readonly address: string;
  readonly port: number;
  readonly name: string;
  readonly timeoutMs: number;
  readonly waitMs: number;
  readonly monotonic: MonotonicSource;
  readonly wall: WallSource;
  readonly options: QueryNtsOptions;
}

function exchangeOnce(
  socket: Socket,
  session: NtsSession,
  p: ExchangeParameters,
): Promise<Outcome> {
  const { options, monotonic } = p;
  const nonce = randomNonce();
  const header = encodeNtpPacket({
    leap: 0,
    version: 4,
    mode: NtpMode.client,
    poll: Math.max(-128, Math.min(127, Math.round(options.poll ?? 6))),
    precision: msToLog2Seconds(monotonic.resolutionMs ?? 0.001),
    transmitTimestamp: nonce,
  });
  const request = session.buildRequest(header);
  return new Promise<Outcome>((resolvePromise, reject) => {
    let settled = false;
    let answeredBadly: NtpRejectedError | undefined;
    let t1 = 0;
    const signal = options.signal;
    const report = (error: NtpRejectedError): void => {
      try {
        options.onRejected?.(error);
      } catch {
        // A listener's bug must not break the exchange.
      }
    };
    const settle = (error: Error | undefined, outcome?: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('message', onMessage);
      socket.off('error', onError);
      if (outcome === undefined || !('exchange' in outcome)) session.abandon(request);
      if (error !== undefined) reject(error);
      else resolvePromise(outcome as Outcome);
    };
    const onAbort = (): void => settle(new AbortError(`NTS query to ${p.name}`, signal?.reason));
    const onError = (error: Error): void =>
      settle(
        new SourceUnavailableError(p.name, `socket error: ${error.message}`, { cause: error }),
      );
    const onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
      // T4 before anything else.
      const t4 = monotonic.now();
      const wallMs = p.wall.now();
      const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      if (rinfo.address !== p.address || rinfo.port !== p.port) {
        report(
          new NtpRejectedError(
            p.name,
            'unexpected-address',
            `datagram from ${formatAddress(rinfo.address, rinfo.port)}`,
          ),
        );
        return;
      }
      let context: NtsReplyContext = {
        server: p.name,
        nonce,
        t1,
        t4,
        wallMs,
        localPrecisionMs: monotonic.resolutionMs ?? 0,
        session,
        request,
      };
      if (options.maxDriftPpm !== undefined)
        context = { ...context, maxDriftPpm: options.maxDriftPpm };
      if (options.maxRootDistanceMs !== undefined) {
        context = { ...context, maxRootDistanceMs: options.maxRootDistanceMs };
      }
      try {
        settle(undefined, { exchange: validateNtsReply(bytes, context) });
      } catch (error) {
        const rejection =
          error instanceof NtpRejectedError
            ? error
            : new NtpRejectedError(p.name, 'malformed', String(error));
        answeredBadly = rejection;
        report(rejection);
        if (rejection instanceof NtsRejectedError && rejection.reason === 'nts-nak') {
          settle(undefined, { nak: rejection });
        }
      }
    };
    const timer = setTimeout(
      () => settle(answeredBadly ?? new NtpTimeoutError(p.name, p.timeoutMs)),
      p.waitMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('message', onMessage);
    socket.on('error', onError);
    // T1 as late as possible before the datagram leaves.
    t1 = monotonic.now();
    socket.send(request.bytes, p.port, p.address, (error) => {
      if (error) {
        settle(
          new SourceUnavailableError(p.name, `cannot send to ${p.name}: ${error.message}`, {
            cause: error,
          }),
        );
      }
    });
  });
}
