/**
 * The waiting behind `TrueClock.ready`, `whenTrusted`, `waitUntilAfter` and
 * `commitWait`: each reads the clock through a {@link ClockWaitContext}.
 *
 * @module
 */
import { AbortError, ClockUnsynchronizedError } from '../errors.js';
import type { SourceProblem } from '../sources/types.js';
import type { ClockStatus, MonotonicSource, Scheduler, TimeReading } from '../clock/types.js';
import type { StatusListener } from './clock-options.js';
import { sleepToward, type CommitWaitResult, type WaitOptions } from './sleep.js';

/**
 * A pending wait, woken on every sample and disruption and failed on close.
 *
 * @example
 * ```ts
 * context.waiters.add({ wake: step, fail: (error) => reject(error) }); // woken on each sample, failed on close
 * ```
 * @internal
 */
export interface Waiter {
  wake(): void;
  fail(error: Error): void;
}

/**
 * What a wait needs of the clock it waits on.
 *
 * @example
 * ```ts
 * await waitForSample(context, 5000, undefined, () => clock.sample !== undefined); // ready()'s wait
 * ```
 * @internal
 */
export interface ClockWaitContext {
  readonly monotonic: MonotonicSource;
  readonly scheduler: Scheduler;
  /** The clock's pending waits: woken on samples and disruptions, failed on close. */
  readonly waiters: Set<Waiter>;
  /** A reading; `strict`: one strict operations may act on, else it throws `ClockUnsynchronizedError`. */
  read(strict: boolean, operation: string): TimeReading;
  /** A reading, without the strict check. */
  now(): TimeReading;
  /** Runs the watchdog, brings the last-reported status up to date and reads the clock. */
  refresh(): TimeReading;
  closed(): boolean;
  lastProblem(): SourceProblem | undefined;
  onStatusChange(listener: StatusListener): () => void;
}

/**
 * Whether strict operations act on a reading with this status.
 *
 * @param status - A reading's status.
 * @returns `true` for `synchronized` and `free-running`.
 *
 * @example
 * ```ts
 * isTrusted('free-running'); // true
 * ```
 * @internal
 */
export function isTrusted(status: ClockStatus): boolean {
  return status === 'synchronized' || status === 'free-running';
}

/**
 * Shared wait loop. `check` returns the reading to resolve with, or how many
 * monotonic ms it expects to wait (undefined: until the next sample).
 *
 * @param context - The clock waited on.
 * @param operation - Named in errors, e.g. `'ready()'`.
 * @param signal - Cancels the wait with `AbortError`.
 * @param timeoutMs - Monotonic ms until `onTimeout()` is the rejection.
 * @param check - The reading to resolve with, or how long to sleep.
 * @param strict - Whether an untrustworthy clock rejects the wait.
 * @param onTimeout - The error on timeout.
 * @returns The reading `check` accepted.
 * @throws {@link AbortError} When `signal` aborts.
 * @throws {@link ClockUnsynchronizedError} When the clock is closed, or (`strict`) untrustworthy.
 *
 * @example
 * ```ts
 * await waitFor(context, 'ready()', signal, 1000, (r) => r, false, () => new Error('timeout'));
 * ```
 * @internal
 */
export function waitFor(
  context: ClockWaitContext,
  operation: string,
  signal: AbortSignal | undefined,
  timeoutMs: number,
  check: (reading: TimeReading) => TimeReading | number | undefined,
  strict: boolean,
  onTimeout: () => Error,
): Promise<TimeReading> {
  return new Promise<TimeReading>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError(operation, signal.reason));
      return;
    }
    const deadline = context.monotonic.now() + timeoutMs;
    let cancelSleep: (() => void) | undefined;
    let settled = false;
    const settle = (error: Error | undefined, reading?: TimeReading): void => {
      if (settled) return;
      settled = true;
      cancelSleep?.();
      context.waiters.delete(waiter);
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve(reading as TimeReading);
    };
    const onAbort = (): void => settle(new AbortError(operation, signal?.reason));
    const step = (): void => {
      if (settled) return;
      cancelSleep?.();
      cancelSleep = undefined;
      let reading: TimeReading;
      try {
        reading = context.read(strict, operation);
      } catch (error) {
        settle(error as Error);
        return;
      }
      if (context.closed()) {
        settle(
          new ClockUnsynchronizedError(
            operation,
            'unsynchronized',
            Infinity,
            'the clock was closed',
          ),
        );
        return;
      }
      const outcome = check(reading);
      if (typeof outcome === 'object') {
        settle(undefined, outcome);
        return;
      }
      const left = deadline - context.monotonic.now();
      if (left <= 0) {
        settle(onTimeout());
        return;
      }
      const sleepMs = Math.min(outcome ?? Infinity, left);
      if (Number.isFinite(sleepMs)) cancelSleep = sleepToward(context.scheduler, sleepMs, step);
    };
    const waiter: Waiter = { wake: step, fail: (error) => settle(error) };
    context.waiters.add(waiter);
    signal?.addEventListener('abort', onAbort, { once: true });
    step();
  });
}

/**
 * `TrueClock.ready()`: resolves on the first reading backed by a sample (at once
 * if there is one), or fails after `timeoutMs` naming the last problem.
 *
 * @param context - The clock's side of waiting.
 * @param timeoutMs - How long to wait (ms).
 * @param signal - Aborts the wait.
 * @param hasSample - Whether the clock has a sample now.
 * @returns The first reading backed by a sample.
 * @throws {@link ClockUnsynchronizedError} When no sample arrives in time.
 * @throws {@link AbortError} When `signal` aborts.
 *
 * @example
 * ```ts
 * await waitForSample(context, 5000, undefined, () => clock.sample !== undefined);
 * ```
 * @internal
 */
export function waitForSample(
  context: ClockWaitContext,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  hasSample: () => boolean,
): Promise<TimeReading> {
  return waitFor(
    context,
    'ready()',
    signal,
    timeoutMs,
    (reading) => {
      if (hasSample()) return reading;
      return undefined;
    },
    false,
    () => {
      const problem = context.lastProblem();
      const detail = problem ? `; last problem: ${problem.message}` : '';
      return new ClockUnsynchronizedError(
        'ready()',
        'unsynchronized',
        Infinity,
        `no sample within ${timeoutMs} ms${detail}`,
      );
    },
  );
}

/**
 * The body of `TrueClock.whenTrusted`: resolves at once on a trusted reading,
 * else on the first status change to a trusted status.
 *
 * @param context - The clock waited on.
 * @param timeoutMs - Monotonic ms (checked) until it rejects.
 * @param signal - Cancels the wait with `AbortError`.
 * @returns The first trusted reading.
 * @throws {@link ClockUnsynchronizedError} On timeout or close (names the last problem).
 * @throws {@link AbortError} When `signal` aborts.
 *
 * @example
 * ```ts
 * await waitForTrust(context, 10_000, signal); // { status: 'synchronized', … }
 * ```
 * @internal
 */
export function waitForTrust(
  context: ClockWaitContext,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<TimeReading> {
  const operation = 'whenTrusted()';
  if (signal?.aborted) return Promise.reject(new AbortError(operation, signal.reason));
  const refusal = (why: string): ClockUnsynchronizedError => {
    const reading = context.now();
    const problem = context.lastProblem();
    const last = problem ? `; last problem: ${problem.message}` : '';
    return new ClockUnsynchronizedError(
      operation,
      reading.status,
      reading.uncertaintyMs,
      `${why}${last}`,
    );
  };
  // refresh(): a disruption not yet seen counts, and the next status change is an event.
  const reading = context.refresh();
  if (isTrusted(reading.status)) return Promise.resolve(reading);
  if (context.closed()) return Promise.reject(refusal('the clock was closed'));
  return new Promise<TimeReading>((resolve, reject) => {
    let timer: unknown;
    let settled = false;
    const settle = (error: Error | undefined, trusted?: TimeReading): void => {
      if (settled) return;
      settled = true;
      unsubscribe();
      context.waiters.delete(waiter);
      signal?.removeEventListener('abort', onAbort);
      if (timer !== undefined) context.scheduler.clearTimeout(timer);
      if (error) reject(error);
      else resolve(trusted as TimeReading);
    };
    const unsubscribe = context.onStatusChange((status, _previous, next) => {
      if (isTrusted(status)) settle(undefined, next);
    });
    // close() fails waiters; this one names its own operation and the last problem.
    const waiter: Waiter = {
      wake: () => undefined,
      fail: () => settle(refusal('the clock was closed')),
    };
    context.waiters.add(waiter);
    const onAbort = (): void => settle(new AbortError(operation, signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (Number.isFinite(timeoutMs)) {
      timer = context.scheduler.setTimeout(
        () => settle(refusal(`not trusted within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
  });
}

/**
 * The body of `TrueClock.commitWait` once the timestamp is chosen: runs the
 * write while waiting for the timestamp to pass.
 *
 * @param timestamp - The commit timestamp, `now().latest` of a trusted reading.
 * @param write - The write, given its commit timestamp.
 * @param options - Abort signal and timeout for the wait.
 * @param waitUntilAfter - The clock's `waitUntilAfter`.
 * @param monotonic - The clock's monotonic clock, to measure the hold-back.
 * @returns The timestamp, the write's result and how long the result was held back.
 * @throws {@link ClockUnsynchronizedError} When the clock becomes untrustworthy.
 * @throws {@link CommitWaitTimeoutError} When `timeoutMs` elapses first.
 * @throws {@link AbortError} When `signal` aborts.
 *
 * @example
 * ```ts
 * await commitWaitAt(s, (ts) => db.insert(ts), {}, (t, o) => clock.waitUntilAfter(t, o), monotonic);
 * ```
 * @internal
 */
export async function commitWaitAt<T>(
  timestamp: number,
  write: (timestamp: number) => T | PromiseLike<T>,
  options: WaitOptions,
  waitUntilAfter: (t: number, options: WaitOptions) => Promise<TimeReading>,
  monotonic: MonotonicSource,
): Promise<CommitWaitResult<T>> {
  const cancel = new AbortController();
  const outer = options.signal;
  const forward = (): void => cancel.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener('abort', forward, { once: true });
  const waitOptions: WaitOptions =
    options.timeoutMs === undefined
      ? { signal: cancel.signal }
      : { signal: cancel.signal, timeoutMs: options.timeoutMs };
  const waited = waitUntilAfter(timestamp, waitOptions);
  // Observed below; this keeps a rejection during the write from being "unhandled".
  waited.catch(() => undefined);
  try {
    let result: T;
    try {
      result = await write(timestamp);
    } catch (error) {
      cancel.abort(error);
      throw error;
    }
    const writtenAt = monotonic.now();
    await waited;
    return { timestamp, result, waitedMs: Math.max(0, monotonic.now() - writtenAt) };
  } finally {
    outer?.removeEventListener('abort', forward);
  }
}
