/**
 * Lamport clocks (Lamport 1978): a counter per node, bumped on every event and
 * pushed past every counter received. If `a` happened before `b` then
 * `compareLamport(a, b) < 0`; the converse does not hold (use a vector clock
 * to detect concurrency).
 *
 * @module
 */
import { HlcParseError, InvalidArgumentError } from '../errors.js';
import { isValidNodeId, validateNodeId, nodeIdProblem, MAX_NODE_ID_LENGTH } from './node-id.js';

/**
 * A Lamport timestamp. Ordered by `(counter, node)`.
 *
 * @example
 * ```ts
 * formatLamport({ counter: 7, node: 'a' }); //=> '00000000000007@a'
 * compareLamport({ counter: 7, node: 'a' }, { counter: 7, node: 'b' }); //=> -1 (the node breaks the tie)
 * ```
 */
export interface LamportTimestamp {
  /** Logical counter, a safe integer ≥ 0. */
  readonly counter: number;
  /** The node that issued it; breaks ties. */
  readonly node: string;
}

/**
 * Options of {@link LamportClock}.
 *
 * @example
 * ```ts
 * new LamportClock({ node: 'a', initial: 41 }).tick(); //=> { counter: 42, node: 'a' }
 * ```
 */
export interface LamportClockOptions {
  /** This node's id (see {@link isValidNodeId}). */
  readonly node: string;
  /**
   * Counter to resume from (e.g. the last one persisted); the next tick is `initial + 1`.
   *
   * @defaultValue `0`
   */
  readonly initial?: number;
}

/** Largest counter: the last integer a double represents exactly. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
/** Hex digits of the fixed-width counter: 0x1fffffffffffff has 14. */
const COUNTER_DIGITS = 14;

/**
 * A Lamport clock for one node.
 *
 * @example
 * ```ts
 * const a = new LamportClock({ node: 'a' });
 * const b = new LamportClock({ node: 'b' });
 * const sent = a.tick();          // { counter: 1, node: 'a' }
 * const got = b.receive(sent);    // { counter: 2, node: 'b' }
 * compareLamport(sent, got) < 0;  // true
 * ```
 */
export class LamportClock {
  /** This node's id. */
  readonly node: string;
  #counter: number;

  /**
   * @throws {@link InvalidArgumentError} if `node` is not a valid node id or `initial` is not a safe integer ≥ 0.
   */
  constructor(options: LamportClockOptions) {
    this.node = validateNodeId(options.node, 'options.node');
    const initial = options.initial ?? 0;
    if (!Number.isSafeInteger(initial) || initial < 0)
      throw new InvalidArgumentError('options.initial', initial, 'a safe integer ≥ 0');
    this.#counter = initial;
  }

  /**
   * Records a local or send event and returns its timestamp.
   *
   * @throws {@link InvalidArgumentError} if the counter reached `Number.MAX_SAFE_INTEGER` (only after receiving such a counter).
   * @example
   * ```ts
   * const ts = lamport.tick();
   * ```
   */
  tick(): LamportTimestamp {
    const c = this.#counter;
    if (c >= MAX_COUNTER) throw exhausted(c);
    this.#counter = c + 1;
    return { counter: c + 1, node: this.node };
  }

  /**
   * Records the receipt of a message stamped `remote` and returns the receive
   * event's timestamp, greater than both `remote` and every earlier local one.
   *
   * @throws {@link InvalidArgumentError} naming `remote.counter` if it is not a safe integer ≥ 0, or if the result would pass `Number.MAX_SAFE_INTEGER`; the clock is unchanged.
   * @example
   * ```ts
   * const ts = lamport.receive(message.stamp);
   * ```
   */
  receive(remote: LamportTimestamp): LamportTimestamp {
    const r = remote.counter;
    if (!Number.isSafeInteger(r) || r < 0)
      throw new InvalidArgumentError('remote.counter', r, 'a safe integer ≥ 0');
    const c = this.#counter > r ? this.#counter : r;
    if (c >= MAX_COUNTER) throw exhausted(c);
    this.#counter = c + 1;
    return { counter: c + 1, node: this.node };
  }

  /**
   * The last counter issued or received, without ticking (0 for a new clock).
   *
   * @example
   * ```ts
   * persist(lamport.peek()); // resume later with new LamportClock({ node, initial })
   * ```
   */
  peek(): number {
    return this.#counter;
  }
}

function exhausted(counter: number): InvalidArgumentError {
  return new InvalidArgumentError(
    'LamportClock counter',
    counter,
    `a counter below ${MAX_COUNTER} (Number.MAX_SAFE_INTEGER); a peer sent an absurd counter`,
  );
}

/**
 * Total order on Lamport timestamps: by counter, then by node id (code-unit
 * order, the order of {@link formatLamport} strings). Returns −1, 0 or 1.
 *
 * @example
 * ```ts
 * [b, a].sort(compareLamport);
 * ```
 */
export function compareLamport(a: LamportTimestamp, b: LamportTimestamp): number {
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/**
 * Encodes a Lamport timestamp as a fixed-width string whose lexicographic
 * order equals {@link compareLamport} order: 14 lowercase hex digits of the
 * counter, `@`, the node id. Example: `0000000000002a@node-a`.
 *
 * @throws {@link InvalidArgumentError} if the counter is not a safe integer ≥ 0 or the node id is invalid.
 * @example
 * ```ts
 * formatLamport({ counter: 42, node: 'a' }); // '0000000000002a@a'
 * ```
 */
export function formatLamport(ts: LamportTimestamp): string {
  const c = ts.counter;
  if (!Number.isSafeInteger(c) || c < 0)
    throw new InvalidArgumentError('ts.counter', c, 'a safe integer ≥ 0');
  if (!isValidNodeId(ts.node)) validateNodeId(ts.node, 'ts.node');
  return `${c.toString(16).padStart(COUNTER_DIGITS, '0')}@${ts.node}`;
}

/**
 * Decodes a string made by {@link formatLamport}. Input longer than the longest
 * valid stamp (79 characters) is refused before it is parsed; the error quotes at
 * most its first 64 characters.
 *
 * @throws {@link HlcParseError} naming the input if it is not exactly 14 lowercase hex digits, `@` and a valid node id.
 * @example
 * ```ts
 * parseLamport('0000000000002a@a'); // { counter: 42, node: 'a' }
 * ```
 */
export function parseLamport(text: string): LamportTimestamp {
  if (typeof text !== 'string') throw new HlcParseError(text, 'expected a string');
  if (
    text.length < COUNTER_DIGITS + 2 ||
    text.length > COUNTER_DIGITS + 1 + MAX_NODE_ID_LENGTH ||
    text.charCodeAt(COUNTER_DIGITS) !== 0x40
  )
    throw new HlcParseError(
      text,
      `expected ${COUNTER_DIGITS} hex digits, '@' and a node id of 1–${MAX_NODE_ID_LENGTH} characters`,
    );
  let counter = 0;
  for (let i = 0; i < COUNTER_DIGITS; i++) {
    const d = hexDigit(text.charCodeAt(i));
    if (d < 0) throw new HlcParseError(text, `character ${i} is not a lowercase hex digit`);
    counter = counter * 16 + d;
  }
  if (counter > MAX_COUNTER) throw new HlcParseError(text, 'counter above Number.MAX_SAFE_INTEGER');
  const node = text.slice(COUNTER_DIGITS + 1);
  if (!isValidNodeId(node))
    throw new HlcParseError(text, `invalid node id: ${nodeIdProblem(node) ?? 'invalid'}`);
  return { counter, node };
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}
