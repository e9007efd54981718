/**
 * The options of a {@link HybridLogicalClock} and how its two policies are read.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { Scheduler } from '../clock/types.js';
import type { ClockOffsetError } from '../errors.js';
import type { HlcPersistence } from './hlc.js';

/**
 * What to do with a remote timestamp more than `maxOffsetMs` ahead of physical time:
 * `'throw'` a {@link ClockOffsetError} (clock unchanged), or `'clamp'` it to
 * `physical + maxOffsetMs`, report it through `onOffsetReport`, and carry on.
 *
 * @example
 * ```ts
 * const hlc = new HybridLogicalClock({ node: 'a', offsetPolicy: 'clamp', onOffsetReport: log });
 * hlc.receive({ wallMs: Date.now() + 60_000, counter: 0, node: 'b' }); // clamped to now + 500 ms, logged
 * ```
 */
export type HlcOffsetPolicy = 'throw' | 'clamp';

/**
 * @deprecated Renamed {@link HlcOffsetPolicy}.
 * @example
 * ```ts
 * new HybridLogicalClock({ node: 'a', onOffset: 'clamp' });     // the old spelling
 * new HybridLogicalClock({ node: 'a', offsetPolicy: 'clamp' }); // the same clock, today's spelling
 * ```
 */
export type HlcOffsetMode = HlcOffsetPolicy;

/**
 * What the async methods do when the 16-bit counter is exhausted and the clock
 * may not borrow another millisecond (see `maxBorrowMs`): `'throw'` an
 * {@link HlcOverflowError}, or `'wait'` until physical time has advanced far
 * enough to borrow again. The synchronous methods always throw: they cannot wait.
 *
 * @example
 * ```ts
 * const hlc = new HybridLogicalClock({ node: 'ingest', overflowPolicy: 'wait' });
 * await hlc.nowAsync(); // waits for the next millisecond instead of throwing when the counter is spent
 * ```
 */
export type HlcOverflowPolicy = 'throw' | 'wait';

/**
 * @deprecated Renamed {@link HlcOverflowPolicy}.
 * @example
 * ```ts
 * new HybridLogicalClock({ node: 'a', onOverflow: 'wait' });     // the old spelling
 * new HybridLogicalClock({ node: 'a', overflowPolicy: 'wait' }); // the same clock, today's spelling
 * ```
 */
export type HlcOverflowMode = HlcOverflowPolicy;

/**
 * Options of {@link HybridLogicalClock}.
 *
 * @example
 * ```ts
 * const hlc = new HybridLogicalClock({ node: 'a', maxOffsetMs: 250, overflowPolicy: 'wait' });
 * hlc.maxOffsetMs; //=> 250
 * hlc.maxBorrowMs; //=> 10 (the default)
 * ```
 */
export interface HybridLogicalClockOptions {
  /** This node's id (see {@link isValidNodeId}). */
  readonly node: string;
  /**
   * The physical clock in epoch ms; the only "now" the clock reads. Floored.
   *
   * @defaultValue `Date.now`
   */
  readonly physical?: () => number;
  /**
   * Largest accepted lead of a remote over physical time (ms). `Infinity` disables the check (a
   * remote above 2^48 − 2^40, `HLC_MAX_REMOTE_WALL_MS`, is still refused: it would exhaust the
   * clock for good).
   *
   * @defaultValue `500`
   */
  readonly maxOffsetMs?: number;
  /**
   * How far past `maxOffsetMs` the clock may run ahead of physical time when its
   * counter is exhausted (ms, ≥ 0, may be `Infinity`).
   *
   * When 65 536 timestamps share one `wallMs`, the clock borrows the next
   * millisecond — issues `(wallMs + 1, 0)` — instead of failing, as long as that
   * keeps `wallMs` at most `maxOffsetMs + maxBorrowMs` ahead of physical time
   * (after a backward step of physical time: of the physical time read when the
   * clock's `wallMs` last moved, so the step does not take the room away).
   *
   * Why: a remote may legitimately put the clock `maxOffsetMs` ahead with its
   * counter at 65535; borrowing is what keeps such a stamp from stopping local
   * timestamps until physical time catches up, and any `maxBorrowMs ≥ 1` does
   * that. Each borrowed millisecond holds 65 536 timestamps, so 10 ms absorbs a
   * burst of 655 360 timestamps issued faster than physical time advances (a
   * frozen or coarse physical clock), while letting stamps lead physical time by
   * only 10 ms more than a remote already may. Past the bound the counter
   * overflows as before ({@link HlcOverflowError}, or a wait with
   * `overflowPolicy: 'wait'`). `0` borrows only up to `maxOffsetMs`.
   *
   * @defaultValue `10`
   */
  readonly maxBorrowMs?: number;
  /**
   * Handling of remotes beyond `maxOffsetMs`.
   *
   * @defaultValue `'throw'`
   */
  readonly offsetPolicy?: HlcOffsetPolicy;
  /** @deprecated Renamed `offsetPolicy`; accepted while it agrees with `offsetPolicy`. */
  readonly onOffset?: HlcOffsetPolicy;
  /** Told of every remote clamped in `'clamp'` mode. May throw to abort the call (clock unchanged). */
  readonly onOffsetReport?: (error: ClockOffsetError) => void;
  /**
   * Handling of counter exhaustion in the async methods.
   *
   * @defaultValue `'throw'`
   */
  readonly overflowPolicy?: HlcOverflowPolicy;
  /** @deprecated Renamed `overflowPolicy`; accepted while it agrees with `overflowPolicy`. */
  readonly onOverflow?: HlcOverflowPolicy;
  /**
   * Timers used by the async methods to wait out an overflow.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
  /** Keeps an upper bound on issued time so a restarted process never reissues. */
  readonly persistence?: HlcPersistence;
  /**
   * How far ahead of issued time the stored bound is placed (ms, ≥ 1).
   *
   * @defaultValue `1000`
   */
  readonly persistWindowMs?: number;
}

/**
 * Options of the async methods of {@link HybridLogicalClock}.
 *
 * @example
 * ```ts
 * await hlc.nowAsync({ signal: AbortSignal.timeout(100) });
 * ```
 */
export interface HlcWaitOptions {
  /** Cancels a wait for physical time; the call then rejects with {@link AbortError}. */
  readonly signal?: AbortSignal;
}

/**
 * Reads a policy option that also has a deprecated name; the first of `allowed`
 * is the default. Both names given with different values is an error, not a guess.
 */
/** @internal */
export function policyOption<T extends string>(
  options: HybridLogicalClockOptions,
  name: 'offsetPolicy' | 'overflowPolicy',
  deprecated: 'onOffset' | 'onOverflow',
  allowed: readonly [T, ...T[]],
): T {
  const value: unknown = options[name];
  const old: unknown = options[deprecated];
  if (value !== undefined && old !== undefined && value !== old)
    throw new InvalidArgumentError(
      `options.${deprecated}`,
      old,
      `absent or equal to options.${name} (${JSON.stringify(value)}); it is the old name of ${name}`,
    );
  const chosen = value ?? old ?? allowed[0];
  if (!allowed.includes(chosen as T))
    throw new InvalidArgumentError(
      value !== undefined ? `options.${name}` : `options.${deprecated}`,
      chosen,
      allowed.map((a) => `'${a}'`).join(' or '),
    );
  return chosen as T;
}
