/**
 * The wire format of chronyd's command-and-monitoring (cmdmon) protocol,
 * version 6 (what chrony 4.x speaks), as far as the `tracking` report needs it: the
 * request/reply headers, chrony's 32-bit floating-point format and its
 * 96-bit timespec. Pure functions on bytes; no sockets.
 *
 * Layout (all big-endian), from chrony's candm.h:
 *
 * ```
 * request  0 version(1) type(1) res(2) command(2) attempt(2) sequence(4) pad(8)  = 20 bytes + padding
 * reply    0 version(1) type(1) res(2) command(2) reply(2) status(2) pad(6) sequence(4) pad(8) = 28 bytes
 * tracking 28 refId(4) ipAddr(16+2+2) stratum(2) leap(2) refTime(12) 9 × float(4)   = 76 bytes
 * ```
 *
 * @module
 */
import { ChronyProtocolError, InvalidArgumentError } from '../errors.js';

/** cmdmon protocol version spoken by chrony 4.x. */
const PROTOCOL_VERSION = 6;
const PKT_TYPE_REQUEST = 1;
const PKT_TYPE_REPLY = 2;
const REQ_TRACKING = 33;
const RPY_TRACKING = 5;
const STT_SUCCESS = 0;
const STT_BADPKTVERSION = 18;

const REPLY_HEADER_LENGTH = 28;
const TRACKING_LENGTH = 76;
const TRACKING_REPLY_LENGTH = REPLY_HEADER_LENGTH + TRACKING_LENGTH;
/**
 * The 20-byte request header carries no data for `tracking`, but protocol 6
 * requires padding up to the reply's length (so cmdmon cannot amplify
 * traffic); chronyd drops shorter requests.
 */
const TRACKING_REQUEST_LENGTH = TRACKING_REPLY_LENGTH;

/** `tv_sec_high` value meaning "no high word" (32-bit time_t on the sender). */
const TV_NOHIGHSEC = 0x7fffffff;

const FLOAT_EXP_BITS = 7;
const FLOAT_COEF_BITS = 32 - FLOAT_EXP_BITS;
const FLOAT_EXP_MIN = -(2 ** (FLOAT_EXP_BITS - 1));
const FLOAT_EXP_MAX = -FLOAT_EXP_MIN - 1;
const FLOAT_COEF_MAX = 2 ** (FLOAT_COEF_BITS - 1) - 1;

/**
 * Worst relative rounding of a value carried in chrony's float format (a 25-bit
 * signed coefficient: 24 bits of magnitude, and chrony may drop one more when it
 * picks the exponent).
 * @internal
 */
export const CHRONY_FLOAT_RELATIVE_ERROR: number = 2 ** -22;

/**
 * Reference ID chronyd reports while it serves its own clock (the `local`
 * directive): 127.127.1.1, which `chronyc tracking` shows as `7F7F0101`.
 *
 * @example
 * ```ts
 * if ((await readChronyTracking()).refId === CHRONY_LOCAL_REFERENCE_ID) console.warn('chronyd is free-running');
 * ```
 */
export const CHRONY_LOCAL_REFERENCE_ID: number = 0x7f7f0101;

const STATUS_NAMES: Readonly<Record<number, string>> = {
  1: 'failed',
  2: 'not authorised',
  3: 'invalid command',
  4: 'no such source',
  5: 'invalid timestamp',
  6: 'facility not enabled',
  7: 'bad subnet',
  8: 'access allowed',
  9: 'access denied',
  10: 'no host access',
  11: 'source already known',
  12: 'too many sources',
  13: 'no RTC',
  14: 'bad RTC file',
  15: 'inactive',
  16: 'bad sample',
  17: 'invalid address family',
  18: 'bad packet version',
  19: 'bad packet length',
  21: 'invalid name',
};

/**
 * chronyd's `tracking` report, decoded: what `chronyc tracking` prints. Times
 * are converted to chronobound's units (milliseconds, epoch ms).
 *
 * Sign conventions (chrony's): `currentCorrectionMs > 0` means the system clock
 * is *slow* — true time ≈ system time + `currentCorrectionMs`; `lastOffsetMs > 0`
 * means the clock was *fast* at the last update.
 *
 * @example
 * ```ts
 * const t = await readChronyTracking(); // chronyd on 127.0.0.1:323
 * t.refId === CHRONY_LOCAL_REFERENCE_ID; // true when chronyd serves its local clock
 * t.currentCorrectionMs;                 // > 0: the system clock is slow by about this much
 * ```
 */
export interface ChronyTracking {
  /** Reference ID of the selected source (e.g. `0x7f7f0101` for the local clock, `0` when unsynchronised). */
  readonly refId: number;
  /** Address of the selected source, `null` when there is none (reference clocks, local). */
  readonly ipAddr: string | null;
  /** chronyd's stratum; 0 when it is not synchronised. */
  readonly stratum: number;
  /** Leap status: 0 normal, 1 insert second, 2 delete second, 3 unsynchronised. */
  readonly leapStatus: 0 | 1 | 2 | 3;
  /**
   * Time of the last measurement used (epoch ms). chrony reports it up to 1 s
   * early on purpose; for a `local` reference it is refreshed about once a minute.
   */
  readonly refTime: number;
  /** Correction still to apply to the system clock (ms; > 0: the system clock is slow). */
  readonly currentCorrectionMs: number;
  /** Offset estimated at the last clock update (ms; > 0: the clock was fast). */
  readonly lastOffsetMs: number;
  /** Long-term average of the offset (root mean square, ms). */
  readonly rmsOffsetMs: number;
  /** Frequency correction chronyd applies to the system clock (ppm). */
  readonly frequencyPpm: number;
  /** Residual frequency of the selected source relative to the clock (ppm). */
  readonly residualFrequencyPpm: number;
  /** Estimated error bound of the frequency (ppm). */
  readonly skewPpm: number;
  /** Total network delay to the stratum-1 reference (ms). */
  readonly rootDelayMs: number;
  /** Total dispersion accumulated to the reference, aged to the moment of the reply (ms). */
  readonly rootDispersionMs: number;
  /** Interval between the last two clock updates (seconds). */
  readonly lastUpdateIntervalS: number;
}

/**
 * The header fields of a cmdmon reply.
 * @internal
 */
export interface ChronyReplyHeader {
  readonly version: number;
  readonly packetType: number;
  readonly command: number;
  readonly replyType: number;
  readonly status: number;
  readonly sequence: number;
}

/**
 * Decodes a word in chrony's floating-point format: a 7-bit signed exponent
 * and a 25-bit signed coefficient without hidden bit, value = coef · 2^(exp − 25).
 *
 * @param word - The 32-bit word as an unsigned (or signed) integer.
 * @returns The value it encodes (always finite).
 *
 * @example
 * ```ts
 * decodeChronyFloat(encodeChronyFloat(0.25)); // 0.25
 * ```
 */
export function decodeChronyFloat(word: number): number {
  const x = word >>> 0;
  let exp = x >>> FLOAT_COEF_BITS;
  if (exp > FLOAT_EXP_MAX) exp -= 2 ** FLOAT_EXP_BITS;
  let coef = x % 2 ** FLOAT_COEF_BITS;
  if (coef > FLOAT_COEF_MAX) coef -= 2 ** FLOAT_COEF_BITS;
  return coef * 2 ** (exp - FLOAT_COEF_BITS);
}

/**
 * Encodes a number in chrony's floating-point format, rounding as chronyd
 * does; magnitudes above 1e100 saturate and below 1e-100 become 0.
 *
 * @param value - The number to encode.
 * @returns The 32-bit word as an unsigned integer.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `value` is NaN or not a number.
 *
 * @example
 * ```ts
 * const word = encodeChronyFloat(-0.0015); // 1.5 ms, as chronyd would send it
 * ```
 */
export function encodeChronyFloat(value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new InvalidArgumentError('value', value, 'a number (not NaN)');
  }
  const negative = value < 0;
  const magnitude = Math.abs(value);
  let exp: number;
  let coef: number;
  if (magnitude < 1e-100) {
    exp = 0;
    coef = 0;
  } else if (magnitude > 1e100) {
    exp = FLOAT_EXP_MAX;
    coef = FLOAT_COEF_MAX + (negative ? 1 : 0);
  } else {
    // Same exponent choice and rounding as chronyd (C truncates toward zero).
    exp = Math.trunc(Math.log(magnitude) / Math.LN2 + 1);
    coef = Math.floor(magnitude * 2 ** (FLOAT_COEF_BITS - exp) + 0.5);
    while (coef > FLOAT_COEF_MAX + (negative ? 1 : 0)) {
      coef = Math.floor(coef / 2);
      exp++;
    }
    if (exp > FLOAT_EXP_MAX) {
      exp = FLOAT_EXP_MAX;
      coef = FLOAT_COEF_MAX + (negative ? 1 : 0);
    } else if (exp < FLOAT_EXP_MIN) {
      if (exp + FLOAT_COEF_BITS >= FLOAT_EXP_MIN) {
        coef = Math.floor(coef / 2 ** (FLOAT_EXP_MIN - exp));
        exp = FLOAT_EXP_MIN;
      } else {
        exp = 0;
        coef = 0;
      }
    }
  }
  if (negative && coef !== 0) coef = 2 ** FLOAT_COEF_BITS - coef;
  return (((exp & (2 ** FLOAT_EXP_BITS - 1)) << FLOAT_COEF_BITS) | coef) >>> 0;
}

/**
 * Builds a cmdmon `tracking` request (protocol 6, padded to the reply's length).
 *
 * @param sequence - The 32-bit sequence number the reply must echo.
 * @param attempt - How many times this sequence was sent before (0 first).
 * @returns The 104-byte request.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `sequence` or `attempt` is out of range.
 *
 * @example
 * ```ts
 * socket.send(encodeChronyTrackingRequest(0x12345678), 323, '127.0.0.1');
 * ```
 */
export function encodeChronyTrackingRequest(sequence: number, attempt: number = 0): Uint8Array {
  if (!Number.isInteger(sequence) || sequence < 0 || sequence > 0xffffffff) {
    throw new InvalidArgumentError('sequence', sequence, 'an integer in [0, 2^32)');
  }
  if (!Number.isInteger(attempt) || attempt < 0 || attempt > 0xffff) {
    throw new InvalidArgumentError('attempt', attempt, 'an integer in [0, 65535]');
  }
  const bytes = new Uint8Array(TRACKING_REQUEST_LENGTH);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, PROTOCOL_VERSION);
  view.setUint8(1, PKT_TYPE_REQUEST);
  view.setUint16(4, REQ_TRACKING);
  view.setUint16(6, attempt);
  view.setUint32(8, sequence);
  return bytes;
}

/**
 * Reads the header of a cmdmon reply, so a client can tell whether a datagram
 * answers its request before validating the rest.
 *
 * @throws {@link ChronyProtocolError} When the datagram is shorter than a header.
 * @internal
 */
export function decodeChronyReplyHeader(bytes: Uint8Array): ChronyReplyHeader {
  if (!(bytes instanceof Uint8Array) || bytes.length < REPLY_HEADER_LENGTH) {
    throw new ChronyProtocolError(
      'length',
      `${bytes instanceof Uint8Array ? bytes.length : 'no'} bytes, shorter than the ${REPLY_HEADER_LENGTH}-byte header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    version: view.getUint8(0),
    packetType: view.getUint8(1),
    command: view.getUint16(4),
    replyType: view.getUint16(6),
    status: view.getUint16(8),
    sequence: view.getUint32(16),
  };
}

/**
 * Decodes and validates chronyd's reply to a `tracking` request.
 *
 * @param bytes - The datagram.
 * @param sequence - The sequence number of the request it must answer.
 * @returns The decoded report.
 * @throws {@link ChronyProtocolError} When the reply is short, has another protocol
 *   version, packet or reply type, echoes another sequence, carries a failure
 *   status (e.g. not authorised), or holds an impossible value (`field` says which).
 *
 * @example
 * ```ts
 * const tracking = decodeChronyTrackingReply(datagram, sentSequence);
 * ```
 */
export function decodeChronyTrackingReply(bytes: Uint8Array, sequence: number): ChronyTracking {
  const header = decodeChronyReplyHeader(bytes);
  if (header.packetType !== PKT_TYPE_REPLY) {
    throw new ChronyProtocolError('packetType', `type ${header.packetType} is not a reply`);
  }
  if (header.sequence !== sequence >>> 0) {
    throw new ChronyProtocolError(
      'sequence',
      `sequence ${header.sequence} does not answer request ${sequence >>> 0}`,
    );
  }
  if (header.version !== PROTOCOL_VERSION) {
    throw new ChronyProtocolError(
      'version',
      `chronyd speaks cmdmon protocol ${header.version}, chronobound speaks ${PROTOCOL_VERSION}` +
        (header.status === STT_BADPKTVERSION ? ' (chronyd reported a version mismatch)' : ''),
    );
  }
  if (header.status !== STT_SUCCESS) {
    const name = STATUS_NAMES[header.status] ?? 'unknown status';
    const hint =
      header.status === 2 || header.status === 9 || header.status === 10
        ? '; allow this host with cmdallow in chrony.conf'
        : '';
    throw new ChronyProtocolError(
      'status',
      `chronyd refused the request: ${name} (status ${header.status})${hint}`,
    );
  }
  if (header.command !== REQ_TRACKING) {
    throw new ChronyProtocolError('command', `reply to command ${header.command}, not tracking`);
  }
  if (header.replyType !== RPY_TRACKING) {
    throw new ChronyProtocolError('replyType', `reply type ${header.replyType}, not tracking`);
  }
  if (bytes.length < TRACKING_REPLY_LENGTH) {
    throw new ChronyProtocolError(
      'length',
      `${bytes.length} bytes, a tracking reply has ${TRACKING_REPLY_LENGTH}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const float = (offset: number): number => decodeChronyFloat(view.getUint32(offset));

  const stratum = view.getUint16(52);
  if (stratum > 16) throw new ChronyProtocolError('stratum', `stratum ${stratum} is above 16`);
  const leap = view.getUint16(54);
  if (leap > 3) throw new ChronyProtocolError('leapStatus', `leap status ${leap} is not 0–3`);
  const rootDelayMs = float(92) * 1000;
  if (rootDelayMs < 0) {
    throw new ChronyProtocolError('rootDelay', `negative root delay ${rootDelayMs} ms`);
  }
  const rootDispersionMs = float(96) * 1000;
  if (rootDispersionMs < 0) {
    throw new ChronyProtocolError(
      'rootDispersion',
      `negative root dispersion ${rootDispersionMs} ms`,
    );
  }
  return {
    refId: view.getUint32(28),
    ipAddr: decodeIpAddr(bytes, view, 32),
    stratum,
    leapStatus: leap as 0 | 1 | 2 | 3,
    refTime: decodeTimespec(view, 56),
    currentCorrectionMs: float(68) * 1000,
    lastOffsetMs: float(72) * 1000,
    rmsOffsetMs: float(76) * 1000,
    frequencyPpm: float(80),
    residualFrequencyPpm: float(84),
    skewPpm: float(88),
    rootDelayMs,
    rootDispersionMs,
    lastUpdateIntervalS: float(100),
  };
}

/** chrony's Timespec: seconds high word, low word, nanoseconds → epoch ms. */
function decodeTimespec(view: DataView, offset: number): number {
  const rawHigh = view.getUint32(offset);
  const high = rawHigh === TV_NOHIGHSEC ? 0 : rawHigh;
  const low = view.getUint32(offset + 4);
  const nanos = view.getUint32(offset + 8);
  if (nanos > 999_999_999) {
    throw new ChronyProtocolError('refTime', `nanoseconds ${nanos} out of range`);
  }
  return (high * 2 ** 32 + low) * 1000 + nanos / 1e6;
}

/** chrony's IPAddr: 16 address bytes, then a 16-bit family and 16 bits of padding. */
function decodeIpAddr(bytes: Uint8Array, view: DataView, offset: number): string | null {
  const family = view.getUint16(offset + 16);
  switch (family) {
    case 0:
      return null;
    case 1:
      return Array.from(bytes.subarray(offset, offset + 4)).join('.');
    case 2:
      return formatIpv6(view, offset);
    case 3:
      // A reference without an address (e.g. an NTS source before resolution); chronyc's spelling.
      return `ID#${String(view.getUint32(offset)).padStart(10, '0')}`;
    default:
      throw new ChronyProtocolError('ipAddr', `unknown address family ${family}`);
  }
}

/** RFC 5952 text form: lower case, longest run (≥ 2) of zero groups as `::`. */
function formatIpv6(view: DataView, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(offset + 2 * i));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}
