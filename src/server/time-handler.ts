/**
 * The time endpoint for any runtime with the Fetch API: a
 * `(request: Request) => Response` handler for Deno, Bun, Cloudflare Workers,
 * Hono, Next.js route handlers and the like, speaking exactly the protocol of
 * `timeEndpoint` from `chronobound/node`.
 *
 * @module
 */
import type { TimeServerClock } from './answer.js';
import {
  answerTimeHttpRequest,
  resolveTimeHttpOptions,
  type TimeHandlerOptions,
  type TimeHttpRequest,
} from './http-answer.js';

/**
 * A Fetch API request handler, as `Deno.serve`, `Bun.serve({ fetch })`, a
 * Workers module's `fetch` and most JavaScript web frameworks take it.
 *
 * @example
 * ```ts
 * const handler = createTimeHandler(clock);
 * const response = await handler(new Request('https://example.com/time?nonce=00112233445566778899aabbccddeeff'));
 * response.status; //=> 200 (503 while the clock is not synchronized)
 * ```
 */
export type TimeHandler = (request: Request) => Response | Promise<Response>;

/**
 * Serves the server clock's time to `httpTimeSource` clients from any runtime
 * with the Fetch API. The wire format (version 1), the same as `timeEndpoint`'s:
 *
 * - request: `GET <path>?nonce=<32 lowercase hex digits>`, no body;
 * - reply 200, `application/json`, exactly 256 bytes (JSON padded with spaces):
 *   `{"type":"chronobound.time-reply","v":1,"nonce":…,"t2":…,"t3":…,"errorMs":…,"status":…}`
 *   where t2/t3 are the clock's estimate at receive/transmit (epoch ms, µs
 *   resolution) and errorMs its own ε (rounded up), so the client's bound
 *   chains onto the server's: client ε = δ/2 + server ε + drift·age.
 *
 * It refuses every other shape without echoing any of it: another path 404,
 * another method 405 (`Allow: GET`), a body declared longer than `maxBodyBytes`
 * or sent chunked 413 (the body is never read), a missing, malformed or extra
 * query parameter 400, and 503 (`Retry-After: 1`) whenever its own clock is
 * `unsynchronized` or `disrupted` (it runs the clock's strict check, and with it
 * the watchdog, first): a server that cannot stand behind its bound must not
 * hand one out. Every reply has `Cache-Control: no-store`.
 *
 * The handler never throws and never awaits: it answers from the request line
 * and headers alone. It uses only `Request`, `Response` and `URL`, so it runs
 * wherever they exist.
 *
 * @param clock - The server's clock (a `TrueClock`, itself synchronized, e.g.
 *   by `ntpSource` or `systemClockSource`).
 * @param options - Path (default `'/time'`, compared with the request URL's
 *   path), body limit and CORS origin.
 * @returns A `(request) => Response` handler.
 * @throws {@link InvalidArgumentError} When `clock` has no `now()`, or `path`,
 *   `maxBodyBytes` or `allowOrigin` is malformed.
 *
 * @example
 * ```ts
 * import { TrueClock, createTimeHandler, systemClockSource } from 'chronobound';
 *
 * // The host's chrony keeps its clock within 50 ms (checked); without `trusted` every answer is 503.
 * const clock = new TrueClock({ source: systemClockSource({ assumedErrorMs: 50, trusted: true }) });
 * const handler = createTimeHandler(clock, { allowOrigin: 'https://app.example.com' });
 *
 * Deno.serve(handler); // Deno
 * // Bun.serve({ fetch: handler });                   Bun
 * // export default { fetch: handler };              Cloudflare Workers
 * // app.get('/time', (c) => handler(c.req.raw));    Hono
 *
 * const res = await handler(new Request('https://example.com/time?nonce=00112233445566778899aabbccddeeff'));
 * res.status; // 200 (503 until the clock is synchronized)
 * ```
 */
export function createTimeHandler(
  clock: TimeServerClock,
  options: TimeHandlerOptions = {},
): TimeHandler {
  const settings = resolveTimeHttpOptions(clock, options);
  return (request) => {
    // T2 as early as possible: everything below only lengthens the server's hold time.
    const atReceive = clock.now();
    const answer = answerTimeHttpRequest(clock, settings, atReceive, describe(request));
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  };
}

/** The parts of a Fetch request the answer looks at. */
function describe(request: Request): TimeHttpRequest {
  let path = '';
  let search = '';
  try {
    const url = new URL(request.url);
    path = url.pathname;
    search = url.search;
  } catch {
    // Not an absolute URL (a runtime should never hand one over): no path matches, 404.
  }
  return {
    method: request.method,
    path,
    search,
    contentLength: request.headers.get('content-length') ?? undefined,
    chunked: request.headers.has('transfer-encoding'),
  };
}
