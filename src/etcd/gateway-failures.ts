/**
 * What etcd's gateway replies and transport errors mean: whether a failed
 * attempt at one member is worth trying the next member for (no leader, a
 * timeout, unreachable) or is an authoritative answer to throw as a typed error
 * (lease not found, revision compacted, any other error reply).
 *
 * @module
 * @internal
 */
import {
  EtcdCompactedError,
  EtcdLeaseExpiredError,
  EtcdQuorumLostError,
  EtcdRequestError,
  EtcdUnavailableError,
  type EtcdEndpointFailure,
} from './errors.js';
import { text, type Json } from './gateway-json.js';

/** An etcd message that says the member cannot serve requests for want of a leader. @internal */
export const NO_LEADER: RegExp =
  /no leader|leader changed|request timed out|timed out due to|not capable|raft: stopped|server stopped/i;
const DEADLINE = /deadline exceeded/i;
const LEASE_NOT_FOUND = /lease not found/i;
const COMPACTED = /required revision has been compacted/i;

/** What an error reply refers to, to name it in typed errors. @internal */
export interface ReplyContext {
  readonly leaseId?: string | undefined;
  readonly revision?: bigint | undefined;
}

/** The abort reason of a request that ran out of its timeout. @internal */
export const TIMEOUT: unique symbol = Symbol('etcd request timeout');

/**
 * Maps a reply: `undefined` for success, a failure worth trying another member
 * for, or the typed error to throw.
 * @internal
 */
export function classifyReply(
  endpoint: string,
  status: number,
  json: Json | undefined,
  operation: string,
  context: ReplyContext,
): EtcdEndpointFailure | Error | undefined {
  if (json === undefined) {
    return { endpoint, kind: 'error', detail: `HTTP ${status} without a JSON body` };
  }
  // Unary errors: { error, message, code }; streamed ones: { error: { grpc_code, message, ... } }.
  const raw = json['error'];
  if (raw === undefined && status >= 200 && status < 300) return undefined;
  const nested = typeof raw === 'object' && raw !== null ? (raw as Json) : undefined;
  const message = text(nested?.['message'] ?? json['message'] ?? raw ?? `HTTP ${status}`);
  const codeValue = nested?.['grpc_code'] ?? json['code'];
  const grpcCode = typeof codeValue === 'number' ? codeValue : undefined;
  if (LEASE_NOT_FOUND.test(message)) {
    return new EtcdLeaseExpiredError(context.leaseId ?? '?', `etcd answered "${message}"`);
  }
  if (COMPACTED.test(message)) {
    return new EtcdCompactedError(context.revision ?? 0n, undefined, operation);
  }
  if (NO_LEADER.test(message) || grpcCode === 14) {
    return { endpoint, kind: 'no-leader', detail: `etcd answered "${message}"` };
  }
  if (DEADLINE.test(message) || grpcCode === 4) {
    return { endpoint, kind: 'timeout', detail: `etcd answered "${message}"` };
  }
  return new EtcdRequestError(operation, endpoint, status, grpcCode, `etcd answered "${message}"`);
}

/** A request that got no reply: timed out (aborted with {@link TIMEOUT}) or could not connect. @internal */
export function transportFailure(
  endpoint: string,
  error: unknown,
  signal: AbortSignal,
): EtcdEndpointFailure {
  if (signal.aborted && signal.reason === TIMEOUT) {
    return { endpoint, kind: 'timeout', detail: 'no answer within the request timeout' };
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const text = error instanceof Error ? error.message : String(error);
  return {
    endpoint,
    kind: 'connection',
    detail: code
      ? `${code} (${text})`
      : typeof cause?.message === 'string'
        ? `${text}: ${cause.message}`
        : text,
  };
}

/** A reply that is not what the gateway's API says it is. @internal */
export function protocolError(
  operation: string,
  endpoint: string,
  detail: string,
  status = 200,
): EtcdRequestError {
  return new EtcdRequestError(operation, endpoint, status, undefined, `malformed reply: ${detail}`);
}

/**
 * The error for an operation that no member could serve: `EtcdQuorumLostError`
 * when one of them said it has no leader, else `EtcdUnavailableError`.
 * @internal
 */
export function noMemberServed(
  operation: string,
  failures: readonly EtcdEndpointFailure[],
): EtcdQuorumLostError | EtcdUnavailableError {
  return failures.some((f) => f.kind === 'no-leader')
    ? new EtcdQuorumLostError(operation, failures)
    : new EtcdUnavailableError(operation, failures);
}
