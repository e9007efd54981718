/**
 * Logical clocks against their peers, measured in the same run:
 * tinybase's HLC (`getHlcFunctions`) and @actual-app/crdt's `Timestamp`.
 *
 * Every task runs an inner loop of OPS calls so that tinybench's per-task
 * timing overhead (two clock reads per iteration) does not swamp operations
 * that take tens of nanoseconds. Reported hz × OPS = operations per second.
 *
 * Run: npx vitest bench --run bench/logical.bench.ts
 */
import { bench, describe } from 'vitest';
import { getHlcFunctions } from 'tinybase';
import * as actualCrdt from '@actual-app/crdt';
import * as chronobound from '../src/index.js';
import type { HlcTimestamp } from '../src/index.js';

// vitest runs src/ through its module runner, which turns every use of an
// imported binding into a getter call on the module's exports (two here, through
// index.ts's re-export), ≈ 15 ns per call in a loop; a bundled or native import
// is a direct binding. Bind each function once, as the peers' functions are
// (tinybase's are closures returned by getHlcFunctions).
const {
  HybridLogicalClock,
  LamportClock,
  VectorClock,
  formatHlc,
  hlcFromBigInt,
  hlcFromBytes,
  hlcToBigInt,
  hlcToBytes,
  parseHlc,
} = chronobound;

// @actual-app/crdt's declarations re-export from an extensionless path that
// NodeNext resolution cannot follow; describe the part we use.
interface ActualTimestamp {
  toString(): string;
  counter(): number;
}
interface ActualCrdt {
  Timestamp: {
    new (millis: number, counter: number, node: string): ActualTimestamp;
    send(): ActualTimestamp | null;
    recv(remote: ActualTimestamp): ActualTimestamp | null;
    parse(text: string): ActualTimestamp | null;
  };
  makeClock(this: void, timestamp: ActualTimestamp): unknown;
  setClock(this: void, clock: unknown): void;
}
const { Timestamp, makeClock, setClock } = actualCrdt as unknown as ActualCrdt;

const OPS = 1000;
const options = { time: 1500, warmupTime: 300 };
let sink: unknown;

// A cheap deterministic physical clock shared by both HLCs in the "injected
// clock" group: it advances 1 ms every 64 reads, so counters are exercised.
const base = Date.now();
let reads = 0;
const cheapNow = (): number => base + (reads++ >>> 6);

// Text that arrives from a socket or a database is a flat string; concatenation
// results are not, and read slower. Every decoder gets flat input.
const flat = (s: string): string => JSON.parse(JSON.stringify(s)) as string;

describe('HLC now() — local/send event', () => {
  const ours = new HybridLogicalClock({ node: 'node-a' });
  const [getNextHlc] = getHlcFunctions('node-a');
  setClock(makeClock(new Timestamp(0, 0, '0123456789ABCDEF')));

  bench(
    'Date.now() (floor of the cost)',
    () => {
      let x = 0;
      for (let i = 0; i < OPS; i++) x += Date.now();
      sink = x;
    },
    options,
  );
  bench(
    'chronobound hlc.now()',
    () => {
      let x: HlcTimestamp | undefined;
      for (let i = 0; i < OPS; i++) x = ours.now();
      sink = x;
    },
    options,
  );
  bench(
    'chronobound formatHlc(hlc.now()) (string, like tinybase)',
    () => {
      let x = '';
      for (let i = 0; i < OPS; i++) x = formatHlc(ours.now());
      sink = x;
    },
    options,
  );
  bench(
    'tinybase getNextHlc()',
    () => {
      let x = '';
      for (let i = 0; i < OPS; i++) x = getNextHlc();
      sink = x;
    },
    options,
  );
  bench(
    '@actual-app/crdt Timestamp.send()',
    () => {
      let x: unknown;
      for (let i = 0; i < OPS; i++) x = Timestamp.send();
      sink = x;
    },
    options,
  );
});

describe('HLC receive — Date.now() as physical clock', () => {
  const ours = new HybridLogicalClock({ node: 'node-a' });
  const theirs = new HybridLogicalClock({ node: 'node-b' });
  const remote = theirs.now();
  const remoteText = flat(formatHlc(remote));
  const [, seenHlc] = getHlcFunctions('node-a');
  const [tinyRemote] = getHlcFunctions('node-b');
  const tinyRemoteHlc = flat(tinyRemote());
  setClock(makeClock(new Timestamp(0, 0, '0123456789ABCDEF')));
  const actualRemote = new Timestamp(remote.wallMs, 0, 'FEDCBA9876543210');

  bench(
    'chronobound hlc.receive(ts)',
    () => {
      let x: HlcTimestamp | undefined;
      for (let i = 0; i < OPS; i++) x = ours.receive(remote);
      sink = x;
    },
    options,
  );
  bench(
    'chronobound hlc.receive(parseHlc(text)) (decodes too, like tinybase)',
    () => {
      let x: HlcTimestamp | undefined;
      for (let i = 0; i < OPS; i++) x = ours.receive(parseHlc(remoteText));
      sink = x;
    },
    options,
  );
  bench(
    'tinybase seenHlc(text)',
    () => {
      for (let i = 0; i < OPS; i++) seenHlc(tinyRemoteHlc);
    },
    options,
  );
  bench(
    '@actual-app/crdt Timestamp.recv(ts)',
    () => {
      let x: unknown;
      for (let i = 0; i < OPS; i++) x = Timestamp.recv(actualRemote);
      sink = x;
    },
    options,
  );
});

describe('HLC receive — same injected cheap physical clock', () => {
  const ours = new HybridLogicalClock({ node: 'node-a', physical: cheapNow });
  const remote: HlcTimestamp = { wallMs: base, counter: 3, node: 'node-b' };
  const remoteText = flat(formatHlc(remote));
  const [, seenHlc] = getHlcFunctions('node-a', cheapNow);
  const [tinyRemote] = getHlcFunctions('node-b', () => base);
  const tinyRemoteHlc = flat(tinyRemote());

  bench(
    'chronobound hlc.receive(ts)',
    () => {
      let x: HlcTimestamp | undefined;
      for (let i = 0; i < OPS; i++) x = ours.receive(remote);
      sink = x;
    },
    options,
  );
  bench(
    'chronobound hlc.receive(parseHlc(text))',
    () => {
      let x: HlcTimestamp | undefined;
      for (let i = 0; i < OPS; i++) x = ours.receive(parseHlc(remoteText));
      sink = x;
    },
    options,
  );
  bench(
    'tinybase seenHlc(text)',
    () => {
      for (let i = 0; i < OPS; i++) seenHlc(tinyRemoteHlc);
    },
    options,
  );
});

describe('HLC decode', () => {
  // Each decoder turns 64 successive stamps of one peer (its own encoding, flat
  // strings as they arrive from a socket or a database) into values, one per
  // call, and every result is read (its counter summed), so no call is dead.
  const STAMPS = 64;
  const ts: HlcTimestamp = { wallMs: Date.now(), counter: 42, node: '0123456789ABCDEF' };
  const stamps = Array.from({ length: STAMPS }, (_, i): HlcTimestamp => ({
    ...ts,
    wallMs: ts.wallMs + (i >> 3),
    counter: i & 7,
  }));
  const texts = stamps.map((s) => flat(formatHlc(s)));
  const manyNodes = stamps.map((s, i) =>
    flat(formatHlc({ ...s, node: `node-${String(i).padStart(11, '0')}` })),
  );
  // The node id is compared character by character; tinybase's client id is 5.
  const shortNode = stamps.map((s) => flat(formatHlc({ ...s, node: 'abcde' })));
  const bigs = stamps.map(hlcToBigInt);
  const bytes = stamps.map(hlcToBytes);
  const [getNextHlc, , , decodeHlc] = getHlcFunctions('node-a');
  const tinyTexts = stamps.map(() => flat(getNextHlc()));
  const actualTexts = stamps.map((s) =>
    flat(new Timestamp(s.wallMs, s.counter, '0123456789ABCDEF').toString()),
  );

  bench(
    'chronobound parseHlc(text)',
    () => {
      let sum = 0;
      for (let i = 0; i < OPS; i++) sum += parseHlc(texts[i & 63] as string).counter;
      sink = sum;
    },
    options,
  );
  bench(
    'chronobound parseHlc(text), 64 rotating nodes (node cache misses)',
    () => {
      let sum = 0;
      for (let i = 0; i < OPS; i++) sum += parseHlc(manyNodes[i & 63] as string).counter;
      sink = sum;
    },
    options,
  );
  bench(
    "chronobound parseHlc(text), 5-character node id (as long as tinybase's)",
    () => {
      let sum = 0;
      for (let i = 0; i < OPS; i++) sum += parseHlc(shortNode[i & 63] as string).counter;
      sink = sum;
    },
    options,
  );
  bench(
    'chronobound hlcFromBigInt(b, node)',
    () => {
      let sum = 0;
      for (let i = 0; i < OPS; i++) sum += hlcFromBigInt(bigs[i & 63] as bigint, ts.node).counter;
      sink = sum;
    },
    options,
  );
  bench(
    'chronobound hlcFromBytes(bytes)',
    () => {
      let sum = 0;
      for (let i = 0; i < OPS; i++) sum += hlcFromBytes(bytes[i & 63] as Uint8Array).counter;
      sink = sum;
    },
    options,
  );
  bench(
    'tinybase decodeHlc(text)',
    () => {
      let sum = 0;
      for (let i = 0; i < OPS; i++) sum += decodeHlc(tinyTexts[i & 63] as string)[1];
      sink = sum;
    },
    options,
  );
  bench(
    '@actual-app/crdt Timestamp.parse(text)',
    () => {
      let sum = 0;
      for (let i = 0; i < OPS; i++)
        sum += Timestamp.parse(actualTexts[i & 63] as string)?.counter() ?? 0;
      sink = sum;
    },
    options,
  );
});

describe('HLC encode', () => {
  const ts: HlcTimestamp = { wallMs: Date.now(), counter: 42, node: '0123456789ABCDEF' };
  const [, , encodeHlc] = getHlcFunctions('node-a');
  const actualTs = new Timestamp(ts.wallMs, 42, '0123456789ABCDEF');

  bench(
    'chronobound formatHlc(ts)',
    () => {
      let x = '';
      for (let i = 0; i < OPS; i++) x = formatHlc(ts);
      sink = x;
    },
    options,
  );
  bench(
    'chronobound hlcToBigInt(ts)',
    () => {
      let x = 0n;
      for (let i = 0; i < OPS; i++) x = hlcToBigInt(ts);
      sink = x;
    },
    options,
  );
  bench(
    'chronobound hlcToBytes(ts)',
    () => {
      let x: Uint8Array | undefined;
      for (let i = 0; i < OPS; i++) x = hlcToBytes(ts);
      sink = x;
    },
    options,
  );
  bench(
    'tinybase encodeHlc(ms, counter)',
    () => {
      let x = '';
      for (let i = 0; i < OPS; i++) x = encodeHlc(ts.wallMs, 42);
      sink = x;
    },
    options,
  );
  bench(
    '@actual-app/crdt timestamp.toString()',
    () => {
      let x = '';
      for (let i = 0; i < OPS; i++) x = actualTs.toString();
      sink = x;
    },
    options,
  );
});

describe('Lamport and vector clocks (no peers)', () => {
  const lamport = new LamportClock({ node: 'a' });
  const nodes = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'];
  let vc = VectorClock.from(nodes.map((n, i) => [n, i + 1] as const));
  const other = VectorClock.from(nodes.map((n, i) => [n, 8 - i] as const));

  bench(
    'LamportClock.tick()',
    () => {
      let x: unknown;
      for (let i = 0; i < OPS; i++) x = lamport.tick();
      sink = x;
    },
    options,
  );
  bench(
    'VectorClock (8 nodes) merge + increment',
    () => {
      for (let i = 0; i < OPS; i++) vc = vc.merge(other).increment('n0');
      sink = vc;
    },
    options,
  );
  bench(
    'VectorClock (8 nodes) compare',
    () => {
      let x = '';
      for (let i = 0; i < OPS; i++) x = vc.compare(other);
      sink = x;
    },
    options,
  );
});

export { sink };
