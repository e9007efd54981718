import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HlcParseError,
  InvalidArgumentError,
  LamportClock,
  compareLamport,
  formatLamport,
  parseLamport,
  type LamportTimestamp,
} from '../../src/index.js';
import { lamportTimestamp } from '../../src/testing/fast-check/index.js';
import { fcParams } from '../support/fc.js';
import { assertCanonicalDecoder, textNear } from '../support/decoder-fuzz.js';
import { catchError, expectInvalidArgument } from '../support/errors.js';

const sign = (x: number): number => (x < 0 ? -1 : x > 0 ? 1 : 0);

describe('LamportClock', () => {
  it('ticks and jumps past received counters', () => {
    const a = new LamportClock({ node: 'a' });
    const b = new LamportClock({ node: 'b' });
    expect(a.peek()).toBe(0);
    const sent = a.tick();
    expect(sent).toEqual({ counter: 1, node: 'a' });
    expect(b.receive(sent)).toEqual({ counter: 2, node: 'b' });
    expect(b.receive({ counter: 40, node: 'c' })).toEqual({ counter: 41, node: 'b' });
    expect(b.receive({ counter: 3, node: 'c' })).toEqual({ counter: 42, node: 'b' });
    expect(b.tick()).toEqual({ counter: 43, node: 'b' });
    expect(b.peek()).toBe(43);
  });

  it('resumes from an initial counter', () => {
    expect(new LamportClock({ node: 'a', initial: 41 }).tick()).toEqual({ counter: 42, node: 'a' });
    for (const initial of [-1, 1.5, Number.NaN, 2 ** 53])
      expect(() => new LamportClock({ node: 'a', initial })).toThrow(InvalidArgumentError);
    expect(() => new LamportClock({ node: 'a b' })).toThrow(InvalidArgumentError);
  });

  it('rejects malformed remotes and exhausted counters without changing state', () => {
    const c = new LamportClock({ node: 'a', initial: 5 });
    for (const counter of [-1, 0.5, Number.NaN, '7', 2 ** 53]) {
      expectInvalidArgument(
        () => c.receive({ counter, node: 'b' } as unknown as LamportTimestamp),
        'remote.counter',
      );
    }
    expect(() => c.receive({ counter: Number.MAX_SAFE_INTEGER, node: 'b' })).toThrow(
      InvalidArgumentError,
    );
    expect(c.peek()).toBe(5);
    const full = new LamportClock({ node: 'a', initial: Number.MAX_SAFE_INTEGER });
    expect(() => full.tick()).toThrow(InvalidArgumentError);
    expect(full.peek()).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('compareLamport', () => {
  it('orders by counter, then node', () => {
    const list = [
      { counter: 2, node: 'a' },
      { counter: 1, node: 'b' },
      { counter: 1, node: 'a' },
    ];
    expect(list.sort(compareLamport)).toEqual([
      { counter: 1, node: 'a' },
      { counter: 1, node: 'b' },
      { counter: 2, node: 'a' },
    ]);
  });
});

describe('formatLamport / parseLamport', () => {
  const crowded = fc.oneof(
    lamportTimestamp({ maxCounter: 3, nodes: ['a', 'ab', 'b', 'Z'] }),
    lamportTimestamp(),
  );

  it('is fixed-width hex, @, node', () => {
    expect(formatLamport({ counter: 42, node: 'a' })).toBe('0000000000002a@a');
    expect(formatLamport({ counter: Number.MAX_SAFE_INTEGER, node: 'a' })).toBe('1fffffffffffff@a');
    expect(() => formatLamport({ counter: -1, node: 'a' })).toThrow(InvalidArgumentError);
    expect(() => formatLamport({ counter: 1, node: '' })).toThrow(InvalidArgumentError);
  });

  it('round-trips and string order equals compareLamport order', () => {
    fc.assert(
      fc.property(crowded, crowded, (a, b) => {
        const sa = formatLamport(a);
        const sb = formatLamport(b);
        expect(parseLamport(sa)).toEqual(a);
        expect(sign(sa < sb ? -1 : sa > sb ? 1 : 0)).toBe(sign(compareLamport(a, b)));
      }),
      fcParams(10_000),
    );
  });

  it.each([
    '',
    '0000000000002a',
    '0000000000002a@',
    '0000000000002A@a',
    '0000000000002a#a',
    '000000000002a@a',
    '20000000000000@a',
    'ffffffffffffff@a',
    '0000000000002a@a,b',
    '0000000000002a@a b',
  ])('rejects %j with HlcParseError naming it', (input) => {
    const err = catchError(() => parseLamport(input));
    expect(err).toBeInstanceOf(HlcParseError);
    expect((err as HlcParseError).input).toBe(JSON.stringify(input));
  });

  it('fuzz: only HlcParseError, accepted input is canonical', () => {
    const text = textNear('0123456789abcdefA@,x ', 14, 20);
    assertCanonicalDecoder(text, parseLamport, formatLamport, HlcParseError, 10_000);
    expect(() => parseLamport(5 as unknown as string)).toThrow(HlcParseError);
  });
});
