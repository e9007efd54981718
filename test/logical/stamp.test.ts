import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  ClockOffsetError,
  HlcParseError,
  HybridLogicalClock,
  compareHlc,
  decodeHlc,
  formatHlc,
  hlcToBigInt,
  receiveStamped,
  sqlHlc,
  stampWrite,
  type HlcTimestamp,
} from '../../src/index.js';
import { fcParams } from '../support/fc.js';
import { catchError } from '../support/errors.js';

const T0 = Date.UTC(2026, 0, 1);

function clockAt(node: string, start = T0, maxOffsetMs = 500) {
  let t = start;
  const hlc = new HybridLogicalClock({ node, physical: () => t, maxOffsetMs });
  return {
    hlc,
    advance(ms: number) {
      t += ms;
    },
  };
}

const nodeArb = fc.stringMatching(/^[a-z0-9-]{1,12}$/);
const tsArb: fc.Arbitrary<HlcTimestamp> = fc.record({
  wallMs: fc.integer({ min: 0, max: 2 ** 47 - 1 }),
  counter: fc.integer({ min: 0, max: 0xffff }),
  node: nodeArb,
});

describe('sqlHlc', () => {
  it('gives the BIGINT, the sortable text and the node', () => {
    const ts = { wallMs: 1_700_000_000_000, counter: 42, node: 'a' };
    expect(sqlHlc(ts)).toEqual({ bigint: hlcToBigInt(ts), text: formatHlc(ts), node: 'a' });
    expect(sqlHlc(ts).bigint).toBe((1_700_000_000_000n << 16n) | 42n);
  });

  it('orders bigint (then node) and text exactly like compareHlc', () => {
    fc.assert(
      fc.property(tsArb, tsArb, (a, b) => {
        const sa = sqlHlc(a);
        const sb = sqlHlc(b);
        const byBig =
          sa.bigint !== sb.bigint
            ? sa.bigint < sb.bigint
              ? -1
              : 1
            : sa.node < sb.node
              ? -1
              : sa.node > sb.node
                ? 1
                : 0;
        const byText = sa.text < sb.text ? -1 : sa.text > sb.text ? 1 : 0;
        expect(byBig).toBe(compareHlc(a, b));
        expect(byText).toBe(compareHlc(a, b));
      }),
      fcParams(500),
    );
  });
});

describe('decodeHlc', () => {
  it('round-trips every encoding a driver hands back', () => {
    fc.assert(
      fc.property(tsArb, (ts) => {
        const { bigint, text, node } = sqlHlc(ts);
        expect(decodeHlc(text)).toEqual(ts);
        expect(decodeHlc(bigint, node)).toEqual(ts);
        expect(decodeHlc(bigint.toString(), node)).toEqual(ts); // node-postgres BIGINT
        expect(decodeHlc({ ...ts })).toEqual(ts);
        if (bigint <= BigInt(Number.MAX_SAFE_INTEGER)) {
          expect(decodeHlc(Number(bigint), node)).toEqual(ts);
        }
      }),
      fcParams(500),
    );
  });

  const bad: Array<[string, () => unknown]> = [
    ['garbage text', () => decodeHlc('garbage')],
    ['uppercase hex', () => decodeHlc('018BCFE56800002A@a')],
    ['missing node', () => decodeHlc('018bcfe56800002a@')],
    ['node with a separator', () => decodeHlc('018bcfe56800002a@a@b')],
    ['empty string', () => decodeHlc('')],
    ['negative bigint', () => decodeHlc(-1n, 'a')],
    ['bigint over 64 bits', () => decodeHlc(1n << 64n, 'a')],
    ['bigint without node', () => decodeHlc(5n)],
    ['decimal string without node', () => decodeHlc('123')],
    ['decimal with leading zero', () => decodeHlc('0123', 'a')],
    ['signed decimal', () => decodeHlc('-5', 'a')],
    ['bigint with invalid node', () => decodeHlc(5n, 'a b')],
    ['unsafe number (precision lost)', () => decodeHlc(2 ** 60, 'a')],
    ['fractional number', () => decodeHlc(1.5, 'a')],
    ['NaN', () => decodeHlc(NaN, 'a')],
    ['null', () => decodeHlc(null as unknown as string)],
    ['undefined', () => decodeHlc(undefined as unknown as string)],
    ['boolean', () => decodeHlc(true as unknown as string)],
    ['object, fractional wallMs', () => decodeHlc({ wallMs: 1.5, counter: 0, node: 'a' })],
    ['object, negative wallMs', () => decodeHlc({ wallMs: -1, counter: 0, node: 'a' })],
    ['object, wallMs ≥ 2^48', () => decodeHlc({ wallMs: 2 ** 48, counter: 0, node: 'a' })],
    ['object, counter > 65535', () => decodeHlc({ wallMs: 1, counter: 65536, node: 'a' })],
    ['object, string counter', () => decodeHlc({ wallMs: 1, counter: '1', node: 'a' } as never)],
    ['object, bad node', () => decodeHlc({ wallMs: 1, counter: 0, node: '' })],
    ['object, missing fields', () => decodeHlc({} as HlcTimestamp)],
  ];
  it.each(bad)('rejects %s with HlcParseError', (_name, f) => {
    expect(f).toThrow(HlcParseError);
  });

  it('names the input and explains unsafe numbers', () => {
    const e = catchError(() => decodeHlc(2 ** 60, 'a')) as HlcParseError;
    expect(e).toBeInstanceOf(HlcParseError);
    expect(e.code).toBe('HLC_PARSE');
    expect(e.input).toBe(String(2 ** 60));
    expect(e.message).toMatch(/safeIntegers/);
    expect(() => decodeHlc('zz')).toThrow(/"zz"/);
  });
});

describe('receiveStamped', () => {
  it('moves the clock past the remote', () => {
    const a = clockAt('a', T0 + 200);
    const b = clockAt('b', T0);
    const sent = a.hlc.now();
    const { remote, timestamp } = receiveStamped(b.hlc, formatHlc(sent));
    expect(remote).toEqual(sent);
    expect(compareHlc(timestamp, sent)).toBe(1);
    expect(compareHlc(b.hlc.now(), timestamp)).toBe(1);
    const viaBigint = receiveStamped(b.hlc, hlcToBigInt(sent), 'a');
    expect(compareHlc(viaBigint.timestamp, timestamp)).toBe(1);
  });

  it('leaves the clock unchanged on a malformed stamp', () => {
    const b = clockAt('b');
    const before = b.hlc.now();
    for (const input of ['nope', '', 'ffffffffffffffff@', -3n, 2 ** 62, { wallMs: -1 }]) {
      expect(() => receiveStamped(b.hlc, input as string, 'x')).toThrow(HlcParseError);
      expect(b.hlc.peek()).toEqual(before);
    }
  });

  it('rejects a far-future stamp with ClockOffsetError and is not poisoned', () => {
    const b = clockAt('b', T0, 250);
    const before = b.hlc.now();
    const future = { wallMs: T0 + 3_600_000, counter: 0, node: 'evil' };
    expect(() => receiveStamped(b.hlc, formatHlc(future))).toThrow(ClockOffsetError);
    expect(() => receiveStamped(b.hlc, hlcToBigInt(future).toString(), 'evil')).toThrow(
      ClockOffsetError,
    );
    expect(b.hlc.peek()).toEqual(before);
    b.advance(1);
    const next = b.hlc.now();
    expect(next).toEqual({ wallMs: T0 + 1, counter: 0, node: 'b' });
    // Within the bound the same sender is accepted.
    expect(() =>
      receiveStamped(b.hlc, formatHlc({ wallMs: T0 + 200, counter: 0, node: 'ok' })),
    ).not.toThrow();
  });
});

describe('stampWrite', () => {
  it('issues a fresh timestamp per write and returns the result', () => {
    const { hlc } = clockAt('a');
    const seen: HlcTimestamp[] = [];
    const first = stampWrite(hlc, (ts) => {
      seen.push(ts);
      return 'ok';
    });
    const second = stampWrite(hlc, (ts) => seen.push(ts));
    expect(first.result).toBe('ok');
    expect(first.timestamp).toBe(seen[0]);
    expect(second.result).toBe(2);
    expect(compareHlc(second.timestamp, first.timestamp)).toBe(1);
  });

  it('awaits an async write', async () => {
    const { hlc } = clockAt('a');
    const pending = stampWrite(hlc, async (ts) => {
      await Promise.resolve();
      return hlcToBigInt(ts);
    });
    expect(pending).toBeInstanceOf(Promise);
    const { timestamp, result } = await pending;
    expect(result).toBe(hlcToBigInt(timestamp));
  });

  it('propagates a failing write, async or not, and stays monotonic', async () => {
    const { hlc } = clockAt('a');
    expect(() =>
      stampWrite(hlc, () => {
        throw new Error('constraint');
      }),
    ).toThrow('constraint');
    const used = hlc.peek();
    await expect(stampWrite(hlc, () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(compareHlc(hlc.now(), used!)).toBe(1);
  });

  it('orders a read-modify-write after what it read, despite a slower clock', () => {
    const fast = clockAt('a', T0 + 250);
    const slow = clockAt('b', T0);
    const row = sqlHlc(fast.hlc.now());
    const { timestamp } = stampWrite(slow.hlc, (ts) => ts, { after: row.bigint, node: row.node });
    expect(compareHlc(timestamp, decodeHlc(row.text))).toBe(1);
  });

  it('is after every dependency of a batch, in one tick', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -250, max: 250 }), fc.integer({ min: 0, max: 5 })), {
          maxLength: 8,
        }),
        fc.boolean(),
        (deps, asText) => {
          const me = clockAt('me');
          const prior = me.hlc.now();
          const stamps = deps.map(([skew, counter], i) => ({
            wallMs: T0 + skew,
            counter,
            node: `n${i}`,
          }));
          const encoded = stamps.map((s) => (asText ? formatHlc(s) : s));
          const write = vi.fn((ts: HlcTimestamp) => ts);
          const { timestamp } = stampWrite(me.hlc, write, { after: encoded });
          expect(write).toHaveBeenCalledTimes(1);
          expect(compareHlc(timestamp, prior)).toBe(1);
          for (const s of stamps) expect(compareHlc(timestamp, s)).toBe(1);
        },
      ),
      fcParams(300),
    );
  });

  it('does not write, issue or move the clock when a dependency is bad', () => {
    const { hlc } = clockAt('a', T0, 100);
    const before = hlc.now();
    const write = vi.fn();
    expect(() => stampWrite(hlc, write, { after: 'bad' })).toThrow(HlcParseError);
    expect(() => stampWrite(hlc, write, { after: 7n })).toThrow(HlcParseError); // no node
    expect(() =>
      stampWrite(hlc, write, {
        after: [formatHlc(before), { wallMs: T0 + 60_000, counter: 0, node: 'z' }],
      }),
    ).toThrow(ClockOffsetError);
    expect(write).not.toHaveBeenCalled();
    expect(hlc.peek()).toEqual(before);
  });
});
