/**
 * Process-level pause detection for Node: a {@link PauseDetector} on the
 * system clocks that also checks the moment the process receives SIGCONT
 * (it was stopped with SIGSTOP/SIGTSTP), without waiting for its timer.
 *
 * @module
 */
import process from 'node:process';
import { PauseDetector } from '../safety/pause-detector.js';
import type { PauseDetectorOptions } from '../safety/pause-detector.js';

/**
 * A running process pause watch.
 *
 * @example
 * ```ts
 * await using watch = watchProcessPauses({ clock });
 * watch.detector.register(lease); // a SIGSTOP … SIGCONT ends the lease as soon as the process runs again
 * watch.detector.check();         //=> undefined (no pause so far)
 * ```
 */
export interface ProcessPauseWatch {
  /** The detector: register leases, add listeners, call `check()`. */
  readonly detector: PauseDetector;
  /** Stops the detector and removes the SIGCONT listener. Idempotent. */
  close(): void;
  /** Same as `close()`, for `await using watch = watchProcessPauses(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts watching this process for pauses: event-loop stalls and long GCs
 * (late timer ticks), SIGSTOP/SIGCONT (checked as soon as SIGCONT arrives),
 * and VM pauses that the monotonic clock saw. The timer does not keep the
 * process alive.
 *
 * @param options - As for `PauseDetector` (clock to disrupt, listener, interval, threshold).
 * @returns The watch; call `close()` when done.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is invalid.
 *
 * @example
 * ```ts
 * import { watchProcessPauses } from 'chronobound/node';
 * const watch = watchProcessPauses({ clock, onPause: (p) => log.warn(`stopped ≥ ${p.durationMs} ms`) });
 * watch.detector.register(lease);
 * ```
 */
export function watchProcessPauses(options: PauseDetectorOptions = {}): ProcessPauseWatch {
  const detector = new PauseDetector(options);
  const onContinue = (): void => {
    detector.check('SIGCONT');
  };
  process.on('SIGCONT', onContinue);
  let closed = false;
  return {
    detector,
    close() {
      if (closed) return;
      closed = true;
      process.off('SIGCONT', onContinue);
      detector.stop();
    },
    [Symbol.asyncDispose]() {
      this.close();
      return Promise.resolve();
    },
  };
}
