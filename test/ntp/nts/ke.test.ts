/**
 * The NTS-KE client: the record codec (round trip, incremental parsing, fuzz),
 * the response rules of RFC 8915 §4.1, and ntsKeyExchange over real TLS 1.3
 * against Node servers that misbehave one way each — plus the exported keys,
 * which must equal what the server side exports with the RFC 8915 §5.1 contexts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type TLSSocket, type TlsOptions } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError } from '../../../src/errors.js';
import {
  NtsKeAlpnError,
  NtsKeConnectionError,
  NtsKeCriticalRecordError,
  NtsKeNegotiationError,
  NtsKeNoCookiesError,
  NtsKeProtocolError,
  NtsKeServerError,
  NtsKeTimeoutError,
  NtsKeTlsError,
  NtsKeyExchangeError,
} from '../../../src/ntp/nts/errors.js';
import { encodeKeRequest, interpretKeResponse } from '../../../src/ntp/nts/ke-messages.js';
import { NTS_EXPORTER_LABEL, ntsExporterContext, ntsKeyExchange } from '../../../src/ntp/nts/ke.js';
import {
  NtsKeRecordType as R,
  encodeKeRecords,
  parseKeRecords,
  uint16Body,
  type NtsKeRecord,
} from '../../../src/ntp/nts/ke-records.js';
import { fcParams } from '../../support/fc.js';
import {
  locateOpenssl,
  makeCertificate,
  type Certificate,
} from '../../integration/helpers/nts-server.js';
import { catchRejection } from '../../support/errors.js';

const eom: NtsKeRecord = { critical: true, type: R.endOfMessage, body: new Uint8Array(0) };
const ntpv4: NtsKeRecord = { critical: true, type: R.nextProtocol, body: uint16Body(0) };
const siv: NtsKeRecord = { critical: true, type: R.aeadAlgorithm, body: uint16Body(15) };
const cookie = (n = 0, length = 96): NtsKeRecord => ({
  critical: false,
  type: R.newCookie,
  body: new Uint8Array(length).fill(n),
});
const goodResponse = (): NtsKeRecord[] => [
  ntpv4,
  siv,
  ...Array.from({ length: 8 }, (_, i) => cookie(i)),
  eom,
];

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('NTS-KE records (RFC 8915 §4)', () => {
  it('the request is Next Protocol NTPv4, AEAD 15 and End of Message, all critical', () => {
    expect(Array.from(encodeKeRequest())).toEqual([
      0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x80, 0x04, 0x00, 0x02, 0x00, 0x0f, 0x80, 0x00, 0x00,
      0x00,
    ]);
  });

  it('the exporter contexts are protocol 0x0000, AEAD 0x000F, then 00 (C2S) / 01 (S2C)', () => {
    expect(Array.from(ntsExporterContext('c2s'))).toEqual([0, 0, 0, 15, 0]);
    expect(Array.from(ntsExporterContext('s2c'))).toEqual([0, 0, 0, 15, 1]);
    expect(NTS_EXPORTER_LABEL).toBe('EXPORTER-network-time-security');
  });

  const record = fc.record({
    critical: fc.boolean(),
    type: fc.integer({ min: 1, max: 0x7fff }),
    body: fc.uint8Array({ maxLength: 64 }),
  });

  it('round-trips, and a message split anywhere parses as a prefix until End of Message', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 8 }), fc.nat(), (records, split) => {
        const bytes = encodeKeRecords([...records, eom]);
        const whole = parseKeRecords(bytes);
        expect(whole.complete).toBe(true);
        expect(whole.consumed).toBe(bytes.length);
        expect(whole.records.length).toBe(records.length + 1);
        whole.records.slice(0, -1).forEach((r, i) => {
          expect(r.critical).toBe(records[i]!.critical);
          expect(r.type).toBe(records[i]!.type);
          expect(Array.from(r.body)).toEqual(Array.from(records[i]!.body));
        });
        const cut = split % bytes.length;
        const part = parseKeRecords(bytes.subarray(0, cut));
        expect(part.complete).toBe(false);
        expect(part.consumed).toBeLessThanOrEqual(cut);
      }),
      fcParams(300),
    );
  });

  it('fuzz: parseKeRecords never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const parsed = parseKeRecords(bytes);
        expect(parsed.consumed).toBeLessThanOrEqual(bytes.length);
      }),
      fcParams(5000),
    );
  });

  it('fuzz: interpreting any parsed records throws only NtsKeyExchangeError', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 12 }), fc.boolean(), (records, withEom) => {
        const types = records.map((r) => ({ ...r, type: r.type % 9 }));
        try {
          interpretKeResponse(withEom ? [...types, eom] : types, 'x:4460');
        } catch (e) {
          expect(e).toBeInstanceOf(NtsKeyExchangeError);
        }
      }),
      fcParams(5000),
    );
  });
});

describe('interpretKeResponse (RFC 8915 §4.1)', () => {
  it('takes cookies (at most 8), negotiated server and port, and reports warnings', () => {
    const r = interpretKeResponse(
      [
        ntpv4,
        siv,
        { critical: true, type: R.ntpServer, body: Buffer.from('ntp.example') },
        { critical: true, type: R.ntpPort, body: uint16Body(1123) },
        { critical: true, type: R.warning, body: uint16Body(7) },
        { critical: false, type: 0x4000, body: new Uint8Array(3) }, // unknown, not critical: ignored
        ...Array.from({ length: 10 }, (_, i) => cookie(i)),
        eom,
      ],
      's:4460',
    );
    expect(r.cookies.length).toBe(8);
    expect(r.cookies[0]![0]).toBe(0);
    expect(r.ntpServer).toBe('ntp.example');
    expect(r.ntpPort).toBe(1123);
    expect(r.warnings).toEqual([7]);
  });

  const cases: Array<[string, NtsKeRecord[], new (...a: never[]) => Error, RegExp]> = [
    [
      'an Error record',
      [{ critical: true, type: R.error, body: uint16Body(1) }, eom],
      NtsKeServerError,
      /Error record 1 \(Bad Request\)/,
    ],
    [
      'an unknown critical record',
      [ntpv4, siv, cookie(), { critical: true, type: 0x1234, body: new Uint8Array(0) }, eom],
      NtsKeCriticalRecordError,
      /critical record \(type 4660\)/,
    ],
    ['no cookies', [ntpv4, siv, eom], NtsKeNoCookiesError, /no usable cookie/],
    [
      'only unusable cookies',
      [ntpv4, siv, cookie(1, 6), cookie(2, 0), eom],
      NtsKeNoCookiesError,
      /2 unusable/,
    ],
    [
      'no agreed AEAD (empty AEAD record)',
      [ntpv4, { ...siv, body: new Uint8Array(0) }, cookie(), eom],
      NtsKeNegotiationError,
      /AEAD.*none/,
    ],
    [
      'an AEAD that was not offered',
      [ntpv4, { ...siv, body: uint16Body(30) }, cookie(), eom],
      NtsKeNegotiationError,
      /chose 30/,
    ],
    ['no AEAD record', [ntpv4, cookie(), eom], NtsKeNegotiationError, /no AEAD/],
    [
      'no agreed protocol',
      [{ ...ntpv4, body: new Uint8Array(0) }, eom],
      NtsKeNegotiationError,
      /next protocol.*none/,
    ],
    [
      'a Next Protocol record without the critical bit',
      [{ ...ntpv4, critical: false }, siv, cookie(), eom],
      NtsKeProtocolError,
      /critical bit/,
    ],
    ['two AEAD records', [ntpv4, siv, siv, cookie(), eom], NtsKeProtocolError, /more than one/],
    [
      'a bad port',
      [ntpv4, siv, cookie(), { critical: true, type: R.ntpPort, body: new Uint8Array(3) }, eom],
      NtsKeProtocolError,
      /Port Negotiation/,
    ],
    [
      'a server name with a space',
      [ntpv4, siv, cookie(), { critical: true, type: R.ntpServer, body: Buffer.from('a b') }, eom],
      NtsKeProtocolError,
      /printable host name/,
    ],
    ['no End of Message', [ntpv4, siv, cookie()], NtsKeProtocolError, /no End of Message/],
  ];
  for (const [name, records, type, message] of cases) {
    it(`refuses ${name}`, () => {
      const error = thrown(() => interpretKeResponse(records, 'time.example:4460'));
      expect(error).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/time\.example:4460/);
    });
  }
});

const openssl = locateOpenssl();

describe.skipIf(openssl === undefined)('ntsKeyExchange over TLS 1.3', () => {
  let dir: string;
  let cert: Certificate;
  let otherCa: Certificate;
  const servers: Array<{ close(): void }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chronobound-ke-'));
    cert = await makeCertificate(dir);
    otherCa = await makeCertificate(dir, { name: 'other' });
  });
  afterAll(() => {
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  interface Fake {
    port: number;
    requests: Buffer[];
    serverKeys: Array<{ c2s: Buffer; s2c: Buffer }>;
  }

  /** A TLS server that answers each request with `respond` (raw bytes or nothing). */
  async function fakeServer(
    respond: (socket: TLSSocket) => void,
    tls: Partial<TlsOptions> = { ALPNProtocols: ['ntske/1'] },
  ): Promise<Fake> {
    const fake: Fake = { port: 0, requests: [], serverKeys: [] };
    const server = createServer(
      { key: readFileSync(cert.keyPath), cert: cert.certPem, ...tls },
      (socket) => {
        socket.on('error', () => undefined);
        fake.serverKeys.push({
          c2s: socket.exportKeyingMaterial(32, NTS_EXPORTER_LABEL, Buffer.from([0, 0, 0, 15, 0])),
          s2c: socket.exportKeyingMaterial(32, NTS_EXPORTER_LABEL, Buffer.from([0, 0, 0, 15, 1])),
        });
        let got = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          got = Buffer.concat([got, chunk]);
          if (parseKeRecords(got).complete) {
            fake.requests.push(got);
            respond(socket);
          }
        });
      },
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake.port = (server.address() as AddressInfo).port;
    servers.push(server);
    return fake;
  }

  const reply =
    (records: NtsKeRecord[], extra?: Uint8Array) =>
    (socket: TLSSocket): void => {
      socket.end(
        extra ? Buffer.concat([encodeKeRecords(records), extra]) : encodeKeRecords(records),
      );
    };

  it('derives the same C2S/S2C keys as the server and takes cookies, server and port', async () => {
    const fake = await fakeServer(
      reply([
        ntpv4,
        siv,
        { critical: true, type: R.ntpPort, body: uint16Body(11123) },
        { critical: true, type: R.ntpServer, body: Buffer.from('127.0.0.2') },
        ...goodResponse().slice(2),
      ]),
    );
    const ke = await ntsKeyExchange({ host: '127.0.0.1', port: fake.port, ca: cert.certPem });
    expect(Buffer.from(fake.requests[0]!).equals(Buffer.from(encodeKeRequest()))).toBe(true);
    expect(Buffer.from(ke.c2sKey).equals(fake.serverKeys[0]!.c2s)).toBe(true);
    expect(Buffer.from(ke.s2cKey).equals(fake.serverKeys[0]!.s2c)).toBe(true);
    expect(Buffer.from(ke.c2sKey).equals(Buffer.from(ke.s2cKey))).toBe(false);
    expect(ke.cookies.length).toBe(8);
    expect(ke.ntpHost).toBe('127.0.0.2');
    expect(ke.ntpPort).toBe(11123);
    expect(ke.aeadAlgorithm).toBe(15);
    expect(ke.server).toBe(`127.0.0.1:${fake.port}`);
  });

  it('defaults to the key-exchange host and port 123; accepts the CA as bytes and a servername', async () => {
    const fake = await fakeServer(reply(goodResponse()));
    const ke = await ntsKeyExchange({
      host: '127.0.0.1',
      port: fake.port,
      ca: new Uint8Array(Buffer.from(cert.certPem)),
      servername: 'localhost',
    });
    expect(ke.ntpHost).toBe('127.0.0.1');
    expect(ke.ntpPort).toBe(123);
  });

  it('refuses a certificate from another CA, and one not in the system store', async () => {
    const fake = await fakeServer(reply(goodResponse()));
    for (const ca of [otherCa.certPem, undefined]) {
      const error = await catchRejection(
        ntsKeyExchange({ host: '127.0.0.1', port: fake.port, ...(ca ? { ca } : {}) }),
      );
      expect(error).toBeInstanceOf(NtsKeTlsError);
      expect((error as NtsKeTlsError).certificate).toBe(true);
      expect((error as NtsKeTlsError).code).toBe('NTS_KE_TLS');
      expect(error.message).toMatch(/certificate is not trusted/);
    }
    expect(fake.requests.length, 'nothing was sent to an unverified server').toBe(0);
  });

  it('refuses a certificate not issued for the name asked for', async () => {
    const fake = await fakeServer(reply(goodResponse()));
    const error = await catchRejection(
      ntsKeyExchange({
        host: '127.0.0.1',
        port: fake.port,
        ca: cert.certPem,
        servername: 'time.example',
      }),
    );
    expect(error).toBeInstanceOf(NtsKeTlsError);
    expect((error as NtsKeTlsError).tlsCode).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect((error as NtsKeTlsError).certificate).toBe(true);
  });

  it('refuses a server that negotiates no ALPN, or another protocol', async () => {
    const none = await fakeServer(reply(goodResponse()), {});
    const e1 = await catchRejection(
      ntsKeyExchange({ host: '127.0.0.1', port: none.port, ca: cert.certPem }),
    );
    expect(e1).toBeInstanceOf(NtsKeAlpnError);
    expect((e1 as NtsKeAlpnError).negotiated).toBe(false);
    const http = await fakeServer(reply(goodResponse()), { ALPNProtocols: ['http/1.1'] });
    const e2 = await catchRejection(
      ntsKeyExchange({ host: '127.0.0.1', port: http.port, ca: cert.certPem }),
    );
    expect(e2).toBeInstanceOf(NtsKeAlpnError);
    expect(e2.message).toMatch(/ntske\/1/);
  });

  it('refuses TLS 1.2', async () => {
    const old = await fakeServer(reply(goodResponse()), {
      ALPNProtocols: ['ntske/1'],
      maxVersion: 'TLSv1.2',
    });
    const error = await catchRejection(
      ntsKeyExchange({ host: '127.0.0.1', port: old.port, ca: cert.certPem }),
    );
    expect(error).toBeInstanceOf(NtsKeTlsError);
    expect((error as NtsKeTlsError).certificate).toBe(false);
  });

  it('reports an Error record, an unknown critical record, missing cookies and no AEAD', async () => {
    const expectations: Array<[NtsKeRecord[], new (...a: never[]) => Error]> = [
      [[{ critical: true, type: R.error, body: uint16Body(2) }, eom], NtsKeServerError],
      [
        [ntpv4, siv, cookie(), { critical: true, type: 99, body: new Uint8Array(0) }, eom],
        NtsKeCriticalRecordError,
      ],
      [[ntpv4, siv, eom], NtsKeNoCookiesError],
      [[ntpv4, { ...siv, body: new Uint8Array(0) }, eom], NtsKeNegotiationError],
    ];
    for (const [records, type] of expectations) {
      const fake = await fakeServer(reply(records));
      const error = await catchRejection(
        ntsKeyExchange({ host: '127.0.0.1', port: fake.port, ca: cert.certPem }),
      );
      expect(error).toBeInstanceOf(type);
    }
  });

  it('refuses data after End of Message, a response cut short, and an oversized one', async () => {
    const after = await fakeServer(reply(goodResponse(), Uint8Array.of(1, 2, 3)));
    expect(
      await catchRejection(
        ntsKeyExchange({ host: '127.0.0.1', port: after.port, ca: cert.certPem }),
      ),
    ).toBeInstanceOf(NtsKeProtocolError);
    const cut = await fakeServer((s) => s.end(encodeKeRecords([ntpv4, siv, cookie()])));
    const e2 = await catchRejection(
      ntsKeyExchange({ host: '127.0.0.1', port: cut.port, ca: cert.certPem }),
    );
    expect(e2).toBeInstanceOf(NtsKeProtocolError);
    expect(e2.message).toMatch(/before End of Message/);
    const flood = await fakeServer((s) => {
      s.write(encodeKeRecords(Array.from({ length: 200 }, () => cookie(1, 100))));
    });
    const e3 = await catchRejection(
      ntsKeyExchange({
        host: '127.0.0.1',
        port: flood.port,
        ca: cert.certPem,
        maxResponseBytes: 4096,
      }),
    );
    expect(e3).toBeInstanceOf(NtsKeProtocolError);
    expect(e3.message).toMatch(/exceeds 4096 bytes/);
  });

  it('times out on a silent server instead of hanging', async () => {
    const silent = await fakeServer(() => undefined);
    const started = performance.now();
    const error = await catchRejection(
      ntsKeyExchange({ host: '127.0.0.1', port: silent.port, ca: cert.certPem, timeoutMs: 1000 }),
    );
    expect(error).toBeInstanceOf(NtsKeTimeoutError);
    expect((error as NtsKeTimeoutError).timeoutMs).toBe(1000);
    expect(error.message).toMatch(/timed out after 1000 ms/);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('times out on a TCP server that never speaks TLS', async () => {
    const mute = createTcpServer(() => undefined);
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    servers.push(mute);
    const error = await catchRejection(
      ntsKeyExchange({
        host: '127.0.0.1',
        port: (mute.address() as AddressInfo).port,
        ca: cert.certPem,
        timeoutMs: 1000,
      }),
    );
    expect(error).toBeInstanceOf(NtsKeTimeoutError);
    expect(error.message).toMatch(/TLS handshake|connecting/);
  });

  it('reports a refused connection, and aborts on its signal', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await catchRejection(
      ntsKeyExchange({ host: '127.0.0.1', port, ca: cert.certPem }),
    );
    expect(error).toBeInstanceOf(NtsKeConnectionError);
    expect((error as NtsKeConnectionError).code).toBe('NTS_KE_CONNECTION');

    const silent = await fakeServer(() => undefined);
    const ac = new AbortController();
    const pending = ntsKeyExchange({
      host: '127.0.0.1',
      port: silent.port,
      ca: cert.certPem,
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(new Error('test')), 50);
    expect(await catchRejection(pending)).toBeInstanceOf(AbortError);
  });
});
