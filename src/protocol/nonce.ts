/**
 * The request nonce of the time-exchange protocol: 16 random bytes as 32
 * lowercase hex digits. The reply must echo it, which ties a reply to its request
 * and keeps a cached, stale or forged reply from being taken for a fresh one.
 *
 * @module
 */

/** A nonce is 16 random bytes as 32 lowercase hex digits. */
const NONCE_PATTERN = /^[0-9a-f]{32}$/;

/**
 * Generates a request nonce: 16 bytes from `crypto.getRandomValues`, as hex.
 *
 * @returns 32 lowercase hex digits.
 *
 * @example
 * ```ts
 * newTimeNonce(); // e.g. '3f0c9a1b7e2d4c6f8a0b1c2d3e4f5a6b'
 * ```
 * @internal
 */
export function newTimeNonce(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/**
 * Whether `value` is a well-formed nonce (32 lowercase hex digits).
 *
 * @param value - Anything from the wire.
 * @returns `true` only for a string of exactly 32 lowercase hex digits.
 *
 * @example
 * ```ts
 * isTimeNonce('0123456789abcdef0123456789abcdef'); // true
 * isTimeNonce('0123456789ABCDEF0123456789ABCDEF'); // false
 * ```
 * @internal
 */
export function isTimeNonce(value: unknown): value is string {
  return typeof value === 'string' && NONCE_PATTERN.test(value);
}
