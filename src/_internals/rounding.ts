/**
 * Relative rounding error of an epoch-scale double (ms since 1970 carry about
 * 2⁻⁵² of relative error per operation), with room for a few operations. Bounds
 * that add or intersect such numbers pad by `|value| × EPOCH_ROUNDING` so that a
 * last-bit difference can never exclude the truth.
 * @internal
 */
export const EPOCH_ROUNDING: number = 2 ** -50;
