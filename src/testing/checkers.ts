/**
 * Checkers for ordering code: each returns `{ ok: true }` or a readable
 * counterexample (`violation` plus a `message` naming events, nodes and
 * stamps), so a failing property test says what went wrong, not just "false".
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { happenedBefore } from './history.js';
import type { CausalHistory, HistoryEvent } from './history.js';

/**
 * The outcome of a checker: success, or a violation with a readable message.
 *
 * @example
 * ```ts
 * checkMonotonic([1, 2, 3], (a, b) => a - b); //=> { ok: true }
 * checkMonotonic([1, 2, 2], (a, b) => a - b);
 * //=> { ok: false, violation: { index: 2, previous: 2, current: 2, comparison: 0 },
 * //     message: 'Stamps are not strictly increasing at index 2: 2 then 2 (compare returned 0).' }
 * ```
 */
export type CheckResult<V> =
  { readonly ok: true } | { readonly ok: false; readonly violation: V; readonly message: string };

/**
 * Options shared by the checkers.
 *
 * @example
 * ```ts
 * const late = { wallMs: 1_700_000_000_001, counter: 0, node: 'a' };
 * const early = { wallMs: 1_700_000_000_000, counter: 5, node: 'a' };
 * const result = checkMonotonic([late, early], compareHlc, { format: formatHlc });
 * if (!result.ok) result.message;
 * //=> 'Stamps are not strictly increasing at index 1: 018bcfe568010000@a then 018bcfe568000005@a (compare returned 1).'
 * ```
 */
export interface CheckOptions<T> {
  /**
   * Renders a stamp in messages.
   *
   * @defaultValue `JSON.stringify`, with bigints and vector clocks made readable
   */
  readonly format?: (stamp: T) => string;
}

/**
 * Replays a history through the code under test, in event order. Each handler
 * returns the stamp of its event; `receive` gets the stamp its send returned.
 *
 * @example
 * ```ts
 * const physical = new Map<string, number>();
 * const clocks = new Map(history.nodes.map((n) => [n, new HybridLogicalClock({ node: n, maxOffsetMs: Infinity, physical: () => physical.get(n)! })]));
 * const stamps = replayHistory(history, {
 *   local: (e) => (physical.set(e.node, e.physicalMs), clocks.get(e.node)!.now()),
 *   send: (e) => (physical.set(e.node, e.physicalMs), clocks.get(e.node)!.now()),
 *   receive: (e, sent) => (physical.set(e.node, e.physicalMs), clocks.get(e.node)!.receive(sent)),
 * });
 * ```
 */
export interface ReplayHandlers<T> {
  /** A local event. */
  local(event: HistoryEvent): T;
  /** A send event; its stamp travels with the message. */
  send(event: HistoryEvent): T;
  /** A receive event, given the stamp of the matching send. */
  receive(event: HistoryEvent, sent: T): T;
}

/**
 * Runs `handlers` over every event of `history` in order and returns the stamps,
 * indexed by event id.
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   if a receive refers to a message that was not sent earlier.
 * @throws whatever a handler throws.
 * @example
 * ```ts
 * const lamport = new Map(history.nodes.map((n) => [n, new LamportClock({ node: n })]));
 * const stamps = replayHistory(history, {
 *   local: (e) => lamport.get(e.node)!.tick(),
 *   send: (e) => lamport.get(e.node)!.tick(),
 *   receive: (e, sent) => lamport.get(e.node)!.receive(sent),
 * });
 * ```
 */
export function replayHistory<T>(history: CausalHistory, handlers: ReplayHandlers<T>): T[] {
  const stamps: T[] = [];
  for (const e of history.events) {
    if (e.kind === 'local') stamps.push(handlers.local(e));
    else if (e.kind === 'send') stamps.push(handlers.send(e));
    else {
      const m = e.message;
      if (m === undefined || m >= stamps.length || history.events[m]?.kind !== 'send')
        throw new InvalidArgumentError(
          `history.events[${e.id}].message`,
          m,
          'the id of an earlier send',
        );
      stamps.push(handlers.receive(e, stamps[m] as T));
    }
  }
  return stamps;
}

/**
 * A pair of events whose stamps contradict causality.
 *
 * @example
 * ```ts
 * if (!r.ok) console.log(r.violation.path.map((e) => e.id)); // the causal chain
 * ```
 */
export interface CausalViolation<T> {
  /** The event that happened first. */
  readonly before: HistoryEvent;
  /** The event that happened after it. */
  readonly after: HistoryEvent;
  /** Stamp of `before`. */
  readonly beforeStamp: T;
  /** Stamp of `after`. */
  readonly afterStamp: T;
  /** What `compare(beforeStamp, afterStamp)` returned (should be < 0). */
  readonly comparison: number;
  /** A shortest causal chain from `before` to `after` (both included). */
  readonly path: readonly HistoryEvent[];
}

/**
 * Checks the clock condition: if event `a` happened before event `b`, then
 * `compare(stamps[a], stamps[b]) < 0`. All happened-before pairs are checked
 * (not just direct edges), so a non-transitive `compare` is caught too. A
 * violation along a direct edge (program order, send → receive) is reported
 * in preference, since it is the easiest to read.
 *
 * @param stamps - one stamp per event, indexed by event id (see {@link replayHistory}).
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   if `stamps` does not have one entry per event.
 * @example
 * ```ts
 * const result = checkCausalOrder(history, stamps, compareHlc, { format: formatHlc });
 * expect(result.ok, result.ok ? '' : result.message).toBe(true);
 * ```
 */
export function checkCausalOrder<T>(
  history: CausalHistory,
  stamps: readonly T[],
  compare: (a: T, b: T) => number,
  options: CheckOptions<T> = {},
): CheckResult<CausalViolation<T>> {
  const events = history.events;
  requireStamps(history, stamps);
  const bad = (a: number, b: number): number | undefined => {
    const c = compare(stamps[a] as T, stamps[b] as T);
    return c < 0 ? undefined : c;
  };
  const report = (a: number, b: number, c: number): CheckResult<CausalViolation<T>> => {
    const before = events[a] as HistoryEvent;
    const after = events[b] as HistoryEvent;
    const path = causalPath(history, a, b);
    const format = options.format ?? defaultFormat;
    const violation: CausalViolation<T> = {
      before,
      after,
      beforeStamp: stamps[a] as T,
      afterStamp: stamps[b] as T,
      comparison: c,
      path,
    };
    const message =
      `Causality violated: ${describe(before)} happened before ${describe(after)}, ` +
      `but its stamp ${format(stamps[a] as T)} is not smaller than ${format(stamps[b] as T)} ` +
      `(compare returned ${c}). Causal chain: ${path.map(describe).join(' → ')}. ` +
      `History: ${history.events.length} events on ${history.nodes.length} nodes.`;
    return { ok: false, violation, message };
  };

  for (const [a, b] of directEdges(history)) {
    const c = bad(a, b);
    if (c !== undefined) return report(a, b, c);
  }
  const hb = happenedBefore(history);
  for (let b = 0; b < events.length; b++) {
    for (let a = 0; a < b; a++) {
      if (!hb(a, b)) continue;
      const c = bad(a, b);
      if (c !== undefined) return report(a, b, c);
    }
  }
  return { ok: true };
}

/**
 * How two stamps relate under a partial order such as a vector clock's.
 *
 * @example
 * ```ts
 * const relate = (a: VectorClock, b: VectorClock): CausalRelation => a.compare(b);
 * ```
 */
export type CausalRelation = 'before' | 'after' | 'equal' | 'concurrent';

/**
 * A pair of events whose stamps misreport their causal relation.
 *
 * @example
 * ```ts
 * if (!r.ok) console.log(r.violation.expected, r.violation.actual);
 * ```
 */
export interface RelationViolation<T> {
  /** The earlier event (in history order). */
  readonly first: HistoryEvent;
  /** The later event (in history order). */
  readonly second: HistoryEvent;
  /** Stamp of `first`. */
  readonly firstStamp: T;
  /** Stamp of `second`. */
  readonly secondStamp: T;
  /** The true relation of `first` to `second`. */
  readonly expected: CausalRelation;
  /** What `relate(firstStamp, secondStamp)` returned. */
  readonly actual: CausalRelation;
}

/**
 * Checks strong clock consistency: for every pair of distinct events `a`, `b`
 * (a earlier in the history), `relate(stamps[a], stamps[b])` is `'before'`
 * exactly when `a` happened before `b`, and `'concurrent'` exactly when neither
 * happened before the other. Vector clocks satisfy it; Lamport and hybrid
 * clocks do not (they order concurrent events).
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   if `stamps` does not have one entry per event.
 * @example
 * ```ts
 * const result = checkStrongClockConsistency(history, vectorStamps, (a, b) => a.compare(b));
 * ```
 */
export function checkStrongClockConsistency<T>(
  history: CausalHistory,
  stamps: readonly T[],
  relate: (a: T, b: T) => CausalRelation,
  options: CheckOptions<T> = {},
): CheckResult<RelationViolation<T>> {
  const events = history.events;
  requireStamps(history, stamps);
  const hb = happenedBefore(history);
  for (let b = 0; b < events.length; b++) {
    for (let a = 0; a < b; a++) {
      // History order follows true time, so b → a is impossible; a → b or concurrent.
      const expected: CausalRelation = hb(a, b) ? 'before' : 'concurrent';
      const actual = relate(stamps[a] as T, stamps[b] as T);
      if (actual !== expected) {
        const first = events[a] as HistoryEvent;
        const second = events[b] as HistoryEvent;
        const format = options.format ?? defaultFormat;
        return {
          ok: false,
          violation: {
            first,
            second,
            firstStamp: stamps[a] as T,
            secondStamp: stamps[b] as T,
            expected,
            actual,
          },
          message:
            `${describe(first)} is ${expected === 'before' ? 'causally before' : 'concurrent with'} ` +
            `${describe(second)}, but their stamps ${format(stamps[a] as T)} and ` +
            `${format(stamps[b] as T)} relate as '${actual}' (expected '${expected}').`,
        };
      }
    }
  }
  return { ok: true };
}

/**
 * A place where a sequence of stamps fails to increase.
 *
 * @example
 * ```ts
 * if (!r.ok) console.log(r.violation.index);
 * ```
 */
export interface MonotonicViolation<T> {
  /** Index of the stamp that is not greater than its predecessor. */
  readonly index: number;
  /** The stamp at `index − 1`. */
  readonly previous: T;
  /** The stamp at `index`. */
  readonly current: T;
  /** What `compare(previous, current)` returned. */
  readonly comparison: number;
}

/**
 * Options of {@link checkMonotonic}.
 *
 * @example
 * ```ts
 * checkMonotonic([1, 2, 2], (a, b) => a - b, { strict: false }); //=> { ok: true } (equal neighbours allowed)
 * ```
 */
export interface MonotonicOptions<T> extends CheckOptions<T> {
  /**
   * Require strictly increasing stamps, or (`false`) allow equal neighbours.
   *
   * @defaultValue `true`
   */
  readonly strict?: boolean;
}

/**
 * Checks that `stamps` increase: `compare(stamps[i − 1], stamps[i]) < 0`
 * (or `≤ 0` with `strict: false`) for every `i`.
 *
 * @example
 * ```ts
 * const stamps = Array.from({ length: 1000 }, () => hlc.now());
 * const result = checkMonotonic(stamps, compareHlc, { format: formatHlc });
 * if (!result.ok) throw new Error(result.message);
 * ```
 */
export function checkMonotonic<T>(
  stamps: readonly T[],
  compare: (a: T, b: T) => number,
  options: MonotonicOptions<T> = {},
): CheckResult<MonotonicViolation<T>> {
  const strict = options.strict ?? true;
  for (let i = 1; i < stamps.length; i++) {
    const previous = stamps[i - 1] as T;
    const current = stamps[i] as T;
    const c = compare(previous, current);
    if (c < 0 || (!strict && c === 0)) continue;
    const format = options.format ?? defaultFormat;
    return {
      ok: false,
      violation: { index: i, previous, current, comparison: c },
      message:
        `Stamps are not ${strict ? 'strictly ' : ''}increasing at index ${i}: ` +
        `${format(previous)} then ${format(current)} (compare returned ${c}).`,
    };
  }
  return { ok: true };
}

function requireStamps(history: CausalHistory, stamps: readonly unknown[]): void {
  if (stamps.length !== history.events.length)
    throw new InvalidArgumentError(
      'stamps',
      `array of ${stamps.length}`,
      `one stamp per event (${history.events.length})`,
    );
}

/** Program-order and message edges, in history order. */
function directEdges(history: CausalHistory): Array<[number, number]> {
  const edges: Array<[number, number]> = [];
  const last = new Map<string, number>();
  for (const e of history.events) {
    const prev = last.get(e.node);
    if (prev !== undefined) edges.push([prev, e.id]);
    if (e.kind === 'receive' && e.message !== undefined) edges.push([e.message, e.id]);
    last.set(e.node, e.id);
  }
  return edges;
}

/** A shortest chain of direct edges from `a` to `b` (breadth-first search). */
function causalPath(history: CausalHistory, a: number, b: number): HistoryEvent[] {
  const next = new Map<number, number[]>();
  for (const [x, y] of directEdges(history)) {
    const list = next.get(x);
    if (list) list.push(y);
    else next.set(x, [y]);
  }
  const parent = new Map<number, number>([[a, a]]);
  const queue = [a];
  for (let q = 0; q < queue.length && !parent.has(b); q++) {
    const x = queue[q] as number;
    for (const y of next.get(x) ?? []) {
      if (!parent.has(y)) {
        parent.set(y, x);
        queue.push(y);
      }
    }
  }
  if (!parent.has(b)) return [history.events[a] as HistoryEvent, history.events[b] as HistoryEvent];
  const ids = [b];
  while (ids[0] !== a) ids.unshift(parent.get(ids[0] as number) as number);
  return ids.map((id) => history.events[id] as HistoryEvent);
}

function describe(e: HistoryEvent): string {
  const what =
    e.kind === 'local'
      ? 'local'
      : e.kind === 'send'
        ? `send of message ${e.message}`
        : `receive of message ${e.message}`;
  return `#${e.id} (${e.node}, ${what}, physical ${e.physicalMs})`;
}

function defaultFormat(stamp: unknown): string {
  if (typeof stamp === 'bigint') return `${stamp}n`;
  if (typeof stamp === 'object' && stamp !== null && !Array.isArray(stamp)) {
    const s = stamp as { toJSON?: unknown };
    if (typeof s.toJSON === 'function') return String((s.toJSON as () => unknown).call(stamp));
  }
  try {
    return (
      JSON.stringify(stamp, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ??
      String(stamp)
    );
  } catch {
    return String(stamp);
  }
}
