/**
 * {@link NtpSocket}: the UDP endpoint of the SNTP client (RFC 5905 client mode,
 * RFC 4330). One random transmit timestamp per exchange as nonce, T1/T4 stamped
 * with the monotonic clock, replies matched by nonce and checked by
 * `validateNtpReply`. A reply that fails validation is reported and ignored; the
 * exchange keeps waiting for a valid one until its timeout, so a spoofed packet
 * cannot end it. Finished nonces are remembered to tell late and repeated
 * replies from spoofs.
 *
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { isIP } from 'node:net';
import {
  AbortError,
  InvalidArgumentError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
} from '../errors.js';
import { BoundedMap } from '../_internals/bounded-map.js';
import { systemMonotonic, systemScheduler, systemWall } from '../clock/system.js';
import type { MonotonicSource, Scheduler, WallSource } from '../clock/types.js';
import type { NtpTimestamp } from './era.js';
import { NTP_PACKET_SIZE, NtpMode, encodeNtpPacket, msToLog2Seconds } from './packet.js';
import type { NtpQueryOptions, NtpSocketOptions } from './query-options.js';
import { validateNtpReply, type NtpExchange } from './reply-validation.js';
import {
  udpTransport,
  type DatagramFamily,
  type DatagramPeer,
  type DatagramSocket,
  type DatagramTransport,
} from './transport.js';

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
  readonly #history = new BoundedMap<string, { state: HistoryState; target: Target }>(HISTORY_SIZE);
  readonly #lastTransmit = new Map<string, NtpTimestamp>();
  #closed = false;

  /**
   * @param options - Where to report refused datagrams; the transport.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `transport` has no `open` function.
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
   * @throws {@link NtpTimeoutError} When no valid reply arrives in time.
   * @throws {@link NtpRejectedError} When the server did reply in time, but only with refused replies
   *   (the last such reason; {@link NtpKissOfDeathError} for a kiss code).
   * @throws {@link chronobound!SourceUnavailableError | SourceUnavailableError} When the host does not resolve or the socket fails.
   * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts or the socket is closed.
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
          this.#history.remember(key, { state: error ? 'abandoned' : 'answered', target });
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
