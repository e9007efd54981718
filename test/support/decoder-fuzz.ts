/**
 * Fuzzing a decoder: whatever it is given, it either throws its own parse error
 * or returns a value that its encoder turns back into exactly that input (what
 * it accepts is canonical).
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { fcParams } from './fc.js';

/**
 * Text a decoder meets: any string, any binary string, strings of `alphabet`
 * `minLength` to `maxLength` characters long (close to the format), and `more`,
 * all equally likely.
 *
 * @example
 * ```ts
 * const text = textNear('0123456789abcdef@', 14, 20);
 * ```
 */
export function textNear(
  alphabet: string,
  minLength: number,
  maxLength: number,
  ...more: fc.Arbitrary<string>[]
): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ maxLength: 90 }),
    fc.string({ maxLength: 90, unit: 'binary' }),
    fc.string({ minLength, maxLength, unit: fc.constantFrom(...alphabet) }),
    ...more,
  );
}

/**
 * Asserts, over `numRuns` inputs (see `fcParams`), that `decode` either throws
 * an instance of `error` or returns a value that `encode` turns back into the
 * input itself.
 *
 * @example
 * ```ts
 * assertCanonicalDecoder(textNear('0123456789abcdef@', 14, 20), parseLamport, formatLamport, HlcParseError, 10_000);
 * ```
 */
export function assertCanonicalDecoder<I, T>(
  input: fc.Arbitrary<I>,
  decode: (input: I) => T,
  encode: (value: T) => I,
  error: abstract new (...args: never[]) => Error,
  numRuns: number,
): void {
  fc.assert(
    fc.property(input, (x) => {
      let value: T;
      try {
        value = decode(x);
      } catch (e) {
        expect(e).toBeInstanceOf(error);
        return;
      }
      expect(encode(value)).toEqual(x);
    }),
    fcParams(numRuns),
  );
}
