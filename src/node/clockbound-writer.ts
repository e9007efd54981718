/**
 * Writing a ClockBound version 2 segment file in place, as ClockBound's daemon
 * does (writer.rs `ShmWrite::write`): {@link ClockboundSegmentWriter} and its
 * options. The layout, codec and generation arithmetic are in
 * `clockbound-segment.ts`.
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
import { dirname } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import {
  CLOCKBOUND_SEGMENT_SIZE,
  HEADER_SIZE,
  decodeHeaderOnly,
  encodeClockboundBody,
  encodeClockboundHeader,
  generationStores,
  nextGenerations,
  type ClockboundData,
  type ClockboundSnapshot,
} from './clockbound-segment.js';
import { SegmentReader } from './clockbound-reader.js';
import { monotonicNowNs } from './host-clocks.js';

/**
 * Options of {@link ClockboundSegmentWriter.open}.
 *
 * @example
 * ```ts
 * import { statSync } from 'node:fs';
 * ClockboundSegmentWriter.open('/tmp/clockbound/shm0', { mode: 0o640 }); // a new file: owner and group only
 * (statSync('/tmp/clockbound/shm0').mode & 0o777).toString(8); //=> '640'
 * ```
 */
export interface ClockboundWriterOptions {
  /**
   * Permission bits of a newly created file. The default makes it readable by every user, as
   * readers need.
   *
   * @defaultValue `0o644`
   */
  readonly mode?: number;
  /**
   * How far a reader's `CLOCK_MONOTONIC_COARSE` may lag `CLOCK_MONOTONIC` (ms). `markUnusable` puts
   * `void_after` at least this far in the past. The default is two ticks at HZ=100, the coarsest
   * Linux.
   *
   * @defaultValue `20`
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
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} The file system's error (`EACCES`, `ENOTDIR`, …) when the file cannot be opened or created.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is out of range.
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a field is out of range (nothing is written).
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When the writer is closed, or the file system fails.
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
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When the writer is closed, or the file system fails.
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
