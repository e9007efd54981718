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
 * try {
 *   await queryNtp({ host: '127.0.0.1', port: 11123 });
 * } catch (error) {
 *   if (error instanceof NtpRejectedError && error.reason === 'origin-mismatch') {
 *     // a reply to another request (spoofed or stale): ignore it and ask again
 *   }
 * }
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
 * try {
 *   await queryNts({ host: 'time.example', ca: pem });
 * } catch (error) {
 *   if (error instanceof NtsRejectedError && error.reason === 'nts-bad-tag') {
 *     // the reply failed authentication: forged, or keys out of step; start a new key exchange
 *   }
 * }
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
 * const clock = new TrueClock({ source: httpTimeSource({ url: '/api/time' }) });
 * // … after a reply that answered another request:
 * clock.lastProblem?.reason; //=> 'nonce-mismatch'
 * ```
 */
export type TimeExchangeFailureReason =
  'timeout' | 'status' | 'body' | 'nonce-mismatch' | 'network';
