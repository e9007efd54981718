/**
 * The stable `reason` vocabularies of the typed rejections: what
 * `NtpRejectedError.reason` and `TimeExchangeError.reason` can be. They live at
 * the bottom layer because `SourceProblemReason` (sources) names them too.
 *
 * @module
 */

/**
 * Every reason an NTP reply can be refused by the plain-NTP checks, as
 * `NtpRejectedError.reason` (`chronobound/ntp` exports the same union).
 *
 * @example
 * ```ts
 * const r: NtpRejectionReason = 'origin-mismatch';
 * ```
 */
export type NtpRejectionReason =
  | 'truncated'
  | 'malformed'
  | 'unexpected-address'
  | 'origin-mismatch'
  | 'stale-transmit'
  | 'duplicate'
  | 'wrong-mode'
  | 'unsupported-version'
  | 'kiss-of-death'
  | 'unsynchronized'
  | 'stratum-too-high'
  | 'zero-transmit'
  | 'absurd-delay'
  | 'reference-after-transmit'
  | 'negative-delay'
  | 'root-distance';

/**
 * Every reason an NTS-protected reply can be refused, as
 * `NtsRejectedError.reason` (RFC 8915 §5.6, §5.7).
 *
 * @example
 * ```ts
 * const r: NtsRejectionReason = 'nts-bad-tag';
 * ```
 */
export type NtsRejectionReason =
  | 'nts-malformed'
  | 'nts-unauthenticated'
  | 'nts-uid-mismatch'
  | 'nts-replay'
  | 'nts-bad-tag'
  | 'nts-nak';

/**
 * Every reason a time exchange over HTTP or a message channel fails, as
 * `TimeExchangeError.reason`: no reply in time, a non-2xx status or a refusal,
 * a malformed body, a reply to another request, a network failure.
 *
 * @example
 * ```ts
 * const r: TimeExchangeFailureReason = 'nonce-mismatch';
 * ```
 */
export type TimeExchangeFailureReason =
  'timeout' | 'status' | 'body' | 'nonce-mismatch' | 'network';
