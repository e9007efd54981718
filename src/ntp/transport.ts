/**
 * The datagram transport under `NtpSocket` and `ntpSource`: how a request leaves
 * and a reply comes back. The default, {@link udpTransport}, is `node:dgram` with
 * `node:dns` name resolution; a test can inject a simulated network instead
 * (`createSimulatedNtpNetwork` from `chronobound/testing`) so that everything above
 * it — nonces, late and duplicate reply recognition, validation, timeouts, the
 * source's polling — runs unchanged in virtual time.
 *
 * The transport only moves bytes. `NtpSocket` keeps all the NTP logic: it opens
 * one socket per address family lazily, keeps it `ref`'d only while an exchange
 * is pending, matches replies to requests by nonce, checks the source address and
 * port, and reports every refused datagram.
 *
 * @module
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';

/**
 * An IP address family: 4 or 6.
 *
 * @example
 * ```ts
 * import { isIP } from 'node:net';
 * const socket = await udpTransport.open(isIP(address) === 6 ? 6 : 4, handlers);
 * ```
 */
export type DatagramFamily = 4 | 6;

/**
 * Where a datagram came from.
 *
 * @example
 * ```ts
 * const socket = await udpTransport.open(4, {
 *   onMessage: (bytes, from) => {
 *     if (from.address !== '192.0.2.1' || from.port !== 123) return; // not the server we asked
 *     replies.push(bytes);
 *   },
 *   onError: (error) => console.warn(error.message),
 * });
 * ```
 */
export interface DatagramPeer {
  /** The sender's IP address, as the transport spells it (compared verbatim). */
  readonly address: string;
  /** The sender's port. */
  readonly port: number;
}

/**
 * What a transport calls back with for an open socket.
 *
 * @example
 * ```ts
 * const socket = await udpTransport.open(4, {
 *   onMessage: (bytes, from) => console.log(bytes.length, from.address, from.port),
 *   onError: (error) => console.warn(error.message),
 * });
 * const request = encodeNtpPacket({ mode: NtpMode.client, version: 4, transmitTimestamp: epochMsToNtp(Date.now()) });
 * await socket.send(request, '127.0.0.1', 11123); // a loopback server answers: logs 48 '127.0.0.1' 11123
 * await socket.close();
 * ```
 */
export interface DatagramHandlers {
  /** A datagram arrived. Called synchronously by the transport; must not throw. */
  onMessage(bytes: Uint8Array, from: DatagramPeer): void;
  /**
   * The socket failed after it opened (it is unusable from now on). `NtpSocket`
   * fails that family's pending exchanges and opens a fresh socket next time.
   */
  onError(error: Error): void;
}

/**
 * One open socket of a {@link DatagramTransport}, bound to an ephemeral local port.
 *
 * @example
 * ```ts
 * const socket = await transport.open(4, handlers);
 * await socket.send(request, '192.0.2.1', 123);
 * await socket.close();
 * ```
 */
export interface DatagramSocket {
  /**
   * Sends one datagram. A failure may be thrown, or reported by the returned
   * promise rejecting; either fails the exchange that sent it.
   *
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When the socket is closed or the send fails at once.
   */
  send(bytes: Uint8Array, address: string, port: number): void | Promise<void>;
  /** Lets the socket keep the process alive (an exchange is pending). Optional. */
  ref?(): void;
  /** Lets the process exit although the socket is open (nothing is pending). Optional. */
  unref?(): void;
  /** Closes the socket; no `onMessage` after it resolves. Idempotent. */
  close(): void | Promise<void>;
}

/**
 * How NTP datagrams travel: opens sockets and, optionally, resolves host names.
 * Inject one with `ntpSource({ transport })`, `new NtpSocket({ transport })` or
 * `queryNtp({ transport })`; the default is {@link udpTransport}.
 *
 * @example
 * ```ts
 * // A transport that logs what it sends, on top of the real one:
 * await queryNtp({
 *   host: '127.0.0.1',
 *   port: 11123,
 *   transport: {
 *     lookup: (host) => udpTransport.lookup!(host),
 *     async open(family, handlers) {
 *       const socket = await udpTransport.open(family, handlers);
 *       return {
 *         send: (bytes, address, port) => (console.log('to', address, port), socket.send(bytes, address, port)),
 *         ref: () => socket.ref?.(),
 *         unref: () => socket.unref?.(),
 *         close: () => socket.close(),
 *       };
 *     },
 *   },
 * }); // logs 'to 127.0.0.1 11123', then resolves with the exchange
 * ```
 */
export interface DatagramTransport {
  /**
   * Opens a socket of `family` on an ephemeral port. `NtpSocket` opens at most one
   * per family at a time, only when an exchange needs it.
   *
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} (or rejects) When no socket can be opened.
   */
  open(
    family: DatagramFamily,
    handlers: DatagramHandlers,
  ): DatagramSocket | Promise<DatagramSocket>;
  /**
   * Resolves a host name (never called for an IP address) to one IP address.
   * Without it, servers must be given as IP addresses.
   *
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} (or rejects) When the name does not resolve.
   */
  lookup?(host: string): Promise<string>;
}

/**
 * The default transport: UDP sockets from `node:dgram`, bound to an ephemeral
 * port on all interfaces, and host names resolved with `node:dns`'s `lookup`
 * (the system resolver, as `getaddrinfo` sees it).
 *
 * @example
 * ```ts
 * const socket = new NtpSocket({ transport: udpTransport }); // the same as new NtpSocket()
 * ```
 */
export const udpTransport: DatagramTransport = {
  open(family, handlers) {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    let bound = false;
    socket.on('message', (msg, rinfo) =>
      handlers.onMessage(msg, { address: rinfo.address, port: rinfo.port }),
    );
    socket.on('error', (error) => {
      if (bound) handlers.onError(error);
    });
    return new Promise<DatagramSocket>((resolve, reject) => {
      const onError = (error: Error): void => {
        try {
          socket.close();
        } catch {
          // already closed
        }
        reject(error);
      };
      // Closed before the bind finished: the bind callback will never run.
      const onClose = (): void => reject(new Error('the socket was closed'));
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.bind(0, () => {
        socket.off('error', onError);
        socket.off('close', onClose);
        bound = true;
        resolve({
          send(bytes, address, port) {
            let settle: ((error: Error | null) => void) | undefined;
            const sent = new Promise<void>((done, fail) => {
              settle = (error) => (error ? fail(error) : done());
            });
            // A closed socket throws here, synchronously; a failed send calls back.
            socket.send(bytes, port, address, (error) => settle?.(error));
            return sent;
          },
          ref: () => void socket.ref(),
          unref: () => void socket.unref(),
          close: () =>
            new Promise<void>((done) => {
              try {
                socket.close(() => done());
              } catch {
                done(); // already closed after an error
              }
            }),
        });
      });
    });
  },
  async lookup(host) {
    return (await lookup(host)).address;
  },
};
