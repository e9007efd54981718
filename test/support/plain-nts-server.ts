/**
 * An NTS server that is not one, for the NTS client tests that run without
 * chronyd: a TLS NTS-KE server (a self-signed certificate from openssl) that
 * negotiates AES-SIV-CMAC-256, hands out eight dummy cookies and names the port
 * of a plain UDP NTP responder, which answers the header correctly and ignores
 * NTS. A client must never accept its replies (no downgrade).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { epochMsToNtp } from '../../src/ntp/era.js';
import {
  NtsKeRecordType as R,
  encodeKeRecords,
  parseKeRecords,
  uint16Body,
} from '../../src/ntp/nts/ke-records.js';
import { decodeNtpPacket, encodeNtpPacket } from '../../src/ntp/packet.js';
import { makeCertificate } from '../integration/helpers/nts-server.js';

/** A running {@link startPlainNtsServer}. */
export interface PlainNtsServer {
  /** NTS-KE (TLS) port on 127.0.0.1. */
  readonly kePort: number;
  /** The plain NTP responder's UDP port on 127.0.0.1, which the key exchange names. */
  readonly ntpPort: number;
  /** The server's certificate in PEM: pass it as `ca` to trust it. */
  readonly ca: string;
  /** A temp directory (holding the certificate) that {@link PlainNtsServer.close} removes. */
  readonly dir: string;
  /** Every datagram the NTP responder received, answered or not. */
  readonly requests: Buffer[];
  /** While true the NTP responder answers nothing. */
  silent: boolean;
  /** The sender of the next datagram the NTP responder receives. */
  nextRequest(): Promise<RemoteInfo>;
  close(): Promise<void>;
}

/**
 * Starts the NTS-KE server and the plain NTP responder on free loopback ports.
 * Needs openssl (see `locateOpenssl`).
 *
 * @example
 * ```ts
 * const server = await startPlainNtsServer();
 * await queryNts({ host: '127.0.0.1', port: server.kePort, ca: server.ca }); // rejects: nts-unauthenticated
 * ```
 * @throws Error when openssl fails or is not installed.
 */
export async function startPlainNtsServer(): Promise<PlainNtsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-plain-nts-'));
  const cert = await makeCertificate(dir).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  const requests: Buffer[] = [];
  const udp: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const ntpPort = udp.address().port;
  const ke: Server = createServer(
    { key: readFileSync(cert.keyPath), cert: cert.certPem, ALPNProtocols: ['ntske/1'] },
    (socket) => {
      socket.on('error', () => undefined);
      let got = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (!parseKeRecords(got).complete) return;
        socket.end(
          encodeKeRecords([
            { critical: true, type: R.nextProtocol, body: uint16Body(0) },
            { critical: true, type: R.aeadAlgorithm, body: uint16Body(15) },
            { critical: true, type: R.ntpPort, body: uint16Body(ntpPort) },
            ...Array.from({ length: 8 }, () => ({
              critical: false,
              type: R.newCookie,
              body: new Uint8Array(64).fill(3),
            })),
            { critical: true, type: R.endOfMessage, body: new Uint8Array(0) },
          ]),
        );
      });
    },
  );
  ke.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => ke.listen(0, '127.0.0.1', resolve));
  const server: PlainNtsServer = {
    kePort: (ke.address() as AddressInfo).port,
    ntpPort,
    ca: cert.certPem,
    dir,
    requests,
    silent: false,
    nextRequest: () =>
      new Promise<RemoteInfo>((resolve) => udp.once('message', (_msg, rinfo) => resolve(rinfo))),
    close: async () => {
      await new Promise<void>((resolve) => ke.close(() => resolve()));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // A correct reply to the header, and nothing of NTS.
  udp.on('message', (msg, rinfo) => {
    requests.push(msg);
    if (server.silent) return;
    const request = decodeNtpPacket(msg);
    const now = epochMsToNtp(Date.now());
    const reply = encodeNtpPacket({
      version: 4,
      mode: 4,
      stratum: 2,
      precision: -20,
      originTimestamp: request.transmitTimestamp,
      receiveTimestamp: now,
      transmitTimestamp: now,
    });
    udp.send(reply, rinfo.port, rinfo.address);
  });
  return server;
}
