/**
 * Time over HTTP: NTP's four-timestamp exchange carried by `fetch`, for browsers
 * (and any runtime with `fetch`) syncing to their own server's time endpoint
 * (`createTimeHandler`, or `timeEndpoint` on `node:http`).
 *
 * @module
 */
import { InvalidArgumentError, TimeExchangeError } from '../errors.js';
import { timeRequestUrl } from '../protocol/http.js';
import {
  describeFailure,
  exchangeTimeSource,
  resolveExchangeOptions,
  type ExchangeTransport,
  type TimeExchangeOptions,
} from './exchange-source.js';
import type { DisposableTimeSource } from './types.js';

/** Replies are 256 bytes; anything much longer is not ours. */
const MAX_BODY_BYTES = 4096;

/**
 * The part of a `fetch` response the HTTP time source reads. The platform's
 * `Response` satisfies it.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({
 *   source: httpTimeSource({
 *     url: 'https://time.example/time',
 *     fetch: async () => new Response('busy', { status: 503 }), // a Response is a FetchResponseLike
 *   }),
 * });
 * await clock.ready({ timeoutMs: 1000 }).catch(() => undefined);
 * clock.lastProblem?.reason; //=> 'status'
 * ```
 */
export interface FetchResponseLike {
  /** Whether the status is 2xx. */
  readonly ok: boolean;
  /** The HTTP status code. */
  readonly status: number;
  /** Response headers. */
  readonly headers: { get(name: string): string | null };
  /** The body as a byte stream, when the platform has streams. */
  readonly body?: {
    getReader(): {
      read(): Promise<{ done: boolean; value?: Uint8Array | undefined }>;
      cancel(reason?: unknown): Promise<void>;
    };
  } | null;
  /** The whole body as text (used when there is no stream). */
  text(): Promise<string>;
}

/**
 * The request options the HTTP time source passes to `fetch`.
 *
 * @example
 * ```ts
 * httpTimeSource({
 *   url: 'https://time.example/time',
 *   fetch: (url, init) => {
 *     init.method; //=> 'GET'
 *     init.cache;  //=> 'no-store'
 *     return fetch(url, init);
 *   },
 * });
 * ```
 */
export interface HttpTimeRequestInit {
  /** Always `'GET'`: a simple request, so cross-origin use needs no preflight. */
  readonly method: 'GET';
  /** Always `'no-store'`: a cached reply would be a lie about now. */
  readonly cache: 'no-store';
  /** Aborts the request on timeout or close. */
  readonly signal: AbortSignal;
}

/**
 * A `fetch`-compatible function; the platform's `fetch` satisfies it.
 *
 * @example
 * ```ts
 * // No network: the client's requests go straight to an in-process handler (server: a TrueClock).
 * const handler = createTimeHandler(server);
 * const source = httpTimeSource({
 *   url: 'https://time.example/time',
 *   fetch: async (url, init) => handler(new Request(url, init)),
 * });
 * ```
 */
export type FetchLike = (url: string, init: HttpTimeRequestInit) => Promise<FetchResponseLike>;

/**
 * Options of {@link httpTimeSource}.
 *
 * @example
 * ```ts
 * const source = httpTimeSource({ url: 'https://time.example/time', samples: 4, pollIntervalMs: 30_000 });
 * source.pollIntervalMs; //=> 30000
 * source.maxSampleGapMs; //=> 50000 (the interval plus 4 exchanges of at most 5 s)
 * ```
 */
export interface HttpTimeSourceOptions extends TimeExchangeOptions {
  /**
   * The time endpoint, absolute or relative to the page (`'/time'`). The source
   * adds `?nonce=<32 hex digits>` to it.
   */
  readonly url: string | URL;
  /**
   * The `fetch` to use.
   *
   * @defaultValue the platform's `fetch`, looked up at each request
   */
  readonly fetch?: FetchLike;
}

/**
 * A {@link TimeSource} that syncs to a server's time endpoint over HTTP
 * (`createTimeHandler` on any runtime, or `timeEndpoint` from `chronobound/node`):
 * `GET <url>?nonce=<hex>`, stamping T1 before the request and T4 after the
 * reply on the clock's own monotonic timescale, with T2/T3 and the server's ε
 * from the reply. Each sample's bound is δ/2 + server ε + drift over the
 * exchange, so the browser's interval contains the server's true time whenever
 * the server's does. Each poll runs `samples` exchanges back to back (the first
 * one usually pays for the connection) and delivers the tightest of the recent
 * ones.
 *
 * A timeout, a non-2xx status (503 when the server's own clock is
 * unsynchronized), a malformed body, a reply that does not echo our nonce, or a
 * network failure is reported to the clock as a problem carrying an
 * `TimeExchangeError` (reasons `'timeout'`, `'status'`, `'body'`, `'nonce-mismatch'`,
 * `'network'`) and yields no sample. A sample that contradicts the kept ones
 * beyond `maxDriftPpm` (the server's clock stepped, or the host slewed the local
 * monotonic clock) replaces them and is reported as `'inconsistent-sample'`.
 *
 * Samples carry `evidenceFrom` = T1 (when the request left). The source has
 * `maxSampleGapMs` = `pollIntervalMs + samples · timeoutMs` and
 * `invalidate(monotonicAt)`, which `TrueClock` calls when it sees a suspend,
 * VM pause or clock step: only evidence gathered after the disruption may end
 * it, so samples gathered at or before `monotonicAt` are forgotten, the reply to
 * a request sent before it is dropped (the request is not aborted), and a fresh
 * poll starts at once.
 *
 * @param options - The endpoint URL and the exchange tuning.
 * @returns A source to pass to `new TrueClock({ source })`.
 * @throws {@link InvalidArgumentError} When `url` is not a valid URL (relative URLs need a page), there is no `fetch`, or a tuning option is out of range.
 *
 * @example
 * ```ts
 * import { TrueClock, httpTimeSource } from 'chronobound';
 *
 * const clock = new TrueClock({ source: httpTimeSource({ url: '/time' }) });
 * await clock.ready({ timeoutMs: 5000 });
 * const { earliest, latest } = clock.now(); // contains the server's true time
 * ```
 */
export function httpTimeSource(options: HttpTimeSourceOptions): DisposableTimeSource {
  const base = resolveUrl(options?.url);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new InvalidArgumentError('fetch', options.fetch, 'a fetch-compatible function');
  }
  if (options.fetch === undefined && typeof globalThis.fetch !== 'function') {
    throw new InvalidArgumentError('fetch', undefined, 'a fetch function (this runtime has none)');
  }
  const where = base.href;
  const config = resolveExchangeOptions(options, `http:${where}`, where);
  const fetchFn: FetchLike = options.fetch ?? ((url, init) => globalThis.fetch(url, init));

  return exchangeTimeSource(config, (): ExchangeTransport => ({
    async roundTrip(nonce, signal) {
      let response: FetchResponseLike;
      try {
        response = await fetchFn(timeRequestUrl(base, nonce), {
          method: 'GET',
          cache: 'no-store',
          signal,
        });
      } catch (error) {
        throw new TimeExchangeError(where, 'network', describeFailure(error));
      }
      if (!response.ok) {
        discard(response);
        throw new TimeExchangeError(where, 'status', `HTTP ${response.status}`);
      }
      return readCapped(response, where);
    },
    close() {},
  }));
}

function resolveUrl(url: unknown): URL {
  if (!(typeof url === 'string' && url !== '') && !(url instanceof URL)) {
    throw new InvalidArgumentError('url', url, 'a URL string or URL');
  }
  const page = (globalThis as { location?: { href?: unknown } }).location?.href;
  try {
    const resolved = new URL(String(url), typeof page === 'string' ? page : undefined);
    if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') throw new TypeError();
    resolved.hash = '';
    return resolved;
  } catch {
    throw new InvalidArgumentError(
      'url',
      url,
      'an http(s) URL (relative URLs only where there is a page to resolve them against)',
    );
  }
}

/** Reads at most {@link MAX_BODY_BYTES} of the body as UTF-8 text. */
async function readCapped(response: FetchResponseLike, where: string): Promise<string> {
  const declared = response.headers.get('content-length');
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) {
    discard(response);
    throw new TimeExchangeError(where, 'body', `reply of ${declared} bytes is too long`);
  }
  const stream = response.body;
  let text: string;
  if (stream) {
    const reader = stream.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value === undefined) continue;
      total += value.byteLength;
      if (total > MAX_BODY_BYTES) {
        reader.cancel().catch(() => undefined);
        throw new TimeExchangeError(where, 'body', `reply longer than ${MAX_BODY_BYTES} bytes`);
      }
      chunks.push(value);
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new TimeExchangeError(where, 'body', 'reply is not UTF-8');
    }
  } else {
    text = await response.text();
  }
  if (text.length > MAX_BODY_BYTES) {
    throw new TimeExchangeError(where, 'body', `reply longer than ${MAX_BODY_BYTES} bytes`);
  }
  return text;
}

/** Releases an unread body so the connection can be reused. */
function discard(response: FetchResponseLike): void {
  try {
    response.body
      ?.getReader()
      .cancel()
      .catch(() => undefined);
  } catch {
    // Already locked or consumed: nothing to release.
  }
}
