/**
 * NTS against a real chronyd 4.3 NTS server on loopback (self-signed certificate
 * from openssl; see helpers/nts-server.ts).
 *
 * - queryNts runs NTS-KE and one authenticated exchange whose interval contains
 *   chronyd's time — the host clock, since chronyd runs with -x and `local
 *   stratum 1` — and chronyd's own counters (`chronyc serverstats` over its Unix
 *   command socket) show the key exchange and the authenticated packet.
 * - A session is reused without a key exchange while it has cookies.
 * - A man-in-the-middle UDP relay between client and chronyd flips one bit of
 *   a reply, replays an earlier reply, or strips the NTS fields: refused every
 *   time, each with its reason, while chronyd's counters show it did answer.
 *   Corrupting the cookie of a request makes chronyd send a real NTS NAK: the
 *   client drops its cookies, runs NTS-KE again and succeeds.
 * - The wrong CA (or none: the system store) fails NTS-KE with NtsKeTlsError.
 *
 * Nothing sleeps a fixed time: every wait is for an event, with a generous timeout.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, NtpRejectedError, TrueClock } from '../../src/index.js';
import {
  NtsKeTlsError,
  NtsRejectedError,
  NtsSession,
  ntsKeyExchange,
  parseExtensionFields,
  queryNts,
  type NtsRejectionReason,
} from '../../src/ntp/nts/index.js';
import { ntpSource } from '../../src/ntp/index.js';
import { locateChronyc, locateChronyd } from './helpers/chronyd.js';
import {
  locateOpenssl,
  makeCertificate,
  startNtsServer,
  type NtsServerHandle,
} from './helpers/nts-server.js';
import { tightestWallCalibration } from '../support/host-clocks.js';

// Each throws under CI when missing: there it is a failure, never a skip.
const available =
  locateChronyd() !== undefined && locateChronyc() !== undefined && locateOpenssl() !== undefined;
if (!available) console.warn('chronyd/chronyc/openssl not installed: skipping the NTS tests.');

/** Resolves once `condition()` holds, checking every 20 ms; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

type Transform = (datagram: Buffer) => Buffer[];

/** A UDP relay between the client and chronyd that can rewrite, drop or swap datagrams. */
interface Relay {
  readonly port: number;
  /** Rewrites a request before it goes to chronyd (default: unchanged). */
  onRequest: Transform;
  /** Rewrites a reply before it goes to the client (default: unchanged). */
  onReply: Transform;
  /** Every genuine reply chronyd sent through the relay. */
  readonly replies: Buffer[];
  close(): Promise<void>;
}

const unchanged: Transform = (d) => [d];

async function startRelay(upstreamPort: number): Promise<Relay> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let client: RemoteInfo | undefined;
  const relay: Relay = {
    port: socket.address().port,
    onRequest: unchanged,
    onReply: unchanged,
    replies: [],
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, rinfo) => {
    if (rinfo.port === upstreamPort) {
      relay.replies.push(Buffer.from(msg));
      if (client === undefined) return;
      for (const out of relay.onReply(Buffer.from(msg)))
        socket.send(out, client.port, client.address);
    } else {
      client = rinfo;
      for (const out of relay.onRequest(Buffer.from(msg)))
        socket.send(out, upstreamPort, '127.0.0.1');
    }
  });
  return relay;
}

function flipBit(datagram: Buffer, bit: number): Buffer {
  const copy = Buffer.from(datagram);
  copy[bit >> 3] = copy[bit >> 3]! ^ (1 << (7 - (bit & 7)));
  return copy;
}

describe.skipIf(!available)('NTS with a real chronyd 4.3 server', () => {
  let server: NtsServerHandle;
  let ca: string;
  const ke = (): { host: string; port: number; ca: string } => ({
    host: '127.0.0.1',
    port: server.kePort,
    ca,
  });

  beforeAll(async () => {
    server = await startNtsServer();
    ca = server.certificate.certPem;
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("queryNts: an authenticated exchange whose interval contains chronyd's time; chronyd counts it", async () => {
    const before = await server.serverStats();
    const x = await queryNts({ ...ke(), timeoutMs: 15_000 });
    const cal = tightestWallCalibration();
    const after = await server.serverStats();

    expect(x.authenticated).toBe(true);
    expect(x.keyExchanges).toBe(1);
    expect(x.server).toBe(`127.0.0.1:${server.ntpPort}`); // the port NTS-KE negotiated
    expect(x.session.ntpPort).toBe(server.ntpPort);
    expect(x.stratum).toBe(1);
    expect(x.cookiesReceived).toBe(1);
    expect(x.cookiesLeft).toBe(8);
    // chronyd -x serves the host clock: at T4 it read monotonicAt + cal.offsetMs (± cal.errorMs).
    const hostAtT4 = x.monotonicAt + cal.offsetMs;
    const serverAtT4 = x.monotonicAt + x.offsetMs;
    expect(
      Math.abs(serverAtT4 - hostAtT4),
      `server − host ${(serverAtT4 - hostAtT4).toFixed(4)} ms, bound ${x.errorMs.toFixed(4)} + ${cal.errorMs.toFixed(4)} ms`,
    ).toBeLessThanOrEqual(x.errorMs + cal.errorMs);

    expect(after.ntsKeConnectionsAccepted - before.ntsKeConnectionsAccepted).toBe(1);
    expect(after.authenticatedNtpPackets - before.authenticatedNtpPackets).toBe(1);
    console.info(
      `NTS exchange: offset from host clock ${(serverAtT4 - hostAtT4).toFixed(4)} ms, ` +
        `bound ±${x.errorMs.toFixed(4)} ms, delay ${x.delayMs.toFixed(4)} ms; serverstats ` +
        `NTS-KE accepted ${before.ntsKeConnectionsAccepted} → ${after.ntsKeConnectionsAccepted}, ` +
        `authenticated NTP ${before.authenticatedNtpPackets} → ${after.authenticatedNtpPackets}`,
    );
  });

  it('reuses a session: cookies are replenished and no key exchange runs while they last', async () => {
    const session = new NtsSession(await ntsKeyExchange(ke()));
    const before = await server.serverStats();
    for (let i = 0; i < 12; i++) {
      const x = await queryNts({ ...ke(), session, timeoutMs: 15_000 });
      expect(x.keyExchanges).toBe(0);
      expect(x.session).toBe(session);
      expect(x.cookiesLeft).toBe(8);
    }
    const after = await server.serverStats();
    expect(after.ntsKeConnectionsAccepted).toBe(before.ntsKeConnectionsAccepted);
    expect(after.authenticatedNtpPackets - before.authenticatedNtpPackets).toBe(12);
  });

  it('the wrong CA, or none (the system store), fails NTS-KE with NtsKeTlsError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chronobound-other-ca-'));
    try {
      const other = await makeCertificate(dir, { name: 'other' });
      const before = await server.serverStats();
      for (const options of [{ ca: other.certPem }, {}]) {
        let error: unknown;
        try {
          await queryNts({ host: '127.0.0.1', port: server.kePort, timeoutMs: 15_000, ...options });
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(NtsKeTlsError);
        const tls = error as NtsKeTlsError;
        expect(tls.code).toBe('NTS_KE_TLS');
        expect(tls.certificate).toBe(true);
        expect(tls.message).toMatch(/certificate is not trusted/);
        expect(tls.message).toContain(`127.0.0.1:${server.kePort}`);
      }
      const after = await server.serverStats();
      expect(after.authenticatedNtpPackets).toBe(before.authenticatedNtpPackets);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ntpSource with an NTS server: a TrueClock synchronizes, its interval contains the host time, chronyd counts NTS', async () => {
    const before = await server.serverStats();
    const source = ntpSource({
      servers: [{ host: '127.0.0.1', port: server.kePort, nts: { ca } }],
      initialBurst: 2,
      sampleSpacingMs: 50,
      timeoutMs: 10_000,
    });
    const clock = new TrueClock({ source });
    try {
      // Not ready(): on a loaded machine the first exchange's ε can exceed maxUncertaintyMs.
      await clock.whenTrusted({ timeoutMs: 20_000 });
      const t0 = Date.now();
      const r = clock.now();
      const t1 = Date.now();
      expect(r.status).toBe('synchronized');
      // chronyd -x serves the host clock; Date.now() floors to the millisecond.
      expect(r.earliest, `[${r.earliest}, ${r.latest}] vs host ${t0}..${t1}`).toBeLessThanOrEqual(
        t1 + 1,
      );
      expect(r.latest, `[${r.earliest}, ${r.latest}] vs host ${t0}..${t1}`).toBeGreaterThanOrEqual(
        t0,
      );
      const status = source.servers()[0];
      expect(status?.server).toBe(`127.0.0.1:${server.kePort}`);
      expect(status?.state).toBe('ok');
      // The exchange went to the NTP port the key exchange negotiated.
      expect(status?.lastExchange?.server).toBe(`127.0.0.1:${server.ntpPort}`);
      const after = await server.serverStats();
      expect(after.ntsKeConnectionsAccepted).toBeGreaterThan(before.ntsKeConnectionsAccepted);
      expect(after.authenticatedNtpPackets).toBeGreaterThan(before.authenticatedNtpPackets);
      console.info(
        `ntpSource over NTS: ε ${r.uncertaintyMs.toFixed(4)} ms; serverstats NTS-KE accepted ` +
          `${before.ntsKeConnectionsAccepted} → ${after.ntsKeConnectionsAccepted}, authenticated NTP ` +
          `${before.authenticatedNtpPackets} → ${after.authenticatedNtpPackets}`,
      );
    } finally {
      await clock.close();
    }
  });

  it('ntpSource with the wrong CA: no sample, the clock stays unsynchronized, lastProblem names the certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chronobound-other-ca-'));
    try {
      const other = await makeCertificate(dir, { name: 'other' });
      const before = await server.serverStats();
      const source = ntpSource({
        servers: [{ host: '127.0.0.1', port: server.kePort, nts: { ca: other.certPem } }],
        timeoutMs: 10_000,
      });
      const clock = new TrueClock({ source });
      try {
        await waitFor(
          () => clock.lastProblem?.reason === 'nts-ke',
          20_000,
          'the failed key exchange to be reported',
        );
        expect(clock.lastProblem?.message).toMatch(/certificate is not trusted/);
        expect(clock.lastProblem?.message).toContain(`127.0.0.1:${server.kePort}`);
        expect(clock.lastProblem?.error).toBeInstanceOf(NtsKeTlsError);
        expect(clock.now().status).toBe('unsynchronized');
        expect(source.servers()[0]?.lastExchange).toBeUndefined();
        await expect(clock.ready({ timeoutMs: 200 })).rejects.toThrow();
        const after = await server.serverStats();
        expect(after.authenticatedNtpPackets).toBe(before.authenticatedNtpPackets);
      } finally {
        await clock.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('through a man-in-the-middle relay', () => {
    let relay: Relay;
    let session: NtsSession;

    beforeAll(async () => {
      relay = await startRelay(server.ntpPort);
      session = new NtsSession(await ntsKeyExchange(ke()));
    });
    afterAll(async () => {
      await relay?.close();
    });

    /** One exchange through the relay that must succeed. */
    async function viaRelay(): ReturnType<typeof queryNts> {
      return queryNts({ ...ke(), session, ntpPort: relay.port, timeoutMs: 15_000 });
    }

    /**
     * One exchange through the relay whose reply must be refused: the first
     * refusal ends it (through its AbortSignal), so no test waits for a timeout.
     */
    async function refusedOnce(): Promise<NtpRejectedError> {
      const refusals: NtpRejectedError[] = [];
      const ac = new AbortController();
      let outcome: unknown;
      try {
        outcome = await queryNts({
          ...ke(),
          session,
          ntpPort: relay.port,
          timeoutMs: 15_000,
          signal: ac.signal,
          onRejected: (e) => {
            refusals.push(e);
            ac.abort(e);
          },
        });
      } catch (e) {
        outcome = e;
      }
      expect(outcome, 'a tampered reply must never be accepted').toBeInstanceOf(AbortError);
      expect(refusals.length).toBe(1);
      return refusals[0]!;
    }

    it('passes genuine replies through (the relay itself is transparent)', async () => {
      relay.onRequest = unchanged;
      relay.onReply = unchanged;
      const x = await viaRelay();
      expect(x.authenticated).toBe(true);
      expect(relay.replies.length).toBeGreaterThan(0);
    });

    it('refuses a reply with any one bit flipped, each time with its reason', async () => {
      /** Where things are in one reply (layouts differ: replies carry as many cookies as asked for). */
      interface Layout {
        readonly length: number;
        readonly uidAt: number;
        readonly uidLength: number;
        readonly authAt: number;
        readonly nonceAt: number;
        readonly nonceLength: number;
        readonly ciphertextAt: number;
        /** End of the ciphertext: chronyd pads a reply to its request's length, so padding may follow. */
        readonly paddingAt: number;
      }
      const layoutOf = (d: Buffer): Layout => {
        const fields = parseExtensionFields(d);
        const uid = fields.find((f) => f.type === 0x0104)!;
        const auth = fields.find((f) => f.type === 0x0404)!;
        const nonceLength = d.readUInt16BE(auth.offset + 4);
        const nonceAt = auth.offset + 8;
        const ciphertextAt = nonceAt + ((nonceLength + 3) & ~3);
        return {
          length: d.length,
          uidAt: uid.offset,
          uidLength: uid.length,
          authAt: auth.offset,
          nonceAt,
          nonceLength,
          ciphertextAt,
          paddingAt: ciphertextAt + d.readUInt16BE(auth.offset + 6),
        };
      };
      /** The reason a flip at `byte` must produce (undefined: a field header changed, any NTS reason). */
      const expected = (l: Layout, byte: number): NtsRejectionReason | undefined => {
        if (byte < 48) return 'nts-bad-tag'; // the header is associated data
        if (byte >= l.uidAt + 4 && byte < l.uidAt + l.uidLength) return 'nts-uid-mismatch';
        if (byte >= l.nonceAt && byte < l.nonceAt + l.nonceLength) return 'nts-bad-tag';
        if (byte >= l.ciphertextAt && byte < l.paddingAt) return 'nts-bad-tag';
        if (byte >= l.paddingAt) return 'nts-malformed'; // unauthenticated padding must be zero
        return undefined;
      };
      const targets: Array<[string, (l: Layout) => number]> = [
        ['leap/version/mode', () => 0],
        ['stratum', () => 1],
        ['poll', () => 2],
        ['precision', () => 3],
        ['reference ID', () => 12],
        ['origin timestamp', () => 24],
        ['origin timestamp (last byte)', () => 31],
        ['receive timestamp', () => 32],
        ['transmit timestamp', () => 40],
        ['transmit timestamp (last byte)', () => 47],
        ['Unique Identifier type', (l) => l.uidAt],
        ['Unique Identifier type (low byte)', (l) => l.uidAt + 1],
        ['Unique Identifier length', (l) => l.uidAt + 2],
        ['Unique Identifier length (low byte)', (l) => l.uidAt + 3],
        ['Unique Identifier (first byte)', (l) => l.uidAt + 4],
        ['Unique Identifier (last byte)', (l) => l.uidAt + l.uidLength - 1],
        ['authenticator type', (l) => l.authAt],
        ['authenticator type (low byte)', (l) => l.authAt + 1],
        ['authenticator length', (l) => l.authAt + 2],
        ['authenticator length (low byte)', (l) => l.authAt + 3],
        ['nonce length', (l) => l.authAt + 4],
        ['nonce length (low byte)', (l) => l.authAt + 5],
        ['ciphertext length', (l) => l.authAt + 6],
        ['ciphertext length (low byte)', (l) => l.authAt + 7],
        ['nonce (first byte)', (l) => l.nonceAt],
        ['nonce (last byte)', (l) => l.nonceAt + l.nonceLength - 1],
        ['tag (first byte)', (l) => l.ciphertextAt],
        ['tag (last byte)', (l) => l.ciphertextAt + 15],
        ['encrypted cookies (first byte)', (l) => l.ciphertextAt + 16],
        ['encrypted cookies (last byte)', (l) => l.paddingAt - 1],
        ['padding, or the last byte', (l) => Math.min(l.paddingAt, l.length - 1)],
        ...Array.from({ length: 16 }, (_, i): [string, (l: Layout) => number] => [
          `${i}/16 of the way`,
          (l) => Math.floor((l.length * i) / 16),
        ]),
      ];
      const authenticatedBefore = (await server.serverStats()).authenticatedNtpPackets;
      const seen = new Map<string, number>();
      for (const [i, [what, where]] of targets.entries()) {
        let flipped:
          { byte: number; bit: number; want: NtsRejectionReason | undefined } | undefined;
        relay.onReply = (d) => {
          const layout = layoutOf(d);
          const byte = where(layout);
          const bit = byte * 8 + (i % 8);
          flipped = { byte, bit, want: expected(layout, byte) };
          return [flipBit(d, bit)];
        };
        const refusal = await refusedOnce();
        const label = `${what}: byte ${flipped?.byte}, bit ${flipped?.bit}`;
        expect(refusal, label).toBeInstanceOf(NtsRejectedError);
        if (flipped?.want !== undefined) expect(refusal.reason, label).toBe(flipped.want);
        seen.set(refusal.reason, (seen.get(refusal.reason) ?? 0) + 1);
      }
      // chronyd authenticated and answered every one of those requests; the relay forged the replies.
      const authenticatedAfter = (await server.serverStats()).authenticatedNtpPackets;
      expect(authenticatedAfter - authenticatedBefore).toBe(targets.length);
      console.info(
        `bit flips refused: ${targets.length}/${targets.length}, reasons ${JSON.stringify(Object.fromEntries(seen))}`,
      );
      relay.onReply = unchanged;
      expect((await viaRelay()).authenticated).toBe(true);
    });

    it('refuses an earlier reply replayed in place of the answer, every time', async () => {
      for (let round = 0; round < 3; round++) {
        relay.onReply = unchanged;
        await viaRelay();
        const recorded = relay.replies[relay.replies.length - 1]!;
        relay.onReply = () => [recorded];
        const refusal = await refusedOnce();
        expect(refusal).toBeInstanceOf(NtsRejectedError);
        expect(refusal.reason).toBe('nts-replay');
      }
      relay.onReply = unchanged;
    });

    it('refuses a reply stripped of its NTS fields, or of its authenticator: no downgrade', async () => {
      const strips: Array<[string, Transform]> = [
        ['all extension fields', (d) => [d.subarray(0, 48)]],
        [
          'the authenticator',
          (d) => {
            const auth = parseExtensionFields(d).find((f) => f.type === 0x0404)!;
            return [d.subarray(0, auth.offset)];
          },
        ],
      ];
      for (const [what, strip] of strips) {
        for (let round = 0; round < 2; round++) {
          relay.onReply = strip;
          const refusal = await refusedOnce();
          expect(refusal, what).toBeInstanceOf(NtsRejectedError);
          expect(refusal.reason, what).toBe('nts-unauthenticated');
        }
      }
      relay.onReply = unchanged;
    });

    it("on chronyd's NTS NAK (a corrupted cookie) drops the cookies, runs NTS-KE again and succeeds", async () => {
      relay.onReply = unchanged;
      let corrupted = 0;
      relay.onRequest = (d) => {
        if (corrupted > 0) return [d];
        corrupted++;
        const cookie = parseExtensionFields(d).find((f) => f.type === 0x0204)!;
        return [flipBit(d, (cookie.offset + 4 + 10) * 8)];
      };
      const refusals: NtpRejectedError[] = [];
      const before = await server.serverStats();
      expect(session.needsKeyExchange).toBe(false);
      const generation = session.keyGeneration;
      const x = await queryNts({
        ...ke(),
        session,
        ntpPort: relay.port,
        timeoutMs: 15_000,
        onRejected: (e) => refusals.push(e),
      });
      const after = await server.serverStats();
      expect(refusals.map((e) => e.reason)).toEqual(['nts-nak']);
      expect(x.authenticated).toBe(true);
      expect(x.keyExchanges).toBe(1);
      expect(session.keyGeneration).toBe(generation + 1);
      expect(after.ntsKeConnectionsAccepted - before.ntsKeConnectionsAccepted).toBe(1);
      relay.onRequest = unchanged;
    });
  });
});
