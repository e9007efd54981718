/**
 * A deterministic cluster simulator: several machines with their own clocks
 * (offset, drift, wall steps, process pauses) over one shared virtual true
 * time, each with a `TrueClock` fed by a simulated reference, and a network
 * that delays, loses, duplicates and reorders messages and can be partitioned.
 * Everything random comes from one seeded generator, and nothing sleeps, so a
 * run is reproducible from its seed and ten simulated minutes take milliseconds.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { mulberry32 } from '../_internals/prng.js';
import { systemScheduler } from '../clock/system.js';
import type { SampleListener, TimeSource } from '../sources/types.js';
import type { MonotonicSource, Scheduler, WallSource } from '../clock/types.js';
import { TrueClock } from '../truetime/true-clock.js';
import { VirtualTimers } from './virtual-timers.js';

/** 2026-01-01T00:00:00Z, as in `SimulatedClock`. */
const DEFAULT_START = Date.UTC(2026, 0, 1);

/**
 * One machine of a {@link ClusterSimulator}.
 *
 * @example
 * ```ts
 * const node: ClusterNodeOptions = { id: 'b', offsetMs: -40, driftPpm: 150, pauses: [{ atMs: 30_000, durationMs: 5_000 }] };
 * ```
 */
export interface ClusterNodeOptions {
  /** Unique id. */
  readonly id: string;
  /** Wall clock minus true time at the start (ms); default 0. */
  readonly offsetMs?: number;
  /** Oscillator drift (ppm): true elapsed = monotonic elapsed · (1 − drift); default 0. */
  readonly driftPpm?: number;
  /** The wall clock floors to this (ms), like `Date.now()`; default 1. */
  readonly wallResolutionMs?: number;
  /** Monotonic reading at the start; default 1000. */
  readonly monotonicMs?: number;
  /** Process pauses (ms after the start, true time). */
  readonly pauses?: readonly { readonly atMs: number; readonly durationMs: number }[];
  /** Wall-clock steps (ms after the start, true time). */
  readonly steps?: readonly { readonly atMs: number; readonly deltaMs: number }[];
  /**
   * The simulated reference (a time server) feeding the node's `TrueClock`:
   * samples every `intervalMs` with a bound of `errorMs`, actually off by a
   * random amount within it. `false`: no reference (the clock stays
   * unsynchronized). Default `{ errorMs: 1, intervalMs: 1000 }`.
   */
  readonly sync?: false | { readonly errorMs?: number; readonly intervalMs?: number };
  /** The `TrueClock`'s drift bound (ppm); default 200. Keep it ≥ |driftPpm| for honest intervals. */
  readonly maxDriftPpm?: number;
  /** The `TrueClock`'s `maxUncertaintyMs`; default 50. */
  readonly maxUncertaintyMs?: number;
}

/**
 * Nodes in different groups cannot exchange messages during `[fromMs, untilMs)`.
 * Nodes not listed form one more group together.
 *
 * @example
 * ```ts
 * const p: Partition = { fromMs: 10_000, untilMs: 20_000, groups: [['a', 'b'], ['c']] };
 * ```
 */
export interface Partition {
  /** Start (ms after the simulation start). */
  readonly fromMs: number;
  /** End (ms after the start); default: never heals. */
  readonly untilMs?: number;
  /** The sides. */
  readonly groups: readonly (readonly string[])[];
}

/**
 * The simulated network.
 *
 * @example
 * ```ts
 * const network: NetworkOptions = { delayMs: [1, 50], lossRate: 0.01, duplicateRate: 0.01 };
 * ```
 */
export interface NetworkOptions {
  /** One-way delay, uniform in `[min, max]` (ms); default `[1, 10]`. Varying delays reorder messages. */
  readonly delayMs?: readonly [number, number];
  /** Probability that a message is lost; default 0. */
  readonly lossRate?: number;
  /** Probability that a message is delivered twice (independent delays); default 0. */
  readonly duplicateRate?: number;
  /** Scheduled partitions. */
  readonly partitions?: readonly Partition[];
}

/**
 * Options of {@link ClusterSimulator}.
 *
 * @example
 * ```ts
 * const options: ClusterOptions = { seed: 42, nodes: [{ id: 'a' }, { id: 'b', offsetMs: 30 }], network: { delayMs: [2, 20] } };
 * ```
 */
export interface ClusterOptions {
  /** Seed of the pseudo-random generator: same seed, same run. */
  readonly seed: number;
  /** The machines. */
  readonly nodes: readonly ClusterNodeOptions[];
  /** The network; default: delays of 1–10 ms, no loss. */
  readonly network?: NetworkOptions;
  /** True time at the start (epoch ms); default 2026-01-01T00:00:00Z. */
  readonly startTimeMs?: number;
}

/**
 * A message in flight or delivered.
 *
 * @example
 * ```ts
 * sim.onMessage('b', (m: Message) => console.log(m.from, m.payload));
 * ```
 */
export interface Message<P = unknown> {
  /** Unique per send; a duplicate has the same id. */
  readonly id: number;
  /** Sender id. */
  readonly from: string;
  /** Receiver id. */
  readonly to: string;
  /** What was sent (not copied: do not mutate it). */
  readonly payload: P;
  /** When it was sent (ms after the start, true time). */
  readonly sentAtMs: number;
  /** 0 for the original, 1 for the duplicate. */
  readonly copy: number;
}

/**
 * Receives messages delivered to a node.
 *
 * @example
 * ```ts
 * const handler: MessageHandler<string> = (m, node) => node.send(m.from, `echo ${m.payload}`);
 * ```
 */
export type MessageHandler<P = unknown> = (message: Message<P>, node: ClusterNode) => void;

/**
 * One line of the simulator's event log. `atMs` is true time since the start.
 *
 * @example
 * ```ts
 * const sends = sim.trace.filter((e: TraceEntry) => e.kind === 'send').length;
 * ```
 */
export interface TraceEntry {
  /** When (ms after the start, true time). */
  readonly atMs: number;
  /** What happened. */
  readonly kind:
    | 'send'
    | 'deliver'
    | 'drop'
    | 'pause'
    | 'resume'
    | 'step'
    | 'drift'
    | 'partition'
    | 'heal'
    | 'note';
  /** The node concerned (for messages: the receiver for `deliver`/`drop`, the sender for `send`). */
  readonly node?: string;
  /** For messages, the other end: the receiver for `send`, the sender for `deliver`/`drop`. */
  readonly peer?: string;
  /** The message id, for message events. */
  readonly message?: number;
  /** Details: `'duplicate'`, the drop reason (`'loss'`, `'partition'`), durations, partition sides, a note's text. */
  readonly detail?: string;
}

interface QueueItem {
  readonly atMs: number;
  /** When it was originally due: events held back by a pause run in this order on resume. */
  readonly dueMs: number;
  readonly seq: number;
  readonly run: () => void;
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
  readonly #wallResolution: number;
  #baseTrue: number;
  #baseMono: number;
  #rate: number;
  #wallBase: number;
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
   * @throws {InvalidArgumentError} When a clock option is out of range.
   */
  constructor(
    sim: ClusterSimulator,
    options: ClusterNodeOptions,
    random: () => number,
    startTimeMs: number,
  ) {
    this.#sim = sim;
    this.id = options.id;
    this.#baseTrue = 0;
    this.#baseMono = options.monotonicMs ?? 1000;
    this.#monoFloor = this.#baseMono;
    this.#rate = rateFor(`nodes[${options.id}].driftPpm`, options.driftPpm ?? 0);
    this.#wallResolution = options.wallResolutionMs ?? 1;
    if (!(this.#wallResolution >= 0)) {
      throw new InvalidArgumentError('wallResolutionMs', options.wallResolutionMs, 'a number ≥ 0');
    }
    this.#wallBase = startTimeMs + (options.offsetMs ?? 0) - this.#baseMono;
    this.monotonic = { now: () => this.#mono() };
    this.wall = { now: () => this.#wallNow(), resolutionMs: this.#wallResolution };
    this.#timers = new VirtualTimers(() => this.#mono());
    const sync = options.sync ?? {};
    this.clock = new TrueClock({
      source: sync === false ? silentSource() : referenceSource(this, sync, random),
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
   * @throws {InvalidArgumentError} When `to` is not a node of the cluster.
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
   * @throws {InvalidArgumentError} When `durationMs` is negative or not finite.
   *
   * @example
   * ```ts
   * sim.at(30_000, () => sim.node('a').pause(15_000)); // DDIA Fig. 8-4
   * ```
   */
  pause(durationMs: number): void {
    const d = finiteNonNegative('durationMs', durationMs);
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
   * @throws {InvalidArgumentError} When `deltaMs` is not finite.
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
    this.#wallBase += deltaMs;
    this.#sim.log({ kind: 'step', node: this.id, detail: `${deltaMs} ms` });
  }

  /**
   * Changes the oscillator's drift from now on.
   *
   * @param driftPpm - New drift (ppm), within ±1,000,000.
   * @throws {InvalidArgumentError} When out of range.
   *
   * @example
   * ```ts
   * node.setDriftPpm(180);
   * ```
   */
  setDriftPpm(driftPpm: number): void {
    const rate = rateFor('driftPpm', driftPpm);
    this.#baseMono = this.#mono();
    this.#monoFloor = this.#baseMono;
    this.#baseTrue = this.#sim.nowMs;
    this.#rate = rate;
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
    const dueMs = this.#baseTrue + (due - this.#baseMono) / this.#rate;
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
    return Math.max(
      this.#monoFloor,
      this.#baseMono + (this.#sim.nowMs - this.#baseTrue) * this.#rate,
    );
  }

  #wallNow(): number {
    const exact = this.#mono() + this.#wallBase;
    return this.#wallResolution > 0
      ? Math.floor(exact / this.#wallResolution) * this.#wallResolution
      : exact;
  }
}

/**
 * A deterministic simulation of a small cluster in virtual time. Messages,
 * timers, pauses, steps and partitions are events on one queue ordered by true
 * time; each node's clocks are derived from true time with its own offset and
 * drift. All randomness comes from the seed.
 *
 * @example
 * ```ts
 * const sim = new ClusterSimulator({
 *   seed: 7,
 *   nodes: [{ id: 'a' }, { id: 'b', offsetMs: 25, driftPpm: 100 }],
 *   network: { delayMs: [1, 20], lossRate: 0.05 },
 * });
 * sim.onMessage('b', (m) => sim.send('b', 'a', `pong ${m.payload}`));
 * sim.at(100, () => sim.send('a', 'b', 'ping'));
 * sim.run(600_000); // ten minutes, in milliseconds of real time
 * console.log(sim.trace);
 * await sim.close();
 * ```
 */
export class ClusterSimulator {
  /** The nodes, in the order given. */
  readonly nodes: readonly ClusterNode[];
  readonly #byId = new Map<string, ClusterNode>();
  readonly #random: () => number;
  readonly #startTimeMs: number;
  readonly #delay: readonly [number, number];
  readonly #lossRate: number;
  readonly #duplicateRate: number;
  readonly #partitions: Partition[] = [];
  readonly #queue: QueueItem[] = [];
  readonly #trace: TraceEntry[] = [];
  #now = 0;
  #seq = 0;
  #messageId = 0;
  #running = false;

  /**
   * @param options - Seed, nodes and network.
   * @throws {InvalidArgumentError} When the seed is not an integer, node ids are empty or
   *   repeated, a rate is outside [0, 1], a delay range is invalid, or a partition names an
   *   unknown node.
   */
  constructor(options: ClusterOptions) {
    if (!Number.isInteger(options?.seed)) {
      throw new InvalidArgumentError('seed', options?.seed, 'an integer');
    }
    this.#random = mulberry32(options.seed);
    this.#startTimeMs = options.startTimeMs ?? DEFAULT_START;
    const network = options.network ?? {};
    const [min, max] = network.delayMs ?? [1, 10];
    if (!(min >= 0) || !(max >= min) || !Number.isFinite(max)) {
      throw new InvalidArgumentError(
        'network.delayMs',
        network.delayMs,
        'a range [min, max] with 0 ≤ min ≤ max',
      );
    }
    this.#delay = [min, max];
    this.#lossRate = probability('network.lossRate', network.lossRate ?? 0);
    this.#duplicateRate = probability('network.duplicateRate', network.duplicateRate ?? 0);
    if (!isList(options.nodes) || options.nodes.length === 0) {
      throw new InvalidArgumentError('nodes', options.nodes, 'a non-empty array of { id }');
    }
    const nodes: ClusterNode[] = [];
    for (const nodeOptions of options.nodes) {
      const id = nodeOptions?.id;
      if (typeof id !== 'string' || id.length === 0 || this.#byId.has(id)) {
        throw new InvalidArgumentError('nodes[].id', id, 'a unique non-empty string');
      }
      const node = new ClusterNode(this, nodeOptions, this.#random, this.#startTimeMs);
      this.#byId.set(id, node);
      nodes.push(node);
    }
    this.nodes = nodes;
    for (const nodeOptions of options.nodes) {
      const node = this.node(nodeOptions.id);
      for (const p of nodeOptions.pauses ?? []) this.at(p.atMs, () => node.pause(p.durationMs));
      for (const s of nodeOptions.steps ?? []) this.at(s.atMs, () => node.stepWall(s.deltaMs));
    }
    for (const p of network.partitions ?? []) this.#addPartition(p);
  }

  /**
   * Time since the start of the simulation (true ms).
   *
   * @example
   * ```ts
   * sim.nowMs; // 0 before run()
   * ```
   */
  get nowMs(): number {
    return this.#now;
  }

  /**
   * True time now (epoch ms).
   *
   * @example
   * ```ts
   * sim.trueNow() - sim.nowMs; // the start time
   * ```
   */
  trueNow(): number {
    return this.#startTimeMs + this.#now;
  }

  /**
   * The event log so far: sends, deliveries, drops, pauses, steps, partitions, notes.
   * Identical for identical seeds and inputs.
   *
   * @example
   * ```ts
   * expect(runWith(1).trace).toEqual(runWith(1).trace);
   * ```
   */
  get trace(): readonly TraceEntry[] {
    return this.#trace;
  }

  /**
   * The node with id `id`.
   *
   * @param id - A node id.
   * @returns The node.
   * @throws {InvalidArgumentError} When there is no such node.
   *
   * @example
   * ```ts
   * sim.node('a').clock.now();
   * ```
   */
  node(id: string): ClusterNode {
    const node = this.#byId.get(id);
    if (node === undefined) {
      throw new InvalidArgumentError('node', id, `one of ${[...this.#byId.keys()].join(', ')}`);
    }
    return node;
  }

  /**
   * A number in [0, 1) from the simulation's seeded generator: use it, not
   * `Math.random()`, in handlers so runs stay reproducible.
   *
   * @example
   * ```ts
   * if (sim.random() < 0.5) sim.send('a', 'b', 'maybe');
   * ```
   */
  random(): number {
    return this.#random();
  }

  /**
   * Sends a message. It is dropped if a partition separates the nodes when it is
   * sent or when it arrives, or at random with `lossRate`; otherwise delivered
   * after a random delay (and, with `duplicateRate`, delivered twice). A paused
   * sender's message leaves when it resumes.
   *
   * @param from - Sender id.
   * @param to - Receiver id.
   * @param payload - Anything (not copied).
   * @returns The message id.
   * @throws {InvalidArgumentError} When a node id is unknown.
   *
   * @example
   * ```ts
   * sim.send('a', 'b', { op: 'write', value: 1 });
   * ```
   */
  send(from: string, to: string, payload: unknown): number {
    const sender = this.node(from);
    const receiver = this.node(to);
    const id = ++this.#messageId;
    if (sender.paused) {
      this.schedule(
        sender.pausedUntilMs,
        () => this.#transmit(id, from, receiver, payload),
        this.#now,
      );
    } else {
      this.#transmit(id, from, receiver, payload);
    }
    return id;
  }

  /**
   * Adds a handler for messages delivered to `node`.
   *
   * @param node - Receiver id.
   * @param handler - Called with each message and the receiving node.
   * @returns A function that removes it.
   * @throws {InvalidArgumentError} When the node id is unknown.
   *
   * @example
   * ```ts
   * sim.onMessage('b', (m, b) => b.send(m.from, 'ack'));
   * ```
   */
  onMessage<P = unknown>(node: string, handler: MessageHandler<P>): () => void {
    return this.node(node).onMessage(handler);
  }

  /**
   * Runs `action` at `atMs` (ms after the start, true time), or at once if that has passed.
   *
   * @param atMs - When.
   * @param action - What (e.g. a client request, a pause, a crash).
   * @throws {InvalidArgumentError} When `atMs` is not a number.
   *
   * @example
   * ```ts
   * sim.at(5_000, () => sim.node('a').pause(20_000));
   * ```
   */
  at(atMs: number, action: () => void): void {
    if (typeof atMs !== 'number' || Number.isNaN(atMs)) {
      throw new InvalidArgumentError('atMs', atMs, 'a number of ms after the start');
    }
    this.schedule(Math.max(atMs, this.#now), action);
  }

  /**
   * Partitions the network now, for `durationMs` (default: until {@link ClusterSimulator.heal}).
   *
   * @param groups - The sides; nodes not listed form one more side together.
   * @param durationMs - How long.
   * @throws {InvalidArgumentError} When a node id is unknown.
   *
   * @example
   * ```ts
   * sim.partition([['a']], 10_000); // a is cut off for 10 s
   * ```
   */
  partition(groups: readonly (readonly string[])[], durationMs?: number): void {
    this.#addPartition({
      fromMs: this.#now,
      ...(durationMs === undefined
        ? {}
        : { untilMs: this.#now + finiteNonNegative('durationMs', durationMs) }),
      groups,
    });
  }

  /**
   * Ends every partition now.
   *
   * @example
   * ```ts
   * sim.heal();
   * ```
   */
  heal(): void {
    for (let i = 0; i < this.#partitions.length; i++) {
      const p = this.#partitions[i] as Partition;
      if (p.fromMs <= this.#now && (p.untilMs ?? Infinity) > this.#now) {
        this.#partitions[i] = { ...p, untilMs: this.#now };
      }
    }
    this.log({ kind: 'heal' });
  }

  /**
   * Adds a free-text line to the trace (at the current time).
   *
   * @param text - What to record.
   * @param node - The node concerned, if any.
   *
   * @example
   * ```ts
   * sim.note('lease granted to b, token 34', 'b');
   * ```
   */
  note(text: string, node?: string): void {
    this.log(
      node === undefined ? { kind: 'note', detail: text } : { kind: 'note', node, detail: text },
    );
  }

  /**
   * Runs the simulation until `untilMs` (ms after the start, true time):
   * every message, timer and action due by then, in time order.
   *
   * @param untilMs - Where to stop.
   * @throws {InvalidArgumentError} When `untilMs` is not a finite number.
   * @throws {Error} When called from inside a running simulation.
   *
   * @example
   * ```ts
   * sim.run(60_000);
   * ```
   */
  run(untilMs: number): void {
    this.#enter(untilMs);
    try {
      while (this.#step(untilMs));
      this.#now = Math.max(this.#now, untilMs);
    } finally {
      this.#running = false;
    }
  }

  /**
   * Like {@link ClusterSimulator.run}, but lets promise continuations run after
   * every event, for handlers that await (e.g. `clock.commitWait`).
   *
   * @param untilMs - Where to stop.
   * @returns Resolves when simulated time reaches `untilMs`.
   * @throws {InvalidArgumentError} When `untilMs` is not a finite number.
   * @throws {Error} When called from inside a running simulation.
   *
   * @example
   * ```ts
   * await sim.runAsync(10_000);
   * ```
   */
  async runAsync(untilMs: number): Promise<void> {
    this.#enter(untilMs);
    try {
      await flush();
      while (this.#step(untilMs)) await flush();
      this.#now = Math.max(this.#now, untilMs);
      await flush();
    } finally {
      this.#running = false;
    }
  }

  /**
   * Closes every node's `TrueClock`.
   *
   * @example
   * ```ts
   * await sim.close();
   * ```
   */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.clock.close()));
  }

  /**
   * Queues `run` at `atMs` (ms after the start); `dueMs` orders events that a
   * pause made fall due together.
   * @internal
   */
  schedule(atMs: number, run: () => void, dueMs: number = atMs): void {
    const item: QueueItem = { atMs, dueMs, seq: this.#seq++, run };
    // Binary search for the insertion point: by time, then original due time, then insertion order.
    let lo = 0;
    let hi = this.#queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.#queue[mid] as QueueItem, item)) lo = mid + 1;
      else hi = mid;
    }
    this.#queue.splice(lo, 0, item);
  }

  /** Appends to the trace at the current time. @internal */
  log(entry: Omit<TraceEntry, 'atMs'>): void {
    this.#trace.push({ atMs: this.#now, ...entry });
  }

  #enter(untilMs: number): void {
    if (typeof untilMs !== 'number' || !Number.isFinite(untilMs)) {
      throw new InvalidArgumentError('untilMs', untilMs, 'a finite number of ms after the start');
    }
    if (this.#running) throw new Error('ClusterSimulator.run() is already running');
    this.#running = true;
  }

  /** Runs the earliest event due by `untilMs`; false when there is none. */
  #step(untilMs: number): boolean {
    const head = this.#queue[0];
    let nextAt = head?.atMs ?? Infinity;
    let nextDue = head?.dueMs ?? Infinity;
    let timerNode: ClusterNode | undefined;
    for (const node of this.nodes) {
      const timer = node.nextTimer();
      // On a full tie the queue wins: its events were decided before the timers they race.
      if (timer && (timer.atMs < nextAt || (timer.atMs === nextAt && timer.dueMs < nextDue))) {
        nextAt = timer.atMs;
        nextDue = timer.dueMs;
        timerNode = node;
      }
    }
    if (nextAt > untilMs) return false;
    this.#now = Math.max(this.#now, nextAt);
    if (timerNode !== undefined) timerNode.runNextTimer();
    else (this.#queue.shift() as QueueItem).run();
    return true;
  }

  #transmit(id: number, from: string, receiver: ClusterNode, payload: unknown): void {
    const to = receiver.id;
    this.log({ kind: 'send', node: from, peer: to, message: id });
    if (this.#separated(from, to)) {
      this.log({ kind: 'drop', node: to, peer: from, message: id, detail: 'partition' });
      return;
    }
    if (this.#random() < this.#lossRate) {
      this.log({ kind: 'drop', node: to, peer: from, message: id, detail: 'loss' });
      return;
    }
    const copies = this.#random() < this.#duplicateRate ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      const [min, max] = this.#delay;
      const arrival = this.#now + min + this.#random() * (max - min);
      const message: Message = { id, from, to, payload, sentAtMs: this.#now, copy };
      this.schedule(arrival, () => {
        if (this.#separated(from, to)) {
          this.log({ kind: 'drop', node: to, peer: from, message: id, detail: 'partition' });
        } else {
          receiver.deliver(message);
        }
      });
    }
  }

  #separated(a: string, b: string): boolean {
    if (a === b) return false;
    for (const p of this.#partitions) {
      if (p.fromMs > this.#now || (p.untilMs ?? Infinity) <= this.#now) continue;
      const side = (id: string): number => p.groups.findIndex((g) => g.includes(id));
      if (side(a) !== side(b)) return true;
    }
    return false;
  }

  #addPartition(p: Partition): void {
    if (typeof p?.fromMs !== 'number' || !isList(p.groups)) {
      throw new InvalidArgumentError('partition', p, '{ fromMs, untilMs?, groups: string[][] }');
    }
    for (const group of p.groups) for (const id of group) this.node(id);
    this.#partitions.push(p);
    const sides = p.groups.map((g) => `[${g.join(',')}]`).join(' | ');
    this.at(p.fromMs, () => this.log({ kind: 'partition', detail: sides }));
    if (p.untilMs !== undefined) {
      const until = p.untilMs;
      this.at(until, () => {
        // heal() may already have ended it.
        if (this.#partitions.some((q) => q.groups === p.groups && q.untilMs === until)) {
          this.log({ kind: 'heal', detail: sides });
        }
      });
    }
  }
}

function before(a: QueueItem, b: QueueItem): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.dueMs !== b.dueMs) return a.dueMs < b.dueMs;
  return a.seq < b.seq;
}

/** A reference time server: truthful samples within `errorMs`, every `intervalMs` of node time. */
function referenceSource(
  node: ClusterNode,
  sync: { readonly errorMs?: number; readonly intervalMs?: number },
  random: () => number,
): TimeSource {
  const errorMs = finiteNonNegative('sync.errorMs', sync.errorMs ?? 1);
  const intervalMs = sync.intervalMs ?? 1000;
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
    throw new InvalidArgumentError('sync.intervalMs', intervalMs, 'a finite number of ms > 0');
  }
  const handles = new Set<unknown>();
  return {
    pollIntervalMs: intervalMs,
    subscribe(onSample: SampleListener, monotonic: MonotonicSource) {
      let stopped = false;
      let handle: unknown;
      const tick = (): void => {
        if (stopped) return;
        const mono = monotonic.now();
        const actualError = (random() * 2 - 1) * errorMs;
        onSample({
          monotonicAt: mono,
          offsetMs: node.trueNow() + actualError - mono,
          errorMs,
          source: `reference(${node.id})`,
        });
        handles.delete(handle);
        handle = node.setTimeout(tick, intervalMs);
        handles.add(handle);
      };
      handle = node.setTimeout(tick, 0);
      handles.add(handle);
      return () => {
        stopped = true;
        node.clearTimeout(handle);
        handles.delete(handle);
      };
    },
    close() {
      for (const h of handles) node.clearTimeout(h);
      handles.clear();
      return Promise.resolve();
    },
  };
}

function silentSource(): TimeSource {
  return { subscribe: () => () => undefined, close: () => Promise.resolve() };
}

function rateFor(name: string, driftPpm: number): number {
  if (typeof driftPpm !== 'number' || !(Math.abs(driftPpm) < 1e6)) {
    throw new InvalidArgumentError(name, driftPpm, 'a number within ±1,000,000 ppm');
  }
  return 1 / (1 - driftPpm * 1e-6);
}

function probability(name: string, p: number): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new InvalidArgumentError(name, p, 'a probability in [0, 1]');
  }
  return p;
}

function finiteNonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(name, value, 'a finite number ≥ 0');
  }
  return value;
}

/** Lets pending promise continuations (and their follow-ups) run. */
function flush(): Promise<void> {
  const immediate = systemScheduler.setImmediate;
  if (immediate) return new Promise((resolve) => immediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** `Array.isArray` without its narrowing to `any[]` (inputs are checked because callers may be untyped). */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}
