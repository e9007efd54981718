/**
 * How error messages render durations and untrusted values: bounded in length
 * and in cost, whatever the input.
 *
 * @module
 * @internal
 */

/**
 * Formats a duration for an error message.
 * @internal
 */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  return `${Number(ms.toPrecision(6))} ms`;
}

/**
 * `: <reason>` for an abort or failure message (an abort reason, the cause of a
 * failed etcd keep-alive), or nothing when there is no reason.
 * @internal
 */
export function describeReason(reason: unknown): string {
  if (reason === undefined) return '';
  if (reason instanceof Error) return `: ${reason.message}`;
  return `: ${describeValue(reason)}`;
}

/** Longest rendering of an untrusted value in a message. */
const DESCRIBE_LIMIT = 200;
/** Longest prefix of a decoder's input quoted in an {@link HlcParseError}. */
const INPUT_PREFIX = 64;
/** Bigints at or beyond ±2^128 are shown by their leading hex digits and bit length. */
const BIG_BIGINT = 1n << 128n;

/**
 * Renders an untrusted input for a message, quoted and truncated to 200
 * characters. Its cost does not grow with the input: a long string is cut before
 * it is quoted, a huge bigint is shown by its leading digits, and an object is
 * serialized only until the rendering is long enough.
 * @internal
 */
export function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string')
    text = JSON.stringify(value.length > DESCRIBE_LIMIT ? value.slice(0, DESCRIBE_LIMIT) : value);
  else if (typeof value === 'bigint') text = describeBigInt(value);
  else if (value instanceof Uint8Array)
    text = `bytes[${value.length}] ${Array.from(value.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('')}`;
  else {
    try {
      text = JSON.stringify(value, boundedReplacer(DESCRIBE_LIMIT)) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > DESCRIBE_LIMIT ? `${text.slice(0, DESCRIBE_LIMIT - 3)}...` : text;
}

/**
 * Renders a decoder's input for an {@link HlcParseError}: a string of up to 64
 * characters in full, a longer one as its first 64 characters, `…` and its length.
 * Never reads past the prefix.
 * @internal
 */
export function describeInput(value: unknown): string {
  if (typeof value === 'string') {
    if (value.length <= INPUT_PREFIX) return JSON.stringify(value);
    return `${JSON.stringify(value.slice(0, INPUT_PREFIX))}… (${value.length} characters)`;
  }
  if (typeof value === 'bigint' || value instanceof Uint8Array) return describeValue(value);
  const text = describeValue(value);
  return text.length > INPUT_PREFIX ? `${text.slice(0, INPUT_PREFIX)}…` : text;
}

/** `123n`, or for a huge bigint its first 16 hex digits and its bit length. */
function describeBigInt(value: bigint): string {
  if (value < BIG_BIGINT && value > -BIG_BIGINT) return `${value}n`;
  const sign = value < 0n ? '-' : '';
  const hex = (value < 0n ? -value : value).toString(16); // linear time, unlike base 10
  const bits = (hex.length - 1) * 4 + parseInt(hex[0] as string, 16).toString(2).length;
  return `${sign}0x${hex.slice(0, 16)}…n (${bits} bits)`;
}

/**
 * A `JSON.stringify` replacer that keeps the work proportional to `limit`: long
 * strings and arrays are cut, and once about `limit` characters have been
 * produced, further values are dropped. Up to `limit` characters the result is
 * that of plain `JSON.stringify`, except that bigints are rendered (as `"5n"`)
 * instead of making it throw.
 */
function boundedReplacer(limit: number): (this: unknown, key: string, value: unknown) => unknown {
  let budget = limit; // a lower bound on what is still to be produced before the limit
  return function (key, value) {
    if (budget < 0) return undefined;
    // Every property produces at least its key; every array element at least one character.
    budget -= Array.isArray(this) ? 1 : key.length;
    if (typeof value === 'string') {
      budget -= Math.min(value.length, limit);
      return value.length > limit ? value.slice(0, limit) : value;
    }
    if (typeof value === 'bigint') {
      // JSON has no bigints; render them as the message does.
      const text = describeBigInt(value);
      budget -= text.length;
      return text;
    }
    if (Array.isArray(value) && value.length > limit) return (value as unknown[]).slice(0, limit);
    return value;
  };
}

/**
 * The message of a failed request, in the one shape every error module uses:
 * `<subject>: <what> (<detail>).`, then the advice if any — e.g.
 * `Rejected reply from 10.0.0.1:123: wrong-mode (mode 3).`.
 * @internal
 */
export function failureMessage(
  subject: string,
  what: string,
  detail: string,
  advice?: string,
): string {
  return `${subject}: ${what} (${detail}).${advice === undefined ? '' : ` ${advice}`}`;
}
