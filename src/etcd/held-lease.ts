/**
 * The holder's side of an etcd lease on the election key: {@link EtcdLease}
 * and its implementation, which counts the lease as held only while the clock
 * proves the local deadline (start + TTL − margin) has not passed, renews it
 * with keep-alives, watches the key for anyone else's change, and latches a
 * loss for good. The campaign that creates it is in `election.ts`.
 *
 * @module
 */
import { ClockUnsynchronizedError, InvalidArgumentError } from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import type { LeaseClock } from '../safety/lease.js';
import type { Scheduler } from '../clock/types.js';
import {
  EtcdCompactedError,
  EtcdKeepAliveError,
  EtcdLeaseExpiredError,
  EtcdLeaseLostError,
} from './errors.js';
import type { EtcdGateway } from './gateway.js';
import type { KeyValue } from './gateway-json.js';
import { abortableDelay } from './abortable-delay.js';

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
   * @throws {@link chronobound!ClockUnsynchronizedError | ClockUnsynchronizedError} When the clock cannot stand behind its bound (the lease is lost).
   * @throws {@link EtcdLeaseLostError} When the lease was lost for any other reason.
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
   * @throws {@link EtcdUnavailableError} or {@link EtcdQuorumLostError} When the revocation could not be done
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

/** What {@link HeldLease} starts from: the campaign's grant and transaction. @internal */
export interface HeldLeaseInit {
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

/**
 * {@link EtcdLease} as the campaign returns it; {@link HeldLease.activate} starts
 * its timers and watch.
 * @internal
 */
export class HeldLease implements EtcdLease {
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
      await abortableDelay(Math.min(1000, this.#intervalMs), signal).catch(() => undefined);
    }
  }
}

/**
 * `clock.now().earliest`, refusing (`ClockUnsynchronizedError`) on a clock that
 * cannot stand behind its bound: the `t₀` a lease's deadline is counted from.
 * @throws {@link chronobound!ClockUnsynchronizedError | ClockUnsynchronizedError} When the clock is unsynchronized or disrupted.
 * @internal
 */
export function startInstant(clock: LeaseClock, operation: string): number {
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
