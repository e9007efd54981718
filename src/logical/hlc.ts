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
import {
  HLC_MAX_COUNTER,
  HLC_MAX_REMOTE_WALL_MS,
  HLC_MAX_WALL_MS,
  isHlcCounter,
  isHlcWallMs,
} from './hlc-range.js';
import { AbortError, ClockOffsetError, HlcOverflowError, InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { systemScheduler } from '../clock/system.js';
import type { Scheduler } from '../clock/types.js';
import { validateNodeId } from './node-id.js';
import {
  policyOption,
  type HlcWaitOptions,
  type HybridLogicalClockOptions,
} from './hlc-options.js';

/**
 * A hybrid logical timestamp, ordered by `(wallMs, counter, node)` (see
 * {@link compareHlc}).
 *
 * @example
 * ```ts
 * formatHlc({ wallMs: 1_700_000_000_000, counter: 0, node: 'a' }); //=> '018bcfe568000000@a'
 * compareHlc(
 *   { wallMs: 1_700_000_000_000, counter: 0, node: 'a' },
 *   { wallMs: 1_700_000_000_000, counter: 0, node: 'b' },
 * ); //=> -1 (the node breaks the tie)
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
 * // A restart whose store holds { wallMs: 1_700_000_001_000 }, physical time behind it:
 * const hlc = new HybridLogicalClock({
 *   node: 'a',
 *   physical: () => 1_700_000_000_000,
 *   persistence: { load: () => ({ wallMs: 1_700_000_001_000 }), store: () => undefined },
 * });
 * hlc.now(); //=> { wallMs: 1700000001000, counter: 1, node: 'a' } (above everything issued before)
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
 * const disk = new Map<string, HlcUpperBound>();
 * const hlc = new HybridLogicalClock({
 *   node: 'a',
 *   physical: () => 1_700_000_000_000,
 *   persistence: { load: () => disk.get('a'), store: (upper) => void disk.set('a', upper) },
 * });
 * hlc.now();     //=> { wallMs: 1700000000000, counter: 0, node: 'a' }
 * disk.get('a'); //=> { wallMs: 1700000001000 } (stored before that stamp was returned)
 * ```
 */
export interface HlcPersistence {
  /** Returns the last stored bound, or `undefined` if none was ever stored. */
  load(): HlcUpperBound | undefined;
  /** Durably stores a new bound (larger than any previous one). */
  store(upper: HlcUpperBound): void;
}

const defaultPhysical = (): number => Date.now();
/** Longest timer delay platforms support (2^31 − 1 ms); longer ones fire at once. */
const MAX_DELAY_MS = 2 ** 31 - 1;

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
  /** How far past `maxOffsetMs` the clock may borrow milliseconds on counter exhaustion (ms). */
  readonly maxBorrowMs: number;
  readonly #physical: () => number;
  /** `maxOffsetMs + maxBorrowMs`: the largest lead over physical time that borrowing may reach. */
  readonly #maxLead: number;
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
   * A physical time read by a call that changed the clock — the largest one, except that
   * now() does not record it when it only counts; −1 before any. Borrowing is measured
   * from max(pt, #maxPhysical), so a backward step of physical time keeps the room to borrow.
   */
  #maxPhysical = -1;

  /**
   * Creates the clock; with `persistence`, loads the stored bound and starts above it.
   *
   * @throws {@link InvalidArgumentError} naming the option that is out of range, or
   *   `persistence.load()` if it returned something other than `undefined` or `{ wallMs }`
   *   with an integer in [0, 2^48).
   * @throws whatever `persistence.load()` throws (e.g. `HlcPersistenceError` for a corrupt file).
   * @example
   * ```ts
   * const hlc = new HybridLogicalClock({ node: 'api-1', maxOffsetMs: 250, maxBorrowMs: 10 });
   * ```
   */
  constructor(options: HybridLogicalClockOptions) {
    this.node = validateNodeId(options.node, 'options.node');
    const physical = options.physical ?? defaultPhysical;
    if (typeof physical !== 'function')
      throw new InvalidArgumentError('options.physical', physical, 'a function returning epoch ms');
    this.#physical = physical;
    this.maxOffsetMs = requireNonNegative('options.maxOffsetMs', options.maxOffsetMs ?? 500, true);
    this.maxBorrowMs = requireNonNegative('options.maxBorrowMs', options.maxBorrowMs ?? 10, true);
    this.#maxLead = this.maxOffsetMs + this.maxBorrowMs;
    this.#clamp =
      policyOption(options, 'offsetPolicy', 'onOffset', ['throw', 'clamp'] as const) === 'clamp';
    this.#report = options.onOffsetReport;
    this.#wait =
      policyOption(options, 'overflowPolicy', 'onOverflow', ['throw', 'wait'] as const) === 'wait';
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
        if (!isHlcWallMs(w))
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
   * Issues a timestamp for a local or send event. When the counter of the
   * current `wallMs` is exhausted, borrows the next millisecond (see `maxBorrowMs`).
   *
   * @throws {@link HlcOverflowError} if the counter is exhausted and borrowing would put
   *   `wallMs` more than `maxOffsetMs + maxBorrowMs` ahead of physical time
   *   (clock unchanged; see {@link nowAsync}). With `maxBorrowMs ≥ 1` remotes within
   *   `maxOffsetMs` cannot cause this by themselves: it takes more than 65 536 timestamps
   *   issued per millisecond the clock runs ahead of physical time (or a restart whose
   *   persisted bound is further ahead than the bound, until physical time catches up).
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
      // The hot path. It need not record pt: #maxPhysical only has to be a physical
      // time the clock read, and l ≤ #maxPhysical + maxOffsetMs + maxBorrowMs holds anyway.
      c++;
    } else {
      l = this.#borrow(l, pt);
      c = 0;
    }
    if (l >= this.#upper) this.#persist(l);
    this.#l = l;
    this.#c = c;
    if (c === 0 && pt > this.#maxPhysical) this.#maxPhysical = pt;
    return { wallMs: l, counter: c, node: this.node };
  }

  /**
   * Issues the timestamp of a receive event for a message stamped `remote`
   * (the paper's four cases): greater than `remote` and than everything
   * issued or observed before.
   *
   * A remote at counter 65535 (or a tie that exhausts the counter) makes the
   * clock borrow the next millisecond, as in {@link now}.
   *
   * @throws {@link ClockOffsetError} if `remote.wallMs` is more than `maxOffsetMs`
   *   ahead of `floor(physical())` in `'throw'` mode (clock unchanged).
   * @throws {@link HlcOverflowError} if the counter would pass 65535 and borrowing is past its
   *   bound (clock unchanged; see {@link receiveAsync}).
   * @throws {@link InvalidArgumentError} naming `remote.wallMs` / `remote.counter` if out of
   *   range, or `remote.wallMs` if it is above 2^48 − 2^40 (`HLC_MAX_REMOTE_WALL_MS`; clock unchanged).
   * @example
   * ```ts
   * const stamp = hlc.receive(parseHlc(message.stamp));
   * ```
   */
  receive(remote: HlcTimestamp): HlcTimestamp {
    const pt = this.#read();
    const { wallMs, counter } = remote;
    const ml = this.#remoteWall(wallMs, counter, pt);
    return this.#merge(pt, ml, ml === wallMs ? counter : 0);
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
   * @throws {@link HlcOverflowError} if the counter would pass 65535 and borrowing is past its bound.
   * @throws {@link InvalidArgumentError} naming `remotes[i].wallMs` / `remotes[i].counter` if an
   *   entry is out of range or above 2^48 − 2^40, or `remotes` if it is not an array.
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
    // Validate the whole batch before reporting or changing anything.
    for (let i = 0; i < remotes.length; i++) {
      const r = remotes[i] as HlcTimestamp;
      const w = r.wallMs;
      const k = r.counter;
      checkRemote(w, k, `remotes[${i}]`);
      if (w - pt > this.maxOffsetMs || w > HLC_MAX_REMOTE_WALL_MS)
        this.#admit(w, pt, `remotes[${i}]`);
    }
    for (let i = 0; i < remotes.length; i++) {
      const r = remotes[i] as HlcTimestamp;
      let w = r.wallMs;
      let k = r.counter;
      if (w - pt > this.maxOffsetMs) {
        w = this.#offset(w, pt, `remotes[${i}]`);
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
   * Observing a remote at counter 65535 is fine: the next issued timestamp
   * borrows the next millisecond (see `maxBorrowMs`).
   *
   * @throws {@link ClockOffsetError} if `remote` is too far ahead (`'throw'` mode; clock unchanged).
   * @throws {@link InvalidArgumentError} naming `remote.wallMs` / `remote.counter` if out of
   *   range, or `remote.wallMs` if it is above 2^48 − 2^40 (`HLC_MAX_REMOTE_WALL_MS`; clock unchanged).
   * @example
   * ```ts
   * hlc.update(reply.stamp);
   * ```
   */
  update(remote: HlcTimestamp): void {
    const pt = this.#read();
    const { wallMs, counter } = remote;
    const ml = this.#remoteWall(wallMs, counter, pt);
    const mc = ml === wallMs ? counter : 0;
    if (ml > this.#l || (ml === this.#l && mc > this.#c)) {
      this.#l = ml;
      this.#c = mc;
    }
    if (pt > this.#maxPhysical) this.#maxPhysical = pt;
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
   * Like {@link now}, but with `overflowPolicy: 'wait'` waits (on the scheduler) for
   * physical time to advance far enough to borrow the next millisecond (or to pass
   * the exhausted `wallMs`) instead of throwing.
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
   * Like {@link receive}, but with `overflowPolicy: 'wait'` waits for physical time
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
   * Like {@link receiveMany}, but with `overflowPolicy: 'wait'` waits for physical
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
    if (!isHlcWallMs(pt))
      throw new InvalidArgumentError('physical()', raw, 'epoch milliseconds in [0, 2^48)');
    return pt;
  }

  /**
   * The wall time a remote may contribute: itself, or in `'clamp'` mode
   * `pt + maxOffsetMs` if it is further ahead. Throws {@link ClockOffsetError} for a
   * remote too far ahead in `'throw'` mode, and {@link InvalidArgumentError} naming
   * `name` if the result is beyond `HLC_MAX_REMOTE_WALL_MS` — with
   * `maxOffsetMs = Infinity` nothing is "too far ahead" and there is nothing to clamp
   * to, so this is the only check left. Reports nothing, changes nothing.
   */
  #admit(remoteMs: number, pt: number, name: string): number {
    let w = remoteMs;
    if (remoteMs - pt > this.maxOffsetMs) {
      if (!this.#clamp) throw new ClockOffsetError(remoteMs, pt, this.maxOffsetMs);
      w = Math.floor(pt + this.maxOffsetMs);
    }
    if (w > HLC_MAX_REMOTE_WALL_MS)
      throw new InvalidArgumentError(
        `${name}.wallMs`,
        remoteMs,
        `at most ${HLC_MAX_REMOTE_WALL_MS} (2^48 − 2^40): a clock that adopted it could run out ` +
          'of 48-bit wall time for good. The clock was not changed; check the sender’s clock',
      );
    return w;
  }

  /**
   * The wall time a single remote (`receive`, `update`) contributes, after checking its
   * fields: its own, or — too far ahead or too large — what {@link #offset} makes of it.
   * A clamped wall time is always below the remote's, and a clamped remote counts from
   * 0, so the caller keeps the remote's counter exactly when the wall time is its own.
   */
  #remoteWall(wallMs: number, counter: number, pt: number): number {
    checkRemote(wallMs, counter, 'remote');
    return wallMs - pt > this.maxOffsetMs || wallMs > HLC_MAX_REMOTE_WALL_MS
      ? this.#offset(wallMs, pt, 'remote')
      : wallMs;
  }

  /** Admits a remote that is too far ahead or too large: throws, or reports and returns it clamped. */
  #offset(remoteMs: number, pt: number, name: string): number {
    const w = this.#admit(remoteMs, pt, name);
    if (w !== remoteMs) this.#report?.(new ClockOffsetError(remoteMs, pt, this.maxOffsetMs));
    return w;
  }

  /**
   * The wall time to borrow when the counter of `l` is exhausted: `l + 1`, if that
   * is at most `maxOffsetMs + maxBorrowMs` ahead of max(pt, #maxPhysical)
   * and leaves room in 48 bits for a persisted bound above it.
   */
  #borrow(l: number, pt: number): number {
    const reference = pt > this.#maxPhysical ? pt : this.#maxPhysical;
    if (l + 1 - reference <= this.#maxLead && l + 1 < HLC_MAX_WALL_MS) return l + 1;
    throw new HlcOverflowError(
      l,
      HLC_MAX_COUNTER,
      l + 1 < HLC_MAX_WALL_MS
        ? `borrowing the next millisecond would put the clock ${l + 1 - reference} ms ahead of ` +
            `physical time ${reference}, beyond maxOffsetMs + maxBorrowMs = ${this.#maxLead} ms`
        : 'the 48-bit wall time is exhausted',
    );
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
    if (nc > HLC_MAX_COUNTER) {
      nl = this.#borrow(nl, pt);
      nc = 0;
    }
    if (nl >= this.#upper) this.#persist(nl);
    this.#l = nl;
    this.#c = nc;
    if (pt > this.#maxPhysical) this.#maxPhysical = pt;
    return { wallMs: nl, counter: nc, node: this.node };
  }

  /**
   * Stores a bound above `wallMs` before a timestamp at `wallMs` is issued. The
   * bound never leaves the 48-bit range, so a restarted clock can always load it.
   */
  #persist(wallMs: number): void {
    if (wallMs >= HLC_MAX_WALL_MS)
      throw new HlcOverflowError(
        wallMs,
        HLC_MAX_COUNTER,
        'no persisted bound above it fits in 48 bits',
      );
    const upper = Math.min(wallMs + this.#window, HLC_MAX_WALL_MS);
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

  /**
   * Sleeps until physical time should allow progress past the exhausted `wallMs`:
   * borrowing `wallMs + 1` (at most `maxOffsetMs + maxBorrowMs` ahead), or else
   * passing `wallMs`. The caller re-checks.
   */
  #sleepPast(wallMs: number, signal: AbortSignal | undefined): Promise<void> {
    const physical = Math.floor(this.#physical());
    const target = wallMs + 1 < HLC_MAX_WALL_MS ? wallMs + 1 - this.#maxLead : wallMs + 1;
    // Capped to what timers support; the caller re-checks and sleeps again if needed.
    const delay = Number.isFinite(physical)
      ? Math.min(Math.max(1, target - physical), MAX_DELAY_MS)
      : 1;
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
  if (!isHlcWallMs(wallMs))
    throw new InvalidArgumentError(`${name}.wallMs`, wallMs, 'an integer in [0, 2^48)');
  if (!isHlcCounter(counter))
    throw new InvalidArgumentError(`${name}.counter`, counter, 'an integer in [0, 65535]');
}
