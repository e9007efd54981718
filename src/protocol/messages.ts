/**
 * The messages of the time-exchange protocol (version 1), shared by the HTTP and
 * message-channel sources and by the servers: a request carrying a nonce, and a
 * reply carrying the server's T2, T3 and its own ε, or a refusal. Pure data and
 * parsing; nothing here reads a clock or sets a timer.
 *
 * @module
 */
import { isTimeNonce } from './nonce.js';

/**
 * The `type` of a time request message.
 * @internal
 */
export const TIME_REQUEST_TYPE = 'chronobound.time-request';
/**
 * The `type` of a time reply (or refusal) message.
 * @internal
 */
export const TIME_REPLY_TYPE = 'chronobound.time-reply';
/**
 * Longest JSON text a client or server will look at; replies are 256 bytes.
 * @internal
 */
export const MAX_TIME_MESSAGE_CHARS = 1024;

/**
 * A client's time request on a message channel. Over HTTP the same nonce travels
 * in the query string instead (`GET /time?nonce=…`).
 *
 * @example
 * ```ts
 * answerTimeRequest(clock, { type: 'chronobound.time-request', v: 1, nonce: '00112233445566778899aabbccddeeff' });
 * //=> { type: 'chronobound.time-reply', v: 1, nonce: '00112233445566778899aabbccddeeff', t2: …, t3: …, errorMs: …, status: 'synchronized' }
 * answerTimeRequest(clock, { type: 'chat', text: 'hi' }); //=> undefined (not a time request: route it elsewhere)
 * ```
 */
export interface TimeRequest {
  /** Always `'chronobound.time-request'`, so apps can route it. */
  readonly type: 'chronobound.time-request';
  /** Protocol version, 1. */
  readonly v: 1;
  /** 32 lowercase hex digits (16 random bytes) the reply must echo. */
  readonly nonce: string;
}

/**
 * A server's answer: its receive (T2) and transmit (T3) times from its own
 * `TrueClock` estimate and that clock's uncertainty, so the client's bound
 * chains honestly onto the server's.
 *
 * @example
 * ```ts
 * const reply = answerTimeRequest(clock, { type: 'chronobound.time-request', v: 1, nonce: '00112233445566778899aabbccddeeff' });
 * if (reply !== undefined && 't2' in reply) {
 *   reply.t3 - reply.t2; // how long the server held the request (ms, µs resolution), e.g. 0.006
 *   reply.errorMs;       // the server clock's own ε, which the client's bound builds on
 * }
 * ```
 */
export interface TimeReply {
  /** Always `'chronobound.time-reply'`. */
  readonly type: 'chronobound.time-reply';
  /** Protocol version, 1. */
  readonly v: 1;
  /** The request's nonce, echoed. */
  readonly nonce: string;
  /** Server estimate of true time when the request arrived (epoch ms, µs resolution). */
  readonly t2: number;
  /** Server estimate of true time when the reply left (epoch ms, µs resolution). */
  readonly t3: number;
  /** The server clock's own ε at T2 and T3 (the larger), rounded up to the µs, plus 1 µs for the rounding of t2/t3. */
  readonly errorMs: number;
  /** The server clock's status; only trustworthy statuses are ever sent with times. */
  readonly status: 'synchronized' | 'free-running';
}

/**
 * A server's refusal: its clock cannot stand behind a bound right now, so it hands
 * none out. Over HTTP this is a 503 instead.
 *
 * @example
 * ```ts
 * const server = new TrueClock({ source: manualSource() }); // no sample yet
 * answerTimeRequest(server, { type: 'chronobound.time-request', v: 1, nonce: '00112233445566778899aabbccddeeff' });
 * //=> { type: 'chronobound.time-reply', v: 1, nonce: '00112233445566778899aabbccddeeff', status: 'unsynchronized' }
 * ```
 */
export interface TimeRefusal {
  /** Always `'chronobound.time-reply'`. */
  readonly type: 'chronobound.time-reply';
  /** Protocol version, 1. */
  readonly v: 1;
  /** The request's nonce, echoed. */
  readonly nonce: string;
  /** Why the server refused. */
  readonly status: 'unsynchronized' | 'disrupted';
}

/**
 * The request a client sends on a message channel.
 *
 * @param nonce - A fresh nonce (`newTimeNonce()`).
 * @returns The request message.
 *
 * @example
 * ```ts
 * timeRequest('00112233445566778899aabbccddeeff');
 * // { type: 'chronobound.time-request', v: 1, nonce: '00112233445566778899aabbccddeeff' }
 * ```
 * @internal
 */
export function timeRequest(nonce: string): TimeRequest {
  return { type: TIME_REQUEST_TYPE, v: 1, nonce };
}

/**
 * Parses JSON text of at most {@link MAX_TIME_MESSAGE_CHARS}; `undefined` for
 * anything longer or not JSON.
 *
 * @param text - A message as received.
 * @returns The parsed value, or `undefined`.
 *
 * @example
 * ```ts
 * parseTimeMessageText('{"v":1}'); // { v: 1 }
 * parseTimeMessageText('hello'); // undefined
 * ```
 * @internal
 */
export function parseTimeMessageText(text: string): unknown {
  if (text.length > MAX_TIME_MESSAGE_CHARS) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The nonce of a well-formed version 1 time request (an object or its JSON
 * text), or `undefined` for anything else, which the app routes elsewhere.
 *
 * @param message - An incoming message.
 * @returns The request's validated nonce, or `undefined`.
 *
 * @example
 * ```ts
 * timeRequestNonce('{"type":"chronobound.time-request","v":1,"nonce":"00112233445566778899aabbccddeeff"}');
 * // '00112233445566778899aabbccddeeff'
 * timeRequestNonce({ type: 'chat', text: 'hi' }); // undefined
 * ```
 * @internal
 */
export function timeRequestNonce(message: unknown): string | undefined {
  const request = typeof message === 'string' ? parseTimeMessageText(message) : message;
  if (
    typeof request !== 'object' ||
    request === null ||
    (request as { type?: unknown }).type !== TIME_REQUEST_TYPE ||
    (request as { v?: unknown }).v !== 1
  ) {
    return undefined;
  }
  const nonce = (request as { nonce?: unknown }).nonce;
  return isTimeNonce(nonce) ? nonce : undefined;
}

/**
 * A message that claims to be a time reply (its `type` says so), as an object
 * whose fields are still unchecked; `undefined` for anything else. Text is parsed
 * only when it can be a reply, so an app's own traffic costs little.
 *
 * @param message - An incoming message: an object or JSON text.
 * @returns The candidate reply, or `undefined`.
 *
 * @example
 * ```ts
 * timeReplyCandidate('{"type":"chronobound.time-reply","nonce":"x"}'); // { type: 'chronobound.time-reply', nonce: 'x' }
 * timeReplyCandidate('{"type":"chat"}'); // undefined
 * ```
 * @internal
 */
export function timeReplyCandidate(
  message: unknown,
): { readonly type: string; readonly nonce?: unknown } | undefined {
  const reply =
    typeof message === 'string'
      ? message.includes(TIME_REPLY_TYPE)
        ? parseTimeMessageText(message)
        : undefined
      : message;
  if (
    typeof reply !== 'object' ||
    reply === null ||
    (reply as { type?: unknown }).type !== TIME_REPLY_TYPE
  ) {
    return undefined;
  }
  return reply as { readonly type: string; readonly nonce?: unknown };
}
