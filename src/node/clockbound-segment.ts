/**
 * The AWS ClockBound shared-memory segment, protocol version 2: its layout, a
 * writer that updates it in place under ClockBound's lock-free generation
 * protocol (a seqlock), and a reader that takes consistent snapshots of it.
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
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import process from 'node:process';
import { InvalidArgumentError, SourceUnavailableError } from '../errors.js';
import { calibrateWall } from '../clock/calibrate.js';
import { systemWall } from '../clock/system.js';
import type { MonotonicSource } from '../clock/types.js';

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

const HEADER_SIZE = 16;
const BODY_SIZE = CLOCKBOUND_SEGMENT_SIZE - HEADER_SIZE;
const LITTLE_ENDIAN = endianness() === 'LE';
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
 * const now = process.hrtime.bigint(); // CLOCK_MONOTONIC on Linux
 * const data: ClockboundData = {
 *   asOfNs: now,
 *   voidAfterNs: now + 1_000_000_000_000n,
 *   boundNs: 250_000n,
 *   disruptionMarker: 0n,
 *   maxDriftPpb: 50_000,
 *   status: 'synchronized',
 * };
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
   * ClockBound's "clock disruption support" flag; default `false`. Leave it off
   * unless the marker is the VMClock device's: ClockBound's own client, seeing it
   * set, opens `/dev/vmclock0` and reports `unknown` whenever that device's marker
   * differs from the segment's (clock-bound-vmclock/src/lib.rs `VMClock::now`).
   */
  readonly disruptionSupport?: boolean;
}

/**
 * A consistent read of a segment: its body plus the header it was read under.
 *
 * @example
 * ```ts
 * const s: ClockboundSnapshot = readClockboundSegment('/var/run/clockbound/shm0');
 * console.log(s.generation, s.status, s.boundNs);
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

/** The current `CLOCK_MONOTONIC` reading (ns). libuv's `uv_hrtime()` reads exactly that clock on Linux. @internal */
export function monotonicNowNs(): bigint {
  return process.hrtime.bigint();
}

function view(bytes: Uint8Array): DataView {
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
 * @throws {InvalidArgumentError} When a field is out of its range.
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

function problem(reason: SegmentProblem['reason'], message: string, error?: Error): SegmentProblem {
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
    return problem('segment-uninitialized', `${where} is shorter than a ClockBound header`);
  }
  const v = view(bytes);
  const m0 = v.getUint32(0, LITTLE_ENDIAN);
  const m1 = v.getUint32(4, LITTLE_ENDIAN);
  if (m0 !== MAGIC_WORDS[0] || m1 !== MAGIC_WORDS[1]) {
    const hex = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return problem(
      'segment-invalid',
      `${where} is not a ClockBound segment: it starts ${hex}, not the magic words 0x414D5A4E 0x43420200`,
    );
  }
  const segmentSize = v.getUint32(OFFSETS.segmentSize, LITTLE_ENDIAN);
  const version = v.getUint16(OFFSETS.version, LITTLE_ENDIAN);
  const generation = v.getUint16(OFFSETS.generation, LITTLE_ENDIAN);
  if (version === 0 || generation === 0) {
    // shm_header.rs: version 0 or generation 0 is SegmentNotInitialized.
    return problem(
      'segment-uninitialized',
      `${where} is not initialized yet (version ${version}, generation ${generation})`,
    );
  }
  if (version !== CLOCKBOUND_VERSION) {
    return problem(
      'segment-version',
      `${where} has layout version ${version}; this reader supports version ${CLOCKBOUND_VERSION}`,
    );
  }
  if (segmentSize < CLOCKBOUND_SEGMENT_SIZE || bytes.byteLength < CLOCKBOUND_SEGMENT_SIZE) {
    return problem(
      'segment-invalid',
      `${where} is malformed: segment size ${segmentSize} in a ${bytes.byteLength}-byte read, expected at least ${CLOCKBOUND_SEGMENT_SIZE}`,
    );
  }
  const statusCode = v.getInt32(OFFSETS.status, LITTLE_ENDIAN);
  const status = STATUS_NAMES[statusCode];
  if (status === undefined) {
    return problem('segment-invalid', `${where} is malformed: clock status ${statusCode}`);
  }
  const maxDriftPpb = v.getUint32(OFFSETS.maxDriftPpb, LITTLE_ENDIAN);
  if (maxDriftPpb >= 1e9) {
    return problem('segment-invalid', `${where} is malformed: max drift ${maxDriftPpb} ppb`);
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
    return problem(
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
 * Reads a segment through one open file descriptor with ClockBound's reader
 * protocol (reader.rs `ShmReader::snapshot`): read the generation, copy the
 * body, read the generation again; accept only an even, non-zero generation
 * that did not change, else retry (immediately, at most `maxRetries` times).
 *
 * Node cannot map memory, so each step is a `pread` (three system calls per
 * attempt), made in that order. On x86-64 (TSO) loads are not reordered with
 * one another, so the three copies observe memory in program order; on weakly
 * ordered CPUs this relies on the system-call boundaries between them, which
 * the kernel does not document as barriers — tested on x86-64 only. The
 * writer's side is ordered by the page lock each `pwrite` takes and releases
 * (see {@link ClockboundSegmentWriter}).
 * @internal
 */
export class SegmentReader {
  readonly path: string;
  readonly #maxRetries: number;
  #fd: number | undefined;
  readonly #header = new Uint8Array(HEADER_SIZE);
  readonly #generation = new Uint8Array(2);
  readonly #segment = new Uint8Array(CLOCKBOUND_SEGMENT_SIZE);
  /** Attempts that saw an odd or changed generation, since creation. */
  retries = 0;

  constructor(path: string, maxRetries: number) {
    this.path = path;
    this.#maxRetries = maxRetries;
  }

  read(): SegmentRead {
    if (this.#fd === undefined) {
      try {
        this.#fd = openSync(this.path, fsConstants.O_RDONLY);
      } catch (error) {
        const e = error as NodeJS.ErrnoException;
        return problem(
          e.code === 'ENOENT' ? 'segment-missing' : 'segment-invalid',
          e.code === 'ENOENT'
            ? `no ClockBound segment at ${this.path} (is the daemon running?)`
            : `cannot open ${this.path}: ${e.message}`,
          e,
        );
      }
    }
    const fd = this.#fd;
    try {
      for (let attempt = 0; attempt <= this.#maxRetries; attempt++) {
        if (readSync(fd, this.#header, 0, HEADER_SIZE, 0) < HEADER_SIZE) {
          return problem(
            'segment-uninitialized',
            `${this.path} is shorter than a ClockBound header`,
          );
        }
        const first = view(this.#header).getUint16(OFFSETS.generation, LITTLE_ENDIAN);
        if ((first & 1) === 0) {
          const bodyBytes = readSync(fd, this.#segment, HEADER_SIZE, BODY_SIZE, HEADER_SIZE);
          readSync(fd, this.#generation, 0, 2, OFFSETS.generation);
          if (view(this.#generation).getUint16(0, LITTLE_ENDIAN) === first) {
            this.#segment.set(this.#header, 0);
            return decodeClockboundSegment(
              this.#segment.subarray(0, HEADER_SIZE + bodyBytes),
              this.path,
            );
          }
        }
        this.retries++;
      }
      return problem(
        'segment-busy',
        `${this.path} stayed mid-update (odd or changing generation) for ${this.#maxRetries} retries; a writer may have died while writing`,
      );
    } catch (error) {
      this.reopen();
      return problem(
        'segment-invalid',
        `cannot read ${this.path}: ${(error as Error).message}`,
        error as Error,
      );
    }
  }

  /** Closes the descriptor; the next read opens the path again (a replaced file is found). */
  reopen(): void {
    if (this.#fd === undefined) return;
    try {
      closeSync(this.#fd);
    } catch {
      // already closed
    }
    this.#fd = undefined;
  }
}

/**
 * Reads a ClockBound version 2 segment once (open, consistent snapshot, close).
 *
 * @param path - The segment; default `/var/run/clockbound/shm0`.
 * @returns The snapshot, exactly as stored (no judgement of its status or age).
 * @throws {SourceUnavailableError} When the file is missing, not a segment, of
 * another version, not initialized, or stays mid-update.
 *
 * @example
 * ```ts
 * const s = readClockboundSegment();
 * if (s.status === 'synchronized') console.log(`±${Number(s.boundNs) / 1e6} ms at ${s.asOfNs}`);
 * ```
 */
export function readClockboundSegment(path: string = CLOCKBOUND_DEFAULT_PATH): ClockboundSnapshot {
  const reader = new SegmentReader(path, 1000);
  try {
    const read = reader.read();
    if (read.ok) return read.snapshot;
    throw new SourceUnavailableError(`clockbound ${path}`, read.message, { cause: read.error });
  } finally {
    reader.reopen();
  }
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

/**
 * Options of {@link ClockboundSegmentWriter.open}.
 *
 * @example
 * ```ts
 * const options: ClockboundWriterOptions = { mode: 0o644 };
 * ```
 */
export interface ClockboundWriterOptions {
  /** Permission bits of a newly created file; default 0o644 (readable by every user, as readers need). */
  readonly mode?: number;
  /**
   * How far a reader's `CLOCK_MONOTONIC_COARSE` may lag `CLOCK_MONOTONIC` (ms);
   * default 20 (two ticks at HZ=100, the coarsest Linux). `markUnusable` puts
   * `void_after` at least this far in the past.
   */
  readonly coarseTickMs?: number;
}

/**
 * Writes a ClockBound version 2 segment in place, as ClockBound's daemon does,
 * so that its C and Rust clients — and {@link clockboundSource} — can read it.
 *
 * - **One file, updated in place.** The file is opened once (`O_RDWR | O_CREAT`)
 *   and every update is a `pwrite` into it; it is never replaced or truncated
 *   while valid, because readers map it once (reader.rs `MmapGuard`) and would
 *   keep reading a replaced file's old inode (or fault on a truncated one).
 * - **Seqlock.** An update stores an odd generation, then the 64-byte body, then
 *   the next even generation; rollover skips 0. Each generation change is made
 *   of single-byte stores (the high byte while still odd, the low byte last), so
 *   the generation itself can never be read torn. Every `pwrite` copies into
 *   the page cache with the page locked and unlocks it after (a release), so
 *   the stores become visible in that order to a reader that loads the
 *   generation with acquire semantics (x86-64 keeps stores in order anyway).
 * - **Restart.** A valid segment left by an earlier writer is reused: its
 *   generation continues (so a reader caching "generation unchanged" cannot
 *   mistake new data for old) and {@link ClockboundSegmentWriter.previous}
 *   exposes what was there (e.g. to continue its disruption marker). A missing
 *   or invalid file is created or rewritten in place with generation 0
 *   ("not initialized") before the first update.
 *
 * Only one writer per path: like ClockBound, this takes no lock.
 *
 * @example
 * ```ts
 * const writer = ClockboundSegmentWriter.open('/run/clockbound/shm0');
 * const now = process.hrtime.bigint();
 * writer.write({ asOfNs: now, voidAfterNs: now + 10_000_000_000n, boundNs: 500_000n,
 *   disruptionMarker: 0n, maxDriftPpb: 200_000, status: 'synchronized' });
 * writer.markUnusable();
 * writer.close();
 * ```
 */
export class ClockboundSegmentWriter {
  /** The segment's path. */
  readonly path: string;
  /** The valid segment found at open, if any (a restart). */
  readonly previous: ClockboundSnapshot | undefined;
  readonly #coarseTickNs: bigint;
  #fd: number | undefined;
  #generation: number;
  #writes = 0;
  #last: ClockboundData | undefined;
  readonly #byte = new Uint8Array(1);

  private constructor(
    path: string,
    fd: number,
    generation: number,
    previous: ClockboundSnapshot | undefined,
    coarseTickNs: bigint,
  ) {
    this.path = path;
    this.#fd = fd;
    this.#generation = generation;
    this.previous = previous;
    this.#last = previous;
    this.#coarseTickNs = coarseTickNs;
  }

  /**
   * Opens (creating the file and its directory if needed) a segment for writing.
   *
   * @param path - Where; ClockBound's is `/var/run/clockbound/shm0`.
   * @param options - File mode and the coarse-clock tick.
   * @returns The writer; nothing has been written yet unless the file had to be initialized.
   * @throws {Error} The file system's error (`EACCES`, `ENOTDIR`, …) when the file cannot be opened or created.
   * @throws {InvalidArgumentError} When an option is out of range.
   *
   * @example
   * ```ts
   * const writer = ClockboundSegmentWriter.open('/tmp/clockbound/shm0');
   * console.log(writer.previous?.generation ?? 'new segment');
   * ```
   */
  static open(path: string, options: ClockboundWriterOptions = {}): ClockboundSegmentWriter {
    const mode = options.mode ?? 0o644;
    const tickMs = options.coarseTickMs ?? DEFAULT_COARSE_TICK_MS;
    if (!(tickMs >= 0 && tickMs <= 1000)) {
      throw new InvalidArgumentError('coarseTickMs', tickMs, 'a number of ms from 0 to 1000');
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_CREAT, mode);
    try {
      const reader = new SegmentReader(path, 1000);
      const read = reader.read();
      reader.reopen();
      if (read.ok && fstatSync(fd).size === CLOCKBOUND_SEGMENT_SIZE) {
        return new ClockboundSegmentWriter(
          path,
          fd,
          read.snapshot.generation,
          read.snapshot,
          BigInt(Math.round(tickMs * 1e6)),
        );
      }
      // A stale odd generation from a writer that died mid-update is still a valid
      // segment to continue from (writer.rs keeps an odd generation as the start).
      const header = new Uint8Array(HEADER_SIZE);
      if (readSync(fd, header, 0, HEADER_SIZE, 0) === HEADER_SIZE) {
        const h = decodeHeaderOnly(header);
        if (h !== undefined && fstatSync(fd).size === CLOCKBOUND_SEGMENT_SIZE) {
          return new ClockboundSegmentWriter(
            path,
            fd,
            h,
            undefined,
            BigInt(Math.round(tickMs * 1e6)),
          );
        }
      }
      // Missing, short, foreign or of another version: lay it out afresh, in place,
      // with generation 0 so readers see "not initialized" until the first update.
      if (fstatSync(fd).size !== CLOCKBOUND_SEGMENT_SIZE)
        ftruncateSync(fd, CLOCKBOUND_SEGMENT_SIZE);
      const fresh = new Uint8Array(CLOCKBOUND_SEGMENT_SIZE);
      fresh.set(encodeClockboundHeader(0), 0);
      writeAll(fd, fresh, 0);
      return new ClockboundSegmentWriter(path, fd, 0, undefined, BigInt(Math.round(tickMs * 1e6)));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** The generation now in the file (even after every completed update). */
  get generation(): number {
    return this.#generation;
  }

  /** Updates written since open. */
  get writes(): number {
    return this.#writes;
  }

  /** The data of the latest update (or the previous writer's, before the first). */
  get last(): ClockboundData | undefined {
    return this.#last;
  }

  /**
   * Publishes `data` with the generation protocol: odd generation, body, even generation.
   *
   * @param data - The new body.
   * @throws {InvalidArgumentError} When a field is out of range (nothing is written).
   * @throws {Error} When the writer is closed, or the file system fails.
   *
   * @example
   * ```ts
   * writer.write({ ...writer.last!, status: 'free-running' });
   * ```
   */
  write(data: ClockboundData): void {
    const body = encodeClockboundBody(data);
    const fd = this.#fd;
    if (fd === undefined)
      throw new Error(`the ClockBound segment writer for ${this.path} is closed`);
    const { odd, even } = nextGenerations(this.#generation);
    this.#storeGeneration(fd, this.#generation, odd);
    this.#generation = odd;
    writeAll(fd, body, HEADER_SIZE);
    this.#storeGeneration(fd, odd, even);
    this.#generation = even;
    this.#writes++;
    this.#last = data;
  }

  /**
   * Marks the segment unusable, as a stopping writer must: status `unknown` and
   * `void_after` in the past (older than any reader's coarse clock), keeping the
   * last bound, drift and disruption marker.
   *
   * @throws {Error} When the writer is closed, or the file system fails.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => { writer.markUnusable(); writer.close(); });
   * ```
   */
  markUnusable(): void {
    const past = monotonicNowNs() - this.#coarseTickNs - 1n;
    const last = this.#last;
    this.write({
      asOfNs: past,
      voidAfterNs: past,
      boundNs: last?.boundNs ?? 0n,
      disruptionMarker: last?.disruptionMarker ?? 0n,
      maxDriftPpb: last?.maxDriftPpb ?? 0,
      status: 'unknown',
      disruptionSupport: last?.disruptionSupport ?? false,
    });
  }

  /**
   * Closes the file descriptor (the file stays, for readers that still map it). Idempotent.
   *
   * @example
   * ```ts
   * writer.close();
   * ```
   */
  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  #storeGeneration(fd: number, from: number, to: number): void {
    for (const [offset, value] of generationStores(from, to)) {
      this.#byte[0] = value;
      if (writeSync(fd, this.#byte, 0, 1, offset) !== 1) {
        throw new Error(`short write to ${this.path}`);
      }
    }
  }
}

/** The generation of a header with the right magic, version and size, even if odd. */
function decodeHeaderOnly(header: Uint8Array): number | undefined {
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

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const n = writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
    if (n <= 0) throw new Error('short write to the ClockBound segment');
    done += n;
  }
}

/**
 * Default for how far `CLOCK_MONOTONIC_COARSE` may lag `CLOCK_MONOTONIC` (ms).
 * The coarse clock is the monotonic clock as of the last timekeeping update,
 * nominally one timer tick (1 ms at HZ=1000, 4 ms at HZ=250, 10 ms at HZ=100);
 * a tickless kernel in a VM updates it later at times: on a 2-core VM with a
 * 4 ms tick (`clock_getres` 4 ms) it was measured lagging by up to 5.9 ms. 20 ms
 * covers HZ=100 twice over; more lag only makes ClockBound's client refuse a
 * read (causality), never accept a wrong one.
 * @internal
 */
export const DEFAULT_COARSE_TICK_MS = 20;

/**
 * `CLOCK_MONOTONIC` as a {@link MonotonicSource} in ms (`process.hrtime.bigint()`).
 * @internal
 */
export const hrtimeMonotonic: MonotonicSource = {
  now: () => Number(process.hrtime.bigint()) / 1e6,
  resolutionMs: 1e-6,
};

/** A wall-clock calibration this tight (ms) is not retried. */
const TIGHT_CALIBRATION_MS = 0.02;

/**
 * `CLOCK_REALTIME` mapped onto `CLOCK_MONOTONIC` with sub-microsecond error.
 *
 * On Linux both clocks come from one timekeeper and are slewed together, so
 * `REALTIME − MONOTONIC` only changes when the wall clock is stepped (settimeofday,
 * an NTP step, a leap second). One edge calibration of `Date.now()` (a spin of
 * up to ~1 ms, `calibrateWall`; repeated up to 4 times if a preemption widened
 * it past 20 µs) therefore holds until a step; every use checks
 * the mapping against one `Date.now()` read (1 ms granularity, so a step larger
 * than about 1 ms is caught at once) and calibrates again on a mismatch, and at
 * least every `maxAgeMs`.
 * @internal
 */
export class RealtimeMap {
  #offsetMs = 0;
  #errorMs = Infinity;
  #at = -Infinity;
  readonly #maxAgeMs: number;
  /** Calibrations done (for tests and cost accounting). */
  calibrations = 0;

  constructor(maxAgeMs: number = 60_000) {
    this.#maxAgeMs = maxAgeMs;
  }

  /** `REALTIME (epoch ms) ≈ MONOTONIC (ms) + offsetMs`, within `errorMs`. */
  current(): { readonly offsetMs: number; readonly errorMs: number } {
    const before = hrtimeMonotonic.now();
    const wall = systemWall.now();
    const after = hrtimeMonotonic.now();
    const fresh = before - this.#at <= this.#maxAgeMs;
    const consistent =
      wall <= after + this.#offsetMs + this.#errorMs &&
      wall + 1 >= before + this.#offsetMs - this.#errorMs;
    if (!fresh || !consistent) {
      // A preemption inside the spin widens the bracket: keep the tightest of a few.
      let best = calibrateWall(systemWall, hrtimeMonotonic, 3);
      for (let i = 0; i < 4 && (!best.edge || best.errorMs > TIGHT_CALIBRATION_MS); i++) {
        const next = calibrateWall(systemWall, hrtimeMonotonic, 3);
        if (!best.edge || (next.edge && next.errorMs < best.errorMs)) best = next;
      }
      this.#offsetMs = best.offsetMs;
      this.#errorMs = best.errorMs;
      this.#at = best.monotonicAt;
      this.calibrations++;
    }
    return { offsetMs: this.#offsetMs, errorMs: this.#errorMs };
  }
}
