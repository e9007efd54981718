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
  SourceUnavailableError,
} from '../errors.js';
import { unrefTimer } from '../_internals/timers.js';
import { requireNonNegative } from '../_internals/validate.js';
import { ClockFilter, agedBound, type FilterSample } from '../sources/exchange.js';
import { systemScheduler, systemWall } from '../sources/system.js';
import type {
  LeapSecond,
  MonotonicSource,
  ProblemListener,
  SampleListener,
  Scheduler,
  SourceProblem,
  SyncSample,
  TimeSource,
  WallSource,
} from '../sources/types.js';
import { NtpSocket, type NtpExchange } from './client.js';
import { selectOffset, type Selection } from './select.js';

/**
 * Options of {@link ntpSource}.
 *
 * @example
 * ```ts
 * const options: NtpSourceOptions = { servers: ['127.0.0.1:11123', 'time.example'], pollIntervalMs: 16_000 };
 * ```
 */
export interface NtpSourceOptions {
  /** Servers as `host`, `host:port`, `[ipv6]:port` or a bare IPv6 address; port default 123. */
  readonly servers: readonly string[];
  /** Time between polls of a server (ms); default 64000 (RFC 5905 minimum poll). */
  readonly pollIntervalMs?: number;
  /** Exchanges per server per poll; default 4. The clock filter keeps the best of the last 8. */
  readonly samplesPerPoll?: number;
  /** Pause between the exchanges of one poll (ms); default 2000, which public servers tolerate. */
  readonly sampleSpacingMs?: number;
  /** Per-exchange timeout (ms); default 1000. */
  readonly timeoutMs?: number;
  /** Bound on the local clock's drift (ppm), used to age samples; default 200, as TrueClock. */
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
  /** Current poll interval including backoff (ms); `Infinity` once stopped. */
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
  /** The configured poll interval (ms). */
  readonly pollIntervalMs: number;
  /** The longest a healthy source goes between samples (ms); see `TimeSource`. */
  readonly maxSampleGapMs: number;
  /**
   * Drops every kept exchange whose request left at or before `monotonicAt`, ignores
   * replies to requests sent before it, and polls every server at once.
   * `TrueClock` calls it on a disruption (suspend, VM pause, clock step).
   */
  invalidate(monotonicAt: number): void;
  /** A snapshot of every server's status. */
  servers(): readonly NtpServerStatus[];
  /** The latest selection across servers, if one ran. */
  lastSelection(): Selection | undefined;
}

interface ServerRecord {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly filter: ClockFilter<NtpExchange>;
  socket: NtpSocket | undefined;
  state: NtpServerState;
  reach: number;
  failures: number;
  rateBackoff: number;
  everOk: boolean;
  stopped: boolean;
  dueAt: number;
  intervalMs: number;
  lastExchange: NtpExchange | undefined;
  lastRejection: { reason: string; message: string } | undefined;
  selection: 'truechimer' | 'falseticker' | undefined;
  kissCode: string | undefined;
}

interface Subscriber {
  readonly onSample: SampleListener;
  readonly onProblem: ProblemListener | undefined;
}

/** First retries of a server that never answered come this soon (ms), doubling up to the poll interval. */
const STARTUP_RETRY_MS = 2000;
/** Poll times are spread by ±10% so clients do not synchronise their bursts. */
const POLL_JITTER = 0.1;
/** RATE kiss codes double the interval up to this factor. */
const MAX_RATE_BACKOFF = 64;
/** Timeouts of a server that answered before stretch its interval up to this factor. */
const MAX_FAILURE_BACKOFF = 4;

/**
 * Parses `host`, `host:port`, `[ipv6]:port`, `[ipv6]` or a bare IPv6 address.
 * @internal
 */
export function parseServerSpec(spec: string): { host: string; port: number } {
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
  const port = portText === undefined ? 123 : Number(portText);
  if (host === '' || /\s/.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(
      'servers',
      spec,
      'a "host" or "host:port" string with a port in [1, 65535]',
    );
  }
  return { host, port };
}

/**
 * A {@link TimeSource} that polls NTP servers over UDP. Per server it keeps the
 * last 8 accepted exchanges and uses the one with the smallest bound (clock
 * filter); across servers it delivers the offset range a majority of the
 * configured servers supports (Marzullo, see `selectOffset`), so fewer than half
 * of them may be wrong without moving the clock outside its bound.
 *
 * Polls are spread with jitter. A server that does not answer is retried every
 * 2 s (doubling up to the poll interval) until it first answers, and with up to
 * 4× the interval after that. A `RATE` kiss code doubles that server's interval
 * (up to 64×); `DENY` and `RSTR` stop using it. Problems (timeouts, refused
 * replies with their reasons, `no-majority`, `falseticker`) go to the
 * subscriber's `onProblem`. `close()` frees the sockets; it is idempotent.
 *
 * @param options - Servers, poll interval, limits.
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
  readonly maxSampleGapMs: number;
  readonly #samplesPerPoll: number;
  readonly #spacingMs: number;
  readonly #timeoutMs: number;
  readonly #maxDriftPpm: number;
  readonly #maxRootDistanceMs: number;
  readonly #maxFalsetickers: number | undefined;
  readonly #scheduler: Scheduler;
  readonly #wall: WallSource;
  readonly #version: 3 | 4;
  readonly #name: string;
  readonly #servers: ServerRecord[];
  readonly #subscribers = new Set<Subscriber>();
  #monotonic: MonotonicSource | undefined;
  #generation = 0;
  #running = false;
  #timer: unknown;
  readonly #wakeSleepers = new Set<() => void>();
  #selection: Selection | undefined;
  #closing: Promise<void> | undefined;
  /** Replies to requests sent at or before this monotonic reading are not evidence. */
  #invalidatedAt = -Infinity;
  #polling = false;
  /** An invalidation arrived while a poll ran: poll every server again when it ends. */
  #repollAll = false;

  constructor(options: NtpSourceOptions) {
    if (!Array.isArray(options?.servers) || options.servers.length === 0) {
      throw new InvalidArgumentError(
        'servers',
        options?.servers,
        'a non-empty array of "host:port" strings',
      );
    }
    this.pollIntervalMs = requirePositive('pollIntervalMs', options.pollIntervalMs ?? 64_000);
    const samples = options.samplesPerPoll ?? 4;
    if (!Number.isInteger(samples) || samples < 1 || samples > 64) {
      throw new InvalidArgumentError(
        'samplesPerPoll',
        options.samplesPerPoll,
        'an integer in [1, 64]',
      );
    }
    this.#samplesPerPoll = samples;
    this.#spacingMs = requireNonNegative('sampleSpacingMs', options.sampleSpacingMs ?? 2000);
    this.#timeoutMs = requirePositive('timeoutMs', options.timeoutMs ?? 1000);
    this.#maxDriftPpm = requireNonNegative('maxDriftPpm', options.maxDriftPpm ?? 200);
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
    const version = options.version ?? 4;
    if (version !== 3 && version !== 4)
      throw new InvalidArgumentError('version', options.version, '3 or 4');
    this.#version = version;
    this.#name = options.name ?? 'ntp';
    // A healthy server answers every poll: the gap is the jittered interval plus the
    // rounds of one poll, each up to a timeout apart.
    this.maxSampleGapMs =
      this.pollIntervalMs * (1 + POLL_JITTER) +
      (this.#samplesPerPoll - 1) * this.#spacingMs +
      this.#samplesPerPoll * this.#timeoutMs;
    const seen = new Set<string>();
    const specs: readonly string[] = options.servers;
    this.#servers = specs.map((spec) => {
      const { host, port } = parseServerSpec(spec);
      const name = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
      if (seen.has(name))
        throw new InvalidArgumentError('servers', spec, 'each server listed once');
      seen.add(name);
      return {
        host,
        port,
        name,
        // Rank kept samples by the drift the clock will age them with, so the sample
        // handed on is the one with the tightest bound from now on.
        filter: new ClockFilter<NtpExchange>({
          agingPpm: this.#maxDriftPpm,
          // A reply that contradicts a kept one aged by the drift bound proves the local
          // clock was slewed or stepped beyond it: the newer evidence wins.
          consistencyDriftPpm: this.#maxDriftPpm,
          onInconsistent: (dropped, newer) => this.#inconsistent(name, dropped, newer),
        }),
        socket: undefined,
        state: 'pending',
        reach: 0,
        failures: 0,
        rateBackoff: 1,
        everOk: false,
        stopped: false,
        dueAt: -Infinity,
        intervalMs: this.pollIntervalMs,
        lastExchange: undefined,
        lastRejection: undefined,
        selection: undefined,
        kissCode: undefined,
      } satisfies ServerRecord;
    });
    const signal = options.signal;
    if (signal?.aborted) this.#closing = Promise.resolve();
    else signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  subscribe(
    onSample: SampleListener,
    monotonic: MonotonicSource,
    onProblem?: ProblemListener,
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
    if (this.#monotonic !== undefined && this.#monotonic !== monotonic) {
      throw new InvalidArgumentError(
        'monotonic',
        monotonic,
        'the same MonotonicSource as the current subscriber (samples are stamped on one timescale)',
      );
    }
    const subscriber: Subscriber = { onSample, onProblem };
    this.#subscribers.add(subscriber);
    this.#monotonic = monotonic;
    if (!this.#running) this.#start();
    return () => {
      if (!this.#subscribers.delete(subscriber)) return;
      if (this.#subscribers.size === 0) {
        this.#stop().catch(() => undefined);
        this.#monotonic = undefined;
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
        pollIntervalMs: s.stopped ? Infinity : s.intervalMs,
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
    for (const s of this.#servers) if (!s.stopped) s.dueAt = -Infinity;
    this.#schedule(this.#generation, 0);
  }

  #start(): void {
    this.#running = true;
    const generation = ++this.#generation;
    for (const s of this.#servers) {
      s.socket = new NtpSocket({ onRejected: (e) => this.#rejected(s, e) });
      s.dueAt = -Infinity;
    }
    this.#schedule(generation, 0);
  }

  async #stop(): Promise<void> {
    this.#running = false;
    this.#generation++;
    this.#scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
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
      for (const s of this.#servers) if (!s.stopped) s.dueAt = -Infinity;
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
    const okThisPoll = new Set<ServerRecord>();
    const rateLimited = new Set<ServerRecord>();
    let live = due;
    for (let round = 0; round < this.#samplesPerPoll && live.length > 0; round++) {
      if (round > 0 && this.#spacingMs > 0) {
        await this.#sleep(this.#spacingMs);
        if (generation !== this.#generation) return;
      }
      const outcomes = await Promise.all(live.map((s) => this.#exchange(s, mono)));
      if (generation !== this.#generation) return;
      let accepted = false;
      outcomes.forEach((outcome, i) => {
        const s = live[i] as ServerRecord;
        if (outcome === 'ok') {
          accepted = true;
          okThisPoll.add(s);
        } else if (outcome === 'rate') rateLimited.add(s);
      });
      // Only servers that just answered get another exchange this poll: one that timed
      // out would hold every other server's next round back by the timeout.
      live = live.filter((_, i) => outcomes[i] === 'ok');
      if (accepted) this.#select(mono);
    }
    const now = mono.now();
    for (const s of due) {
      const ok = okThisPoll.has(s);
      s.reach = ((s.reach << 1) | (ok ? 1 : 0)) & 0xff;
      if (s.stopped) {
        s.state = 'stopped';
        s.dueAt = Infinity;
        continue;
      }
      let interval: number;
      if (rateLimited.has(s)) {
        s.rateBackoff = Math.min(Math.max(2, s.rateBackoff * 2), MAX_RATE_BACKOFF);
        s.state = 'backing-off';
        interval = this.pollIntervalMs * s.rateBackoff;
      } else if (ok) {
        s.failures = 0;
        s.rateBackoff = Math.max(1, s.rateBackoff / 2);
        interval = this.pollIntervalMs * s.rateBackoff;
      } else {
        s.failures++;
        interval = s.everOk
          ? this.pollIntervalMs * Math.min(2 ** (s.failures - 1), MAX_FAILURE_BACKOFF)
          : Math.min(this.pollIntervalMs, STARTUP_RETRY_MS * 2 ** (s.failures - 1));
        interval = Math.max(interval, this.pollIntervalMs * s.rateBackoff);
      }
      s.intervalMs = interval;
      s.dueAt = now + interval * (1 + POLL_JITTER * (2 * Math.random() - 1));
    }
  }

  /** One exchange; never rejects. */
  async #exchange(
    s: ServerRecord,
    mono: MonotonicSource,
  ): Promise<'ok' | 'failed' | 'refused' | 'rate'> {
    const socket = s.socket;
    if (socket === undefined) return 'failed';
    try {
      const exchange = await socket.query({
        host: s.host,
        port: s.port,
        timeoutMs: this.#timeoutMs,
        monotonic: mono,
        wall: this.#wall,
        scheduler: this.#scheduler,
        version: this.#version,
        maxDriftPpm: this.#maxDriftPpm,
        maxRootDistanceMs: this.#maxRootDistanceMs,
        poll: Math.round(Math.log2(this.pollIntervalMs / 1000)),
      });
      s.lastExchange = exchange;
      // The request left before a disruption: the reply is no evidence of the time after it.
      if (exchange.t1 <= this.#invalidatedAt) return 'failed';
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
      const message = error instanceof Error ? error.message : String(error);
      const reason = error instanceof SourceUnavailableError ? 'unavailable' : 'timeout';
      s.state = 'unreachable';
      s.lastRejection = { reason, message };
      this.#problem(reason, message, error);
      return 'failed';
    }
  }

  #select(mono: MonotonicSource): void {
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
    for (const subscriber of [...this.#subscribers]) {
      try {
        subscriber.onSample(sample);
      } catch (error) {
        this.#problem('listener', `a sample listener threw: ${String(error)}`, error);
      }
    }
  }

  #inconsistent(server: string, dropped: readonly FilterSample[], newer: FilterSample): void {
    const gap = Math.max(...dropped.map((d) => Math.abs(d.offsetMs - newer.offsetMs)));
    this.#problem(
      'inconsistent-sample',
      `a reply from ${server} contradicts ${dropped.length} kept exchange(s) by up to ` +
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

function requirePositive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number > 0');
  }
  return value;
}
