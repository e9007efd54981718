/**
 * Lets a background timer not keep a Node process alive; a no-op elsewhere.
 * @internal
 */
export function unrefTimer(handle: unknown): void {
  if (typeof handle === 'object' && handle !== null && 'unref' in handle) {
    const unref = (handle as { unref?: unknown }).unref;
    if (typeof unref === 'function') unref.call(handle);
  }
}
