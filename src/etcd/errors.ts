/**
 * The errors `chronobound/etcd` throws. Each has a stable `code` (`ETCD_…`) and
 * is a `ChronoboundError` at runtime (`instanceof ChronoboundError` holds).
 *
 * @module
 */
import { ChronoboundError } from '../errors.js';
import { describeReason, describeValue, failureMessage, formatMs } from '../errors/describe.js';

/**
 * Stable codes of the etcd errors, one per failure.
 *
 * @example
 * ```ts
 * try {
 *   await election.campaign();
 * } catch (e) {
 *   if (e instanceof EtcdError && (e.code === 'ETCD_UNAVAILABLE' || e.code === 'ETCD_QUORUM_LOST')) retryLater();
 *   else throw e;
 * }
 * ```
 */
export type EtcdErrorCode =
  | 'ETCD_UNAVAILABLE'
  | 'ETCD_QUORUM_LOST'
  | 'ETCD_LEASE_EXPIRED'
  | 'ETCD_COMPACTED'
  | 'ETCD_KEEPALIVE'
  | 'ETCD_LEASE_LOST'
  | 'ETCD_REQUEST';

/** A `ChronoboundError` (an `Error` with a `code`) whose `code` is one of the etcd codes. */
interface EtcdErrorBaseInstance extends Error {
  /** Stable code identifying the failure. */
  readonly code: EtcdErrorCode;
}

type EtcdErrorBaseConstructor = new (
  code: EtcdErrorCode,
  message: string,
  options?: { cause?: unknown },
) => EtcdErrorBaseInstance;

// `ChronoboundErrorCode` (src/errors.ts) is a closed union that does not list the etcd
// codes yet; this is ChronoboundError itself, typed so that `code` is an EtcdErrorCode.
// Once the union includes them, `extends ChronoboundError` replaces this.
const EtcdErrorBase: EtcdErrorBaseConstructor =
  ChronoboundError as unknown as EtcdErrorBaseConstructor;

/**
 * Base class of the etcd errors; a `ChronoboundError` at runtime.
 *
 * @example
 * ```ts
 * try {
 *   await election.campaign();
 * } catch (e) {
 *   if (e instanceof EtcdError && e.code === 'ETCD_QUORUM_LOST') alertOperator(e.message);
 * }
 * ```
 */
export class EtcdError extends EtcdErrorBase {}

/**
 * What one endpoint answered (or why it did not), for error messages.
 *
 * @example
 * ```ts
 * try {
 *   await election.campaign();
 * } catch (e) {
 *   if (e instanceof EtcdUnavailableError)
 *     for (const f of e.failures) console.error(f.endpoint, f.kind, f.detail); // one line per member tried
 * }
 * ```
 */
export interface EtcdEndpointFailure {
  /** The endpoint, e.g. `http://127.0.0.1:2379`. */
  readonly endpoint: string;
  /** `'connection'` (refused, reset, DNS), `'timeout'`, `'no-leader'` (the member answered that it has none), or `'error'`. */
  readonly kind: 'connection' | 'timeout' | 'no-leader' | 'error';
  /** What happened, in words. */
  readonly detail: string;
}

/**
 * No etcd member could serve an operation: either none could be reached
 * ({@link EtcdUnavailableError}) or those reached have no leader
 * ({@link EtcdQuorumLostError}). Both are worth a retry later with the same
 * request, so catch this base class to treat them alike; `failures` says what each
 * endpoint answered.
 *
 * @example
 * ```ts
 * try {
 *   await election.campaign();
 * } catch (e) {
 *   if (e instanceof EtcdNotServedError) retryLater(e.failures.length); // unreachable or no leader
 *   else throw e;
 * }
 * ```
 */
export class EtcdNotServedError extends EtcdError {
  /** One entry per endpoint tried. */
  readonly failures: readonly EtcdEndpointFailure[];

  /** @internal Built by its two subclasses only. */
  constructor(
    code: 'ETCD_UNAVAILABLE' | 'ETCD_QUORUM_LOST',
    message: string,
    failures: readonly EtcdEndpointFailure[],
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.failures = failures;
  }
}

/**
 * No etcd member could be reached: every endpoint refused the connection, reset
 * it or did not answer within the request timeout, and none said it had lost
 * its leader. Nothing was done (or, after a timeout, nothing is known to have
 * been done).
 *
 * @example
 * ```ts
 * if (e instanceof EtcdUnavailableError) console.error(e.failures.map((f) => `${f.endpoint}: ${f.detail}`));
 * ```
 */
export class EtcdUnavailableError extends EtcdNotServedError {
  constructor(
    operation: string,
    failures: readonly EtcdEndpointFailure[],
    options?: { cause?: unknown },
  ) {
    const advice = 'Check that the endpoints are right and the cluster is up.';
    const message = noMemberMessage(operation, 'no member reachable', failures, advice);
    super('ETCD_UNAVAILABLE', message, failures, options);
  }
}

/**
 * The members that could be reached have no leader: the cluster has lost its
 * quorum (a majority of members is down or partitioned away), so etcd can
 * neither grant, renew nor revoke leases, nor commit a transaction. Nobody can
 * become the holder until a majority is back.
 *
 * @example
 * ```ts
 * lease.onKeepAliveError((e) => { if (e.cause instanceof EtcdQuorumLostError) page('etcd quorum lost'); });
 * ```
 */
export class EtcdQuorumLostError extends EtcdNotServedError {
  constructor(
    operation: string,
    failures: readonly EtcdEndpointFailure[],
    options?: { cause?: unknown },
  ) {
    const advice =
      'No lease can be granted, renewed or revoked until a majority of members is back.';
    const what = 'the cluster has no leader';
    const message = noMemberMessage(operation, what, failures, advice, 'quorum lost; ');
    super('ETCD_QUORUM_LOST', message, failures, options);
  }
}

/**
 * etcd no longer has the lease: it expired (no keep-alive reached the leader
 * within its TTL) or was revoked. The lock key attached to it is gone.
 *
 * @example
 * ```ts
 * if (e instanceof EtcdLeaseExpiredError) console.warn(`lease ${e.leaseId} is gone`);
 * ```
 */
export class EtcdLeaseExpiredError extends EtcdError {
  /** The etcd lease ID (decimal). */
  readonly leaseId: string;

  constructor(leaseId: string, detail: string) {
    super(
      'ETCD_LEASE_EXPIRED',
      `etcd lease ${leaseId} expired or was revoked (${detail}); its keys are deleted. Campaign again.`,
    );
    this.leaseId = leaseId;
  }
}

/**
 * A read or watch asked for a revision that etcd has compacted away: the
 * history it needs no longer exists. Read the current state instead.
 *
 * @example
 * ```ts
 * await election.leader({ revision: 3n }).catch((e) => e instanceof EtcdCompactedError && e.compactRevision);
 * ```
 */
export class EtcdCompactedError extends EtcdError {
  /** The revision asked for. */
  readonly revision: bigint;
  /** The revision etcd compacted up to, when it said (watches do, reads do not). */
  readonly compactRevision: bigint | undefined;

  constructor(revision: bigint, compactRevision: bigint | undefined, operation: string) {
    super(
      'ETCD_COMPACTED',
      `etcd ${operation} at revision ${revision} failed: the revision has been compacted` +
        `${compactRevision === undefined ? '' : ` (compacted up to ${compactRevision})`}. ` +
        'Read the current state instead of that history.',
    );
    this.revision = revision;
    this.compactRevision = compactRevision;
  }
}

/**
 * A keep-alive of a held lease failed. The lease is still held locally until
 * its deadline (`remainingMs` at the time of the failure); keep-alives are
 * retried until then, and each failure is reported. `cause` is what the attempt
 * hit (`EtcdUnavailableError`, `EtcdQuorumLostError`, …).
 *
 * @example
 * ```ts
 * lease.onKeepAliveError((e) => log.warn(`${e.message}; ${e.remainingMs} ms left`));
 * ```
 */
export class EtcdKeepAliveError extends EtcdError {
  /** The etcd lease ID (decimal). */
  readonly leaseId: string;
  /** How long the lease was still certainly held when the attempt failed (ms). */
  readonly remainingMs: number;

  constructor(leaseId: string, remainingMs: number, cause: unknown) {
    super(
      'ETCD_KEEPALIVE',
      `Keep-alive of etcd lease ${leaseId} failed${describeReason(cause)}; ` +
        `the lease is held for at most ${formatMs(remainingMs)} more unless a retry succeeds.`,
      { cause },
    );
    this.leaseId = leaseId;
    this.remainingMs = remainingMs;
  }
}

/**
 * Why an etcd lease was lost (`EtcdLeaseLostError.reason`):
 *
 * - `'expired'`: the local deadline (last confirmed start + TTL − margin) passed
 *   without a renewal, e.g. the process was paused;
 * - `'keepalive-failed'`: the deadline passed while keep-alives were failing
 *   (`cause` is the last `EtcdKeepAliveError`) or one had not come back yet;
 * - `'lease-expired'`: etcd said the lease no longer exists (`cause` is an `EtcdLeaseExpiredError`);
 * - `'key-changed'`: the lock key was deleted or replaced by someone else;
 * - `'invalidated'`: `invalidate()` was called, e.g. by a pause detector;
 * - `'resigned'`: the holder resigned.
 *
 * @example
 * ```ts
 * lease.invalidate('process paused'); // e.g. by a pause detector
 * lease.lostError instanceof EtcdLeaseLostError && lease.lostError.reason; //=> 'invalidated'
 * lease.onLost((e) => {
 *   if (e instanceof EtcdLeaseLostError && e.reason === 'keepalive-failed') alertOperator(e.message);
 * });
 * ```
 */
export type EtcdLostReason =
  'expired' | 'keepalive-failed' | 'lease-expired' | 'key-changed' | 'invalidated' | 'resigned';

/**
 * The lease is no longer held: stop acting as the holder and campaign again.
 * Thrown by `assertHeld()` once the lease is lost (except on a clock that cannot
 * stand behind its bound, which throws `ClockUnsynchronizedError`), and passed
 * to `onLost` listeners. Loss is final.
 *
 * @example
 * ```ts
 * try { lease.assertHeld() } catch (e) { if (e instanceof EtcdLeaseLostError) console.log(e.reason) }
 * ```
 */
export class EtcdLeaseLostError extends EtcdError {
  /** Why. */
  readonly reason: EtcdLostReason;
  /** The lock key. */
  readonly key: string;
  /** The fencing token the lease was held with. */
  readonly token: bigint;

  constructor(
    key: string,
    token: bigint,
    reason: EtcdLostReason,
    detail: string,
    options?: { cause?: unknown },
  ) {
    const subject = `etcd lease on ${describeValue(key)} (fencing token ${token}) is no longer held`;
    const advice = 'Stop acting as the holder and campaign again.';
    super('ETCD_LEASE_LOST', failureMessage(subject, reason, detail, advice), options);
    this.reason = reason;
    this.key = key;
    this.token = token;
  }
}

/**
 * etcd answered with an error this module does not treat specially (permission
 * denied, invalid argument, a too-large request, …), or with something that is
 * not the gateway's JSON.
 *
 * @example
 * ```ts
 * if (e instanceof EtcdRequestError) console.error(e.grpcCode, e.endpoint);
 * ```
 */
export class EtcdRequestError extends EtcdError {
  /** The gRPC status code etcd reported (e.g. 3 = invalid argument, 7 = permission denied); `undefined` for a malformed reply. */
  readonly grpcCode: number | undefined;
  /** The HTTP status of the reply. */
  readonly httpStatus: number;
  /** The endpoint that answered. */
  readonly endpoint: string;

  constructor(
    operation: string,
    endpoint: string,
    httpStatus: number,
    grpcCode: number | undefined,
    detail: string,
  ) {
    super(
      'ETCD_REQUEST',
      `etcd ${operation} at ${endpoint} failed: ${detail} (HTTP ${httpStatus}` +
        `${grpcCode === undefined ? '' : `, gRPC code ${grpcCode}`}).`,
    );
    this.grpcCode = grpcCode;
    this.httpStatus = httpStatus;
    this.endpoint = endpoint;
  }
}

/**
 * The message of a request no member could serve: `etcd <operation> failed: <what>
 * (<detail>each endpoint's answer).`, then the advice.
 */
function noMemberMessage(
  operation: string,
  what: string,
  failures: readonly EtcdEndpointFailure[],
  advice: string,
  detail = '',
): string {
  const answers =
    failures.length === 0
      ? 'no endpoint tried'
      : failures.map((f) => `${f.endpoint}: ${f.detail}`).join('; ');
  return failureMessage(`etcd ${operation} failed`, what, `${detail}${answers}`, advice);
}
