/**
 * Hybrid logical clocks (Kulkarni, Demirbas et al. 2014, "Logical Physical
 * Clocks"): timestamps that stay within the clock offset of physical time yet
 * respect causality like a Lamport clock.
 *
 * State is the pair (l, c) of the last timestamp issued or observed. Every
 * timestamp issued afterwards is strictly greater in `(wallMs, counter)`.
 *
 * @module
 */
import { AbortError, ClockOffsetError, HlcOverflowError, InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { systemScheduler } from '../sources/system.js';
import type { Scheduler } from '../sources/types.js';
import { validateNodeId } from './node-id.js';

/**
 * A hybrid logical timestamp, ordered by `(wallMs, counter, node)` (see
 * {@link compareHlc}).
 *
 * @example
 * ```ts
 * const ts: HlcTimestamp = { wallMs: 1_700_000_000_000, counter: 0, node: 'a' };
 * ```
 */
export interface HlcTimestamp {
  /** Logical wall time: integer epoch milliseconds in [0, 2^48). */
  readonly wallMs: number;
  /** Tie-breaking counter within one `wallMs`: integer in [0, 65535]. */
  readonly counter: number;
  /** The node that issued it. */
  readonly node: string;
}

/**
 * A persisted bound: no timestamp issued before it was stored has `wallMs ≥ this.wallMs`.
 *
 * @example
 * ```ts
 * const upper: HlcUpperBound = { wallMs: 1_700_000_001_000 };
 * ```
 */
export interface HlcUpperBound {
  /** Integer epoch milliseconds, strictly above every issued `wallMs`. */
  readonly wallMs: number;
}

/**
 * Where a {@link HybridLogicalClock} keeps its upper bound across restarts.
 * Both calls are synchronous: the clock must not issue a timestamp before the
 * bound covering it is durable. `store` should be atomic (all or nothing).
 *
 * @example
 * ```ts
 * let saved: HlcUpperBound | undefined;
 * const persistence: HlcPersistence = { load: () => saved, store: (u) => { saved = u; } };
 * ```
 */
export interface HlcPersistence {
  /** Returns the last stored bound, or `undefined` if none was ever stored. */
  load(): HlcUpperBound | undefined;
  /** Durably stores a new bound (larger than any previous one). */
  store(upper: HlcUpperBound): void;
}

/**
 * What to do with a remote timestamp more than `maxOffsetMs` ahead of physical time:
 * `'throw'` a {@link ClockOffsetError} (clock unchanged), or `'clamp'` it to
 * `physical + maxOffsetMs`, report it through `onOffsetReport`, and carry on.
 *
 * @example
 * ```ts
 * const mode: HlcOffsetMode = 'clamp';
 * ```
 */
export type HlcOffsetMode = 'throw' | 'clamp';

/**
 * What the async methods do when the 16-bit counter is exhausted: `'throw'` an
 * {@link HlcOverflowError}, or `'wait'` until physical time passes the clock's
 * wall time. The synchronous methods always throw: they cannot wait.
 *
 * @example
 * ```ts
 * const mode: HlcOverflowMode = 'wait';
 * ```
 */
export type HlcOverflowMode = 'throw' | 'wait';

/**
 * Options of {@link HybridLogicalClock}.
 *
 * @example
 * ```ts
 * const options: HybridLogicalClockOptions = { node: 'a', maxOffsetMs: 250, onOverflow: 'wait' };
 * ```
 */
export interface HybridLogicalClockOptions {
  /** This node's id (see {@link isValidNodeId}). */
  readonly node: string;
  /** The physical clock in epoch ms; the only "now" the clock reads. Floored. Default `Date.now`. */
  readonly physical?: () => number;
  /** Largest accepted lead of a remote over physical time (ms). Default 500; `Infinity` disables the check. */
  readonly maxOffsetMs?: number;
  /** Handling of remotes beyond `maxOffsetMs`. Default `'throw'`. */
  readonly onOffset?: HlcOffsetMode;
  /** Told of every remote clamped in `'clamp'` mode. May throw to abort the call (clock unchanged). */
  readonly onOffsetReport?: (error: ClockOffsetError) => void;
  /** Handling of counter exhaustion in the async methods. Default `'throw'`. */
  readonly onOverflow?: HlcOverflowMode;
  /** Timers used by the async methods to wait out an overflow. Default: the platform's. */
  readonly scheduler?: Scheduler;
  /** Keeps an upper bound on issued time so a restarted process never reissues. */
  readonly persistence?: HlcPersistence;
  /** How far ahead of issued time the stored bound is placed (ms, ≥ 1). Default 1000. */
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
 * Largest counter value (16 bits).
 *
 * @example
 * ```ts
 * if (hlc.peek()?.counter === HLC_MAX_COUNTER) console.warn('counter exhausted for this millisecond');
 * ```
 */
export const HLC_MAX_COUNTER = 0xffff;

/**
 * Largest `wallMs` (48 bits, the year 10889).
 *
 * @example
 * ```ts
 * ts.wallMs <= HLC_MAX_WALL_MS; // always true for a valid timestamp
 * ```
 */
export const HLC_MAX_WALL_MS: number = 2 ** 48 - 1;

const defaultPhysical = (): number => Date.now();

/**
 * A hybrid logical clock for one node.
 *
 * Guarantees, per instance: every timestamp it issues is strictly greater than
 * every timestamp it issued or was given before (`receive`, `receiveMany`,
 * `update`); `wallMs ≥ floor(physical())` at issue; physical time going
 * backwards never makes it go backwards. With `persistence`, the guarantee
 * extends across restarts.
 *
 * @example
 * ```ts
 * const a = new HybridLogicalClock({ node: 'a' });
 * const b = new HybridLogicalClock({ node: 'b' });
 * const sent = a.now();          // send event
 * const got = b.receive(sent);   // receive event: compareHlc(sent, got) < 0
 * ```
 */
export class HybridLogicalClock {
  /** This node's id. */
  readonly node: string;
  /** Largest accepted lead of a remote over physical time (ms). */
  readonly maxOffsetMs: number;
  readonly #physical: () => number;
  readonly #clamp: boolean;
  readonly #report: ((error: ClockOffsetError) => void) | undefined;
  readonly #wait: boolean;
  readonly #scheduler: Scheduler;
  readonly #persistence: HlcPersistence | undefined;
  readonly #window: number;
  /** Wall part of the last timestamp issued or observed; −1 before any. */
  #l = -1;
  /** Counter part of the last timestamp issued or observed. */
  #c = 0;
  /** The stored bound: issuing at `wallMs ≥ #upper` first stores a new one. */
  #upper: number;

  /**
   * Creates the clock; with `persistence`, loads the stored bound and starts above it.
   *
   * @throws {@link InvalidArgumentError} naming the option that is out of range, or
   *   `persistence.load()` if it returned something other than `undefined` or `{ wallMs }`
   *   with an integer in [0, 2^48).
   */
  constructor(options: HybridLogicalClockOptions) {
    this.node = validateNodeId(options.node, 'options.node');
    const physical = options.physical ?? defaultPhysical;
    if (typeof physical !== 'function')
      throw new InvalidArgumentError('options.physical', physical, 'a function returning epoch ms');
    this.#physical = physical;
    this.maxOffsetMs = requireNonNegative('options.maxOffsetMs', options.maxOffsetMs ?? 500, true);
    const onOffset = options.onOffset ?? 'throw';
    if (onOffset !== 'throw' && onOffset !== 'clamp')
      throw new InvalidArgumentError('options.onOffset', onOffset, "'throw' or 'clamp'");
    this.#clamp = onOffset === 'clamp';
    this.#report = options.onOffsetReport;
    const onOverflow = options.onOverflow ?? 'throw';
    if (onOverflow !== 'throw' && onOverflow !== 'wait')
      throw new InvalidArgumentError('options.onOverflow', onOverflow, "'throw' or 'wait'");
    this.#wait = onOverflow === 'wait';
    this.#scheduler = options.scheduler ?? systemScheduler;
    const window = options.persistWindowMs ?? 1000;
    if (typeof window !== 'number' || !(window >= 1) || !Number.isFinite(window))
      throw new InvalidArgumentError('options.persistWindowMs', window, 'a finite number ≥ 1');
    this.#window = Math.ceil(window);

    const persistence = options.persistence;
    this.#persistence = persistence;
    this.#upper = Infinity;
    if (persistence !== undefined) {
      if (typeof persistence.load !== 'function' || typeof persistence.store !== 'function')
        throw new InvalidArgumentError(
          'options.persistence',
          persistence,
          'an object with load() and store()',
        );
      const loaded = persistence.load();
      if (loaded === undefined) {
        this.#upper = 0;
      } else {
        const w = (loaded as { wallMs?: unknown } | null)?.wallMs;
        if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > HLC_MAX_WALL_MS)
          throw new InvalidArgumentError(
            'persistence.load()',
            loaded,
            'undefined or { wallMs } with an integer wallMs in [0, 2^48)',
          );
        // Every timestamp issued before the restart has wallMs < w.
        this.#l = w;
        this.#c = 0;
        this.#upper = w;
      }
    }
  }

  /**
   * Issues a timestamp for a local or send event.
   *
   * @throws {@link HlcOverflowError} if 65 536 timestamps were issued within one
   *   `wallMs` that physical time has not yet passed (clock unchanged; see {@link nowAsync}).
   * @throws {@link InvalidArgumentError} naming `physical()` if it returned NaN, a negative number or one ≥ 2^48.
   * @throws whatever `persistence.store` throws (clock unchanged, nothing issued).
   * @example
   * ```ts
   * send({ payload, stamp: formatHlc(hlc.now()) });
   * ```
   */
  now(): HlcTimestamp {
    const pt = this.#read();
    let l = this.#l;
    let c = this.#c;
    if (pt > l) {
      l = pt;
      c = 0;
    } else if (c < HLC_MAX_COUNTER) {
      c++;
    } else {
      throw new HlcOverflowError(l, HLC_MAX_COUNTER);
    }
    if (l >= this.#upper) this.#persist(l);
    this.#l = l;
    this.#c = c;
    return { wallMs: l, counter: c, node: this.node };
  }

  /**
   * Issues the timestamp of a receive event for a message stamped `remote`
   * (the paper's four cases): greater than `remote` and than everything
   * issued or observed before.
   *
   * @throws {@link ClockOffsetError} if `remote.wallMs` is more than `maxOffsetMs`
   *   ahead of `floor(physical())` in `'throw'` mode (clock unchanged).
   * @throws {@link HlcOverflowError} if the counter would pass 65535 (clock unchanged; see {@link receiveAsync}).
   * @throws {@link InvalidArgumentError} naming `remote.wallMs` / `remote.counter` if out of range (clock unchanged).
   * @example
   * ```ts
   * const stamp = hlc.receive(parseHlc(message.stamp));
   * ```
   */
  receive(remote: HlcTimestamp): HlcTimestamp {
    const pt = this.#read();
    let ml = remote.wallMs;
    let mc = remote.counter;
    checkRemote(ml, mc, 'remote');
    if (ml - pt > this.maxOffsetMs) {
      ml = this.#offset(ml, pt);
      mc = 0;
    }
    return this.#merge(pt, ml, mc);
  }

  /**
   * Issues ONE timestamp for receiving a batch of messages: greater than every
   * remote in the batch and than everything before, using a single counter
   * step rather than one per message. An empty batch behaves like {@link now}.
   *
   * The batch is atomic: in `'throw'` mode, one remote beyond `maxOffsetMs`
   * (or out of range) rejects the whole batch and leaves the clock unchanged.
   *
   * @throws {@link ClockOffsetError} for the first remote too far ahead (`'throw'` mode).
   * @throws {@link HlcOverflowError} if the counter would pass 65535.
   * @throws {@link InvalidArgumentError} naming `remotes[i]` if an entry is out of range, or `remotes` if it is not an array.
   * @example
   * ```ts
   * const stamp = hlc.receiveMany(batch.map((m) => m.stamp));
   * ```
   */
  receiveMany(remotes: readonly HlcTimestamp[]): HlcTimestamp {
    if (!Array.isArray(remotes))
      throw new InvalidArgumentError('remotes', remotes, 'an array of timestamps');
    const pt = this.#read();
    let ml = -1;
    let mc = 0;
    for (let i = 0; i < remotes.length; i++) {
      const r = remotes[i] as HlcTimestamp;
      const w = r.wallMs;
      const k = r.counter;
      checkRemote(w, k, `remotes[${i}]`);
      if (w - pt > this.maxOffsetMs && !this.#clamp) this.#offset(w, pt);
    }
    for (let i = 0; i < remotes.length; i++) {
      const r = remotes[i] as HlcTimestamp;
      let w = r.wallMs;
      let k = r.counter;
      if (w - pt > this.maxOffsetMs) {
        w = this.#offset(w, pt);
        k = 0;
      }
      if (w > ml || (w === ml && k > mc)) {
        ml = w;
        mc = k;
      }
    }
    return ml < 0 ? this.now() : this.#merge(pt, ml, mc);
  }

  /**
   * Observes `remote` without issuing a timestamp: afterwards the next issued
   * timestamp is greater than it. Use it for timestamps seen in passing (a read
   * reply, a gossiped high-water mark).
   *
   * @throws {@link ClockOffsetError} if `remote` is too far ahead (`'throw'` mode; clock unchanged).
   * @throws {@link InvalidArgumentError} naming `remote.wallMs` / `remote.counter` if out of range.
   * @example
   * ```ts
   * hlc.update(reply.stamp);
   * ```
   */
  update(remote: HlcTimestamp): void {
    const pt = this.#read();
    let ml = remote.wallMs;
    let mc = remote.counter;
    checkRemote(ml, mc, 'remote');
    if (ml - pt > this.maxOffsetMs) {
      ml = this.#offset(ml, pt);
      mc = 0;
    }
    if (ml > this.#l || (ml === this.#l && mc > this.#c)) {
      this.#l = ml;
      this.#c = mc;
    }
  }

  /**
   * The clock's high-water mark without ticking: the last timestamp issued or
   * observed (as `(wallMs, counter)` under this node's id). Every later
   * timestamp is greater. `undefined` before anything was issued, observed or loaded.
   *
   * @example
   * ```ts
   * const last = hlc.peek();
   * ```
   */
  peek(): HlcTimestamp | undefined {
    return this.#l < 0 ? undefined : { wallMs: this.#l, counter: this.#c, node: this.node };
  }

  /**
   * Like {@link now}, but with `onOverflow: 'wait'` waits (on the scheduler) for
   * physical time to pass the exhausted `wallMs` instead of throwing.
   *
   * @throws {@link HlcOverflowError} (rejection) in `'throw'` overflow mode.
   * @throws {@link AbortError} (rejection) if `options.signal` aborts during a wait.
   * @example
   * ```ts
   * const ts = await hlc.nowAsync();
   * ```
   */
  nowAsync(options?: HlcWaitOptions): Promise<HlcTimestamp> {
    return this.#retry(() => this.now(), options?.signal);
  }

  /**
   * Like {@link receive}, but with `onOverflow: 'wait'` waits for physical time
   * instead of throwing {@link HlcOverflowError}.
   *
   * @throws {@link ClockOffsetError}, {@link InvalidArgumentError} (rejections) as {@link receive}.
   * @throws {@link AbortError} (rejection) if `options.signal` aborts during a wait.
   * @example
   * ```ts
   * const ts = await hlc.receiveAsync(remote);
   * ```
   */
  receiveAsync(remote: HlcTimestamp, options?: HlcWaitOptions): Promise<HlcTimestamp> {
    return this.#retry(() => this.receive(remote), options?.signal);
  }

  /**
   * Like {@link receiveMany}, but with `onOverflow: 'wait'` waits for physical
   * time instead of throwing {@link HlcOverflowError}.
   *
   * @throws {@link ClockOffsetError}, {@link InvalidArgumentError} (rejections) as {@link receiveMany}.
   * @throws {@link AbortError} (rejection) if `options.signal` aborts during a wait.
   * @example
   * ```ts
   * const ts = await hlc.receiveManyAsync(batch);
   * ```
   */
  receiveManyAsync(
    remotes: readonly HlcTimestamp[],
    options?: HlcWaitOptions,
  ): Promise<HlcTimestamp> {
    return this.#retry(() => this.receiveMany(remotes), options?.signal);
  }

  /** Reads physical time as an integer in [0, 2^48). */
  #read(): number {
    const raw = this.#physical();
    const pt = Math.floor(raw);
    if (!(pt >= 0 && pt <= HLC_MAX_WALL_MS))
      throw new InvalidArgumentError('physical()', raw, 'epoch milliseconds in [0, 2^48)');
    return pt;
  }

  /** Handles a remote too far ahead: throws, or returns the clamped wall time. */
  #offset(remoteMs: number, pt: number): number {
    const error = new ClockOffsetError(remoteMs, pt, this.maxOffsetMs);
    if (!this.#clamp) throw error;
    this.#report?.(error);
    return Math.floor(pt + this.maxOffsetMs);
  }

  /** The receive rule, given a validated remote (ml, mc). */
  #merge(pt: number, ml: number, mc: number): HlcTimestamp {
    const l = this.#l;
    const c = this.#c;
    let nl: number;
    let nc: number;
    if (pt > l && pt > ml) {
      nl = pt;
      nc = 0;
    } else if (l > ml) {
      nl = l;
      nc = c + 1;
    } else if (ml > l) {
      nl = ml;
      nc = mc + 1;
    } else {
      nl = l;
      nc = (c > mc ? c : mc) + 1;
    }
    if (nc > HLC_MAX_COUNTER) throw new HlcOverflowError(nl, HLC_MAX_COUNTER);
    if (nl >= this.#upper) this.#persist(nl);
    this.#l = nl;
    this.#c = nc;
    return { wallMs: nl, counter: nc, node: this.node };
  }

  /** Stores a bound above `wallMs` before a timestamp at `wallMs` is issued. */
  #persist(wallMs: number): void {
    const upper = wallMs + this.#window;
    (this.#persistence as HlcPersistence).store({ wallMs: upper });
    this.#upper = upper;
  }

  async #retry(op: () => HlcTimestamp, signal: AbortSignal | undefined): Promise<HlcTimestamp> {
    for (;;) {
      if (signal?.aborted) throw new AbortError('HybridLogicalClock wait', signal.reason);
      try {
        return op();
      } catch (e) {
        if (!this.#wait || !(e instanceof HlcOverflowError)) throw e;
        await this.#sleepPast(e.wallMs, signal);
      }
    }
  }

  /** Sleeps until physical time should have passed `wallMs` (the caller re-checks). */
  #sleepPast(wallMs: number, signal: AbortSignal | undefined): Promise<void> {
    const physical = Math.floor(this.#physical());
    const delay = Number.isFinite(physical) ? Math.max(1, wallMs + 1 - physical) : 1;
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#scheduler.clearTimeout(handle);
        reject(new AbortError('HybridLogicalClock wait', signal?.reason));
      };
      const handle = this.#scheduler.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, delay);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Validates the numeric fields of a remote timestamp. */
function checkRemote(wallMs: number, counter: number, name: string): void {
  if (!(wallMs >= 0 && wallMs <= HLC_MAX_WALL_MS && Math.floor(wallMs) === wallMs))
    throw new InvalidArgumentError(`${name}.wallMs`, wallMs, 'an integer in [0, 2^48)');
  if (!((counter & HLC_MAX_COUNTER) === counter))
    throw new InvalidArgumentError(`${name}.counter`, counter, 'an integer in [0, 65535]');
}
