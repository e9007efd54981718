/**
 * The polling loop every polling source shares: run one poll, compute the next
 * delay from its outcome, wait, repeat; poll at once on demand, never two polls
 * at once, and stop cleanly. Driven by an injected {@link Scheduler}, so it runs
 * in virtual time under test.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative } from '../_internals/validate.js';
import type { Scheduler } from '../clock/types.js';

/**
 * Options of {@link startPoller}.
 *
 * @example
 * ```ts
 * const manual = new ManualClock();
 * let polls = 0;
 * startPoller({
 *   scheduler: manual,
 *   poll: async () => ++polls,
 *   nextDelayMs: () => 60_000,
 *   onError: (error) => console.error(error),
 *   errorDelayMs: 60_000,
 * });
 * polls; //=> 1 (the first poll runs before startPoller returns)
 * await manual.advanceAsync(60_000);
 * polls; //=> 2
 * ```
 * @internal
 */
export interface PollerOptions<T> {
  /** Timers; every wait between polls is one `setTimeout` on it, unref'd. */
  readonly scheduler: Scheduler;
  /**
   * One poll: the per-poll work. Its result is handed to `nextDelayMs`. `signal`
   * aborts when the poller is stopped (the same signal for every poll), so the
   * work in flight can give up, and a poll can tell it was stopped meanwhile.
   * It is called synchronously from `startPoller` (unless `initialDelayMs` is
   * given) and from `pollNow`, so it must not use the returned {@link Poller}
   * before its first `await`.
   */
  readonly poll: (signal: AbortSignal) => Promise<T>;
  /**
   * How long to wait (ms) after a poll that produced `outcome` before the next
   * one: a negative delay is taken as 0, `Infinity` waits for `pollNow()`. It is
   * not called after `stop()`, nor when a `pollNow()` came during the poll (the
   * next poll then runs at once whatever it would say), so keep it to choosing
   * the delay: deliver results from `poll`.
   */
  readonly nextDelayMs: (outcome: T) => number;
  /**
   * Hears what went wrong in the loop itself: `poll` threw or rejected,
   * `nextDelayMs` threw or returned something that is not a number. The loop
   * then waits `errorDelayMs` and polls again. A poll that rejects after
   * `stop()` is not reported (stopping usually aborts it); a throwing
   * `onError` is ignored. Should the scheduler itself throw, that is reported
   * too, and the loop idles until the next `pollNow()`.
   */
  readonly onError: (error: unknown) => void;
  /** The wait (ms) after a poll that failed in a way `onError` heard of. */
  readonly errorDelayMs: number;
  /**
   * When the first poll runs: omitted, at once (synchronously, before
   * `startPoller` returns); a number, after that many ms (`Infinity`: at the
   * first `pollNow()`).
   */
  readonly initialDelayMs?: number;
}

/**
 * A running polling loop, from {@link startPoller}.
 *
 * @example
 * ```ts
 * const manual = new ManualClock();
 * let polls = 0;
 * const poller = startPoller({
 *   scheduler: manual,
 *   poll: async () => ++polls,
 *   nextDelayMs: () => 60_000,
 *   onError: (error) => console.error(error),
 *   errorDelayMs: 60_000,
 * });
 * await manual.advanceAsync(0);
 * polls;               //=> 1
 * poller.pollNow();    // e.g. after a disruption: polls before returning
 * polls;               //=> 2
 * poller.pollAfter(0); // the same, from a timer rather than from this call
 * await manual.advanceAsync(0);
 * polls;               //=> 3
 * poller.stop();
 * await manual.advanceAsync(600_000);
 * polls;               //=> 3 (stopped)
 * ```
 * @internal
 */
export interface Poller {
  /**
   * Polls at once: cancels the pending wait and starts a poll before returning.
   * During a poll it asks for one more poll right after it instead (however
   * often it is called meanwhile), so two polls never overlap. After `stop()`
   * it does nothing.
   */
  pollNow(): void;
  /**
   * Like `pollNow()`, but the poll starts `delayMs` from now (a timer on the
   * scheduler; 0: on the next turn of the event loop, not before returning),
   * replacing the pending wait. During a poll it asks for one more poll right
   * after it, as `pollNow()` does. After `stop()` it does nothing.
   *
   * @throws {@link InvalidArgumentError} When `delayMs` is not a number ≥ 0.
   */
  pollAfter(delayMs: number): void;
  /**
   * Stops for good: cancels the pending wait and aborts the signal the polls
   * got; a poll still in flight schedules nothing when it ends. Idempotent.
   */
  stop(): void;
}

/**
 * Starts a polling loop: `poll`, then wait `nextDelayMs(outcome)`, then `poll`
 * again, until `stop()`.
 *
 * - Never two polls at once: `pollNow()` during a poll coalesces into one more
 *   poll right after it.
 * - Nothing kills the loop silently: a throwing or rejecting `poll`, or a
 *   throwing `nextDelayMs`, goes to `onError`, and the next poll comes
 *   `errorDelayMs` later. Nothing is thrown from a timer and no promise is left
 *   rejected.
 * - Every wait is one timer on `scheduler`, unref'd so that an idle loop never
 *   keeps a process alive; `stop()` cancels it.
 *
 * @param options - The scheduler, the per-poll work, the delay policy and where errors go.
 * @returns The loop's handle: `pollNow()` and `stop()`.
 * @throws {@link InvalidArgumentError} When `poll`, `nextDelayMs` or `onError` is not a function,
 *   `errorDelayMs` is not a finite number ≥ 0, or `initialDelayMs` is not a number ≥ 0.
 *
 * @example
 * ```ts
 * let failures = 0;
 * const poller = startPoller({
 *   scheduler,
 *   poll: async (signal) => {
 *     const sample = await exchange(signal).catch(() => undefined);
 *     if (sample !== undefined && !signal.aborted) onSample(sample);
 *     return sample !== undefined;
 *   },
 *   // Back off 1 s, 2 s, 4 s … after polls with no sample, up to the interval.
 *   nextDelayMs: (ok) => {
 *     failures = ok ? 0 : failures + 1;
 *     return ok ? intervalMs : Math.min(intervalMs, 1000 * 2 ** (failures - 1));
 *   },
 *   onError: (error) => report(error),
 *   errorDelayMs: intervalMs,
 * });
 * // later: poller.pollNow(); poller.stop();
 * ```
 * @internal
 */
export function startPoller<T>(options: PollerOptions<T>): Poller {
  const { scheduler, poll, nextDelayMs, onError } = options;
  for (const [name, value] of [
    ['poll', poll],
    ['nextDelayMs', nextDelayMs],
    ['onError', onError],
  ] as const) {
    if (typeof value !== 'function') throw new InvalidArgumentError(name, value, 'a function');
  }
  const errorDelayMs = requireNonNegative('errorDelayMs', options.errorDelayMs);
  const initialDelayMs =
    options.initialDelayMs === undefined
      ? undefined
      : requireNonNegative('initialDelayMs', options.initialDelayMs, true);

  const stopper = new AbortController();
  let stopped = false;
  /** A poll is running. */
  let polling = false;
  /** `pollNow()` came during the running poll: poll again as soon as it ends. */
  let again = false;
  /** The pending wait, if any (`hasTimer`: handles may be any value, even 0). */
  let timer: unknown;
  let hasTimer = false;

  const report = (error: unknown): void => {
    try {
      onError(error);
    } catch {
      // The error listener's own bug: nowhere left to report it, and it must not stop polling.
    }
  };

  const cancelWait = (): void => {
    if (!hasTimer) return;
    hasTimer = false;
    scheduler.clearTimeout(timer);
    timer = undefined;
  };

  const wait = (ms: number): void => {
    cancelWait();
    // Infinity: idle until pollNow().
    if (ms === Infinity) return;
    timer = scheduler.setTimeout(
      () => {
        hasTimer = false;
        timer = undefined;
        if (stopped || polling) return;
        run();
      },
      ms > 0 ? ms : 0,
    );
    hasTimer = true;
    // An idle loop must not keep the process alive.
    unrefTimer(timer);
  };

  /** The wait `nextDelayMs` asks for after `outcome`, or `errorDelayMs` when it cannot say. */
  const delayAfter = (outcome: T): number => {
    try {
      const next = nextDelayMs(outcome);
      if (typeof next === 'number' && !Number.isNaN(next)) return next;
      report(new InvalidArgumentError('nextDelayMs', next, 'a number of ms (Infinity to wait)'));
    } catch (error) {
      report(error);
    }
    return errorDelayMs;
  };

  /**
   * After a poll: poll again at once if `pollNow()` asked meanwhile, otherwise
   * wait. The callbacks run while the poll still counts as running, so a
   * `pollNow()` from inside them coalesces like any other.
   */
  const settle = (delay: () => number): void => {
    const next = stopped || again ? 0 : delay();
    polling = false;
    if (stopped) return;
    if (again) run();
    else wait(next);
  };

  /** The poll itself, with a synchronous throw turned into a rejection. */
  const attempt = async (): Promise<T> => poll(stopper.signal);

  /** Starts one poll; the caller made sure none is running. */
  function run(): void {
    polling = true;
    again = false;
    void attempt()
      .then(
        (outcome) => settle(() => delayAfter(outcome)),
        (error: unknown) => {
          // Reported even when a pollNow() is pending; not after stop(), which aborts polls.
          if (!stopped) report(error);
          settle(() => errorDelayMs);
        },
      )
      // Only a throwing scheduler gets here; the loop cannot go on, but it says so.
      .catch(report);
  }

  if (initialDelayMs === undefined) run();
  else wait(initialDelayMs);

  return {
    pollNow() {
      if (stopped) return;
      if (polling) {
        again = true;
        return;
      }
      cancelWait();
      run();
    },
    pollAfter(delayMs) {
      const ms = requireNonNegative('delayMs', delayMs, true);
      if (stopped) return;
      if (polling) {
        again = true;
        return;
      }
      wait(ms);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      cancelWait();
      stopper.abort();
    },
  };
}
