/**
 * Reading a ClockBound version 2 segment file: {@link SegmentReader} takes
 * consistent snapshots through one open descriptor with ClockBound's reader
 * protocol (reader.rs `ShmReader::snapshot`), and {@link readClockboundSegment}
 * reads one snapshot and closes. The layout and codec are in
 * `clockbound-segment.ts`.
 *
 * @module
 */
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { SourceUnavailableError } from '../errors.js';
import {
  BODY_SIZE,
  CLOCKBOUND_DEFAULT_PATH,
  CLOCKBOUND_SEGMENT_SIZE,
  HEADER_SIZE,
  LITTLE_ENDIAN,
  OFFSETS,
  decodeClockboundSegment,
  segmentProblem,
  view,
  type ClockboundSnapshot,
  type SegmentRead,
} from './clockbound-segment.js';

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
        return segmentProblem(
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
          return segmentProblem(
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
      return segmentProblem(
        'segment-busy',
        `${this.path} stayed mid-update (odd or changing generation) for ${this.#maxRetries} retries; a writer may have died while writing`,
      );
    } catch (error) {
      this.reopen();
      return segmentProblem(
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
 * @throws {@link chronobound!SourceUnavailableError | SourceUnavailableError} When the file is missing, not a segment, of
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
