/**
 * The ranges of a hybrid logical timestamp's fields, and the one check of each
 * that the clock, the codecs and the database helpers share.
 *
 * @module
 */

/**
 * Largest counter value (16 bits).
 *
 * @example
 * ```ts
 * if (hlc.peek()?.counter === HLC_MAX_COUNTER) console.warn('counter exhausted for this millisecond');
 * ```
 */
export const HLC_MAX_COUNTER = 0xffff;

/**
 * Largest `wallMs` (48 bits, the year 10889).
 *
 * @example
 * ```ts
 * ts.wallMs <= HLC_MAX_WALL_MS; // always true for a valid timestamp
 * ```
 */
export const HLC_MAX_WALL_MS: number = 2 ** 48 - 1;

/**
 * Largest remote `wallMs` a {@link HybridLogicalClock} adopts: 2^48 − 2^40 (the
 * year 10854), whatever `maxOffsetMs` (even `Infinity`). A clock that adopted a
 * remote at the very end of the 48-bit range could issue only the 65 535
 * timestamps left in its counter, then nothing ever again, and could not store a
 * persisted bound above it. Below this limit 2^40 ms (about 35 years) of wall
 * time remain to borrow from, which no clock exhausts.
 *
 * @example
 * ```ts
 * if (remote.wallMs > HLC_MAX_REMOTE_WALL_MS) quarantine(remote); // receive() would refuse it
 * ```
 */
export const HLC_MAX_REMOTE_WALL_MS: number = 2 ** 48 - 2 ** 40;

/**
 * Whether `wallMs` is a valid timestamp field: an integer in [0, 2^48).
 * `NaN`, `±Infinity` and fractions are not.
 *
 * @example
 * ```ts
 * isHlcWallMs(1_700_000_000_000); // true
 * isHlcWallMs(2 ** 48);           // false
 * ```
 * @internal
 */
export function isHlcWallMs(wallMs: unknown): wallMs is number {
  return (
    typeof wallMs === 'number' &&
    wallMs >= 0 &&
    wallMs <= HLC_MAX_WALL_MS &&
    Math.floor(wallMs) === wallMs
  );
}

/**
 * Whether `counter` is a valid timestamp field: an integer in [0, 65535].
 *
 * @example
 * ```ts
 * isHlcCounter(42);    // true
 * isHlcCounter(65536); // false
 * ```
 * @internal
 */
export function isHlcCounter(counter: unknown): counter is number {
  return typeof counter === 'number' && (counter & HLC_MAX_COUNTER) === counter;
}
