/**
 * `ntpSource`: a TimeSource that polls NTP servers, keeps a clock filter per
 * server, selects the offset a majority supports and feeds it to a TrueClock.
 *
 * @module
 */
import { isIP } from 'node:net';
import {
  AbortError,
  InvalidArgumentError,
  NtpKissOfDeathError,
  NtpRejectedError,
  NtpTimeoutError,
  SourceUnavailableError,
} from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative } from '../_internals/validate.js';
import { agedBound } from '../sources/exchange.js';
import { ClockFilter, type FilterSample } from '../sources/clock-filter.js';
import { systemScheduler, systemWall } from '../clock/system.js';
import type {
  ProblemListener,
  SampleListener,
  SourceContext,
  SourceProblem,
  TimeSource,
} from '../sources/types.js';
import type {
  LeapSecond,
  MonotonicSource,
  Scheduler,
  SyncSample,
  WallSource,
} from '../clock/types.js';
import { NtpSocket, type NtpAuthenticator, type NtpExchange } from './client.js';
import { NTP_PACKET_SIZE } from './packet.js';
import { NtsRejectedError } from './nts/errors.js';
import { NTS_KE_PORT, ntsKeyExchange } from './nts/ke.js';
import { NtsSession, type NtsRequest } from './nts/session.js';
import { selectOffset, type Selection } from './select.js';
import type { DatagramTransport } from './transport.js';

/**
 * A server entry of {@link NtpSourceOptions.servers} in object form.
 *
 * With `nts`, `host` and `port` name the NTS-KE server (TCP, default port 4460);
 * the source runs the key exchange before the first exchange, again after an
 * NTS NAK or when the cookies run out, and sends every request to the NTP
 * server and port the key exchange negotiated (default: the KE host, port 123),
 * built and verified by its `NtsSession`. Nothing is ever downgraded: a failed
 * key exchange (an untrusted certificate included), a reply without a valid
 * authenticator, or a NAK a new key exchange does not cure is reported as a
 * problem with its reason, and that server gives no sample.
 *
 * @example
 * ```ts
 * ntpSource({ servers: [{ host: 'time.cloudflare.com', nts: true }] });
 * ntpSource({ servers: [{ host: '127.0.0.1', port: 4460, nts: { ca: readFileSync('ca.pem', 'utf8') } }] });
 * ```
 */
export interface NtpServerSpec {
  /** Host name or IP address (of the NTS-KE server with `nts`). */
  readonly host: string;
  /** UDP port (default 123), or with `nts` the NTS-KE TCP port (default 4460). */
  readonly port?: number;
  /** Use NTS: `true` trusts the system CA store; `{ ca }` trusts only that CA (PEM). */
  readonly nts?: true | { readonly ca?: string | Uint8Array };
}

/**
 * Options of {@link ntpSource}.
 *
 * @example
 * ```ts
 * const options: NtpSourceOptions = {
 *   servers: ['0.pool.ntp.org', '1.pool.ntp.org', '2.pool.ntp.org'],
 *   targetUncertaintyMs: 20, // poll less once the clock can keep ε under 20 ms anyway
 * };
 * ```
 */
export interface NtpSourceOptions {
  /**
   * Servers: a string `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address
   * (port default 123), or an {@link NtpServerSpec} object — with `nts`, an
   * NTS-KE server whose every exchange is authenticated (RFC 8915).
   */
  readonly servers: readonly (string | NtpServerSpec)[];
  /**
   * The shortest poll interval of a server (ms), once it has answered; default
   * 64000 (2⁶ s, RFC 5905's minimum poll exponent, and the NTP pool's floor).
   */
  readonly pollIntervalMs?: number;
  /**
   * The longest poll interval (ms) the adaptive policy lengthens to; default
   * 1024000 (2¹⁰ s, RFC 5905's default maximum poll exponent), or
   * `pollIntervalMs` if that is longer. Equal to `pollIntervalMs`: a fixed interval.
   * Only a `RATE` kiss code stretches an interval beyond it.
   */
  readonly maxPollIntervalMs?: number;
  /**
   * The ε (ms) the clock should stay under at the next poll: a server's interval
   * doubles (up to `maxPollIntervalMs`) while the clock predicts ε will still be
   * under it after twice the interval, and halves when it predicts ε will not be
   * under it after the current one. Default 1 (see docs/ntp.md, "Polling"). A target
   * the servers cannot reach (their own bound λ is above it) keeps the interval at
   * `pollIntervalMs`; 0 never lengthens it, `Infinity` always does.
   */
  readonly targetUncertaintyMs?: number;
  /**
   * Exchanges per server in a burst: at start, after a server was lost (it had
   * answered, then missed 3 polls in a row) and after `invalidate()`; default 4,
   * `sampleSpacingMs` apart (like ntpd's and chronyd's `iburst`). 1: no burst.
   * A burst is never shorter than `samplesPerPoll`.
   */
  readonly initialBurst?: number;
  /**
   * Exchanges per server in every other poll; default 1, as public servers ask.
   * The clock filter keeps the best of the last 8.
   */
  readonly samplesPerPoll?: number;
  /** Pause between the exchanges of a burst or poll (ms); default 2000, which public servers tolerate. */
  readonly sampleSpacingMs?: number;
  /** Per-exchange timeout (ms); default 1000. */
  readonly timeoutMs?: number;
  /**
   * Bound on the local clock's drift (ppm), used to age and rank samples and to
   * predict ε without a clock's model. Default: the subscribing clock's
   * (`SourceContext.maxDriftPpm`, which `TrueClock` hands over), else 200.
   */
  readonly maxDriftPpm?: number;
  /** Refuse replies (and forget samples) whose bound exceeds this (ms); default 1000. */
  readonly maxRootDistanceMs?: number;
  /**
   * f, the most falsetickers among the configured servers; default ⌊(servers − 1)/2⌋.
   * Of the servers that answer, all but f must overlap; with f or fewer answering,
   * nothing is delivered (see `selectOffset`).
   */
  readonly maxFalsetickers?: number;
  /** Closes the source when aborted. */
  readonly signal?: AbortSignal;
  /** Timers for polling and timeouts; default the platform's. */
  readonly scheduler?: Scheduler;
  /** Wall clock, only for the NTP era pivot and `systemOffsetMs`; default `Date.now()`. */
  readonly wall?: WallSource;
  /**
   * How datagrams travel and names resolve; default UDP (`node:dgram`, `node:dns`).
   * Inject `createSimulatedNtpNetwork(sim)` from `chronobound/testing` to run in virtual time.
   */
  readonly transport?: DatagramTransport;
  /**
   * Uniform random numbers in [0, 1) for the poll jitter; default `Math.random`.
   * The same generator (with the same clock and network) gives the same schedule.
   * Request nonces do not use it: they stay cryptographically random.
   */
  readonly random?: () => number;
  /** NTP version to send; default 4. */
  readonly version?: 3 | 4;
  /** The `source` name on samples and problems; default `'ntp'`. */
  readonly name?: string;
}

/**
 * Where a server stands after its latest poll.
 *
 * @example
 * ```ts
 * const s: NtpServerState = 'backing-off';
 * ```
 */
export type NtpServerState =
  'pending' | 'ok' | 'rejected' | 'unreachable' | 'backing-off' | 'stopped';

/**
 * Per-server status, e.g. for a CLI table.
 *
 * @example
 * ```ts
 * for (const s of source.servers()) console.log(s.server, s.state, s.best?.offsetMs, s.lastRejection?.reason);
 * ```
 */
export interface NtpServerStatus {
  /** `host:port`. */
  readonly server: string;
  /** Outcome of the latest poll. */
  readonly state: NtpServerState;
  /** Reachability register: bit 0 is the latest poll, 1 if it produced an accepted reply. */
  readonly reach: number;
  /** Polls in a row without an accepted reply. */
  readonly consecutiveFailures: number;
  /**
   * The interval until this server's next poll (ms), before jitter: the adaptive
   * interval, a `RATE` kiss code's demand if longer, or the quick retry of a server
   * that never answered; `Infinity` once stopped.
   */
  readonly pollIntervalMs: number;
  /** The last accepted exchange. */
  readonly lastExchange?: NtpExchange;
  /** The clock filter's current pick. */
  readonly best?: NtpExchange;
  /** Why the last refused reply or failed exchange failed. */
  readonly lastRejection?: { readonly reason: string; readonly message: string };
  /** Role in the latest selection. */
  readonly selection?: 'truechimer' | 'falseticker';
  /** The last kiss code received. */
  readonly kissCode?: string;
}

/**
 * A TimeSource backed by NTP servers, with per-server status.
 *
 * @example
 * ```ts
 * const source: NtpSource = ntpSource({ servers: ['127.0.0.1:11123'] });
 * console.table(source.servers());
 * ```
 */
export interface NtpSource extends TimeSource {
  /** The shortest poll interval (ms): the `pollIntervalMs` option. */
  readonly pollIntervalMs: number;
  /** The longest adaptive poll interval (ms): the `maxPollIntervalMs` option. */
  readonly maxPollIntervalMs: number;
  /**
   * The longest a healthy source goes between samples (ms), now: the longest
   * current (or just previous) poll interval of a server plus jitter, and one
   * burst's spacing and timeouts. It changes as the intervals adapt; see `TimeSource`.
   */
  readonly maxSampleGapMs: number;
  /**
   * Drops every kept exchange whose request left at or before `monotonicAt`, ignores
   * replies to requests sent before it, and polls every server at once with a
   * burst, from the shortest interval (a server that sent `RATE` waits out its
   * demand). `TrueClock` calls it on a disruption (suspend, VM pause, clock step).
   */
  invalidate(monotonicAt: number): void;
  /** A snapshot of every server's status. */
  servers(): readonly NtpServerStatus[];
  /** The latest selection across servers, if one ran. */
  lastSelection(): Selection | undefined;
}

/** The NTS state of a server given with `nts`. */
interface NtsState {
  readonly ca: string | Uint8Array | undefined;
  /** Keys and cookies; undefined until the first key exchange succeeds. */
  session: NtsSession | undefined;
}

interface ServerRecord {
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

interface Subscriber {
  readonly onSample: SampleListener;
  readonly onProblem: ProblemListener | undefined;
  readonly context: SourceContext | undefined;
}

/** First retries of a server that never answered come this soon (ms), doubling up to the poll interval. */
const STARTUP_RETRY_MS = 2000;
/**
 * Each start of a source draws its poll period at random from [1, 1 + this] ×
 * `pollIntervalMs`, so clients started together drift apart, and no interval
 * falls below what the policy (or a server's `RATE`) allows.
 */
const POLL_JITTER = 0.1;
/** Slack when comparing grid times (ms): a float's rounding, not a real difference. */
const GRID_SLACK_MS = 1e-6;
/** RATE kiss codes stretch an interval up to 2¹⁷ s, RFC 5905's MAXPOLL (36.4 h). */
const MAX_RATE_INTERVAL_MS = 2 ** 17 * 1000;
/** A server that answered and then missed this many polls in a row is lost: burst again. */
const LOSS_AFTER_POLLS = 3;
/** A lost server that keeps missing polls is retried up to this many minimum intervals apart. */
const MAX_LOST_BACKOFF = 4;
/** RFC 5905's default maximum poll, 2¹⁰ s. */
const DEFAULT_MAX_POLL_MS = 1_024_000;
/** Default `targetUncertaintyMs`. */
const DEFAULT_TARGET_UNCERTAINTY_MS = 1;
/** The drift bound without an option and without a clock's context (ppm). */
const DEFAULT_DRIFT_PPM = 200;
/** The least a monotonic clock without a stated resolution must move to be past a reading (ms). */
const MIN_STEP_MS = 0.001;

/**
 * Parses `host`, `host:port`, `[ipv6]:port`, `[ipv6]` or a bare IPv6 address.
 * @internal
 */
export function parseServerSpec(spec: string): { host: string; port: number } {
  return parseHostPort(spec, 123);
}

function parseHostPort(spec: string, defaultPort: number): { host: string; port: number } {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new InvalidArgumentError('servers', spec, 'a "host" or "host:port" string');
  }
  const s = spec.trim();
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  if (bracket) {
    host = bracket[1] as string;
    portText = bracket[2];
  } else if (isIP(s) === 6) {
    host = s;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon === -1) host = s;
    else {
      host = s.slice(0, colon);
      portText = s.slice(colon + 1);
    }
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (host === '' || /\s/.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(
      'servers',
      spec,
      'a "host" or "host:port" string with a port in [1, 65535]',
    );
  }
  return { host, port };
}

/** NTS-KE gets at least this long (ms), whatever the per-exchange timeout. */
const NTS_KE_MIN_TIMEOUT_MS = 5000;

/** Validates one entry of `servers`: a string, or `{ host, port?, nts? }`. */
function parseServerEntry(spec: string | NtpServerSpec): {
  host: string;
  port: number;
  nts: NtsState | undefined;
} {
  if (typeof spec === 'string') return { ...parseServerSpec(spec), nts: undefined };
  const expected = 'a "host:port" string or { host, port?, nts?: true | { ca? } }';
  if (typeof spec !== 'object' || spec === null) {
    throw new InvalidArgumentError('servers', spec, expected);
  }
  const { host, port, nts } = spec;
  if (typeof host !== 'string' || host.trim() === '' || /\s/.test(host.trim())) {
    throw new InvalidArgumentError('servers', spec, `${expected} with a non-empty host`);
  }
  const defaultPort = nts === undefined ? 123 : NTS_KE_PORT;
  const p = port ?? defaultPort;
  if (!Number.isInteger(p) || p < 1 || p > 65535) {
    throw new InvalidArgumentError('servers', spec, `${expected} with a port in [1, 65535]`);
  }
  const bare = host.trim().replace(/^\[(.*)\]$/, '$1');
  if (nts === undefined) return { host: bare, port: p, nts: undefined };
  if (nts !== true && (typeof nts !== 'object' || nts === null)) {
    throw new InvalidArgumentError('servers', spec, `${expected}: nts must be true or { ca? }`);
  }
  const ca = nts === true ? undefined : nts.ca;
  if (ca !== undefined && typeof ca !== 'string' && !(ca instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      'servers',
      spec,
      `${expected}: nts.ca must be PEM text or bytes`,
    );
  }
  return { host: bare, port: p, nts: { ca, session: undefined } };
}

/** The per-exchange hook that builds and verifies one NTS-protected request. */
function ntsAuthenticator(session: NtsSession): NtpAuthenticator {
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
 * A {@link TimeSource} that polls NTP servers over UDP. Per server it keeps the
 * last 8 accepted exchanges and uses the one with the smallest bound (clock
 * filter); across servers it delivers the offset range a majority of the
 * configured servers supports (Marzullo, see `selectOffset`), so fewer than half
 * of them may be wrong without moving the clock outside its bound.
 *
 * Polling is kind to public servers (docs/ntp.md, "Polling"): a burst of
 * `initialBurst` exchanges at start, after a server was lost and after
 * `invalidate()`, and otherwise `samplesPerPoll` (1) exchange per server per
 * poll. Each server's interval adapts between `pollIntervalMs` (64 s) and
 * `maxPollIntervalMs` (1024 s): it doubles while the clock predicts that ε stays
 * under `targetUncertaintyMs` until the next poll, and shortens when it will not,
 * on a missed poll, on loss and on an `'inconsistent-sample'`. A `RATE` kiss code
 * at least doubles that server's interval; `DENY` and `RSTR` stop using it.
 * Problems (timeouts, refused replies with their reasons, `no-majority`,
 * `falseticker`) go to the subscriber's `onProblem`. `close()` frees the sockets;
 * it is idempotent.
 *
 * @param options - Servers, polling policy, limits, and the injectable transport, timers and randomness.
 * @returns The source; hand it to `new TrueClock({ source })`.
 * @throws {InvalidArgumentError} When a server string or an option is invalid.
 *
 * @example
 * ```ts
 * const clock = new TrueClock({ source: ntpSource({ servers: ['0.pool.ntp.org', '1.pool.ntp.org', '2.pool.ntp.org'] }) });
 * await clock.ready({ timeoutMs: 5000 });
 * console.log(clock.now());
 * await clock.close();
 * ```
 */
export function ntpSource(options: NtpSourceOptions): NtpSource {
  return new NtpPoller(options);
}

class NtpPoller implements NtpSource {
  readonly pollIntervalMs: number;
  readonly maxPollIntervalMs: number;
  readonly #targetUncertaintyMs: number;
  readonly #initialBurst: number;
  readonly #samplesPerPoll: number;
  readonly #spacingMs: number;
  readonly #timeoutMs: number;
  /** The `maxDriftPpm` option, if given: it overrides the clock's. */
  readonly #driftOption: number | undefined;
  /** The drift bound in use (ppm): the option, else the subscribing clock's, else 200. */
  #maxDriftPpm: number;
  readonly #maxRootDistanceMs: number;
  readonly #maxFalsetickers: number | undefined;
  readonly #scheduler: Scheduler;
  readonly #wall: WallSource;
  readonly #transport: DatagramTransport | undefined;
  readonly #random: () => number;
  readonly #version: 3 | 4;
  readonly #name: string;
  readonly #servers: ServerRecord[];
  readonly #subscribers = new Set<Subscriber>();
  #monotonic: MonotonicSource | undefined;
  /** The timescale the kept exchanges are on. */
  #filtersOn: MonotonicSource | undefined;
  #generation = 0;
  #running = false;
  /**
   * The poll grid: every poll of a server that answers falls on a tick
   * `#gridStart + k·#period`, and one with an interval of 2ⁿ minimum intervals on
   * a multiple of 2ⁿ, so servers with equal or nested intervals are asked together
   * and the selection combines fresh votes, not one fresh vote and stale ones.
   */
  #gridStart = 0;
  #period: number;
  #timer: unknown;
  readonly #wakeSleepers = new Set<() => void>();
  #selection: Selection | undefined;
  /** The latest sample handed to subscribers (see `#tightens`). */
  #delivered: SyncSample | undefined;
  #closing: Promise<void> | undefined;
  /** Replies to requests sent at or before this monotonic reading are not evidence. */
  #invalidatedAt = -Infinity;
  #polling = false;
  /** An invalidation arrived while a poll ran: burst every server again when it ends. */
  #repollAll = false;
  /** Set while the filters are rebuilt for a new drift bound: no inconsistency reports. */
  #rebuilding = false;
  /** Aborts NTS key exchanges in flight when polling stops. */
  #keAbort = new AbortController();

  constructor(options: NtpSourceOptions) {
    if (!Array.isArray(options?.servers) || options.servers.length === 0) {
      throw new InvalidArgumentError(
        'servers',
        options?.servers,
        'a non-empty array of "host:port" strings or { host, port?, nts? } objects',
      );
    }
    this.pollIntervalMs = requirePositive('pollIntervalMs', options.pollIntervalMs ?? 64_000);
    this.maxPollIntervalMs =
      options.maxPollIntervalMs === undefined
        ? Math.max(DEFAULT_MAX_POLL_MS, this.pollIntervalMs)
        : requirePositive('maxPollIntervalMs', options.maxPollIntervalMs);
    if (this.maxPollIntervalMs < this.pollIntervalMs) {
      throw new InvalidArgumentError(
        'maxPollIntervalMs',
        options.maxPollIntervalMs,
        `a finite number ≥ pollIntervalMs (${this.pollIntervalMs})`,
      );
    }
    const target = options.targetUncertaintyMs ?? DEFAULT_TARGET_UNCERTAINTY_MS;
    if (typeof target !== 'number' || !(target >= 0)) {
      throw new InvalidArgumentError(
        'targetUncertaintyMs',
        options.targetUncertaintyMs,
        'a number ≥ 0 (Infinity allowed)',
      );
    }
    this.#targetUncertaintyMs = target;
    this.#samplesPerPoll = requireCount('samplesPerPoll', options.samplesPerPoll, 1);
    this.#initialBurst = Math.max(
      requireCount('initialBurst', options.initialBurst, 4),
      this.#samplesPerPoll,
    );
    this.#spacingMs = requireNonNegative('sampleSpacingMs', options.sampleSpacingMs ?? 2000);
    this.#timeoutMs = requirePositive('timeoutMs', options.timeoutMs ?? 1000);
    this.#driftOption =
      options.maxDriftPpm === undefined
        ? undefined
        : requireNonNegative('maxDriftPpm', options.maxDriftPpm);
    this.#maxDriftPpm = this.#driftOption ?? DEFAULT_DRIFT_PPM;
    this.#maxRootDistanceMs = requirePositive(
      'maxRootDistanceMs',
      options.maxRootDistanceMs ?? 1000,
    );
    if (
      options.maxFalsetickers !== undefined &&
      (!Number.isInteger(options.maxFalsetickers) ||
        options.maxFalsetickers < 0 ||
        options.maxFalsetickers >= options.servers.length)
    ) {
      throw new InvalidArgumentError(
        'maxFalsetickers',
        options.maxFalsetickers,
        'an integer f with 0 ≤ f < the number of servers',
      );
    }
    this.#maxFalsetickers = options.maxFalsetickers;
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#wall = options.wall ?? systemWall;
    if (options.transport !== undefined && typeof options.transport?.open !== 'function') {
      throw new InvalidArgumentError(
        'transport',
        options.transport,
        'a DatagramTransport with open()',
      );
    }
    this.#transport = options.transport;
    if (options.random !== undefined && typeof options.random !== 'function') {
      throw new InvalidArgumentError('random', options.random, 'a function returning [0, 1)');
    }
    this.#random = options.random ?? Math.random;
    this.#period = this.pollIntervalMs;
    const version = options.version ?? 4;
    if (version !== 3 && version !== 4)
      throw new InvalidArgumentError('version', options.version, '3 or 4');
    this.#version = version;
    this.#name = options.name ?? 'ntp';
    const seen = new Set<string>();
    const specs: readonly (string | NtpServerSpec)[] = options.servers;
    this.#servers = specs.map((spec) => {
      const { host, port, nts } = parseServerEntry(spec);
      const name = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
      if (seen.has(name))
        throw new InvalidArgumentError('servers', spec, 'each server listed once');
      seen.add(name);
      const record: ServerRecord = {
        host,
        port,
        name,
        nts,
        filter: undefined as unknown as ClockFilter<NtpExchange>,
        socket: undefined,
        state: 'pending',
        reach: 0,
        failures: 0,
        everOk: false,
        lost: false,
        burst: true,
        inconsistent: false,
        stopped: false,
        dueAt: -Infinity,
        lastPollAt: -Infinity,
        intervalMs: this.pollIntervalMs,
        rateFloorMs: 0,
        currentMs: this.pollIntervalMs,
        previousMs: this.pollIntervalMs,
        currentGapMs: this.pollIntervalMs * (1 + POLL_JITTER),
        previousGapMs: this.pollIntervalMs * (1 + POLL_JITTER),
        lastExchange: undefined,
        lastRejection: undefined,
        selection: undefined,
        kissCode: undefined,
      };
      record.filter = this.#newFilter(record);
      return record;
    });
    const signal = options.signal;
    if (signal?.aborted) this.#closing = Promise.resolve();
    else signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /**
   * The longest a healthy source goes between samples: a healthy server answers
   * every poll, so the gap is the time between two of its polls (the longer of the
   * one scheduled now and the one before, which a missed poll shortens), plus the
   * rounds of one burst, each up to a timeout apart.
   */
  get maxSampleGapMs(): number {
    let longest = 0;
    for (const s of this.#servers) {
      if (!s.stopped) longest = Math.max(longest, s.currentGapMs, s.previousGapMs);
    }
    if (longest === 0) longest = this.pollIntervalMs * (1 + POLL_JITTER);
    return (
      longest + (this.#initialBurst - 1) * this.#spacingMs + this.#initialBurst * this.#timeoutMs
    );
  }

  subscribe(
    onSample: SampleListener,
    monotonic: MonotonicSource,
    onProblem?: ProblemListener,
    context?: SourceContext,
  ): () => void {
    if (this.#closing !== undefined) {
      throw new SourceUnavailableError(this.#name, 'the NTP source was closed');
    }
    if (typeof onSample !== 'function' || typeof monotonic?.now !== 'function') {
      throw new InvalidArgumentError(
        'subscribe',
        onSample,
        'a sample listener and a MonotonicSource',
      );
    }
    if (
      context !== undefined &&
      (typeof context?.predictUncertaintyMs !== 'function' ||
        typeof context.maxDriftPpm !== 'number' ||
        !(context.maxDriftPpm >= 0) ||
        !Number.isFinite(context.maxDriftPpm))
    ) {
      throw new InvalidArgumentError(
        'context',
        context,
        'a SourceContext: { maxDriftPpm ≥ 0, predictUncertaintyMs(errorMs, elapsedMs) }',
      );
    }
    if (this.#monotonic !== undefined && this.#monotonic !== monotonic) {
      throw new InvalidArgumentError(
        'monotonic',
        monotonic,
        'the same MonotonicSource as the current subscriber (samples are stamped on one timescale)',
      );
    }
    const subscriber: Subscriber = { onSample, onProblem, context };
    this.#subscribers.add(subscriber);
    // A new subscriber has no sample yet: hand on the next selection, whatever it is.
    this.#delivered = undefined;
    this.#monotonic = monotonic;
    if (this.#filtersOn !== undefined && this.#filtersOn !== monotonic) {
      // Kept exchanges are stamped on another clock's timescale: worthless here.
      for (const s of this.#servers) {
        s.filter.clear();
        s.lastPollAt = -Infinity;
      }
      this.#selection = undefined;
      this.#invalidatedAt = -Infinity;
    }
    this.#filtersOn = monotonic;
    this.#useDrift();
    if (!this.#running) this.#start();
    return () => {
      if (!this.#subscribers.delete(subscriber)) return;
      if (this.#subscribers.size === 0) {
        this.#stop().catch(() => undefined);
        this.#monotonic = undefined;
      } else {
        this.#useDrift();
      }
    };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#subscribers.clear();
      await this.#stop();
      this.#monotonic = undefined;
    })();
    return this.#closing;
  }

  servers(): readonly NtpServerStatus[] {
    return this.#servers.map((s) => {
      const best = s.filter.best(this.#monotonic?.now());
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
    });
  }

  lastSelection(): Selection | undefined {
    return this.#selection;
  }

  invalidate(monotonicAt: number): void {
    if (!(monotonicAt > this.#invalidatedAt)) return;
    this.#invalidatedAt = monotonicAt;
    let dropped = 0;
    for (const s of this.#servers) dropped += s.filter.dropGatheredBefore(monotonicAt);
    this.#selection = undefined;
    this.#delivered = undefined;
    for (const s of this.#servers) s.selection = undefined;
    if (dropped > 0) {
      this.#problem(
        'invalidated',
        `dropped ${dropped} exchange(s) gathered before a disruption; polling every server again`,
      );
    }
    if (!this.#running) return;
    if (this.#polling) {
      this.#repollAll = true;
      return;
    }
    this.#burstAll();
    this.#schedule(this.#generation, 0);
  }

  /** The context of the first subscriber that gave one. */
  #context(): SourceContext | undefined {
    for (const subscriber of this.#subscribers) {
      if (subscriber.context !== undefined) return subscriber.context;
    }
    return undefined;
  }

  /** Takes the drift bound from the option, else the clock's context, else 200 ppm. */
  #useDrift(): void {
    const ppm = this.#driftOption ?? this.#context()?.maxDriftPpm ?? DEFAULT_DRIFT_PPM;
    if (ppm === this.#maxDriftPpm) return;
    this.#maxDriftPpm = ppm;
    // Rank (and check consistency) at the new bound, keeping what was gathered.
    this.#rebuilding = true;
    try {
      for (const s of this.#servers) {
        const kept = s.filter.samples;
        s.filter = this.#newFilter(s);
        for (const x of kept) s.filter.add(x);
      }
    } finally {
      this.#rebuilding = false;
    }
  }

  #newFilter(s: ServerRecord): ClockFilter<NtpExchange> {
    return new ClockFilter<NtpExchange>({
      // Rank kept samples by the drift the clock will age them with, so the sample
      // handed on is the one with the tightest bound from now on.
      agingPpm: this.#maxDriftPpm,
      // A reply that contradicts a kept one aged by the drift bound proves the local
      // clock was slewed or stepped beyond it: the newer evidence wins.
      consistencyDriftPpm: this.#maxDriftPpm,
      onInconsistent: (dropped, newer) => this.#inconsistent(s, dropped, newer),
    });
  }

  /**
   * The ε the clock predicts for a sample with bound `errorMs` after `elapsedMs`:
   * the subscribing clock's model, else the drift bound.
   */
  #predict(errorMs: number, elapsedMs: number): number {
    const context = this.#context();
    if (context === undefined) return errorMs + this.#maxDriftPpm * 1e-6 * elapsedMs;
    try {
      const predicted = context.predictUncertaintyMs(errorMs, elapsedMs);
      // A model that cannot say is no licence to poll less.
      return typeof predicted === 'number' && !Number.isNaN(predicted)
        ? Math.max(predicted, errorMs)
        : Infinity;
    } catch {
      return Infinity;
    }
  }

  /** Every server polls again now, with a burst, from the shortest interval. */
  #burstAll(): void {
    for (const s of this.#servers) {
      if (s.stopped) continue;
      s.burst = true;
      s.intervalMs = this.pollIntervalMs;
      s.dueAt = this.#earliestPoll(s);
    }
  }

  /**
   * The earliest a server may be polled out of turn: once the monotonic clock has
   * moved past the latest invalidation (a request stamped at that very reading is
   * no evidence of the time after it, here or in `TrueClock`), and not before a
   * `RATE` kiss code's demand has passed.
   */
  #earliestPoll(s: ServerRecord): number {
    const afterInvalidation =
      this.#invalidatedAt === -Infinity
        ? -Infinity
        : this.#invalidatedAt + Math.max(this.#monotonic?.resolutionMs ?? 0, MIN_STEP_MS);
    return Math.max(
      afterInvalidation,
      s.rateFloorMs > 0 ? s.lastPollAt + s.rateFloorMs : -Infinity,
    );
  }

  #start(): void {
    this.#running = true;
    const generation = ++this.#generation;
    this.#keAbort = new AbortController();
    this.#gridStart = this.#monotonic?.now() ?? 0;
    this.#period = this.pollIntervalMs * (1 + POLL_JITTER * this.#random());
    for (const s of this.#servers) {
      s.socket = new NtpSocket({
        onRejected: (e) => this.#rejected(s, e),
        ...(this.#transport === undefined ? {} : { transport: this.#transport }),
      });
      if (!s.stopped) {
        s.burst = true;
        s.dueAt = this.#earliestPoll(s);
      }
    }
    this.#schedule(generation, 0);
  }

  async #stop(): Promise<void> {
    this.#running = false;
    this.#generation++;
    this.#scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#keAbort.abort(new Error('the source is closing'));
    for (const wake of [...this.#wakeSleepers]) wake();
    const sockets = this.#servers.map((s) => s.socket).filter((x) => x !== undefined);
    for (const s of this.#servers) s.socket = undefined;
    await Promise.all(sockets.map((socket) => socket.close()));
  }

  #schedule(generation: number, delayMs: number): void {
    if (generation !== this.#generation) return;
    this.#scheduler.clearTimeout(this.#timer);
    this.#timer = this.#scheduler.setTimeout(
      () => {
        this.#tick(generation).catch((error: unknown) =>
          this.#problem('internal', `polling failed: ${String(error)}`, error),
        );
      },
      Math.max(0, delayMs),
    );
    // Idle waits between polls must not keep a process alive; exchanges do (their sockets are ref'd).
    unrefTimer(this.#timer);
  }

  async #tick(generation: number): Promise<void> {
    const mono = this.#monotonic;
    if (generation !== this.#generation || mono === undefined) return;
    const now = mono.now();
    const due = this.#servers.filter((s) => !s.stopped && s.dueAt <= now);
    if (due.length > 0) {
      this.#polling = true;
      try {
        await this.#poll(generation, mono, due);
      } finally {
        this.#polling = false;
      }
    }
    if (generation !== this.#generation) return;
    if (this.#repollAll) {
      this.#repollAll = false;
      this.#burstAll();
    }
    const active = this.#servers.filter((s) => !s.stopped);
    if (active.length === 0) {
      this.#problem(
        'no-servers',
        'every server asked this client to stop (kiss-of-death DENY/RSTR)',
      );
      return;
    }
    const next = Math.min(...active.map((s) => s.dueAt));
    this.#schedule(generation, next - mono.now());
  }

  async #poll(generation: number, mono: MonotonicSource, due: ServerRecord[]): Promise<void> {
    const outcomes = new Map<ServerRecord, Outcome>();
    const start = mono.now();
    /** Exchanges still to send to each server in this poll. */
    const remaining = new Map<ServerRecord, number>();
    /** Retries left: a server that has been answering gets one if a datagram is lost. */
    const retries = new Map<ServerRecord, number>();
    for (const s of due) {
      s.lastPollAt = start;
      s.inconsistent = false;
      remaining.set(s, s.burst ? this.#initialBurst : this.#samplesPerPoll);
      retries.set(s, s.everOk && !s.lost ? 1 : 0);
    }
    let live = due;
    for (let round = 0; live.length > 0; round++) {
      if (round > 0 && this.#spacingMs > 0) {
        await this.#sleep(this.#spacingMs);
        if (generation !== this.#generation) return;
      }
      const results = await Promise.all(live.map((s) => this.#exchange(s, mono)));
      if (generation !== this.#generation) return;
      let accepted = false;
      const next: ServerRecord[] = [];
      results.forEach((result, i) => {
        const s = live[i] as ServerRecord;
        const left = (remaining.get(s) ?? 1) - 1;
        remaining.set(s, left);
        const before = outcomes.get(s);
        if (result === 'ok') {
          accepted = true;
          if (left > 0) next.push(s);
        } else if (result === 'failed' && before !== 'ok' && (retries.get(s) ?? 0) > 0) {
          // A lost datagram: ask once more, sampleSpacingMs later, rather than miss the
          // poll, so the server keeps its interval and stays in step with the others.
          retries.set(s, 0);
          remaining.set(s, Math.max(left, 1));
          next.push(s);
        }
        // Otherwise no more this poll: a server that timed out would hold every other
        // server's next round back by the timeout.
        // A RATE anywhere in the poll rate-limits it; else one accepted exchange makes it a success.
        if (before === undefined || OUTCOME_RANK[result] > OUTCOME_RANK[before]) {
          outcomes.set(s, result);
        }
      });
      live = next;
      if (accepted) this.#select(mono, start);
    }
    const now = mono.now();
    for (const s of due) this.#reschedule(s, outcomes.get(s) ?? 'failed', start, now);
  }

  /** Sets a server's next interval after a poll (the policy in docs/ntp.md, "Polling"). */
  #reschedule(s: ServerRecord, outcome: Outcome, started: number, now: number): void {
    // Replies that only answered requests from before a disruption say nothing about the server.
    if (outcome !== 'void') s.reach = ((s.reach << 1) | (outcome === 'ok' ? 1 : 0)) & 0xff;
    if (s.stopped) {
      s.state = 'stopped';
      s.dueAt = Infinity;
      return;
    }
    const min = this.pollIntervalMs;
    let interval: number | undefined;
    if (outcome === 'rate') {
      // The server asks for fewer requests: at least double whatever it saw.
      s.rateFloorMs = Math.min(Math.max(2 * s.currentMs, 2 * min), MAX_RATE_INTERVAL_MS);
      s.state = 'backing-off';
      interval = s.everOk ? s.intervalMs : min;
    } else if (outcome === 'ok') {
      s.failures = 0;
      s.lost = false;
      s.burst = false;
      if (s.rateFloorMs > 0) {
        s.rateFloorMs /= 2;
        if (s.rateFloorMs <= s.intervalMs || s.rateFloorMs < 2 * min) s.rateFloorMs = 0;
      }
      s.intervalMs = s.inconsistent ? min : this.#adapt(s, now);
      interval = s.intervalMs;
    } else if (outcome === 'void') {
      // Only replies to requests from before a disruption: ask again as soon as that is possible.
      s.dueAt = this.#earliestPoll(s);
      return;
    } else {
      s.failures++;
      if (!s.everOk) {
        // Never answered: a quick retry off the grid; its first answer puts it on the grid.
        const retry = Math.min(min, STARTUP_RETRY_MS * 2 ** (s.failures - 1));
        const dueAt = now + retry * (1 + POLL_JITTER * this.#random());
        this.#setNext(
          s,
          Math.max(retry, s.rateFloorMs),
          Math.max(dueAt, this.#earliestPoll(s)),
          started,
        );
        return;
      } else {
        if (s.lost) {
          // Still silent after the loss: retry gently, up to a few minimum intervals apart.
          s.intervalMs = Math.min(s.intervalMs * 2, min * MAX_LOST_BACKOFF);
        } else if (s.failures >= LOSS_AFTER_POLLS) {
          s.lost = true;
          s.burst = true;
          s.intervalMs = min;
        } else {
          // A missed poll: ε grows until the next sample, so ask again sooner.
          s.intervalMs = Math.max(min, s.intervalMs / 2);
        }
        interval = s.intervalMs;
      }
    }
    const nominal = Math.max(interval ?? min, s.rateFloorMs);
    this.#setNext(s, nominal, this.#gridTime(nominal, started, now, s), started);
  }

  #setNext(s: ServerRecord, nominalMs: number, dueAt: number, started: number): void {
    s.previousMs = s.currentMs;
    s.currentMs = nominalMs;
    s.previousGapMs = s.currentGapMs;
    s.currentGapMs = dueAt - started;
    s.dueAt = dueAt;
  }

  /**
   * The grid tick for a server's next poll: the first tick at least the minimum
   * interval (and any `RATE` demand) after this poll started, and not in the past,
   * rounded up to a multiple of the server's interval in ticks. On the grid that
   * is exactly `interval / pollIntervalMs` ticks on; a server that just changed its
   * interval, or polled off the grid, falls in step with the others.
   */
  #gridTime(nominalMs: number, started: number, now: number, s: ServerRecord): number {
    const period = this.#period;
    const ticks = Math.max(1, Math.ceil(nominalMs / this.pollIntervalMs - GRID_SLACK_MS));
    const earliest = Math.max(started + Math.max(this.pollIntervalMs, s.rateFloorMs), now);
    const first = Math.max(0, Math.ceil((earliest - GRID_SLACK_MS - this.#gridStart) / period));
    return this.#gridStart + Math.ceil(first / ticks) * ticks * period;
  }

  /**
   * The next adaptive interval of a server that just answered: double it while
   * the clock predicts ε stays under the target for twice as long; halve it when
   * it predicts ε passes the target within the current one.
   */
  #adapt(s: ServerRecord, now: number): number {
    const min = this.pollIntervalMs;
    const best = s.filter.best(now);
    if (best === undefined) return min;
    // The bound this server's vote gives the clock now (selection ages votes by the drift bound).
    const errorMs = agedBound(best, now, this.#maxDriftPpm * 1e-6);
    const target = this.#targetUncertaintyMs;
    const interval = s.intervalMs;
    const longer = 2 * interval;
    if (longer <= this.maxPollIntervalMs && this.#predict(errorMs, longer) <= target) return longer;
    if (interval > min && !(this.#predict(errorMs, interval) <= target)) {
      return Math.max(min, interval / 2);
    }
    return interval;
  }

  /**
   * Runs NTS-KE for an NTS server whose session needs one. Returns the session,
   * or the outcome of a failed key exchange (reported as a problem: no downgrade).
   */
  async #ntsSession(s: ServerRecord, nts: NtsState): Promise<NtsSession | Outcome> {
    if (nts.session !== undefined && !nts.session.needsKeyExchange) return nts.session;
    const signal = this.#keAbort.signal;
    try {
      const ke = await ntsKeyExchange({
        host: s.host,
        port: s.port,
        // TCP and a TLS 1.3 handshake take longer than a datagram's round trip.
        timeoutMs: Math.max(this.#timeoutMs, NTS_KE_MIN_TIMEOUT_MS),
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
      this.#problem('nts-ke', message, error);
      return 'refused';
    }
  }

  /** One exchange; never rejects. */
  async #exchange(s: ServerRecord, mono: MonotonicSource): Promise<Outcome> {
    if (s.socket === undefined) return 'failed';
    const nts = s.nts;
    if (nts === undefined) return this.#query(s, mono, s.host, s.port, undefined);
    // NTS: a key exchange when needed; after a NAK, one more key exchange and try.
    for (let attempt = 0; ; attempt++) {
      const keyed = nts.session !== undefined && !nts.session.needsKeyExchange;
      const session = await this.#ntsSession(s, nts);
      if (typeof session === 'string') return session;
      const outcome = await this.#query(
        s,
        mono,
        session.ntpHost,
        session.ntpPort,
        ntsAuthenticator(session),
      );
      if (outcome !== 'refused' || !session.needsKeyExchange || !keyed || attempt > 0) {
        return outcome;
      }
    }
  }

  /** One exchange with `host:port`, authenticated by `authenticate` if given; never rejects. */
  async #query(
    s: ServerRecord,
    mono: MonotonicSource,
    host: string,
    port: number,
    authenticate: NtpAuthenticator | undefined,
  ): Promise<Outcome> {
    const socket = s.socket;
    if (socket === undefined) return 'failed';
    try {
      const exchange = await socket.query({
        host,
        port,
        timeoutMs: this.#timeoutMs,
        monotonic: mono,
        wall: this.#wall,
        scheduler: this.#scheduler,
        version: authenticate === undefined ? this.#version : 4,
        maxDriftPpm: this.#maxDriftPpm,
        maxRootDistanceMs: this.#maxRootDistanceMs,
        // Tell the server how often we poll it (log₂ s), as RFC 5905 asks.
        poll: Math.round(Math.log2(s.currentMs / 1000)),
        ...(authenticate === undefined ? {} : { authenticate }),
      });
      s.lastExchange = exchange;
      // The request left before a disruption: the reply is no evidence of the time after it.
      if (exchange.t1 <= this.#invalidatedAt) return 'void';
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
          this.#problem(
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
        this.#problem('nts', message, error);
        return 'refused';
      }
      const message = error instanceof Error ? error.message : String(error);
      const reason = error instanceof SourceUnavailableError ? 'unavailable' : 'timeout';
      s.state = 'unreachable';
      s.lastRejection = { reason, message };
      this.#problem(reason, message, error);
      return 'failed';
    }
  }

  #select(mono: MonotonicSource, pollStart: number): void {
    const now = mono.now();
    const drift = this.#maxDriftPpm * 1e-6;
    const active = this.#servers.filter((s) => !s.stopped);
    const votes: NtpExchange[] = [];
    for (const s of active) {
      const best = s.filter.best(now);
      // A vote whose aged bound passed the limit is too stale to count.
      if (best && agedBound(best, now, drift) <= this.#maxRootDistanceMs) votes.push(best);
    }
    const candidates = votes.map((v) => ({
      id: v.server,
      monotonicAt: v.monotonicAt,
      offsetMs: v.offsetMs,
      errorMs: v.errorMs,
    }));
    // Every configured server counts towards how many may lie, answering or not.
    const f = this.#maxFalsetickers;
    const selection = selectOffset(candidates, {
      maxDriftPpm: this.#maxDriftPpm,
      configured: this.#servers.length,
      ...(f !== undefined ? { maxFalsetickers: f } : {}),
    });
    this.#selection = selection;
    for (const s of this.#servers) s.selection = undefined;
    if (!selection.ok) {
      if (selection.reason === 'no-majority') {
        this.#problem(
          'no-majority',
          (candidates.length <= selection.maxFalsetickers
            ? `${candidates.length} of ${selection.configured} servers answered, and up to ` +
              `${selection.maxFalsetickers} may be wrong: `
            : `no offset is supported by ${selection.required} of the ${candidates.length} ` +
              `answering servers (${selection.configured} configured): `) +
            selection.intervals
              .map((i) => `${i.id} ±${((i.high - i.low) / 2).toFixed(3)} ms`)
              .join(', '),
        );
      }
      return;
    }
    for (const s of this.#servers) {
      if (selection.truechimers.includes(s.name)) s.selection = 'truechimer';
      else if (selection.falsetickers.includes(s.name)) s.selection = 'falseticker';
    }
    if (selection.falsetickers.length > 0) {
      this.#problem(
        'falseticker',
        `cast out ${selection.falsetickers.join(', ')}: outside the majority's range`,
      );
    }
    // Every vote shaped the hull, so the evidence is as old as the oldest request.
    let evidenceFrom = Infinity;
    for (const v of votes) evidenceFrom = Math.min(evidenceFrom, v.t1);
    const leapSecond = majorityLeap(votes.filter((v) => selection.truechimers.includes(v.server)));
    const sample: SyncSample = {
      monotonicAt: selection.monotonicAt,
      offsetMs: selection.offsetMs,
      errorMs: selection.errorMs,
      source: this.#name,
      evidenceFrom,
      ...(leapSecond === undefined ? {} : { leapSecond }),
    };
    const fresh = votes.every((v) => v.t1 >= pollStart);
    if (!fresh && !this.#tightens(sample)) return;
    this.#delivered = sample;
    for (const subscriber of [...this.#subscribers]) {
      try {
        subscriber.onSample(sample);
      } catch (error) {
        this.#problem('listener', `a sample listener threw: ${String(error)}`, error);
      }
    }
  }

  /**
   * Whether a selection that rests partly on votes from earlier polls is worth
   * handing on. Such votes are aged at the drift bound, so when one server is
   * polled between the others' polls its selection can be far wider than the
   * sample the clock already has, grown by the clock's own model; handing it on
   * would only widen the clock's bound. It is handed on when it is no wider than
   * that prediction, when it contradicts the previous sample (the clock must hear
   * of it), or when it changes a leap announcement. A selection of votes all from
   * the current poll is always handed on.
   */
  #tightens(sample: SyncSample): boolean {
    const last = this.#delivered;
    if (last === undefined || sample.leapSecond !== last.leapSecond) return true;
    const age = Math.max(0, sample.monotonicAt - last.monotonicAt);
    const apart = Math.abs(sample.offsetMs - last.offsetMs);
    if (apart > sample.errorMs + agedBound(last, sample.monotonicAt, this.#maxDriftPpm * 1e-6)) {
      return true;
    }
    return sample.errorMs <= this.#predict(last.errorMs, age);
  }

  #inconsistent(s: ServerRecord, dropped: readonly FilterSample[], newer: FilterSample): void {
    if (this.#rebuilding) return;
    // The local clock left its bound: poll this server at the shortest interval again.
    s.inconsistent = true;
    const gap = Math.max(...dropped.map((d) => Math.abs(d.offsetMs - newer.offsetMs)));
    this.#problem(
      'inconsistent-sample',
      `a reply from ${s.name} contradicts ${dropped.length} kept exchange(s) by up to ` +
        `${gap.toFixed(3)} ms beyond the drift bound (the local clock was slewed or stepped); ` +
        'the newer evidence wins',
    );
  }

  #rejected(s: ServerRecord, error: NtpRejectedError): void {
    s.lastRejection = { reason: error.reason, message: error.message };
    this.#problem(error.reason, error.message, error);
  }

  #problem(reason: string, message: string, error?: unknown): void {
    const problem: SourceProblem = {
      source: this.#name,
      reason,
      message,
      ...(error instanceof Error ? { error } : {}),
    };
    for (const subscriber of [...this.#subscribers]) {
      try {
        subscriber.onProblem?.(problem);
      } catch {
        // A listener's bug must not stop polling.
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#wakeSleepers.delete(wake);
        this.#scheduler.clearTimeout(timer);
        resolve();
      };
      this.#wakeSleepers.add(wake);
      const timer = this.#scheduler.setTimeout(wake, ms);
    });
  }
}

/**
 * The leap second that more than half of the votes announce (leap indicator 1 or
 * 2), if any: RFC 5905 leaves the decision to a majority of the survivors.
 */
function majorityLeap(votes: readonly NtpExchange[]): LeapSecond | undefined {
  const inserts = votes.filter((v) => v.leap === 1).length;
  const deletes = votes.filter((v) => v.leap === 2).length;
  if (inserts * 2 > votes.length) return 'insert';
  if (deletes * 2 > votes.length) return 'delete';
  return undefined;
}

/** What one exchange, or one whole poll, of a server came to. */
type Outcome = 'ok' | 'failed' | 'refused' | 'rate' | 'void';

/** Which exchange outcome decides a poll's: a RATE, else an accepted reply, else the rest. */
const OUTCOME_RANK: Readonly<Record<Outcome, number>> = {
  failed: 0,
  refused: 1,
  void: 2,
  ok: 3,
  rate: 4,
};

/** An integer count of exchanges in [1, 64], or the default. */
function requireCount(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new InvalidArgumentError(name, value, 'an integer in [1, 64]');
  }
  return n;
}

function requirePositive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number > 0');
  }
  return value;
}
