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
 * What `promise` rejects with, to inspect a typed error's fields; fails the test
 * when it resolves instead. The async twin of {@link catchError}.
 *
 * @example
 * ```ts
 * expect(await catchRejection(gateway.range('/k'))).toBeInstanceOf(EtcdCompactedError);
 * ```
 */
export async function catchRejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection, but the promise resolved');
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
