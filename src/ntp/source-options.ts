/**
 * The options of `ntpSource`, their validation and defaults, the per-server
 * status it reports, and the parsing of server entries.
 *
 * @module
 */
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative, requirePositive } from '../_internals/validate.js';
import type { Scheduler, WallSource } from '../clock/types.js';
import type { TimeSource } from '../sources/types.js';
import type { NtpExchange } from './reply-validation.js';
import { NTS_KE_PORT } from './nts/ke.js';
import type { NtsSession } from './nts/session.js';
import type { Selection } from './select.js';
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
  /**
   * UDP port, or with `nts` the NTS-KE TCP port.
   *
   * @defaultValue `123`, or `4460` with `nts`
   */
  readonly port?: number;
  /** Use NTS: `true` trusts the system CA store; `{ ca }` trusts only that CA (PEM). */
  readonly nts?: true | { readonly ca?: string | Uint8Array };
}

/**
 * Options of {@link ntpSource}.
 *
 * @example
 * ```ts
 * const source = ntpSource({
 *   servers: ['0.pool.ntp.org', '1.pool.ntp.org', '2.pool.ntp.org'],
 *   targetUncertaintyMs: 20, // poll less once the clock can keep ε under 20 ms anyway
 * });
 * source.pollIntervalMs;    //=> 64000 (the default shortest interval)
 * source.maxPollIntervalMs; //=> 1024000
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
   * The shortest poll interval of a server (ms), once it has answered. The default is 2⁶ s, RFC
   * 5905's minimum poll exponent and the NTP pool's floor.
   *
   * @defaultValue `64_000`
   */
  readonly pollIntervalMs?: number;
  /**
   * The longest poll interval (ms) the adaptive policy lengthens to. Equal to `pollIntervalMs`: a
   * fixed interval. Only a `RATE` kiss code stretches an interval beyond it. The default is 2¹⁰ s,
   * RFC 5905's default maximum poll exponent.
   *
   * @defaultValue `1_024_000`, or `pollIntervalMs` if that is longer
   */
  readonly maxPollIntervalMs?: number;
  /**
   * The ε (ms) the clock should average between polls (the mean commit-wait a write pays is about
   * twice it): a server's interval doubles (up to `maxPollIntervalMs`) while the clock predicts
   * that, over twice the interval, ε averages under it and ends under twice it, and halves when the
   * current interval fails either test; so ε rises above the target late in a long interval, but
   * not past twice it (see docs/ntp.md, "Polling"). A target the servers cannot reach (their own
   * bound λ is above it) keeps the interval at `pollIntervalMs`; 0 never lengthens it, `Infinity`
   * always does.
   *
   * @defaultValue `1`
   */
  readonly targetUncertaintyMs?: number;
  /**
   * Exchanges per server in a burst: at start, after a server was lost (it had answered, then
   * missed 3 polls in a row) and after `invalidate()`. They are `sampleSpacingMs` apart (like
   * ntpd's and chronyd's `iburst`). 1: no burst. A burst is never shorter than `samplesPerPoll`.
   *
   * @defaultValue `4`
   */
  readonly initialBurst?: number;
  /**
   * Exchanges per server in every other poll; the default is what public servers ask. The clock
   * filter keeps the best of the last 8.
   *
   * @defaultValue `1`
   */
  readonly samplesPerPoll?: number;
  /**
   * Pause between the exchanges of a burst or poll (ms); the default is what public servers
   * tolerate.
   *
   * @defaultValue `2000`
   */
  readonly sampleSpacingMs?: number;
  /**
   * Per-exchange timeout (ms).
   *
   * @defaultValue `1000`
   */
  readonly timeoutMs?: number;
  /**
   * Bound on the local clock's drift (ppm), used to age and rank samples and to predict ε without a
   * clock's model.
   *
   * @defaultValue the subscribing clock's (`SourceContext.maxDriftPpm`, which `TrueClock` hands
   *   over), else `200`
   */
  readonly maxDriftPpm?: number;
  /**
   * Refuse replies (and forget samples) whose bound exceeds this (ms).
   *
   * @defaultValue `1000`
   */
  readonly maxRootDistanceMs?: number;
  /**
   * f, the most falsetickers among the configured servers. Of the servers that answer, all but f
   * must overlap; with f or fewer answering, nothing is delivered (see `selectOffset`).
   *
   * @defaultValue ⌊(servers − 1)/2⌋
   */
  readonly maxFalsetickers?: number;
  /** Closes the source when aborted. */
  readonly signal?: AbortSignal;
  /**
   * Timers for polling and timeouts.
   *
   * @defaultValue the platform's (`systemScheduler`)
   */
  readonly scheduler?: Scheduler;
  /**
   * Wall clock, only for the NTP era pivot and `systemOffsetMs`.
   *
   * @defaultValue `Date.now()` (`systemWall`)
   */
  readonly wall?: WallSource;
  /**
   * How datagrams travel and names resolve. Inject `createSimulatedNtpNetwork(sim)` from
   * `chronobound/testing` to run in virtual time.
   *
   * @defaultValue UDP, {@link udpTransport} (`node:dgram`, `node:dns`)
   */
  readonly transport?: DatagramTransport;
  /**
   * Uniform random numbers in [0, 1) for the poll jitter. The same generator (with the same clock
   * and network) gives the same schedule. Request nonces do not use it: they stay cryptographically
   * random.
   *
   * @defaultValue `Math.random`
   */
  readonly random?: () => number;
  /**
   * NTP version to send.
   *
   * @defaultValue `4`
   */
  readonly version?: 3 | 4;
  /**
   * The `source` name on samples and problems.
   *
   * @defaultValue `'ntp'`
   */
  readonly name?: string;
}

/**
 * Where a server stands after its latest poll.
 *
 * @example
 * ```ts
 * ntpSource({ servers: ['127.0.0.1:11123'] }).servers()[0]?.state; //=> 'pending' (before its first poll)
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
 * const source = ntpSource({ servers: ['127.0.0.1:11123'] });
 * source.servers();
 * //=> [{ server: '127.0.0.1:11123', state: 'pending', reach: 0, consecutiveFailures: 0, pollIntervalMs: 64000 }]
 * ```
 */
export interface NtpSource extends TimeSource, AsyncDisposable {
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
  /**
   * Waits for the end of the first round: the first poll after the source
   * started (its initial burst) has ended for every configured server — it
   * answered its `initialBurst` exchanges, or stopped answering (an exchange
   * timed out: a silent server costs one `timeoutMs`, not a hang), or refused
   * (a rejected reply, a `DENY` or `RSTR` kiss code, a failed NTS key
   * exchange). Resolves with the selection the round came to, as
   * `lastSelection()` then returns it; with `{ ok: false, reason: 'no-candidates' }`
   * when no server gave an accepted reply. `servers()` then shows what each server
   * came to. For a one-shot reading (`chronobound now`) rather than a clock kept
   * in sync.
   *
   * The source polls only while it has a subscriber: subscribe (or hand it to a
   * `TrueClock`) for the round to run. Once the round has ended, every call
   * resolves at once with the same selection; later polls do not change it.
   * The round keeps a Node process alive while it runs (its exchanges and the
   * waits between them), so `await source.firstRound()` in a script returns.
   *
   * @returns The selection at the end of the first round.
   * @throws {@link chronobound!SourceUnavailableError | SourceUnavailableError} (rejects) When the source is closed, or its
   *   `signal` aborts, before the first round ended.
   *
   * @example
   * ```ts
   * const source = ntpSource({ servers: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], initialBurst: 2 });
   * const stop = source.subscribe(() => undefined, systemMonotonic);
   * const selection = await source.firstRound(); // after the burst: 2 exchanges 2 s apart per server
   * if (selection.ok) console.log(selection.offsetMs, selection.errorMs, selection.falsetickers); // e.g. 12.3 0.9 []
   * else console.log(selection.reason); // 'no-candidates' (none answered) or 'no-majority'
   * stop();
   * await source.close();
   * ```
   */
  firstRound(): Promise<Selection>;
  /** Same as `close()`, for `await using source = ntpSource(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The NTS state of a server given with `nts`.
 * @internal
 */
export interface NtsState {
  readonly ca: string | Uint8Array | undefined;
  /** Keys and cookies; undefined until the first key exchange succeeds. */
  session: NtsSession | undefined;
}

/** First retries of a server that never answered come this soon (ms), doubling up to the poll interval. */
export const STARTUP_RETRY_MS: number = 2000;
/**
 * Each start of a source draws its poll period at random from [1, 1 + this] ×
 * `pollIntervalMs`, so clients started together drift apart, and no interval
 * falls below what the policy (or a server's `RATE`) allows.
 */
export const POLL_JITTER: number = 0.1;
/** Slack when comparing grid times (ms): a float's rounding, not a real difference. */
export const GRID_SLACK_MS: number = 1e-6;
/** RATE kiss codes stretch an interval up to 2¹⁷ s, RFC 5905's MAXPOLL (36.4 h). */
export const MAX_RATE_INTERVAL_MS: number = 2 ** 17 * 1000;
/** A server that answered and then missed this many polls in a row is lost: burst again. */
export const LOSS_AFTER_POLLS: number = 3;
/** A lost server that keeps missing polls is retried up to this many minimum intervals apart. */
export const MAX_LOST_BACKOFF: number = 4;
/** RFC 5905's default maximum poll, 2¹⁰ s. */
export const DEFAULT_MAX_POLL_MS: number = 1_024_000;
/** Default `targetUncertaintyMs`. */
export const DEFAULT_TARGET_UNCERTAINTY_MS: number = 1;
/** The drift bound without an option and without a clock's context (ppm). */
export const DEFAULT_DRIFT_PPM: number = 200;
/** The least a monotonic clock without a stated resolution must move to be past a reading (ms). */
export const MIN_STEP_MS: number = 0.001;

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
export const NTS_KE_MIN_TIMEOUT_MS: number = 5000;

/**
 * Validates one entry of `servers`: a string, or `{ host, port?, nts? }`.
 * @internal
 */
export function parseServerEntry(spec: string | NtpServerSpec): {
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

/** An integer count of exchanges in [1, 64], or the default. */
function requireCount(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new InvalidArgumentError(name, value, 'an integer in [1, 64]');
  }
  return n;
}

/**
 * The validated options of `ntpSource`, with their defaults.
 * @internal
 */
export interface ResolvedNtpOptions {
  readonly pollIntervalMs: number;
  readonly maxPollIntervalMs: number;
  readonly targetUncertaintyMs: number;
  readonly initialBurst: number;
  readonly samplesPerPoll: number;
  readonly spacingMs: number;
  readonly timeoutMs: number;
  /** The `maxDriftPpm` option, if given: it overrides the clock's. */
  readonly driftOption: number | undefined;
  readonly maxRootDistanceMs: number;
  readonly maxFalsetickers: number | undefined;
  readonly scheduler: Scheduler | undefined;
  readonly wall: WallSource | undefined;
  readonly transport: DatagramTransport | undefined;
  readonly random: () => number;
  readonly version: 3 | 4;
  readonly name: string;
  /** Every server once, parsed: host and port, its `host:port` name, its NTS state. */
  readonly servers: readonly {
    readonly host: string;
    readonly port: number;
    readonly name: string;
    readonly nts: NtsState | undefined;
  }[];
}

/**
 * Validates `ntpSource`'s options and fills in the defaults.
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} Naming the first invalid option.
 * @internal
 */
export function resolveNtpOptions(options: NtpSourceOptions): ResolvedNtpOptions {
  if (!Array.isArray(options?.servers) || options.servers.length === 0) {
    throw new InvalidArgumentError(
      'servers',
      options?.servers,
      'a non-empty array of "host:port" strings or { host, port?, nts? } objects',
    );
  }
  const pollIntervalMs = requirePositive('pollIntervalMs', options.pollIntervalMs ?? 64_000);
  const maxPollIntervalMs =
    options.maxPollIntervalMs === undefined
      ? Math.max(DEFAULT_MAX_POLL_MS, pollIntervalMs)
      : requirePositive('maxPollIntervalMs', options.maxPollIntervalMs);
  if (maxPollIntervalMs < pollIntervalMs) {
    throw new InvalidArgumentError(
      'maxPollIntervalMs',
      options.maxPollIntervalMs,
      `a finite number ≥ pollIntervalMs (${pollIntervalMs})`,
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
  const samplesPerPoll = requireCount('samplesPerPoll', options.samplesPerPoll, 1);
  const initialBurst = Math.max(
    requireCount('initialBurst', options.initialBurst, 4),
    samplesPerPoll,
  );
  const spacingMs = requireNonNegative('sampleSpacingMs', options.sampleSpacingMs ?? 2000);
  const timeoutMs = requirePositive('timeoutMs', options.timeoutMs ?? 1000);
  const driftOption =
    options.maxDriftPpm === undefined
      ? undefined
      : requireNonNegative('maxDriftPpm', options.maxDriftPpm);
  const maxRootDistanceMs = requirePositive('maxRootDistanceMs', options.maxRootDistanceMs ?? 1000);
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
  if (options.transport !== undefined && typeof options.transport?.open !== 'function') {
    throw new InvalidArgumentError(
      'transport',
      options.transport,
      'a DatagramTransport with open()',
    );
  }
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new InvalidArgumentError('random', options.random, 'a function returning [0, 1)');
  }
  const version = options.version ?? 4;
  if (version !== 3 && version !== 4) {
    throw new InvalidArgumentError('version', options.version, '3 or 4');
  }
  const seen = new Set<string>();
  const specs: readonly (string | NtpServerSpec)[] = options.servers;
  const servers = specs.map((spec) => {
    const { host, port, nts } = parseServerEntry(spec);
    const name = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
    if (seen.has(name)) throw new InvalidArgumentError('servers', spec, 'each server listed once');
    seen.add(name);
    return { host, port, name, nts };
  });
  return {
    pollIntervalMs,
    maxPollIntervalMs,
    targetUncertaintyMs: target,
    initialBurst,
    samplesPerPoll,
    spacingMs,
    timeoutMs,
    driftOption,
    maxRootDistanceMs,
    maxFalsetickers: options.maxFalsetickers,
    scheduler: options.scheduler,
    wall: options.wall,
    transport: options.transport,
    random: options.random ?? Math.random,
    version,
    name: options.name ?? 'ntp',
    servers,
  };
}
