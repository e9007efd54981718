/**
 * Checkers against the truth a simulation knows: do honest intervals contain
 * true time, and is a register history linearizable (and, when stamped by
 * commit-wait, are its timestamps in real-time order)? Each returns
 * `{ ok: true }` or a readable counterexample.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { ClockStatus } from '../clock/types.js';
import type { CheckResult } from './checkers.js';

/**
 * One clock reading next to the true time it was taken at.
 *
 * @example
 * ```ts
 * const result = checkIntervalsContainTruth([
 *   { reading: { earliest: 100, latest: 110 }, trueTime: 105 },
 *   { reading: { earliest: 200, latest: 210 }, trueTime: 212, label: 'after pause' },
 * ]);
 * if (!result.ok) result.message;
 * //=> 'Reading #1 (after pause) [200, 210] does not contain true time 212 (1970-01-01T00:00:00.212Z):
 * //    true time is 2 ms after latest. 1 of 2 checked readings missed.'
 * ```
 */
export interface TruthReading {
  /** The reading: at least `earliest` and `latest` (a `TimeReading` fits). */
  readonly reading: {
    readonly earliest: number;
    readonly latest: number;
    readonly status?: ClockStatus;
  };
  /** True time (epoch ms) when the reading was taken, e.g. `SimulatedClock.trueNow()`. */
  readonly trueTime: number;
  /** Shown in the message, e.g. which node or step. */
  readonly label?: string;
}

/**
 * The first reading whose interval missed true time.
 *
 * @example
 * ```ts
 * if (!result.ok) console.log(result.violation.index, result.violation.missedByMs);
 * ```
 */
export interface IntervalViolation {
  /** Index of the reading in the input. */
  readonly index: number;
  /** The reading. */
  readonly reading: TruthReading;
  /** How far outside the interval true time was (ms, > 0). */
  readonly missedByMs: number;
  /** Which side missed: true time was before `earliest` or after `latest`. */
  readonly side: 'before-earliest' | 'after-latest';
  /** How many of the checked readings missed. */
  readonly failures: number;
  /** How many readings were checked. */
  readonly checked: number;
}

/**
 * Options of {@link checkIntervalsContainTruth}.
 *
 * @example
 * ```ts
 * const missed = { reading: { earliest: 200, latest: 210, status: 'unsynchronized' as const }, trueTime: 212 };
 * checkIntervalsContainTruth([missed]).ok;                                                  //=> false
 * checkIntervalsContainTruth([missed], { statuses: ['synchronized', 'free-running'] }).ok; //=> true (it made no promise)
 * ```
 */
export interface IntervalCheckOptions {
  /**
   * Check only readings with these statuses (readings without a status are always checked).
   *
   * @defaultValue all statuses
   */
  readonly statuses?: readonly ClockStatus[];
}

/**
 * Checks that every reading's `[earliest, latest]` contains the true time it
 * was taken at — the one promise an honest clock makes.
 *
 * @param readings - Readings paired with true time.
 * @param options - Which statuses to hold to the promise.
 * @returns `{ ok: true }`, or the first reading that missed, how far, and how many missed.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `readings` is not an array or a `trueTime` is not a number.
 *
 * @example
 * ```ts
 * const readings = Array.from({ length: 100 }, () => {
 *   sim.advance(1000);
 *   return { reading: clock.now(), trueTime: sim.trueNow() };
 * });
 * const result = checkIntervalsContainTruth(readings); //=> { ok: true } for an honest clock
 * if (!result.ok) throw new Error(result.message);
 * ```
 */
export function checkIntervalsContainTruth(
  readings: readonly TruthReading[],
  options: IntervalCheckOptions = {},
): CheckResult<IntervalViolation> {
  if (!isList(readings)) {
    throw new InvalidArgumentError('readings', readings, 'an array of { reading, trueTime }');
  }
  const statuses = options.statuses === undefined ? undefined : new Set(options.statuses);
  let first: Omit<IntervalViolation, 'failures' | 'checked'> | undefined;
  let failures = 0;
  let checked = 0;
  readings.forEach((entry, index) => {
    const { reading, trueTime } = entry;
    if (typeof trueTime !== 'number' || Number.isNaN(trueTime)) {
      throw new InvalidArgumentError(`readings[${index}].trueTime`, trueTime, 'an epoch-ms number');
    }
    if (statuses && reading.status !== undefined && !statuses.has(reading.status)) return;
    checked++;
    // Written so that NaN bounds count as a miss.
    const early = !(reading.earliest <= trueTime);
    const late = !(trueTime <= reading.latest);
    if (!early && !late) return;
    failures++;
    first ??= early
      ? { index, reading: entry, missedByMs: reading.earliest - trueTime, side: 'before-earliest' }
      : { index, reading: entry, missedByMs: trueTime - reading.latest, side: 'after-latest' };
  });
  if (first === undefined) return { ok: true };
  const violation: IntervalViolation = { ...first, failures, checked };
  const { reading, trueTime, label } = violation.reading;
  const where = label === undefined ? '' : ` (${label})`;
  const status = reading.status === undefined ? '' : `, status ${reading.status}`;
  const sideText =
    violation.side === 'before-earliest'
      ? `true time is ${fmt(violation.missedByMs)} ms before earliest`
      : `true time is ${fmt(violation.missedByMs)} ms after latest`;
  return {
    ok: false,
    violation,
    message:
      `Reading #${violation.index}${where} [${reading.earliest}, ${reading.latest}]${status} ` +
      `does not contain true time ${trueTime} (${isoOf(trueTime)}): ${sideText}. ` +
      `${failures} of ${checked} checked readings missed.`,
  };
}

/**
 * One operation on a single register, with the true times it was invoked and
 * completed at (from a simulation), and optionally the commit timestamp it was
 * given.
 *
 * @example
 * ```ts
 * checkLinearizableRegister(
 *   [
 *     { kind: 'write', value: 1, invokeMs: 0, completeMs: 12, timestamp: 10.5, client: 'a' },
 *     { kind: 'read', value: 0, invokeMs: 20, completeMs: 25, timestamp: 22, client: 'b' }, // a stale read
 *   ],
 *   { initial: 0 },
 * ).ok; //=> false (returning 1 instead, it is { ok: true })
 * ```
 */
export interface RegisterOp<V> {
  /** A write of `value`, or a read that returned `value`. */
  readonly kind: 'write' | 'read';
  /** Written, or returned. */
  readonly value: V;
  /** True time the client invoked it (ms). */
  readonly invokeMs: number;
  /** True time the client saw it complete (ms); omit (or `Infinity`) if it never did — such a write may or may not have taken effect. */
  readonly completeMs?: number;
  /** Commit (or read) timestamp, e.g. from `commitWait`; enables the real-time order check. */
  readonly timestamp?: number;
  /** Who issued it; shown in messages. */
  readonly client?: string;
}

/**
 * Why a register history failed.
 *
 * @example
 * ```ts
 * if (!result.ok && result.violation.kind === 'not-linearizable') console.table(result.violation.ops);
 * ```
 */
export type RegisterViolation<V> =
  | {
      /** No order of the operations both respects real time and explains every read. */
      readonly kind: 'not-linearizable';
      /**
       * A minimal subset of the history that is already not linearizable: removing any
       * read, or any write whose value no remaining read returns, makes it linearizable.
       */
      readonly ops: readonly RegisterOp<V>[];
      /** Their indices in the input. */
      readonly indices: readonly number[];
    }
  | {
      /** `earlier` completed before `later` was invoked, yet got a timestamp that is not smaller. */
      readonly kind: 'timestamp-order';
      /** The operation that finished first. */
      readonly earlier: RegisterOp<V>;
      /** The operation that started after it finished. */
      readonly later: RegisterOp<V>;
      /** Their indices in the input. */
      readonly indices: readonly [number, number];
    };

/**
 * Options of {@link checkLinearizableRegister}.
 *
 * @example
 * ```ts
 * const result = checkLinearizableRegister(
 *   [
 *     { kind: 'write', value: 'x', invokeMs: 0, completeMs: 12 },
 *     { kind: 'read', value: '', invokeMs: 20, completeMs: 25 },
 *   ],
 *   { initial: '', format: (v) => JSON.stringify(v) },
 * );
 * if (!result.ok) result.message;
 * //=> 'Not linearizable: no order of these 2 operations (a minimal subset of 2; initial value ""; times in ms after 0)
 * //    respects real time and explains every read:\n  #0 write("x") [0, 12]\n  #1 read() → "" [20, 25]'
 * ```
 */
export interface RegisterCheckOptions<V> {
  /**
   * The register's value before any write.
   *
   * @defaultValue `undefined`
   */
  readonly initial?: V;
  /**
   * Value equality.
   *
   * @defaultValue `Object.is`
   */
  readonly equals?: (a: V, b: V) => boolean;
  /**
   * Renders a value in messages.
   *
   * @defaultValue `JSON.stringify`
   */
  readonly format?: (value: V) => string;
  /**
   * Refuse histories longer than this (the search is exponential in the worst case).
   *
   * @defaultValue `200`
   */
  readonly maxOps?: number;
}

/**
 * Checks a single-register read/write history for linearizability by search
 * (Wing & Gong, memoized on the set of operations placed and the current
 * value): some total order must respect real time (an operation that completed
 * before another was invoked comes first) and make every read return the
 * latest write before it. Writes that never completed may be placed anywhere
 * after their invocation, or nowhere; reads that never completed are ignored.
 *
 * When every completed operation carries a `timestamp`, it also checks the
 * guarantee commit-wait gives: if `a` completed before `b` was invoked,
 * `a.timestamp < b.timestamp`.
 *
 * On failure the message lists a minimal non-linearizable subset, or the pair
 * whose timestamps are out of order.
 *
 * @param ops - The history, in any order.
 * @param options - Initial value, equality, formatting and a size limit.
 * @returns `{ ok: true }` or a counterexample.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When an operation is malformed or the history exceeds `maxOps`.
 *
 * @example
 * ```ts
 * const result = checkLinearizableRegister([
 *   { kind: 'write', value: 1, invokeMs: 0, completeMs: 10 },
 *   { kind: 'read', value: 0, invokeMs: 11, completeMs: 12 },
 * ], { initial: 0 });
 * result.ok; // false: the read started after the write finished but saw the old value
 * ```
 */
export function checkLinearizableRegister<V>(
  ops: readonly RegisterOp<V>[],
  options: RegisterCheckOptions<V> = {},
): CheckResult<RegisterViolation<V>> {
  const maxOps = options.maxOps ?? 200;
  if (!isList(ops)) throw new InvalidArgumentError('ops', ops, 'an array of register operations');
  if (ops.length > maxOps) {
    throw new InvalidArgumentError('ops', `${ops.length} operations`, `at most maxOps (${maxOps})`);
  }
  ops.forEach(validateOp);
  const equals = options.equals ?? Object.is;
  const format = options.format ?? defaultFormat;
  const initial = options.initial as V;

  const relevant = ops.map((_, i) => i).filter((i) => !isPendingRead(ops[i] as RegisterOp<V>));
  if (!linearizable(ops, relevant, initial, equals)) {
    // Shrink to a minimal core: drop every operation the failure does not need,
    // but keep the writes whose values remaining reads return, so it still reads as a story.
    let core = relevant;
    for (let changed = true; changed;) {
      changed = false;
      for (const i of core) {
        const op = ops[i] as RegisterOp<V>;
        const without = core.filter((j) => j !== i);
        const explainsRead =
          op.kind === 'write' &&
          without.some((j) => {
            const other = ops[j] as RegisterOp<V>;
            return other.kind === 'read' && equals(other.value, op.value);
          });
        if (!explainsRead && !linearizable(ops, without, initial, equals)) {
          core = without;
          changed = true;
        }
      }
    }
    const coreOps = core.map((i) => ops[i] as RegisterOp<V>);
    const base = Math.min(...coreOps.map((op) => op.invokeMs));
    const lines = core.map((i) => `  ${describeOp(ops[i] as RegisterOp<V>, i, base, format)}`);
    return {
      ok: false,
      violation: { kind: 'not-linearizable', ops: coreOps, indices: core },
      message:
        `Not linearizable: no order of these ${core.length} operations (a minimal subset of ` +
        `${ops.length}; initial value ${format(initial)}; times in ms after ${base}) respects ` +
        `real time and explains every read:\n${lines.join('\n')}`,
    };
  }

  const stamped = ops
    .map((op, i) => [op, i] as const)
    .filter(([op]) => completed(op) && !isPendingRead(op));
  if (stamped.length > 0 && stamped.every(([op]) => typeof op.timestamp === 'number')) {
    for (const [a, i] of stamped) {
      for (const [b, j] of stamped) {
        if (
          (a.completeMs as number) < b.invokeMs &&
          !((a.timestamp as number) < (b.timestamp as number))
        ) {
          const base = a.invokeMs;
          return {
            ok: false,
            violation: { kind: 'timestamp-order', earlier: a, later: b, indices: [i, j] },
            message:
              `Timestamps out of real-time order (times in ms after ${base}):\n` +
              `  ${describeOp(a, i, base, format)}\n  ${describeOp(b, j, base, format)}\n` +
              `#${i} completed before #${j} was invoked, but its timestamp ${a.timestamp} is not ` +
              `below ${b.timestamp}. Commit-wait prevents this: wait until the timestamp has ` +
              'definitely passed before acknowledging.',
          };
        }
      }
    }
  }
  return { ok: true };
}

function linearizable<V>(
  ops: readonly RegisterOp<V>[],
  subset: readonly number[],
  initial: V,
  equals: (a: V, b: V) => boolean,
): boolean {
  const n = subset.length;
  const items = subset.map((i) => ops[i] as RegisterOp<V>);
  const mustPlace = items.map(completed);
  const remainingRequired = items.filter(completed).length;
  const failed = new Set<string>();
  const placed = new Array<boolean>(n).fill(false);

  // `writer` is the index (in `items`) of the write whose value the register holds; -1 = initial.
  const search = (requiredLeft: number, writer: number): boolean => {
    if (requiredLeft === 0) return true;
    const key = `${placed.map((p) => (p ? 1 : 0)).join('')}:${writer}`;
    if (failed.has(key)) return false;
    // An operation can go next only if no unplaced operation completed before it was invoked.
    let horizon = Infinity;
    for (let k = 0; k < n; k++) {
      if (!placed[k])
        horizon = Math.min(horizon, (items[k] as RegisterOp<V>).completeMs ?? Infinity);
    }
    const current = writer === -1 ? initial : (items[writer] as RegisterOp<V>).value;
    for (let k = 0; k < n; k++) {
      const op = items[k] as RegisterOp<V>;
      if (placed[k] || op.invokeMs > horizon) continue;
      if (op.kind === 'read' && !equals(op.value, current)) continue;
      placed[k] = true;
      const ok = search(requiredLeft - (mustPlace[k] ? 1 : 0), op.kind === 'write' ? k : writer);
      placed[k] = false;
      if (ok) return true;
    }
    failed.add(key);
    return false;
  };
  return search(remainingRequired, -1);
}

function completed<V>(op: RegisterOp<V>): boolean {
  return op.completeMs !== undefined && Number.isFinite(op.completeMs);
}

function isPendingRead<V>(op: RegisterOp<V>): boolean {
  return op.kind === 'read' && !completed(op);
}

function validateOp<V>(op: RegisterOp<V>, index: number): void {
  if (op?.kind !== 'write' && op?.kind !== 'read') {
    throw new InvalidArgumentError(`ops[${index}].kind`, op?.kind, "'write' or 'read'");
  }
  if (typeof op.invokeMs !== 'number' || !Number.isFinite(op.invokeMs)) {
    throw new InvalidArgumentError(`ops[${index}].invokeMs`, op.invokeMs, 'a finite number (ms)');
  }
  if (
    op.completeMs !== undefined &&
    (typeof op.completeMs !== 'number' ||
      Number.isNaN(op.completeMs) ||
      op.completeMs < op.invokeMs)
  ) {
    throw new InvalidArgumentError(
      `ops[${index}].completeMs`,
      op.completeMs,
      `a number ≥ invokeMs (${op.invokeMs}), or undefined`,
    );
  }
  if (
    op.timestamp !== undefined &&
    (typeof op.timestamp !== 'number' || Number.isNaN(op.timestamp))
  ) {
    throw new InvalidArgumentError(
      `ops[${index}].timestamp`,
      op.timestamp,
      'a number or undefined',
    );
  }
}

function describeOp<V>(
  op: RegisterOp<V>,
  index: number,
  base: number,
  format: (value: V) => string,
): string {
  const what = op.kind === 'write' ? `write(${format(op.value)})` : `read() → ${format(op.value)}`;
  const end = completed(op) ? fmt((op.completeMs as number) - base) : 'never completed';
  const who = op.client === undefined ? '' : ` by ${op.client}`;
  const ts = op.timestamp === undefined ? '' : ` ts=${op.timestamp}`;
  return `#${index} ${what}${who} [${fmt(op.invokeMs - base)}, ${end}]${ts}`;
}

function defaultFormat(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function fmt(ms: number): string {
  return Number(ms.toFixed(3)).toString();
}

function isoOf(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? 'invalid date' : d.toISOString();
}

/** `Array.isArray` without its narrowing to `any[]` (inputs are checked because callers may be untyped). */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}
