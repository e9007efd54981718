/**
 * An SNTP client (RFC 5905 client mode, RFC 4330) on `node:dgram`: {@link queryNtp}
 * runs one exchange, on a fresh {@link NtpSocket} or a shared one. The socket,
 * its options and the reply validation live in `ntp-socket.ts`,
 * `query-options.ts` and `reply-validation.ts`.
 *
 * @module
 */
import { NtpSocket } from './ntp-socket.js';
import type { NtpQueryOptions } from './query-options.js';
import type { NtpExchange } from './reply-validation.js';
import type { DatagramTransport } from './transport.js';

/**
 * Options of {@link queryNtp}: one exchange, optionally on a shared socket.
 *
 * @example
 * ```ts
 * const socket = new NtpSocket(); // one socket for several exchanges
 * const a = await queryNtp({ host: '127.0.0.1', port: 11123, socket });
 * const b = await queryNtp({ host: '127.0.0.1', port: 11124, socket, timeoutMs: 500 });
 * await socket.close(); // queryNtp does not close a socket it was given
 * ```
 */
export interface QueryNtpOptions extends NtpQueryOptions {
  /** Use this socket (not closed afterwards) instead of a fresh one. */
  readonly socket?: NtpSocket;
  /**
   * Transport for the fresh socket (ignored with `socket`).
   *
   * @defaultValue {@link udpTransport}
   */
  readonly transport?: DatagramTransport;
}

/**
 * One NTP exchange: sends a client-mode request with a random transmit timestamp,
 * waits for a reply that echoes it from the server's address, validates it and
 * returns θ (offset of server time from the monotonic clock at T4), δ and λ.
 * Refused replies are passed to `onRejected` and otherwise ignored.
 *
 * @param options - Server, timeout, clocks, limits; `socket` to reuse one.
 * @returns The accepted exchange (a `SyncSample`).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
 * @throws {@link NtpTimeoutError} When no valid reply arrives in time.
 * @throws {@link NtpRejectedError} When the server replied in time but every reply was refused.
 * @throws {@link chronobound!SourceUnavailableError | SourceUnavailableError} When the host does not resolve or the socket fails.
 * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts.
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
