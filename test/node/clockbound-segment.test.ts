import {
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SourceUnavailableError } from '../../src/errors.js';
import {
  CLOCKBOUND_DEFAULT_PATH,
  CLOCKBOUND_SEGMENT_SIZE,
  ClockboundSegmentWriter,
  readClockboundSegment,
  type ClockboundData,
} from '../../src/node/index.js';
import {
  OFFSETS,
  encodeClockboundHeader,
  encodeClockboundSegment,
  generationStores,
  nextGenerations,
} from '../../src/node/clockbound-segment.js';
import { monotonicNowNs } from '../../src/node/host-clocks.js';

const LE = endianness() === 'LE';

const sample: ClockboundData = {
  asOfNs: 1_234n * 1_000_000_000n + 567_890_123n,
  voidAfterNs: 2_234n * 1_000_000_000n + 1n,
  boundNs: 987_654_321n,
  disruptionMarker: 0x0102_0304_0506_0708n,
  maxDriftPpb: 50_000,
  status: 'free-running',
  disruptionSupport: true,
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chronobound-cb-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ClockBound version 2 layout', () => {
  it('puts every field at the offset of ClockBound v2.0.2 (shm_header.rs, lib.rs), native-endian', () => {
    const bytes = Buffer.from(encodeClockboundSegment(sample, 6));
    expect(bytes.length).toBe(80);
    // The magic is two native-endian u32 words; on x86 the file starts 4E 5A 4D 41 00 02 42 43.
    const u32 = (o: number): number => (LE ? bytes.readUInt32LE(o) : bytes.readUInt32BE(o));
    const u16 = (o: number): number => (LE ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o));
    const i64 = (o: number): bigint => (LE ? bytes.readBigInt64LE(o) : bytes.readBigInt64BE(o));
    expect(u32(0)).toBe(0x414d5a4e);
    expect(u32(4)).toBe(0x43420200);
    if (LE) expect(bytes.subarray(0, 8).toString('hex')).toBe('4e5a4d4100024243');
    expect(u32(8)).toBe(80);
    expect(u16(12)).toBe(2);
    expect(u16(14)).toBe(6);
    expect(i64(16)).toBe(1234n);
    expect(i64(24)).toBe(567_890_123n);
    expect(i64(32)).toBe(2234n);
    expect(i64(40)).toBe(1n);
    expect(i64(48)).toBe(987_654_321n);
    expect(LE ? bytes.readBigUInt64LE(56) : bytes.readBigUInt64BE(56)).toBe(0x0102030405060708n);
    expect(u32(64)).toBe(50_000);
    expect(LE ? bytes.readInt32LE(68) : bytes.readInt32BE(68)).toBe(2);
    expect(bytes[72]).toBe(1);
    expect([...bytes.subarray(73, 80)]).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(OFFSETS).toMatchObject({ generation: 14, asOfSec: 16, boundNs: 48, status: 68 });
    expect(CLOCKBOUND_DEFAULT_PATH).toBe('/var/run/clockbound/shm0');
  });

  it('refuses fields a reader would call malformed', () => {
    expect(() => encodeClockboundSegment({ ...sample, maxDriftPpb: 1e9 }, 2)).toThrow(
      InvalidArgumentError,
    );
    expect(() => encodeClockboundSegment({ ...sample, boundNs: -1n }, 2)).toThrow(/boundNs/);
    expect(() =>
      encodeClockboundSegment({ ...sample, status: 'fine' as unknown as 'unknown' }, 2),
    ).toThrow(/status/);
  });
});

describe('the generation protocol', () => {
  it('goes odd then even, keeps an odd start, skips 0 on rollover', () => {
    expect(nextGenerations(0)).toEqual({ odd: 1, even: 2 });
    expect(nextGenerations(2)).toEqual({ odd: 3, even: 4 });
    expect(nextGenerations(7)).toEqual({ odd: 7, even: 8 }); // a writer died mid-update
    expect(nextGenerations(0xfffe)).toEqual({ odd: 0xffff, even: 2 });
  });

  it('changes one byte per store, the parity-carrying low byte last (exhaustive)', () => {
    const wrong: string[] = [];
    for (let gen = 0; gen <= 0xffff; gen += 2) {
      const { odd, even } = nextGenerations(gen);
      for (const [from, to] of [
        [gen, odd],
        [odd, even],
      ] as const) {
        const stores = generationStores(from, to);
        let bytes = [from & 0xff, from >> 8];
        for (const [offset, value] of stores) {
          const lo = LE ? offset === 14 : offset === 15;
          bytes = lo ? [value, bytes[1] ?? 0] : [bytes[0] ?? 0, value];
          const seen = (bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8);
          // Every intermediate value a reader can see is odd ("being written") or the target.
          if (seen !== to && (seen & 1) === 0) wrong.push(`${from}→${to} shows ${seen}`);
        }
        if (stores.length > 2) wrong.push(`${from}→${to} takes ${stores.length} stores`);
        if (((bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8)) !== to)
          wrong.push(`${from}→${to} ends wrong`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('ClockboundSegmentWriter', () => {
  it('creates the file (and its directory) in place, readable by all, initialized at generation 0', () => {
    const path = join(dir, 'run', 'clockbound', 'shm0');
    const writer = ClockboundSegmentWriter.open(path);
    try {
      expect(statSync(path).size).toBe(CLOCKBOUND_SEGMENT_SIZE);
      expect(statSync(path).mode & 0o777).toBe(0o644);
      expect(writer.generation).toBe(0);
      expect(() => readClockboundSegment(path)).toThrow(/not initialized/);
      writer.write(sample);
      expect(writer.generation).toBe(2);
      expect(readClockboundSegment(path)).toEqual({
        ...sample,
        generation: 2,
        segmentSize: 80,
        version: 2,
      });
      writer.write({ ...sample, status: 'synchronized', disruptionSupport: false });
      expect(readClockboundSegment(path)).toMatchObject({ generation: 4, status: 'synchronized' });
      expect(writer.writes).toBe(2);
    } finally {
      writer.close();
    }
  });

  it('restarts on the same inode, continuing the generation; never truncates or replaces', () => {
    const path = join(dir, 'shm0');
    const first = ClockboundSegmentWriter.open(path);
    for (let i = 0; i < 5; i++) first.write(sample);
    first.close();
    const inode = statSync(path).ino;
    const second = ClockboundSegmentWriter.open(path);
    try {
      expect(second.previous).toMatchObject({ generation: 10, boundNs: sample.boundNs });
      expect(second.generation).toBe(10);
      second.write(sample);
      expect(readClockboundSegment(path).generation).toBe(12);
      expect(statSync(path).ino).toBe(inode);
    } finally {
      second.close();
    }
  });

  it('continues from an odd generation left by a writer that died mid-update', () => {
    const path = join(dir, 'shm0');
    writeFileSync(path, encodeClockboundSegment(sample, 41));
    expect(() => readClockboundSegment(path)).toThrow(/mid-update/);
    const writer = ClockboundSegmentWriter.open(path);
    try {
      writer.write(sample);
      expect(readClockboundSegment(path).generation).toBe(42);
    } finally {
      writer.close();
    }
  });

  it('lays out a foreign or short file afresh, in place', () => {
    const path = join(dir, 'shm0');
    writeFileSync(path, 'not a clockbound segment at all, and longer than eighty bytes.........!!');
    const inode = statSync(path).ino;
    const writer = ClockboundSegmentWriter.open(path);
    try {
      expect(writer.previous).toBeUndefined();
      expect(statSync(path).size).toBe(80);
      expect(statSync(path).ino).toBe(inode);
      writer.write(sample);
      expect(readClockboundSegment(path).status).toBe('free-running');
    } finally {
      writer.close();
    }
  });

  it('markUnusable: status unknown, void_after in the past, the rest kept', () => {
    const path = join(dir, 'shm0');
    const writer = ClockboundSegmentWriter.open(path);
    try {
      writer.write({ ...sample, status: 'synchronized' });
      writer.markUnusable();
      const s = readClockboundSegment(path);
      expect(s.status).toBe('unknown');
      expect(s.voidAfterNs).toBeLessThan(monotonicNowNs() - 20_000_000n + 1n);
      expect(s.boundNs).toBe(sample.boundNs);
      expect(s.disruptionMarker).toBe(sample.disruptionMarker);
    } finally {
      writer.close();
    }
    expect(() => writer.write(sample)).toThrow(/closed/);
    writer.close();
  });

  it('reports a path it cannot create with the file system error', () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    expect(() => ClockboundSegmentWriter.open(join(file, 'shm0'))).toThrow(/ENOTDIR|EEXIST/);
  });
});

describe('readClockboundSegment', () => {
  const at = (bytes: Uint8Array): string => {
    const path = join(dir, `seg-${Math.random().toString(16).slice(2)}`);
    writeFileSync(path, bytes);
    return path;
  };

  it('names what is wrong: missing, magic, version, size, uninitialized, busy', () => {
    expect(() => readClockboundSegment(join(dir, 'none'))).toThrow(SourceUnavailableError);
    expect(() => readClockboundSegment(join(dir, 'none'))).toThrow(/no ClockBound segment/);
    const good = encodeClockboundSegment(sample, 2);

    const magic = Uint8Array.from(good);
    magic[0] = 0x41; // the big-endian byte order of PROTOCOL.md's table is not what readers check
    expect(() => readClockboundSegment(at(magic))).toThrow(/not a ClockBound segment/);

    const v3 = Uint8Array.from(good);
    v3.set(encodeClockboundHeader(2, 3), 0);
    expect(() => readClockboundSegment(at(v3))).toThrow(/layout version 3/);

    const small = Uint8Array.from(good);
    small.set(encodeClockboundHeader(2, 2, [0x414d5a4e, 0x43420200], 16), 0);
    expect(() => readClockboundSegment(at(small))).toThrow(/malformed: segment size 16/);

    expect(() => readClockboundSegment(at(good.subarray(0, 40)))).toThrow(/malformed/);
    expect(() => readClockboundSegment(at(good.subarray(0, 10)))).toThrow(/shorter/);
    expect(() => readClockboundSegment(at(encodeClockboundSegment(sample, 0)))).toThrow(
      /not initialized/,
    );
    expect(() => readClockboundSegment(at(encodeClockboundSegment(sample, 9)))).toThrow(
      /mid-update/,
    );

    const status = Buffer.from(good);
    if (LE) status.writeInt32LE(7, 68);
    else status.writeInt32BE(7, 68);
    expect(() => readClockboundSegment(at(status))).toThrow(/clock status/);
    expect(readClockboundSegment(at(good)).boundNs).toBe(sample.boundNs);
  });

  it('reads what another writer put there byte for byte', () => {
    const path = join(dir, 'shm0');
    const fd = openSync(path, 'w');
    writeSync(fd, encodeClockboundSegment(sample, 1234));
    closeSync(fd);
    expect(readFileSync(path).length).toBe(80);
    expect(readClockboundSegment(path)).toMatchObject({ generation: 1234, status: 'free-running' });
  });
});
