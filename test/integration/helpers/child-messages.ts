/**
 * Talking to a forked test child (fixtures/*.mjs) over IPC: each message is an
 * object with a `type`; a child that fails sends `{ type: 'error', message }`.
 */
import type { ChildProcess } from 'node:child_process';

/** What every child message has. */
export interface ChildMessageBase {
  readonly type: string;
}

/**
 * The next message of `type` from `proc`, skipping others.
 *
 * @example
 * ```ts
 * const { token } = await nextMessage<HolderMessage, 'acquired'>(proc, 'acquired');
 * ```
 * @throws Error (rejects) when the child sends `{ type: 'error' }`, exits first, or sends nothing of `type` within `timeoutMs`.
 */
export function nextMessage<M extends ChildMessageBase, T extends M['type']>(
  proc: ChildProcess,
  type: T,
  timeoutMs: number = 30_000,
): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' from the child within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: M | { type: 'error'; message: string }): void => {
      if (m.type === 'error' && 'message' in m) {
        cleanup();
        reject(new Error(`child failed: ${m.message}`));
      } else if (m.type === type) {
        cleanup();
        resolve(m as Extract<M, { type: T }>);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`child exited (${code}) before '${type}'`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', onExit);
    };
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}
