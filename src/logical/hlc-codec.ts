/**
 * The order of hybrid logical timestamps and their three encodings. All three
 * preserve order: numeric order of the bigints, lexicographic order of the
 * strings, and byte order of the byte arrays all equal {@link compareHlc} order
 * (for the bigint, up to the node id, which it does not carry).
 *
 * - bigint: `wallMs << 16 | counter` — 64 bits, non-negative; it fits a signed
 *   SQL `BIGINT` while `wallMs < 2^47` (until the year 6429).
 * - string: the same 64 bits as 16 lowercase hex digits, `@`, the node id;
 *   e.g. `018bcfe56800002a@node-a` has wallMs 0x018bcfe56800, counter 0x2a.
 * - bytes: the 64 bits big-endian (8 bytes), then the node id's ASCII bytes.
 *
 * @module
 */
import { HlcParseError, InvalidArgumentError } from '../errors.js';
import { HLC_MAX_COUNTER, isHlcCounter, isHlcWallMs } from './hlc-range.js';
import type { HlcTimestamp } from './hlc.js';
import { isValidNodeId, nodeIdProblem, validateNodeId, MAX_NODE_ID_LENGTH } from './node-id.js';

const PREFIX = 16;
/** Shortest and longest valid string stamps: 16 digits, `@`, a node id of 1–64 characters. */
const MIN_TEXT = PREFIX + 2;
/** @internal */
export const MAX_TEXT: number = PREFIX + 1 + MAX_NODE_ID_LENGTH;
const AT = 0x40;
const TWO_16 = 0x10000;
const MAX_BIGINT = (1n << 64n) - 1n;

/** Value of each lowercase hex digit by char code; −1 for everything else. */
const HEX: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) table[0x30 + i] = i;
  for (let i = 0; i < 6; i++) table[0x61 + i] = 10 + i;
  return table;
})();

/**
 * Value of each pair of lowercase hex digits, indexed by the low 7 bits of both
 * char codes (`c0 << 7 | c1`); −1 for every other pair. Decoding a byte per
 * lookup halves the lookups of the hot path (32 KB, built once).
 */
const HEX_PAIR: Int16Array = (() => {
  const table = new Int16Array(1 << 14).fill(-1);
  for (let a = 0; a < 128; a++) {
    const high = HEX[a] as number;
    if (high < 0) continue;
    for (let b = 0; b < 128; b++) {
      const low = HEX[b] as number;
      if (low >= 0) table[(a << 7) | b] = (high << 4) | low;
    }
  }
  return table;
})();

/**
 * Total order on hybrid logical timestamps: by `wallMs`, then `counter`, then
 * node id (code-unit order, the order of {@link formatHlc} strings). Returns −1, 0 or 1.
 *
 * @example
 * ```ts
 * stamps.sort(compareHlc);
 * compareHlc(a, b) < 0; // a is ordered before b
 * ```
 */
export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** Validates the fields of a timestamp given to an encoder. */
function checkTimestamp(ts: HlcTimestamp): void {
  if (!isHlcWallMs(ts.wallMs))
    throw new InvalidArgumentError('ts.wallMs', ts.wallMs, 'an integer in [0, 2^48)');
  if (!isHlcCounter(ts.counter))
    throw new InvalidArgumentError('ts.counter', ts.counter, 'an integer in [0, 65535]');
}

/**
 * Encodes `(wallMs, counter)` as a 64-bit bigint `wallMs · 2^16 + counter`;
 * numeric order equals timestamp order (ties between nodes aside). Store it in
 * a SQL `BIGINT` column (signed: fine until the year 6429).
 *
 * @throws {@link InvalidArgumentError} naming `ts.wallMs` / `ts.counter` if out of range.
 * @example
 * ```ts
 * db.run('INSERT INTO t (hlc, node) VALUES (?, ?)', hlcToBigInt(ts), ts.node);
 * ```
 */
export function hlcToBigInt(ts: HlcTimestamp): bigint {
  checkTimestamp(ts);
  return (BigInt(ts.wallMs) << 16n) | BigInt(ts.counter);
}

/**
 * Decodes a bigint made by {@link hlcToBigInt}, attaching `node`.
 *
 * @throws {@link HlcParseError} naming the input if it is not a bigint in [0, 2^64) or `node`
 *   is not a valid node id. A huge bigint is named by its leading hex digits and bit length.
 * @example
 * ```ts
 * const ts = hlcFromBigInt(BigInt(row.hlc), row.node);
 * ```
 */
export function hlcFromBigInt(value: bigint, node: string): HlcTimestamp {
  if (typeof value !== 'bigint') throw new HlcParseError(value, 'expected a bigint');
  if (value < 0n || value > MAX_BIGINT)
    throw new HlcParseError(value, 'expected a bigint in [0, 2^64)');
  if (!checkNode(node))
    throw new HlcParseError(node, `invalid node id: ${nodeIdProblem(node) ?? 'invalid'}`);
  const low = Number(value & 0xffffffffn);
  const high = Number(value >> 32n);
  return { wallMs: high * TWO_16 + (low >>> 16), counter: low & HLC_MAX_COUNTER, node };
}

/**
 * Encodes a timestamp as a fixed-width string whose lexicographic order equals
 * {@link compareHlc} order: 16 lowercase hex digits of {@link hlcToBigInt}, `@`,
 * the node id. Use it in text keys, logs and `TEXT` columns.
 *
 * @throws {@link InvalidArgumentError} naming the field if out of range or the node id is invalid.
 * @example
 * ```ts
 * formatHlc({ wallMs: 1_700_000_000_000, counter: 42, node: 'a' }); // '018bcfe56800002a@a'
 * ```
 */
export function formatHlc(ts: HlcTimestamp): string {
  checkTimestamp(ts);
  const node = ts.node;
  if (!checkNode(node)) validateNodeId(node, 'ts.node');
  const w = ts.wallMs;
  // Timestamps issued in the same millisecond share their first 12 digits.
  if (w !== formattedWall) {
    const hi = Math.floor(w / 0x1000000);
    const lo = w - hi * 0x1000000;
    formattedWallHex =
      (BYTE_HEX[hi >>> 16] as string) +
      (BYTE_HEX[(hi >>> 8) & 0xff] as string) +
      (BYTE_HEX[hi & 0xff] as string) +
      (BYTE_HEX[lo >>> 16] as string) +
      (BYTE_HEX[(lo >>> 8) & 0xff] as string) +
      (BYTE_HEX[lo & 0xff] as string);
    formattedWall = w;
  }
  const c = ts.counter;
  return `${formattedWallHex}${BYTE_HEX[c >>> 8] as string}${BYTE_HEX[c & 0xff] as string}@${node}`;
}

/** Two lowercase hex digits per byte value. */
const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);
/** The last wallMs formatted and its 12 digits (a cache). */
let formattedWall = -1;
let formattedWallHex = '';

/**
 * Decodes a string made by {@link formatHlc}.
 *
 * Input longer than the longest valid stamp (81 characters) is refused before
 * any character is read, and the error quotes at most its first 64 characters,
 * so a hostile 50 MB string costs microseconds.
 *
 * @throws {@link HlcParseError} naming the input unless it is exactly 16
 *   lowercase hex digits, `@` and a valid node id.
 * @example
 * ```ts
 * const ts = parseHlc(row.stamp);
 * ```
 */
export function parseHlc(text: string): HlcTimestamp {
  return decodeCanonicalHlc(text) ?? parseHlcStrict(text);
}

/**
 * The fast path of {@link parseHlc}: the timestamp in `text` if `text` is a
 * valid stamp, else `undefined` (it never throws, and never says why). One pass
 * of char-code reads validates and decodes the 16 digits; the node id comes
 * from the cache of recent ids when it is there.
 *
 * It accepts exactly what {@link parseHlcStrict} accepts and decodes it to the
 * same timestamp (a property test checks both on arbitrary strings).
 *
 * @internal
 */
export function decodeCanonicalHlc(text: unknown): HlcTimestamp | undefined {
  if (typeof text !== 'string') return undefined;
  const n = text.length;
  if (n < MIN_TEXT || n > MAX_TEXT || text.charCodeAt(PREFIX) !== AT) return undefined;
  // Four digits per call, a byte per lookup in the pair table; anything but
  // four lowercase hex digits gives a negative number, so one test of the OR
  // of all four rejects them all.
  const q0 = hexQuadAt(text, 0);
  const q1 = hexQuadAt(text, 4);
  const q2 = hexQuadAt(text, 8);
  const counter = hexQuadAt(text, 12);
  if ((q0 | q1 | q2 | counter) < 0) return undefined;
  const node = suffixNode(text, PREFIX + 1);
  if (node === undefined) return undefined;
  return { wallMs: q0 * 0x100000000 + q1 * 0x10000 + q2, counter, node };
}

/**
 * The 16-bit value of the four hex digits at `text[i..i + 3]`, or a negative
 * number if they are not four lowercase hex digits.
 */
function hexQuadAt(text: string, i: number): number {
  const c0 = text.charCodeAt(i);
  const c1 = text.charCodeAt(i + 1);
  const c2 = text.charCodeAt(i + 2);
  const c3 = text.charCodeAt(i + 3);
  // The pair table is indexed by the low 7 bits of two codes and holds −1 for
  // a pair that is not two digits, which makes the value negative; the last
  // term is −1 (all bits set) when any code is above 0x7f, else 0.
  const high = HEX_PAIR[((c0 & 0x7f) << 7) | (c1 & 0x7f)] as number;
  const low = HEX_PAIR[((c2 & 0x7f) << 7) | (c3 & 0x7f)] as number;
  return (high << 8) | low | ((0x7f - (c0 | c1 | c2 | c3)) >> 31);
}

/**
 * The reference parser behind {@link parseHlc}: checks the shape, each digit
 * and the node id in turn, and throws the {@link HlcParseError} that names the
 * first problem. {@link parseHlc} calls it only for what its fast path refused.
 *
 * @throws {@link HlcParseError} naming the input unless it is exactly 16
 *   lowercase hex digits, `@` and a valid node id.
 * @internal
 */
export function parseHlcStrict(text: string): HlcTimestamp {
  if (typeof text !== 'string') throw new HlcParseError(text, 'expected a string');
  const n = text.length;
  if (n < MIN_TEXT || n > MAX_TEXT || text.charCodeAt(PREFIX) !== AT)
    throw new HlcParseError(
      text,
      `expected 16 lowercase hex digits, '@' and a node id of 1–${MAX_NODE_ID_LENGTH} characters`,
    );
  const digits: number[] = [];
  for (let i = 0; i < PREFIX; i++) {
    const c = text.charCodeAt(i);
    const digit = c < 0x80 ? (HEX[c] as number) : -1;
    if (digit < 0)
      throw new HlcParseError(
        text,
        `character ${i} (${JSON.stringify(text[i])}) is not a lowercase hex digit`,
      );
    digits.push(digit);
  }
  const node = text.slice(PREFIX + 1);
  const problem = nodeIdProblem(node);
  if (problem !== undefined) throw new HlcParseError(text, `invalid node id: ${problem}`);
  const value = (from: number, to: number): number =>
    digits.slice(from, to).reduce((sum, digit) => sum * 16 + digit, 0);
  return { wallMs: value(0, 12), counter: value(12, 16), node };
}

/**
 * The last few valid node ids decoded. Receivers hear from few peers, so most
 * decodes find their node here and skip both the per-character validation and
 * the allocation of a new string. Holds only valid ids; purely a cache.
 */
const recentNodes: string[] = ['', '', '', ''];
let recentSlot = 0;
/** The slot where {@link suffixNode} last found or put a node: tried first. */
let lastNodeSlot = 0;

/** The node id at `text[start..]` if valid (interned in the cache), else `undefined`. */
function suffixNode(text: string, start: number): string | undefined {
  const length = text.length - start;
  // Successive stamps mostly come from the peer of the previous one; trying its
  // slot first spares a comparison with every other cached id of the same length.
  const last = recentNodes[lastNodeSlot] as string;
  if (last.length === length && text.endsWith(last)) return last;
  for (let k = 0; k < 4; k++) {
    const r = recentNodes[k] as string;
    if (k !== lastNodeSlot && r.length === length && text.endsWith(r)) {
      lastNodeSlot = k;
      return r;
    }
  }
  const node = text.slice(start);
  if (!isValidNodeId(node)) return undefined;
  lastNodeSlot = recentSlot;
  recentNodes[recentSlot] = node;
  recentSlot = (recentSlot + 1) & 3;
  return node;
}

/** Whether `node` is valid, consulting the cache first (identity is the common case). */
function checkNode(node: string): boolean {
  for (let k = 0; k < 4; k++) if (recentNodes[k] === node) return true;
  if (!isValidNodeId(node)) return false;
  recentNodes[recentSlot] = node;
  recentSlot = (recentSlot + 1) & 3;
  return true;
}

/** The node id in `bytes[8..]`, from the cache when it matches, else validated and cached. */
function bytesNode(bytes: Uint8Array): string {
  const n = bytes.length;
  const length = n - 8;
  search: for (let k = 0; k < 4; k++) {
    const r = recentNodes[k] as string;
    if (r.length !== length) continue;
    for (let i = 0; i < length; i++) if (r.charCodeAt(i) !== bytes[8 + i]) continue search;
    return r;
  }
  let node = '';
  for (let i = 8; i < n; i++) {
    const c = bytes[i] as number;
    if (c <= 0x20 || c >= 0x7f || c === AT || c === 0x2c || c === 0x3d)
      throw new HlcParseError(bytes, `byte ${i} (0x${c.toString(16)}) is not allowed in a node id`);
    node += String.fromCharCode(c);
  }
  recentNodes[recentSlot] = node;
  recentSlot = (recentSlot + 1) & 3;
  return node;
}

/**
 * Encodes a timestamp as bytes: the 64 bits of {@link hlcToBigInt} big-endian,
 * then the node id's ASCII bytes. Byte order (memcmp) equals {@link compareHlc} order.
 *
 * @throws {@link InvalidArgumentError} naming the field if out of range or the node id is invalid.
 * @example
 * ```ts
 * const key = hlcToBytes(ts); // 8 + node.length bytes
 * ```
 */
export function hlcToBytes(ts: HlcTimestamp): Uint8Array {
  checkTimestamp(ts);
  const node = ts.node;
  if (!checkNode(node)) validateNodeId(node, 'ts.node');
  const out = new Uint8Array(8 + node.length);
  const w = ts.wallMs;
  const hi = Math.floor(w / 0x1000000);
  const lo = w - hi * 0x1000000;
  out[0] = hi >>> 16;
  out[1] = (hi >>> 8) & 0xff;
  out[2] = hi & 0xff;
  out[3] = lo >>> 16;
  out[4] = (lo >>> 8) & 0xff;
  out[5] = lo & 0xff;
  out[6] = ts.counter >>> 8;
  out[7] = ts.counter & 0xff;
  for (let i = 0; i < node.length; i++) out[8 + i] = node.charCodeAt(i);
  return out;
}

/**
 * Decodes bytes made by {@link hlcToBytes}. Input longer than 72 bytes is
 * refused before any byte is read; the error shows at most the first 16 bytes.
 *
 * @throws {@link HlcParseError} naming the input unless it is a `Uint8Array` of
 *   8 bytes followed by 1–64 bytes of a valid node id.
 * @example
 * ```ts
 * const ts = hlcFromBytes(row.key);
 * ```
 */
export function hlcFromBytes(bytes: Uint8Array): HlcTimestamp {
  if (!(bytes instanceof Uint8Array)) throw new HlcParseError(bytes, 'expected a Uint8Array');
  const n = bytes.length;
  if (n < 9 || n > 8 + MAX_NODE_ID_LENGTH)
    throw new HlcParseError(
      bytes,
      `expected 8 bytes and a node id of 1–${MAX_NODE_ID_LENGTH} bytes, got ${n} bytes`,
    );
  const b = bytes;
  const hi = ((b[0] as number) << 16) | ((b[1] as number) << 8) | (b[2] as number);
  const lo = ((b[3] as number) << 16) | ((b[4] as number) << 8) | (b[5] as number);
  const counter = ((b[6] as number) << 8) | (b[7] as number);
  return { wallMs: hi * 0x1000000 + lo, counter, node: bytesNode(b) };
}
