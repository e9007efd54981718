/**
 * The server side of the time exchange, whatever carries it: read the clock when
 * a request arrives (T2), run the clock's strict check, read it again (T3) and
 * answer with both and the clock's own ε, or refuse when the clock cannot stand
 * behind a bound. `answerTimeRequest` serves message channels; the HTTP servers
 * (`createTimeHandler`, `timeEndpoint`) wrap the same answer in HTTP.
 *
 * @module
 */
import type { TimeReading } from '../clock/types.js';
import { timeRequestNonce, type TimeRefusal, type TimeReply } from '../protocol/messages.js';
import { composeTimeReply } from '../protocol/reply.js';

/**
 * The clock a time server answers from: a `TrueClock`, or anything with its
 * `now()`. When `after` is present it is called first (TrueClock's runs the
 * watchdog), so a suspend the periodic check has not seen yet still refuses.
 *
 * @example
 * ```ts
 * // A TrueClock is one; so is any { now() }, here a fixed reading of 2026-01-01T00:00:00Z ± 0.5 ms:
 * const reading = {
 *   earliest: 1767225599999.5, latest: 1767225600000.5, estimate: 1767225600000, uncertaintyMs: 0.5,
 *   status: 'synchronized',
 * } as const;
 * answerTimeRequest({ now: () => reading }, '{"type":"chronobound.time-request","v":1,"nonce":"00112233445566778899aabbccddeeff"}');
 * //=> { type: 'chronobound.time-reply', v: 1, nonce: '00112233445566778899aabbccddeeff',
 * //     t2: 1767225600000, t3: 1767225600000, errorMs: 0.501, status: 'synchronized' }
 * ```
 */
export interface TimeServerClock {
  /** An honest reading. */
  now(): TimeReading;
  /** Strict check that throws when the clock cannot be trusted. */
  after?(t: number): boolean;
}

/**
 * Runs the clock's strict check when it has one.
 *
 * @param clock - The server's clock.
 * @returns `false` when the check throws (the clock cannot stand behind its bound).
 *
 * @example
 * ```ts
 * clockStandsBehindBound({ now: () => reading }); // true: no strict check to fail
 * ```
 * @internal
 */
export function clockStandsBehindBound(clock: TimeServerClock): boolean {
  if (typeof clock.after !== 'function') return true;
  try {
    clock.after(Number.NEGATIVE_INFINITY);
    return true;
  } catch {
    return false;
  }
}

/**
 * The answer to a request with a validated nonce that arrived when the clock
 * read `atReceive`: the strict check, then T3, then the reply or a refusal.
 *
 * @param clock - The server's clock.
 * @param nonce - The request's validated nonce.
 * @param atReceive - The clock's reading taken as the request arrived (T2).
 * @returns The reply, or a refusal when the clock is unsynchronized or disrupted.
 *
 * @example
 * ```ts
 * const atReceive = clock.now();
 * answerNonce(clock, nonce, atReceive); // { type: 'chronobound.time-reply', v: 1, nonce, t2, t3, errorMs, status }
 * ```
 * @internal
 */
export function answerNonce(
  clock: TimeServerClock,
  nonce: string,
  atReceive: TimeReading,
): TimeReply | TimeRefusal {
  const trusted = clockStandsBehindBound(clock);
  return composeTimeReply(nonce, atReceive, clock.now(), trusted);
}

/**
 * Answers a time request that arrived on a message channel (WebSocket, worker
 * port, …). Pass every incoming message; anything that is not a well-formed time
 * request yields `undefined`, so the app routes it elsewhere. The reply never
 * contains more of the input than the validated 32-digit nonce.
 *
 * @param clock - The server's clock (a `TrueClock`).
 * @param message - An incoming message: an object or a JSON string.
 * @returns The reply to send back (serialize it as the channel needs): times with
 *   the clock's own ε, or a refusal when the clock is unsynchronized or disrupted;
 *   `undefined` when the message is not a time request. It does not throw.
 *
 * @example
 * ```ts
 * ws.on('message', (data) => {
 *   const reply = answerTimeRequest(clock, String(data));
 *   // { type: 'chronobound.time-reply', v: 1, nonce, t2, t3, errorMs, status: 'synchronized' }
 *   if (reply) ws.send(JSON.stringify(reply));
 *   else handleAppMessage(data);
 * });
 * ```
 */
export function answerTimeRequest(
  clock: TimeServerClock,
  message: unknown,
): TimeReply | TimeRefusal | undefined {
  // T2 before parsing: the parse only lengthens the server's hold time.
  const atReceive = clock.now();
  const nonce = timeRequestNonce(message);
  return nonce === undefined ? undefined : answerNonce(clock, nonce, atReceive);
}
