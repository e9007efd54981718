/**
 * An in-memory stand-in for etcd's JSON gateway, as a `fetch` function: enough of
 * lease grant / keep-alive / revoke, range, the create-if-absent transaction,
 * watch, compaction and member status to unit-test the election and the error
 * mapping. Replies copy the shapes etcd 3.4 sends (int64 as strings, zero values
 * omitted, base64 keys, streamed replies as `{ "result": … }` lines).
 *
 * Faults are injected per endpoint and path with {@link FakeEtcd.fault}.
 */
import type { EtcdFetch } from '../../src/etcd/index.js';

type Json = Record<string, unknown>;

type FaultOutcome = Response | 'refuse' | 'hang' | undefined;

/** What a fault does to a request: refuse the connection, never answer, or answer this. */
export type Fault =
  | 'refuse'
  | 'hang'
  | { status: number; body: string }
  | ((request: FakeRequest) => FaultOutcome | Promise<FaultOutcome>);

export interface FakeRequest {
  readonly endpoint: string;
  readonly path: string;
  readonly body: Json;
  /** The fake's revision when the request arrived. */
  readonly revision: bigint;
}

interface StoredKv {
  value: string;
  create: bigint;
  mod: bigint;
  version: bigint;
  lease: string;
}

interface Watcher {
  key: string;
  noPut: boolean;
  push(line: Json): void;
  fail(): void;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const str = (v: unknown, fallback = ''): string =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
const unb64 = (s: unknown): string => Buffer.from(str(s), 'base64').toString('utf8');

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

/** A gRPC error as the gateway sends it for unary calls. */
export function grpcError(status: number, code: number, message: string): Response {
  return json(status, { error: message, message, code });
}

/** A gRPC error as the gateway sends it inside a stream. */
export function streamError(code: number, httpCode: number, message: string): Response {
  return json(200, {
    error: { grpc_code: code, http_code: httpCode, message, http_status: 'Service Unavailable' },
  });
}

export class FakeEtcd {
  revision = 1n;
  compacted = 0n;
  nextLeaseId = 7587854283460000001n;
  readonly leases = new Map<string, { ttl: number; keepAlives: number }>();
  readonly kv = new Map<string, StoredKv>();
  readonly history: { revision: bigint; type: 'PUT' | 'DELETE'; key: string; kv: StoredKv }[] = [];
  readonly requests: FakeRequest[] = [];
  readonly #faults = new Map<string, Fault[]>();
  readonly #watchers = new Set<Watcher>();
  /** TTL etcd grants at least (its minimum). */
  minTtl = 1;

  /** Queues `fault` for the next request to `path` (on `endpoint`, or any when `'*'`); `times` requests in a row. */
  fault(endpoint: string, path: string, fault: Fault, times = 1): void {
    const key = `${endpoint} ${path}`;
    const list = this.#faults.get(key) ?? [];
    for (let i = 0; i < times; i++) list.push(fault);
    this.#faults.set(key, list);
  }

  /** Removes every queued fault. */
  clearFaults(): void {
    this.#faults.clear();
  }

  /** Requests to `path`, in order. */
  calls(path: string): FakeRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Expires lease `id` as etcd's lessor would: the lease and its keys go. */
  expire(id: string): void {
    this.leases.delete(id);
    for (const [key, stored] of [...this.kv]) if (stored.lease === id) this.#delete(key);
  }

  /** Deletes `key` (as `etcdctl del` would). */
  deleteKey(key: string): void {
    if (this.kv.has(key)) this.#delete(key);
  }

  /** Breaks every open watch stream (a member going away). */
  breakWatches(): void {
    for (const w of [...this.#watchers]) w.fail();
  }

  /** Compacts history up to `revision`. */
  compact(revision: bigint): void {
    this.compacted = revision;
  }

  readonly fetch: EtcdFetch = async (url, init) => {
    const parsed = new URL(url);
    const endpoint = `${parsed.protocol}//${parsed.host}`;
    const path = parsed.pathname;
    const body = JSON.parse(typeof init.body === 'string' ? init.body : '{}') as Json;
    const request: FakeRequest = { endpoint, path, body, revision: this.revision };
    this.requests.push(request);
    const signal = init.signal ?? undefined;
    const fault = this.#takeFault(endpoint, path);
    let outcome: FaultOutcome;
    if (typeof fault === 'function') outcome = await fault(request);
    else if (typeof fault === 'object')
      outcome = new Response(fault.body, { status: fault.status });
    else outcome = fault;
    if (outcome === 'refuse') {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error(`connect ECONNREFUSED ${parsed.host}`), {
          code: 'ECONNREFUSED',
        }),
      });
    }
    if (outcome === 'hang') {
      return new Promise<Response>((_, reject) => {
        const fail = (): void =>
          reject(
            signal?.reason instanceof Error
              ? signal.reason
              : new DOMException('aborted', 'AbortError'),
          );
        if (signal?.aborted) fail();
        signal?.addEventListener('abort', fail, { once: true });
      });
    }
    if (outcome !== undefined) return outcome;
    return this.#serve(path, body, signal);
  };

  /** Serves a request as etcd would, bypassing faults (e.g. to commit inside a fault). */
  serve(path: string, body: Json): Response {
    return this.#serve(path, body, undefined);
  }

  #takeFault(endpoint: string, path: string): Fault | undefined {
    for (const key of [`${endpoint} ${path}`, `* ${path}`]) {
      const list = this.#faults.get(key);
      if (list && list.length > 0) return list.shift();
    }
    return undefined;
  }

  #header(): Json {
    return {
      cluster_id: '15276262748873838274',
      member_id: '13510015062231200447',
      revision: String(this.revision),
      raft_term: '2',
    };
  }

  #kvJson(key: string, s: StoredKv): Json {
    const out: Json = {
      key: b64(key),
      create_revision: String(s.create),
      mod_revision: String(s.mod),
      version: String(s.version),
      value: b64(s.value),
    };
    if (s.lease !== '0') out['lease'] = s.lease;
    return out;
  }

  #delete(key: string): void {
    const stored = this.kv.get(key);
    if (!stored) return;
    this.revision++;
    this.kv.delete(key);
    this.history.push({
      revision: this.revision,
      type: 'DELETE',
      key,
      kv: { ...stored, mod: this.revision },
    });
    this.#notify(
      key,
      { type: 'DELETE', kv: { key: b64(key), mod_revision: String(this.revision) } },
      'DELETE',
    );
  }

  #put(key: string, value: string, lease: string): void {
    this.revision++;
    const old = this.kv.get(key);
    const stored: StoredKv = old
      ? { value, create: old.create, mod: this.revision, version: old.version + 1n, lease }
      : { value, create: this.revision, mod: this.revision, version: 1n, lease };
    this.kv.set(key, stored);
    this.history.push({ revision: this.revision, type: 'PUT', key, kv: { ...stored } });
    this.#notify(key, { kv: this.#kvJson(key, stored) }, 'PUT');
  }

  #notify(key: string, event: Json, type: 'PUT' | 'DELETE'): void {
    for (const w of this.#watchers) {
      if (w.key !== key || (type === 'PUT' && w.noPut)) continue;
      w.push({ result: { header: this.#header(), events: [event] } });
    }
  }

  #serve(path: string, body: Json, signal: AbortSignal | undefined): Response {
    switch (path) {
      case '/v3/lease/grant': {
        const id = String(this.nextLeaseId++);
        const ttl = Math.max(this.minTtl, Number(body['TTL']));
        this.leases.set(id, { ttl, keepAlives: 0 });
        return json(200, { header: this.#header(), ID: id, TTL: String(ttl) });
      }
      case '/v3/lease/keepalive': {
        const id = String(body['ID']);
        const lease = this.leases.get(id);
        const result: Json = { header: this.#header(), ID: id };
        if (lease) {
          lease.keepAlives++;
          result['TTL'] = String(lease.ttl);
        }
        return json(200, { result });
      }
      case '/v3/lease/revoke': {
        const id = String(body['ID']);
        if (!this.leases.has(id)) return grpcError(404, 5, 'etcdserver: requested lease not found');
        this.expire(id);
        return json(200, { header: this.#header() });
      }
      case '/v3/kv/range': {
        const key = unb64(body['key']);
        if (body['revision'] !== undefined) {
          const rev = BigInt(str(body['revision']));
          if (rev <= this.compacted) {
            return grpcError(400, 11, 'etcdserver: mvcc: required revision has been compacted');
          }
          const past = this.history.filter((h) => h.key === key && h.revision <= rev).at(-1);
          const kvs = past && past.type === 'PUT' ? [this.#kvJson(key, past.kv)] : [];
          return json(200, { header: this.#header(), kvs, ...(kvs.length ? { count: '1' } : {}) });
        }
        const stored = this.kv.get(key);
        return json(200, {
          header: this.#header(),
          ...(stored ? { kvs: [this.#kvJson(key, stored)], count: '1' } : {}),
        });
      }
      case '/v3/kv/txn': {
        const compare = (body['compare'] as Json[])[0] as Json;
        const key = unb64(compare['key']);
        const absent = !this.kv.has(key);
        const ops = (absent ? body['success'] : body['failure']) as Json[];
        const responses: Json[] = [];
        for (const op of ops) {
          const put = op['request_put'] as Json | undefined;
          const range = op['request_range'] as Json | undefined;
          if (put) {
            const lease = str(put['lease'], '0');
            if (lease !== '0' && !this.leases.has(lease)) {
              return grpcError(404, 5, 'etcdserver: requested lease not found');
            }
            this.#put(unb64(put['key']), unb64(put['value']), lease);
            responses.push({ response_put: { header: { revision: String(this.revision) } } });
          } else if (range) {
            const stored = this.kv.get(unb64(range['key']));
            responses.push({
              response_range: {
                header: { revision: String(this.revision) },
                ...(stored ? { kvs: [this.#kvJson(key, stored)], count: '1' } : {}),
              },
            });
          }
        }
        return json(200, {
          header: this.#header(),
          ...(absent ? { succeeded: true } : {}),
          responses,
        });
      }
      case '/v3/maintenance/status':
        return json(200, {
          header: this.#header(),
          version: '3.4.23',
          leader: '13510015062231200447',
        });
      case '/v3/watch':
        return this.#watch(body, signal);
      default:
        return new Response('404 page not found\n', { status: 404 });
    }
  }

  #watch(body: Json, signal: AbortSignal | undefined): Response {
    const create = body['create_request'] as Json;
    const key = unb64(create['key']);
    const start = BigInt(str(create['start_revision'], '0'));
    const noPut = Array.isArray(create['filters']) && create['filters'].includes('NOPUT');
    const encoder = new TextEncoder();
    let watcher: Watcher | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const push = (line: Json): void =>
          controller.enqueue(encoder.encode(`${JSON.stringify(line)}\n`));
        const close = (): void => {
          if (watcher) this.#watchers.delete(watcher);
          try {
            controller.error(signal?.reason ?? new DOMException('aborted', 'AbortError'));
          } catch {
            // Already closed.
          }
        };
        signal?.addEventListener('abort', close, { once: true });
        push({ result: { header: this.#header(), created: true } });
        if (start > 0n && start <= this.compacted) {
          push({
            result: {
              header: this.#header(),
              canceled: true,
              compact_revision: String(this.compacted + 1n),
            },
          });
          controller.close();
          return;
        }
        if (start > 0n) {
          for (const h of this.history) {
            if (h.key !== key || h.revision < start || (h.type === 'PUT' && noPut)) continue;
            push({
              result: {
                header: this.#header(),
                events: [
                  h.type === 'DELETE'
                    ? { type: 'DELETE', kv: { key: b64(key), mod_revision: String(h.revision) } }
                    : { kv: this.#kvJson(key, h.kv) },
                ],
              },
            });
          }
        }
        watcher = {
          key,
          noPut,
          push,
          fail: () => {
            if (watcher) this.#watchers.delete(watcher);
            controller.error(new TypeError('terminated'));
          },
        };
        this.#watchers.add(watcher);
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-type': 'application/json' } });
  }
}
