/**
 * The server side of time over HTTP: a `(req, res)` handler that answers
 * `GET /time?nonce=<32 hex digits>` with the server's own bounded time.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '../errors.js';
import {
  clockStandsBehindBound,
  composeTimeReply,
  isTimeNonce,
  type TimeServerClock,
} from '../sources/message.js';

/** Every 200 reply is exactly this many bytes (JSON padded with spaces). */
const REPLY_BYTES = 256;

/**
 * Options of {@link timeEndpoint}.
 *
 * @example
 * ```ts
 * const options: TimeEndpointOptions = { path: '/api/time', allowOrigin: 'https://app.example.com' };
 * ```
 */
export interface TimeEndpointOptions {
  /**
   * The path it answers on; default `'/time'`. Compared with `req.url`, so under
   * a router that strips its mount point give the path the handler sees.
   */
  readonly path?: string;
  /**
   * Largest request body tolerated (and ignored), in bytes; default 0. A longer
   * or chunked body gets 413 and the connection is closed.
   */
  readonly maxBodyBytes?: number;
  /** Sent as `Access-Control-Allow-Origin` on replies, for pages on another origin. */
  readonly allowOrigin?: string;
}

/**
 * A request handler for `node:http` and frameworks that pass Node's `(req, res)`
 * (Express, Connect, Fastify's `raw`…). When the path does not match and `next`
 * is given, it is called instead of answering 404.
 *
 * @example
 * ```ts
 * const handler: TimeEndpointHandler = timeEndpoint(clock);
 * http.createServer(handler).listen(8080);
 * ```
 */
export type TimeEndpointHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

const PLAIN = 'text/plain; charset=utf-8';

/**
 * Serves the server clock's time to browsers and other clients of
 * `httpTimeSource`. The wire format (version 1):
 *
 * - request: `GET <path>?nonce=<32 lowercase hex digits>`, no body;
 * - reply 200, `application/json`, exactly 256 bytes (JSON padded with spaces):
 *   `{"type":"chronobound.time-reply","v":1,"nonce":…,"t2":…,"t3":…,"errorMs":…,"status":…}`
 *   where t2/t3 are the clock's estimate at receive/transmit (epoch ms, µs
 *   resolution) and errorMs its own ε (rounded up), so the client's bound
 *   chains onto the server's: client ε = δ/2 + server ε + drift·age.
 *
 * It refuses every other shape without echoing any of it: another path 404 (or
 * `next()`), another method 405, a body 413, a missing, malformed or extra query
 * parameter 400, and 503 whenever its own clock is `unsynchronized` or
 * `disrupted` (it checks the watchdog first): a server that cannot stand behind
 * its bound must not hand one out. Every reply has `Cache-Control: no-store`.
 *
 * @param clock - The server's clock (a `TrueClock`).
 * @param options - Path, body limit and CORS origin.
 * @returns A `(req, res, next?)` handler.
 * @throws {InvalidArgumentError} When `path`, `maxBodyBytes` or `allowOrigin` is malformed.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { TrueClock } from 'chronobound';
 * import { ntpSource } from 'chronobound/ntp';
 * import { timeEndpoint } from 'chronobound/node';
 *
 * const clock = new TrueClock({ source: ntpSource({ servers: ['time.example.com:123'] }) });
 * createServer(timeEndpoint(clock)).listen(8080);
 * // or, with Express: app.use(timeEndpoint(clock));
 * ```
 */
export function timeEndpoint(
  clock: TimeServerClock,
  options: TimeEndpointOptions = {},
): TimeEndpointHandler {
  if (typeof clock?.now !== 'function') {
    throw new InvalidArgumentError('clock', clock, 'a TrueClock (something with now())');
  }
  const path = options.path ?? '/time';
  if (typeof path !== 'string' || !/^\/[!$&'()*+,\-./0-9:;=@A-Z_a-z~]{0,255}$/.test(path)) {
    throw new InvalidArgumentError('path', path, 'an absolute URL path without query or fragment');
  }
  const maxBodyBytes = options.maxBodyBytes ?? 0;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 0) {
    throw new InvalidArgumentError('maxBodyBytes', maxBodyBytes, 'an integer ≥ 0');
  }
  const allowOrigin = options.allowOrigin;
  if (allowOrigin !== undefined && !/^[\x21-\x7e]{1,256}$/.test(allowOrigin)) {
    throw new InvalidArgumentError('allowOrigin', allowOrigin, 'an origin or "*"');
  }
  const common: Record<string, string> = {
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...(allowOrigin === undefined ? {} : { 'Access-Control-Allow-Origin': allowOrigin }),
  };
  const prefix = `${path}?`;

  const refuse = (
    res: ServerResponse,
    status: number,
    text: string,
    extra: Record<string, string> = {},
  ): void => {
    const body = `${text}\n`;
    res.writeHead(status, {
      ...common,
      ...extra,
      'Content-Type': PLAIN,
      'Content-Length': String(body.length),
    });
    res.end(body);
  };

  return (req, res, next) => {
    // T2 as early as possible: everything below only lengthens the server's hold time.
    const atReceive = clock.now();
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const target = queryAt === -1 ? url : url.slice(0, queryAt);
    if (target !== path) {
      if (next !== undefined) next();
      else refuse(res, 404, 'not found');
      return;
    }
    if (req.method !== 'GET') {
      refuse(res, 405, 'method not allowed: use GET', { Allow: 'GET' });
      return;
    }
    const declared = req.headers['content-length'];
    if (
      req.headers['transfer-encoding'] !== undefined ||
      (declared !== undefined && !(Number(declared) <= maxBodyBytes))
    ) {
      refuse(res, 413, 'request body not accepted', { Connection: 'close' });
      return;
    }
    // Drain whatever small body there is so the connection stays reusable.
    req.resume();
    const nonce = url.startsWith(prefix) ? url.slice(prefix.length + 'nonce='.length) : '';
    if (!url.startsWith(`${prefix}nonce=`) || !isTimeNonce(nonce)) {
      refuse(res, 400, 'expected exactly one query parameter: nonce=<32 lowercase hex digits>');
      return;
    }
    const trusted = clockStandsBehindBound(clock);
    const reply = composeTimeReply(nonce, atReceive, clock.now(), trusted);
    if (!('t2' in reply)) {
      refuse(res, 503, `clock ${reply.status}`, { 'Retry-After': '1' });
      return;
    }
    const json = JSON.stringify(reply);
    // Fixed size: the reply's length says nothing, and a client can cap what it reads.
    const body = json.length <= REPLY_BYTES ? json.padEnd(REPLY_BYTES, ' ') : json;
    res.writeHead(200, {
      ...common,
      'Content-Type': 'application/json',
      'Content-Length': String(body.length),
    });
    res.end(body);
  };
}
