/**
 * Estimates each peer's clock offset from the timestamps of ordinary
 * request/response messages, and reports peers whose clocks are provably too
 * far off, so an application can evict them.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { estimateExchange } from '../sources/exchange.js';

/**
 * The four timestamps of one request/response, as in NTP: `t1` local send,
 * `t2` peer receive, `t3` peer send (peer clock), `t4` local receive (local clock).
 *
 * @example
 * ```ts
 * // One reading, then monotonic time: a new sample arriving mid-call moves
 * // `now().estimate`, and two readings could even put t4 before t1.
 * const sent = performance.now();
 * const t1 = clock.now().estimate;
 * const { receivedAt: t2, sentAt: t3 } = await rpc(peer, 'ping');
 * monitor.record(peer, { t1, t2, t3, t4: t1 + (performance.now() - sent) });
 * ```
 */
export interface RpcTimestamps {
  /** Request sent, local clock (ms). */
  readonly t1: number;
  /** Request received, peer clock (ms). */
  readonly t2: number;
  /** Response sent, peer clock (ms). */
  readonly t3: number;
  /** Response received, local clock (ms). */
  readonly t4: number;
}

/**
 * One exchange's estimate of peer clock − local clock.
 *
 * @example
 * ```ts
 * skewFromExchange({ t1: 0, t2: 105, t3: 106, t4: 4 }, 0, 100); // tolerating 100 ms
 * //=> { offsetMs: 103.5, errorMs: 1.5008, delayMs: 3, excessMs: 1.9992… } (this exchange alone proves > 100 ms)
 * ```
 */
export interface SkewSample {
  /** θ = ½[(t2 − t1) + (t3 − t4)]: peer clock minus local clock (ms). */
  readonly offsetMs: number;
  /** The true offset lies within `offsetMs ± errorMs`: δ/2, the timestamps' resolution, drift over the round trip (ms). */
  readonly errorMs: number;
  /** δ = (t4 − t1) − (t3 − t2): the round trip spent on the network (ms). */
  readonly delayMs: number;
  /** `|offsetMs| − errorMs − maxOffsetMs`: > 0 means this sample alone proves the peer is too far off. */
  readonly excessMs: number;
}

/**
 * What the monitor knows about one peer.
 *
 * @example
 * ```ts
 * const monitor = new SkewMonitor({ maxOffsetMs: 100 });
 * for (const t of [0, 1000, 2000]) monitor.record('b', { t1: t, t2: t + 205, t3: t + 206, t4: t + 4 });
 * monitor.peer('b');
 * //=> { peer: 'b', offsetMs: 203.5, errorMs: 1.5008, samples: 3, consecutiveBeyond: 3, beyond: true, latest: { … } }
 * monitor.peer('c'); //=> undefined (no exchange yet)
 * ```
 */
export interface PeerSkew {
  /** The peer's id. */
  readonly peer: string;
  /** Best estimate of peer − local clock: the window's minimum-delay sample (ms). */
  readonly offsetMs: number;
  /** Bound on that estimate's error (ms). */
  readonly errorMs: number;
  /** Samples in the window. */
  readonly samples: number;
  /** How many of the latest samples in a row each prove the offset beyond the maximum. */
  readonly consecutiveBeyond: number;
  /** Whether the peer is reported: at least `minSamples` such samples in a row. */
  readonly beyond: boolean;
  /** The latest sample. */
  readonly latest: SkewSample;
}

/**
 * Options of {@link SkewMonitor}.
 *
 * @example
 * ```ts
 * const evicted: string[] = [];
 * const monitor = new SkewMonitor({ maxOffsetMs: 100, minSamples: 2, onBeyond: (p) => evicted.push(p.peer) });
 * monitor.record('b', { t1: 0, t2: 205, t3: 206, t4: 4 }); // b is 203.5 ± 1.5 ms ahead
 * evicted; //=> [] (one exchange is not enough)
 * monitor.record('b', { t1: 1000, t2: 1205, t3: 1206, t4: 1004 });
 * evicted; //=> ['b']
 * ```
 */
export interface SkewMonitorOptions {
  /** The largest |peer − local| offset tolerated (ms). */
  readonly maxOffsetMs: number;
  /**
   * Consecutive samples that must each prove the excess before a peer is reported; at least 2.
   *
   * @defaultValue `3`
   */
  readonly minSamples?: number;
  /**
   * Samples kept per peer; at least `minSamples`.
   *
   * @defaultValue `8`, or `minSamples` if that is larger
   */
  readonly windowSize?: number;
  /**
   * Resolution of the timestamps (ms), e.g. 1 for `Date.now()`. Each of the four may be floored by
   * up to this much, which widens every bound by 2×.
   *
   * @defaultValue `0`
   */
  readonly timestampResolutionMs?: number;
  /**
   * Bound on the clocks' rate error over one round trip (ppm).
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
  /** Called when a peer becomes `beyond`. */
  readonly onBeyond?: (peer: PeerSkew) => void;
  /** Called when a reported peer's latest sample no longer proves an excess. */
  readonly onWithin?: (peer: PeerSkew) => void;
}

interface PeerState {
  readonly window: SkewSample[];
  consecutive: number;
  beyond: boolean;
}

/**
 * Computes one exchange's offset, delay and error bound with the NTP on-wire
 * formula ({@link estimateExchange}) applied to any request/response.
 *
 * @param ts - The four timestamps.
 * @param resolutionMs - Resolution of all four timestamps (ms); default 0.
 * @param maxOffsetMs - The tolerated offset, for `excessMs`; default 0.
 * @param maxDriftPpm - Rate error charged over the round trip (ppm); default 200.
 * @returns The sample.
 * @throws {@link InvalidArgumentError} When a timestamp is not finite, `t4 < t1`, or the peer held
 *   the request longer than the round trip took (`t3 − t2 > t4 − t1` beyond the resolution).
 *
 * @example
 * ```ts
 * skewFromExchange({ t1: 0, t2: 105, t3: 106, t4: 4 }); // offset 103.5 ± 1.5 (+ drift)
 * ```
 */
export function skewFromExchange(
  ts: RpcTimestamps,
  resolutionMs: number = 0,
  maxOffsetMs: number = 0,
  maxDriftPpm: number = 200,
): SkewSample {
  const estimate = estimateExchange(ts, {
    localPrecisionMs: resolutionMs,
    serverPrecisionMs: resolutionMs,
    maxDriftPpm,
  });
  if (!estimate.consistent) {
    throw new InvalidArgumentError(
      'timestamps',
      ts,
      'a round trip no shorter than the time the peer held the request (t4 − t1 ≥ t3 − t2)',
    );
  }
  const { offsetMs, errorMs, delayMs } = estimate;
  return { offsetMs, errorMs, delayMs, excessMs: Math.abs(offsetMs) - errorMs - maxOffsetMs };
}

/**
 * Watches peers' clocks through the timestamps of messages you already send.
 * Each exchange bounds the peer's offset: it lies in `θ ± (δ/2 + 2·resolution + drift·(t4 − t1))`.
 * A peer is reported only when the latest `minSamples` exchanges in a row each
 * prove, on their own, that |offset| exceeds `maxOffsetMs` (`|θ| − error >
 * max`) — so a single noisy exchange never gets a node evicted.
 *
 * @example
 * ```ts
 * const monitor = new SkewMonitor({ maxOffsetMs: 100, onBeyond: (p) => cluster.evict(p.peer) });
 * monitor.record('node-b', { t1, t2, t3, t4 });
 * monitor.beyond(); // peers currently reported
 * ```
 */
export class SkewMonitor {
  readonly #maxOffsetMs: number;
  readonly #minSamples: number;
  readonly #windowSize: number;
  readonly #resolutionMs: number;
  readonly #maxDriftPpm: number;
  readonly #onBeyond: ((peer: PeerSkew) => void) | undefined;
  readonly #onWithin: ((peer: PeerSkew) => void) | undefined;
  readonly #peers = new Map<string, PeerState>();

  /**
   * @param options - The tolerated offset and how much evidence to require.
   * @throws {@link InvalidArgumentError} When `maxOffsetMs` is negative, `minSamples` is not an integer ≥ 2,
   *   or `windowSize` is smaller than `minSamples`.
   */
  constructor(options: SkewMonitorOptions) {
    this.#maxOffsetMs = requireNonNegative('maxOffsetMs', options?.maxOffsetMs);
    const minSamples = options.minSamples ?? 3;
    if (!Number.isInteger(minSamples) || minSamples < 2) {
      throw new InvalidArgumentError('minSamples', minSamples, 'an integer ≥ 2');
    }
    const windowSize = options.windowSize ?? Math.max(8, minSamples);
    if (!Number.isInteger(windowSize) || windowSize < minSamples) {
      throw new InvalidArgumentError(
        'windowSize',
        windowSize,
        `an integer ≥ minSamples (${minSamples})`,
      );
    }
    this.#minSamples = minSamples;
    this.#windowSize = windowSize;
    this.#resolutionMs = requireNonNegative(
      'timestampResolutionMs',
      options.timestampResolutionMs ?? 0,
    );
    this.#maxDriftPpm = requireNonNegative('maxDriftPpm', options.maxDriftPpm ?? 200);
    this.#onBeyond = options.onBeyond;
    this.#onWithin = options.onWithin;
  }

  /**
   * Adds one exchange with `peer`.
   *
   * @param peer - The peer's id.
   * @param timestamps - t1 and t4 from the local clock, t2 and t3 from the peer's.
   * @returns The peer's updated state.
   * @throws {@link InvalidArgumentError} When `peer` is not a string, a timestamp is not finite,
   *   `t4 < t1`, or the delay is negative beyond the resolution.
   *
   * @example
   * ```ts
   * const state = monitor.record('b', { t1, t2, t3, t4 });
   * ```
   */
  record(peer: string, timestamps: RpcTimestamps): PeerSkew {
    if (typeof peer !== 'string') throw new InvalidArgumentError('peer', peer, 'a string id');
    const sample = skewFromExchange(
      timestamps,
      this.#resolutionMs,
      this.#maxOffsetMs,
      this.#maxDriftPpm,
    );
    let state = this.#peers.get(peer);
    if (state === undefined) {
      state = { window: [], consecutive: 0, beyond: false };
      this.#peers.set(peer, state);
    }
    state.window.push(sample);
    if (state.window.length > this.#windowSize) state.window.shift();
    state.consecutive = sample.excessMs > 0 ? state.consecutive + 1 : 0;
    const wasBeyond = state.beyond;
    state.beyond = state.consecutive >= this.#minSamples;
    const report = this.#report(peer, state);
    if (state.beyond && !wasBeyond) this.#onBeyond?.(report);
    else if (!state.beyond && wasBeyond) this.#onWithin?.(report);
    return report;
  }

  /**
   * What the monitor knows about `peer`.
   *
   * @param peer - The peer's id.
   * @returns Its state, or `undefined` before its first exchange.
   *
   * @example
   * ```ts
   * monitor.peer('b')?.offsetMs;
   * ```
   */
  peer(peer: string): PeerSkew | undefined {
    const state = this.#peers.get(peer);
    return state === undefined ? undefined : this.#report(peer, state);
  }

  /**
   * Every peer seen so far.
   *
   * @returns Their states, in first-seen order.
   *
   * @example
   * ```ts
   * for (const p of monitor.peers()) metrics.gauge(`skew.${p.peer}`, p.offsetMs);
   * ```
   */
  peers(): PeerSkew[] {
    return [...this.#peers].map(([peer, state]) => this.#report(peer, state));
  }

  /**
   * The peers currently reported as beyond `maxOffsetMs`.
   *
   * @returns Their states.
   *
   * @example
   * ```ts
   * for (const p of monitor.beyond()) evict(p.peer);
   * ```
   */
  beyond(): PeerSkew[] {
    return this.peers().filter((p) => p.beyond);
  }

  /**
   * Drops everything known about `peer` (e.g. after evicting it).
   *
   * @param peer - The peer's id.
   *
   * @example
   * ```ts
   * monitor.forget('b');
   * ```
   */
  forget(peer: string): void {
    this.#peers.delete(peer);
  }

  #report(peer: string, state: PeerState): PeerSkew {
    let best = state.window[0] as SkewSample;
    for (const s of state.window) if (s.delayMs < best.delayMs) best = s;
    return {
      peer,
      offsetMs: best.offsetMs,
      errorMs: best.errorMs,
      samples: state.window.length,
      consecutiveBeyond: state.consecutive,
      beyond: state.beyond,
      latest: state.window[state.window.length - 1] as SkewSample,
    };
  }
}
