/**
 * The polling loop `chronySource` and `chronyHostCorrection` share: one
 * tracking exchange per interval on the shared poller, failures and throwing
 * listeners turned into problems with stable reasons, never a throw from a timer.
 *
 * @module
 */
import {
  ChronoboundError,
  ChronyProtocolError,
  ChronyTimeoutError,
  SourceUnavailableError,
} from '../errors.js';
import { requirePositive } from '../_internals/validate.js';
import { startPoller, type Poller } from '../sources/poller.js';
import { systemScheduler } from '../clock/system.js';
import type { MonotonicSource, Scheduler } from '../clock/types.js';
import type { ProblemListener, SourceProblem } from '../sources/types.js';
import {
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_TIMEOUT_MS,
  readChronyTarget,
  type ChronyHostCorrectionOptions,
  type ChronyTarget,
} from './chrony-options.js';
import { exchangeTracking, type TrackingExchange } from './chrony-transport.js';

/**
 * The polling loops of one source's subscribers.
 * @internal
 */
export class PollerSet {
  readonly #pollers = new Set<Poller>();

  /** Keeps `poller`; returns the subscriber's unsubscribe. */
  track(poller: Poller): () => void {
    this.#pollers.add(poller);
    return () => {
      poller.stop();
      this.#pollers.delete(poller);
    };
  }

  pollNow(): void {
    for (const poller of this.#pollers) poller.pollNow();
  }

  close(): Promise<void> {
    for (const poller of this.#pollers) poller.stop();
    this.#pollers.clear();
    return Promise.resolve();
  }
}

/**
 * What one poll yields: a value for the listener, or a problem.
 * @internal
 */
export type PollOutcome<R> = { readonly value: R } | { readonly problem: SourceProblem };

/**
 * What a source polls and how often: the part of {@link ChronyPollOptions} its
 * options give, the same for every subscriber.
 * @internal
 */
export interface ChronyPollSettings {
  readonly target: ChronyTarget;
  /** `chrony host:port`, the `source` of problems. */
  readonly name: string;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
  readonly scheduler: Scheduler;
}

/**
 * Validates the options `chronySource` and `chronyHostCorrection` share, in this
 * order: `host` and `port` (defaults 127.0.0.1, 323), `pollIntervalMs` and
 * `timeoutMs` (each > 0, default 1000); `scheduler` defaults to the platform's.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming the first option out of range.
 * @internal
 */
export function readPollSettings(options: ChronyHostCorrectionOptions): ChronyPollSettings {
  const target = readChronyTarget(options.host, options.port);
  return {
    target,
    name: `chrony ${target.label}`,
    pollIntervalMs: requirePositive(
      'pollIntervalMs',
      options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    ),
    timeoutMs: requirePositive('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    scheduler: options.scheduler ?? systemScheduler,
  };
}

/**
 * What {@link startPolling} polls, how often, and where results go.
 * @internal
 */
export interface ChronyPollOptions<T, R> extends ChronyPollSettings {
  readonly monotonic: MonotonicSource;
  /** Runs synchronously right before the first send of each poll. */
  readonly beforeSend: () => T;
  /** Turns a successful exchange into a value or a problem. */
  readonly settle: (exchange: TrackingExchange<T>) => PollOutcome<R>;
  readonly onValue: (value: R) => void;
  readonly onProblem: ProblemListener | undefined;
}

/**
 * Polls chronyd's tracking report every `pollIntervalMs` from now on: the loop
 * `chronySource` and `chronyHostCorrection` share, on the shared poller. It
 * never throws or rejects: failed exchanges and throwing listeners become
 * problems. `stop()` aborts the exchange in flight.
 * @internal
 */
export function startPolling<T, R>(options: ChronyPollOptions<T, R>): Poller {
  const { name, scheduler } = options;
  const report = (problem: SourceProblem): void => {
    try {
      options.onProblem?.(problem);
    } catch {
      // A listener's bug must not stop polling.
    }
  };
  return startPoller({
    scheduler,
    poll: async (signal) => {
      let outcome: PollOutcome<R>;
      try {
        const exchange = await exchangeTracking(options.target, {
          timeoutMs: options.timeoutMs,
          signal,
          monotonic: options.monotonic,
          scheduler,
          background: true,
          beforeSend: options.beforeSend,
        });
        outcome = options.settle(exchange);
      } catch (error) {
        outcome = { problem: problemFromError(name, error) };
      }
      // Stopped meanwhile: the subscriber has gone.
      if (signal.aborted) return;
      if ('problem' in outcome) {
        report(outcome.problem);
        return;
      }
      try {
        options.onValue(outcome.value);
      } catch (error) {
        report({
          source: name,
          reason: 'listener',
          message: `a listener threw: ${String(error)}`,
          ...(error instanceof Error ? { error } : {}),
        });
      }
    },
    nextDelayMs: () => options.pollIntervalMs,
    // Not reached (the poll above catches everything), but never silent.
    onError: (error) =>
      report({
        source: name,
        reason: 'internal',
        message: `polling failed: ${String(error)}`,
        ...(error instanceof Error ? { error } : {}),
      }),
    errorDelayMs: options.pollIntervalMs,
  });
}

/** Maps a failed exchange to a problem with a stable reason. */
function problemFromError(source: string, error: unknown): SourceProblem {
  if (error instanceof ChronyTimeoutError) {
    return { source, reason: 'timeout', message: error.message, error };
  }
  if (error instanceof ChronyProtocolError) {
    return { source, reason: 'chrony-protocol', message: error.message, error };
  }
  if (error instanceof ChronoboundError) {
    return { source, reason: 'unavailable', message: error.message, error };
  }
  const wrapped = new SourceUnavailableError(source, String(error), { cause: error });
  return { source, reason: 'unavailable', message: wrapped.message, error: wrapped };
}
