/**
 * Message-passing executions ("causal histories") as data, and their true
 * happened-before relation. No fast-check here: `causalHistory()` in
 * `chronobound/testing/fast-check` generates them, the checkers replay them.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * What an event of a {@link CausalHistory} does.
 *
 * @example
 * ```ts
 * // history: a's send (event 0), b's receive of it (1), then a local step on b (2)
 * replayHistory(history, { local: () => 'L', send: () => 'S', receive: () => 'R' }); //=> ['S', 'R', 'L']
 * ```
 */
export type HistoryEventKind = 'local' | 'send' | 'receive';

/**
 * One event of a {@link CausalHistory}.
 *
 * @example
 * ```ts
 * const hb = happenedBefore({
 *   nodes: ['a', 'b'],
 *   events: [
 *     { id: 0, node: 'a', kind: 'send', message: 0, trueMs: 1000, physicalMs: 1000 },
 *     { id: 1, node: 'b', kind: 'receive', message: 0, trueMs: 1005, physicalMs: 990 }, // b's clock is 15 ms slow
 *     { id: 2, node: 'b', kind: 'local', trueMs: 1006, physicalMs: 991 },
 *   ],
 *   maxSkewMs: 15,
 *   stepped: false,
 * });
 * hb(0, 2); //=> true (send → receive → b's next step)
 * hb(2, 0); //=> false
 * ```
 */
export interface HistoryEvent {
  /** Index of the event in `history.events`. */
  readonly id: number;
  /** The node where it happens. */
  readonly node: string;
  /** Local step, sending a message, or receiving one. */
  readonly kind: HistoryEventKind;
  /**
   * For `'send'`: its own id (the message id). For `'receive'`: the id of the
   * send event whose message it receives. Absent for `'local'`.
   */
  readonly message?: number;
  /** True time of the event (epoch ms); non-decreasing along `events`. */
  readonly trueMs: number;
  /** The node's physical clock reading at the event (epoch ms; may be fractional). */
  readonly physicalMs: number;
}

/**
 * A message-passing execution: events in an order consistent with true time
 * (so every send precedes its receive and each node's events are in program
 * order). Each message is received at most once, by a node other than its sender.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(causalHistory(), (h) => h.events.every((e, i) => e.id === i)));
 * ```
 */
export interface CausalHistory {
  /** Node ids, in order. */
  readonly nodes: readonly string[];
  /** The events, in true-time order. */
  readonly events: readonly HistoryEvent[];
  /**
   * Unless `stepped`: for any two events, their clock errors
   * (`physicalMs − trueMs`) differ by at most this much.
   */
  readonly maxSkewMs: number;
  /** Whether some node's clock stepped backwards (then `maxSkewMs` does not bound it). */
  readonly stepped: boolean;
}

/**
 * The happened-before relation of a history (Lamport 1978): `a → b` if `a`
 * precedes `b` on the same node, or `a` sends the message `b` receives, or
 * by transitivity. Irreflexive. Computed once as bitsets; queries are O(1).
 *
 * @returns `(a, b) => boolean`, true when event `a` happened before event `b` (ids).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   if the history is malformed (a receive of a message that was not sent earlier).
 * @example
 * ```ts
 * const hb = happenedBefore(history);
 * if (hb(2, 7)) expect(compareHlc(stamps[2], stamps[7])).toBeLessThan(0);
 * ```
 */
export function happenedBefore(history: CausalHistory): (a: number, b: number) => boolean {
  const events = history.events;
  const n = events.length;
  const words = Math.ceil(n / 32);
  const bits = new Uint32Array(n * words);
  const lastOnNode = new Map<string, number>();
  for (let j = 0; j < n; j++) {
    const e = events[j] as HistoryEvent;
    const row = j * words;
    const prev = lastOnNode.get(e.node);
    if (prev !== undefined) include(bits, row, prev, words);
    if (e.kind === 'receive') {
      const m = e.message;
      const sender = m === undefined ? undefined : events[m];
      if (m === undefined || m >= j || sender?.kind !== 'send')
        throw new InvalidArgumentError(
          `history.events[${j}].message`,
          m,
          'the id of an earlier send event',
        );
      include(bits, row, m, words);
    }
    lastOnNode.set(e.node, j);
  }
  return (a: number, b: number): boolean => {
    if (!(a >= 0 && a < n && b >= 0 && b < n)) return false;
    return (((bits[b * words + (a >>> 5)] as number) >>> (a & 31)) & 1) === 1;
  };
}

/** Adds event `p` and everything before it to row `row`. */
function include(bits: Uint32Array, row: number, p: number, words: number): void {
  const from = p * words;
  for (let w = 0; w < words; w++)
    bits[row + w] = (bits[row + w] as number) | (bits[from + w] as number);
  bits[row + (p >>> 5)] = (bits[row + (p >>> 5)] as number) | (1 << (p & 31));
}
