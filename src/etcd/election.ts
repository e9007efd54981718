/**
 * Leader election and leases on etcd v3, with the holder's clock doing the timing.
 *
 * @module
 */
import { AbortError, ClockUnsynchronizedError, InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { unrefTimer } from '../_internals/timers.js';
import type { LeaseClock } from '../safety/lease.js';
import { systemScheduler } from '../clock/system.js';
import type { Scheduler } from '../clock/types.js';
import {
  EtcdCompactedError,
  EtcdKeepAliveError,
  EtcdLeaseExpiredError,
  EtcdLeaseLostError,
} from './errors.js';
import { EtcdGateway, type EtcdFetch, type KeyValue } from './gateway.js';

/**
 * Options of {@link etcdElection}.
 *
 * @example
 * ```ts
 * const options: EtcdElectionOptions = {
 *   endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379'],
 *   key: '/locks/reports',
 *   ttlMs: 5_000,
 *   clock,
 * };
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
  /** Stored in the key while held, so others can see who holds it; default a random id. */
  readonly value?: string;
  /**
   * Stop acting this long before the local deadline (ms); default 10 % of the TTL.
   * It covers the time between a check and the write reaching storage, and the
   * etcd leader's clock running fast (its lease timer is not on `TrueClock`).
   */
  readonly marginMs?: number;
  /** How often a held lease is renewed (ms); default a third of the TTL. */
  readonly keepAliveIntervalMs?: number;
  /** Timeout of one request to one member (ms); default 5000. Keep-alives use at most half the keep-alive interval. */
  readonly requestTimeoutMs?: number;
  /** The Fetch API function to use; default `globalThis.fetch`. */
  readonly fetch?: EtcdFetch;
  /** Timers for keep-alives and the deadline; default the system's (unref'd in Node). */
  readonly scheduler?: Scheduler;
}

/**
 * Options of {@link EtcdElection.campaign}.
 *
 * @example
 * ```ts
 * const options: CampaignOptions = { signal: AbortSignal.timeout(30_000) };
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
 * const leader: EtcdLeader | undefined = await election.leader();
 * if (leader) console.log(`${leader.value} holds it with token ${leader.token}`);
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
 * A lease held on the election's key. Act on it only while {@link EtcdLease.isHeld}
 * (or right after {@link EtcdLease.assertHeld}), and send {@link EtcdLease.token}
 * with every write so that storage can fence off a holder that was paused after
 * its check.
 *
 * @example
 * ```ts
 * const lease = await election.campaign();
 * lease.onLost((e) => console.warn('lost the lock:', e.message));
 * lease.assertHeld();
 * await db.query('UPDATE t SET v = $1, fence = $2 WHERE id = 1 AND fence <= $2', [v, lease.token]);
 * await lease.resign();
 * ```
 */
export interface EtcdLease {
  /** The fencing token: the lock key's create revision, which increases with every new holder. */
  readonly token: bigint;
  /** The lock key. */
  readonly key: string;
  /** The value stored in the key. */
  readonly value: string;
  /** The etcd lease ID (decimal; int64 does not fit a JavaScript number). */
  readonly leaseId: string;
  /** The TTL etcd granted (ms). */
  readonly ttlMs: number;
  /** The safety margin (ms). */
  readonly marginMs: number;
  /**
   * The local bound on etcd's expiry (epoch ms): the clock's `earliest` before the
   * last successful grant or keep-alive left, plus the TTL. Grows with each renewal.
   */
  readonly expiresAt: number;
  /** Keep-alives that succeeded since the grant. */
  readonly renewals: number;
  /** Why the lease was lost (`EtcdLeaseLostError` or `ClockUnsynchronizedError`); `undefined` while not known to be lost. */
  readonly lostError: Error | undefined;
  /**
   * Whether the lease can be used: the clock is trustworthy and `now().latest`
   * is before `expiresAt − marginMs`, and nothing reported a loss. Never throws.
   * Once false, false for good.
   */
  isHeld(): boolean;
  /**
   * Throws unless the lease is held. Call it right before acting, and still send the token.
   *
   * @throws {ClockUnsynchronizedError} When the clock cannot stand behind its bound (the lease is lost).
   * @throws {EtcdLeaseLostError} When the lease was lost for any other reason.
   */
  assertHeld(): void;
  /** How long the lease is certainly held without a further renewal (ms, 0 once lost). */
  remainingMs(): number;
  /** Ends the lease for good (e.g. a pause detector saw the process stop) and revokes it in etcd. */
  invalidate(reason: string): void;
  /**
   * Stops holding (at once, locally) and revokes the lease, which deletes the key
   * so that the next contender takes over without waiting for the TTL.
   *
   * @throws {EtcdUnavailableError | EtcdQuorumLostError} When the revocation could not be done
   *   (the lease then expires by itself; locally it is released either way).
   */
  resign(): Promise<void>;
  /** Calls `listener` once when the lease is lost (on a microtask if it already is). Returns an unsubscribe function. */
  onLost(listener: (error: Error) => void): () => void;
  /** Calls `listener` on every failed keep-alive while the lease is still held. Returns an unsubscribe function. */
  onKeepAliveError(listener: (error: EtcdKeepAliveError) => void): () => void;
  /** Same as {@link EtcdLease.resign}. */
  [Symbol.asyncDispose](): Promise<void>;
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
   * @throws {ClockUnsynchronizedError} When the clock cannot stand behind its bound.
   * @throws {EtcdUnavailableError | EtcdQuorumLostError} When etcd cannot decide (nothing is retried silently).
   * @throws {EtcdLeaseLostError} When the grant took longer than the TTL to confirm.
   * @throws {AbortError} When `signal` aborts.
   */
  campaign(options?: CampaignOptions): Promise<EtcdLease>;
  /**
   * Reads who holds the key now (a linearizable read), or at a past `revision`.
   *
   * @throws {EtcdCompactedError} When `revision` has been compacted.
   * @throws {EtcdUnavailableError | EtcdQuorumLostError} When etcd cannot answer.
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
 * @throws {InvalidArgumentError} When an option is missing or out of range.
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
    if (pauseBeforeRetry) await delay(Math.min(1000, this.#ttlSeconds * 100), signal);
  }

  #revokeQuietly(id: string): void {
    this.#gateway.revoke(id, { timeoutMs: this.#gateway.requestTimeoutMs }).catch(() => undefined);
  }
}

interface HeldLeaseInit {
  readonly gateway: EtcdGateway;
  readonly clock: LeaseClock;
  readonly scheduler: Scheduler;
  readonly key: string;
  readonly value: string;
  readonly kv: KeyValue;
  readonly leaseId: string;
  readonly start: number;
  readonly ttlMs: number;
  readonly marginMs: number | undefined;
  readonly keepAliveIntervalMs: number | undefined;
  readonly onGone: (lease: HeldLease) => void;
}

class HeldLease implements EtcdLease {
  readonly token: bigint;
  readonly key: string;
  readonly value: string;
  readonly leaseId: string;
  readonly ttlMs: number;
  readonly marginMs: number;
  readonly #gateway: EtcdGateway;
  readonly #clock: LeaseClock;
  readonly #scheduler: Scheduler;
  readonly #intervalMs: number;
  readonly #keepAliveTimeoutMs: number;
  readonly #onGone: (lease: HeldLease) => void;
  readonly #lostListeners = new Set<(error: Error) => void>();
  readonly #keepAliveListeners = new Set<(error: EtcdKeepAliveError) => void>();
  readonly #watch = new AbortController();
  #start: number;
  #renewals = 0;
  #lost: Error | undefined;
  #lastKeepAliveError: EtcdKeepAliveError | undefined;
  #keepAliveInFlight = false;
  #keepAliveTimer: unknown;
  #deadlineTimer: unknown;
  #revocation: Promise<void> | undefined;
  #revoked = false;

  constructor(init: HeldLeaseInit) {
    this.#gateway = init.gateway;
    this.#clock = init.clock;
    this.#scheduler = init.scheduler;
    this.#onGone = init.onGone;
    this.key = init.key;
    this.value = init.value;
    this.token = init.kv.createRevision;
    this.leaseId = init.leaseId;
    this.ttlMs = init.ttlMs;
    this.marginMs = init.marginMs ?? init.ttlMs / 10;
    this.#start = init.start;
    this.#intervalMs = init.keepAliveIntervalMs ?? init.ttlMs / 3;
    this.#keepAliveTimeoutMs = Math.min(
      init.gateway.requestTimeoutMs,
      Math.max(100, this.#intervalMs / 2),
    );
  }

  get expiresAt(): number {
    return this.#start + this.ttlMs;
  }

  get renewals(): number {
    return this.#renewals;
  }

  get lostError(): Error | undefined {
    return this.#lost;
  }

  /** Starts keep-alives, the deadline timer and the key watch; returns the loss if already lost. */
  activate(): Error | undefined {
    const lost = this.#check();
    if (lost !== undefined) return lost;
    this.#armDeadline();
    this.#scheduleKeepAlive(this.#intervalMs);
    void this.#watchKey();
    return undefined;
  }

  isHeld(): boolean {
    return this.#check() === undefined;
  }

  assertHeld(): void {
    const lost = this.#check();
    if (lost !== undefined) throw lost;
  }

  remainingMs(): number {
    if (this.#check() !== undefined) return 0;
    return Math.max(0, this.expiresAt - this.marginMs - this.#clock.now().latest);
  }

  invalidate(reason: string): void {
    this.#lose(new EtcdLeaseLostError(this.key, this.token, 'invalidated', String(reason)));
  }

  async resign(): Promise<void> {
    this.#lose(
      new EtcdLeaseLostError(this.key, this.token, 'resigned', 'resign() was called'),
      false,
    );
    await this.#revoke();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign();
  }

  onLost(listener: (error: Error) => void): () => void {
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError('listener', listener, 'a function');
    }
    const lost = this.#lost;
    if (lost !== undefined) {
      queueMicrotask(() => safeCall(listener, lost));
      return () => undefined;
    }
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  onKeepAliveError(listener: (error: EtcdKeepAliveError) => void): () => void {
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError('listener', listener, 'a function');
    }
    this.#keepAliveListeners.add(listener);
    return () => this.#keepAliveListeners.delete(listener);
  }

  /** The loss (latching it), or undefined while held. */
  #check(): Error | undefined {
    if (this.#lost !== undefined) return this.#lost;
    const limit = this.expiresAt - this.marginMs;
    let held: boolean;
    try {
      held = this.#clock.before(limit);
    } catch (error) {
      return this.#lose(
        error instanceof ClockUnsynchronizedError
          ? error
          : new ClockUnsynchronizedError('etcd lease check', 'failing', Infinity, String(error)),
      );
    }
    if (held) return undefined;
    const detail =
      `the clock's latest possible time ${this.#clock.now().latest} is not before ` +
      `start + TTL − margin = ${limit}`;
    const failed = this.#lastKeepAliveError;
    if (failed !== undefined) {
      return this.#lose(
        new EtcdLeaseLostError(this.key, this.token, 'keepalive-failed', detail, { cause: failed }),
      );
    }
    if (this.#keepAliveInFlight) {
      return this.#lose(
        new EtcdLeaseLostError(
          this.key,
          this.token,
          'keepalive-failed',
          `${detail}; a keep-alive sent before it had not come back`,
        ),
      );
    }
    return this.#lose(new EtcdLeaseLostError(this.key, this.token, 'expired', detail));
  }

  /** Latches the loss, stops everything, tells the listeners, and (by default) revokes. */
  #lose(error: Error, revoke = true): Error {
    if (this.#lost !== undefined) return this.#lost;
    this.#lost = error;
    this.#scheduler.clearTimeout(this.#keepAliveTimer);
    this.#scheduler.clearTimeout(this.#deadlineTimer);
    this.#watch.abort();
    this.#onGone(this);
    const listeners = [...this.#lostListeners];
    this.#lostListeners.clear();
    this.#keepAliveListeners.clear();
    for (const listener of listeners) safeCall(listener, error);
    const gone = error instanceof EtcdLeaseLostError && error.reason === 'lease-expired';
    if (gone) this.#revoked = true;
    // Give the key back so the next contender need not wait for the TTL (best effort).
    if (revoke && !gone) void this.#revoke().catch(() => undefined);
    return error;
  }

  #revoke(): Promise<void> {
    if (this.#revoked) return Promise.resolve();
    this.#revocation ??= this.#gateway
      .revoke(this.leaseId)
      .catch((error: unknown) => {
        if (!(error instanceof EtcdLeaseExpiredError)) throw error;
      })
      .then(
        () => {
          this.#revoked = true;
        },
        (error: unknown) => {
          this.#revocation = undefined; // a later resign() tries again
          throw error;
        },
      );
    return this.#revocation;
  }

  #armDeadline(): void {
    this.#scheduler.clearTimeout(this.#deadlineTimer);
    const limit = this.expiresAt - this.marginMs;
    const wait = Math.max(0, limit - this.#clock.now().latest) + 1;
    this.#deadlineTimer = this.#scheduler.setTimeout(() => {
      if (this.#check() === undefined) this.#armDeadline();
    }, wait);
    unrefTimer(this.#deadlineTimer);
  }

  #scheduleKeepAlive(ms: number): void {
    if (this.#lost !== undefined) return;
    this.#keepAliveTimer = this.#scheduler.setTimeout(() => void this.#keepAlive(), ms);
    unrefTimer(this.#keepAliveTimer);
  }

  async #keepAlive(): Promise<void> {
    if (this.#check() !== undefined) return;
    let start: number;
    try {
      start = startInstant(this.#clock, 'etcd keep-alive');
    } catch (error) {
      this.#lose(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    let ttlSeconds: number;
    this.#keepAliveInFlight = true;
    try {
      ttlSeconds = await this.#gateway.keepAlive(this.leaseId, {
        timeoutMs: this.#keepAliveTimeoutMs,
      });
    } catch (error) {
      this.#keepAliveInFlight = false;
      if (this.#lost !== undefined) return;
      if (error instanceof EtcdLeaseExpiredError) {
        this.#lose(
          new EtcdLeaseLostError(this.key, this.token, 'lease-expired', error.message, {
            cause: error,
          }),
        );
        return;
      }
      const remaining = this.remainingMs();
      if (this.#lost !== undefined) return;
      const failure = new EtcdKeepAliveError(this.leaseId, remaining, error);
      this.#lastKeepAliveError = failure;
      for (const listener of [...this.#keepAliveListeners]) safeCall(listener, failure);
      this.#scheduleKeepAlive(Math.min(this.#intervalMs, Math.max(50, this.ttlMs / 20)));
      return;
    }
    this.#keepAliveInFlight = false;
    // A success that arrives after the deadline revives nothing: loss is final.
    if (this.#check() !== undefined) return;
    this.#start = Math.max(this.#start, start + Math.min(0, ttlSeconds * 1000 - this.ttlMs));
    this.#renewals++;
    this.#lastKeepAliveError = undefined;
    this.#armDeadline();
    this.#scheduleKeepAlive(this.#intervalMs);
  }

  /** Watches the key for deletion or replacement by anyone else. */
  async #watchKey(): Promise<void> {
    const signal = this.#watch.signal;
    let from = this.token + 1n;
    while (!signal.aborted) {
      try {
        for await (const response of this.#gateway.watch(this.key, from, { signal })) {
          const event = response.events[0];
          if (event === undefined) continue;
          this.#lose(
            new EtcdLeaseLostError(
              this.key,
              this.token,
              'key-changed',
              event.type === 'DELETE'
                ? `the key was deleted at revision ${event.kv.modRevision}`
                : `the key was rewritten at revision ${event.kv.modRevision}`,
            ),
          );
          return;
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof EtcdCompactedError) {
          // The history since the grant is gone; the present state says whether it is still ours.
          try {
            const now = await this.#gateway.range(this.key, { signal });
            if (now.kv === undefined || now.kv.createRevision !== this.token) {
              this.#lose(
                new EtcdLeaseLostError(
                  this.key,
                  this.token,
                  'key-changed',
                  now.kv === undefined
                    ? 'the key is gone'
                    : `the key now has token ${now.kv.createRevision}`,
                ),
              );
              return;
            }
            from = now.revision + 1n;
            continue;
          } catch {
            // Fall through to the pause; keep-alives and the clock decide meanwhile.
          }
        }
      }
      await delay(Math.min(1000, this.#intervalMs), signal).catch(() => undefined);
    }
  }
}

/**
 * `clock.now().earliest`, refusing (`ClockUnsynchronizedError`) on a clock that
 * cannot stand behind its bound.
 */
function startInstant(clock: LeaseClock, operation: string): number {
  clock.before(Infinity); // throws on an unsynchronized or disrupted clock (and runs a TrueClock's watchdog)
  const reading = clock.now();
  if (reading.status !== 'synchronized' && reading.status !== 'free-running') {
    throw new ClockUnsynchronizedError(operation, reading.status, reading.uncertaintyMs);
  }
  return reading.earliest;
}

function safeCall<T>(listener: (value: T) => void, value: T): void {
  try {
    listener(value);
  } catch {
    // A listener's failure must not stop the others or the lease's bookkeeping.
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError('etcd campaign', signal.reason));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortError('etcd campaign', signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function randomId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
