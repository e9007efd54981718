/**
 * One machine of the cluster simulator: its clocks (one oscillator, as in
 * `SimulatedClock`), its timers in its own monotonic time, its `TrueClock` fed
 * by a simulated reference, and its end of the network.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative } from '../_internals/validate.js';
import type { MonotonicSource, Scheduler, WallSource } from '../clock/types.js';
import type { TimeSource } from '../sources/types.js';
import { TrueClock } from '../truetime/true-clock.js';
import type { ClusterSimulator } from './cluster.js';
import type { Message, MessageHandler } from './cluster-network.js';
import { manualSource, truthfulSample } from './manual-source.js';
import { Oscillator, SIMULATION_START_MONOTONIC_MS } from './oscillator.js';
import { VirtualTimers } from './virtual-timers.js';

/**
 * One machine of a {@link ClusterSimulator}.
 *
 * @example
 * ```ts
 * const sim = new ClusterSimulator({
 *   seed: 1,
 *   nodes: [{ id: 'a' }, { id: 'b', offsetMs: -40, driftPpm: 150, pauses: [{ atMs: 30_000, durationMs: 5_000 }] }],
 * });
 * sim.run(40_000);
 * sim.node('b').wall.now() - sim.trueNow(); //=> -34 (−40 ms, gaining 150 ppm of 40 s)
 * sim.trace.filter((e) => e.node === 'b').map((e) => e.kind); //=> ['pause', 'resume']
 * ```
 */
export interface ClusterNodeOptions {
  /** Unique id. */
  readonly id: string;
  /**
   * Wall clock minus true time at the start (ms).
   *
   * @defaultValue `0`
   */
  readonly offsetMs?: number;
  /**
   * Oscillator drift (ppm): true elapsed = monotonic elapsed · (1 − drift).
   *
   * @defaultValue `0`
   */
  readonly driftPpm?: number;
  /**
   * The wall clock floors to this (ms), like `Date.now()`.
   *
   * @defaultValue `1`
   */
  readonly wallResolutionMs?: number;
  /**
   * Monotonic reading at the start.
   *
   * @defaultValue `1000`
   */
  readonly monotonicMs?: number;
  /** Process pauses (ms after the start, true time). */
  readonly pauses?: readonly { readonly atMs: number; readonly durationMs: number }[];
  /** Wall-clock steps (ms after the start, true time). */
  readonly steps?: readonly { readonly atMs: number; readonly deltaMs: number }[];
  /**
   * The simulated reference (a time server) feeding the node's `TrueClock`: samples every
   * `intervalMs` with a bound of `errorMs`, actually off by a random amount within it. `false`: no
   * reference (the clock stays unsynchronized).
   *
   * @defaultValue `{ errorMs: 1, intervalMs: 1000 }`
   */
  readonly sync?: false | { readonly errorMs?: number; readonly intervalMs?: number };
  /**
   * The `TrueClock`'s drift bound (ppm). Keep it ≥ |driftPpm| for honest intervals.
   *
   * @defaultValue `200`, `TrueClock`'s default
   */
  readonly maxDriftPpm?: number;
  /**
   * The `TrueClock`'s `maxUncertaintyMs`.
   *
   * @defaultValue `50`, `TrueClock`'s default
   */
  readonly maxUncertaintyMs?: number;
}

/**
 * One simulated machine: its clocks, its timers (it is a `Scheduler` in its own
 * monotonic time), its `TrueClock`, and its network endpoint. Get it with
 * {@link ClusterSimulator.node}.
 *
 * @example
 * ```ts
 * const a = sim.node('a');
 * const hlc = new HybridLogicalClock({ node: a.id, physical: () => a.wall.now() });
 * a.setTimeout(() => a.send('b', hlc.now()), 100);
 * ```
 */
export class ClusterNode implements Scheduler {
  /** The node's id. */
  readonly id: string;
  /** Its monotonic clock (drifts, keeps counting through pauses). */
  readonly monotonic: MonotonicSource;
  /** Its wall clock (offset, drift, steps; floored to its resolution). */
  readonly wall: WallSource;
  /** Its honest clock, fed by the simulated reference. */
  readonly clock: TrueClock;
  readonly #sim: ClusterSimulator;
  readonly #timers: VirtualTimers;
  readonly #handlers = new Set<MessageHandler>();
  /** Anchored at simulation time 0 (ms after the start), re-anchored when the drift changes. */
  readonly #oscillator: Oscillator;
  /** Timer due times already reached: keeps readings ≥ a fired timer's due time despite rounding. */
  #monoFloor: number;
  #pausedUntil = -Infinity;

  /**
   * Created by {@link ClusterSimulator}; get nodes with `sim.node(id)` rather than constructing them.
   *
   * @param sim - The simulator it belongs to.
   * @param options - Its clocks and reference.
   * @param random - The simulator's seeded generator.
   * @param startTimeMs - True time at the start (epoch ms).
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a clock option is out of range.
   */
  constructor(
    sim: ClusterSimulator,
    options: ClusterNodeOptions,
    random: () => number,
    startTimeMs: number,
  ) {
    this.#sim = sim;
    this.id = options.id;
    const monotonicMs = options.monotonicMs ?? SIMULATION_START_MONOTONIC_MS;
    this.#oscillator = new Oscillator({
      trueTimeMs: 0,
      monotonicMs,
      wallMs: startTimeMs + (options.offsetMs ?? 0),
      driftPpm: options.driftPpm ?? 0,
      driftName: `nodes[${options.id}].driftPpm`,
      wallResolutionMs: options.wallResolutionMs,
    });
    this.#monoFloor = monotonicMs;
    this.monotonic = { now: () => this.#mono() };
    this.wall = {
      now: () => this.#oscillator.wallAt(this.#mono()),
      resolutionMs: this.#oscillator.wallResolutionMs,
    };
    this.#timers = new VirtualTimers(() => this.#mono());
    const sync = options.sync ?? {};
    this.clock = new TrueClock({
      source: sync === false ? manualSource() : referenceSource(this, sync, random),
      ...(options.maxDriftPpm === undefined ? {} : { maxDriftPpm: options.maxDriftPpm }),
      ...(options.maxUncertaintyMs === undefined
        ? {}
        : { maxUncertaintyMs: options.maxUncertaintyMs }),
      monotonic: this.monotonic,
      wall: this.wall,
      scheduler: this,
    });
  }

  /**
   * True time now (epoch ms): what the node's honest interval must contain.
   *
   * @example
   * ```ts
   * expect(node.clock.now().latest).toBeGreaterThanOrEqual(node.trueNow());
   * ```
   */
  trueNow(): number {
    return this.#sim.trueNow();
  }

  /**
   * Whether the node's process is stopped right now.
   *
   * @example
   * ```ts
   * if (!node.paused) node.send('b', 'hi');
   * ```
   */
  get paused(): boolean {
    return this.#pausedUntil > this.#sim.nowMs;
  }

  /**
   * Sends `payload` to `to` over the simulated network.
   *
   * @param to - Receiver id.
   * @param payload - Anything (not copied).
   * @returns The message id.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `to` is not a node of the cluster.
   *
   * @example
   * ```ts
   * node.send('b', { kind: 'ping', t1: node.clock.now().estimate });
   * ```
   */
  send(to: string, payload: unknown): number {
    return this.#sim.send(this.id, to, payload);
  }

  /**
   * Adds a handler for messages delivered to this node.
   *
   * @param handler - Called with each message (and this node).
   * @returns A function that removes it.
   *
   * @example
   * ```ts
   * node.onMessage((m) => inbox.push(m.payload));
   * ```
   */
  onMessage<P = unknown>(handler: MessageHandler<P>): () => void {
    const h = handler as MessageHandler;
    this.#handlers.add(h);
    return () => this.#handlers.delete(h);
  }

  /**
   * Stops the process for `durationMs` of true time from now: its clocks keep
   * running, its timers and incoming messages wait until it resumes.
   *
   * @param durationMs - How long (ms, ≥ 0).
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `durationMs` is negative or not finite.
   *
   * @example
   * ```ts
   * sim.at(30_000, () => sim.node('a').pause(15_000)); // DDIA Fig. 8-4
   * ```
   */
  pause(durationMs: number): void {
    const d = requireNonNegative('durationMs', durationMs);
    const now = this.#sim.nowMs;
    const until = Math.max(this.#pausedUntil, now + d);
    this.#pausedUntil = until;
    this.#sim.log({ kind: 'pause', node: this.id, detail: `${d} ms` });
    this.#sim.schedule(until, () => {
      if (this.#pausedUntil === until) this.#sim.log({ kind: 'resume', node: this.id });
    });
  }

  /**
   * Steps the wall clock by `deltaMs` (either sign).
   *
   * @param deltaMs - The step (ms).
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `deltaMs` is not finite.
   *
   * @example
   * ```ts
   * node.stepWall(-1000); // NTP stepped the clock back a second
   * ```
   */
  stepWall(deltaMs: number): void {
    if (typeof deltaMs !== 'number' || !Number.isFinite(deltaMs)) {
      throw new InvalidArgumentError('deltaMs', deltaMs, 'a finite number of ms');
    }
    this.#oscillator.stepWall(deltaMs);
    this.#sim.log({ kind: 'step', node: this.id, detail: `${deltaMs} ms` });
  }

  /**
   * Changes the oscillator's drift from now on.
   *
   * @param driftPpm - New drift (ppm), within ±1,000,000.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When out of range.
   *
   * @example
   * ```ts
   * node.setDriftPpm(180);
   * ```
   */
  setDriftPpm(driftPpm: number): void {
    const mono = this.#mono();
    this.#oscillator.retune('driftPpm', driftPpm, this.#sim.nowMs, mono);
    this.#monoFloor = mono;
    this.#sim.log({ kind: 'drift', node: this.id, detail: `${driftPpm} ppm` });
  }

  /**
   * Schedules `callback` when this node's monotonic clock has advanced `ms`
   * (and its process is running).
   *
   * @example
   * ```ts
   * node.setTimeout(() => node.send('b', 'tick'), 1000);
   * ```
   */
  setTimeout(callback: () => void, ms: number): unknown {
    return this.#timers.setTimeout(callback, ms);
  }

  /**
   * Cancels a timer.
   *
   * @example
   * ```ts
   * node.clearTimeout(node.setTimeout(() => {}, 10));
   * ```
   */
  clearTimeout(handle: unknown): void {
    this.#timers.clearTimeout(handle);
  }

  /**
   * When (ms after the start) the next timer may run and when it was due, or
   * undefined without timers.
   * @internal
   */
  nextTimer(): { readonly atMs: number; readonly dueMs: number } | undefined {
    const due = this.#timers.nextDue();
    if (due === undefined) return undefined;
    const now = this.#sim.nowMs;
    const dueMs = this.#oscillator.trueTimeAt(due);
    return {
      atMs:
        due <= this.#mono()
          ? Math.max(now, this.#pausedUntil)
          : Math.max(dueMs, this.#pausedUntil, now),
      dueMs,
    };
  }

  /** Runs the next timer (the simulator has moved time to it). @internal */
  runNextTimer(): void {
    const due = this.#timers.nextDue();
    if (due === undefined) return;
    this.#monoFloor = Math.max(this.#monoFloor, due);
    this.#timers.runNextDue(due);
  }

  /** Delivers a message now, or when the process resumes. @internal */
  deliver(message: Message, arrivedAtMs: number = this.#sim.nowMs): void {
    if (this.paused) {
      this.#sim.schedule(this.#pausedUntil, () => this.deliver(message, arrivedAtMs), arrivedAtMs);
      return;
    }
    this.#sim.log(
      message.copy
        ? {
            kind: 'deliver',
            node: this.id,
            peer: message.from,
            message: message.id,
            detail: 'duplicate',
          }
        : { kind: 'deliver', node: this.id, peer: message.from, message: message.id },
    );
    for (const handler of [...this.#handlers]) handler(message, this);
  }

  /** When the current pause ends (ms after the start), or -Infinity. @internal */
  get pausedUntilMs(): number {
    return this.#pausedUntil;
  }

  #mono(): number {
    return Math.max(this.#monoFloor, this.#oscillator.monotonicAt(this.#sim.nowMs));
  }
}

/**
 * A reference time server: a manual source that the node's own timer feeds a
 * truthful sample within `errorMs` every `intervalMs` of node time, while anyone
 * subscribes.
 */
function referenceSource(
  node: ClusterNode,
  sync: { readonly errorMs?: number; readonly intervalMs?: number },
  random: () => number,
): TimeSource {
  const errorMs = requireNonNegative('sync.errorMs', sync.errorMs ?? 1);
  const intervalMs = sync.intervalMs ?? 1000;
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
    throw new InvalidArgumentError('sync.intervalMs', intervalMs, 'a finite number of ms > 0');
  }
  const samples = manualSource(intervalMs);
  const name = `reference(${node.id})`;
  let subscribers = 0;
  let timer: unknown;
  const tick = (): void => {
    samples.push(truthfulSample(node, errorMs, random() * 2 - 1, name));
    timer = node.setTimeout(tick, intervalMs);
  };
  const stop = (): void => {
    if (timer !== undefined) node.clearTimeout(timer);
    timer = undefined;
  };
  return {
    pollIntervalMs: intervalMs,
    subscribe(onSample, monotonic, onProblem) {
      const unsubscribe = samples.subscribe(onSample, monotonic, onProblem);
      subscribers++;
      timer ??= node.setTimeout(tick, 0);
      let subscribed = true;
      return () => {
        unsubscribe();
        if (subscribed && --subscribers === 0) stop();
        subscribed = false;
      };
    },
    close() {
      stop();
      subscribers = 0;
      return samples.close();
    },
  };
}
