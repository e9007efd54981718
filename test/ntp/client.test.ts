import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, InvalidArgumentError, SourceUnavailableError } from '../../src/index.js';
import {
  NTP_ERA1_EPOCH_MS,
  NtpKissOfDeathError,
  NtpRejectedError,
  NtpSocket,
  NtpTimeoutError,
  encodeNtpPacket,
  epochMsToNtp,
  queryNtp,
  validateNtpReply,
  type NtpExchange,
  type NtpRejectionReason,
  type NtpTimestamp,
} from '../../src/ntp/index.js';
import {
  createNtpServer,
  type LoopbackNtpServer,
  type NtpServerBehaviour,
  type NtpServerFault,
} from '../../src/testing/node/index.js';
import { fcParams } from '../support/fc.js';
import { openSockets, settleSockets, until } from './_helpers.js';

const TICKS_PER_ERA = 2n ** 64n;

/** `ts` moved by `ticks` units of 2⁻³² s, wrapping at the era boundary as the wire does. */
function addTicks(ts: NtpTimestamp, ticks: bigint): NtpTimestamp {
  const wire = (BigInt(ts.seconds) * 2n ** 32n + BigInt(ts.fraction) + ticks) % TICKS_PER_ERA;
  const moved = (wire + TICKS_PER_ERA) % TICKS_PER_ERA;
  return { seconds: Number(moved >> 32n), fraction: Number(moved & 0xffffffffn) };
}

/** The exchange's interval contains the server's true offset at T4. */
function expectContainsTruth(server: LoopbackNtpServer, x: NtpExchange): void {
  const truth = server.trueAt(x.t4) - x.t4;
  expect(Math.abs(x.offsetMs - truth)).toBeLessThanOrEqual(x.errorMs);
}

describe('queryNtp against the loopback server', () => {
  let server: LoopbackNtpServer;
  beforeAll(async () => {
    server = await createNtpServer({ offsetMs: 12_345.678 });
  });
  afterEach(() => {
    server.setFault(undefined);
    server.configure({
      requestDelayMs: 0,
      responseDelayMs: 0,
      leap: 0,
      stratum: 1,
      rootDelayMs: 0,
      rootDispersionMs: 0,
      kissCode: undefined,
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it('returns θ, δ, λ and the header, with the truth inside θ ± λ', async () => {
    server.configure({
      requestDelayMs: 2,
      responseDelayMs: 9,
      rootDelayMs: 3,
      rootDispersionMs: 1,
    });
    const x = await queryNtp({ host: server.host, port: server.port, timeoutMs: 1000 });
    expectContainsTruth(server, x);
    expect(x.delayMs).toBeGreaterThanOrEqual(11);
    expect(x.errorMs).toBeGreaterThanOrEqual(x.delayMs / 2 + 1.5 + 1);
    expect(x).toMatchObject({
      server: server.address,
      source: server.address,
      stratum: 1,
      leap: 0,
      version: 4,
      referenceId: 'LOCL',
      monotonicAt: x.t4,
    });
    // 16.16 format: bounds round up to the next 2⁻¹⁶ s, never down.
    expect(x.rootDelayMs).toBeGreaterThanOrEqual(3);
    expect(x.rootDelayMs).toBeLessThan(3 + 1000 / 65536);
    expect(x.rootDispersionMs).toBeGreaterThanOrEqual(1);
    expect(x.rootDispersionMs).toBeLessThan(1 + 1000 / 65536);
    expect(x.precisionMs).toBeCloseTo(1000 / 2 ** 20, 12);
    expect(x.t1).toBeLessThan(x.t4);
    expect(x.t3).toBeGreaterThanOrEqual(x.t2);
    // Display-only offset against Date.now(): about the server's offset.
    expect(Math.abs(x.systemOffsetMs! - 12_345.678)).toBeLessThan(50);
  });

  it('speaks NTPv3 when asked, and the server answers in kind', async () => {
    const x = await queryNtp({ host: server.host, port: server.port, version: 3 });
    expect(x.version).toBe(3);
    expectContainsTruth(server, x);
  });

  it('a spoofed reply does not end the exchange: the real one is still accepted', async () => {
    const seen: string[] = [];
    for (const fault of ['bad-origin', 'other-port', 'truncated', 'wrong-mode'] as const) {
      server.setFault(fault, { count: 1, thenValid: true });
      const x = await queryNtp({
        host: server.host,
        port: server.port,
        onRejected: (e) => seen.push(e.reason),
      });
      expectContainsTruth(server, x);
    }
    expect(seen).toEqual(['origin-mismatch', 'unexpected-address', 'truncated', 'wrong-mode']);
  });

  // Each reason, driven by a real UDP exchange. Replies that carry our nonce from
  // the server's address end in that rejection; anything else is a timeout.
  const cases: {
    reason: NtpRejectionReason;
    fault?: NtpServerFault;
    behaviour?: NtpServerBehaviour;
    options?: { maxRootDistanceMs: number };
    final: 'rejected' | 'timeout';
  }[] = [
    { reason: 'truncated', fault: 'truncated', final: 'rejected' },
    { reason: 'wrong-mode', fault: 'wrong-mode', final: 'rejected' },
    { reason: 'unsupported-version', fault: 'wrong-version', final: 'rejected' },
    { reason: 'zero-transmit', fault: 'zero-transmit', final: 'rejected' },
    { reason: 'negative-delay', fault: 'negative-delay', final: 'rejected' },
    { reason: 'absurd-delay', fault: 'absurd-delay', final: 'rejected' },
    { reason: 'origin-mismatch', fault: 'bad-origin', final: 'timeout' },
    { reason: 'unexpected-address', fault: 'other-port', final: 'timeout' },
    { reason: 'unsynchronized', behaviour: { leap: 3 }, final: 'rejected' },
    { reason: 'stratum-too-high', behaviour: { stratum: 16 }, final: 'rejected' },
    { reason: 'root-distance', behaviour: { rootDispersionMs: 1500 }, final: 'rejected' },
    {
      reason: 'root-distance',
      behaviour: { rootDelayMs: 30 },
      options: { maxRootDistanceMs: 10 },
      final: 'rejected',
    },
  ];
  for (const c of cases) {
    it(`refuses and reports '${c.reason}' (${c.fault ?? JSON.stringify(c.behaviour)})`, async () => {
      if (c.fault) server.setFault(c.fault);
      if (c.behaviour) server.configure(c.behaviour);
      const seen: NtpRejectedError[] = [];
      const before = server.stats.replies;
      const error: unknown = await queryNtp({
        host: server.host,
        port: server.port,
        timeoutMs: 120,
        onRejected: (e) => seen.push(e),
        ...(c.options ?? {}),
      }).catch((e: unknown) => e);
      expect(server.stats.replies).toBeGreaterThan(before);
      expect(seen.map((e) => e.reason)).toContain(c.reason);
      expect(seen.every((e) => e instanceof NtpRejectedError && e.code === 'NTP_REJECTED')).toBe(
        true,
      );
      if (c.final === 'rejected') {
        expect(error).toBeInstanceOf(NtpRejectedError);
        expect((error as NtpRejectedError).reason).toBe(c.reason);
        expect((error as NtpRejectedError).server).toBe(server.address);
      } else {
        expect(error).toBeInstanceOf(NtpTimeoutError);
      }
    });
  }

  for (const code of ['DENY', 'RSTR', 'RATE'] as const) {
    it(`refuses a Kiss-o'-Death ${code} and carries the code`, async () => {
      server.configure({ kissCode: code });
      const error: unknown = await queryNtp({
        host: server.host,
        port: server.port,
        timeoutMs: 100,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NtpKissOfDeathError);
      expect(error).toMatchObject({
        reason: 'kiss-of-death',
        kissCode: code,
        code: 'NTP_REJECTED',
      });
      expect((error as Error).message).toContain(code);
    });
  }

  it("on a kept socket, a late reply to an abandoned request is 'stale-transmit'", async () => {
    const seen: string[] = [];
    const socket = new NtpSocket({ onRejected: (e) => seen.push(e.reason) });
    try {
      server.configure({ responseDelayMs: 150 });
      await expect(
        socket.query({ host: server.host, port: server.port, timeoutMs: 40 }),
      ).rejects.toBeInstanceOf(NtpTimeoutError);
      server.configure({ responseDelayMs: 0 });
      expectContainsTruth(server, await socket.query({ host: server.host, port: server.port }));
      await until(() => seen.includes('stale-transmit'));
    } finally {
      await socket.close();
    }
  });

  it("on a kept socket, a second copy of an answered reply is 'duplicate'", async () => {
    const seen: string[] = [];
    const socket = new NtpSocket({ onRejected: (e) => seen.push(e.reason) });
    try {
      server.setFault('duplicate', { count: 1 });
      expectContainsTruth(server, await socket.query({ host: server.host, port: server.port }));
      await until(() => seen.includes('duplicate'));
      expect(seen).toEqual(['duplicate']);
      // The next exchange on the same socket is unaffected.
      expectContainsTruth(server, await socket.query({ host: server.host, port: server.port }));
    } finally {
      await socket.close();
    }
  });

  it('runs concurrent exchanges on one socket, each matched by its own nonce', async () => {
    const other = await createNtpServer({ offsetMs: -5000, responseDelayMs: 3 });
    const socket = new NtpSocket();
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          socket.query(
            i % 2 === 0
              ? { host: server.host, port: server.port }
              : { host: other.host, port: other.port },
          ),
        ),
      );
      results.forEach((x, i) => expectContainsTruth(i % 2 === 0 ? server : other, x));
      expect(socket.pending).toBe(0);
    } finally {
      await socket.close();
      await other.close();
    }
  });

  it('aborts on the signal, before and during the exchange', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(
      queryNtp({ host: server.host, port: server.port, signal: ac.signal }),
    ).rejects.toBeInstanceOf(AbortError);
    server.setFault('drop');
    const ac2 = new AbortController();
    const p = queryNtp({
      host: server.host,
      port: server.port,
      signal: ac2.signal,
      timeoutMs: 5000,
    });
    setTimeout(() => ac2.abort(), 10);
    await expect(p).rejects.toBeInstanceOf(AbortError);
  });

  it('closing while the socket is still binding ends the exchange, it does not hang', async () => {
    server.setFault('drop');
    // Close after k microtask turns: before, during and after the bind.
    for (let k = 0; k < 8; k++) {
      const socket = new NtpSocket();
      const p = socket.query({ host: server.host, port: server.port, timeoutMs: 5000 });
      for (let i = 0; i < k; i++) await Promise.resolve();
      if (k === 7) await new Promise((resolve) => setImmediate(resolve));
      const closing = socket.close();
      await expect(p).rejects.toBeInstanceOf(AbortError);
      await closing;
    }
  });

  it('a closed socket aborts pending exchanges and refuses new ones', async () => {
    server.setFault('drop');
    const socket = new NtpSocket();
    const p = socket.query({ host: server.host, port: server.port, timeoutMs: 5000 });
    await until(() => socket.pending === 1);
    await socket.close();
    await socket.close(); // idempotent
    await expect(p).rejects.toBeInstanceOf(AbortError);
    await expect(socket.query({ host: server.host, port: server.port })).rejects.toBeInstanceOf(
      AbortError,
    );
    expect(socket.closed).toBe(true);
  });
});

describe('queryNtp without a server', () => {
  it('times out cleanly against a port with nothing listening, leaving no socket open', async () => {
    const probe = await createNtpServer();
    const port = probe.port;
    await probe.close();
    const before = openSockets();
    const started = performance.now();
    const error: unknown = await queryNtp({ host: '127.0.0.1', port, timeoutMs: 80 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NtpTimeoutError);
    expect((error as NtpTimeoutError).server).toBe(`127.0.0.1:${port}`);
    expect((error as Error).message).toMatch(/No reply from 127\.0\.0\.1:\d+ within 80 ms/);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await settleSockets(before)).toBe(before);
  });

  it('reports a host that does not resolve as unavailable (or as a timeout)', async () => {
    const error: unknown = await queryNtp({ host: 'no-such-host.invalid', timeoutMs: 2000 }).catch(
      (e: unknown) => e,
    );
    expect(error instanceof SourceUnavailableError || error instanceof NtpTimeoutError).toBe(true);
  });

  it('rejects bad options, naming them', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ host: '' }, 'host'],
      [{ host: '127.0.0.1', port: 0 }, 'port'],
      [{ host: '127.0.0.1', port: 70000 }, 'port'],
      [{ host: '127.0.0.1', timeoutMs: -1 }, 'timeoutMs'],
      [{ host: '127.0.0.1', timeoutMs: Infinity }, 'timeoutMs'],
      [{ host: '127.0.0.1', version: 2 }, 'version'],
    ];
    for (const [options, argument] of bad) {
      const error: unknown = await queryNtp(options as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ argument });
    }
  });
});

describe('validateNtpReply', () => {
  const nonce = { seconds: 0x12345678, fraction: 0x9abcdef0 };
  const wallMs = Date.UTC(2026, 0, 1);
  const reply = (overrides: Record<string, unknown> = {}): Uint8Array =>
    encodeNtpPacket({
      leap: 0,
      version: 4,
      mode: 4,
      stratum: 2,
      precision: -20,
      originTimestamp: nonce,
      receiveTimestamp: epochMsToNtp(wallMs + 5),
      transmitTimestamp: epochMsToNtp(wallMs + 5.5),
      ...overrides,
    });
  const context = { server: 's:123', nonce, t1: 100, t4: 110, wallMs };

  it('accepts a good reply and computes θ relative to the monotonic clock', () => {
    const x = validateNtpReply(reply(), context);
    expect(x.delayMs).toBeCloseTo(9.5, 6);
    expect(x.offsetMs).toBeCloseTo(wallMs + 5 - 100 - 9.5 / 2, 3);
    expect(x.systemOffsetMs).toBeCloseTo(x.offsetMs + 110 - wallMs, 6);
  });

  it("refuses a reply whose transmit timestamp equals the previous one ('duplicate')", () => {
    const previousTransmit = epochMsToNtp(wallMs + 5.5);
    expect(() => validateNtpReply(reply(), { ...context, previousTransmit })).toThrow(
      expect.objectContaining({ reason: 'duplicate' }),
    );
  });

  it('checks origin before anything else, so a spoof is called a spoof', () => {
    const spoof = reply({ originTimestamp: { seconds: 1, fraction: 2 }, mode: 5, stratum: 0 });
    expect(() => validateNtpReply(spoof, context)).toThrow(
      expect.objectContaining({ reason: 'origin-mismatch' }),
    );
  });

  describe("a reference timestamp after the transmit timestamp ('reference-after-transmit')", () => {
    const transmit = epochMsToNtp(wallMs + 5.5);
    const ONE_SECOND = 2n ** 32n;
    /** Precision −20 (about 1 µs) in units of 2⁻³² s. */
    const PRECISION_TICKS = 2n ** 12n;

    it('refuses a reference 1 s after transmit, naming the difference', () => {
      const bogus = reply({ referenceTimestamp: addTicks(transmit, ONE_SECOND) });
      expect(() => validateNtpReply(bogus, context)).toThrow(NtpRejectedError);
      expect(() => validateNtpReply(bogus, context)).toThrow(
        expect.objectContaining({ reason: 'reference-after-transmit', server: 's:123' }),
      );
      expect(() => validateNtpReply(bogus, context)).toThrow(/1000\.000 ms after/);
    });

    it('accepts a reference equal to transmit, within the precision after it, or zero', () => {
      for (const referenceTimestamp of [
        transmit,
        addTicks(transmit, PRECISION_TICKS),
        addTicks(transmit, -ONE_SECOND),
        { seconds: 0, fraction: 0 },
      ]) {
        expect(validateNtpReply(reply({ referenceTimestamp }), context).delayMs).toBeCloseTo(
          9.5,
          6,
        );
      }
      expect(() =>
        validateNtpReply(
          reply({ referenceTimestamp: addTicks(transmit, PRECISION_TICKS + 1n) }),
          context,
        ),
      ).toThrow(expect.objectContaining({ reason: 'reference-after-transmit' }));
    });

    it('compares across the 2036 era rollover', () => {
      // Transmit 0.5 s into era 1 (seconds field near 0), reference near the end of era 0.
      const eraWall = NTP_ERA1_EPOCH_MS;
      const eraTransmit = epochMsToNtp(eraWall + 500);
      expect(eraTransmit.seconds).toBe(0);
      const eraReply = (referenceTimestamp: NtpTimestamp): Uint8Array =>
        reply({
          receiveTimestamp: eraTransmit,
          transmitTimestamp: eraTransmit,
          referenceTimestamp,
        });
      const eraContext = { ...context, wallMs: eraWall };
      const before = epochMsToNtp(eraWall - 1000);
      expect(before.seconds).toBe(2 ** 32 - 1);
      expect(validateNtpReply(eraReply(before), eraContext).t3).toBeCloseTo(eraWall + 500, 3);
      // And the other way: a reference in era 1 while transmit is still in era 0.
      expect(() =>
        validateNtpReply(
          reply({
            receiveTimestamp: before,
            transmitTimestamp: before,
            referenceTimestamp: eraTransmit,
          }),
          eraContext,
        ),
      ).toThrow(expect.objectContaining({ reason: 'reference-after-transmit' }));
    });

    it('property: refused exactly when the reference is more than the precision after transmit', () => {
      const uint32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
      const transmitArb = fc
        .record({
          seconds: fc.oneof(uint32, fc.constantFrom(0, 1, 2 ** 32 - 2, 2 ** 32 - 1)),
          fraction: fc.oneof(uint32, fc.constantFrom(0, 1, 2 ** 32 - 1)),
        })
        .filter((ts) => ts.seconds !== 0 || ts.fraction !== 0);
      /** The precision tolerance in units of 2⁻³² s (below one unit for precision < −32). */
      const toleranceTicks = (precision: number): bigint =>
        precision >= -32 ? 2n ** BigInt(32 + precision) : 0n;
      // How far the reference is after transmit, in 2⁻³² s; negative is before. Kept
      // inside the ±2³¹ s (68-year) window in which era arithmetic can tell the order.
      const offsetArb = (precision: number): fc.Arbitrary<bigint | 'zero'> =>
        fc.oneof(
          fc.bigInt({ min: -3n, max: 3n }).map((d) => toleranceTicks(precision) + d),
          fc.bigInt({ min: -3n, max: 3n }),
          fc.bigInt({ min: -(2n ** 63n) + 2n ** 32n, max: 2n ** 63n - 2n ** 32n - 1n }),
          fc.constant('zero' as const),
        );
      const caseArb = fc
        .tuple(transmitArb, fc.integer({ min: -40, max: 8 }))
        .chain(([transmitTimestamp, precision]) =>
          fc.record({
            transmitTimestamp: fc.constant(transmitTimestamp),
            precision: fc.constant(precision),
            offset: offsetArb(precision),
          }),
        );
      fc.assert(
        fc.property(caseArb, ({ transmitTimestamp, precision, offset }) => {
          const referenceTimestamp =
            offset === 'zero' ? { seconds: 0, fraction: 0 } : addTicks(transmitTimestamp, offset);
          const isZero = referenceTimestamp.seconds === 0 && referenceTimestamp.fraction === 0;
          const after =
            !isZero && offset !== 'zero' && offset > toleranceTicks(precision) && offset > 0n;
          const bytes = reply({
            precision,
            referenceTimestamp,
            receiveTimestamp: transmitTimestamp,
            transmitTimestamp,
          });
          let reason: string | undefined;
          try {
            validateNtpReply(bytes, context);
          } catch (error) {
            if (!(error instanceof NtpRejectedError)) throw error;
            reason = error.reason;
          }
          if (after) expect(reason).toBe('reference-after-transmit');
          else expect(reason).not.toBe('reference-after-transmit');
        }),
        fcParams(5000),
      );
    });
  });

  it('reads an unknown kiss code and still refuses', () => {
    const kod = reply({ stratum: 0, leap: 3, referenceId: 0x58595a00 }); // 'XYZ'
    expect(() => validateNtpReply(kod, context)).toThrow(NtpKissOfDeathError);
    expect(() => validateNtpReply(kod, context)).toThrow(
      expect.objectContaining({ kissCode: 'XYZ' }),
    );
  });
});
