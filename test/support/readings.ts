/** Readings built by hand for tests. */
import type { TimeReading } from '../../src/index.js';

/**
 * A reading of `estimate` ± `uncertaintyMs` with `status` (by default
 * synchronized); an infinite `uncertaintyMs` gives the unbounded reading of a
 * clock with no sample.
 *
 * @example
 * ```ts
 * centredReading(1_000, 2); // { estimate: 1000, earliest: 998, latest: 1002, uncertaintyMs: 2, status: 'synchronized' }
 * ```
 */
export function centredReading(
  estimate: number,
  uncertaintyMs: number,
  status: TimeReading['status'] = 'synchronized',
): TimeReading {
  return {
    estimate,
    earliest: estimate - uncertaintyMs,
    latest: estimate + uncertaintyMs,
    uncertaintyMs,
    status,
  };
}
