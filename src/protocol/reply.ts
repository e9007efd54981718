/**
 * Building and checking time replies. The server composes a reply from its
 * clock's readings at receive (T2) and transmit (T3); the client checks every
 * field of what comes back before any of it reaches the bound math.
 *
 * @module
 */
import { TimeExchangeError } from '../errors.js';
import type { TimeReading } from '../clock/types.js';
import {
  MAX_TIME_MESSAGE_CHARS,
  TIME_REPLY_TYPE,
  type TimeRefusal,
  type TimeReply,
} from './messages.js';

/** Whether a reading can be handed out: a trustworthy status and a finite bound. */
function trustworthy(reading: TimeReading): boolean {
  return (
    (reading.status === 'synchronized' || reading.status === 'free-running') &&
    Number.isFinite(reading.uncertaintyMs) &&
    Number.isFinite(reading.estimate)
  );
}

/**
 * Builds the reply from the readings at T2 and T3, or a refusal when either
 * cannot be trusted (or `trusted` is `false`: the clock's strict check refused).
 * Times are rounded to the µs and ε is rounded up, with 1 µs added for the
 * rounding of t2 and t3, so the reply's bound is never tighter than the clock's.
 *
 * @param nonce - The request's validated nonce.
 * @param atReceive - The clock's reading when the request arrived (T2).
 * @param atTransmit - The clock's reading just before the reply leaves (T3).
 * @param trusted - `false` when the clock's strict check refused; default `true`.
 * @returns A reply with times, or a refusal saying `'disrupted'` or `'unsynchronized'`.
 *
 * @example
 * ```ts
 * const r = { estimate: 1767225600000.1234, earliest: 1767225600000.1234 - 2, latest: 1767225600000.1234 + 2, uncertaintyMs: 2, status: 'synchronized' } as const;
 * composeTimeReply('00112233445566778899aabbccddeeff', r, r);
 * // { type: 'chronobound.time-reply', v: 1, nonce: '0011…eeff', t2: 1767225600000.123, t3: 1767225600000.123, errorMs: 2.001, status: 'synchronized' }
 * ```
 * @internal
 */
export function composeTimeReply(
  nonce: string,
  atReceive: TimeReading,
  atTransmit: TimeReading,
  trusted: boolean = true,
): TimeReply | TimeRefusal {
  if (!trusted || !trustworthy(atReceive) || !trustworthy(atTransmit)) {
    const bad = [atTransmit.status, atReceive.status].find(
      (s): s is 'disrupted' => s === 'disrupted',
    );
    return { type: TIME_REPLY_TYPE, v: 1, nonce, status: bad ?? 'unsynchronized' };
  }
  const t2 = Math.round(atReceive.estimate * 1000) / 1000;
  const t3 = Math.max(t2, Math.round(atTransmit.estimate * 1000) / 1000);
  const epsilon = Math.max(atReceive.uncertaintyMs, atTransmit.uncertaintyMs);
  const errorMs = Math.ceil((epsilon + 0.001) * 1000) / 1000;
  return {
    type: TIME_REPLY_TYPE,
    v: 1,
    nonce,
    t2,
    t3,
    errorMs,
    status: atTransmit.status as TimeReply['status'],
  };
}

/**
 * Validates a reply (object or JSON text) against the nonce we sent, and returns
 * a clean copy holding only the protocol's fields.
 *
 * @param raw - The reply as received.
 * @param nonce - The nonce the request carried.
 * @param endpoint - What was asked, for the error (a URL or `message channel <name>`).
 * @returns The checked reply.
 * @throws {@link TimeExchangeError} `'nonce-mismatch'` when the nonce is not ours,
 *   `'status'` when the server refused, `'body'` for anything malformed.
 *
 * @example
 * ```ts
 * parseTimeReply(text, nonce, 'https://example.com/time'); // { type: 'chronobound.time-reply', v: 1, nonce, t2, t3, errorMs, status }
 * ```
 * @internal
 */
export function parseTimeReply(raw: unknown, nonce: string, endpoint: string): TimeReply {
  let reply = raw;
  if (typeof raw === 'string') {
    if (raw.length > MAX_TIME_MESSAGE_CHARS) {
      throw new TimeExchangeError(
        endpoint,
        'body',
        `reply longer than ${MAX_TIME_MESSAGE_CHARS} characters`,
      );
    }
    try {
      reply = JSON.parse(raw) as unknown;
    } catch {
      throw new TimeExchangeError(endpoint, 'body', 'reply is not JSON');
    }
  }
  if (typeof reply !== 'object' || reply === null) {
    throw new TimeExchangeError(endpoint, 'body', 'reply is not a JSON object');
  }
  const r = reply as Record<string, unknown>;
  if (r['type'] !== TIME_REPLY_TYPE || r['v'] !== 1) {
    throw new TimeExchangeError(endpoint, 'body', `reply is not a version 1 ${TIME_REPLY_TYPE}`);
  }
  if (typeof r['nonce'] !== 'string') {
    throw new TimeExchangeError(endpoint, 'body', 'reply has no nonce');
  }
  if (r['nonce'] !== nonce) {
    throw new TimeExchangeError(
      endpoint,
      'nonce-mismatch',
      'reply does not echo the nonce we sent',
    );
  }
  const status = r['status'];
  if (status === 'unsynchronized' || status === 'disrupted') {
    throw new TimeExchangeError(endpoint, 'status', `the server's clock is ${status}`);
  }
  if (status !== 'synchronized' && status !== 'free-running') {
    throw new TimeExchangeError(endpoint, 'body', 'reply has an unknown status');
  }
  const { t2, t3, errorMs } = r;
  if (
    typeof t2 !== 'number' ||
    typeof t3 !== 'number' ||
    typeof errorMs !== 'number' ||
    !Number.isFinite(t2) ||
    !Number.isFinite(t3) ||
    !Number.isFinite(errorMs) ||
    errorMs < 0
  ) {
    throw new TimeExchangeError(endpoint, 'body', 'reply needs finite t2, t3 and errorMs ≥ 0');
  }
  if (t3 < t2) {
    throw new TimeExchangeError(endpoint, 'body', 'reply has t3 before t2');
  }
  return { type: TIME_REPLY_TYPE, v: 1, nonce, t2, t3, errorMs, status };
}
