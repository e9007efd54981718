/**
 * Vector clocks (Fidge 1988, Mattern 1989): one counter per node. Unlike
 * Lamport and hybrid clocks they characterize causality exactly: `a.compare(b)`
 * is `'before'` if and only if a's event happened before b's, and
 * `'concurrent'` if neither happened before the other.
 *
 * @module
 */
import { HlcParseError, InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import { isValidNodeId, nodeIdProblem, validateNodeId } from './node-id.js';

/**
 * How two vector clocks relate: `'before'` (happened before), `'after'`,
 * `'equal'`, or `'concurrent'` (neither).
 *
 * @example
 * ```ts
 * const a = VectorClock.from({ a: 1 });
 * a.compare(a.increment('b'));           //=> 'before'
 * a.compare(VectorClock.from({ b: 1 })); //=> 'concurrent'
 * ```
 */
export type VectorOrder = 'before' | 'after' | 'equal' | 'concurrent';

const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
/** Default limit of {@link VectorClock.decode} (characters): 1 MiB, 12 000+ entries of any size. */
const DEFAULT_MAX_ENCODED_LENGTH = 1_048_576;
/** Longest counter: 2^53 − 1 has 16 decimal digits. */
const MAX_COUNTER_DIGITS = 16;

/**
 * An immutable vector clock. Absent nodes count as 0; entries are never 0.
 *
 * Per event: a local or send event does `vc = vc.increment(me)`; a receive
 * does `vc = vc.merge(message.vc).increment(me)`.
 *
 * @example
 * ```ts
 * let a = VectorClock.empty().increment('a');   // a=1
 * let b = VectorClock.empty().increment('b');   // b=1
 * a.compare(b);                                 // 'concurrent'
 * b = b.merge(a).increment('b');                // a=1,b=2
 * a.compare(b);                                 // 'before'
 * VectorClock.decode(b.encode()).compare(b);    // 'equal'
 * ```
 */
export class VectorClock {
  static readonly #EMPTY: VectorClock = new VectorClock(new Map());
  /** Counters by node; never holds a 0. */
  readonly #counters: ReadonlyMap<string, number>;

  private constructor(counters: ReadonlyMap<string, number>) {
    this.#counters = counters;
  }

  /**
   * The clock with every counter at 0.
   *
   * @example
   * ```ts
   * const vc = VectorClock.empty();
   * ```
   */
  static empty(): VectorClock {
    return VectorClock.#EMPTY;
  }

  /**
   * Builds a clock from `[node, counter]` pairs or a record; zero counters are dropped.
   *
   * @throws {@link InvalidArgumentError} naming the entry if a node id is invalid,
   *   a counter is not a safe integer ≥ 0, or a node appears twice.
   * @example
   * ```ts
   * VectorClock.from({ a: 2, b: 1 });
   * VectorClock.from([['a', 2], ['b', 1]]);
   * ```
   */
  static from(
    entries: Iterable<readonly [string, number]> | Readonly<Record<string, number>>,
  ): VectorClock {
    const pairs: Iterable<readonly [string, number]> =
      Symbol.iterator in entries ? entries : Object.entries(entries);
    const map = new Map<string, number>();
    for (const [node, counter] of pairs) {
      validateNodeId(node, 'entries node');
      if (!Number.isSafeInteger(counter) || counter < 0)
        throw new InvalidArgumentError(`entries[${node}]`, counter, 'a safe integer ≥ 0');
      if (map.has(node)) throw new InvalidArgumentError('entries', node, 'each node at most once');
      if (counter > 0) map.set(node, counter);
    }
    return map.size === 0 ? VectorClock.#EMPTY : new VectorClock(map);
  }

  /**
   * Decodes a string made by {@link VectorClock.encode}: `node=counter` pairs
   * joined by `,`, nodes in ascending code-unit order, counters positive
   * decimal integers without leading zeros. The empty string is the empty clock.
   *
   * Input longer than `options.maxLength` characters (default 1 048 576, 1 MiB:
   * more than 12 000 entries even with 64-character node ids and 16-digit
   * counters) is refused before it is parsed, so a hostile 50 MB string costs
   * microseconds; raise the limit if your vectors are that large. Errors quote
   * at most the input's first 64 characters, and its length.
   *
   * @param text - The encoded clock.
   * @param options - `maxLength`: the longest input accepted (characters, ≥ 0, may be `Infinity`).
   * @throws {@link HlcParseError} naming the input if it is longer than `maxLength` or not in that canonical form.
   * @throws {@link InvalidArgumentError} naming `options.maxLength` if it is not a number ≥ 0.
   * @example
   * ```ts
   * VectorClock.decode('a=2,b=1').get('a'); // 2
   * VectorClock.decode(message.vc, { maxLength: 4096 }); // a tighter limit for one channel
   * ```
   */
  static decode(
    text: string,
    options?: {
      /**
       * The longest input accepted (characters, ≥ 0, may be `Infinity`).
       *
       * @defaultValue `1_048_576` (1 MiB)
       */
      readonly maxLength?: number;
    },
  ): VectorClock {
    const maxLength =
      options?.maxLength === undefined
        ? DEFAULT_MAX_ENCODED_LENGTH
        : requireNonNegative('options.maxLength', options.maxLength, true);
    if (typeof text !== 'string') throw new HlcParseError(text, 'expected a string');
    if (text.length > maxLength)
      throw new HlcParseError(
        text,
        `longer than maxLength (${maxLength} characters); pass a larger options.maxLength for vectors this large`,
      );
    if (text === '') return VectorClock.#EMPTY;
    const map = new Map<string, number>();
    let previous: string | undefined;
    let start = 0;
    while (start <= text.length) {
      let end = text.indexOf(',', start);
      if (end < 0) end = text.length;
      const eq = text.indexOf('=', start);
      if (eq < 0 || eq >= end) throw new HlcParseError(text, `entry at offset ${start} has no '='`);
      const node = text.slice(start, eq);
      if (!isValidNodeId(node))
        throw new HlcParseError(
          text,
          `invalid node id at offset ${start}: ${nodeIdProblem(node) ?? 'invalid'}`,
        );
      if (previous !== undefined && !(previous < node))
        throw new HlcParseError(text, `node ${JSON.stringify(node)} is out of order or repeated`);
      const digits = text.slice(eq + 1, end);
      if (digits.length > MAX_COUNTER_DIGITS || !/^[1-9][0-9]*$/.test(digits))
        throw new HlcParseError(
          text,
          `counter of ${JSON.stringify(node)} is not a positive decimal integer`,
        );
      const counter = Number(digits);
      if (counter > MAX_COUNTER)
        throw new HlcParseError(text, `counter of ${JSON.stringify(node)} is above 2^53 − 1`);
      map.set(node, counter);
      previous = node;
      start = end + 1;
    }
    return new VectorClock(map);
  }

  /**
   * Number of nodes with a non-zero counter.
   *
   * @example
   * ```ts
   * VectorClock.from({ a: 1, b: 0 }).size; // 1
   * ```
   */
  get size(): number {
    return this.#counters.size;
  }

  /**
   * The counter of `node` (0 if absent).
   *
   * @example
   * ```ts
   * vc.get('a');
   * ```
   */
  get(node: string): number {
    return this.#counters.get(node) ?? 0;
  }

  /**
   * A copy with `node`'s counter one higher.
   *
   * @throws {@link InvalidArgumentError} if `node` is not a valid node id or its counter is at 2^53 − 1.
   * @example
   * ```ts
   * vc = vc.increment('a');
   * ```
   */
  increment(node: string): VectorClock {
    if (!isValidNodeId(node)) validateNodeId(node);
    const current = this.#counters.get(node) ?? 0;
    if (current >= MAX_COUNTER)
      throw new InvalidArgumentError(`counter of ${node}`, current, 'below 2^53 − 1');
    const map = new Map(this.#counters);
    map.set(node, current + 1);
    return new VectorClock(map);
  }

  /**
   * The pointwise maximum of the two clocks (the least clock ≥ both).
   *
   * @example
   * ```ts
   * vc = vc.merge(message.vc).increment(me);
   * ```
   */
  merge(other: VectorClock): VectorClock {
    const mine = this.#counters;
    const theirs = other.#counters;
    if (theirs.size === 0) return this;
    if (mine.size === 0) return other;
    let map: Map<string, number> | undefined;
    for (const [node, counter] of theirs) {
      if (counter > (mine.get(node) ?? 0)) {
        map ??= new Map(mine);
        map.set(node, counter);
      }
    }
    return map === undefined ? this : new VectorClock(map);
  }

  /**
   * How this clock relates to `other`: `'before'` if every counter is ≤ and
   * one is <, `'after'` for the reverse, `'equal'`, else `'concurrent'`.
   *
   * @example
   * ```ts
   * if (local.compare(remote) === 'concurrent') resolveConflict();
   * ```
   */
  compare(other: VectorClock): VectorOrder {
    const mine = this.#counters;
    const theirs = other.#counters;
    let less = false;
    let greater = false;
    for (const [node, counter] of mine) {
      const o = theirs.get(node) ?? 0;
      if (counter < o) less = true;
      else if (counter > o) greater = true;
    }
    if (!less) {
      for (const node of theirs.keys()) {
        if (!mine.has(node)) {
          less = true;
          break;
        }
      }
    }
    if (less) return greater ? 'concurrent' : 'before';
    return greater ? 'after' : 'equal';
  }

  /**
   * Whether neither clock happened before the other (and they differ).
   *
   * @example
   * ```ts
   * a.isConcurrent(b); // true: conflicting writes
   * ```
   */
  isConcurrent(other: VectorClock): boolean {
    return this.compare(other) === 'concurrent';
  }

  /**
   * A copy without `node`'s entry: for pruning a retired node once every
   * replica has seen all its events (see the pruning guidance in the docs).
   *
   * @example
   * ```ts
   * vc = vc.without('decommissioned-7');
   * ```
   */
  without(node: string): VectorClock {
    if (!this.#counters.has(node)) return this;
    const map = new Map(this.#counters);
    map.delete(node);
    return map.size === 0 ? VectorClock.#EMPTY : new VectorClock(map);
  }

  /**
   * The `[node, counter]` entries, nodes in ascending code-unit order.
   *
   * @example
   * ```ts
   * for (const [node, counter] of vc.entries()) console.log(node, counter);
   * ```
   */
  entries(): Array<[string, number]> {
    return [...this.#counters].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  }

  /**
   * Compact canonical string form, e.g. `a=2,b=1` (`''` when empty); equal
   * clocks encode identically. Decode with {@link VectorClock.decode}.
   *
   * @example
   * ```ts
   * VectorClock.from({ b: 1, a: 2 }).encode(); // 'a=2,b=1'
   * ```
   */
  encode(): string {
    return this.entries()
      .map(([node, counter]) => `${node}=${counter}`)
      .join(',');
  }

  /**
   * The same as {@link VectorClock.encode}, so clocks print and serialize readably.
   *
   * @example
   * ```ts
   * JSON.stringify({ vc }); // '{"vc":"a=2,b=1"}'
   * ```
   */
  toJSON(): string {
    return this.encode();
  }

  /**
   * The same as {@link VectorClock.encode}.
   *
   * @example
   * ```ts
   * `${vc}`; // 'a=2,b=1'
   * ```
   */
  toString(): string {
    return this.encode();
  }
}
