import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import {
  NTP_PACKET_SIZE,
  NtpMode,
  NtpPacketError,
  decodeNtpPacket,
  encodeNtpPacket,
  log2SecondsToMs,
  msToLog2Seconds,
  referenceIdFromString,
  referenceIdToString,
  type NtpPacket,
} from '../../src/ntp/index.js';
import { fcParams } from '../support/fc.js';

const uint32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const timestamp = fc.record({ seconds: uint32, fraction: uint32 });

/** Any header, with durations already on the 16.16 grid (as every decoded packet is). */
const packetArb: fc.Arbitrary<NtpPacket> = fc.record({
  leap: fc.integer({ min: 0, max: 3 }),
  version: fc.integer({ min: 0, max: 7 }),
  mode: fc.integer({ min: 0, max: 7 }),
  stratum: fc.integer({ min: 0, max: 255 }),
  poll: fc.integer({ min: -128, max: 127 }),
  precision: fc.integer({ min: -128, max: 127 }),
  rootDelayMs: uint32.map((raw) => (raw * 1000) / 65536),
  rootDispersionMs: uint32.map((raw) => (raw * 1000) / 65536),
  referenceId: uint32,
  referenceTimestamp: timestamp,
  originTimestamp: timestamp,
  receiveTimestamp: timestamp,
  transmitTimestamp: timestamp,
});

describe('NTP packet codec', () => {
  it('property: decode(encode(p)) is p for every header', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        const bytes = encodeNtpPacket(p);
        expect(bytes).toHaveLength(NTP_PACKET_SIZE);
        expect(decodeNtpPacket(bytes)).toEqual(p);
      }),
      fcParams(2000),
    );
  });

  it('property: encode(decode(b)) reproduces any 48 bytes, and trailing bytes are ignored', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        fc.uint8Array({ maxLength: 80 }),
        (header, trailer) => {
          expect(encodeNtpPacket(decodeNtpPacket(header))).toEqual(header);
          const withTrailer = new Uint8Array([...header, ...trailer]);
          expect(decodeNtpPacket(withTrailer)).toEqual(decodeNtpPacket(header));
        },
      ),
      fcParams(2000),
    );
  });

  it('decodes a hand-built v3 and v4 header field by field', () => {
    const bytes = new Uint8Array(48);
    bytes[0] = (1 << 6) | (3 << 3) | 4; // LI 1, v3, server
    bytes[1] = 2;
    bytes[2] = 6;
    bytes[3] = 0xec; // −20
    bytes.set([0, 1, 0x80, 0], 4); // 1.5 s root delay
    bytes.set([0, 0, 0, 1], 8); // 2⁻¹⁶ s root dispersion
    bytes.set([192, 0, 2, 1], 12);
    bytes.set([0xec, 0xff, 0x4a, 0x80, 0x80, 0, 0, 0], 40); // transmit: x.5 s
    const p = decodeNtpPacket(bytes);
    expect(p).toMatchObject({
      leap: 1,
      version: 3,
      mode: NtpMode.server,
      stratum: 2,
      poll: 6,
      precision: -20,
      rootDelayMs: 1500,
      rootDispersionMs: 1000 / 65536,
      transmitTimestamp: { seconds: 0xecff4a80, fraction: 0x80000000 },
    });
    expect(referenceIdToString(p.referenceId, p.stratum)).toBe('192.0.2.1');
    bytes[0] = (0 << 6) | (4 << 3) | 3;
    expect(decodeNtpPacket(bytes)).toMatchObject({ leap: 0, version: 4, mode: NtpMode.client });
  });

  it('fuzz: decoding arbitrary input throws nothing but NtpPacketError naming the field', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        try {
          decodeNtpPacket(bytes);
          expect(bytes.length).toBeGreaterThanOrEqual(48);
        } catch (e) {
          expect(e).toBeInstanceOf(NtpPacketError);
          expect((e as NtpPacketError).field).toBe('length');
          expect(bytes.length).toBeLessThan(48);
        }
      }),
      fcParams(5000),
    );
    for (const bad of [undefined, null, 'x'.repeat(48), new Array(48).fill(0), 48]) {
      expect(() => decodeNtpPacket(bad as unknown as Uint8Array)).toThrow(
        expect.objectContaining({ field: 'packet' }),
      );
    }
    // A view into a larger buffer decodes from its own offset.
    const big = new Uint8Array(100);
    big[10] = 0b00100100;
    expect(decodeNtpPacket(big.subarray(10))).toMatchObject({ version: 4, mode: 4 });
  });

  describe('root delay and dispersion in NTP short format (16.16 s)', () => {
    /** One step of the grid, 2⁻¹⁶ s, in ms. */
    const step = 1000 / 65536;
    /** Grid point k in ms, exactly as a double (k·1000 < 2⁴², and /2¹⁶ is exact). */
    const grid = (k: number): number => (k * 1000) / 65536;
    const maxRaw = 2 ** 32 - 1;
    /** The smallest double above a non-negative `x`. */
    const nextUp = (x: number): number => {
      const value = new Float64Array([x]);
      const bits = new BigUint64Array(value.buffer);
      bits[0] = (bits[0] ?? 0n) + 1n;
      return value[0] ?? x;
    };
    const roundTrip = (ms: number): number =>
      decodeNtpPacket(encodeNtpPacket({ rootDelayMs: ms, rootDispersionMs: ms })).rootDelayMs;

    /** Non-negative ms values in range, many of them a hair above a grid point. */
    const inRangeMs: fc.Arbitrary<number> = fc.oneof(
      fc.double({ min: 0, max: grid(maxRaw), noNaN: true }),
      // Anywhere in one grid cell: fast-check favours the ends, so values just above k appear.
      fc
        .integer({ min: 0, max: maxRaw - 1 })
        .chain((k) => fc.double({ min: grid(k), max: grid(k + 1), noNaN: true })),
      // The smallest double above a grid point, and a grid point plus 1 ps, 1 ns, 1 µs.
      fc.integer({ min: 0, max: maxRaw - 1 }).map((k) => nextUp(grid(k))),
      fc
        .tuple(fc.integer({ min: 0, max: maxRaw - 1 }), fc.constantFrom(1e-9, 1e-6, 1e-3))
        .map(([k, excess]) => Math.min(grid(k) + excess, grid(maxRaw))),
    );

    it('property: a bound never shrinks, and grows by less than one grid step', () => {
      fc.assert(
        fc.property(inRangeMs, (ms) => {
          const decoded = roundTrip(ms);
          expect(decoded).toBeGreaterThanOrEqual(ms);
          // decoded − ms < step, stated exactly: the grid point below is below ms
          // (decoded − step is itself a grid value, while decoded − ms can round).
          expect(decoded - step).toBeLessThan(ms);
        }),
        fcParams(20_000),
      );
    });

    it('property: every grid point encodes exactly', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: maxRaw }), (k) => {
          expect(roundTrip(grid(k))).toBe(grid(k));
        }),
        fcParams(5000),
      );
      // The low end, where most real values live, and the top of the range: every point.
      for (let k = 0; k <= 2 * 65536; k++) expect(roundTrip(grid(k))).toBe(grid(k));
      for (let k = maxRaw - 65536; k <= maxRaw; k++) expect(roundTrip(grid(k))).toBe(grid(k));
    });

    it('a value just above a grid point rounds up to the next one, not down to it', () => {
      // 1 s + 1 ps: the old 1e-6-step allowance rounded this down to exactly 1 s.
      expect(roundTrip(1000.000000001)).toBe(grid(65537));
      // 1 s + 1 ns, and the smallest double above a grid point, low and high in the range.
      expect(roundTrip(1000.000001)).toBe(grid(65537));
      expect(roundTrip(nextUp(grid(3)))).toBe(grid(4));
      expect(roundTrip(nextUp(grid(4_000_000_000)))).toBe(grid(4_000_000_001));
      expect(roundTrip(Number.MIN_VALUE)).toBe(step);
      expect(roundTrip(0)).toBe(0);
      // The largest value the format holds encodes exactly; anything above is refused.
      expect(roundTrip(grid(maxRaw))).toBe(grid(maxRaw));
      expect(() => encodeNtpPacket({ rootDelayMs: grid(maxRaw) + 2 ** -20 })).toThrow(
        expect.objectContaining({ argument: 'rootDelayMs' }),
      );
    });
  });

  it('encoding rejects out-of-range fields, naming them', () => {
    const cases: [Partial<NtpPacket>, string][] = [
      [{ leap: 4 }, 'leap'],
      [{ version: 8 }, 'version'],
      [{ mode: -1 }, 'mode'],
      [{ stratum: 256 }, 'stratum'],
      [{ poll: 128 }, 'poll'],
      [{ precision: 1.5 }, 'precision'],
      [{ rootDelayMs: -1 }, 'rootDelayMs'],
      [{ rootDispersionMs: 65_536_000 }, 'rootDispersionMs'],
      [{ referenceId: 2 ** 32 }, 'referenceId'],
      [{ transmitTimestamp: { seconds: -1, fraction: 0 } }, 'transmitTimestamp.seconds'],
      [{ originTimestamp: { seconds: 0, fraction: 2 ** 32 } }, 'originTimestamp.fraction'],
    ];
    for (const [packet, field] of cases) {
      expect(() => encodeNtpPacket(packet)).toThrow(InvalidArgumentError);
      expect(() => encodeNtpPacket(packet)).toThrow(expect.objectContaining({ argument: field }));
    }
  });

  it('converts log2-second fields and reference IDs', () => {
    expect(log2SecondsToMs(-10)).toBe(1000 / 1024);
    expect(log2SecondsToMs(6)).toBe(64_000);
    expect(msToLog2Seconds(0.001)).toBe(-19);
    expect(log2SecondsToMs(msToLog2Seconds(0.001))).toBeGreaterThanOrEqual(0.001);
    expect(msToLog2Seconds(1000)).toBe(0);
    expect(msToLog2Seconds(0)).toBe(-128);
    expect(referenceIdToString(referenceIdFromString('RATE'), 0)).toBe('RATE');
    expect(referenceIdToString(referenceIdFromString('GPS'), 1)).toBe('GPS');
    expect(referenceIdToString(0x41000142, 0)).toBe('A?B');
    expect(() => referenceIdFromString('TOOLONG')).toThrow(InvalidArgumentError);
  });
});
