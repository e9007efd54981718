import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HlcParseError, InvalidArgumentError, VectorClock } from '../../src/index.js';
import { vectorClock } from '../../src/testing/fast-check/index.js';
import { fcParams } from '../support/fc.js';

const small = vectorClock({ nodes: ['a', 'b', 'c'], maxCounter: 3 });
const leq = (x: VectorClock, y: VectorClock): boolean =>
  ['a', 'b', 'c', 'd'].every((n) => x.get(n) <= y.get(n));

describe('VectorClock', () => {
  it('increments, merges and compares', () => {
    const e = VectorClock.empty();
    const a1 = e.increment('a');
    const b1 = e.increment('b');
    expect(e.size).toBe(0);
    expect(a1.get('a')).toBe(1);
    expect(a1.get('zzz')).toBe(0);
    expect(a1.compare(b1)).toBe('concurrent');
    expect(a1.isConcurrent(b1)).toBe(true);
    const b2 = b1.merge(a1).increment('b');
    expect(b2.encode()).toBe('a=1,b=2');
    expect(a1.compare(b2)).toBe('before');
    expect(b2.compare(a1)).toBe('after');
    expect(b2.compare(VectorClock.decode('a=1,b=2'))).toBe('equal');
    expect(e.compare(a1)).toBe('before');
    expect(e.compare(VectorClock.empty())).toBe('equal');
  });

  it('is immutable', () => {
    const a = VectorClock.from({ a: 1 });
    a.increment('a');
    a.merge(VectorClock.from({ b: 5 }));
    a.without('a');
    expect(a.encode()).toBe('a=1');
  });

  it('from() drops zeros and validates', () => {
    expect(VectorClock.from({ a: 0, b: 2 }).encode()).toBe('b=2');
    expect(
      VectorClock.from([
        ['b', 1],
        ['a', 2],
      ]).encode(),
    ).toBe('a=2,b=1');
    expect(() => VectorClock.from({ 'a,b': 1 })).toThrow(InvalidArgumentError);
    expect(() => VectorClock.from({ a: -1 })).toThrow(InvalidArgumentError);
    expect(() => VectorClock.from({ a: 1.5 })).toThrow(InvalidArgumentError);
    expect(() =>
      VectorClock.from([
        ['a', 1],
        ['a', 2],
      ]),
    ).toThrow(InvalidArgumentError);
    expect(() => VectorClock.empty().increment('')).toThrow(InvalidArgumentError);
    expect(() => VectorClock.from({ a: Number.MAX_SAFE_INTEGER }).increment('a')).toThrow(
      InvalidArgumentError,
    );
  });

  it('without() prunes an entry', () => {
    const v = VectorClock.from({ a: 1, b: 2 });
    expect(v.without('a').encode()).toBe('b=2');
    expect(v.without('zzz')).toBe(v);
    expect(v.without('a').without('b').compare(VectorClock.empty())).toBe('equal');
  });

  it('serializes as its encoding', () => {
    const v = VectorClock.from({ b: 1, a: 2 });
    expect(JSON.stringify({ v })).toBe('{"v":"a=2,b=1"}');
    expect(String(v)).toBe('a=2,b=1');
    expect(v.entries()).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });
});

describe('VectorClock properties', () => {
  it('merge is commutative, associative, idempotent, and the least upper bound', () => {
    fc.assert(
      fc.property(small, small, small, (x, y, z) => {
        expect(x.merge(y).compare(y.merge(x))).toBe('equal');
        expect(
          x
            .merge(y)
            .merge(z)
            .compare(x.merge(y.merge(z))),
        ).toBe('equal');
        expect(x.merge(x).compare(x)).toBe('equal');
        const m = x.merge(y);
        expect(leq(x, m) && leq(y, m)).toBe(true);
        for (const n of ['a', 'b', 'c']) expect(m.get(n)).toBe(Math.max(x.get(n), y.get(n)));
      }),
      fcParams(10_000),
    );
  });

  it('compare agrees with the pointwise order and is antisymmetric', () => {
    fc.assert(
      fc.property(small, small, (x, y) => {
        const expected =
          leq(x, y) && leq(y, x)
            ? 'equal'
            : leq(x, y)
              ? 'before'
              : leq(y, x)
                ? 'after'
                : 'concurrent';
        expect(x.compare(y)).toBe(expected);
        const mirrored = {
          before: 'after',
          after: 'before',
          equal: 'equal',
          concurrent: 'concurrent',
        } as const;
        expect(y.compare(x)).toBe(mirrored[expected]);
        expect(x.isConcurrent(y)).toBe(expected === 'concurrent');
        expect(x.compare(x.increment('d'))).toBe('before');
      }),
      fcParams(10_000),
    );
  });

  it('encode/decode round-trips canonically', () => {
    fc.assert(
      fc.property(
        vectorClock({
          nodes: ['a', 'b-1', 'Z', 'x:y', '~'],
          maxCounter: Number.MAX_SAFE_INTEGER - 1,
        }),
        (v) => {
          const s = v.encode();
          const back = VectorClock.decode(s);
          expect(back.compare(v)).toBe('equal');
          expect(back.encode()).toBe(s);
        },
      ),
      fcParams(10_000),
    );
  });

  it.each([
    'a',
    'a=',
    '=1',
    'a=0',
    'a=01',
    'a=-1',
    'a=1.5',
    'a=1e3',
    'a=9007199254740992',
    'b=1,a=1',
    'a=1,a=2',
    'a=1,',
    ',a=1',
    'a=1,,b=2',
    'a b=1',
    'a=1=2',
  ])('decode rejects %j with HlcParseError', (input) => {
    expect(() => VectorClock.decode(input)).toThrow(HlcParseError);
  });

  it('decode fuzz: only HlcParseError; accepted input is canonical', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ maxLength: 40, unit: fc.constantFrom(...'ab=,0123 9') }),
      small.map((v) => v.encode()),
    );
    fc.assert(
      fc.property(text, (s) => {
        try {
          expect(VectorClock.decode(s).encode()).toBe(s);
        } catch (e) {
          expect(e).toBeInstanceOf(HlcParseError);
        }
      }),
      fcParams(10_000),
    );
    expect(() => VectorClock.decode(null as unknown as string)).toThrow(HlcParseError);
  });
});
