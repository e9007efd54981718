/**
 * The AWS ClockBound shared-memory segment, protocol version 2: its layout and
 * the pure codec for it — encoding and validating the header and body, and the
 * generation arithmetic of ClockBound's lock-free update protocol (a seqlock).
 * No I/O: `clockbound-reader.ts` takes consistent snapshots of a segment file and
 * `clockbound-writer.ts` updates one in place.
 *
 * Everything here was checked against aws/clock-bound v2.0.2 (fetched; the
 * files are named next to each fact); the code is written from the protocol,
 * not copied. Paths are in that repository, under clock-bound-shm/src/ unless
 * given in full.
 *
 * ```text
 * offset size field                                  source
 *    0    4   magic word 0 = 0x414D5A4E, u32 native   shm_header.rs SHM_MAGIC; writer.rs wipe() writes
 *    4    4   magic word 1 = 0x43420200, u32 native     both words with byteorder's NativeEndian
 *    8    4   segment size = 80, u32                 shm_header.rs ShmHeader.segsize; writer.rs segment_size()
 *   12    2   version = 2, u16                       shm_header.rs CLOCKBOUND_SHM_SUPPORTED_VERSION
 *   14    2   generation, u16                        shm_header.rs ShmHeader.generation (repr(C, align(8)))
 *   16   16   as_of (i64 s, i64 ns)                  lib.rs ClockErrorBound.as_of (nix TimeSpec = timespec)
 *   32   16   void_after (i64 s, i64 ns)             lib.rs ClockErrorBound.void_after
 *   48    8   bound_nsec, i64                        lib.rs ClockErrorBound.bound_nsec
 *   56    8   disruption_marker, u64                 lib.rs ClockErrorBound.disruption_marker
 *   64    4   max_drift_ppb, u32                     lib.rs ClockErrorBound.max_drift_ppb
 *   68    4   clock_status, i32                      lib.rs ClockStatus (repr(C) enum): 0 Unknown,
 *                                                      1 Synchronized, 2 FreeRunning, 3 Disrupted
 *   72    1   clock_disruption_support_enabled, u8   lib.rs (a Rust bool)
 *   73    7   padding                                lib.rs `_padding: [u8; 7]`
 * ```
 *
 * The header is 16 bytes and `ClockErrorBound` (`#[repr(C)]`) 64; writer.rs
 * `segment_size()` is their sum rounded up to 8: 80. The timestamps are
 * `CLOCK_MONOTONIC_COARSE`: common.rs defines ClockBound's `CLOCK_MONOTONIC` as
 * `ClockId::CLOCK_MONOTONIC_COARSE` on every OS but macOS, and the daemon stamps
 * `as_of` with it (clock-bound-d/src/clock_bound_runner.rs). docs/PROTOCOL.md
 * draws the same layout but lists the magic as the bytes
 * `41 4D 5A 4E 43 42 02 00`, the two words in big-endian order; the source
 * writes them native-endian, so on x86-64 and Graviton (little-endian) the file
 * starts `4E 5A 4D 41 00 02 42 43`, and that is what readers compare
 * (shm_header.rs `matches_magic`). The writer and reader protocols are writer.rs
 * `ShmWrite::write` and reader.rs `ShmReader::snapshot`.
 *
 * @module
 */
import { endianness } from 'node:os';
import { InvalidArgumentError } from '../errors.js';

/**
 * Where ClockBound's daemon puts its segment (clock-bound-ffi/include/clockbound.h,
 * `CLOCKBOUND_SHM_DEFAULT_PATH`), and where its clients look by default.
 *
 * @example
 * ```ts
 * const source = clockboundSource({ path: CLOCKBOUND_DEFAULT_PATH });
 * ```
 */
export const CLOCKBOUND_DEFAULT_PATH: string = '/var/run/clockbound/shm0';

/**
 * Bytes in a version 2 segment: a 16-byte header and a 64-byte body
 * (writer.rs `ShmWriter::segment_size`).
 *
 * @example
 * ```ts
 * if (statSync(path).size !== CLOCKBOUND_SEGMENT_SIZE) console.warn('not a v2 segment');
 * ```
 */
export const CLOCKBOUND_SEGMENT_SIZE: number = 80;

/**
 * The segment layout version this module reads and writes
 * (shm_header.rs `CLOCKBOUND_SHM_SUPPORTED_VERSION`).
 *
 * @example
 * ```ts
 * const supported = readClockboundSegment(path).version === CLOCKBOUND_VERSION;
 * ```
 */
export const CLOCKBOUND_VERSION: number = 2;

/** The two native-endian u32 words a segment starts with (shm_header.rs `SHM_MAGIC`). */
const MAGIC_WORDS = [0x414d5a4e, 0x43420200] as const;

/** Byte offsets of the fields (see the table in this module's documentation). @internal */
export const OFFSETS = {
  magic: 0,
  segmentSize: 8,
  version: 12,
  generation: 14,
  asOfSec: 16,
  asOfNsec: 24,
  voidAfterSec: 32,
  voidAfterNsec: 40,
  boundNs: 48,
  disruptionMarker: 56,
  maxDriftPpb: 64,
  status: 68,
  disruptionSupport: 72,
  padding: 73,
} as const;

/** Bytes in the header (magic, size, version, generation). @internal */
export const HEADER_SIZE = 16;
/** Bytes in the body (`ClockErrorBound`), which follows the header. @internal */
export const BODY_SIZE: number = CLOCKBOUND_SEGMENT_SIZE - HEADER_SIZE;
/** Segments are stored in the host's byte order. @internal */
export const LITTLE_ENDIAN: boolean = endianness() === 'LE';
const NS_PER_S = 1_000_000_000n;
const I64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

/**
 * The clock status a segment carries (lib.rs `ClockStatus`): `unknown` and
 * `disrupted` must not be trusted; `synchronized` and `free-running` can be.
 *
 * @example
 * ```ts
 * const trusted = (s: ClockboundStatus) => s === 'synchronized' || s === 'free-running';
 * ```
 */
export type ClockboundStatus = 'unknown' | 'synchronized' | 'free-running' | 'disrupted';

const STATUS_CODES: Readonly<Record<ClockboundStatus, number>> = {
  unknown: 0,
  synchronized: 1,
  'free-running': 2,
  disrupted: 3,
};
const STATUS_NAMES: readonly ClockboundStatus[] = [
  'unknown',
  'synchronized',
  'free-running',
  'disrupted',
];

/**
 * The body of a segment, in the units it is stored in. Timestamps are
 * `CLOCK_MONOTONIC(_COARSE)` nanoseconds since boot, as `bigint`.
 *
 * @example
 * ```ts
 * const writer = ClockboundSegmentWriter.open('/tmp/clockbound/shm0');
 * const now = process.hrtime.bigint(); // CLOCK_MONOTONIC on Linux
 * writer.write({
 *   asOfNs: now,
 *   voidAfterNs: now + 10_000_000_000n, // trust it for 10 s
 *   boundNs: 250_000n,                  // CLOCK_REALTIME ± 250 µs
 *   disruptionMarker: 0n,
 *   maxDriftPpb: 50_000,
 *   status: 'synchronized',
 * });
 * readClockboundSegment('/tmp/clockbound/shm0').boundNs; //=> 250000n
 * ```
 */
export interface ClockboundData {
  /** When the bound was computed (monotonic ns). */
  readonly asOfNs: bigint;
  /** After this (monotonic ns) the data must not be trusted. */
  readonly voidAfterNs: bigint;
  /** Bound on |CLOCK_REALTIME − true time| at `asOfNs` (ns, ≥ 0). */
  readonly boundNs: bigint;
  /** Changes (by any amount) whenever the clock was disrupted. */
  readonly disruptionMarker: bigint;
  /** How fast the bound grows with the age of the data (parts per billion, < 10⁹). */
  readonly maxDriftPpb: number;
  /** The clock's status. */
  readonly status: ClockboundStatus;
  /**
   * ClockBound's "clock disruption support" flag. Leave it off unless the marker is the VMClock
   * device's: ClockBound's own client, seeing it set, opens `/dev/vmclock0` and reports `unknown`
   * whenever that device's marker differs from the segment's (clock-bound-vmclock/src/lib.rs
   * `VMClock::now`).
   *
   * @defaultValue `false`
   */
  readonly disruptionSupport?: boolean;
}

/**
 * A consistent read of a segment: its body plus the header it was read under.
 *
 * @example
 * ```ts
 * readClockboundSegment('/tmp/clockbound/shm0'); // a new segment after its first write (see ClockboundData)
 * //=> { generation: 2, segmentSize: 80, version: 2, asOfNs: …, voidAfterNs: …, boundNs: 250000n,
 * //     disruptionMarker: 0n, maxDriftPpb: 50000, status: 'synchronized', disruptionSupport: false }
 * ```
 */
export interface ClockboundSnapshot extends ClockboundData {
  /** The generation the body was read under (even, never 0). */
  readonly generation: number;
  /** The segment size from the header. */
  readonly segmentSize: number;
  /** The layout version from the header (2). */
  readonly version: number;
  /** `disruptionSupport` as stored (always present in a snapshot). */
  readonly disruptionSupport: boolean;
}

/**
 * Why a read produced no snapshot, with a stable `reason`.
 * @internal
 */
export interface SegmentProblem {
  readonly ok: false;
  readonly reason:
    | 'segment-missing'
    | 'segment-uninitialized'
    | 'segment-invalid'
    | 'segment-version'
    | 'segment-busy';
  readonly message: string;
  readonly error?: Error;
}

/** @internal */
export type SegmentRead =
  { readonly ok: true; readonly snapshot: ClockboundSnapshot } | SegmentProblem;

/** A `DataView` over exactly `bytes`. @internal */
export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function splitTimespec(ns: bigint, field: string): [bigint, bigint] {
  let sec = ns / NS_PER_S;
  let nsec = ns % NS_PER_S;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS_PER_S;
  }
  if (sec > I64_MAX || sec < -I64_MAX) throw new InvalidArgumentError(field, ns, 'a timespec');
  return [sec, nsec];
}

function checkData(data: ClockboundData): void {
  if (typeof data.boundNs !== 'bigint' || data.boundNs < 0n || data.boundNs > I64_MAX) {
    throw new InvalidArgumentError('boundNs', data.boundNs, 'a bigint in [0, 2⁶³)');
  }
  if (
    typeof data.disruptionMarker !== 'bigint' ||
    data.disruptionMarker < 0n ||
    data.disruptionMarker > U64_MAX
  ) {
    throw new InvalidArgumentError('disruptionMarker', data.disruptionMarker, 'a u64 bigint');
  }
  if (!Number.isInteger(data.maxDriftPpb) || data.maxDriftPpb < 0 || data.maxDriftPpb >= 1e9) {
    // lib.rs compute_bound_at: max_drift_ppb >= 1_000_000_000 is SegmentMalformed.
    throw new InvalidArgumentError('maxDriftPpb', data.maxDriftPpb, 'an integer in [0, 10⁹)');
  }
  if (!Object.hasOwn(STATUS_CODES, data.status)) {
    throw new InvalidArgumentError('status', data.status, STATUS_NAMES.join(' | '));
  }
  if (typeof data.asOfNs !== 'bigint' || typeof data.voidAfterNs !== 'bigint') {
    throw new InvalidArgumentError('asOfNs', data.asOfNs, 'bigint nanoseconds');
  }
}

/**
 * The 64-byte body (offsets 16–79) in native byte order.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a field is out of its range.
 * @internal
 */
export function encodeClockboundBody(data: ClockboundData): Uint8Array {
  checkData(data);
  const body = new Uint8Array(BODY_SIZE);
  const v = view(body);
  const at = (offset: number): number => offset - HEADER_SIZE;
  const [asSec, asNsec] = splitTimespec(data.asOfNs, 'asOfNs');
  const [vaSec, vaNsec] = splitTimespec(data.voidAfterNs, 'voidAfterNs');
  v.setBigInt64(at(OFFSETS.asOfSec), asSec, LITTLE_ENDIAN);
  v.setBigInt64(at(OFFSETS.asOfNsec), asNsec, LITTLE_ENDIAN);
  v.setBigInt64(at(OFFSETS.voidAfterSec), vaSec, LITTLE_ENDIAN);
  v.setBigInt64(at(OFFSETS.voidAfterNsec), vaNsec, LITTLE_ENDIAN);
  v.setBigInt64(at(OFFSETS.boundNs), data.boundNs, LITTLE_ENDIAN);
  v.setBigUint64(at(OFFSETS.disruptionMarker), data.disruptionMarker, LITTLE_ENDIAN);
  v.setUint32(at(OFFSETS.maxDriftPpb), data.maxDriftPpb, LITTLE_ENDIAN);
  v.setInt32(at(OFFSETS.status), STATUS_CODES[data.status], LITTLE_ENDIAN);
  v.setUint8(at(OFFSETS.disruptionSupport), data.disruptionSupport === true ? 1 : 0);
  return body;
}

/**
 * The 16-byte header in native byte order.
 * @internal
 */
export function encodeClockboundHeader(
  generation: number,
  version: number = CLOCKBOUND_VERSION,
  magic: readonly [number, number] = MAGIC_WORDS,
  segmentSize: number = CLOCKBOUND_SEGMENT_SIZE,
): Uint8Array {
  const header = new Uint8Array(HEADER_SIZE);
  const v = view(header);
  v.setUint32(0, magic[0], LITTLE_ENDIAN);
  v.setUint32(4, magic[1], LITTLE_ENDIAN);
  v.setUint32(OFFSETS.segmentSize, segmentSize, LITTLE_ENDIAN);
  v.setUint16(OFFSETS.version, version, LITTLE_ENDIAN);
  v.setUint16(OFFSETS.generation, generation, LITTLE_ENDIAN);
  return header;
}

/**
 * A whole 80-byte segment: header and body.
 * @internal
 */
export function encodeClockboundSegment(data: ClockboundData, generation: number): Uint8Array {
  const bytes = new Uint8Array(CLOCKBOUND_SEGMENT_SIZE);
  bytes.set(encodeClockboundHeader(generation), 0);
  bytes.set(encodeClockboundBody(data), HEADER_SIZE);
  return bytes;
}

/** A {@link SegmentProblem}, with `error` only when there is one. @internal */
export function segmentProblem(
  reason: SegmentProblem['reason'],
  message: string,
  error?: Error,
): SegmentProblem {
  return error === undefined
    ? { ok: false, reason, message }
    : { ok: false, reason, message, error };
}

/**
 * Checks a header the way ClockBound's `ShmHeader::is_valid` does (magic,
 * version > 0, generation > 0, version 2, size) and decodes the body.
 * @internal
 */
export function decodeClockboundSegment(bytes: Uint8Array, where: string): SegmentRead {
  if (bytes.byteLength < HEADER_SIZE) {
    return segmentProblem('segment-uninitialized', `${where} is shorter than a ClockBound header`);
  }
  const v = view(bytes);
  const m0 = v.getUint32(0, LITTLE_ENDIAN);
  const m1 = v.getUint32(4, LITTLE_ENDIAN);
  if (m0 !== MAGIC_WORDS[0] || m1 !== MAGIC_WORDS[1]) {
    const hex = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return segmentProblem(
      'segment-invalid',
      `${where} is not a ClockBound segment: it starts ${hex}, not the magic words 0x414D5A4E 0x43420200`,
    );
  }
  const segmentSize = v.getUint32(OFFSETS.segmentSize, LITTLE_ENDIAN);
  const version = v.getUint16(OFFSETS.version, LITTLE_ENDIAN);
  const generation = v.getUint16(OFFSETS.generation, LITTLE_ENDIAN);
  if (version === 0 || generation === 0) {
    // shm_header.rs: version 0 or generation 0 is SegmentNotInitialized.
    return segmentProblem(
      'segment-uninitialized',
      `${where} is not initialized yet (version ${version}, generation ${generation})`,
    );
  }
  if (version !== CLOCKBOUND_VERSION) {
    return segmentProblem(
      'segment-version',
      `${where} has layout version ${version}; this reader supports version ${CLOCKBOUND_VERSION}`,
    );
  }
  if (segmentSize < CLOCKBOUND_SEGMENT_SIZE || bytes.byteLength < CLOCKBOUND_SEGMENT_SIZE) {
    return segmentProblem(
      'segment-invalid',
      `${where} is malformed: segment size ${segmentSize} in a ${bytes.byteLength}-byte read, expected at least ${CLOCKBOUND_SEGMENT_SIZE}`,
    );
  }
  const statusCode = v.getInt32(OFFSETS.status, LITTLE_ENDIAN);
  const status = STATUS_NAMES[statusCode];
  if (status === undefined) {
    return segmentProblem('segment-invalid', `${where} is malformed: clock status ${statusCode}`);
  }
  const maxDriftPpb = v.getUint32(OFFSETS.maxDriftPpb, LITTLE_ENDIAN);
  if (maxDriftPpb >= 1e9) {
    return segmentProblem('segment-invalid', `${where} is malformed: max drift ${maxDriftPpb} ppb`);
  }
  const asOfNsec = v.getBigInt64(OFFSETS.asOfNsec, LITTLE_ENDIAN);
  const voidAfterNsec = v.getBigInt64(OFFSETS.voidAfterNsec, LITTLE_ENDIAN);
  const boundNs = v.getBigInt64(OFFSETS.boundNs, LITTLE_ENDIAN);
  if (
    asOfNsec < 0n ||
    asOfNsec >= NS_PER_S ||
    voidAfterNsec < 0n ||
    voidAfterNsec >= NS_PER_S ||
    boundNs < 0n
  ) {
    return segmentProblem(
      'segment-invalid',
      `${where} is malformed: a timespec or the bound is out of range`,
    );
  }
  return {
    ok: true,
    snapshot: {
      generation,
      segmentSize,
      version,
      asOfNs: v.getBigInt64(OFFSETS.asOfSec, LITTLE_ENDIAN) * NS_PER_S + asOfNsec,
      voidAfterNs: v.getBigInt64(OFFSETS.voidAfterSec, LITTLE_ENDIAN) * NS_PER_S + voidAfterNsec,
      boundNs,
      disruptionMarker: v.getBigUint64(OFFSETS.disruptionMarker, LITTLE_ENDIAN),
      maxDriftPpb,
      status,
      disruptionSupport: v.getUint8(OFFSETS.disruptionSupport) !== 0,
    },
  };
}

/**
 * The single-byte stores that move the generation from `from` to `to`, in
 * order. Each store changes one byte, so no reader can see a torn mix of two
 * generations: the high byte (when it changes) is stored while the value is
 * still odd, the low byte — which carries the parity — last.
 * @internal
 */
export function generationStores(from: number, to: number): Array<[offset: number, value: number]> {
  const stores: Array<[number, number]> = [];
  const loOffset = LITTLE_ENDIAN ? OFFSETS.generation : OFFSETS.generation + 1;
  const hiOffset = LITTLE_ENDIAN ? OFFSETS.generation + 1 : OFFSETS.generation;
  if (from >> 8 !== to >> 8) stores.push([hiOffset, to >> 8]);
  if ((from & 0xff) !== (to & 0xff)) stores.push([loOffset, to & 0xff]);
  return stores;
}

/**
 * The odd generation that marks an update in progress and the even one that
 * ends it (writer.rs `ShmWrite::write`): an even `current` goes up by one, an odd
 * one (a writer died mid-update) is kept; the end goes up by one more and skips 0
 * on rollover (0 means "not initialized" to readers), landing on 2.
 * @internal
 */
export function nextGenerations(current: number): { readonly odd: number; readonly even: number } {
  const odd = (current & 1) === 0 ? (current + 1) & 0xffff : current;
  const next = (odd + 1) & 0xffff;
  return { odd, even: next === 0 ? 2 : next };
}

/** The generation of a header with the right magic, version and size, even if odd. @internal */
export function decodeHeaderOnly(header: Uint8Array): number | undefined {
  const v = view(header);
  if (
    v.getUint32(0, LITTLE_ENDIAN) !== MAGIC_WORDS[0] ||
    v.getUint32(4, LITTLE_ENDIAN) !== MAGIC_WORDS[1]
  ) {
    return undefined;
  }
  if (v.getUint16(OFFSETS.version, LITTLE_ENDIAN) !== CLOCKBOUND_VERSION) return undefined;
  if (v.getUint32(OFFSETS.segmentSize, LITTLE_ENDIAN) !== CLOCKBOUND_SEGMENT_SIZE) return undefined;
  return v.getUint16(OFFSETS.generation, LITTLE_ENDIAN);
}
