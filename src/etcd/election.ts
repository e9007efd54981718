/**
 * Leader election on etcd v3: {@link etcdElection} and its options, the
 * campaign (wait for the key to be free, grant a lease, create the key in a
 * transaction) and reading the current leader. What the winner holds — the
 * lease with its local deadline, keep-alives and key watch — is in
 * `held-lease.ts`.
 *
 * @module
 */
import { AbortError, InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import type { LeaseClock } from '../safety/lease.js';
import { systemScheduler } from '../clock/system.js';
import type { Scheduler } from '../clock/types.js';
import { EtcdCompactedError } from './errors.js';
import { EtcdGateway, type EtcdFetch } from './gateway.js';
import { HeldLease, startInstant, type EtcdLease } from './held-lease.js';
import { abortableDelay } from './abortable-delay.js';

/**
 * Options of {@link etcdElection}.
 *
 * @example
 * ```ts
 * const election = etcdElection({
 *   endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379'],
 *   key: '/locks/reports',
 *   ttlMs: 5_000,
 *   clock,
 * });
 * election.key; //=> '/locks/reports'
 * ```
 */
export interface EtcdElectionOptions {
  /** Client URLs of the members (`http://host:2379`); calls fail over between them. */
  readonly endpoints: readonly string[];
  /** The lock key (UTF-8). Every contender for the same lock uses the same key. */
  readonly key: string;
  /**
   * Lease TTL (ms, ≥ 1000). etcd counts TTLs in whole seconds: it is rounded up,
   * and etcd may raise it to its minimum (1.5 × its election timeout, 2 s by default).
   * The lease uses the TTL etcd granted.
   */
  readonly ttlMs: number;
  /** The holder's clock (a `TrueClock`): the lease counts as held only while it can prove the TTL has not run out. */
  readonly clock: LeaseClock;
  /**
   * Stored in the key while held, so others can see who holds it.
   *
   * @defaultValue a random id
   */
  readonly value?: string;
  /**
   * Stop acting this long before the local deadline (ms). It covers the time between a check and
   * the write reaching storage, and the etcd leader's clock running fast (its lease timer is not on
   * `TrueClock`).
   *
   * @defaultValue 10 % of the TTL etcd granted
   */
  readonly marginMs?: number;
  /**
   * How often a held lease is renewed (ms).
   *
   * @defaultValue a third of the TTL etcd granted
   */
  readonly keepAliveIntervalMs?: number;
  /**
   * Timeout of one request to one member (ms). Keep-alives use at most half the keep-alive
   * interval.
   *
   * @defaultValue `5000`
   */
  readonly requestTimeoutMs?: number;
  /**
   * The Fetch API function to use.
   *
   * @defaultValue `globalThis.fetch`
   */
  readonly fetch?: EtcdFetch;
  /**
   * Timers for keep-alives and the deadline; the lease unrefs them in Node.
   *
   * @defaultValue the system's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
}

/**
 * Options of {@link EtcdElection.campaign}.
 *
 * @example
 * ```ts
 * const lease = await election.campaign({ signal: AbortSignal.timeout(30_000), value: 'worker-7' });
 * // rejects with AbortError if another contender still holds the lock after 30 s
 * ```
 */
export interface CampaignOptions {
  /** Gives up waiting (rejects with `AbortError`; a lease granted meanwhile is revoked). */
  readonly signal?: AbortSignal;
  /** Overrides the election's `value` for this campaign. */
  readonly value?: string;
}

/**
 * Who holds the lock, as etcd stores it.
 *
 * @example
 * ```ts
 * await election.leader(); // while worker-7 holds the lock
 * //=> { value: 'worker-7', token: …n, leaseId: '…', revision: …n } (token: the key's create revision)
 * await election.leader(); //=> undefined once nobody holds it
 * ```
 */
export interface EtcdLeader {
  /** The holder's value. */
  readonly value: string;
  /** Its fencing token: the key's create revision. */
  readonly token: bigint;
  /** Its etcd lease ID (decimal). */
  readonly leaseId: string;
  /** The store revision this was read at. */
  readonly revision: bigint;
}

/**
 * An election (a lock) on one etcd key. Create it with {@link etcdElection}.
 *
 * @example
 * ```ts
 * const election = etcdElection({ endpoints, key: '/locks/reports', ttlMs: 5_000, clock });
 * const lease = await election.campaign();
 * ```
 */
export interface EtcdElection {
  /** The lock key. */
  readonly key: string;
  /**
   * Waits until this contender holds the key, then returns its lease, renewed in
   * the background until it is lost or resigned.
   *
   * @throws {@link chronobound!ClockUnsynchronizedError | ClockUnsynchronizedError} When the clock cannot stand behind its bound.
   * @throws {@link EtcdUnavailableError} or {@link EtcdQuorumLostError} When etcd cannot decide (nothing is retried silently).
   * @throws {@link EtcdLeaseLostError} When the grant took longer than the TTL to confirm.
   * @throws {@link chronobound!AbortError | AbortError} When `signal` aborts.
   */
  campaign(options?: CampaignOptions): Promise<EtcdLease>;
  /**
   * Reads who holds the key now (a linearizable read), or at a past `revision`.
   *
   * @throws {@link EtcdCompactedError} When `revision` has been compacted.
   * @throws {@link EtcdUnavailableError} or {@link EtcdQuorumLostError} When etcd cannot answer.
   */
  leader(options?: {
    readonly revision?: bigint;
    readonly signal?: AbortSignal;
  }): Promise<EtcdLeader | undefined>;
  /** Resigns every lease this election still holds. */
  close(): Promise<void>;
}

/**
 * Leader election and leases on etcd v3, timed by the holder's own honest clock.
 *
 * **Protocol.** etcd's JSON gateway (`POST /v3/...` on the client port, etcd ≥ 3.4),
 * over `fetch`: no dependency, and it runs wherever `fetch` does. gRPC would need
 * `@grpc/grpc-js` and the etcd protos (a large dependency tree for the five calls
 * used here), and etcd's native streaming keep-alive buys nothing when each
 * renewal is timed locally anyway. The calls: `lease/grant`, `kv/txn`,
 * `lease/keepalive`, `lease/revoke`, `kv/range`, `watch`.
 *
 * **Campaign.** Wait until the key is absent (a watch for its deletion, re-checked
 * with a linearizable read at least once per TTL); take `t₀ = clock.now().earliest`;
 * grant a lease; create the key attached to it in a transaction that succeeds only
 * if the key does not exist (`create_revision == 0`). The winner's fencing token is
 * the key's create revision, which is larger for every later holder.
 *
 * **Holding.** The lease counts as held only while `clock.now().latest <
 * t₀ + TTL − margin`. Because `t₀` was taken before the request left and etcd
 * starts its timer when it receives it, the holder's deadline comes before etcd's
 * expiry, so a paused or slow holder stops acting before anyone else can be granted
 * the key. Each successful keep-alive moves `t₀` to the `earliest` taken before that
 * keep-alive left. On an `unsynchronized` or `disrupted` clock the lease is lost
 * (fail closed, `ClockUnsynchronizedError`). Keep-alive failures are reported
 * (`onKeepAliveError`) and retried only up to the deadline; past it the lease is
 * lost for good, never revived by a late success.
 *
 * @param options - Endpoints, key, TTL, clock, and tuning.
 * @returns The election.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an option is missing or out of range.
 *
 * @example
 * ```ts
 * import { TrueClock } from 'chronobound';
 * import { etcdElection } from 'chronobound/etcd';
 *
 * const election = etcdElection({ endpoints, key: '/locks/reports', ttlMs: 5_000, clock });
 * const lease = await election.campaign();
 * lease.assertHeld();
 * await storage.write(row, lease.token); // storage rejects tokens older than one it saw
 * await lease.resign();
 * ```
 */
export function etcdElection(options: EtcdElectionOptions): EtcdElection {
  return new Election(options);
}

const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

class Election implements EtcdElection {
  readonly key: string;
  readonly #gateway: EtcdGateway;
  readonly #clock: LeaseClock;
  readonly #ttlSeconds: number;
  readonly #value: string;
  readonly #marginMs: number | undefined;
  readonly #keepAliveIntervalMs: number | undefined;
  readonly #scheduler: Scheduler;
  readonly #held = new Set<HeldLease>();

  constructor(options: EtcdElectionOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', options, '{ endpoints, key, ttlMs, clock }');
    }
    const { clock, key, ttlMs } = options;
    if (typeof clock?.now !== 'function' || typeof clock.before !== 'function') {
      throw new InvalidArgumentError(
        'clock',
        clock,
        'a clock with now() and before(), e.g. a TrueClock',
      );
    }
    if (typeof key !== 'string' || key === '') {
      throw new InvalidArgumentError('key', key, 'a non-empty string');
    }
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1000) {
      throw new InvalidArgumentError(
        'ttlMs',
        ttlMs,
        'a finite number of ms ≥ 1000 (etcd TTLs are whole seconds)',
      );
    }
    if (options.value !== undefined && typeof options.value !== 'string') {
      throw new InvalidArgumentError('value', options.value, 'a string');
    }
    if (options.marginMs !== undefined) requireNonNegative('marginMs', options.marginMs);
    if (options.keepAliveIntervalMs !== undefined && !(options.keepAliveIntervalMs > 0)) {
      throw new InvalidArgumentError(
        'keepAliveIntervalMs',
        options.keepAliveIntervalMs,
        'a number of ms > 0',
      );
    }
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (typeof requestTimeoutMs !== 'number' || !(requestTimeoutMs > 0)) {
      throw new InvalidArgumentError('requestTimeoutMs', requestTimeoutMs, 'a number of ms > 0');
    }
    this.#gateway = new EtcdGateway({
      endpoints: options.endpoints,
      fetch: options.fetch,
      requestTimeoutMs,
    });
    this.key = key;
    this.#clock = clock;
    this.#ttlSeconds = Math.ceil(ttlMs / 1000);
    this.#value = options.value ?? randomId();
    this.#marginMs = options.marginMs;
    this.#keepAliveIntervalMs = options.keepAliveIntervalMs;
    this.#scheduler = options.scheduler ?? systemScheduler;
  }

  async campaign(options: CampaignOptions = {}): Promise<EtcdLease> {
    const { signal } = options;
    const value = options.value ?? this.#value;
    for (;;) {
      if (signal?.aborted) throw new AbortError('etcd campaign', signal.reason);
      const current = await this.#gateway.range(this.key, { signal });
      if (current.kv !== undefined) {
        await this.#waitForDeletion(current.revision + 1n, signal);
        continue;
      }
      // t₀ before the grant leaves: etcd's timer starts later, so our deadline comes first.
      const start = startInstant(this.#clock, 'EtcdElection.campaign()');
      const grant = await this.#gateway.grant(this.#ttlSeconds, { signal });
      let txn;
      try {
        txn = await this.#gateway.createIfAbsent(this.key, value, grant.id, { signal });
      } catch (error) {
        // It may have committed (a timeout is not a failure): revoking deletes the key if so.
        this.#revokeQuietly(grant.id);
        throw error;
      }
      // A retried transaction that had committed the first time finds our own lease on the key.
      const won = txn.kv !== undefined && (txn.succeeded || txn.kv.lease === grant.id);
      if (!won || txn.kv === undefined) {
        this.#revokeQuietly(grant.id);
        if (txn.kv !== undefined) await this.#waitForDeletion(txn.revision + 1n, signal);
        continue;
      }
      const lease = new HeldLease({
        gateway: this.#gateway,
        clock: this.#clock,
        scheduler: this.#scheduler,
        key: this.key,
        value,
        kv: txn.kv,
        leaseId: grant.id,
        start,
        ttlMs: grant.ttlSeconds * 1000,
        marginMs: this.#marginMs,
        keepAliveIntervalMs: this.#keepAliveIntervalMs,
        onGone: (l) => this.#held.delete(l),
      });
      const lost = lease.activate();
      if (lost !== undefined) {
        // Confirmed too late to use (a slow network or a pause): give it back.
        await lease.resign().catch(() => undefined);
        throw lost;
      }
      this.#held.add(lease);
      return lease;
    }
  }

  async leader(
    options: { readonly revision?: bigint; readonly signal?: AbortSignal } = {},
  ): Promise<EtcdLeader | undefined> {
    if (
      options.revision !== undefined &&
      (typeof options.revision !== 'bigint' || options.revision < 1n)
    ) {
      throw new InvalidArgumentError('revision', options.revision, 'a bigint ≥ 1n');
    }
    const read = await this.#gateway.range(this.key, {
      signal: options.signal,
      ...(options.revision === undefined ? {} : { revision: options.revision }),
    });
    if (read.kv === undefined) return undefined;
    return {
      value: read.kv.value,
      token: read.kv.createRevision,
      leaseId: read.kv.lease,
      revision: read.revision,
    };
  }

  async close(): Promise<void> {
    const leases = [...this.#held];
    this.#held.clear();
    await Promise.allSettled(leases.map((l) => l.resign()));
  }

  /**
   * Resolves when the key was deleted at or after `fromRevision`, or when it is
   * time to look again (once per TTL, after a compaction, or when the watch
   * broke); the caller then re-reads with a linearizable range, which is what
   * surfaces a lost quorum.
   */
  async #waitForDeletion(fromRevision: bigint, signal: AbortSignal | undefined): Promise<void> {
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const recheck = setTimeout(() => controller.abort(), this.#ttlSeconds * 1000);
    let pauseBeforeRetry = false;
    try {
      for await (const response of this.#gateway.watch(this.key, fromRevision, {
        signal: controller.signal,
        noPut: true,
      })) {
        if (response.events.some((e) => e.type === 'DELETE')) return;
      }
    } catch (error) {
      if (signal?.aborted) throw new AbortError('etcd campaign', signal.reason);
      // Recheck time, a compaction (read the current state instead) or a broken watch.
      pauseBeforeRetry = !controller.signal.aborted && !(error instanceof EtcdCompactedError);
    } finally {
      clearTimeout(recheck);
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
    }
    if (pauseBeforeRetry) await abortableDelay(Math.min(1000, this.#ttlSeconds * 100), signal);
  }

  #revokeQuietly(id: string): void {
    this.#gateway.revoke(id, { timeoutMs: this.#gateway.requestTimeoutMs }).catch(() => undefined);
  }
}

function randomId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
