/**
 * Subscribing to a time source in a test: what the subscription delivered
 * (samples and problems, in order) and the function that stops it.
 */
import type {
  MonotonicSource,
  SourceContext,
  SourceProblem,
  SyncSample,
  TimeSource,
} from '../../src/index.js';

export interface CollectedSamples {
  readonly samples: SyncSample[];
  readonly problems: SourceProblem[];
  readonly stop: () => void;
}

/**
 * Subscribes to `source` on the `monotonic` timescale (with the subscriber's
 * `context`, as a `TrueClock` would give it) and records what it delivers.
 *
 * @example
 * ```ts
 * const { samples, problems, stop } = collectSamples(source, sim.monotonic);
 * await sim.advanceAsync(100);
 * stop();
 * ```
 */
export function collectSamples(
  source: TimeSource,
  monotonic: MonotonicSource,
  context?: SourceContext,
): CollectedSamples {
  const samples: SyncSample[] = [];
  const problems: SourceProblem[] = [];
  const stop = source.subscribe(
    (s) => samples.push(s),
    monotonic,
    (p) => problems.push(p),
    context,
  );
  return { samples, problems, stop };
}
