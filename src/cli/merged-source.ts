/**
 * `mergedSource`: several time sources as one, for a clock fed by NTP servers
 * and chronyd at once (`chronobound watch --server … --chrony …`).
 *
 * @module
 */
import type { TimeSource } from '../sources/types.js';

/** The interval a source that does not say is assumed to poll at (ms), as `TrueClock` assumes. */
const DEFAULT_POLL_MS = 64_000;

/**
 * Several sources as one: every sample and problem of each goes to the
 * subscriber (a `TrueClock`, which weighs each sample against its current
 * bound), with the clock's context handed on to each. Any one source keeps the
 * clock fed, so the healthy gap between samples is the shortest source's; a
 * disruption invalidates all of them, so none can end it with older evidence.
 * `close()` closes every source.
 *
 * @param sources - The sources, at least one.
 * @returns One source delivering what all of them deliver.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/RangeError | RangeError} When no source is given.
 *
 * @example
 * ```ts
 * const source = mergedSource(ntpSource({ servers: ['127.0.0.1:11123'] }), chronySource());
 * const clock = new TrueClock({ source }); // samples from both
 * ```
 * @internal
 */
export function mergedSource(...sources: readonly TimeSource[]): TimeSource {
  if (sources.length === 0) throw new RangeError('mergedSource needs at least one source');
  const shortest = (of: (source: TimeSource) => number): number => Math.min(...sources.map(of));
  return {
    // Getters: a source's intervals change as it adapts its polling.
    get pollIntervalMs() {
      return shortest((s) => s.pollIntervalMs ?? DEFAULT_POLL_MS);
    },
    get maxSampleGapMs() {
      return shortest((s) => s.maxSampleGapMs ?? s.pollIntervalMs ?? DEFAULT_POLL_MS);
    },
    invalidate(monotonicAt) {
      for (const s of sources) s.invalidate?.(monotonicAt);
    },
    subscribe(onSample, monotonic, onProblem, context) {
      const stops = sources.map((s) => s.subscribe(onSample, monotonic, onProblem, context));
      return () => {
        for (const stop of stops) stop();
      };
    },
    async close() {
      await Promise.all(sources.map((s) => s.close()));
    },
  };
}
