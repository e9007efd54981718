/**
 * How the time exchange travels over HTTP: `GET <path>?nonce=<32 hex digits>`
 * with no body, answered by the reply's JSON padded with spaces to exactly
 * {@link TIME_REPLY_BYTES} bytes, so a reply's length says nothing and a client
 * can cap what it reads.
 *
 * @module
 */
import { isTimeNonce } from './nonce.js';
import type { TimeReply } from './messages.js';

/**
 * Every 200 reply is exactly this many bytes (JSON padded with spaces).
 * @internal
 */
export const TIME_REPLY_BYTES = 256;

/**
 * The URL a client asks: the endpoint with `?nonce=<nonce>`, any fragment dropped.
 *
 * @param endpoint - The time endpoint.
 * @param nonce - A fresh nonce.
 * @returns The request URL.
 *
 * @example
 * ```ts
 * timeRequestUrl(new URL('https://example.com/time'), '00112233445566778899aabbccddeeff');
 * // 'https://example.com/time?nonce=00112233445566778899aabbccddeeff'
 * ```
 * @internal
 */
export function timeRequestUrl(endpoint: URL, nonce: string): string {
  const url = new URL(endpoint.href);
  url.hash = '';
  url.searchParams.set('nonce', nonce);
  return url.href;
}

/**
 * The nonce of a request's query string when it is exactly `?nonce=<32 lowercase
 * hex digits>`; `undefined` for anything else (a missing, malformed, encoded or
 * extra parameter).
 *
 * @param search - The query string including its `?` (empty when there is none).
 * @returns The nonce, or `undefined`.
 *
 * @example
 * ```ts
 * nonceFromTimeQuery('?nonce=00112233445566778899aabbccddeeff'); // '00112233445566778899aabbccddeeff'
 * nonceFromTimeQuery('?nonce=00112233445566778899aabbccddeeff&x=1'); // undefined
 * ```
 * @internal
 */
export function nonceFromTimeQuery(search: string): string | undefined {
  const prefix = '?nonce=';
  if (!search.startsWith(prefix)) return undefined;
  const nonce = search.slice(prefix.length);
  return isTimeNonce(nonce) ? nonce : undefined;
}

/**
 * The body of a 200 reply: its JSON padded with spaces to {@link TIME_REPLY_BYTES}.
 *
 * @param reply - A reply with times (it always fits: its fields are bounded).
 * @returns The body text, all ASCII.
 *
 * @example
 * ```ts
 * timeReplyBody(reply).length; // 256
 * ```
 * @internal
 */
export function timeReplyBody(reply: TimeReply): string {
  const json = JSON.stringify(reply);
  return json.length <= TIME_REPLY_BYTES ? json.padEnd(TIME_REPLY_BYTES, ' ') : json;
}
