/**
 * The server side of time over HTTP for `node:http`: a `(req, res)` handler that
 * answers `GET /time?nonce=<32 hex digits>` with the server's own bounded time.
 * A thin adapter: the answer itself is `server/http-answer.ts`, shared with
 * `createTimeHandler` (Fetch API), so both speak exactly the same protocol.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TimeServerClock } from '../server/answer.js';
import {
  answerTimeHttpRequest,
  resolveTimeHttpOptions,
  type TimeHandlerOptions,
} from '../server/http-answer.js';

/**
 * Options of {@link timeEndpoint}: the same as `createTimeHandler`'s. `path` is
 * compared with `req.url`, so under a router that strips its mount point give
 * the path the handler sees. A refused body also closes the connection.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * createServer(timeEndpoint(clock, { path: '/api/time', allowOrigin: 'https://app.example.com' })).listen(8080);
 * // GET /api/time?nonce=<32 hex digits> → 200 and the reply; GET /time → 404
 * ```
 */
export type TimeEndpointOptions = TimeHandlerOptions;

/**
 * A request handler for `node:http` and frameworks that pass Node's `(req, res)`
 * (Express, Connect, Fastify's `raw`…). When the path does not match and `next`
 * is given, it is called instead of answering 404.
 *
 * @example
 * ```ts
 * const app = express();
 * app.use(timeEndpoint(clock)); // answers GET /time?nonce=…; any other path goes on to next()
 * ```
 */
export type TimeEndpointHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

/**
 * Serves the server clock's time to browsers and other clients of
 * `httpTimeSource`, from `node:http` and frameworks built on it. Other runtimes
 * (Deno, Bun, Workers, Hono) use `createTimeHandler` from the core, which speaks
 * the same protocol. The wire format (version 1):
 *
 * - request: `GET <path>?nonce=<32 lowercase hex digits>`, no body;
 * - reply 200, `application/json`, exactly 256 bytes (JSON padded with spaces):
 *   `{"type":"chronobound.time-reply","v":1,"nonce":…,"t2":…,"t3":…,"errorMs":…,"status":…}`
 *   where t2/t3 are the clock's estimate at receive/transmit (epoch ms, µs
 *   resolution) and errorMs its own ε (rounded up), so the client's bound
 *   chains onto the server's: client ε = δ/2 + server ε + drift·age.
 *
 * It refuses every other shape without echoing any of it: another path 404 (or
 * `next()`), another method 405, a body 413 (and the connection is closed), a missing, malformed or extra query
 * parameter 400, and 503 whenever its own clock is `unsynchronized` or
 * `disrupted` (it checks the watchdog first): a server that cannot stand behind
 * its bound must not hand one out. Every reply has `Cache-Control: no-store`.
 *
 * @param clock - The server's clock (a `TrueClock`).
 * @param options - Path, body limit and CORS origin.
 * @returns A `(req, res, next?)` handler.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `clock` has no `now()`, or `path`,
 *   `maxBodyBytes` or `allowOrigin` is malformed.
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
  const settings = resolveTimeHttpOptions(clock, options);
  return (req, res, next) => {
    // T2 as early as possible: everything below only lengthens the server's hold time.
    const atReceive = clock.now();
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const answer = answerTimeHttpRequest(clock, settings, atReceive, {
      method: req.method ?? '',
      path: queryAt === -1 ? url : url.slice(0, queryAt),
      search: queryAt === -1 ? '' : url.slice(queryAt),
      contentLength: req.headers['content-length'],
      chunked: req.headers['transfer-encoding'] !== undefined,
    });
    if (answer.status === 404 && next !== undefined) {
      next();
      return;
    }
    if (!answer.closeConnection) {
      // Drain whatever small body there is so the connection stays reusable.
      req.resume();
    }
    res.writeHead(answer.status, {
      ...answer.headers,
      ...(answer.closeConnection ? { Connection: 'close' } : {}),
      'Content-Length': String(answer.body.length),
    });
    res.end(answer.body);
  };
}
