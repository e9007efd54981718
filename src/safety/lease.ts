/**
 * Leases that are valid only while the clock can prove they have not expired.
 *
 * @module
 */
import { ClockUnsynchronizedError, InvalidArgumentError, LeaseInvalidError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import type { TimeReading } from '../clock/types.js';

/**
 * What a {@link Lease} needs from a clock: `now()` for the interval and
 * `before(t)`, which fails closed (and, on a `TrueClock`, runs the watchdog).
 * A `TrueClock` is one.
 *
 * @example
 * ```ts
 * // clock: a TrueClock reading 2026-01-01T00:00:00Z ± 5 ms (any { now(), before(t) } will do)
 * const lease = new Lease({ clock, expiresAt: Date.UTC(2026, 0, 1, 0, 0, 10) });
 * lease.remainingMs(); //=> 9994.99… (from the latest instant it may be now)
 * lease.isValid();     //=> true
 * ```
 */
export interface LeaseClock {
  /** The current interval; never throws. */
  now(): TimeReading;
  /** Whether `t` has definitely not arrived; throws `ClockUnsynchronizedError` when untrustworthy. */
  before(t: number): boolean;
}

/**
 * Options of {@link Lease}'s constructor.
 *
 * @example
 * ```ts
 * // clock: a TrueClock reading 2026-01-01T00:00:00Z ± 5 ms
 * const lease = new Lease({ clock, expiresAt: Date.UTC(2026, 0, 1, 0, 0, 10), marginMs: 50, token: 7n });
 * lease.remainingMs(); //=> 9944.99… (the margin comes off)
 * lease.token;         //=> 7n
 * ```
 */
export interface LeaseOptions {
  /** The clock the holder checks the lease against. */
  readonly clock: LeaseClock;
  /** When the lease ends (epoch ms), as granted. */
  readonly expiresAt: number;
  /**
   * Stop using the lease this long before `expiresAt` (ms).
   *
   * @defaultValue `0`
   */
  readonly marginMs?: number;
  /** The fencing token issued with the lease, to send with every write. */
  readonly token?: bigint;
}

/**
 * Options of {@link Lease.acquire}.
 *
 * @example
 * ```ts
 * // clock: a TrueClock reading 2026-01-01T00:00:00Z ± 5 ms
 * const lease = Lease.acquire(clock, 10_000, { marginMs: 100, token: 7n });
 * lease.expiresAt;     //=> 1767225609994.99… (10 s from the earliest instant it may be now)
 * lease.remainingMs(); //=> 9889.99… (10 s − 100 ms margin − the interval's 10 ms width)
 * ```
 */
export interface AcquireLeaseOptions {
  /**
   * Stop using the lease this long before it expires (ms).
   *
   * @defaultValue `0`
   */
  readonly marginMs?: number;
  /** The fencing token issued with the lease. */
  readonly token?: bigint;
}

/**
 * A time-bounded lease, checked against an honest clock.
 *
 * It is valid only while `now().latest < expiresAt − marginMs`: every instant
 * true time could be at is still before the (margined) expiry. A process that
 * was paused past the expiry (DDIA Fig. 8-4) wakes up to an invalid lease,
 * because the interval grew with the monotonic clock while it was stopped.
 *
 * It fails closed: on an `unsynchronized` or `disrupted` clock it is invalid.
 * Invalidity is sticky — once a lease has been seen invalid (expired, clock
 * untrustworthy, {@link Lease.invalidate}d, e.g. by a pause detector), it never
 * becomes valid again, even if a fresh sample later narrows the interval: the
 * holder was told to stop and must reacquire. So {@link Lease.remainingMs} never
 * increases.
 *
 * A lease does not make writes safe by itself: a pause can still fall between
 * the check and the write. Send {@link Lease.token} with every write and let
 * the storage reject stale tokens (`FencingGuard`, DDIA Fig. 8-5).
 *
 * @example
 * ```ts
 * const lease = Lease.acquire(clock, 10_000, { marginMs: 100, token: issuer.next() });
 * lease.assertValid();
 * await storage.write(key, value, lease.token);
 * ```
 */
export class Lease {
  /** When the lease ends (epoch ms). */
  readonly expiresAt: number;
  /** How long before `expiresAt` the holder stops using it (ms). */
  readonly marginMs: number;
  /** The fencing token issued with the lease, if any. */
  readonly token: bigint | undefined;
  readonly #clock: LeaseClock;
  readonly #limit: number;
  #invalidReason: string | undefined;
  #lastRemaining = Infinity;

  /**
   * Wraps a lease someone granted until `expiresAt`.
   *
   * @param options - The clock, the expiry, the margin and the token.
   * @throws {@link InvalidArgumentError} When `expiresAt` is not a number, `marginMs` is negative,
   *   `token` is not a bigint, or `clock` has no `now()`/`before()`.
   */
  constructor(options: LeaseOptions) {
    const clock = options?.clock;
    if (typeof clock?.now !== 'function' || typeof clock.before !== 'function') {
      throw new InvalidArgumentError(
        'clock',
        clock,
        'a clock with now() and before(), e.g. a TrueClock',
      );
    }
    if (typeof options.expiresAt !== 'number' || Number.isNaN(options.expiresAt)) {
      throw new InvalidArgumentError('expiresAt', options.expiresAt, 'an epoch-ms number');
    }
    if (options.token !== undefined && typeof options.token !== 'bigint') {
      throw new InvalidArgumentError('token', options.token, 'a bigint fencing token');
    }
    this.#clock = clock;
    this.expiresAt = options.expiresAt;
    this.marginMs = requireNonNegative('marginMs', options.marginMs ?? 0);
    this.token = options.token;
    this.#limit = this.expiresAt - this.marginMs;
  }

  /**
   * Takes a lease of `durationMs` starting now. The expiry is counted from
   * `now().earliest`, so the lease never lasts more than `durationMs` of true
   * time; it is usable for at most `durationMs − marginMs − 2ε`.
   *
   * @param clock - The holder's clock (a `TrueClock`).
   * @param durationMs - Lease length (ms, > 0).
   * @param options - Safety margin and fencing token.
   * @returns A valid lease.
   * @throws {@link ClockUnsynchronizedError} When the clock is `unsynchronized` or `disrupted`.
   * @throws {@link InvalidArgumentError} When `durationMs` is not a finite number > 0, or an option is invalid.
   * @throws {@link LeaseInvalidError} When `durationMs` does not exceed the margin plus the clock's uncertainty.
   *
   * @example
   * ```ts
   * const lease = Lease.acquire(clock, 5_000, { marginMs: 50, token: 7n });
   * ```
   */
  static acquire(clock: LeaseClock, durationMs: number, options: AcquireLeaseOptions = {}): Lease {
    if (typeof durationMs !== 'number' || !(durationMs > 0) || !Number.isFinite(durationMs)) {
      throw new InvalidArgumentError('durationMs', durationMs, 'a finite number of ms > 0');
    }
    if (typeof clock?.now !== 'function' || typeof clock.before !== 'function') {
      throw new InvalidArgumentError(
        'clock',
        clock,
        'a clock with now() and before(), e.g. a TrueClock',
      );
    }
    // before() fails closed (and runs a TrueClock's watchdog) before we trust now().
    clock.before(Infinity);
    const reading = clock.now();
    if (!trusted(reading)) {
      throw new ClockUnsynchronizedError('Lease.acquire()', reading.status, reading.uncertaintyMs);
    }
    const lease = new Lease({
      clock,
      expiresAt: reading.earliest + durationMs,
      ...(options.marginMs === undefined ? {} : { marginMs: options.marginMs }),
      ...(options.token === undefined ? {} : { token: options.token }),
    });
    if (!lease.isValid()) {
      throw new LeaseInvalidError(
        `a ${durationMs} ms lease is shorter than its margin (${lease.marginMs} ms) plus ` +
          `twice the clock uncertainty (${reading.uncertaintyMs} ms)`,
      );
    }
    return lease;
  }

  /**
   * Whether the lease can still be used: the clock is trustworthy and
   * `now().latest < expiresAt − marginMs`. Never throws.
   *
   * @returns `false` once expired, on an untrustworthy clock, or after {@link Lease.invalidate}.
   *
   * @example
   * ```ts
   * if (!lease.isValid()) await reacquire(); // stop acting as the holder first
   * ```
   */
  isValid(): boolean {
    return this.#check() === undefined;
  }

  /**
   * How long the lease can certainly still be used:
   * `expiresAt − marginMs − now().latest`, never negative, never increasing.
   *
   * @returns Milliseconds; 0 when the lease is not valid.
   *
   * @example
   * ```ts
   * if (lease.remainingMs() < 500) renewSoon();
   * ```
   */
  remainingMs(): number {
    if (this.#check() !== undefined) return 0;
    const left = Math.max(0, this.#limit - this.#clock.now().latest);
    // A new sample can narrow the interval and lower `latest`; never report more than before.
    this.#lastRemaining = Math.min(this.#lastRemaining, left);
    return this.#lastRemaining;
  }

  /**
   * Throws unless the lease is valid. Call it right before acting on the lease,
   * and still send the fencing token: a pause can follow the check.
   *
   * @throws {@link LeaseInvalidError} When the lease expired, the clock cannot prove it has not,
   *   or it was invalidated.
   *
   * @example
   * ```ts
   * lease.assertValid();
   * await db.write(row, lease.token);
   * ```
   */
  assertValid(): void {
    const why = this.#check();
    if (why !== undefined) throw new LeaseInvalidError(why);
  }

  /**
   * Ends the lease now, for good (release, or a pause detector saw the process stop).
   * Idempotent; the first reason is kept.
   *
   * @param reason - Why, shown by {@link Lease.invalidReason} and in `LeaseInvalidError`.
   *
   * @example
   * ```ts
   * lease.invalidate('released');
   * ```
   */
  invalidate(reason: string): void {
    this.#invalidReason ??= reason;
    this.#lastRemaining = 0;
  }

  /**
   * Why the lease is invalid, once it has been seen invalid; `undefined` while valid.
   * Reading it does not check the clock; call {@link Lease.isValid} for that.
   *
   * @example
   * ```ts
   * if (!lease.isValid()) log.warn(lease.invalidReason);
   * ```
   */
  get invalidReason(): string | undefined {
    return this.#invalidReason;
  }

  /** Returns why the lease is invalid (latching it), or undefined when valid. */
  #check(): string | undefined {
    if (this.#invalidReason !== undefined) return this.#invalidReason;
    let why: string | undefined;
    try {
      if (!this.#clock.before(this.#limit)) {
        const { latest } = this.#clock.now();
        why =
          `expired: the clock's latest possible time ${latest} is not before ` +
          `expiresAt − marginMs = ${this.#limit}`;
      }
    } catch (error) {
      // Fail closed on anything the clock throws.
      why =
        error instanceof ClockUnsynchronizedError
          ? `the clock is ${error.status}, so it cannot prove the lease has not expired`
          : `the clock failed (${String(error)}), so it cannot prove the lease has not expired`;
    }
    if (why !== undefined) this.invalidate(why);
    return why;
  }
}

function trusted(reading: TimeReading): boolean {
  return reading.status === 'synchronized' || reading.status === 'free-running';
}
