/**
 * One interruptible wait on a {@link Scheduler}, for the poll loops and the CLI.
 *
 * @module
 */
import type { Scheduler } from './types.js';

/**
 * Resolves after `ms` on `scheduler`, or early (never rejecting) once `signal`
 * aborts, so that a loop sleeping between rounds stops at once when told to.
 * @internal
 */
export function sleepOn(scheduler: Scheduler, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const wake = (): void => {
      signal.removeEventListener('abort', wake);
      scheduler.clearTimeout(timer);
      resolve();
    };
    const timer = scheduler.setTimeout(wake, ms);
    signal.addEventListener('abort', wake, { once: true });
  });
}
