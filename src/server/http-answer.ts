/**
 * The time exchange over HTTP, as a server answers it: which requests are
 * refused with which status, and the 256-byte reply otherwise. Independent of the
 * HTTP stack: `createTimeHandler` (Fetch API) and `timeEndpoint` (`node:http`)
 * each turn their request into a {@link TimeHttpRequest} and write the
 * {@link TimeHttpAnswer} back, so both speak exactly the same protocol.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { TimeReading } from '../clock/types.js';
import { nonceFromTimeQuery, timeReplyBody } from '../protocol/http.js';
import { answerNonce, type TimeServerClock } from './answer.js';

const PLAIN = 'text/plain; charset=utf-8';
/** An absolute path of URL-safe characters, without query or fragment. */
const PATH_PATTERN = /^\/[!$&'()*+,\-./0-9:;=@A-Z_a-z~]{0,255}$/;
/** A header value that cannot smuggle a line break: visible ASCII. */
const ORIGIN_PATTERN = /^[\x21-\x7e]{1,256}$/;

/**
 * Options of `createTimeHandler` and `timeEndpoint`.
 *
 * @example
 * ```ts
 * const handler = createTimeHandler(clock, { path: '/api/time', allowOrigin: 'https://app.example.com' });
 * const nonce = '00112233445566778899aabbccddeeff';
 * const res = await handler(new Request(`https://example.com/api/time?nonce=${nonce}`));
 * res.headers.get('access-control-allow-origin'); //=> 'https://app.example.com'
 * (await handler(new Request(`https://example.com/time?nonce=${nonce}`))).status; //=> 404 (another path)
 * ```
 */
export interface TimeHandlerOptions {
  /**
   * The path it answers on. Compared with the request's path, so under a router that strips its
   * mount point give the path the handler sees.
   *
   * @defaultValue `'/time'`
   */
  readonly path?: string;
  /**
   * Largest request body tolerated (and ignored), in bytes. A longer or chunked body gets 413.
   *
   * @defaultValue `0`
   */
  readonly maxBodyBytes?: number;
  /** Sent as `Access-Control-Allow-Origin` on replies, for pages on another origin. */
  readonly allowOrigin?: string;
}

/**
 * The validated options, with the headers every answer carries.
 * @internal
 */
export interface TimeHttpSettings {
  readonly path: string;
  readonly maxBodyBytes: number;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * What a server needs to know of a request to answer it.
 * @internal
 */
export interface TimeHttpRequest {
  /** The request method, as received. */
  readonly method: string;
  /** The request's path, without query. */
  readonly path: string;
  /** The query string with its `?`, or `''` when there is none. */
  readonly search: string;
  /** The `Content-Length` header, when there is one. */
  readonly contentLength: string | undefined;
  /** Whether the request has a `Transfer-Encoding` header (a chunked body). */
  readonly chunked: boolean;
}

/**
 * An answer to write back. `Content-Length` is left to the HTTP stack.
 * @internal
 */
export interface TimeHttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** ASCII text, so its length is its byte count. */
  readonly body: string;
  /** The body was refused unread: a connection-oriented server should close the connection. */
  readonly closeConnection: boolean;
}

/**
 * Validates the clock and the options of an HTTP time server.
 *
 * @param clock - The server's clock.
 * @param options - Path, body limit and CORS origin.
 * @returns The settings {@link answerTimeHttpRequest} uses.
 * @throws {@link InvalidArgumentError} When `clock` has no `now()`, or `path`,
 *   `maxBodyBytes` or `allowOrigin` is malformed.
 *
 * @example
 * ```ts
 * resolveTimeHttpOptions(clock, { path: '/api/time' }).path; // '/api/time'
 * ```
 * @internal
 */
export function resolveTimeHttpOptions(
  clock: TimeServerClock,
  options: TimeHandlerOptions,
): TimeHttpSettings {
  if (typeof clock?.now !== 'function') {
    throw new InvalidArgumentError('clock', clock, 'a TrueClock (something with now())');
  }
  const path = options?.path ?? '/time';
  if (typeof path !== 'string' || !PATH_PATTERN.test(path)) {
    throw new InvalidArgumentError('path', path, 'an absolute URL path without query or fragment');
  }
  const maxBodyBytes = options?.maxBodyBytes ?? 0;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 0) {
    throw new InvalidArgumentError('maxBodyBytes', maxBodyBytes, 'an integer ≥ 0');
  }
  const allowOrigin = options?.allowOrigin;
  if (
    allowOrigin !== undefined &&
    !(typeof allowOrigin === 'string' && ORIGIN_PATTERN.test(allowOrigin))
  ) {
    throw new InvalidArgumentError('allowOrigin', allowOrigin, 'an origin or "*"');
  }
  return {
    path,
    maxBodyBytes,
    headers: {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      ...(allowOrigin === undefined ? {} : { 'Access-Control-Allow-Origin': allowOrigin }),
    },
  };
}

/**
 * Answers one HTTP time request. Checks in this order, answering the first that
 * fails without echoing any of the request: the path (404), the method (405,
 * `Allow: GET`), the body (413), the query (400: exactly `?nonce=<32 lowercase
 * hex digits>`), the clock (503, `Retry-After: 1`, when it is unsynchronized or
 * disrupted); otherwise 200 with the reply padded to 256 bytes. Every answer has
 * `Cache-Control: no-store`.
 *
 * @param clock - The server's clock.
 * @param settings - From {@link resolveTimeHttpOptions}.
 * @param atReceive - The clock's reading taken as the request arrived (T2).
 * @param request - The request's method, path, query and body headers.
 * @returns The status, headers and body to send.
 *
 * @example
 * ```ts
 * const atReceive = clock.now();
 * answerTimeHttpRequest(clock, settings, atReceive, {
 *   method: 'GET', path: '/time', search: `?nonce=${nonce}`, contentLength: undefined, chunked: false,
 * }).status; // 200, or 503 while the clock is unsynchronized
 * ```
 * @internal
 */
export function answerTimeHttpRequest(
  clock: TimeServerClock,
  settings: TimeHttpSettings,
  atReceive: TimeReading,
  request: TimeHttpRequest,
): TimeHttpAnswer {
  if (request.path !== settings.path) return refusal(settings, 404, 'not found');
  if (request.method !== 'GET') {
    return refusal(settings, 405, 'method not allowed: use GET', { Allow: 'GET' });
  }
  const declared = request.contentLength;
  if (request.chunked || (declared !== undefined && !(Number(declared) <= settings.maxBodyBytes))) {
    return { ...refusal(settings, 413, 'request body not accepted'), closeConnection: true };
  }
  const nonce = nonceFromTimeQuery(request.search);
  if (nonce === undefined) {
    return refusal(
      settings,
      400,
      'expected exactly one query parameter: nonce=<32 lowercase hex digits>',
    );
  }
  const reply = answerNonce(clock, nonce, atReceive);
  if (!('t2' in reply)) {
    return refusal(settings, 503, `clock ${reply.status}`, { 'Retry-After': '1' });
  }
  return {
    status: 200,
    headers: { ...settings.headers, 'Content-Type': 'application/json' },
    body: timeReplyBody(reply),
    closeConnection: false,
  };
}

function refusal(
  settings: TimeHttpSettings,
  status: number,
  text: string,
  extra: Record<string, string> = {},
): TimeHttpAnswer {
  return {
    status,
    headers: { ...settings.headers, ...extra, 'Content-Type': PLAIN },
    body: `${text}\n`,
    closeConnection: false,
  };
}
