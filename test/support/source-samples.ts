/**
 * Subscribing to a time source in a test: what the subscription delivered
 * (samples and problems, in order) and the function that stops it.
 */
import { expect, onTestFinished } from 'vitest';
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

/**
 * {@link collectSamples}, stopped when the running test finishes.
 *
 * @example
 * ```ts
 * const { samples, problems } = collectUntilTestEnds(source, sim.monotonic);
 * await sim.advanceAsync(100);
 * ```
 */
export function collectUntilTestEnds(...args: Parameters<typeof collectSamples>): CollectedSamples {
  const collected = collectSamples(...args);
  onTestFinished(collected.stop);
  return collected;
}

/**
 * Asserts that a subscription delivered no sample, only problems with these
 * `reasons` in this order (none at all for `[]`), and returns the problems.
 *
 * @example
 * ```ts
 * const [problem] = expectOnlyProblems(samples, problems, ['timeout']);
 * ```
 */
export function expectOnlyProblems(
  samples: readonly SyncSample[],
  problems: readonly SourceProblem[],
  reasons: readonly string[],
): readonly SourceProblem[] {
  expect(samples).toEqual([]);
  expect(problems.map((p) => p.reason)).toEqual(reasons);
  return problems;
}
