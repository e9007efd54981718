/**
 * The cluster simulator's network: one-way delays, loss, duplication and
 * partitions, every random choice from the simulator's seeded generator.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { requireNonNegative, requireNumber } from '../_internals/validate.js';
import type { ClusterSimulator } from './cluster.js';
import type { ClusterNode } from './cluster-node.js';

/**
 * Nodes in different groups cannot exchange messages during `[fromMs, untilMs)`.
 * Nodes not listed form one more group together.
 *
 * @example
 * ```ts
 * const sim = new ClusterSimulator({
 *   seed: 1,
 *   nodes: [{ id: 'a' }, { id: 'b' }, { id: 'c' }],
 *   network: { partitions: [{ fromMs: 10_000, untilMs: 20_000, groups: [['a', 'b'], ['c']] }] },
 * });
 * sim.at(15_000, () => sim.send('a', 'c', 'during'));
 * sim.at(25_000, () => sim.send('a', 'c', 'after'));
 * sim.run(30_000);
 * sim.trace.filter((e) => e.kind === 'drop' || e.kind === 'deliver').map((e) => [e.kind, e.detail]);
 * //=> [['drop', 'partition'], ['deliver', undefined]]
 * ```
 */
export interface Partition {
  /** Start (ms after the simulation start). */
  readonly fromMs: number;
  /**
   * End (ms after the start).
   *
   * @defaultValue never: the partition does not heal
   */
  readonly untilMs?: number;
  /** The sides. */
  readonly groups: readonly (readonly string[])[];
}

/**
 * The simulated network.
 *
 * @example
 * ```ts
 * const sim = new ClusterSimulator({
 *   seed: 3,
 *   nodes: [{ id: 'a' }, { id: 'b' }],
 *   network: { delayMs: [1, 50], lossRate: 0.01, duplicateRate: 0.01 },
 * });
 * for (let i = 0; i < 1000; i++) sim.at(i * 10, () => sim.send('a', 'b', i));
 * sim.run(20_000);
 * sim.trace.filter((e) => e.kind === 'drop').length;         //=> 10 (lost)
 * sim.trace.filter((e) => e.detail === 'duplicate').length;  //=> 11 (delivered twice)
 * ```
 */
export interface NetworkOptions {
  /**
   * One-way delay, uniform in `[min, max]` (ms). Varying delays reorder messages.
   *
   * @defaultValue `[1, 10]`
   */
  readonly delayMs?: readonly [number, number];
  /**
   * Probability that a message is lost.
   *
   * @defaultValue `0`
   */
  readonly lossRate?: number;
  /**
   * Probability that a message is delivered twice (independent delays).
   *
   * @defaultValue `0`
   */
  readonly duplicateRate?: number;
  /** Scheduled partitions. */
  readonly partitions?: readonly Partition[];
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
 * sim.onMessage<string>('b', (m, node) => node.send(m.from, `echo ${m.payload}`));
 * sim.at(0, () => sim.send('a', 'b', 'hi'));
 * sim.run(1000); // a receives 'echo hi' one round trip later
 * ```
 */
export type MessageHandler<P = unknown> = (message: Message<P>, node: ClusterNode) => void;

/**
 * What the network needs of its simulator: the clock, the generator, the nodes,
 * the event queue and the trace.
 * @internal
 */
export type NetworkHost = Pick<
  ClusterSimulator,
  'nowMs' | 'random' | 'node' | 'at' | 'schedule' | 'log'
>;

/**
 * Carries messages between the nodes of a `ClusterSimulator`.
 * @internal
 */
export class ClusterNetwork {
  readonly #host: NetworkHost;
  readonly #delay: readonly [number, number];
  readonly #lossRate: number;
  readonly #duplicateRate: number;
  readonly #partitions: Partition[] = [];
  #messageId = 0;

  /**
   * Checks the options; partitions are added with {@link ClusterNetwork.addPartition}
   * once the nodes exist.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When a rate is outside [0, 1] or the delay range is invalid.
   */
  constructor(host: NetworkHost, network: NetworkOptions) {
    this.#host = host;
    const [min, max] = network.delayMs ?? [1, 10];
    if (!(min >= 0) || !(max >= min) || !Number.isFinite(max)) {
      throw new InvalidArgumentError(
        'network.delayMs',
        network.delayMs,
        'a range [min, max] with 0 ≤ min ≤ max',
      );
    }
    this.#delay = [min, max];
    this.#lossRate = requireNumber('network.lossRate', network.lossRate ?? 0, 0, 1);
    this.#duplicateRate = requireNumber('network.duplicateRate', network.duplicateRate ?? 0, 0, 1);
  }

  /** See `ClusterSimulator.send`. */
  send(from: string, to: string, payload: unknown): number {
    const sender = this.#host.node(from);
    const receiver = this.#host.node(to);
    const id = ++this.#messageId;
    const now = this.#host.nowMs;
    if (sender.paused) {
      this.#host.schedule(
        sender.pausedUntilMs,
        () => this.#transmit(id, from, receiver, payload),
        now,
      );
    } else {
      this.#transmit(id, from, receiver, payload);
    }
    return id;
  }

  /** See `ClusterSimulator.partition`. */
  partition(groups: readonly (readonly string[])[], durationMs?: number): void {
    const now = this.#host.nowMs;
    this.addPartition({
      fromMs: now,
      ...(durationMs === undefined
        ? {}
        : { untilMs: now + requireNonNegative('durationMs', durationMs) }),
      groups,
    });
  }

  /** See `ClusterSimulator.heal`. */
  heal(): void {
    const now = this.#host.nowMs;
    for (let i = 0; i < this.#partitions.length; i++) {
      const p = this.#partitions[i] as Partition;
      if (p.fromMs <= now && (p.untilMs ?? Infinity) > now) {
        this.#partitions[i] = { ...p, untilMs: now };
      }
    }
    this.#host.log({ kind: 'heal' });
  }

  /**
   * Adds a scheduled partition, logging when it starts and heals.
   * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError} When it is malformed or names an unknown node.
   */
  addPartition(p: Partition): void {
    if (typeof p?.fromMs !== 'number' || !isList(p.groups)) {
      throw new InvalidArgumentError('partition', p, '{ fromMs, untilMs?, groups: string[][] }');
    }
    for (const group of p.groups) for (const id of group) this.#host.node(id);
    this.#partitions.push(p);
    const sides = p.groups.map((g) => `[${g.join(',')}]`).join(' | ');
    this.#host.at(p.fromMs, () => this.#host.log({ kind: 'partition', detail: sides }));
    if (p.untilMs !== undefined) {
      const until = p.untilMs;
      this.#host.at(until, () => {
        // heal() may already have ended it.
        if (this.#partitions.some((q) => q.groups === p.groups && q.untilMs === until)) {
          this.#host.log({ kind: 'heal', detail: sides });
        }
      });
    }
  }

  #transmit(id: number, from: string, receiver: ClusterNode, payload: unknown): void {
    const host = this.#host;
    const to = receiver.id;
    host.log({ kind: 'send', node: from, peer: to, message: id });
    if (this.#separated(from, to)) {
      host.log({ kind: 'drop', node: to, peer: from, message: id, detail: 'partition' });
      return;
    }
    if (host.random() < this.#lossRate) {
      host.log({ kind: 'drop', node: to, peer: from, message: id, detail: 'loss' });
      return;
    }
    const copies = host.random() < this.#duplicateRate ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      const [min, max] = this.#delay;
      const now = host.nowMs;
      const arrival = now + min + host.random() * (max - min);
      const message: Message = { id, from, to, payload, sentAtMs: now, copy };
      host.schedule(arrival, () => {
        if (this.#separated(from, to)) {
          host.log({ kind: 'drop', node: to, peer: from, message: id, detail: 'partition' });
        } else {
          receiver.deliver(message);
        }
      });
    }
  }

  #separated(a: string, b: string): boolean {
    if (a === b) return false;
    const now = this.#host.nowMs;
    for (const p of this.#partitions) {
      if (p.fromMs > now || (p.untilMs ?? Infinity) <= now) continue;
      const side = (id: string): number => p.groups.findIndex((g) => g.includes(id));
      if (side(a) !== side(b)) return true;
    }
    return false;
  }
}

/**
 * `Array.isArray` without its narrowing to `any[]` (inputs are checked because callers may be untyped).
 * @internal
 */
export function isList(value: unknown): boolean {
  return Array.isArray(value);
}
