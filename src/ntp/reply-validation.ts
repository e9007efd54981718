/**
 * Validation of one NTP reply against the request it claims to answer: every
 * reason a reply can be refused ({@link NtpRejectionReason}), the accepted
 * {@link NtpExchange} with θ, δ and λ, and the pure {@link validateNtpReply}.
 *
 * @module
 */
import { NtpKissOfDeathError, NtpPacketError, NtpRejectedError } from '../errors.js';
import { estimateExchange } from '../sources/exchange.js';
import type { SyncSample } from '../clock/types.js';
import {
  isZeroNtpTimestamp,
  ntpDifferenceMs,
  ntpTimestampEquals,
  ntpToEpochMs,
  type NtpTimestamp,
} from './era.js';
import {
  NtpMode,
  decodeNtpPacket,
  log2SecondsToMs,
  referenceIdToString,
  type NtpPacket,
} from './packet.js';

/**
 * Every reason an NTP reply can be refused by the plain-NTP checks (defined with
 * the errors that carry it, so the core's `SourceProblemReason` can list it too).
 */
export type { NtpRejectionReason } from '../errors.js';

/**
 * One accepted exchange with a server. It is a {@link SyncSample} (`source` is
 * the server), so it can feed a `TrueClock` directly, and a `FilterSample`.
 *
 * @example
 * ```ts
 * const server = await createNtpServer({ offsetMs: 250 }); // a loopback server 250 ms ahead
 * const x = await queryNtp({ host: server.host, port: server.port });
 * x.stratum;        //=> 1
 * x.referenceId;    //=> 'LOCL'
 * x.systemOffsetMs; // ≈ 250, within x.errorMs
 * ```
 */
export interface NtpExchange extends SyncSample {
  /** `host:port` of the server. */
  readonly server: string;
  /** Round-trip network delay δ (ms). */
  readonly delayMs: number;
  /** Request sent (local monotonic ms). */
  readonly t1: number;
  /** Request received by the server (epoch ms). */
  readonly t2: number;
  /** Reply sent by the server (epoch ms). */
  readonly t3: number;
  /** Reply received (local monotonic ms); equals `monotonicAt`. */
  readonly t4: number;
  /** The server's stratum (1 primary … 15). */
  readonly stratum: number;
  /** The server's leap indicator (0–2). */
  readonly leap: number;
  /** The reply's NTP version (3 or 4). */
  readonly version: number;
  /** The server's precision (ms). */
  readonly precisionMs: number;
  /** The server's root delay (ms). */
  readonly rootDelayMs: number;
  /** The server's root dispersion (ms). */
  readonly rootDispersionMs: number;
  /** The server's reference ID, rendered (`'GPS'`, `'192.0.2.1'`, …). */
  readonly referenceId: string;
  /**
   * Server time minus the local wall clock (`Date.now()`) at T4, for display only:
   * `Date.now()` has 1 ms steps and may itself step.
   */
  readonly systemOffsetMs?: number;
  /** The decoded reply. */
  readonly reply: NtpPacket;
}

/**
 * What a reply is validated against: the exchange it claims to answer.
 *
 * @example
 * ```ts
 * const nonce = epochMsToNtp(Date.UTC(2026, 0, 1)); // the transmit timestamp we sent
 * const reply = encodeNtpPacket({
 *   mode: NtpMode.server, version: 4, stratum: 1, precision: -20, originTimestamp: nonce,
 *   receiveTimestamp: epochMsToNtp(Date.UTC(2026, 0, 1) + 10), transmitTimestamp: epochMsToNtp(Date.UTC(2026, 0, 1) + 11),
 * });
 * validateNtpReply(reply, { server: '192.0.2.1:123', nonce, t1: 1000, t4: 1020, wallMs: Date.UTC(2026, 0, 1) + 20 });
 * //=> { server: '192.0.2.1:123', monotonicAt: 1020, offsetMs: 1767225599000.5, delayMs: 19, errorMs: 9.50…, stratum: 1, … }
 * validateNtpReply(reply, { server: '192.0.2.1:123', nonce: epochMsToNtp(1), t1: 1000, t4: 1020 });
 * //=> throws NtpRejectedError, reason 'origin-mismatch'
 * ```
 */
export interface NtpReplyContext {
  /** `host:port`, for messages and `NtpExchange.server`. */
  readonly server: string;
  /** The transmit timestamp we sent; the reply's origin must equal it exactly. */
  readonly nonce: NtpTimestamp;
  /** Request sent (local monotonic ms). */
  readonly t1: number;
  /** Reply received (local monotonic ms). */
  readonly t4: number;
  /**
   * Local wall clock at T4 (epoch ms): era pivot and `systemOffsetMs`.
   *
   * @defaultValue `Date.now()`
   */
  readonly wallMs?: number;
  /**
   * Resolution of the local monotonic clock (ms).
   *
   * @defaultValue `0`
   */
  readonly localPrecisionMs?: number;
  /**
   * Bound on the local clock's rate error over the exchange (ppm).
   *
   * @defaultValue `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * Refuse replies whose bound λ exceeds this (ms). The default is RFC 5905's MAXDIST.
   *
   * @defaultValue `1000`
   */
  readonly maxRootDistanceMs?: number;
  /** Transmit timestamp of the last reply accepted from this server (duplicate test). */
  readonly previousTransmit?: NtpTimestamp;
}

/**
 * Validates a reply to one of our requests and computes θ, δ and λ (see
 * `estimateExchange`). Pure: no I/O, no clock reads.
 *
 * Checks, in order, each with its own reason: length (`truncated`), origin equals
 * our nonce (`origin-mismatch`), mode 4 (`wrong-mode`), version 3 or 4
 * (`unsupported-version`), stratum 0 (`kiss-of-death`, with the kiss code), leap
 * indicator 3 (`unsynchronized`), stratum ≥ 16 (`stratum-too-high`), transmit
 * timestamp 0 (`zero-transmit`), transmit equal to the previous reply's
 * (`duplicate`), transmit before receive (`absurd-delay`), a nonzero reference
 * timestamp more than the server's precision after transmit
 * (`reference-after-transmit`; RFC 5905 A.5.1.1), negative round-trip delay
 * (`negative-delay`), λ above the limit (`root-distance`).
 *
 * @param bytes - The datagram.
 * @param context - The exchange it should answer.
 * @returns The accepted exchange.
 * @throws {@link NtpRejectedError} With the reason; {@link NtpKissOfDeathError} for a kiss code.
 *
 * @example
 * ```ts
 * try {
 *   const x = validateNtpReply(msg, { server, nonce, t1, t4 });
 * } catch (e) {
 *   if (e instanceof NtpRejectedError) console.warn(e.reason);
 * }
 * ```
 */
export function validateNtpReply(bytes: Uint8Array, context: NtpReplyContext): NtpExchange {
  const { server } = context;
  let reply: NtpPacket;
  try {
    reply = decodeNtpPacket(bytes);
  } catch (error) {
    const field = error instanceof NtpPacketError ? error.field : 'packet';
    throw new NtpRejectedError(
      server,
      field === 'length' ? 'truncated' : 'malformed',
      error instanceof Error ? error.message : String(error),
    );
  }
  if (!ntpTimestampEquals(reply.originTimestamp, context.nonce)) {
    throw new NtpRejectedError(
      server,
      'origin-mismatch',
      'origin timestamp is not the nonce we sent',
    );
  }
  if (reply.mode !== NtpMode.server) {
    throw new NtpRejectedError(server, 'wrong-mode', `mode ${reply.mode}, expected 4 (server)`);
  }
  if (reply.version !== 3 && reply.version !== 4) {
    throw new NtpRejectedError(
      server,
      'unsupported-version',
      `version ${reply.version}, expected 3 or 4`,
    );
  }
  if (reply.stratum === 0) {
    throw new NtpKissOfDeathError(server, referenceIdToString(reply.referenceId, 0));
  }
  if (reply.leap === 3) {
    throw new NtpRejectedError(
      server,
      'unsynchronized',
      'leap indicator 3: the server clock is not synchronized',
    );
  }
  if (reply.stratum >= 16) {
    throw new NtpRejectedError(
      server,
      'stratum-too-high',
      `stratum ${reply.stratum} (16 means unsynchronized)`,
    );
  }
  if (isZeroNtpTimestamp(reply.transmitTimestamp)) {
    throw new NtpRejectedError(server, 'zero-transmit', 'transmit timestamp is zero');
  }
  if (
    context.previousTransmit !== undefined &&
    ntpTimestampEquals(reply.transmitTimestamp, context.previousTransmit)
  ) {
    throw new NtpRejectedError(
      server,
      'duplicate',
      'same transmit timestamp as the previous reply',
    );
  }
  const wallMs = context.wallMs ?? Date.now();
  const serverPrecisionMs = log2SecondsToMs(reply.precision);
  const localPrecisionMs = context.localPrecisionMs ?? 0;
  const holdMs = ntpDifferenceMs(reply.transmitTimestamp, reply.receiveTimestamp);
  if (holdMs < -2 * serverPrecisionMs) {
    throw new NtpRejectedError(
      server,
      'absurd-delay',
      `the server claims to have sent its reply ${(-holdMs).toFixed(3)} ms before receiving the request`,
    );
  }
  // A server cannot have set its clock after it sent the reply (RFC 5905 A.5.1.1; ntpd
  // and NTPsec call such a packet bogus). Checked after `absurd-delay`, the more
  // specific diagnosis when the transmit stamp itself is early. A zero reference
  // means "never set". Era-aware difference, so a reference just before the 2036
  // rollover and a transmit just after compare correctly; the precision absorbs
  // equal stamps rounded differently.
  if (!isZeroNtpTimestamp(reply.referenceTimestamp)) {
    const referenceAheadMs = ntpDifferenceMs(reply.referenceTimestamp, reply.transmitTimestamp);
    if (referenceAheadMs > serverPrecisionMs) {
      const shown =
        referenceAheadMs >= 0.001 ? referenceAheadMs.toFixed(3) : referenceAheadMs.toExponential(2);
      throw new NtpRejectedError(
        server,
        'reference-after-transmit',
        `reference timestamp is ${shown} ms after the transmit timestamp ` +
          `(more than the server's precision, ${serverPrecisionMs.toExponential(2)} ms)`,
      );
    }
  }
  // The era pivot: our best idea of the time. Only needs to be right within 68 years.
  const t2 = ntpToEpochMs(reply.receiveTimestamp, wallMs);
  const t3 = t2 + holdMs;
  const estimate = estimateExchange(
    { t1: context.t1, t2, t3, t4: context.t4 },
    {
      rootDelayMs: reply.rootDelayMs,
      rootDispersionMs: reply.rootDispersionMs,
      serverPrecisionMs,
      localPrecisionMs,
      maxDriftPpm: context.maxDriftPpm ?? 200,
    },
  );
  if (!estimate.consistent) {
    throw new NtpRejectedError(
      server,
      'negative-delay',
      `round-trip delay ${estimate.delayMs.toFixed(3)} ms: the server claims to have held the request ` +
        'longer than the whole exchange took',
    );
  }
  const maxRootDistanceMs = context.maxRootDistanceMs ?? 1000;
  if (!(estimate.errorMs <= maxRootDistanceMs)) {
    throw new NtpRejectedError(
      server,
      'root-distance',
      `error bound ${estimate.errorMs.toFixed(3)} ms exceeds maxRootDistanceMs ${maxRootDistanceMs}`,
    );
  }
  return {
    source: server,
    server,
    monotonicAt: estimate.monotonicAt,
    offsetMs: estimate.offsetMs,
    errorMs: estimate.errorMs,
    evidenceFrom: context.t1,
    delayMs: estimate.delayMs,
    t1: context.t1,
    t2,
    t3,
    t4: context.t4,
    stratum: reply.stratum,
    leap: reply.leap,
    version: reply.version,
    precisionMs: serverPrecisionMs,
    rootDelayMs: reply.rootDelayMs,
    rootDispersionMs: reply.rootDispersionMs,
    referenceId: referenceIdToString(reply.referenceId, reply.stratum),
    systemOffsetMs: context.t4 + estimate.offsetMs - wallMs,
    reply,
  };
}
