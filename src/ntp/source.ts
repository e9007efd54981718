/**
 * `ntpSource`: a TimeSource that polls NTP servers, keeps a clock filter per
 * server, selects the offset a majority supports and feeds it to a TrueClock.
 * Its options are in ./source-options.ts, one server's exchange in
 * ./source-server.ts, and the poll round and its policy in ./source-round.ts.
 *
 * @module
 */
import { InvalidArgumentError, SourceUnavailableError } from '../errors.js';
import { agedBound } from '../sources/exchange.js';
import { ClockFilter, type FilterSample } from '../sources/clock-filter.js';
import { startPoller, type Poller } from '../sources/poller.js';
import { systemScheduler, systemWall } from '../clock/system.js';
import { sleepOn } from '../clock/sleep.js';
import type {
  AgeableSample,
  AgedSample,
  ProblemListener,
  SampleListener,
  SourceContext,
  SourceProblem,
  SourceProblemReason,
} from '../sources/types.js';
import type { MonotonicSource, Scheduler, SyncSample, WallSource } from '../clock/types.js';
import { NtpSocket } from './ntp-socket.js';
import type { NtpExchange } from './reply-validation.js';
import type { NtpRejectedError } from '../errors.js';
import type { Selection } from './select.js';
import type { DatagramTransport } from './transport.js';
import {
  DEFAULT_DRIFT_PPM,
  MIN_STEP_MS,
  POLL_JITTER,
  resolveNtpOptions,
  type NtpServerStatus,
  type NtpSource,
  type NtpSourceOptions,
} from './source-options.js';
import {
  exchangeWith,
  serverStatus,
  type ExchangeEnv,
  type ServerRecord,
} from './source-server.js';
import { ageVote, predictWith, selectVotes } from './source-select.js';
import { pollRound, type RoundEnv } from './source-round.js';
import { FirstRound } from './source-first-round.js';

export {
  type NtpServerSpec,
  type NtpServerState,
  type NtpServerStatus,
  type NtpSource,
  type NtpSourceOptions,
} from './source-options.js';

interface Subscriber {
  readonly onSample: SampleListener;
  readonly onProblem: ProblemListener | undefined;
  readonly context: SourceContext | undefined;
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
 * `maxPollIntervalMs` (1024 s): it doubles while the clock predicts that ε,
 * averaged over the next interval, stays under `targetUncertaintyMs`, and
 * shortens when it will not,
 * on a missed poll, on loss and on an `'inconsistent-sample'`. A `RATE` kiss code
 * at least doubles that server's interval; `DENY` and `RSTR` stop using it.
 * Problems (timeouts, refused replies with their reasons, `no-majority`,
 * `falseticker`) go to the subscriber's `onProblem`. `close()` frees the sockets;
 * it is idempotent, and `await using` calls it.
 *
 * @param options - Servers, polling policy, limits, and the injectable transport, timers and randomness.
 * @returns The source; hand it to `new TrueClock({ source })`.
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a server string or an option is invalid.
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
  #running = false;
  #poller: Poller | undefined;
  /**
   * The poll grid: every poll of a server that answers falls on a tick
   * `#gridStart + k·#period`, and one with an interval of 2ⁿ minimum intervals on
   * a multiple of 2ⁿ, so servers with equal or nested intervals are asked together
   * and the selection combines fresh votes, not one fresh vote and stale ones.
   */
  #gridStart = 0;
  #period: number;
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
  readonly #firstRound: FirstRound;
  /** The timer that starts the first poll after a start. */
  #kick: unknown;

  constructor(options: NtpSourceOptions) {
    const o = resolveNtpOptions(options);
    this.pollIntervalMs = o.pollIntervalMs;
    this.maxPollIntervalMs = o.maxPollIntervalMs;
    this.#targetUncertaintyMs = o.targetUncertaintyMs;
    this.#samplesPerPoll = o.samplesPerPoll;
    this.#initialBurst = o.initialBurst;
    this.#spacingMs = o.spacingMs;
    this.#timeoutMs = o.timeoutMs;
    this.#driftOption = o.driftOption;
    this.#maxDriftPpm = o.driftOption ?? DEFAULT_DRIFT_PPM;
    this.#maxRootDistanceMs = o.maxRootDistanceMs;
    this.#maxFalsetickers = o.maxFalsetickers;
    this.#scheduler = o.scheduler ?? systemScheduler;
    this.#wall = o.wall ?? systemWall;
    this.#transport = o.transport;
    this.#random = o.random;
    this.#period = this.pollIntervalMs;
    this.#version = o.version;
    this.#name = o.name;
    this.#servers = o.servers.map(({ host, port, name, nts }) => {
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
    this.#firstRound = new FirstRound(this.#name, this.#servers, this.#maxFalsetickers);
    const signal = options.signal;
    if (signal?.aborted) {
      this.#closing = Promise.resolve();
      this.#firstRound.close();
    } else signal?.addEventListener('abort', () => void this.close(), { once: true });
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

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#firstRound.close();
      this.#subscribers.clear();
      await this.#stop();
      this.#monotonic = undefined;
    })();
    return this.#closing;
  }

  servers(): readonly NtpServerStatus[] {
    const now = this.#monotonic?.now();
    return this.#servers.map((s) => serverStatus(s, now));
  }

  lastSelection(): Selection | undefined {
    return this.#selection;
  }

  firstRound(): Promise<Selection> {
    return this.#firstRound.wait();
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
    this.#poller?.pollAfter(0);
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
      // Rank kept samples as the clock will age them (its learned frequency, else the
      // drift bound), so the vote handed on is the one with the tightest bound from now on.
      agingPpm: this.#maxDriftPpm,
      rank: (sample, at) => this.#age(sample, at).errorMs,
      // A reply that contradicts a kept one aged by the drift bound proves the local
      // clock was slewed or stepped beyond it: the newer evidence wins.
      consistencyDriftPpm: this.#maxDriftPpm,
      onInconsistent: (dropped, newer) => this.#inconsistent(s, dropped, newer),
    });
  }

  #predict(errorMs: number, elapsedMs: number): number {
    return predictWith(this.#context(), this.#maxDriftPpm, errorMs, elapsedMs);
  }

  #age(sample: AgeableSample, at: number): AgedSample {
    const context = this.#driftOption === undefined ? this.#context() : undefined;
    return ageVote(context, this.#maxDriftPpm, sample, at);
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
    // Idle waits between polls do not keep a process alive; exchanges do (their sockets are ref'd).
    const exchange: ExchangeEnv = {
      timeoutMs: this.#timeoutMs,
      wall: this.#wall,
      scheduler: this.#scheduler,
      version: this.#version,
      maxDriftPpm: () => this.#maxDriftPpm,
      maxRootDistanceMs: this.#maxRootDistanceMs,
      invalidatedAt: () => this.#invalidatedAt,
      keSignal: this.#keAbort.signal,
      problem: (reason, message, error) => this.#problem(reason, message, error),
    };
    const round: RoundEnv = {
      pollIntervalMs: this.pollIntervalMs,
      maxPollIntervalMs: this.maxPollIntervalMs,
      targetUncertaintyMs: this.#targetUncertaintyMs,
      initialBurst: this.#initialBurst,
      samplesPerPoll: this.#samplesPerPoll,
      spacingMs: this.#spacingMs,
      random: this.#random,
      period: this.#period,
      gridStart: this.#gridStart,
      exchange: (s, mono) => exchangeWith(s, mono, exchange),
      select: (mono, pollStart) => this.#select(mono, pollStart),
      sleep: (ms, signal) => sleepOn(this.#scheduler, ms, signal),
      earliestPoll: (s) => this.#earliestPoll(s),
      age: (sample, at) => this.#age(sample, at),
      predict: (errorMs, elapsedMs) => this.#predict(errorMs, elapsedMs),
    };
    this.#poller = startPoller<void>({
      scheduler: this.#scheduler,
      poll: (signal) => this.#tick(signal, round),
      nextDelayMs: () => this.#nextPollDelay(),
      onError: (error) => this.#problem('internal', `polling failed: ${String(error)}`, error),
      errorDelayMs: this.pollIntervalMs,
      initialDelayMs: Infinity,
    });
    // The first poll is work, not an idle wait: its timer keeps a process alive, as the
    // exchanges and the waits within a poll do, so `await firstRound()` ends in a script.
    this.#kick = this.#scheduler.setTimeout(() => this.#poller?.pollNow(), 0);
  }

  async #stop(): Promise<void> {
    this.#running = false;
    this.#scheduler.clearTimeout(this.#kick);
    this.#poller?.stop();
    this.#poller = undefined;
    this.#keAbort.abort(new Error('the source is closing'));
    const sockets = this.#servers.map((s) => s.socket).filter((x) => x !== undefined);
    for (const s of this.#servers) s.socket = undefined;
    await Promise.all(sockets.map((socket) => socket.close()));
  }

  /** One turn of the poller: poll the servers that are due. */
  async #tick(signal: AbortSignal, round: RoundEnv): Promise<void> {
    const mono = this.#monotonic;
    if (signal.aborted || mono === undefined) return;
    const now = mono.now();
    const due = this.#servers.filter((s) => !s.stopped && s.dueAt <= now);
    if (due.length > 0) {
      this.#polling = true;
      try {
        await pollRound(due, mono, signal, round);
      } finally {
        this.#polling = false;
      }
    }
    if (signal.aborted) return;
    this.#firstRound.polled(due, this.#selection);
    if (this.#repollAll) {
      this.#repollAll = false;
      this.#burstAll();
    }
    if (this.#servers.every((s) => s.stopped)) {
      this.#problem(
        'no-servers',
        'every server asked this client to stop (kiss-of-death DENY/RSTR)',
      );
    }
  }

  /** Until the next server is due (ms); `Infinity` once every server stopped. */
  #nextPollDelay(): number {
    const mono = this.#monotonic;
    const active = this.#servers.filter((s) => !s.stopped);
    if (mono === undefined || active.length === 0) return Infinity;
    return Math.min(...active.map((s) => s.dueAt)) - mono.now();
  }

  #select(mono: MonotonicSource, pollStart: number): void {
    const { selection, sample, fresh } = selectVotes(mono.now(), pollStart, {
      name: this.#name,
      servers: this.#servers,
      maxRootDistanceMs: this.#maxRootDistanceMs,
      maxDriftPpm: this.#maxDriftPpm,
      maxFalsetickers: this.#maxFalsetickers,
      age: (v, at) => this.#age(v, at),
      problem: (reason, message) => this.#problem(reason, message),
    });
    this.#selection = selection;
    if (sample === undefined || (!fresh && !this.#tightens(sample))) return;
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
   * handing on. Such votes may be aged at the drift bound, so when one server is
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

  #problem(reason: SourceProblemReason, message: string, error?: unknown): void {
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
}
