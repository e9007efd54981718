/**
 * queryNts without chronyd, against test/support/plain-nts-server.ts: a TLS
 * NTS-KE server that negotiates the port of a plain UDP responder. A plain NTP server behind a valid key
 * exchange is never accepted (no downgrade): every reply is refused as
 * `nts-unauthenticated` and the query fails with that refusal. A silent server
 * times out, a signal aborts, bad options are refused before any I/O, and a
 * datagram from another address is reported and ignored.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  InvalidArgumentError,
  NtpRejectedError,
  NtpTimeoutError,
} from '../../../src/errors.js';
import { NtsRejectedError } from '../../../src/ntp/nts/errors.js';
import { queryNts } from '../../../src/ntp/nts/exchange.js';
import { ntsKeyExchange } from '../../../src/ntp/nts/ke.js';
import { NtsSession } from '../../../src/ntp/nts/session.js';
import { locateOpenssl } from '../../integration/helpers/nts-server.js';
import { startPlainNtsServer, type PlainNtsServer } from '../../support/plain-nts-server.js';
import { catchRejection } from '../../support/errors.js';

const openssl = locateOpenssl();

describe.skipIf(openssl === undefined)('queryNts', () => {
  let server: PlainNtsServer;
  let ca: string;
  let kePort = 0;
  let stranger: Socket;

  beforeAll(async () => {
    server = await startPlainNtsServer();
    ({ ca, kePort } = server);
    stranger = createSocket('udp4');
    await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await server?.close();
    await new Promise<void>((resolve) => stranger?.close(() => resolve()));
  });

  /** A session from the key exchange, so that the timed part below is the NTP exchange alone. */
  const session = async (): Promise<NtsSession> =>
    new NtsSession(await ntsKeyExchange({ host: '127.0.0.1', port: kePort, ca }));

  it('never accepts a plain NTP reply in place of NTS: refused as nts-unauthenticated', async () => {
    server.silent = false;
    // Every reply is reported and ignored; the first refusal ends this run.
    const refusals: NtpRejectedError[] = [];
    const ac = new AbortController();
    const first = await catchRejection(
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
    const error = await catchRejection(
      queryNts({ host: '127.0.0.1', port: kePort, ca, session: await session(), timeoutMs: 1000 }),
    );
    expect(error).toBeInstanceOf(NtsRejectedError);
    expect((error as NtsRejectedError).reason).toBe('nts-unauthenticated');
  });

  it('times out on a silent NTP server', async () => {
    server.silent = true;
    const error = await catchRejection(
      queryNts({ host: '127.0.0.1', port: kePort, ca, session: await session(), timeoutMs: 500 }),
    );
    expect(error).toBeInstanceOf(NtpTimeoutError);
    expect(error.message).toContain(`127.0.0.1:${server.ntpPort}`);
  });

  it('reports a datagram from another address and keeps waiting', async () => {
    server.silent = true;
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
    const { port } = await server.nextRequest();
    stranger.send(new Uint8Array(48), port, '127.0.0.1');
    expect(await catchRejection(pending)).toBeInstanceOf(AbortError);
    expect(refusals.map((e) => e.reason)).toEqual(['unexpected-address']);
  });

  it('aborts on its signal, and refuses bad options before any I/O', async () => {
    server.silent = true;
    const ac = new AbortController();
    const pending = queryNts({ host: '127.0.0.1', port: kePort, ca, signal: ac.signal });
    ac.abort(new Error('stop'));
    expect(await catchRejection(pending)).toBeInstanceOf(AbortError);
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
