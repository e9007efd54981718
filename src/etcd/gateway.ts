/**
 * A small client for etcd v3's JSON gateway (`POST /v3/...`, served by etcd ≥ 3.4
 * on the client port): the handful of calls leader election needs, sent over
 * `fetch` with a timeout per attempt and failover across members. The reply
 * shapes and their decoding are in `gateway-json.ts`; what each reply or
 * transport error means is decided in `gateway-failures.ts`.
 *
 * @module
 * @internal
 */
import { AbortError, ChronoboundError, InvalidArgumentError } from '../errors.js';
import {
  EtcdCompactedError,
  EtcdLeaseExpiredError,
  EtcdUnavailableError,
  type EtcdEndpointFailure,
} from './errors.js';
import {
  NO_LEADER,
  TIMEOUT,
  classifyReply,
  noMemberServed,
  protocolError,
  transportFailure,
  type ReplyContext,
} from './gateway-failures.js';
import {
  encodeBase64,
  firstLine,
  headerRevision,
  intString,
  jsonLines,
  parseJson,
  text,
  toKeyValue,
  type Json,
  type RangeResult,
  type TxnCreateResult,
  type WatchResponse,
} from './gateway-json.js';

/**
 * The subset of the Fetch API the gateway client uses; `globalThis.fetch` is one.
 *
 * @example
 * ```ts
 * const election = etcdElection({
 *   endpoints: ['http://127.0.0.1:2379'],
 *   key: '/locks/reports',
 *   ttlMs: 5_000,
 *   clock,
 *   fetch: (url, init) => (console.log(init.method, url), fetch(url, init)),
 * });
 * // logs each gateway call, e.g. 'POST http://127.0.0.1:2379/v3/lease/grant'
 * ```
 */
export type EtcdFetch = (url: string, init: RequestInit) => Promise<Response>;

/** @internal */
export interface GatewayOptions {
  readonly endpoints: readonly string[];
  readonly fetch?: EtcdFetch | undefined;
  /** Per-attempt timeout (ms) of a request to one member. */
  readonly requestTimeoutMs: number;
}

/** @internal */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  /**
   * Per-attempt timeout (ms).
   *
   * @defaultValue the gateway's `requestTimeoutMs`
   */
  readonly timeoutMs?: number | undefined;
}

/** What a failed attempt at one member means for the next step. */
type Attempt =
  | { readonly ok: true; readonly body: Json; readonly endpoint: string }
  | { readonly ok: false; readonly failure: EtcdEndpointFailure };
/**
 * etcd's JSON gateway, with failover: each call tries the members in turn,
 * starting with the last one that answered, and moves on when a member cannot
 * be reached, times out, or answers that it has no leader. Every other answer
 * is authoritative and ends the call.
 *
 * Only calls whose repetition is harmless are made through it (grant, keep-alive,
 * revoke, reads, a create-if-absent transaction that the caller recognizes as its
 * own), so a retry on another member after an ambiguous timeout is safe.
 *
 * @internal
 */
export class EtcdGateway {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  readonly #fetch: EtcdFetch;
  #preferred = 0;

  constructor(options: GatewayOptions) {
    const endpoints = options.endpoints;
    if (!Array.isArray(endpoints) || endpoints.length === 0) {
      throw new InvalidArgumentError(
        'endpoints',
        endpoints,
        'a non-empty array of etcd client URLs',
      );
    }
    this.endpoints = endpoints.map((e, i) => normalizeEndpoint(e, i));
    this.requestTimeoutMs = options.requestTimeoutMs;
    const f: EtcdFetch | undefined = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') {
      throw new InvalidArgumentError('fetch', f, 'a Fetch API function (none is global here)');
    }
    this.#fetch = f;
  }

  /** The member calls start with. */
  get preferredEndpoint(): string {
    return this.endpoints[this.#preferred] as string;
  }

  /** Reads `key` (linearizable), at `revision` when given. */
  async range(
    key: string,
    options: CallOptions & { revision?: bigint } = {},
  ): Promise<RangeResult> {
    const body: Json = { key: encodeBase64(key) };
    if (options.revision !== undefined) body['revision'] = options.revision.toString();
    const reply = await this.call('range', '/v3/kv/range', body, options, {
      revision: options.revision,
    });
    const kvs = Array.isArray(reply['kvs']) ? (reply['kvs'] as Json[]) : [];
    return { revision: headerRevision(reply), kv: kvs[0] ? toKeyValue(kvs[0]) : undefined };
  }

  /** Grants a lease of `ttlSeconds` (etcd may raise it to its minimum). */
  async grant(
    ttlSeconds: number,
    options: CallOptions = {},
  ): Promise<{ id: string; ttlSeconds: number }> {
    const reply = await this.call('lease grant', '/v3/lease/grant', { TTL: ttlSeconds }, options);
    const id = intString(reply['ID']);
    const ttl = Number(intString(reply['TTL']));
    if (id === '0' || !(ttl > 0)) {
      throw protocolError(
        'lease grant',
        this.preferredEndpoint,
        `no lease ID or TTL in ${JSON.stringify(reply)}`,
      );
    }
    return { id, ttlSeconds: ttl };
  }

  /**
   * Renews lease `id` once. Returns the TTL (s) etcd restarted it with.
   *
   * @throws {@link EtcdLeaseExpiredError} When etcd no longer has the lease (TTL 0 or "not found").
   */
  async keepAlive(id: string, options: CallOptions = {}): Promise<number> {
    const reply = await this.call('lease keep-alive', '/v3/lease/keepalive', { ID: id }, options, {
      leaseId: id,
    });
    const result = (reply['result'] ?? reply) as Json;
    const ttl = Number(intString(result['TTL']));
    if (!(ttl > 0)) throw new EtcdLeaseExpiredError(id, 'keep-alive answered TTL 0');
    return ttl;
  }

  /**
   * Revokes lease `id`, deleting its keys.
   *
   * @throws {@link EtcdLeaseExpiredError} When etcd no longer has the lease.
   */
  async revoke(id: string, options: CallOptions = {}): Promise<void> {
    await this.call('lease revoke', '/v3/lease/revoke', { ID: id }, options, { leaseId: id });
  }

  /**
   * Creates `key` = `value` attached to lease `leaseId` only if it does not
   * exist (compare `create_revision == 0`), and reads it back either way.
   */
  async createIfAbsent(
    key: string,
    value: string,
    leaseId: string,
    options: CallOptions = {},
  ): Promise<TxnCreateResult> {
    const k = encodeBase64(key);
    const read = { request_range: { key: k } };
    const reply = await this.call(
      'create-if-absent transaction',
      '/v3/kv/txn',
      {
        compare: [{ target: 'CREATE', key: k, create_revision: '0', result: 'EQUAL' }],
        success: [{ request_put: { key: k, value: encodeBase64(value), lease: leaseId } }, read],
        failure: [read],
      },
      options,
      { leaseId },
    );
    const responses = Array.isArray(reply['responses']) ? (reply['responses'] as Json[]) : [];
    const range = responses.map((r) => r['response_range'] as Json | undefined).find(Boolean);
    const kvs = range && Array.isArray(range['kvs']) ? (range['kvs'] as Json[]) : [];
    return {
      succeeded: reply['succeeded'] === true,
      revision: headerRevision(reply),
      kv: kvs[0] ? toKeyValue(kvs[0]) : undefined,
    };
  }

  /** Member status, for telling "no leader" from "slow". Never throws. */
  async hasNoLeader(endpoint: string, timeoutMs: number): Promise<boolean> {
    const attempt = await this.#attempt(
      endpoint,
      '/v3/maintenance/status',
      {},
      timeoutMs,
      undefined,
    );
    if (!attempt.ok) return attempt.failure.kind === 'no-leader';
    const errors = Array.isArray(attempt.body['errors']) ? attempt.body['errors'] : [];
    const leader = intString(attempt.body['leader']);
    return leader === '0' || errors.some((e) => NO_LEADER.test(String(e)));
  }

  /**
   * Watches `key` from `startRevision` on one member (failing over until a
   * member accepts the watch). The stream ends by throwing: `EtcdCompactedError`
   * when `startRevision` is compacted, `EtcdUnavailableError` when the member
   * goes away, `AbortError` when `signal` aborts.
   */
  async *watch(
    key: string,
    startRevision: bigint,
    options: { signal?: AbortSignal | undefined; noPut?: boolean } = {},
  ): AsyncGenerator<WatchResponse, void, undefined> {
    const create: Json = { key: encodeBase64(key), start_revision: startRevision.toString() };
    if (options.noPut) create['filters'] = ['NOPUT'];
    const body = JSON.stringify({ create_request: create });
    const failures: EtcdEndpointFailure[] = [];
    for (const { index, endpoint } of this.#inFailoverOrder()) {
      throwIfAborted(options.signal, 'etcd watch');
      const controller = new AbortController();
      const onAbort = (): void => controller.abort(options.signal?.reason);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // The watch must be accepted within the request timeout; then it may stay open for ever.
      const timer = setTimeout(() => controller.abort(TIMEOUT), this.requestTimeoutMs);
      let accepted = false;
      try {
        const response = await this.#fetch(`${endpoint}/v3/watch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: controller.signal,
        });
        if (!response.ok || !response.body) {
          const text = await response.text().catch(() => '');
          const failure = classifyReply(endpoint, response.status, parseJson(text), 'watch', {
            revision: startRevision,
          });
          if (failure instanceof Error) throw failure;
          failures.push(
            failure ?? {
              endpoint,
              kind: 'error',
              detail: `HTTP ${response.status} without a stream`,
            },
          );
          continue;
        }
        for await (const message of jsonLines(response.body)) {
          const result = message['result'] as Json | undefined;
          if (!result) {
            const failure = classifyReply(endpoint, response.status, message, 'watch', {
              revision: startRevision,
            });
            if (failure === undefined) continue; // neither a result nor an error: ignore
            if (failure instanceof Error) throw failure;
            throw new EtcdUnavailableError('watch', [failure]);
          }
          if (
            result['compact_revision'] !== undefined &&
            intString(result['compact_revision']) !== '0'
          ) {
            throw new EtcdCompactedError(
              startRevision,
              BigInt(intString(result['compact_revision'])),
              'watch',
            );
          }
          if (result['canceled'] === true) {
            throw new EtcdUnavailableError('watch', [
              {
                endpoint,
                kind: 'error',
                detail: `watch canceled: ${text(result['cancel_reason'])}`,
              },
            ]);
          }
          if (!accepted) {
            accepted = true;
            clearTimeout(timer);
            this.#preferred = index;
          }
          const events = Array.isArray(result['events']) ? (result['events'] as Json[]) : [];
          yield {
            revision: headerRevision(result),
            created: result['created'] === true,
            events: events.map((e) => ({
              type: e['type'] === 'DELETE' ? 'DELETE' : 'PUT',
              kv: toKeyValue((e['kv'] ?? {}) as Json),
            })),
          };
        }
        throw new EtcdUnavailableError('watch', [
          { endpoint, kind: 'connection', detail: 'the watch stream ended' },
        ]);
      } catch (error) {
        if (options.signal?.aborted) throw new AbortError('etcd watch', options.signal.reason);
        if (error instanceof ChronoboundError) throw error;
        const failure = transportFailure(endpoint, error, controller.signal);
        if (accepted) throw new EtcdUnavailableError('watch', [failure], { cause: error });
        failures.push(failure);
      } finally {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        controller.abort();
      }
    }
    throw noMemberServed('watch', failures);
  }

  /**
   * One unary call with failover.
   *
   * @throws {@link EtcdQuorumLostError} When no member could serve it and one said it has no leader.
   * @throws {@link EtcdUnavailableError} When no member could be reached.
   * @throws {@link EtcdLeaseExpiredError}, {@link EtcdCompactedError} or {@link EtcdRequestError} On an authoritative error reply.
   * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts.
   */
  async call(
    operation: string,
    path: string,
    body: Json,
    options: CallOptions = {},
    context: ReplyContext = {},
  ): Promise<Json> {
    const failures: EtcdEndpointFailure[] = [];
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    for (const { index, endpoint } of this.#inFailoverOrder()) {
      throwIfAborted(options.signal, `etcd ${operation}`);
      const attempt = await this.#attempt(
        endpoint,
        path,
        body,
        timeoutMs,
        options.signal,
        operation,
        context,
      );
      if (attempt.ok) {
        this.#preferred = index;
        return attempt.body;
      }
      let failure = attempt.failure;
      if (
        failure.kind === 'timeout' &&
        (await this.hasNoLeader(endpoint, Math.min(timeoutMs, 1000)))
      ) {
        failure = {
          ...failure,
          kind: 'no-leader',
          detail: `${failure.detail}; the member has no leader`,
        };
      }
      failures.push(failure);
      throwIfAborted(options.signal, `etcd ${operation}`);
    }
    // Start the next call with the member after the one that failed first.
    this.#preferred = (this.#preferred + 1) % this.endpoints.length;
    throw noMemberServed(operation, failures);
  }

  /**
   * Every member once, starting with the preferred one. Each index is taken when
   * it is reached, so a member another call found meanwhile moves the rest.
   */
  *#inFailoverOrder(): Generator<{ readonly index: number; readonly endpoint: string }> {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const index = (this.#preferred + i) % n;
      yield { index, endpoint: this.endpoints[index] as string };
    }
  }

  async #attempt(
    endpoint: string,
    path: string,
    body: Json,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    operation = path,
    context: ReplyContext = {},
  ): Promise<Attempt> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(TIMEOUT), timeoutMs);
    let status: number;
    let text: string;
    try {
      const response = await this.#fetch(`${endpoint}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw new AbortError(`etcd ${operation}`, signal.reason);
      return { ok: false, failure: transportFailure(endpoint, error, controller.signal) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    const json = parseJson(firstLine(text));
    if (json === undefined) {
      if (status >= 200 && status < 300) {
        throw protocolError(
          operation,
          endpoint,
          `not JSON: ${JSON.stringify(text.slice(0, 200))}`,
          status,
        );
      }
      return {
        ok: false,
        failure: { endpoint, kind: 'error', detail: `HTTP ${status}: ${text.slice(0, 200)}` },
      };
    }
    const failure = classifyReply(endpoint, status, json, operation, context);
    if (failure === undefined) return { ok: true, body: json, endpoint };
    if (failure instanceof Error) throw failure;
    return { ok: false, failure };
  }
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(what, signal.reason);
}

function normalizeEndpoint(endpoint: unknown, index: number): string {
  let url: URL | undefined;
  try {
    url = new URL(String(endpoint));
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    typeof endpoint !== 'string' ||
    (url.protocol !== 'http:' && url.protocol !== 'https:')
  ) {
    throw new InvalidArgumentError(
      `endpoints[${index}]`,
      endpoint,
      'an http(s) URL such as http://127.0.0.1:2379',
    );
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}
