/**
 * A deterministic cluster simulator: several machines with their own clocks
 * (offset, drift, wall steps, process pauses) over one shared virtual true
 * time, each with a `TrueClock` fed by a simulated reference, and a network
 * that delays, loses, duplicates and reorders messages and can be partitioned.
 * Everything random comes from one seeded generator, and nothing sleeps, so a
 * run is reproducible from its seed and ten simulated minutes take milliseconds.
 * The machines are in `cluster-node.ts`, the network in `cluster-network.ts`;
 * this file holds the event queue that orders them.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { mulberry32 } from '../_internals/prng.js';
import { ClusterNode } from './cluster-node.js';
import type { ClusterNodeOptions } from './cluster-node.js';
import { ClusterNetwork, isList } from './cluster-network.js';
import type { MessageHandler, NetworkOptions } from './cluster-network.js';
import { SIMULATION_START_MS } from './oscillator.js';
import { flushContinuations } from './virtual-timers.js';

/**
 * Options of {@link ClusterSimulator}.
 *
 * @example
 * ```ts
 * const sim = new ClusterSimulator({ seed: 42, nodes: [{ id: 'a' }, { id: 'b', offsetMs: 30 }], network: { delayMs: [2, 20] } });
 * sim.run(1000);
 * sim.node('b').wall.now() - sim.trueNow(); //=> 30
 * sim.node('b').clock.now().status;          //=> 'synchronized' (fed by its simulated reference)
 * ```
 */
export interface ClusterOptions {
  /** Seed of the pseudo-random generator: same seed, same run. */
  readonly seed: number;
  /** The machines. */
  readonly nodes: readonly ClusterNodeOptions[];
  /**
   * The network.
   *
   * @defaultValue delays of 1–10 ms, no loss, no partition
   */
  readonly network?: NetworkOptions;
  /**
   * True time at the start (epoch ms).
   *
   * @defaultValue `Date.UTC(2026, 0, 1)` (2026-01-01T00:00:00Z)
   */
  readonly startTimeMs?: number;
}

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
  readonly #network: ClusterNetwork;
  readonly #queue: QueueItem[] = [];
  readonly #trace: TraceEntry[] = [];
  #now = 0;
  #seq = 0;
  #running = false;

  /**
   * @param options - Seed, nodes and network.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the seed is not an integer, node ids are empty or
   *   repeated, a rate is outside [0, 1], a delay range is invalid, or a partition names an
   *   unknown node.
   */
  constructor(options: ClusterOptions) {
    if (!Number.isInteger(options?.seed)) {
      throw new InvalidArgumentError('seed', options?.seed, 'an integer');
    }
    this.#random = mulberry32(options.seed);
    this.#startTimeMs = options.startTimeMs ?? SIMULATION_START_MS;
    const network = options.network ?? {};
    this.#network = new ClusterNetwork(this, network);
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
    for (const p of network.partitions ?? []) this.#network.addPartition(p);
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When there is no such node.
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a node id is unknown.
   *
   * @example
   * ```ts
   * sim.send('a', 'b', { op: 'write', value: 1 });
   * ```
   */
  send(from: string, to: string, payload: unknown): number {
    return this.#network.send(from, to, payload);
  }

  /**
   * Adds a handler for messages delivered to `node`.
   *
   * @param node - Receiver id.
   * @param handler - Called with each message and the receiving node.
   * @returns A function that removes it.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When the node id is unknown.
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `atMs` is not a number.
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a node id is unknown.
   *
   * @example
   * ```ts
   * sim.partition([['a']], 10_000); // a is cut off for 10 s
   * ```
   */
  partition(groups: readonly (readonly string[])[], durationMs?: number): void {
    this.#network.partition(groups, durationMs);
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
    this.#network.heal();
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `untilMs` is not a finite number.
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When called from inside a running simulation.
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
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When `untilMs` is not a finite number.
   * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When called from inside a running simulation.
   *
   * @example
   * ```ts
   * await sim.runAsync(10_000);
   * ```
   */
  async runAsync(untilMs: number): Promise<void> {
    this.#enter(untilMs);
    try {
      await flushContinuations();
      while (this.#step(untilMs)) await flushContinuations();
      this.#now = Math.max(this.#now, untilMs);
      await flushContinuations();
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
}

function before(a: QueueItem, b: QueueItem): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.dueMs !== b.dueMs) return a.dueMs < b.dueMs;
  return a.seq < b.seq;
}
