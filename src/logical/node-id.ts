/**
 * Node ids: the names that break ties between logical timestamps and key the
 * entries of a vector clock.
 *
 * A node id is 1–64 characters of printable ASCII (`!` through `~`) other than
 * the three separators the string encodings use: `@` (between a fixed-width
 * timestamp and its node), `,` and `=` (between vector clock entries). Keeping
 * ids to printable ASCII makes the byte encoding one byte per character, so
 * byte order, string order and {@link compareHlc} order all agree.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * Longest node id accepted (characters).
 *
 * @example
 * ```ts
 * 'n'.repeat(MAX_NODE_ID_LENGTH); // the longest valid id
 * ```
 */
export const MAX_NODE_ID_LENGTH = 64;

/**
 * Characters the string encodings use as separators; node ids never contain them.
 *
 * @example
 * ```ts
 * NODE_ID_SEPARATORS.includes('@'); // true
 * ```
 */
export const NODE_ID_SEPARATORS: readonly string[] = ['@', ',', '='];

const AT = 0x40;
const COMMA = 0x2c;
const EQUALS = 0x3d;

/**
 * Whether `value` is a valid node id: a string of 1–64 printable ASCII
 * characters (`!`–`~`) containing none of `@`, `,` and `=`.
 *
 * @example
 * ```ts
 * isValidNodeId('us-east-1/db-3:5432'); // true
 * isValidNodeId('a@b');                 // false: '@' separates the node in formatHlc
 * isValidNodeId('');                    // false
 * ```
 */
export function isValidNodeId(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const n = value.length;
  if (n === 0 || n > MAX_NODE_ID_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === AT || c === COMMA || c === EQUALS) return false;
  }
  return true;
}

/**
 * Explains why `value` is not a valid node id, or returns `undefined` if it is.
 *
 * @example
 * ```ts
 * nodeIdProblem('a b'); // 'character " " at index 1 is not allowed (...)'
 * ```
 */
export function nodeIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `expected a string, got ${typeof value}`;
  if (value.length === 0) return 'it is empty';
  if (value.length > MAX_NODE_ID_LENGTH)
    return `it has ${value.length} characters, more than ${MAX_NODE_ID_LENGTH}`;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === AT || c === COMMA || c === EQUALS)
      return `character ${JSON.stringify(value[i])} at index ${i} is a separator of the string encodings`;
    if (c <= 0x20 || c >= 0x7f)
      return `character ${JSON.stringify(value[i])} at index ${i} is not printable ASCII`;
  }
  return undefined;
}

/**
 * Returns `value` if it is a valid node id, else throws.
 *
 * @param value - the candidate id.
 * @param argument - the name to report in the error (default `'node'`).
 * @throws {@link InvalidArgumentError} naming `argument` when `value` is not a valid node id.
 * @example
 * ```ts
 * const node = validateNodeId(process.env.NODE_ID, 'NODE_ID');
 * ```
 */
export function validateNodeId(value: unknown, argument: string = 'node'): string {
  if (isValidNodeId(value)) return value;
  throw new InvalidArgumentError(
    argument,
    value,
    `a node id of 1–${MAX_NODE_ID_LENGTH} printable ASCII characters without '@', ',' or '=' (${nodeIdProblem(value) ?? 'invalid'})`,
  );
}
