/**
 * Every error chronobound throws. Each class has a stable `code` that callers can
 * switch on, and a message that says what happened and what to do about it.
 * Messages are built here and nowhere else, so their wording stays consistent.
 *
 * @module
 */

import { ChronoboundError } from './errors/base.js';
import {
  describeInput,
  describeReason,
  describeValue,
  failureMessage,
  formatMs,
} from './errors/describe.js';
import type {
  NtpRejectionReason,
  NtsRejectionReason,
  TimeExchangeFailureReason,
} from './errors/reasons.js';

export type { NtpRejectionReason, NtsRejectionReason, TimeExchangeFailureReason };
export { ChronoboundError, isChronoboundError, type ChronoboundErrorCode } from './errors/base.js';

/**
 * An operation was cancelled through its `AbortSignal`.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * const p = clock.waitUntilAfter(t, { signal: ac.signal });
 * ac.abort(); // p rejects with AbortError
 * ```
 */
export class AbortError extends ChronoboundError {
  constructor(what: string, reason?: unknown) {
    super('ABORTED', `${what} was aborted${describeReason(reason)}.`, { cause: reason });
  }
}

/**
 * A strict operation refused to act because the clock cannot currently stand
 * behind its bound: no sample yet, uncertainty above `maxUncertaintyMs`, the
 * watchdog saw a disruption, or the clock is closed.
 *
 * @example
 * ```ts
 * try { clock.after(t) } catch (e) { if (e instanceof ClockUnsynchronizedError) console.log(e.status) }
 * ```
 */
export class ClockUnsynchronizedError extends ChronoboundError {
  /** The clock status at the moment of refusal. */
  readonly status: string;
  /** The uncertainty (ε, ms) at the moment of refusal; `Infinity` without a sample. */
  readonly uncertaintyMs: number;

  constructor(operation: string, status: string, uncertaintyMs: number, detail?: string) {
    // Waiting for ready() is no advice to a caller of a wait itself.
    const advice =
      operation === 'ready()' || operation === 'whenTrusted()'
        ? 'Check the time source'
        : 'Wait for clock.ready() or check the time source';
    const because = detail ? `: ${detail.replace(/[.\s]+$/, '')}` : '';
    super(
      'CLOCK_UNSYNCHRONIZED',
      `${operation} refused: the clock is ${status} (uncertainty ${formatMs(uncertaintyMs)})` +
        `${because}. ${advice}.`,
    );
    this.status = status;
    this.uncertaintyMs = uncertaintyMs;
  }
}

/**
 * A wait for a time to definitely pass gave up after `timeoutMs`: `waitUntilAfter`
 * throws it, and `commitWait` throws its subclass {@link CommitWaitTimeoutError},
 * so catching `WaitTimeoutError` catches both. Its `code` is `'WAIT_TIMEOUT'`.
 *
 * @example
 * ```ts
 * try {
 *   await clock.waitUntilAfter(t, { timeoutMs: 100 });
 * } catch (e) {
 *   if (e instanceof WaitTimeoutError) console.log(e.operation, e.target, e.timeoutMs); // 'waitUntilAfter()' t 100
 * }
 * new WaitTimeoutError('waitUntilAfter()', 1_700_000_000_000, 100).message;
 * // 'waitUntilAfter() timed out after 100 ms waiting for 1700000000000 to definitely pass; raise timeoutMs or reduce the clock uncertainty.'
 * ```
 */
export class WaitTimeoutError extends ChronoboundError {
  /** The operation that waited, e.g. `'waitUntilAfter()'` or `'commitWait()'`. */
  readonly operation: string;
  /** The timestamp (epoch ms) that had not definitely passed. */
  readonly target: number;
  /** The timeout that elapsed (ms). */
  readonly timeoutMs: number;

  constructor(operation: string, target: number, timeoutMs: number) {
    super(
      'WAIT_TIMEOUT',
      `${operation} timed out after ${formatMs(timeoutMs)} waiting for ${target} to definitely pass; ` +
        'raise timeoutMs or reduce the clock uncertainty.',
    );
    this.operation = operation;
    this.target = target;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * `commitWait` did not see its commit timestamp pass within `timeoutMs`: the write
 * happened but must not be acknowledged. Its `code` is `'COMMIT_WAIT_TIMEOUT'`; it
 * extends {@link WaitTimeoutError}, so `instanceof WaitTimeoutError` catches it too.
 *
 * @example
 * ```ts
 * try {
 *   await clock.commitWait((ts) => db.insert(ts), { timeoutMs: 100 });
 * } catch (e) {
 *   if (e instanceof CommitWaitTimeoutError) console.log(e.code, e.operation); // 'COMMIT_WAIT_TIMEOUT' 'commitWait()'
 * }
 * new CommitWaitTimeoutError(1_700_000_000_000, 100) instanceof WaitTimeoutError; // true
 * ```
 */
export class CommitWaitTimeoutError extends WaitTimeoutError {
  /** Always `'COMMIT_WAIT_TIMEOUT'`. */
  override readonly code = 'COMMIT_WAIT_TIMEOUT' as const;

  constructor(target: number, timeoutMs: number) {
    super('commitWait()', target, timeoutMs);
  }
}

/**
 * An argument was out of range or of the wrong shape.
 *
 * @example
 * ```ts
 * new TrueClock({ source, maxDriftPpm: -1 }); // throws InvalidArgumentError
 * ```
 */
export class InvalidArgumentError extends ChronoboundError {
  /** The name of the offending argument or option. */
  readonly argument: string;

  constructor(argument: string, value: unknown, expectation: string) {
    super(
      'INVALID_ARGUMENT',
      `Invalid ${argument}: ${describeValue(value)}; expected ${expectation}.`,
    );
    this.argument = argument;
  }
}

/**
 * A remote timestamp was further ahead of local physical time than `maxOffsetMs`
 * allows. The clock that threw is unchanged.
 *
 * @example
 * ```ts
 * try { hlc.receive(remote) } catch (e) { if (e instanceof ClockOffsetError) quarantine(e.remoteMs) }
 * ```
 */
export class ClockOffsetError extends ChronoboundError {
  /** The remote wall time (epoch ms). */
  readonly remoteMs: number;
  /** Local physical time when the remote was seen (epoch ms). */
  readonly physicalMs: number;
  /** How far ahead the remote was (ms). */
  readonly offsetMs: number;
  /** The configured limit (ms). */
  readonly maxOffsetMs: number;

  constructor(
    remoteMs: number,
    physicalMs: number,
    maxOffsetMs: number,
    subject = 'remote timestamp',
  ) {
    const offsetMs = remoteMs - physicalMs;
    super(
      'CLOCK_OFFSET',
      `Rejected ${subject} ${remoteMs}: it is ${formatMs(offsetMs)} ahead of local physical time ` +
        `${physicalMs}, beyond maxOffsetMs ${formatMs(maxOffsetMs)}. The clock was not changed; ` +
        'check the sender’s clock.',
    );
    this.remoteMs = remoteMs;
    this.physicalMs = physicalMs;
    this.offsetMs = offsetMs;
    this.maxOffsetMs = maxOffsetMs;
  }
}

/**
 * A hybrid logical clock's 16-bit counter is exhausted and the clock may not
 * borrow the next millisecond: that would put it more than `maxOffsetMs +
 * maxBorrowMs` ahead of physical time, or past the end of the 48-bit wall time.
 * The counter never wraps; the clock that threw is unchanged.
 *
 * @example
 * ```ts
 * const hlc = new HybridLogicalClock({ node: 'a', overflowPolicy: 'throw' });
 * ```
 */
export class HlcOverflowError extends ChronoboundError {
  /** The logical wall time (epoch ms) whose counter is exhausted. */
  readonly wallMs: number;

  constructor(wallMs: number, maxCounter: number, detail?: string) {
    super(
      'HLC_OVERFLOW',
      `HLC counter exhausted at wallMs ${wallMs} (max ${maxCounter})${detail ? ` and ${detail}` : ''}; ` +
        'wait for physical time to advance (overflowPolicy: "wait") or batch receives with receiveMany().',
    );
    this.wallMs = wallMs;
  }
}

/**
 * A string, bigint or byte encoding of a timestamp could not be decoded.
 *
 * The message quotes the input, but never more than its first 64 characters
 * (then an ellipsis and the total length): rejecting a 50 MB string costs
 * microseconds and a short message, not a copy of the string.
 *
 * @example
 * ```ts
 * parseHlc('garbage'); // throws HlcParseError with .input === '"garbage"'
 * ```
 */
export class HlcParseError extends ChronoboundError {
  /**
   * The input that could not be parsed, as quoted in the message: a string of up
   * to 64 characters in full (JSON-quoted), a longer one as its first 64 characters,
   * `…` and its length, e.g. `"018bcfe56800…"… (52428800 characters)`.
   */
  readonly input: string;

  constructor(input: unknown, why: string) {
    const shown = describeInput(input);
    super('HLC_PARSE', `Cannot parse timestamp ${shown}: ${why}.`);
    this.input = shown;
  }
}

/**
 * The stored upper bound of a hybrid logical clock could not be read or
 * written: the file is corrupt, unreadable, or the write failed. The file is
 * never silently reset, since that would let a restarted process reissue
 * timestamps.
 *
 * @example
 * ```ts
 * try { filePersistence(path).load() } catch (e) { if (e instanceof HlcPersistenceError) console.error(e.path) }
 * ```
 */
export class HlcPersistenceError extends ChronoboundError {
  /** The file (or other location) holding the bound. */
  readonly path: string;

  constructor(path: string, why: string, options?: { cause?: unknown }) {
    super(
      'HLC_PERSISTENCE',
      `HLC persistence at ${path}: ${why}. It was not reset; repair or remove it deliberately ` +
        '(a bound too low lets a restarted process reissue timestamps).',
      options,
    );
    this.path = path;
  }
}

/**
 * An NTP packet could not be decoded; `field` names the offending field.
 *
 * @example
 * ```ts
 * decodeNtpPacket(new Uint8Array(10)); // throws NtpPacketError with .field === 'length'
 * ```
 */
export class NtpPacketError extends ChronoboundError {
  /** The header field that was malformed. */
  readonly field: string;

  constructor(field: string, why: string) {
    super('NTP_PACKET', `Malformed NTP packet (${field}): ${why}.`);
    this.field = field;
  }
}

/**
 * An NTP reply decoded but failed validation; `reason` is a stable identifier.
 *
 * @example
 * ```ts
 * if (e instanceof NtpRejectedError && e.reason === 'kiss-of-death') stopUsing(e.server);
 * ```
 */
export class NtpRejectedError extends ChronoboundError {
  /** Stable rejection reason, e.g. `'origin-mismatch'`, `'kiss-of-death'`, `'nts-bad-tag'`. */
  readonly reason: NtpRejectionReason | NtsRejectionReason;
  /** The server address (`host:port`). */
  readonly server: string;

  constructor(server: string, reason: NtpRejectionReason | NtsRejectionReason, detail: string) {
    super('NTP_REJECTED', failureMessage(`Rejected reply from ${server}`, reason, detail));
    this.reason = reason;
    this.server = server;
  }
}

/**
 * A server answered with a Kiss-o'-Death packet (stratum 0): it asks the client
 * to stop (`DENY`, `RSTR`) or to slow down (`RATE`). Its `reason` is
 * `'kiss-of-death'` and its code `NTP_REJECTED`, like any rejected reply.
 *
 * @example
 * ```ts
 * if (e instanceof NtpKissOfDeathError && e.kissCode === 'RATE') pollLessOften();
 * ```
 */
export class NtpKissOfDeathError extends NtpRejectedError {
  /** The four-character kiss code from the reference ID, e.g. `'DENY'`, `'RSTR'`, `'RATE'`. */
  readonly kissCode: string;

  constructor(server: string, kissCode: string) {
    const meaning =
      kissCode === 'RATE'
        ? 'the server asks to poll less often'
        : kissCode === 'DENY' || kissCode === 'RSTR'
          ? 'the server refuses to serve this client; stop using it'
          : 'the server refused to answer';
    super(server, 'kiss-of-death', `kiss code ${JSON.stringify(kissCode)}: ${meaning}`);
    this.kissCode = kissCode;
  }
}

/**
 * No reply arrived from a time server within the timeout.
 *
 * @example
 * ```ts
 * await queryNtp({ host: '127.0.0.1', port: 9, timeoutMs: 200 }); // rejects with NtpTimeoutError
 * ```
 */
export class NtpTimeoutError extends ChronoboundError {
  /** The server address (`host:port`). */
  readonly server: string;

  constructor(server: string, timeoutMs: number) {
    super(
      'NTP_TIMEOUT',
      `No reply from ${server} within ${formatMs(timeoutMs)}; check the address and that the server is running.`,
    );
    this.server = server;
  }
}

/**
 * A reply from chronyd's command-and-monitoring (cmdmon) port could not be
 * used: it is malformed, speaks another protocol version, or chronyd refused
 * the request (e.g. this host is not in `cmdallow`). `field` names the offending
 * part (`'length'`, `'version'`, `'status'`, `'rootDelay'`, …).
 *
 * @example
 * ```ts
 * try { await readChronyTracking() } catch (e) { if (e instanceof ChronyProtocolError) console.error(e.field) }
 * ```
 */
export class ChronyProtocolError extends ChronoboundError {
  /** The part of the reply that was unusable. */
  readonly field: string;

  constructor(field: string, why: string) {
    super('CHRONY_PROTOCOL', `Unusable chronyd cmdmon reply (${field}): ${why}.`);
    this.field = field;
  }
}

/**
 * chronyd did not answer a cmdmon request within the timeout (chronyd not
 * running, another `cmdport`, or a firewall). Its `code` is `CHRONY_TIMEOUT`;
 * it extends {@link NtpTimeoutError}, so `instanceof NtpTimeoutError` still
 * catches it.
 *
 * @example
 * ```ts
 * try {
 *   await readChronyTracking({ port: 9, timeoutMs: 200 });
 * } catch (e) {
 *   if (e instanceof ChronyTimeoutError) console.error(e.code, e.server); // 'CHRONY_TIMEOUT' '127.0.0.1:9'
 * }
 * ```
 */
export class ChronyTimeoutError extends NtpTimeoutError {
  /** Always `'CHRONY_TIMEOUT'`. */
  override readonly code = 'CHRONY_TIMEOUT' as const;

  constructor(server: string, timeoutMs: number) {
    super(server, timeoutMs);
  }
}

/**
 * A time source could not deliver a sample (unreachable, misconfigured, or it
 * reported that it is itself unsynchronized).
 *
 * @example
 * ```ts
 * await clock.ready({ timeoutMs: 2000 }); // may reject with a cause of SourceUnavailableError
 * ```
 */
export class SourceUnavailableError extends ChronoboundError {
  /** The source's name. */
  readonly source: string;

  constructor(source: string, why: string, options?: { cause?: unknown }) {
    super('SOURCE_UNAVAILABLE', `Time source ${source} is unavailable: ${why}.`, options);
    this.source = source;
  }
}

/**
 * A time exchange with a server failed, over HTTP (`httpTimeSource`) or a message
 * channel (`messageTimeSource`): no reply in time, a non-2xx status or a refusal,
 * a malformed body, a nonce mismatch or a network failure. Its `code` is
 * `'HTTP_TIME'` on every channel (kept from the days it was HTTP only).
 *
 * @example
 * ```ts
 * const e = new TimeExchangeError('https://example.com/time', 'status', 'HTTP 503');
 * e.message; // 'Time request to https://example.com/time failed: status (HTTP 503).'
 * e.reason; // 'status'
 * ```
 */
export class TimeExchangeError extends ChronoboundError {
  /** What was asked: the URL, or `message channel <name>` for a message channel. */
  readonly endpoint: string;
  /**
   * The same as `endpoint`.
   * @deprecated Use `endpoint`; a message channel has no URL.
   */
  readonly url: string;
  /** Stable reason: `'timeout'`, `'status'`, `'body'`, `'nonce-mismatch'` or `'network'`. */
  readonly reason: TimeExchangeFailureReason;

  constructor(endpoint: string, reason: TimeExchangeFailureReason, detail: string) {
    super('HTTP_TIME', failureMessage(`Time request to ${endpoint} failed`, reason, detail));
    this.endpoint = endpoint;
    this.url = endpoint;
    this.reason = reason;
  }
}

/**
 * The former name of {@link TimeExchangeError}, which message channels throw
 * too. The same class: `instanceof HttpTimeError` and `instanceof TimeExchangeError`
 * agree, and the `code` is `'HTTP_TIME'` either way.
 *
 * @deprecated Use {@link TimeExchangeError}.
 * @example
 * ```ts
 * new TimeExchangeError('https://example.com/time', 'body', 'reply is not JSON') instanceof HttpTimeError; // true
 * ```
 */
export const HttpTimeError: typeof TimeExchangeError = TimeExchangeError;
/** The instance type of {@link HttpTimeError}. @deprecated Use {@link TimeExchangeError}. */
export type HttpTimeError = TimeExchangeError;

/**
 * A lease was used after it can no longer be proven valid.
 *
 * @example
 * ```ts
 * lease.assertValid(); // throws LeaseInvalidError once now().latest reaches expiry − margin
 * ```
 */
export class LeaseInvalidError extends ChronoboundError {
  constructor(why: string) {
    super('LEASE_INVALID', `Lease is not valid: ${why}. Reacquire it before acting.`);
  }
}

/**
 * A write carried a fencing token older than one the storage already accepted.
 *
 * @example
 * ```ts
 * guard.check('resource', 33); // throws StaleFencingTokenError if 34 was seen
 * ```
 */
export class StaleFencingTokenError extends ChronoboundError {
  /** The rejected token. */
  readonly token: bigint;
  /** The highest token seen so far for the resource. */
  readonly highest: bigint;

  constructor(resource: string, token: bigint, highest: bigint) {
    super(
      'STALE_FENCING_TOKEN',
      `Rejected fencing token ${token} for ${resource}: token ${highest} was already accepted. ` +
        'The writer’s lease has expired; it must reacquire it.',
    );
    this.token = token;
    this.highest = highest;
  }
}
