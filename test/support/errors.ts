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
