/**
 * An abortable pause for the election's retry loops.
 *
 * @module
 * @internal
 */
import { AbortError } from '../errors.js';

/**
 * Resolves after `ms`, or rejects with `AbortError` as soon as `signal` aborts.
 * @throws {@link chronobound!AbortError | AbortError} When `signal` is or becomes aborted.
 * @internal
 */
export function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError('etcd campaign', signal.reason));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortError('etcd campaign', signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
