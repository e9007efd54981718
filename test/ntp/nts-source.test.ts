/**
 * `ntpSource` with NTS servers, without chronyd: the TLS NTS-KE server of
 * test/support/plain-nts-server.ts negotiates the port of a plain UDP NTP
 * responder (it answers the header and ignores NTS). The source runs the key exchange, sends
 * NTS-protected requests (through the injected transport), and refuses every
 * plain reply as `nts-unauthenticated`: no downgrade, no sample. A key exchange
 * that fails (nothing listening; an untrusted certificate) is a problem named
 * `nts-ke`, and nothing is sent over NTP at all. Server entries in object form
 * are validated. `NtpSocket.query`'s `authenticate` hook is exercised on its own
 * against the loopback NTP server.
 */
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NtpRejectedError, NtpTimeoutError } from '../../src/errors.js';
import { NtpSocket } from '../../src/ntp/ntp-socket.js';
import { NtsRejectedError } from '../../src/ntp/nts/errors.js';
import { ntpSource } from '../../src/ntp/source.js';
import type { SourceProblem } from '../../src/sources/types.js';
import { createNtpServer } from '../../src/testing/node/index.js';
import { TrueClock } from '../../src/truetime/true-clock.js';
import { locateOpenssl, makeCertificate } from '../integration/helpers/nts-server.js';
import { startPlainNtsServer, type PlainNtsServer } from '../support/plain-nts-server.js';
import { recordingUdpTransport } from '../support/recording-transport.js';
import { suiteFixture } from '../support/suite-fixture.js';
import { until } from './_helpers.js';

const openssl = locateOpenssl();

describe('ntpSource server entries in object form', () => {
  it('accepts strings and objects side by side, NTS defaulting to port 4460', () => {
    const source = ntpSource({
      servers: ['127.0.0.1:11123', { host: '127.0.0.2' }, { host: '127.0.0.3', nts: true }],
    });
    expect(source.servers().map((s) => s.server)).toEqual([
      '127.0.0.1:11123',
      '127.0.0.2:123',
      '127.0.0.3:4460',
    ]);
    void source.close();
  });

  it('refuses malformed entries, naming them', () => {
    const bad: unknown[] = [
      { host: '' },
      { host: 'a b' },
      { host: 'x', port: 0 },
      { host: 'x', port: 70000, nts: true },
      { host: 'x', nts: false },
      { host: 'x', nts: { ca: 42 } },
      null,
      42,
    ];
    for (const entry of bad) {
      expect(() => ntpSource({ servers: [entry as string] }), JSON.stringify(entry)).toThrow(
        InvalidArgumentError,
      );
    }
    expect(() =>
      ntpSource({ servers: [{ host: '127.0.0.1', nts: true }, '127.0.0.1:4460'] }),
    ).toThrow(/each server listed once/);
  });
});

describe.skipIf(openssl === undefined)('ntpSource with an NTS server', () => {
  let server: PlainNtsServer;
  let ca: string;
  let otherCa: string;
  let kePort = 0;

  beforeAll(async () => {
    server = await startPlainNtsServer();
    ({ ca, kePort } = server);
    otherCa = (await makeCertificate(server.dir, { name: 'other' })).certPem;
  });

  afterAll(async () => {
    await server?.close();
  });

  it('sends NTS-protected requests and refuses plain replies (no downgrade): unsynchronized', async () => {
    server.requests.length = 0;
    const transport = recordingUdpTransport();
    const source = ntpSource({
      servers: [{ host: '127.0.0.1', port: kePort, nts: { ca } }],
      transport,
      initialBurst: 1,
      timeoutMs: 10_000,
    });
    const clock = new TrueClock({ source, watchdogIntervalMs: 0 });
    try {
      await until(() => clock.lastProblem?.reason === 'nts-unauthenticated', 20_000);
      const refused = clock.lastProblem as SourceProblem;
      expect(refused.error).toBeInstanceOf(NtsRejectedError);
      expect(refused.message).toMatch(/not NTS|not authenticated/);
      // What went out carried NTS extension fields (header + UID + cookie + … + authenticator).
      expect(transport.sent.length).toBeGreaterThan(0);
      expect(transport.sent.every((d) => d.length > 48)).toBe(true);
      expect(server.requests.length).toBeGreaterThan(0);
      expect(clock.now().status).toBe('unsynchronized');
      expect(source.servers()[0]?.lastRejection?.reason).toMatch(/^nts-/);
    } finally {
      await clock.close();
    }
  });

  it('a failed key exchange (untrusted certificate; nothing listening) is a problem, and nothing is sent', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    for (const [server, pattern] of [
      [{ host: '127.0.0.1', port: kePort, nts: { ca: otherCa } }, /certificate is not trusted/],
      [
        { host: '127.0.0.1', port: deadPort, nts: { ca } },
        new RegExp(`127\\.0\\.0\\.1:${deadPort}`),
      ],
    ] as const) {
      const transport = recordingUdpTransport();
      const source = ntpSource({ servers: [server], transport, timeoutMs: 10_000 });
      const clock = new TrueClock({ source, watchdogIntervalMs: 0 });
      try {
        await until(() => clock.lastProblem?.reason === 'nts-ke', 20_000);
        expect(clock.lastProblem?.message).toMatch(pattern);
        expect(clock.now().status).toBe('unsynchronized');
        expect(transport.sent).toEqual([]);
        expect(source.servers()[0]?.state).toBe('rejected');
      } finally {
        await clock.close();
      }
    }
  });
});

describe('NtpSocket.query with an authenticate hook', () => {
  const ntp = suiteFixture(createNtpServer);

  it('sends what build returns and validates the header verify returns', async () => {
    const socket = new NtpSocket();
    const seen: { request: Uint8Array; reply: Uint8Array }[] = [];
    try {
      const x = await socket.query({
        host: '127.0.0.1',
        port: ntp().port,
        timeoutMs: 10_000,
        authenticate: {
          build: (header) => header,
          verify: (reply, request) => {
            seen.push({ request, reply });
            return reply.subarray(0, 48);
          },
        },
      });
      expect(seen).toHaveLength(1);
      expect(x.stratum).toBeGreaterThan(0);
    } finally {
      await socket.close();
    }
  });

  it('a refusal by verify is reported; an nts-nak ends the exchange at once and abandons it', async () => {
    const socket = new NtpSocket();
    const reported: NtpRejectedError[] = [];
    let abandoned = 0;
    try {
      const started = performance.now();
      const error = await socket
        .query({
          host: '127.0.0.1',
          port: ntp().port,
          timeoutMs: 30_000,
          onRejected: (e) => reported.push(e),
          authenticate: {
            build: (header) => header,
            verify: () => {
              throw new NtsRejectedError('x', 'nts-nak', 'NTS NAK');
            },
            abandon: () => abandoned++,
          },
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NtsRejectedError);
      expect((error as NtsRejectedError).reason).toBe('nts-nak');
      expect(performance.now() - started).toBeLessThan(30_000);
      expect(reported.map((e) => e.reason)).toEqual(['nts-nak']);
      expect(abandoned).toBe(1);
    } finally {
      await socket.close();
    }
  });

  it('abandons on timeout, and refuses a hook without verify or with version 3', async () => {
    const socket = new NtpSocket();
    let abandoned = 0;
    try {
      const silent = await createNtpServer();
      const port = silent.port;
      await silent.close();
      const error = await socket
        .query({
          host: '127.0.0.1',
          port,
          timeoutMs: 200,
          authenticate: {
            build: (header) => header,
            verify: (reply) => reply.subarray(0, 48),
            abandon: () => abandoned++,
          },
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NtpTimeoutError);
      expect(abandoned).toBe(1);
      await expect(
        socket.query({
          host: '127.0.0.1',
          port: ntp().port,
          authenticate: { build: (h: Uint8Array) => h } as never,
        }),
      ).rejects.toThrow(InvalidArgumentError);
      await expect(
        socket.query({
          host: '127.0.0.1',
          port: ntp().port,
          version: 3,
          authenticate: { build: (h) => h, verify: (r) => r },
        }),
      ).rejects.toThrow(InvalidArgumentError);
    } finally {
      await socket.close();
    }
  });
});
