/**
 * Stamping database writes with hybrid logical timestamps: issue the stamp, run
 * the write with it, and decode stamps read back from rows or messages without
 * letting a malformed or far-future one poison the clock.
 *
 * Driver-agnostic on purpose: nothing here imports a database client. The values
 * it produces bind directly as query parameters (`bigint` for a SQL `BIGINT`,
 * `string` for `TEXT`).
 *
 * @module
 */
import { HlcParseError } from '../errors.js';
import { HLC_MAX_COUNTER, isHlcCounter, isHlcWallMs } from './hlc-range.js';
import type { HybridLogicalClock, HlcTimestamp } from './hlc.js';
import { formatHlc, hlcFromBigInt, hlcToBigInt, MAX_TEXT, parseHlc } from './hlc-codec.js';
import { isValidNodeId, nodeIdProblem } from './node-id.js';

/**
 * A stamp as it arrives from outside: a {@link formatHlc} string, a `bigint`
 * from {@link hlcToBigInt}, the decimal string PostgreSQL drivers return for a
 * `BIGINT`, a safe-integer `number`, or a timestamp object.
 *
 * @example
 * ```ts
 * decodeHlc('018bcfe568000000@a');       //=> { wallMs: 1700000000000, counter: 0, node: 'a' }
 * decodeHlc(111411200000000000n, 'a');   //=> the same stamp, from a BIGINT read by better-sqlite3
 * decodeHlc('111411200000000000', 'a');  //=> the same stamp, from the text node-postgres returns
 * ```
 */
export type EncodedHlc = string | bigint | number | HlcTimestamp;

/**
 * SQL-ready values of one timestamp: `bigint` for a `BIGINT` column (numeric
 * order is timestamp order; the node breaks ties), `text` for a `TEXT` column
 * (lexicographic order is the full {@link compareHlc} order, node included).
 *
 * @example
 * ```ts
 * const { bigint, node } = sqlHlc(ts);
 * db.prepare('INSERT INTO kv (k, v, hlc, node) VALUES (?, ?, ?, ?)').run(k, v, bigint, node);
 * ```
 */
export interface SqlHlc {
  /** `hlcToBigInt(ts)`: 48-bit ms ‖ 16-bit counter. */
  readonly bigint: bigint;
  /** `formatHlc(ts)`: fixed-width hex, `@`, node id. */
  readonly text: string;
  /** The issuing node, the tie-breaker next to a `BIGINT` column. */
  readonly node: string;
}

/**
 * What {@link stampWrite} returns: the stamp the write was made with and what
 * the write returned.
 *
 * @example
 * ```ts
 * const { timestamp, result }: Stamped<number> = stampWrite(hlc, () => 1);
 * ```
 */
export interface Stamped<T> {
  /** The timestamp issued for the write. */
  readonly timestamp: HlcTimestamp;
  /** What the write function returned (awaited, for an async write). */
  readonly result: T;
}

/**
 * Options of {@link stampWrite}.
 *
 * @example
 * ```ts
 * const hlc = new HybridLogicalClock({ node: 'b', physical: () => 1_700_000_000_000 });
 * stampWrite(hlc, (ts) => ts.counter, { after: '018bcfe568050002@a' }); // the row read was written at a's 005/2
 * //=> { timestamp: { wallMs: 1700000000005, counter: 3, node: 'b' }, result: 3 }
 * ```
 */
export interface StampWriteOptions {
  /**
   * Stamps the write depends on (the row it read, the message it answers). They
   * are validated like {@link receiveStamped} before anything is issued, and the
   * write's timestamp is greater than all of them: one tick, however many.
   */
  readonly after?: EncodedHlc | readonly EncodedHlc[];
  /** Node id for encodings that do not carry one (`bigint`, decimal string, number). */
  readonly node?: string;
}

/**
 * What {@link receiveStamped} returns.
 *
 * @example
 * ```ts
 * const { remote, timestamp }: ReceivedStamp = receiveStamped(hlc, message.hlc);
 * ```
 */
export interface ReceivedStamp {
  /** The decoded incoming timestamp. */
  readonly remote: HlcTimestamp;
  /** The receive event's local timestamp: greater than `remote` and everything before. */
  readonly timestamp: HlcTimestamp;
}

const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

/**
 * The SQL-ready encodings of a timestamp.
 *
 * @param ts - A timestamp issued by a {@link HybridLogicalClock}.
 * @returns Its `BIGINT` value, its sortable text, and its node.
 * @throws {@link InvalidArgumentError} Naming the field when `ts` is out of range.
 *
 * @example
 * ```ts
 * await client.query('INSERT INTO kv (k, v, hlc, node) VALUES ($1, $2, $3, $4)', [k, v, sql.bigint, sql.node]);
 * ```
 */
export function sqlHlc(ts: HlcTimestamp): SqlHlc {
  return { bigint: hlcToBigInt(ts), text: formatHlc(ts), node: ts.node };
}

/**
 * Decodes a stamp read from a row or a message, strictly: anything that is not
 * exactly a valid timestamp is an {@link HlcParseError} naming the input.
 *
 * A string longer than the longest valid stamp (81 characters) is refused before
 * anything scans it, and errors quote at most the first 64 characters of the
 * input, so a hostile 50 MB string costs microseconds.
 *
 * Accepts a {@link formatHlc} string; a `bigint` (better-sqlite3 with
 * `safeIntegers()`); a decimal string (node-postgres returns `BIGINT` as text);
 * a `number` only if it is a safe integer (a `BIGINT` stamp read as a plain
 * JavaScript number has lost its low bits, so it is refused rather than
 * silently rounded); or a timestamp object, whose fields are checked.
 *
 * @param encoded - The stamp.
 * @param node - Node id for the encodings that do not carry one.
 * @returns The timestamp.
 * @throws {@link HlcParseError} Naming the input when it is malformed, out of range,
 *   an unsafe number, or lacks a valid node id.
 *
 * @example
 * ```ts
 * const ts = decodeHlc(row.hlc, row.node); // row from `SELECT hlc, node FROM kv`
 * ```
 */
export function decodeHlc(encoded: EncodedHlc, node?: string): HlcTimestamp {
  switch (typeof encoded) {
    case 'bigint':
      return hlcFromBigInt(encoded, requireNode(encoded, node));
    case 'number':
      if (!Number.isSafeInteger(encoded) || encoded < 0) {
        throw new HlcParseError(
          encoded,
          'a number stamp must be a non-negative safe integer; BIGINT stamps lose precision as ' +
            'JavaScript numbers, read them as bigint (better-sqlite3: safeIntegers()) or text',
        );
      }
      return hlcFromBigInt(BigInt(encoded), requireNode(encoded, node));
    case 'string':
      if (encoded.length > MAX_TEXT)
        throw new HlcParseError(
          encoded,
          `longer than any stamp (${MAX_TEXT} characters: 16 hex digits, '@' and a node id ` +
            'of at most 64, or a decimal BIGINT of at most 20 digits)',
        );
      if (DECIMAL.test(encoded)) return hlcFromBigInt(BigInt(encoded), requireNode(encoded, node));
      return parseHlc(encoded);
    case 'object':
      if (encoded !== null) return checkObject(encoded);
      break;
    default:
      break;
  }
  throw new HlcParseError(
    encoded,
    'expected a string, bigint, number or { wallMs, counter, node }',
  );
}

/**
 * Records the receipt of a stamp from a row or a message: decodes it strictly,
 * then advances the clock past it. Bad input changes nothing: a malformed stamp
 * throws {@link HlcParseError} before the clock is touched, and one further
 * ahead of physical time than the clock's `maxOffsetMs` throws
 * `ClockOffsetError` with the clock unchanged. Either way the caller
 * should not apply the write the stamp came with.
 *
 * @param hlc - This node's clock.
 * @param encoded - The incoming stamp (see {@link EncodedHlc}).
 * @param node - Node id for encodings that do not carry one.
 * @returns The decoded remote and the receive event's local timestamp.
 * @throws {@link HlcParseError} When `encoded` is malformed (clock unchanged).
 * @throws {@link ClockOffsetError} When it is too far in the future (clock unchanged).
 * @throws {@link HlcOverflowError} When the counter would overflow (clock unchanged).
 *
 * @example
 * ```ts
 * const { timestamp } = receiveStamped(hlc, message.hlc); // throws before applying a poisoned message
 * apply(message, timestamp);
 * ```
 */
export function receiveStamped(
  hlc: HybridLogicalClock,
  encoded: EncodedHlc,
  node?: string,
): ReceivedStamp {
  const remote = decodeHlc(encoded, node);
  return { remote, timestamp: hlc.receive(remote) };
}

/**
 * Issues a timestamp and runs `write` with it. With `options.after`, the
 * dependencies are decoded and checked first (as in {@link receiveStamped}) and
 * the timestamp is greater than every one of them, so a read-modify-write is
 * always ordered after what it read, whatever the clock skew between writers.
 *
 * If `write` returns a promise, so does `stampWrite`. If `write` throws, the
 * timestamp is simply never used; the clock stays monotonic.
 *
 * @param hlc - This node's clock.
 * @param write - The write; receives the timestamp.
 * @param options - Causal dependencies of the write.
 * @returns `{ timestamp, result }` (a promise of it for an async `write`).
 * @throws {@link HlcParseError} When a dependency is malformed (nothing issued, nothing written).
 * @throws {@link ClockOffsetError} When a dependency is too far in the future (nothing issued, nothing written).
 * @throws {@link HlcOverflowError} When the counter is exhausted (nothing written).
 *
 * @example
 * ```ts
 * const upsert = db.prepare('INSERT INTO kv (k, v, hlc, node) VALUES (?, ?, ?, ?) ON CONFLICT (k) DO UPDATE ...');
 * const { timestamp } = stampWrite(hlc, (ts) => { upsert.run('x', 2, hlcToBigInt(ts), ts.node); }, { after: row.hlc, node: row.node });
 * const { result } = await stampWrite(hlc, (ts) => client.query(sql, ['x', 2, hlcToBigInt(ts), ts.node]));
 * ```
 */
export function stampWrite<T>(
  hlc: HybridLogicalClock,
  write: (timestamp: HlcTimestamp) => PromiseLike<T>,
  options?: StampWriteOptions,
): Promise<Stamped<T>>;
/**
 * Synchronous form of {@link stampWrite} (e.g. better-sqlite3): returns
 * `{ timestamp, result }` directly.
 *
 * @param hlc - This node's clock.
 * @param write - The write; receives the timestamp.
 * @param options - Causal dependencies of the write.
 * @returns `{ timestamp, result }`.
 * @throws {@link HlcParseError} When a dependency is malformed (nothing issued, nothing written).
 * @throws {@link ClockOffsetError} When a dependency is too far in the future (nothing issued, nothing written).
 * @throws {@link HlcOverflowError} When the counter is exhausted (nothing written).
 *
 * @example
 * ```ts
 * const { timestamp } = stampWrite(hlc, (ts) => { insert.run(k, v, hlcToBigInt(ts), ts.node); });
 * // timestamp: the HLC stamp the row was written with; the write ran exactly once
 * ```
 */
export function stampWrite<T>(
  hlc: HybridLogicalClock,
  write: (timestamp: HlcTimestamp) => T,
  options?: StampWriteOptions,
): Stamped<T>;
export function stampWrite<T>(
  hlc: HybridLogicalClock,
  write: (timestamp: HlcTimestamp) => T | PromiseLike<T>,
  options?: StampWriteOptions,
): Stamped<T> | Promise<Stamped<T>> {
  const after = options?.after;
  let timestamp: HlcTimestamp;
  if (after === undefined) {
    timestamp = hlc.now();
  } else if (Array.isArray(after)) {
    const deps = (after as readonly EncodedHlc[]).map((e) => decodeHlc(e, options?.node));
    timestamp = hlc.receiveMany(deps);
  } else {
    timestamp = hlc.receive(decodeHlc(after as EncodedHlc, options?.node));
  }
  const result = write(timestamp);
  if (isThenable(result)) {
    return Promise.resolve(result).then((value) => ({ timestamp, result: value }));
  }
  return { timestamp, result };
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function requireNode(encoded: unknown, node: string | undefined): string {
  if (node === undefined) {
    throw new HlcParseError(
      encoded,
      'this encoding carries no node id; pass the node (e.g. from the row’s node column)',
    );
  }
  if (!isValidNodeId(node)) {
    throw new HlcParseError(node, `invalid node id: ${nodeIdProblem(node) ?? 'invalid'}`);
  }
  return node;
}

function checkObject(value: object): HlcTimestamp {
  const { wallMs, counter, node } = value as Partial<Record<keyof HlcTimestamp, unknown>>;
  if (!isHlcWallMs(wallMs))
    throw new HlcParseError(value, 'wallMs must be an integer in [0, 2^48)');
  if (!isHlcCounter(counter))
    throw new HlcParseError(value, `counter must be an integer in [0, ${HLC_MAX_COUNTER}]`);
  if (!isValidNodeId(node)) {
    throw new HlcParseError(value, `invalid node id: ${nodeIdProblem(node) ?? 'invalid'}`);
  }
  return { wallMs, counter, node };
}
