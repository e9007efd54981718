/**
 * The 48-byte NTP header (RFC 5905 §7.3; the same layout as NTPv3, RFC 1305):
 * encode and decode, losslessly. Extension fields and MACs after the header are
 * ignored on decode and never produced.
 *
 * @module
 */
import { InvalidArgumentError, NtpPacketError } from '../errors.js';
import type { NtpTimestamp } from './era.js';

/**
 * Size of the NTP header in bytes.
 *
 * @example
 * ```ts
 * if (datagram.length < NTP_PACKET_SIZE) console.warn('short');
 * ```
 */
export const NTP_PACKET_SIZE: number = 48;

/**
 * Association modes (RFC 5905 figure 10).
 *
 * @example
 * ```ts
 * if (reply.mode !== NtpMode.server) reject();
 * ```
 */
export const NtpMode: {
  readonly symmetricActive: 1;
  readonly symmetricPassive: 2;
  readonly client: 3;
  readonly server: 4;
  readonly broadcast: 5;
  readonly control: 6;
  readonly private: 7;
} = {
  symmetricActive: 1,
  symmetricPassive: 2,
  client: 3,
  server: 4,
  broadcast: 5,
  control: 6,
  private: 7,
};

/**
 * A decoded NTP header. Durations are in ms; `poll` and `precision` stay in the
 * wire's signed log₂-seconds form.
 *
 * @example
 * ```ts
 * decodeNtpPacket(encodeNtpPacket({ mode: NtpMode.client, version: 4, transmitTimestamp: epochMsToNtp(Date.UTC(2026, 0, 1)) }));
 * //=> { leap: 0, version: 4, mode: 3, stratum: 0, poll: 0, precision: 0, rootDelayMs: 0, rootDispersionMs: 0,
 * //     referenceId: 0, referenceTimestamp: { seconds: 0, fraction: 0 }, …,
 * //     transmitTimestamp: { seconds: 3976214400, fraction: 0 } }
 * ```
 */
export interface NtpPacket {
  /** Leap indicator: 0 none, 1 last minute has 61 s, 2 has 59 s, 3 alarm (unsynchronized). */
  readonly leap: number;
  /** Version number, 0–7 (3 and 4 are in use). */
  readonly version: number;
  /** Association mode, 0–7 (3 client, 4 server). */
  readonly mode: number;
  /** Stratum, 0–255: 0 Kiss-o'-Death, 1 primary, 2–15 secondary, 16 unsynchronized. */
  readonly stratum: number;
  /** Poll interval, signed log₂ seconds. */
  readonly poll: number;
  /** Clock precision, signed log₂ seconds (−20 is about 1 µs). */
  readonly precision: number;
  /** Root delay (ms), 16.16 fixed-point seconds on the wire. */
  readonly rootDelayMs: number;
  /** Root dispersion (ms), 16.16 fixed-point seconds on the wire. */
  readonly rootDispersionMs: number;
  /** Reference ID as an unsigned 32-bit integer (ASCII code at stratum 0/1, IPv4 or hash above). */
  readonly referenceId: number;
  /** When the server's clock was last set. */
  readonly referenceTimestamp: NtpTimestamp;
  /** In a reply: the client's transmit timestamp, echoed. */
  readonly originTimestamp: NtpTimestamp;
  /** In a reply: when the server received the request (T2). */
  readonly receiveTimestamp: NtpTimestamp;
  /** When the packet left its sender (T3 in a reply). */
  readonly transmitTimestamp: NtpTimestamp;
}

const SHORT_SCALE = 65_536;
const MAX_SHORT = 2 ** 32 - 1;
const ZERO: NtpTimestamp = { seconds: 0, fraction: 0 };

/**
 * A raw NTP short-format value (units of 2⁻¹⁶ s) in ms. Exact: raw·1000 < 2⁴², and
 * dividing by 2¹⁶ only shifts the exponent, so every grid point is a double.
 */
function shortToMs(raw: number): number {
  return (raw * 1000) / SHORT_SCALE;
}

/** The largest duration NTP short format holds, about 65536 s, in ms. */
const MAX_SHORT_MS = shortToMs(MAX_SHORT);

/**
 * Decodes an NTP header. Accepts any bit pattern of at least 48 bytes (every
 * field value is representable); semantic checks belong to the client.
 *
 * @param bytes - The datagram (a Buffer works).
 * @returns The decoded header.
 * @throws {@link NtpPacketError} `field: 'packet'` when `bytes` is not a Uint8Array,
 *   `field: 'length'` when it is shorter than 48 bytes. Nothing else.
 *
 * @example
 * ```ts
 * socket.on('message', (msg) => console.log(decodeNtpPacket(msg).stratum));
 * ```
 */
export function decodeNtpPacket(bytes: Uint8Array): NtpPacket {
  if (!(bytes instanceof Uint8Array)) {
    throw new NtpPacketError('packet', `expected a Uint8Array, got ${typeof bytes}`);
  }
  if (bytes.length < NTP_PACKET_SIZE) {
    throw new NtpPacketError(
      'length',
      `${bytes.length} bytes, shorter than the ${NTP_PACKET_SIZE}-byte header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, NTP_PACKET_SIZE);
  const first = view.getUint8(0);
  const timestamp = (offset: number): NtpTimestamp => ({
    seconds: view.getUint32(offset),
    fraction: view.getUint32(offset + 4),
  });
  return {
    leap: first >>> 6,
    version: (first >>> 3) & 0b111,
    mode: first & 0b111,
    stratum: view.getUint8(1),
    poll: view.getInt8(2),
    precision: view.getInt8(3),
    rootDelayMs: shortToMs(view.getUint32(4)),
    rootDispersionMs: shortToMs(view.getUint32(8)),
    referenceId: view.getUint32(12),
    referenceTimestamp: timestamp(16),
    originTimestamp: timestamp(24),
    receiveTimestamp: timestamp(32),
    transmitTimestamp: timestamp(40),
  };
}

function requireInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(name, value, `an integer in [${min}, ${max}]`);
  }
  return value;
}

function shortFormat(name: string, ms: unknown): number {
  if (typeof ms !== 'number' || !(ms >= 0)) {
    throw new InvalidArgumentError(name, ms, 'a number of ms ≥ 0');
  }
  // Refused rather than clamped: clamping would shrink the bound.
  if (ms > MAX_SHORT_MS) {
    throw new InvalidArgumentError(name, ms, `at most ${MAX_SHORT_MS} ms (16.16 format)`);
  }
  // Round up: these are error bounds, and a bound must never shrink in transit. No
  // allowance below the grid point (one used to round values a hair above k down
  // to k). ms·2¹⁶ is exact and the division rounds once; settling against the exact
  // grid values makes the result the least grid point ≥ ms whatever that rounding did.
  let raw = Math.ceil((ms * SHORT_SCALE) / 1000);
  if (shortToMs(raw) < ms) raw += 1;
  else if (raw > 0 && shortToMs(raw - 1) >= ms) raw -= 1;
  return raw;
}

/**
 * Encodes a header into 48 bytes. Fields left out are 0. Root delay and
 * dispersion become the least 2⁻¹⁶ s grid point at or above them (they are
 * bounds, so they never shrink; values on the grid stay exact).
 * `encodeNtpPacket(decodeNtpPacket(b))` reproduces `b`'s header.
 *
 * @param packet - The header fields.
 * @returns A new 48-byte array.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming the field that is out of range.
 *
 * @example
 * ```ts
 * const request = encodeNtpPacket({ version: 4, mode: NtpMode.client, transmitTimestamp: nonce });
 * ```
 */
export function encodeNtpPacket(packet: Partial<NtpPacket>): Uint8Array {
  const bytes = new Uint8Array(NTP_PACKET_SIZE);
  const view = new DataView(bytes.buffer);
  const leap = requireInt('leap', packet.leap ?? 0, 0, 3);
  const version = requireInt('version', packet.version ?? 4, 0, 7);
  const mode = requireInt('mode', packet.mode ?? 0, 0, 7);
  view.setUint8(0, (leap << 6) | (version << 3) | mode);
  view.setUint8(1, requireInt('stratum', packet.stratum ?? 0, 0, 255));
  view.setInt8(2, requireInt('poll', packet.poll ?? 0, -128, 127));
  view.setInt8(3, requireInt('precision', packet.precision ?? 0, -128, 127));
  view.setUint32(4, shortFormat('rootDelayMs', packet.rootDelayMs ?? 0));
  view.setUint32(8, shortFormat('rootDispersionMs', packet.rootDispersionMs ?? 0));
  view.setUint32(12, requireInt('referenceId', packet.referenceId ?? 0, 0, MAX_SHORT));
  const timestamps = [
    ['referenceTimestamp', 16],
    ['originTimestamp', 24],
    ['receiveTimestamp', 32],
    ['transmitTimestamp', 40],
  ] as const;
  for (const [name, offset] of timestamps) {
    const ts = packet[name] ?? ZERO;
    view.setUint32(offset, requireInt(`${name}.seconds`, ts.seconds, 0, MAX_SHORT));
    view.setUint32(offset + 4, requireInt(`${name}.fraction`, ts.fraction, 0, MAX_SHORT));
  }
  return bytes;
}

/**
 * Converts a signed log₂-seconds field (precision, poll) to ms.
 *
 * @param log2Seconds - The field's value, e.g. −20.
 * @returns Milliseconds, e.g. 0.00095367 for −20.
 *
 * @example
 * ```ts
 * log2SecondsToMs(reply.precision);
 * ```
 */
export function log2SecondsToMs(log2Seconds: number): number {
  return 2 ** log2Seconds * 1000;
}

/**
 * The smallest log₂-seconds value that is at least `ms` (how a clock of that
 * resolution advertises its precision).
 *
 * @param ms - A resolution in ms (> 0).
 * @returns An integer clamped to [−128, 127]; −128 for 0.
 *
 * @example
 * ```ts
 * msToLog2Seconds(0.001); // −19 (2⁻¹⁹ s ≈ 1.9 µs ≥ 1 µs)
 * ```
 */
export function msToLog2Seconds(ms: number): number {
  if (!(ms > 0)) return -128;
  return Math.max(-128, Math.min(127, Math.ceil(Math.log2(ms / 1000))));
}

/**
 * Renders a reference ID: four ASCII characters at stratum 0 (the kiss code) and
 * 1 (the reference clock's name), a dotted IPv4 address (or IPv6 hash) above.
 *
 * @param referenceId - The unsigned 32-bit field.
 * @param stratum - The packet's stratum.
 * @returns E.g. `'RATE'`, `'GPS'`, `'192.0.2.1'`. Unprintable bytes show as `?`.
 *
 * @example
 * ```ts
 * if (reply.stratum === 0) console.log(referenceIdToString(reply.referenceId, 0)); // 'DENY'
 * ```
 */
export function referenceIdToString(referenceId: number, stratum: number): string {
  const bytes = [
    referenceId >>> 24,
    (referenceId >>> 16) & 255,
    (referenceId >>> 8) & 255,
    referenceId & 255,
  ];
  if (stratum <= 1) {
    return bytes
      .map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0 ? '' : '?'))
      .join('');
  }
  return bytes.join('.');
}

/**
 * Packs up to four ASCII characters into a reference ID (kiss codes, clock names).
 *
 * @param code - E.g. `'RATE'` or `'LOCL'`.
 * @returns The unsigned 32-bit field, NUL-padded on the right.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `code` is longer than 4 characters or not ASCII.
 *
 * @example
 * ```ts
 * encodeNtpPacket({ stratum: 0, referenceId: referenceIdFromString('DENY') });
 * ```
 */
export function referenceIdFromString(code: string): number {
  if (typeof code !== 'string' || code.length > 4 || !/^[\x20-\x7e]*$/.test(code)) {
    throw new InvalidArgumentError('code', code, 'at most 4 printable ASCII characters');
  }
  let id = 0;
  for (let i = 0; i < 4; i++) id = id * 256 + (i < code.length ? code.charCodeAt(i) : 0);
  return id;
}
