/**
 * queryNts without chronyd: a TLS NTS-KE server written here negotiates the
 * port of a UDP responder written here. A plain NTP server behind a valid key
 * exchange is never accepted (no downgrade): every reply is refused as
 * `nts-unauthenticated` and the query fails with that refusal. A silent server
 * times out, a signal aborts, bad options are refused before any I/O, and a
 * datagram from another address is reported and ignored.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  InvalidArgumentError,
  NtpRejectedError,
  NtpTimeoutError,
} from '../../../src/errors.js';
import { epochMsToNtp } from '../../../src/ntp/era.js';
import { decodeNtpPacket, encodeNtpPacket } from '../../../src/ntp/packet.js';
import { NtsRejectedError } from '../../../src/ntp/nts/errors.js';
import { queryNts } from '../../../src/ntp/nts/exchange.js';
import { ntsKeyExchange } from '../../../src/ntp/nts/ke.js';
import { NtsSession } from '../../../src/ntp/nts/session.js';
import {
  NtsKeRecordType as R,
  encodeKeRecords,
  parseKeRecords,
  uint16Body,
} from '../../../src/ntp/nts/ke-records.js';
import { locateOpenssl, makeCertificate } from '../../integration/helpers/nts-server.js';

const openssl = locateOpenssl();

describe.skipIf(openssl === undefined)('queryNts', () => {
  let dir: string;
  let ca: string;
  let ke: Server;
  let kePort = 0;
  let udp: Socket;
  let behaviour: 'plain' | 'silent' = 'plain';
  let stranger: Socket;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chronobound-nts-exchange-'));
    const cert = await makeCertificate(dir);
    ca = cert.certPem;

    // A plain NTP responder: a correct reply to the header, and nothing of NTS.
    udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    udp.on('message', (msg, rinfo) => {
      if (behaviour === 'silent') return;
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
    stranger = createSocket('udp4');
    await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.1', resolve));

    const ntpPort = udp.address().port;
    ke = createServer(
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
    await new Promise<void>((resolve) => ke.listen(0, '127.0.0.1', resolve));
    kePort = (ke.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => ke?.close(() => resolve()));
    await new Promise<void>((resolve) => udp?.close(() => resolve()));
    await new Promise<void>((resolve) => stranger?.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function failure(promise: Promise<unknown>): Promise<Error> {
    try {
      await promise;
    } catch (e) {
      return e as Error;
    }
    throw new Error('expected queryNts to fail');
  }

  /** A session from the key exchange, so that the timed part below is the NTP exchange alone. */
  const session = async (): Promise<NtsSession> =>
    new NtsSession(await ntsKeyExchange({ host: '127.0.0.1', port: kePort, ca }));

  it('never accepts a plain NTP reply in place of NTS: refused as nts-unauthenticated', async () => {
    behaviour = 'plain';
    // Every reply is reported and ignored; the first refusal ends this run.
    const refusals: NtpRejectedError[] = [];
    const ac = new AbortController();
    const first = await failure(
      queryNts({
        host: '127.0.0.1',
        port: kePort,
        ca,
        timeoutMs: 20_000,
        signal: ac.signal,
        onRejected: (e) => {
          refusals.push(e);
          ac.abort();
        },
      }),
    );
    expect(first).toBeInstanceOf(AbortError);
    expect(refusals.map((e) => e.reason)).toEqual(['nts-unauthenticated']);
    expect(refusals[0]).toBeInstanceOf(NtsRejectedError);
    // Left to its timeout, the query fails with the refusal, not a timeout.
    const error = await failure(
      queryNts({ host: '127.0.0.1', port: kePort, ca, session: await session(), timeoutMs: 1000 }),
    );
    expect(error).toBeInstanceOf(NtsRejectedError);
    expect((error as NtsRejectedError).reason).toBe('nts-unauthenticated');
  });

  it('times out on a silent NTP server', async () => {
    behaviour = 'silent';
    const error = await failure(
      queryNts({ host: '127.0.0.1', port: kePort, ca, session: await session(), timeoutMs: 500 }),
    );
    expect(error).toBeInstanceOf(NtpTimeoutError);
    expect(error.message).toContain(`127.0.0.1:${udp.address().port}`);
  });

  it('reports a datagram from another address and keeps waiting', async () => {
    behaviour = 'silent';
    const refusals: NtpRejectedError[] = [];
    const ac = new AbortController();
    const pending = queryNts({
      host: '127.0.0.1',
      port: kePort,
      ca,
      timeoutMs: 10_000,
      signal: ac.signal,
      onRejected: (e) => {
        refusals.push(e);
        ac.abort();
      },
    });
    // Our request reaches the silent server; answer it from a stranger's socket.
    const seen = new Promise<{ port: number }>((resolve) =>
      udp.once('message', (_msg, rinfo) => resolve(rinfo)),
    );
    const { port } = await seen;
    stranger.send(new Uint8Array(48), port, '127.0.0.1');
    expect(await failure(pending)).toBeInstanceOf(AbortError);
    expect(refusals.map((e) => e.reason)).toEqual(['unexpected-address']);
  });

  it('aborts on its signal, and refuses bad options before any I/O', async () => {
    behaviour = 'silent';
    const ac = new AbortController();
    const pending = queryNts({ host: '127.0.0.1', port: kePort, ca, signal: ac.signal });
    ac.abort(new Error('stop'));
    expect(await failure(pending)).toBeInstanceOf(AbortError);
    await expect(queryNts({ host: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(queryNts({ host: 'x', port: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(queryNts({ host: 'x', timeoutMs: -1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(queryNts({ host: 'x', maxKeyExchanges: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});
