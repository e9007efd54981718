/**
 * A datagram transport that records what an NTP client sends through it: to
 * count its packets, or to look at them.
 */
import { udpTransport, type DatagramTransport } from '../../src/ntp/index.js';

/**
 * `udpTransport`, keeping a copy of every datagram sent.
 *
 * @example
 * ```ts
 * const transport = recordingUdpTransport();
 * const source = ntpSource({ servers: [server.address], transport });
 * // …
 * transport.sent.length; // datagrams the client sent
 * ```
 */
export function recordingUdpTransport(): DatagramTransport & { readonly sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  return {
    sent,
    async open(family, handlers) {
      const socket = await udpTransport.open(family, handlers);
      return {
        ...socket,
        send: (bytes: Uint8Array, address: string, port: number) => {
          sent.push(new Uint8Array(bytes));
          return socket.send(bytes, address, port);
        },
        close: () => socket.close(),
        ...(socket.ref === undefined ? {} : { ref: () => socket.ref?.() }),
        ...(socket.unref === undefined ? {} : { unref: () => socket.unref?.() }),
      };
    },
  };
}
