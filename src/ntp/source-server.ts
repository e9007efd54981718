/**
 * One server of `ntpSource`: its record, and one exchange with it (NTP, or NTS
 * with its key exchange), which never rejects but says what it came to.
 *
 * @module
 */
import {
  AbortError,
  NtpKissOfDeathError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
} from '../errors.js';
import type { ClockFilter } from '../sources/clock-filter.js';
import type { SourceProblemReason } from '../sources/types.js';
import type { LeapSecond, MonotonicSource, Scheduler, WallSource } from '../clock/types.js';
import type { NtpSocket } from './ntp-socket.js';
import type { NtpAuthenticator } from './query-options.js';
import type { NtpExchange } from './reply-validation.js';
import { NTP_PACKET_SIZE } from './packet.js';
import { NtsRejectedError } from './nts/errors.js';
import { ntsKeyExchange } from './nts/ke.js';
import { NtsSession, type NtsRequest } from './nts/session.js';
import {
  NTS_KE_MIN_TIMEOUT_MS,
  type NtpServerState,
  type NtpServerStatus,
  type NtsState,
} from './source-options.js';

/**
 * What the source knows and decides about one server.
 * @internal
 */
export interface ServerRecord {
  /** Host and port (of the NTS-KE server for an NTS server). */
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly nts: NtsState | undefined;
  filter: ClockFilter<NtpExchange>;
  socket: NtpSocket | undefined;
  state: NtpServerState;
  reach: number;
  failures: number;
  everOk: boolean;
  /** It had answered, then missed `LOSS_AFTER_POLLS` polls in a row (and has not answered since). */
  lost: boolean;
  /** The next poll that reaches it is a burst. */
  burst: boolean;
  /** A reply in the current poll contradicted kept exchanges. */
  inconsistent: boolean;
  stopped: boolean;
  dueAt: number;
  /** When its latest poll started (monotonic ms). */
  lastPollAt: number;
  /** The adaptive interval, in [pollIntervalMs, maxPollIntervalMs]. */
  intervalMs: number;
  /** The shortest interval the latest `RATE` kiss codes demand (0: none). */
  rateFloorMs: number;
  /** The nominal interval the next poll was scheduled with, and the one before. */
  currentMs: number;
  previousMs: number;
  /** How long after the latest poll started the next one is due (ms), and the gap before. */
  currentGapMs: number;
  previousGapMs: number;
  lastExchange: NtpExchange | undefined;
  lastRejection: { reason: string; message: string } | undefined;
  selection: 'truechimer' | 'falseticker' | undefined;
  kissCode: string | undefined;
}

/**
 * A server's status as `NtpSource.servers()` reports it, the filter's pick ranked at `now`.
 * @internal
 */
export function serverStatus(s: ServerRecord, now: number | undefined): NtpServerStatus {
  const best = s.filter.best(now);
  return {
    server: s.name,
    state: s.state,
    reach: s.reach,
    consecutiveFailures: s.failures,
    pollIntervalMs: s.stopped ? Infinity : s.currentMs,
    ...(s.lastExchange ? { lastExchange: s.lastExchange } : {}),
    ...(best ? { best } : {}),
    ...(s.lastRejection ? { lastRejection: s.lastRejection } : {}),
    ...(s.selection ? { selection: s.selection } : {}),
    ...(s.kissCode ? { kissCode: s.kissCode } : {}),
  };
}

/**
 * What an exchange needs from its source. `invalidatedAt` and `maxDriftPpm` are
 * read at the moment of use: they may change while an exchange is in flight.
 * @internal
 */
export interface ExchangeEnv {
  readonly timeoutMs: number;
  readonly wall: WallSource;
  readonly scheduler: Scheduler;
  readonly version: 3 | 4;
  /** The drift bound in use (ppm), now. */
  readonly maxDriftPpm: () => number;
  readonly maxRootDistanceMs: number;
  /** Replies to requests sent at or before this monotonic reading are not evidence. */
  readonly invalidatedAt: () => number;
  /** Aborts NTS key exchanges in flight when polling stops. */
  readonly keSignal: AbortSignal;
  problem(reason: SourceProblemReason, message: string, error?: unknown): void;
}

/**
 * The leap second that more than half of the votes announce (leap indicator 1 or
 * 2), if any: RFC 5905 leaves the decision to a majority of the survivors.
 * @internal
 */
export function majorityLeap(votes: readonly NtpExchange[]): LeapSecond | undefined {
  const inserts = votes.filter((v) => v.leap === 1).length;
  const deletes = votes.filter((v) => v.leap === 2).length;
  if (inserts * 2 > votes.length) return 'insert';
  if (deletes * 2 > votes.length) return 'delete';
  return undefined;
}

/**
 * What one exchange, or one whole poll, of a server came to.
 * @internal
 */
export type Outcome = 'ok' | 'failed' | 'refused' | 'rate' | 'void';

/**
 * Which exchange outcome decides a poll's: a RATE, else an accepted reply, else the rest.
 * @internal
 */
export const OUTCOME_RANK: Readonly<Record<Outcome, number>> = {
  failed: 0,
  refused: 1,
  void: 2,
  ok: 3,
  rate: 4,
};

/**
 * The per-exchange hook that builds and verifies one NTS-protected request.
 * @internal
 */
export function ntsAuthenticator(session: NtsSession): NtpAuthenticator {
  let request: NtsRequest | undefined;
  return {
    build(header) {
      request = session.buildRequest(header);
      return request.bytes;
    },
    verify(reply) {
      if (request === undefined) {
        throw new NtsRejectedError(
          `${session.ntpHost}:${session.ntpPort}`,
          'nts-unauthenticated',
          'no request was sent',
        );
      }
      session.verifyReply(reply, request);
      return reply.subarray(0, NTP_PACKET_SIZE);
    },
    abandon() {
      if (request !== undefined) session.abandon(request);
    },
  };
}

/**

/**
 * Runs NTS-KE for an NTS server whose session needs one. Returns the session,
 * or the outcome of a failed key exchange (reported as a problem: no downgrade).
 */
async function ntsSession(
  s: ServerRecord,
  nts: NtsState,
  env: ExchangeEnv,
): Promise<NtsSession | Outcome> {
  if (nts.session !== undefined && !nts.session.needsKeyExchange) return nts.session;
  const signal = env.keSignal;
  try {
    const ke = await ntsKeyExchange({
      host: s.host,
      port: s.port,
      // TCP and a TLS 1.3 handshake take longer than a datagram's round trip.
      timeoutMs: Math.max(env.timeoutMs, NTS_KE_MIN_TIMEOUT_MS),
      signal,
      ...(nts.ca === undefined ? {} : { ca: nts.ca }),
    });
    if (nts.session === undefined) nts.session = new NtsSession(ke);
    else nts.session.rekey(ke);
    return nts.session;
  } catch (error) {
    if (error instanceof AbortError || signal.aborted) return 'failed'; // closing
    const message = error instanceof Error ? error.message : String(error);
    s.state = 'rejected';
    s.lastRejection = { reason: 'nts-ke', message };
    env.problem('nts-ke', message, error);
    return 'refused';
  }
}

/**
 * One exchange with a server (after a key exchange, for an NTS server that needs
 * one); never rejects.
 * @internal
 */
export async function exchangeWith(
  s: ServerRecord,
  mono: MonotonicSource,
  env: ExchangeEnv,
): Promise<Outcome> {
  if (s.socket === undefined) return 'failed';
  const nts = s.nts;
  if (nts === undefined) return query(s, mono, s.host, s.port, undefined, env);
  // NTS: a key exchange when needed; after a NAK, one more key exchange and try.
  for (let attempt = 0; ; attempt++) {
    const keyed = nts.session !== undefined && !nts.session.needsKeyExchange;
    const session = await ntsSession(s, nts, env);
    if (typeof session === 'string') return session;
    const outcome = await query(
      s,
      mono,
      session.ntpHost,
      session.ntpPort,
      ntsAuthenticator(session),
      env,
    );
    if (outcome !== 'refused' || !session.needsKeyExchange || !keyed || attempt > 0) {
      return outcome;
    }
  }
}

/** One exchange with `host:port`, authenticated by `authenticate` if given; never rejects. */
async function query(
  s: ServerRecord,
  mono: MonotonicSource,
  host: string,
  port: number,
  authenticate: NtpAuthenticator | undefined,
  env: ExchangeEnv,
): Promise<Outcome> {
  const socket = s.socket;
  if (socket === undefined) return 'failed';
  try {
    const exchange = await socket.query({
      host,
      port,
      timeoutMs: env.timeoutMs,
      monotonic: mono,
      wall: env.wall,
      scheduler: env.scheduler,
      version: authenticate === undefined ? env.version : 4,
      maxDriftPpm: env.maxDriftPpm(),
      maxRootDistanceMs: env.maxRootDistanceMs,
      // Tell the server how often we poll it (log₂ s), as RFC 5905 asks.
      poll: Math.round(Math.log2(s.currentMs / 1000)),
      ...(authenticate === undefined ? {} : { authenticate }),
    });
    s.lastExchange = exchange;
    // The request left before a disruption: the reply is no evidence of the time after it.
    if (exchange.t1 <= env.invalidatedAt()) return 'void';
    s.filter.add(exchange);
    s.everOk = true;
    s.state = 'ok';
    return 'ok';
  } catch (error) {
    if (error instanceof AbortError) return 'failed'; // closing
    if (error instanceof NtpKissOfDeathError) {
      s.kissCode = error.kissCode;
      if (error.kissCode === 'DENY' || error.kissCode === 'RSTR') {
        s.stopped = true;
        s.state = 'stopped';
        env.problem(
          'server-stopped',
          `${s.name} sent kiss code ${error.kissCode}; it will not be asked again`,
          error,
        );
        return 'refused';
      }
      if (error.kissCode === 'RATE') return 'rate';
      s.state = 'rejected';
      return 'refused';
    }
    if (error instanceof NtpRejectedError) {
      // Already reported by the socket as it arrived.
      s.state = 'rejected';
      return 'refused';
    }
    if (
      authenticate !== undefined &&
      !(error instanceof NtpTimeoutError) &&
      !(error instanceof SourceUnavailableError)
    ) {
      // The request could not be built (no cookie): say so, send nothing unauthenticated.
      const message = error instanceof Error ? error.message : String(error);
      s.state = 'rejected';
      s.lastRejection = { reason: 'nts', message };
      env.problem('nts', message, error);
      return 'refused';
    }
    const message = error instanceof Error ? error.message : String(error);
    const reason = error instanceof SourceUnavailableError ? 'unavailable' : 'timeout';
    s.state = 'unreachable';
    s.lastRejection = { reason, message };
    env.problem(reason, message, error);
    return 'failed';
  }
}
