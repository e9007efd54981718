import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HlcParseError,
  InvalidArgumentError,
  compareHlc,
  formatHlc,
  hlcFromBigInt,
  hlcFromBytes,
  hlcToBigInt,
  hlcToBytes,
  parseHlc,
  type HlcTimestamp,
} from '../../src/index.js';
import { decodeCanonicalHlc, parseHlcStrict } from '../../src/logical/hlc-codec.js';
import { hlcTimestamp } from '../../src/testing/fast-check/index.js';
import { fcParams } from '../support/fc.js';
import { assertCanonicalDecoder, textNear } from '../support/decoder-fuzz.js';
import { catchError, expectInvalidArgument } from '../support/errors.js';

const sign = (x: number): number => (x < 0 ? -1 : x > 0 ? 1 : 0);
const cmpStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++)
    if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number) ? -1 : 1;
  return sign(a.length - b.length);
}

/** Timestamps crowded into a few values, so equal walls, counters and nodes are common. */
const crowded = fc.oneof(
  hlcTimestamp({
    minWallMs: 1_000,
    maxWallMs: 1_003,
    maxCounter: 3,
    nodes: ['a', 'ab', 'b', 'B', '~'],
  }),
  hlcTimestamp(),
);

describe('compareHlc', () => {
  it('orders by wallMs, then counter, then node', () => {
    const a = { wallMs: 5, counter: 9, node: 'z' };
    const b = { wallMs: 6, counter: 0, node: 'a' };
    const c = { wallMs: 6, counter: 1, node: 'a' };
    const d = { wallMs: 6, counter: 1, node: 'b' };
    expect([d, c, b, a].sort(compareHlc)).toEqual([a, b, c, d]);
    expect(compareHlc(c, { ...c })).toBe(0);
  });

  it('is a total order (antisymmetric, transitive)', () => {
    fc.assert(
      fc.property(crowded, crowded, crowded, (a, b, c) => {
        expect(sign(compareHlc(a, b)) + sign(compareHlc(b, a))).toBe(0);
        if (compareHlc(a, b) <= 0 && compareHlc(b, c) <= 0)
          expect(compareHlc(a, c)).toBeLessThanOrEqual(0);
        expect(compareHlc(a, b) === 0).toBe(
          a.wallMs === b.wallMs && a.counter === b.counter && a.node === b.node,
        );
      }),
      fcParams(10_000),
    );
  });
});

describe('known encodings', () => {
  const ts = { wallMs: 1_700_000_000_000, counter: 42, node: 'node-a' };

  it('bigint is wallMs << 16 | counter', () => {
    expect(hlcToBigInt(ts)).toBe((1_700_000_000_000n << 16n) | 42n);
    expect(hlcToBigInt({ wallMs: 0, counter: 0, node: 'a' })).toBe(0n);
    expect(hlcToBigInt({ wallMs: 2 ** 48 - 1, counter: 0xffff, node: 'a' })).toBe(2n ** 64n - 1n);
  });

  it('string is the bigint in 16 hex digits, @, node', () => {
    expect(formatHlc(ts)).toBe('018bcfe56800002a@node-a');
    expect(formatHlc(ts).slice(0, 16)).toBe(hlcToBigInt(ts).toString(16).padStart(16, '0'));
    expect(formatHlc({ wallMs: 0, counter: 0, node: 'a' })).toBe('0000000000000000@a');
    expect(formatHlc({ wallMs: 2 ** 48 - 1, counter: 0xffff, node: 'a' })).toBe(
      'ffffffffffffffff@a',
    );
  });

  it('bytes are the bigint big-endian, then the node', () => {
    expect(Array.from(hlcToBytes(ts))).toEqual([
      0x01,
      0x8b,
      0xcf,
      0xe5,
      0x68,
      0x00,
      0x00,
      0x2a,
      ...Array.from('node-a', (c) => c.charCodeAt(0)),
    ]);
  });

  it('fits a signed SQL BIGINT until the year 6429', () => {
    const last = { wallMs: 2 ** 47 - 1, counter: 0xffff, node: 'a' };
    expect(hlcToBigInt(last)).toBe(2n ** 63n - 1n);
    expect(new Date(2 ** 47 - 1).getUTCFullYear()).toBe(6429);
  });
});

describe('round trips', () => {
  it('string, bigint and bytes decode to the same timestamp', () => {
    fc.assert(
      fc.property(hlcTimestamp(), (ts) => {
        expect(parseHlc(formatHlc(ts))).toEqual(ts);
        expect(hlcFromBigInt(hlcToBigInt(ts), ts.node)).toEqual(ts);
        expect(hlcFromBytes(hlcToBytes(ts))).toEqual(ts);
      }),
      fcParams(10_000),
    );
  });

  it('decode then encode gives back the input (canonical forms)', () => {
    fc.assert(
      fc.property(hlcTimestamp(), (ts) => {
        const s = formatHlc(ts);
        expect(formatHlc(parseHlc(s))).toBe(s);
        const b = hlcToBytes(ts);
        expect(hlcToBytes(hlcFromBytes(b))).toEqual(b);
      }),
      fcParams(2_000),
    );
  });
});

describe('order preservation', () => {
  it('string order = byte order = compareHlc order; bigint order agrees up to the node', () => {
    fc.assert(
      fc.property(crowded, crowded, (a, b) => {
        const expected = sign(compareHlc(a, b));
        expect(cmpStr(formatHlc(a), formatHlc(b))).toBe(expected);
        expect(cmpBytes(hlcToBytes(a), hlcToBytes(b))).toBe(expected);
        const big = cmpBig(hlcToBigInt(a), hlcToBigInt(b));
        if (big !== 0) expect(big).toBe(expected);
        else expect(a.wallMs === b.wallMs && a.counter === b.counter).toBe(true);
      }),
      fcParams(10_000),
    );
  });

  it('sorting strings sorts timestamps', () => {
    fc.assert(
      fc.property(fc.array(crowded, { maxLength: 30 }), (list) => {
        const byString = list.map(formatHlc).sort().map(parseHlc);
        expect(byString.map(formatHlc)).toEqual([...list].sort(compareHlc).map(formatHlc));
      }),
      fcParams(2_000),
    );
  });
});

describe('encoders reject invalid timestamps', () => {
  const bad: Array<[string, HlcTimestamp]> = [
    ['ts.wallMs', { wallMs: -1, counter: 0, node: 'a' }],
    ['ts.wallMs', { wallMs: 1.5, counter: 0, node: 'a' }],
    ['ts.wallMs', { wallMs: Number.NaN, counter: 0, node: 'a' }],
    ['ts.wallMs', { wallMs: 2 ** 48, counter: 0, node: 'a' }],
    ['ts.counter', { wallMs: 0, counter: 65_536, node: 'a' }],
    ['ts.counter', { wallMs: 0, counter: -1, node: 'a' }],
    ['ts.counter', { wallMs: 0, counter: 0.5, node: 'a' }],
    ['ts.node', { wallMs: 0, counter: 0, node: 'a@b' }],
    ['ts.node', { wallMs: 0, counter: 0, node: '' }],
  ];
  it.each(bad)('%s: %j', (argument, ts) => {
    for (const encode of [formatHlc, hlcToBytes]) {
      expectInvalidArgument(() => encode(ts), argument);
    }
    if (argument !== 'ts.node') expect(() => hlcToBigInt(ts)).toThrow(InvalidArgumentError);
  });
});

describe('decoders reject bad input with HlcParseError naming it', () => {
  const good = formatHlc({ wallMs: 1_700_000_000_000, counter: 7, node: 'n1' });
  const badStrings = [
    '',
    'garbage',
    good.slice(0, 16), // no node
    `${good.slice(0, 16)}@`, // empty node
    good.replace('@', '#'),
    `0${good}`, // too long prefix: '@' moves
    good.slice(1), // too short prefix
    good.toUpperCase().replace('@N1', '@n1'), // uppercase hex
    `${good.slice(0, 3)}g${good.slice(4)}`, // non-hex
    `${good.slice(0, 3)}\u0660${good.slice(4)}`, // non-ASCII digit
    `${good.slice(0, 3)}\u0130${good.slice(4)}`, // char whose low 7 bits are '0'
    `${good.slice(0, 3)} ${good.slice(4)}`,
    `${good.slice(0, 17)}a,b`, // separator in node
    `${good.slice(0, 17)}a=b`,
    `${good.slice(0, 17)}a@b`,
    `${good.slice(0, 17)}a b`,
    `${good.slice(0, 17)}é`,
    `${good.slice(0, 17)}${'x'.repeat(65)}`,
    '-000000000000001@a',
    'NaN0000000000000@a',
  ];
  it.each(badStrings)('parseHlc(%j)', (input) => {
    const err = catchError(() => parseHlc(input));
    expect(err).toBeInstanceOf(HlcParseError);
    expect((err as HlcParseError).code).toBe('HLC_PARSE');
    // Quoted whole up to 64 characters; beyond, the first 64, an ellipsis and the length.
    const shown =
      input.length <= 64
        ? JSON.stringify(input)
        : `${JSON.stringify(input.slice(0, 64))}… (${input.length} characters)`;
    expect((err as HlcParseError).input).toBe(shown);
    expect((err as Error).message).toContain(shown);
  });

  it('parseHlc rejects non-strings', () => {
    for (const v of [null, undefined, 42, Number.NaN, {}, 1n])
      expect(() => parseHlc(v as never)).toThrow(HlcParseError);
  });

  it('hlcFromBigInt rejects negative, too large, non-bigint and bad nodes', () => {
    for (const v of [-1n, 2n ** 64n, 2n ** 80n])
      expect(() => hlcFromBigInt(v, 'a')).toThrow(HlcParseError);
    for (const v of [Number.NaN, 5, '5', null])
      expect(() => hlcFromBigInt(v as unknown as bigint, 'a')).toThrow(HlcParseError);
    for (const node of ['', 'a,b', 'x'.repeat(65), 7])
      expect(() => hlcFromBigInt(5n, node as string)).toThrow(HlcParseError);
    const err = catchError(() => hlcFromBigInt(-1n, 'a')) as HlcParseError;
    expect(err.input).toBe('-1n');
  });

  it('hlcFromBytes rejects wrong lengths, bad node bytes and non-arrays', () => {
    const ok = hlcToBytes({ wallMs: 1, counter: 1, node: 'ab' });
    expect(() => hlcFromBytes(ok.subarray(0, 8))).toThrow(HlcParseError);
    expect(() => hlcFromBytes(new Uint8Array(8 + 65).fill(0x61))).toThrow(HlcParseError);
    for (const b of [0x00, 0x20, 0x2c, 0x3d, 0x40, 0x7f, 0x80, 0xff]) {
      const copy = ok.slice();
      copy[9] = b;
      expect(() => hlcFromBytes(copy)).toThrow(HlcParseError);
    }
    for (const v of [null, 'abc', [1, 2, 3, 4, 5, 6, 7, 8, 97]])
      expect(() => hlcFromBytes(v as unknown as Uint8Array)).toThrow(HlcParseError);
  });

  it('the node cache never lets an invalid node through', () => {
    // Same length as a cached valid node, differing only in a forbidden character.
    expect(parseHlc(`${good.slice(0, 17)}abc`).node).toBe('abc');
    expect(() => parseHlc(`${good.slice(0, 17)}a,c`)).toThrow(HlcParseError);
    expect(() => parseHlc(`${good.slice(0, 17)}ab `)).toThrow(HlcParseError);
    expect(parseHlc(`${good.slice(0, 17)}xabc`).node).toBe('xabc');
  });

  it('the node cache tells apart ids of the same length, in any order of arrival', () => {
    const nodes = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5'];
    const order = [...nodes, ...nodes.slice().reverse(), 'node-2', 'node-2', 'node-5', 'node-1'];
    const stamps = order.map((node, i) => ({ wallMs: 1_700_000_000_000 + i, counter: i, node }));
    const texts = stamps.map(formatHlc);
    for (let round = 0; round < 3; round++) expect(texts.map(parseHlc)).toEqual(stamps);
  });

  it('parseHlc names the first problem, with the same messages for every kind of input', () => {
    const shape = "expected 16 lowercase hex digits, '@' and a node id of 1–64 characters";
    const cases: Array<[unknown, string]> = [
      ['', `"": ${shape}`],
      [good.slice(0, 16), `"018bcfe568000007": ${shape}`],
      [`${good.slice(0, 16)}@`, `"018bcfe568000007@": ${shape}`],
      [good.replace('@', '#'), `"018bcfe568000007#n1": ${shape}`],
      [
        `${good.slice(0, 17)}${'x'.repeat(65)}`,
        `"018bcfe568000007@${'x'.repeat(47)}"… (82 characters): ${shape}`,
      ],
      [
        'NaN0000000000000@a',
        `"NaN0000000000000@a": character 0 ("N") is not a lowercase hex digit`,
      ],
      [
        `${good.slice(0, 3)}İ${good.slice(4)}`,
        `"018İcfe568000007@n1": character 3 ("İ") is not a lowercase hex digit`,
      ],
      [
        `${good.slice(0, 15)}\ud83d@n1`,
        `"018bcfe56800000\\ud83d@n1": character 15 ("\\ud83d") is not a lowercase hex digit`,
      ],
      [
        `${good.slice(0, 17)}a=b`,
        `"018bcfe568000007@a=b": invalid node id: character "=" at index 1 is a separator of the string encodings`,
      ],
      [
        `${good.slice(0, 17)}é`,
        `"018bcfe568000007@é": invalid node id: character "é" at index 0 is not printable ASCII`,
      ],
      [null, 'null: expected a string'],
      [1n, '1n: expected a string'],
    ];
    for (const [input, why] of cases) {
      const err = catchError(() => parseHlc(input as string));
      expect(err).toBeInstanceOf(HlcParseError);
      expect((err as Error).message).toBe(`Cannot parse timestamp ${why}.`);
    }
  });

  it('parseHlc refuses a bad digit in every position, including chars whose low 7 bits are a digit', () => {
    // 'İ' is U+0130, '°' U+00B0 and 'š' U+0161: their low 7 bits are '0', '0' and 'a'.
    for (const bad of ['g', 'A', ' ', '/', ':', '`', 'İ', '°', 'š', '\ud83d', '\u0000']) {
      for (let i = 0; i < 16; i++) {
        const input = `${good.slice(0, i)}${bad}${good.slice(i + 1)}`;
        const err = catchError(() => parseHlc(input));
        expect(err).toBeInstanceOf(HlcParseError);
        expect((err as Error).message).toBe(
          `Cannot parse timestamp ${JSON.stringify(input)}: character ${i} (${JSON.stringify(bad)}) is not a lowercase hex digit.`,
        );
      }
    }
  });
});

describe('decoder fuzzing: only HlcParseError, and accepted input is canonical', () => {
  const validText = hlcTimestamp().map(formatHlc);
  /** Valid encodings with a few characters replaced, inserted or deleted. */
  const mutated = fc
    .tuple(
      validText,
      fc.array(
        fc.tuple(fc.nat(), fc.nat({ max: 2 }), fc.string({ maxLength: 2, unit: 'binary' })),
        { maxLength: 3 },
      ),
    )
    .map(([s, edits]) => {
      let out = s;
      for (const [pos, op, text] of edits) {
        const i = pos % (out.length + 1);
        out =
          op === 0
            ? out.slice(0, i) + text + out.slice(i + 1)
            : op === 1
              ? out.slice(0, i) + text + out.slice(i)
              : out.slice(0, i) + out.slice(i + 1);
      }
      return out;
    });
  const anyText = textNear('0123456789abcdefABCDEF@,=- x', 16, 30, mutated);

  it('parseHlc', () => {
    // Anything accepted is exactly what formatHlc would produce.
    assertCanonicalDecoder(anyText, parseHlc, formatHlc, HlcParseError, 20_000);
  });

  it('the fast path of parseHlc accepts exactly what the reference parser accepts, with the same result', () => {
    fc.assert(
      fc.property(fc.oneof(validText, anyText), (s) => {
        const fast = decodeCanonicalHlc(s);
        let reference: HlcTimestamp;
        try {
          reference = parseHlcStrict(s);
        } catch (e) {
          expect(e).toBeInstanceOf(HlcParseError);
          expect(fast).toBeUndefined();
          // parseHlc then throws the reference parser's error, message and all.
          const err = catchError(() => parseHlc(s));
          expect(err).toBeInstanceOf(HlcParseError);
          expect((err as Error).message).toBe((e as Error).message);
          return;
        }
        expect(fast).toEqual(reference);
        expect(Object.keys(fast ?? {})).toEqual(['wallMs', 'counter', 'node']);
        expect(parseHlc(s)).toEqual(reference);
      }),
      fcParams(20_000),
    );
  });

  it('hlcFromBytes', () => {
    const validBytes = hlcTimestamp().map(hlcToBytes);
    const anyBytes = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.tuple(validBytes, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, i, v]) => {
        const c = b.slice();
        c[i % c.length] = v;
        return c;
      }),
    );
    assertCanonicalDecoder(anyBytes, hlcFromBytes, hlcToBytes, HlcParseError, 10_000);
  });

  it('hlcFromBigInt', () => {
    const anyNode = fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('a', 'node-1'));
    assertCanonicalDecoder(
      fc.tuple(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), anyNode),
      ([b, node]) => hlcFromBigInt(b, node),
      (ts): [bigint, string] => [hlcToBigInt(ts), ts.node],
      HlcParseError,
      10_000,
    );
  });
});
