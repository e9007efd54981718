import dgram from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import {
  decodeNtpPacket,
  encodeNtpPacket,
  ntpToEpochMs,
  referenceIdToString,
  type NtpPacket,
} from '../../src/ntp/index.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { openSockets, settleSockets, until } from '../ntp/_helpers.js';

interface RawReply {
  packet: NtpPacket | undefined;
  bytes: Buffer;
  port: number;
  receivedAt: number;
}

/** A client socket that collects every datagram it receives. */
async function rawClient(): Promise<{
  readonly replies: RawReply[];
  send(server: LoopbackNtpServer, request: Uint8Array): number;
  close(): Promise<void>;
}> {
  const socket = dgram.createSocket('udp4');
  const replies: RawReply[] = [];
  socket.on('message', (bytes, rinfo) => {
    const receivedAt = performance.now();
    let packet: NtpPacket | undefined;
    try {
      packet = decodeNtpPacket(bytes);
    } catch {
      packet = undefined;
    }
    replies.push({ packet, bytes, port: rinfo.port, receivedAt });
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    replies,
    send(server, request) {
      const sentAt = performance.now();
      socket.send(request, server.port, server.host);
      return sentAt;
    },
    close: () => new Promise<void>((resolve) => socket.close(resolve)),
  };
}

/**
 * Sends one hand-built request and returns every datagram the server sent for it:
 * it waits until the server has taken the request, at least `expected` datagrams
 * have arrived, and as many have arrived as the server counts as sent (it sends a
 * request's datagrams together, so none is still to come). No fixed wait: a
 * reply that is late under load is waited for, and an extra one is counted.
 */
async function rawExchange(
  server: LoopbackNtpServer,
  request: Uint8Array,
  expected = 1,
): Promise<{ sentAt: number; replies: RawReply[] }> {
  const client = await rawClient();
  const before = server.stats;
  try {
    const sentAt = client.send(server, request);
    await until(
      () =>
        server.stats.requests > before.requests &&
        client.replies.length >= expected &&
        client.replies.length === server.stats.replies - before.replies,
      10_000,
    );
    return { sentAt, replies: client.replies.slice() };
  } finally {
    await client.close();
  }
}

const nonce = { seconds: 0xdeadbeef, fraction: 0x01020304 };
const clientRequest = (version = 4): Uint8Array =>
  encodeNtpPacket({ version, mode: 3, poll: 6, transmitTimestamp: nonce });

describe('createNtpServer', () => {
  let server: LoopbackNtpServer;
  beforeAll(async () => {
    server = await createNtpServer({
      offsetMs: 1000,
      stratum: 2,
      referenceId: 0xc0000201,
      rootDelayMs: 4,
      rootDispersionMs: 2,
      precision: -18,
    });
  });
  afterEach(() => {
    server.setFault(undefined);
    server.configure({
      requestDelayMs: 0,
      responseDelayMs: 0,
      jitterMs: 0,
      kissCode: undefined,
      mutateReply: undefined,
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it('binds an ephemeral port on 127.0.0.1', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
  });

  it('its clock is performance.timeOrigin + performance.now() + offset + drift·elapsed + steps', async () => {
    const drifting = await createNtpServer({ offsetMs: 500, driftPpm: 100 });
    // Epoch-scale doubles resolve 2.4e-4 ms, so differences are checked to 0.005 ms.
    try {
      const p0 = performance.now();
      const base = performance.timeOrigin;
      expect(drifting.trueAt(p0) - (base + p0)).toBeCloseTo(500, 0);
      // 100 ppm over 10 s of performance.now() = 1 ms.
      expect(drifting.trueAt(p0 + 10_000) - drifting.trueAt(p0)).toBeCloseTo(10_001, 2);
      const before = drifting.trueAt(p0);
      drifting.step(-250);
      expect(drifting.trueAt(p0) - before).toBeCloseTo(-250, 2);
      drifting.setOffset(42);
      const p1 = performance.now();
      expect(drifting.trueAt(p1) - (base + p1)).toBeCloseTo(42, 2);
      // A new rate from now on: continuous at the change.
      const p2 = performance.now();
      const atChange = drifting.trueAt(p2);
      drifting.setDriftPpm(-1000);
      expect(drifting.trueAt(p2)).toBeCloseTo(atChange, 2);
      expect(drifting.trueAt(p2 + 1000) - drifting.trueAt(p2)).toBeCloseTo(999, 2);
    } finally {
      await drifting.close();
    }
  });

  it('answers a client request as an NTP server, with the truth between send and receive', async () => {
    const { sentAt, replies } = await rawExchange(server, clientRequest());
    expect(replies).toHaveLength(1);
    const [reply] = replies;
    const p = reply!.packet!;
    expect(p).toMatchObject({
      leap: 0,
      version: 4,
      mode: 4,
      stratum: 2,
      poll: 6,
      precision: -18,
      originTimestamp: nonce,
    });
    expect(referenceIdToString(p.referenceId, p.stratum)).toBe('192.0.2.1');
    expect(p.rootDelayMs).toBeGreaterThanOrEqual(4);
    expect(p.rootDispersionMs).toBeGreaterThanOrEqual(2);
    const t2 = ntpToEpochMs(p.receiveTimestamp);
    const t3 = ntpToEpochMs(p.transmitTimestamp);
    expect(t3).toBeGreaterThanOrEqual(t2);
    expect(t2).toBeGreaterThanOrEqual(server.trueAt(sentAt) - 0.001);
    expect(t3).toBeLessThanOrEqual(server.trueAt(reply!.receivedAt) + 0.001);
  });

  it('echoes the request version (v3)', async () => {
    const { replies } = await rawExchange(server, clientRequest(3));
    expect(replies[0]?.packet?.version).toBe(3);
  });

  it('applies the request delay before T2 and the response delay after T3', async () => {
    server.configure({ requestDelayMs: 15, responseDelayMs: 25 });
    const { sentAt, replies } = await rawExchange(server, clientRequest());
    const p = replies[0]!.packet!;
    const t2 = ntpToEpochMs(p.receiveTimestamp);
    const t3 = ntpToEpochMs(p.transmitTimestamp);
    // Node's timers work in whole ms of a cached loop time: up to 1 ms early.
    expect(t2 - server.trueAt(sentAt)).toBeGreaterThanOrEqual(14);
    expect(server.trueAt(replies[0]!.receivedAt) - t3).toBeGreaterThanOrEqual(24);
  });

  it('adds uniform jitter from the injected random source', async () => {
    const jittery = await createNtpServer({ jitterMs: 20, random: () => 0.999 });
    try {
      const { sentAt, replies } = await rawExchange(jittery, clientRequest());
      const p = replies[0]!.packet!;
      expect(ntpToEpochMs(p.receiveTimestamp) - jittery.trueAt(sentAt)).toBeGreaterThanOrEqual(19);
    } finally {
      await jittery.close();
    }
  });

  it("answers with a Kiss-o'-Death when told to", async () => {
    server.configure({ kissCode: 'RATE' });
    const { replies } = await rawExchange(server, clientRequest());
    const p = replies[0]!.packet!;
    expect(p).toMatchObject({ stratum: 0, leap: 3, mode: 4, originTimestamp: nonce });
    expect(referenceIdToString(p.referenceId, 0)).toBe('RATE');
  });

  it('each fault produces the promised misbehaviour', async () => {
    const check = async (
      fault: Parameters<LoopbackNtpServer['setFault']>[0],
      verify: (replies: RawReply[]) => void,
      expected = 1,
    ): Promise<void> => {
      server.setFault(fault, { count: 1 });
      verify((await rawExchange(server, clientRequest(), expected)).replies);
      // count: 1 means the next request is answered normally.
      const { replies } = await rawExchange(server, clientRequest());
      expect(replies).toHaveLength(1);
      expect(replies[0]?.packet?.mode).toBe(4);
    };
    await check('truncated', (r) => expect(r[0]?.bytes.length).toBe(40));
    await check('wrong-mode', (r) => expect(r[0]?.packet?.mode).toBe(5));
    await check('wrong-version', (r) => expect(r[0]?.packet?.version).toBe(5));
    await check('zero-transmit', (r) =>
      expect(r[0]?.packet?.transmitTimestamp).toEqual({ seconds: 0, fraction: 0 }),
    );
    await check('bad-origin', (r) => expect(r[0]?.packet?.originTimestamp).not.toEqual(nonce));
    await check(
      'duplicate',
      (r) => {
        expect(r).toHaveLength(2);
        expect(r[0]?.bytes).toEqual(r[1]?.bytes);
      },
      2,
    );
    await check('other-port', (r) => expect(r[0]?.port).not.toBe(server.port));
    await check('negative-delay', (r) => {
      const p = r[0]!.packet!;
      expect(ntpToEpochMs(p.transmitTimestamp) - ntpToEpochMs(p.receiveTimestamp)).toBeCloseTo(
        1000,
        3,
      );
    });
    await check('absurd-delay', (r) => {
      const p = r[0]!.packet!;
      expect(ntpToEpochMs(p.transmitTimestamp) - ntpToEpochMs(p.receiveTimestamp)).toBeCloseTo(
        -1000,
        3,
      );
    });
    await check('drop', (r) => expect(r).toHaveLength(0), 0);
  });

  it('with thenValid, the correct reply follows the faulty one', async () => {
    server.setFault('bad-origin', { thenValid: true, count: 1 });
    const { replies } = await rawExchange(server, clientRequest(), 2);
    expect(replies.map((r) => r.packet?.originTimestamp)).toEqual([
      expect.not.objectContaining(nonce),
      nonce,
    ]);
  });

  it('lets a mutator rewrite, multiply or swallow replies', async () => {
    server.configure({ mutateReply: (reply) => [reply.slice(0, 10), reply] });
    const { replies } = await rawExchange(server, clientRequest(), 2);
    expect(replies.map((r) => r.bytes.length)).toEqual([10, 48]);
    server.configure({ mutateReply: () => undefined });
    expect((await rawExchange(server, clientRequest(), 0)).replies).toHaveLength(0);
  });

  it('stays silent for anything but a client-mode request, and counts it', async () => {
    const before = server.stats;
    const garbage = await rawExchange(server, new Uint8Array([1, 2, 3]), 0);
    const serverMode = await rawExchange(server, encodeNtpPacket({ version: 4, mode: 4 }), 0);
    expect(garbage.replies).toHaveLength(0);
    expect(serverMode.replies).toHaveLength(0);
    expect(server.stats.requests - before.requests).toBe(2);
    expect(server.stats.replies).toBe(before.replies);
  });

  it('rejects bad options, naming them', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ host: 'localhost' }, 'host'],
      [{ port: -1 }, 'port'],
      [{ offsetMs: NaN }, 'offsetMs'],
      [{ driftPpm: Infinity }, 'driftPpm'],
      [{ requestDelayMs: -1 }, 'requestDelayMs'],
      [{ stratum: 256 }, 'stratum'],
      [{ leap: 4 }, 'leap'],
      [{ precision: 200 }, 'precision'],
      [{ kissCode: 'NOPE' }, 'kissCode'],
    ];
    for (const [options, argument] of cases) {
      const error: unknown = await createNtpServer(options as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ argument });
    }
    expect(() => server.setFault('drop', { count: 0 })).toThrow(InvalidArgumentError);
  });

  it('close() frees both sockets, cancels pending replies and is idempotent', async () => {
    const before = openSockets();
    const s = await createNtpServer({ responseDelayMs: 50 });
    expect(openSockets()).toBe(before + 2);
    // A second server with the same delay, asked later, tells when the first one's
    // cancelled reply would have gone out: no fixed wait.
    const control = await createNtpServer({ responseDelayMs: 50 });
    const client = await rawClient();
    try {
      client.send(s, clientRequest());
      await until(() => s.stats.requests === 1, 10_000);
      await s.close();
      await s.close();
      client.send(control, clientRequest());
      await until(() => client.replies.length > 0, 10_000);
      expect(client.replies.map((r) => r.port)).toEqual([control.port]);
      expect(s.stats.replies).toBe(0);
    } finally {
      await client.close();
      await control.close();
    }
    expect(await settleSockets(before)).toBe(before);
  });
});
