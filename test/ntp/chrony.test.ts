import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortError,
  InvalidArgumentError,
  NtpTimeoutError,
  isChronoboundError,
  SourceUnavailableError,
  TrueClock,
  systemMonotonic,
} from '../../src/index.js';
import type { HostCorrection, SourceProblem, SyncSample } from '../../src/index.js';
import {
  CHRONY_LOCAL_REFERENCE_ID,
  ChronyProtocolError,
  ChronyTimeoutError,
  chronyHostCorrection,
  chronySource,
  decodeChronyFloat,
  decodeChronyTrackingReply,
  encodeChronyFloat,
  encodeChronyTrackingRequest,
  readChronyTracking,
  type ChronyTracking,
} from '../../src/ntp/index.js';
import { trackingToSample } from '../../src/ntp/chrony-sample.js';
import { fcParams } from '../support/fc.js';
import { tightestWallCalibration } from '../support/host-clocks.js';

// ---------------------------------------------------------------- fixtures

interface ReplyFields {
  version: number;
  packetType: number;
  command: number;
  replyType: number;
  status: number;
  sequence: number;
  refId: number;
  family: number;
  address: readonly number[];
  stratum: number;
  leap: number;
  secHigh: number;
  secLow: number;
  nanos: number;
  /** Seconds / ppm, as chronyd keeps them. */
  correction: number;
  lastOffset: number;
  rmsOffset: number;
  frequency: number;
  residual: number;
  skew: number;
  rootDelay: number;
  rootDispersion: number;
  updateInterval: number;
  length: number;
}

const BASE: ReplyFields = {
  version: 6,
  packetType: 2,
  command: 33,
  replyType: 5,
  status: 0,
  sequence: 0xdeadbeef,
  refId: 0xc0a80001,
  family: 1,
  address: [192, 168, 0, 1],
  stratum: 3,
  leap: 0,
  secHigh: 0,
  secLow: 1_795_000_000,
  nanos: 250_000_000,
  correction: 0.0015,
  lastOffset: -0.000002,
  rmsOffset: 0.00001,
  frequency: -12.5,
  residual: 0.01,
  skew: 0.2,
  rootDelay: 0.024,
  rootDispersion: 0.0008,
  updateInterval: 64.5,
  length: 104,
};

/** Builds a tracking reply byte by byte, as chronyd lays it out (candm.h). */
function buildReply(overrides: Partial<ReplyFields> = {}): Uint8Array {
  const f = { ...BASE, ...overrides };
  const bytes = new Uint8Array(Math.max(f.length, 104));
  const v = new DataView(bytes.buffer);
  v.setUint8(0, f.version);
  v.setUint8(1, f.packetType);
  v.setUint16(4, f.command);
  v.setUint16(6, f.replyType);
  v.setUint16(8, f.status);
  v.setUint32(16, f.sequence);
  v.setUint32(28, f.refId);
  f.address.forEach((b, i) => v.setUint8(32 + i, b));
  v.setUint16(48, f.family);
  v.setUint16(52, f.stratum);
  v.setUint16(54, f.leap);
  v.setUint32(56, f.secHigh);
  v.setUint32(60, f.secLow);
  v.setUint32(64, f.nanos);
  const floats = [
    f.correction,
    f.lastOffset,
    f.rmsOffset,
    f.frequency,
    f.residual,
    f.skew,
    f.rootDelay,
    f.rootDispersion,
    f.updateInterval,
  ];
  floats.forEach((x, i) => v.setUint32(68 + 4 * i, encodeChronyFloat(x)));
  return bytes.subarray(0, f.length);
}

function rel(x: number): number {
  return Math.abs(x) * 2 ** -22;
}

function protocolField(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ChronyProtocolError);
    return (error as ChronyProtocolError).field;
  }
  throw new Error('expected a ChronyProtocolError');
}

// ---------------------------------------------------------------- codec

describe('chrony float format', () => {
  it('decodes hand-computed words', () => {
    // 1.0 = 2^23 · 2^(2−25); −1.0 = −2^24 · 2^(1−25).
    expect(decodeChronyFloat(0x04800000)).toBe(1);
    expect(decodeChronyFloat(0x03000000)).toBe(-1);
    expect(decodeChronyFloat(0)).toBe(0);
    // Smallest magnitude: coef 1, exp −64 → 2^−89.
    expect(decodeChronyFloat(0x80000001)).toBe(2 ** -89);
    // Largest: coef 2^24−1, exp 63 → (2^24−1)·2^38.
    expect(decodeChronyFloat(0x7effffff)).toBe((2 ** 24 - 1) * 2 ** 38);
  });

  it('encodes like chronyd', () => {
    expect(encodeChronyFloat(1)).toBe(0x04800000);
    expect(encodeChronyFloat(-1)).toBe(0x03000000);
    expect(encodeChronyFloat(0)).toBe(0);
    expect(encodeChronyFloat(1e-101)).toBe(0);
    expect(decodeChronyFloat(encodeChronyFloat(Infinity))).toBe((2 ** 24 - 1) * 2 ** 38);
    expect(decodeChronyFloat(encodeChronyFloat(-Infinity))).toBe(-(2 ** 24) * 2 ** 38);
    expect(() => encodeChronyFloat(Number.NaN)).toThrow(InvalidArgumentError);
  });

  it('round-trips within 2^-22 relative', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e9, max: 1e9, noNaN: true }).filter((x) => Math.abs(x) > 1e-12),
        (x) => {
          const back = decodeChronyFloat(encodeChronyFloat(x));
          expect(Math.abs(back - x)).toBeLessThanOrEqual(rel(x));
          expect(Math.sign(back)).toBe(Math.sign(x));
        },
      ),
      fcParams(2000),
    );
  });

  it('decodes every 32-bit word to a finite number that re-encodes to the same value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (word) => {
        const x = decodeChronyFloat(word);
        expect(Number.isFinite(x)).toBe(true);
        expect(decodeChronyFloat(encodeChronyFloat(x))).toBe(x);
      }),
      fcParams(2000),
    );
  });
});

describe('tracking request', () => {
  it('is padded to the reply length, with the sequence and attempt', () => {
    const r = encodeChronyTrackingRequest(0x01020304, 2);
    expect(r.length).toBe(104);
    expect(Array.from(r.subarray(0, 12))).toEqual([6, 1, 0, 0, 0, 33, 0, 2, 1, 2, 3, 4]);
    expect(r.subarray(12).every((b) => b === 0)).toBe(true);
  });

  it('rejects out-of-range sequence and attempt', () => {
    expect(() => encodeChronyTrackingRequest(-1)).toThrow(InvalidArgumentError);
    expect(() => encodeChronyTrackingRequest(2 ** 32)).toThrow(InvalidArgumentError);
    expect(() => encodeChronyTrackingRequest(1, 65536)).toThrow(InvalidArgumentError);
  });
});

describe('tracking reply', () => {
  it('decodes every field into milliseconds', () => {
    const t = decodeChronyTrackingReply(buildReply(), 0xdeadbeef);
    expect(t.refId).toBe(0xc0a80001);
    expect(t.ipAddr).toBe('192.168.0.1');
    expect(t.stratum).toBe(3);
    expect(t.leapStatus).toBe(0);
    expect(t.refTime).toBe(1_795_000_000_250);
    const close = (actual: number, expected: number): void =>
      expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel(expected));
    close(t.currentCorrectionMs, 1.5);
    close(t.lastOffsetMs, -0.002);
    close(t.rmsOffsetMs, 0.01);
    close(t.frequencyPpm, -12.5);
    close(t.residualFrequencyPpm, 0.01);
    close(t.skewPpm, 0.2);
    close(t.rootDelayMs, 24);
    close(t.rootDispersionMs, 0.8);
    close(t.lastUpdateIntervalS, 64.5);
  });

  it('decodes the address families and the timespec high word', () => {
    const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    expect(
      decodeChronyTrackingReply(buildReply({ family: 2, address: v6 }), BASE.sequence).ipAddr,
    ).toBe('2001:db8::1');
    // The longest run of zero groups is compressed, the first of equal runs.
    const v6b = [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3];
    expect(
      decodeChronyTrackingReply(buildReply({ family: 2, address: v6b }), BASE.sequence).ipAddr,
    ).toBe('1:0:0:2::3');
    // Same text form as the WHATWG URL serializer (RFC 5952).
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(0), fc.nat(0xffff)), { minLength: 8, maxLength: 8 }),
        (groups) => {
          const address = groups.flatMap((g) => [g >> 8, g & 0xff]);
          const text = decodeChronyTrackingReply(
            buildReply({ family: 2, address }),
            BASE.sequence,
          ).ipAddr;
          const url = new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]/`);
          expect(`[${text}]`).toBe(url.hostname);
        },
      ),
      fcParams(500),
    );
    expect(decodeChronyTrackingReply(buildReply({ family: 0 }), BASE.sequence).ipAddr).toBeNull();
    expect(
      decodeChronyTrackingReply(buildReply({ family: 3, address: [0, 0, 0, 7] }), BASE.sequence)
        .ipAddr,
    ).toBe('ID#0000000007');
    // 0x7fffffff in the high word means "no high word" (32-bit time_t).
    expect(
      decodeChronyTrackingReply(buildReply({ secHigh: 0x7fffffff }), BASE.sequence).refTime,
    ).toBe(1_795_000_000_250);
    // After 2106 the high word carries.
    expect(
      decodeChronyTrackingReply(buildReply({ secHigh: 1, secLow: 0, nanos: 0 }), BASE.sequence)
        .refTime,
    ).toBe(2 ** 32 * 1000);
  });

  it('names the field of every rejection', () => {
    const s = BASE.sequence;
    expect(protocolField(() => decodeChronyTrackingReply(new Uint8Array(27), s))).toBe('length');
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ length: 100 }), s))).toBe(
      'length',
    );
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ packetType: 1 }), s))).toBe(
      'packetType',
    );
    expect(protocolField(() => decodeChronyTrackingReply(buildReply(), s + 1))).toBe('sequence');
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ version: 5 }), s))).toBe(
      'version',
    );
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ status: 2 }), s))).toBe(
      'status',
    );
    expect(() => decodeChronyTrackingReply(buildReply({ status: 2 }), s)).toThrow(/cmdallow/);
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ command: 14 }), s))).toBe(
      'command',
    );
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ replyType: 2 }), s))).toBe(
      'replyType',
    );
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ stratum: 17 }), s))).toBe(
      'stratum',
    );
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ leap: 4 }), s))).toBe(
      'leapStatus',
    );
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ rootDelay: -1 }), s))).toBe(
      'rootDelay',
    );
    expect(
      protocolField(() => decodeChronyTrackingReply(buildReply({ rootDispersion: -1e-6 }), s)),
    ).toBe('rootDispersion');
    expect(
      protocolField(() => decodeChronyTrackingReply(buildReply({ nanos: 1_000_000_000 }), s)),
    ).toBe('refTime');
    expect(protocolField(() => decodeChronyTrackingReply(buildReply({ family: 9 }), s))).toBe(
      'ipAddr',
    );
  });

  it('fuzzed and mutated replies give a sane report or a ChronyProtocolError, nothing else', () => {
    const valid = buildReply();
    const check = (bytes: Uint8Array): void => {
      let t: ChronyTracking;
      try {
        t = decodeChronyTrackingReply(bytes, BASE.sequence);
      } catch (error) {
        if (!(error instanceof ChronyProtocolError)) throw error;
        return;
      }
      for (const value of Object.values(t)) {
        if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true);
      }
      expect(t.rootDelayMs).toBeGreaterThanOrEqual(0);
      expect(t.rootDispersionMs).toBeGreaterThanOrEqual(0);
      expect(t.leapStatus).toBeLessThanOrEqual(3);
      expect(t.stratum).toBeLessThanOrEqual(16);
    };
    const mutation = fc.record({
      edits: fc.array(fc.tuple(fc.nat(103), fc.nat(255)), { minLength: 1, maxLength: 8 }),
      cut: fc.option(fc.nat(120), { nil: undefined }),
    });
    fc.assert(
      fc.property(mutation, ({ edits, cut }) => {
        const bytes = new Uint8Array(valid);
        for (const [at, value] of edits) bytes[at] = value;
        check(cut === undefined ? bytes : bytes.subarray(0, cut));
      }),
      fcParams(20_000),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160 }), (bytes) => check(bytes)),
      fcParams(5_000),
    );
  });
});

// ---------------------------------------------------------------- sample semantics

function tracking(overrides: Partial<ChronyTracking> = {}): ChronyTracking {
  return {
    refId: 0xc0a80001,
    ipAddr: '192.168.0.1',
    stratum: 3,
    leapStatus: 0,
    refTime: 1_800_000_000_000,
    currentCorrectionMs: 0,
    lastOffsetMs: 0,
    rmsOffsetMs: 0,
    frequencyPpm: 0,
    residualFrequencyPpm: 0,
    skewPpm: 0,
    rootDelayMs: 0,
    rootDispersionMs: 0,
    lastUpdateIntervalS: 64,
    ...overrides,
  };
}

const calibration = {
  offsetMs: 1_800_000_000_000 - 1000,
  errorMs: 0.001,
  monotonicAt: 999,
  edge: true,
};

function sampleOf(t: ChronyTracking, maxDrift = 200e-6, allowLocalReference = true): SyncSample {
  const outcome = trackingToSample({
    tracking: t,
    calibration,
    sentAt: 1000,
    receivedAt: 1000.2,
    maxDrift,
    allowLocalReference,
    source: 'chrony test',
  });
  if (!('sample' in outcome)) throw new Error(`expected a sample: ${outcome.problem.message}`);
  return outcome.sample;
}

describe('tracking → sample', () => {
  it('true time = system time + current correction (positive: the system clock is slow)', () => {
    const slow = sampleOf(tracking({ currentCorrectionMs: 2500 }));
    expect(slow.offsetMs).toBe(calibration.offsetMs + 2500);
    const fast = sampleOf(tracking({ currentCorrectionMs: -750 }));
    expect(fast.offsetMs).toBe(calibration.offsetMs - 750);
    expect(slow.monotonicAt).toBe(1000);
  });

  it('bounds the error like ClockBound, plus mapping error and drift over the age', () => {
    // System time at receipt is 1_800_000_000_000.2; refTime 10 s earlier → age ≈ 10 s.
    const t = tracking({
      currentCorrectionMs: 0.3,
      rootDelayMs: 4,
      rootDispersionMs: 1,
      refTime: 1_800_000_000_000 - 10_000,
    });
    const s = sampleOf(t);
    const age = 1000.2 + calibration.offsetMs + 0.3 - t.refTime;
    const expected = 0.3 + 2 + 1 + calibration.errorMs + 200e-6 * age;
    expect(s.errorMs).toBeGreaterThanOrEqual(expected);
    expect(s.errorMs).toBeLessThan(expected + 1e-5);
    // No drift bound: only chrony's own terms and the mapping remain.
    expect(sampleOf(t, 0).errorMs).toBeCloseTo(0.3 + 2 + 1 + calibration.errorMs, 5);
  });

  it('contains both the system time and chrony’s estimate for any report', () => {
    const arb = fc.record({
      correction: fc.double({ min: -5000, max: 5000, noNaN: true }),
      delay: fc.double({ min: 0, max: 500, noNaN: true }),
      dispersion: fc.double({ min: 0, max: 500, noNaN: true }),
      ageMs: fc.double({ min: -2000, max: 1e6, noNaN: true }),
    });
    fc.assert(
      fc.property(arb, ({ correction, delay, dispersion, ageMs }) => {
        const t = tracking({
          currentCorrectionMs: correction,
          rootDelayMs: delay,
          rootDispersionMs: dispersion,
          refTime: 1_800_000_000_000 - ageMs,
        });
        const s = sampleOf(t);
        const systemAt = 1000 + calibration.offsetMs;
        const estimate = 1000 + s.offsetMs;
        expect(Math.abs(estimate - systemAt)).toBeLessThanOrEqual(s.errorMs);
        expect(s.errorMs).toBeGreaterThanOrEqual(delay / 2 + dispersion + Math.abs(correction));
      }),
      fcParams(1000),
    );
  });

  it('gives no sample when chronyd is unsynchronised', () => {
    for (const t of [
      tracking({ leapStatus: 3 }),
      tracking({ refId: 0, stratum: 0, leapStatus: 0 }),
    ]) {
      const outcome = trackingToSample({
        tracking: t,
        calibration,
        sentAt: 1000,
        receivedAt: 1000,
        maxDrift: 2e-4,
        allowLocalReference: true,
        source: 'chrony test',
      });
      expect('problem' in outcome && outcome.problem.reason).toBe('chrony-unsynchronized');
      expect('problem' in outcome && outcome.problem.error).toBeInstanceOf(SourceUnavailableError);
    }
  });

  it('dates the evidence at chronyd’s last measurement (refTime on the monotonic timescale)', () => {
    // Estimated true time at sentAt (1000) is 1_800_000_000_000 + 0.3; refTime 10 s before.
    const t = tracking({ currentCorrectionMs: 0.3, refTime: 1_800_000_000_000 - 10_000 });
    const s = sampleOf(t);
    expect(s.monotonicAt).toBe(1000);
    expect(s.evidenceFrom).toBeCloseTo(1000 - 10_000.3, 3);
    // A refTime after the request (inconsistent, or a clock step) never dates it later.
    expect(sampleOf(tracking({ refTime: 1_800_000_000_000 + 5000 })).evidenceFrom).toBe(1000);
  });

  it('a report from before a suspend is old evidence; one measured after it is fresh', () => {
    // Before the suspend: monotonic 5000 ↔ system time W; chronyd measured 2 s earlier.
    const W = 1_800_000_000_000;
    const suspendMs = 3_600_000;
    const resumedAt = 5000; // CLOCK_MONOTONIC stops during suspend
    // After resume the kernel restores the wall clock from the RTC: it is an hour later.
    const afterResume = { ...calibration, offsetMs: W + suspendMs - resumedAt };
    const outcome = (refTime: number): SyncSample => {
      const o = trackingToSample({
        tracking: tracking({ refTime }),
        calibration: afterResume,
        sentAt: resumedAt + 5,
        receivedAt: resumedAt + 5.2,
        maxDrift: 200e-6,
        allowLocalReference: true,
        source: 'chrony test',
      });
      if (!('sample' in o)) throw new Error(o.problem.message);
      return o.sample;
    };
    // chronyd has not measured since: the report is still the pre-suspend one.
    expect(outcome(W - 2000).evidenceFrom).toBeLessThan(resumedAt);
    // chronyd measured 1 s after the resume: the evidence postdates the disruption.
    expect(outcome(W + suspendMs + 1000).evidenceFrom).toBeGreaterThan(resumedAt);
  });

  it('never dates evidence after the request, for any report', () => {
    const arb = fc.record({
      correction: fc.double({ min: -5000, max: 5000, noNaN: true }),
      ageMs: fc.double({ min: -1e6, max: 1e9, noNaN: true }),
    });
    fc.assert(
      fc.property(arb, ({ correction, ageMs }) => {
        const s = sampleOf(
          tracking({ currentCorrectionMs: correction, refTime: 1_800_000_000_000 - ageMs }),
        );
        expect(Number.isFinite(s.evidenceFrom)).toBe(true);
        expect(s.evidenceFrom).toBeLessThanOrEqual(s.monotonicAt);
      }),
      fcParams(1000),
    );
  });

  it('announces a leap second from leap status 1 (insert) and 2 (delete)', () => {
    expect(sampleOf(tracking({ leapStatus: 1 })).leapSecond).toBe('insert');
    expect(sampleOf(tracking({ leapStatus: 2 })).leapSecond).toBe('delete');
    expect('leapSecond' in sampleOf(tracking({ leapStatus: 0 }))).toBe(false);
  });

  it('refuses a local reference only when told to', () => {
    const local = tracking({ refId: CHRONY_LOCAL_REFERENCE_ID, stratum: 8, ipAddr: null });
    expect(sampleOf(local).errorMs).toBeGreaterThan(0);
    const outcome = trackingToSample({
      tracking: local,
      calibration,
      sentAt: 1000,
      receivedAt: 1000,
      maxDrift: 2e-4,
      allowLocalReference: false,
      source: 'chrony test',
    });
    expect('problem' in outcome && outcome.problem.reason).toBe('chrony-local-reference');
  });
});

// ---------------------------------------------------------------- client against a fake chronyd

interface FakeChronyd {
  port: number;
  requests: Uint8Array[];
  socket: Socket;
  close(): Promise<void>;
}

/** A UDP socket that hands each request to `respond`, which may answer via `reply`. */
async function fakeChronyd(
  respond: (request: Uint8Array, reply: (bytes: Uint8Array) => void, remotePort: number) => void,
): Promise<FakeChronyd> {
  const socket = createSocket('udp4');
  const requests: Uint8Array[] = [];
  socket.on('message', (message, remote) => {
    requests.push(new Uint8Array(message));
    respond(
      new Uint8Array(message),
      (bytes) => socket.send(bytes, remote.port, remote.address),
      remote.port,
    );
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return {
    port: socket.address().port,
    requests,
    socket,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function sequenceOf(request: Uint8Array): number {
  return new DataView(request.buffer, request.byteOffset).getUint32(8);
}

/** Collects events and lets a test wait for the n-th, with a generous deadline. */
interface Recorder<T> {
  readonly items: T[];
  readonly push: (item: T) => void;
  /** Resolves once `count` items arrived; rejects naming `what` after `timeoutMs`. */
  until(count: number, what: string, timeoutMs?: number): Promise<void>;
}

function recorder<T>(): Recorder<T> {
  const items: T[] = [];
  const waiters = new Set<{ count: number; resolve: () => void }>();
  return {
    items,
    push(item) {
      items.push(item);
      for (const waiter of [...waiters]) {
        if (items.length >= waiter.count) {
          waiters.delete(waiter);
          waiter.resolve();
        }
      }
    },
    until(count, what, timeoutMs = 15_000) {
      if (items.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`waited ${timeoutMs} ms for ${what}: ${items.length} of ${count}`));
        }, timeoutMs);
        const waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        waiters.add(waiter);
      });
    },
  };
}

function attemptOf(request: Uint8Array): number {
  return new DataView(request.buffer, request.byteOffset).getUint16(6);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startFake(respond: Parameters<typeof fakeChronyd>[0]): Promise<FakeChronyd> {
  const fake = await fakeChronyd(respond);
  cleanups.push(() => fake.close());
  return fake;
}

/** How a fake chronyd answers every request: with these reply fields (`{}`: a healthy reply), or never. */
type Answer = Partial<ReplyFields> | 'silent';

function startAnswering(answer: Answer): Promise<FakeChronyd> {
  return startFake((request, reply) => {
    if (answer !== 'silent') reply(buildReply({ sequence: sequenceOf(request), ...answer }));
  });
}

describe('readChronyTracking', () => {
  it('asks with a padded request and decodes the answer', async () => {
    const fake = await startAnswering({ correction: -0.25 });
    const t = await readChronyTracking({ port: fake.port });
    expect(t.currentCorrectionMs).toBeCloseTo(-250, 4);
    expect(fake.requests[0]?.length).toBe(104);
  });

  it('ignores replies from another port or with another sequence, and keeps waiting', async () => {
    const intruder = createSocket('udp4');
    await new Promise<void>((resolve) => intruder.bind(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => intruder.close(() => resolve())));
    const fake = await startFake((request, reply, remotePort) => {
      const sequence = sequenceOf(request);
      // A forgery with the right sequence from the wrong port, then a stale sequence
      // from the right port, then the real answer.
      intruder.send(buildReply({ sequence, stratum: 1, correction: 99 }), remotePort, '127.0.0.1');
      setTimeout(() => reply(buildReply({ sequence: sequence ^ 1, stratum: 2 })), 10);
      setTimeout(() => reply(buildReply({ sequence, stratum: 4 })), 30);
    });
    const t = await readChronyTracking({ port: fake.port, timeoutMs: 2000 });
    expect(t.stratum).toBe(4);
  });

  it('resends a lost request with a higher attempt number', async () => {
    const fake = await startFake((request, reply) => {
      const attempt = new DataView(request.buffer, request.byteOffset).getUint16(6);
      if (attempt >= 1) reply(buildReply({ sequence: sequenceOf(request) }));
    });
    await readChronyTracking({ port: fake.port, timeoutMs: 600 });
    expect(fake.requests.map((r) => new DataView(r.buffer).getUint16(6))).toEqual([0, 1]);
    expect(new Set(fake.requests.map(sequenceOf)).size).toBe(1);
  });

  it('times out cleanly when nothing answers', async () => {
    const fake = await startAnswering('silent');
    const started = performance.now();
    await expect(readChronyTracking({ port: fake.port, timeoutMs: 150 })).rejects.toBeInstanceOf(
      NtpTimeoutError,
    );
    expect(performance.now() - started).toBeLessThan(1000);
    // The first send and up to two resends (the last may still be in flight).
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.requests.length).toBeGreaterThanOrEqual(2);
    expect(fake.requests.length).toBeLessThanOrEqual(3);
  });

  it('reports a timeout as ChronyTimeoutError (code CHRONY_TIMEOUT), still an NtpTimeoutError', async () => {
    const fake = await startAnswering('silent');
    const error: unknown = await readChronyTracking({ port: fake.port, timeoutMs: 100 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ChronyTimeoutError);
    // Callers that caught NtpTimeoutError before keep catching it.
    expect(error).toBeInstanceOf(NtpTimeoutError);
    expect(isChronoboundError(error, NtpTimeoutError)).toBe(true);
    expect(isChronoboundError(error, 'CHRONY_TIMEOUT')).toBe(true);
    expect(isChronoboundError(error, 'NTP_TIMEOUT')).toBe(false);
    const timeout = error as ChronyTimeoutError;
    expect(timeout.code).toBe('CHRONY_TIMEOUT');
    expect(timeout.name).toBe('ChronyTimeoutError');
    expect(timeout.server).toBe(`127.0.0.1:${fake.port}`);
    expect(timeout.message).toContain(`127.0.0.1:${fake.port}`);
  });

  it('rejects chronyd’s refusal at once, naming cmdallow', async () => {
    const fake = await startAnswering({ status: 2 });
    const error: unknown = await readChronyTracking({ port: fake.port }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChronyProtocolError);
    expect((error as ChronyProtocolError).message).toMatch(/not authorised.*cmdallow/);
  });

  it('aborts', async () => {
    const fake = await startAnswering('silent');
    const ac = new AbortController();
    const pending = readChronyTracking({ port: fake.port, signal: ac.signal, timeoutMs: 5000 });
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
  });

  it('rejects bad options with InvalidArgumentError', async () => {
    await expect(readChronyTracking({ port: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(readChronyTracking({ port: 65536 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(readChronyTracking({ host: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(readChronyTracking({ timeoutMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('reports an unresolvable host as SourceUnavailableError', async () => {
    await expect(
      readChronyTracking({ host: 'no-such-host.invalid', timeoutMs: 2000 }),
    ).rejects.toBeInstanceOf(SourceUnavailableError);
  });
});

describe('chronySource', () => {
  it('rejects bad options', () => {
    expect(() => chronySource({ pollIntervalMs: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => chronySource({ maxDriftPpm: -1 })).toThrow(InvalidArgumentError);
    expect(() => chronySource({ timeoutMs: Infinity })).toThrow(InvalidArgumentError);
    expect(() => chronySource({ port: 1.5 })).toThrow(InvalidArgumentError);
  });

  it('feeds a TrueClock whose interval holds system time + correction, and stops on close', async () => {
    const fake = await startFake((request, reply) => {
      const now = Date.now();
      reply(
        buildReply({
          sequence: sequenceOf(request),
          correction: 0.004,
          rootDelay: 0.0002,
          rootDispersion: 0.0001,
          secLow: Math.floor(now / 1000) - 1,
          nanos: 0,
        }),
      );
    });
    const source = chronySource({ port: fake.port, pollIntervalMs: 50 });
    const clock = new TrueClock({ source, watchdogIntervalMs: 0 });
    await clock.ready({ timeoutMs: 2000 });
    const cal = tightestWallCalibration();
    const before = systemMonotonic.now();
    const r = clock.now();
    const after = systemMonotonic.now();
    expect(r.status).toBe('synchronized');
    // chronyd says true time is system time + 4 ms.
    const trueLow = before + cal.offsetMs + 4 - cal.errorMs;
    const trueHigh = after + cal.offsetMs + 4 + cal.errorMs;
    expect(r.earliest).toBeLessThanOrEqual(trueHigh);
    expect(r.latest).toBeGreaterThanOrEqual(trueLow);
    // The estimate is system time + 4 ms, to within the mapping errors: the bound minus
    // the 4 ms correction it carries (a sign error would be 8 ms off).
    expect(Math.abs(r.estimate - (before + cal.offsetMs + 4))).toBeLessThanOrEqual(
      r.uncertaintyMs - 4 + cal.errorMs + (after - before),
    );
    expect(source.tracking?.currentCorrectionMs).toBeCloseTo(4, 5);
    await clock.close();
    const seen = fake.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.requests.length).toBe(seen);
    await source.close(); // idempotent
  });

  it('is AsyncDisposable: leaving an `await using` block closes it', async () => {
    let closes = 0;
    {
      await using source = chronySource({ port: 1, pollIntervalMs: 50 });
      const real = source.close.bind(source);
      source.close = () => {
        closes++;
        return real();
      };
      expect(closes).toBe(0);
    }
    expect(closes).toBe(1);
  });

  it('reports unsynchronised chronyd, timeouts and refusals as problems, never samples', async () => {
    const cases: [Answer, string][] = [
      [{ leap: 3, stratum: 0, refId: 0 }, 'chrony-unsynchronized'],
      ['silent', 'timeout'],
      [{ status: 2 }, 'chrony-protocol'],
    ];
    for (const [answer, reason] of cases) {
      const fake = await startAnswering(answer);
      const source = chronySource({ port: fake.port, pollIntervalMs: 1000, timeoutMs: 100 });
      const samples: SyncSample[] = [];
      const problem = await new Promise<SourceProblem>((resolve) => {
        source.subscribe((s) => samples.push(s), systemMonotonic, resolve);
      });
      await source.close();
      expect(problem.reason).toBe(reason);
      if (reason === 'timeout') expect(problem.error).toBeInstanceOf(ChronyTimeoutError);
      expect(samples).toEqual([]);
    }
  });

  it('invalidate polls again at once, for every subscriber', async () => {
    const fake = await startAnswering({});
    // The poll interval is far longer than the test: only invalidate can cause a second poll.
    const source = chronySource({ port: fake.port, pollIntervalMs: 600_000, timeoutMs: 5000 });
    cleanups.push(() => source.close());
    expect(source.maxSampleGapMs).toBe(605_000);
    const a = recorder<SyncSample>();
    const b = recorder<SyncSample>();
    source.subscribe(a.push, systemMonotonic);
    source.subscribe(b.push, systemMonotonic);
    await Promise.all([a.until(1, 'first sample (a)'), b.until(1, 'first sample (b)')]);
    const invalidatedAt = systemMonotonic.now();
    source.invalidate(invalidatedAt);
    await Promise.all([a.until(2, 'sample after invalidate (a)'), b.until(2, 'after (b)')]);
    for (const samples of [a.items, b.items]) {
      // The second sample comes from a request sent after invalidate.
      expect(samples[1]?.monotonicAt).toBeGreaterThanOrEqual(invalidatedAt);
      for (const s of samples) expect(s.evidenceFrom).toBeLessThanOrEqual(s.monotonicAt);
    }
    expect(new Set(fake.requests.map(sequenceOf)).size).toBe(4);
    await source.close();
    source.invalidate(systemMonotonic.now()); // after close: nothing to do, no throw
  });

  it('invalidate during a poll lets it finish, then polls once more (never two at once)', async () => {
    const requests = recorder<{ sequence: number; attempt: number }>();
    const unanswered = new Set<number>();
    let mostUnanswered = 0;
    let first: number | undefined;
    let answerFirst: (() => void) | undefined;
    const fake = await startFake((request, reply) => {
      const sequence = sequenceOf(request);
      first ??= sequence;
      unanswered.add(sequence);
      mostUnanswered = Math.max(mostUnanswered, unanswered.size);
      const answer = (): void => {
        unanswered.delete(sequence);
        reply(buildReply({ sequence }));
      };
      // Hold the first poll's answer until the test releases it.
      if (sequence === first) answerFirst = answer;
      else answer();
      requests.push({ sequence, attempt: attemptOf(request) });
    });
    // A long timeout: the first request is resent after timeoutMs / 3 and the held
    // answer released then, far from the timeout even on a loaded machine.
    const source = chronySource({ port: fake.port, pollIntervalMs: 600_000, timeoutMs: 6000 });
    cleanups.push(() => source.close());
    const outcomes = recorder<SyncSample | SourceProblem>();
    source.subscribe(outcomes.push, systemMonotonic, outcomes.push);
    await requests.until(1, 'the first request');
    source.invalidate(systemMonotonic.now());
    source.invalidate(systemMonotonic.now());
    // By the first resend a concurrent poll, had one started, would have asked long ago.
    await requests.until(2, 'the first resend', 15_000);
    expect(requests.items[1]).toEqual({ sequence: first, attempt: 1 });
    answerFirst?.();
    await outcomes.until(2, 'the held poll and the one after it');
    expect(outcomes.items.every((o) => 'offsetMs' in o)).toBe(true);
    expect(new Set(requests.items.map((r) => r.sequence)).size).toBe(2);
    expect(mostUnanswered).toBe(1);
  });
});

describe('chronyHostCorrection', () => {
  it('rejects bad options', () => {
    expect(() => chronyHostCorrection({ pollIntervalMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => chronyHostCorrection({ timeoutMs: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => chronyHostCorrection({ port: 70_000 })).toThrow(InvalidArgumentError);
    expect(() => chronyHostCorrection({ host: '' })).toThrow(InvalidArgumentError);
  });

  it('reports chronyd’s remaining correction and frequency, stamped at the request', async () => {
    const fake = await startAnswering({ correction: -0.0025, frequency: 17.25 });
    const source = chronyHostCorrection({ port: fake.port, pollIntervalMs: 50 });
    cleanups.push(() => source.close());
    const corrections = recorder<HostCorrection>();
    const before = systemMonotonic.now();
    const stop = source.subscribe(corrections.push, systemMonotonic);
    await corrections.until(2, 'two corrections');
    const after = systemMonotonic.now();
    const [c] = corrections.items;
    expect(c?.remainingCorrectionMs).toBeCloseTo(-2.5, 5);
    expect(c?.frequencyPpm).toBeCloseTo(17.25, 4);
    expect(c?.source).toBe(`chrony 127.0.0.1:${fake.port}`);
    expect(c?.monotonicAt).toBeGreaterThanOrEqual(before);
    expect(c?.monotonicAt).toBeLessThanOrEqual(after);
    stop();
    stop(); // idempotent
    await source.close();
    await source.close(); // idempotent
  });

  it('turns timeouts and refusals into problems, never a hang or a throw', async () => {
    const cases: [Answer, string][] = [
      ['silent', 'timeout'],
      [{ status: 2 }, 'chrony-protocol'],
    ];
    for (const [answer, reason] of cases) {
      const fake = await startAnswering(answer);
      const source = chronyHostCorrection({
        port: fake.port,
        pollIntervalMs: 600_000,
        timeoutMs: 100,
      });
      cleanups.push(() => source.close());
      const corrections = recorder<HostCorrection>();
      const problems = recorder<SourceProblem>();
      source.subscribe(corrections.push, systemMonotonic, problems.push);
      await problems.until(1, `a ${reason} problem`);
      await source.close();
      expect(problems.items[0]?.reason).toBe(reason);
      if (reason === 'timeout') {
        expect(problems.items[0]?.error).toBeInstanceOf(ChronyTimeoutError);
      }
      expect(corrections.items).toEqual([]);
    }
  });

  it('a throwing listener becomes a problem and polling goes on', async () => {
    const fake = await startAnswering({});
    const source = chronyHostCorrection({ port: fake.port, pollIntervalMs: 20 });
    cleanups.push(() => source.close());
    const problems = recorder<SourceProblem>();
    source.subscribe(
      () => {
        throw new Error('listener bug');
      },
      systemMonotonic,
      problems.push,
    );
    await problems.until(2, 'two listener problems');
    expect(problems.items.map((p) => p.reason)).toEqual(['listener', 'listener']);
    expect(problems.items[0]?.message).toMatch(/listener bug/);
  });
});
