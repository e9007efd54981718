import { InvalidArgumentError } from '../errors.js';

/**
 * Throws unless `value` is a finite number within [min, max] (never ±Infinity,
 * whatever the bounds).
 * @internal
 */
export function requireNumber(
  name: string,
  value: number,
  min: number = -Infinity,
  max: number = Infinity,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidArgumentError(name, value, `a finite number in [${min}, ${max}]`);
  }
  return value;
}

/**
 * Throws unless `value` is a finite number ≥ 0 (or `Infinity` when allowed).
 * @internal
 */
export function requireNonNegative(name: string, value: number, allowInfinity = false): number {
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    throw new InvalidArgumentError(
      name,
      value,
      allowInfinity ? 'a number ≥ 0' : 'a finite number ≥ 0',
    );
  }
  return value;
}

/**
 * Throws unless `value` is a finite number > 0.
 * @internal
 */
export function requirePositive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number > 0');
  }
  return value;
}

/**
 * Throws unless `value` is an integer within [min, max].
 * @internal
 */
export function requireInteger(
  name: string,
  value: number,
  min: number,
  max: number = Infinity,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
    throw new InvalidArgumentError(name, value, range);
  }
  return value;
}
