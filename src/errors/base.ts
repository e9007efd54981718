/**
 * The base of every chronobound error: the stable codes, the base class, and the
 * check that recognises an error from either build. The classes themselves, and
 * their messages, are in `errors.ts`.
 *
 * @module
 */

/**
 * Stable machine-readable codes, one per failure.
 *
 * @example
 * ```ts
 * try {
 *   new HybridLogicalClock({ node: 'a', maxOffsetMs: -1 });
 * } catch (e) {
 *   if (isChronoboundError(e)) e.code; //=> 'INVALID_ARGUMENT'
 * }
 * ```
 */
export type ChronoboundErrorCode =
  | 'ABORTED'
  | 'CLOCK_UNSYNCHRONIZED'
  | 'COMMIT_WAIT_TIMEOUT'
  | 'WAIT_TIMEOUT'
  | 'INVALID_ARGUMENT'
  | 'CLOCK_OFFSET'
  | 'HLC_OVERFLOW'
  | 'HLC_PARSE'
  | 'HLC_PERSISTENCE'
  | 'NTP_PACKET'
  | 'NTP_REJECTED'
  | 'NTP_TIMEOUT'
  | 'CHRONY_PROTOCOL'
  | 'CHRONY_TIMEOUT'
  | 'SOURCE_UNAVAILABLE'
  | 'HTTP_TIME'
  | 'LEASE_INVALID'
  | 'STALE_FENCING_TOKEN';

/**
 * Base class of every error chronobound throws.
 *
 * @example
 * ```ts
 * try {
 *   clock.after(t);
 * } catch (e) {
 *   if (isChronoboundError(e, 'CLOCK_UNSYNCHRONIZED')) retryLater();
 * }
 * ```
 */
export class ChronoboundError extends Error {
  /** Stable code identifying the failure. */
  readonly code: ChronoboundErrorCode;

  constructor(code: ChronoboundErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

// A registered symbol is the same in every copy of this module, so the brand is
// shared by the ESM and the CommonJS build (and by two installed copies), where
// `instanceof` is not: each build has its own ChronoboundError class.
const CHRONOBOUND_ERROR: unique symbol = Symbol.for('chronobound.error');
Object.defineProperty(ChronoboundError.prototype, CHRONOBOUND_ERROR, { value: true });

/**
 * Whether `error` is an error chronobound threw — from either build. An
 * application that loads both the ESM and the CommonJS build (a CommonJS
 * dependency `require`s it, the app `import`s it) gets two copies of every error
 * class, and `instanceof` fails across them; this check does not. With a class,
 * it also narrows to that class (matched by name along the prototype chain, so a
 * subclass matches its base); with a code, to errors with that `code`.
 *
 * @param error - Anything caught.
 * @param kind - Optional: an error class (`ClockUnsynchronizedError`, `EtcdError`, …)
 *   or a `code` (`'CLOCK_UNSYNCHRONIZED'`, `'ETCD_LEASE_LOST'`, …).
 * @returns True when `error` is a chronobound error (of that class or code).
 * @example
 * ```ts
 * try {
 *   clock.after(deadline);
 * } catch (e) {
 *   if (isChronoboundError(e, ClockUnsynchronizedError)) console.log(e.status); // 'unsynchronized'
 *   else if (isChronoboundError(e, 'INVALID_ARGUMENT')) console.log(e.message);
 *   else throw e;
 * }
 * isChronoboundError(new Error('x')); // false
 * ```
 */
export function isChronoboundError(error: unknown): error is ChronoboundError;
export function isChronoboundError<E extends Error>(
  error: unknown,
  kind: abstract new (...args: never[]) => E,
): error is E;
export function isChronoboundError(error: unknown, kind: string): error is ChronoboundError;
export function isChronoboundError(
  error: unknown,
  kind?: string | (abstract new (...args: never[]) => Error),
): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as { [CHRONOBOUND_ERROR]?: unknown })[CHRONOBOUND_ERROR] !== true) return false;
  if (kind === undefined) return true;
  if (typeof kind === 'string') return (error as { code?: unknown }).code === kind;
  if (error instanceof kind) return true;
  for (let p: unknown = Object.getPrototypeOf(error); p !== null && p !== Error.prototype;) {
    if ((p as { constructor?: { name?: unknown } }).constructor?.name === kind.name) return true;
    p = Object.getPrototypeOf(p);
  }
  return false;
}
