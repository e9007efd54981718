import { expect } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';

/**
 * Returns what `f` throws, to inspect a typed error's fields; fails the test when
 * `f` returns instead.
 *
 * @example
 * ```ts
 * expect(catchError(() => parseHlc('x'))).toMatchObject({ argument: 'text' });
 * ```
 */
export function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

/**
 * Asserts that `f` throws an `InvalidArgumentError` naming `argument`, and
 * returns it for further checks.
 *
 * @example
 * ```ts
 * expectInvalidArgument(() => httpTimeSource({ url: '' }), 'url');
 * ```
 */
export function expectInvalidArgument(f: () => unknown, argument: string): InvalidArgumentError {
  const error = catchError(f);
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect((error as InvalidArgumentError).argument).toBe(argument);
  return error as InvalidArgumentError;
}
