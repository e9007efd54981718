/**
 * fast-check arbitraries for logical timestamps and for whole message-passing
 * executions ("causal histories") with realistic physical clocks. The history
 * types and their happened-before relation are in `../history.ts` (no fast-check).
 *
 * @module
 */
import fc from 'fast-check';
import { InvalidArgumentError } from '../../errors.js';
import { HLC_MAX_COUNTER, HLC_MAX_WALL_MS } from '../../logical/hlc-range.js';
import type { HlcTimestamp } from '../../logical/hlc.js';
import type { LamportTimestamp } from '../../logical/lamport.js';
import { MAX_NODE_ID_LENGTH, validateNodeId } from '../../logical/node-id.js';
import { VectorClock } from '../../logical/vector.js';
import type { CausalHistory, HistoryEvent, HistoryEventKind } from '../history.js';

/** Characters allowed in node ids: printable ASCII minus the separators. */
const NODE_CHARS: string[] = (() => {
  const chars: string[] = [];
  for (let c = 0x21; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    if (ch !== '@' && ch !== ',' && ch !== '=') chars.push(ch);
  }
  // Letters first so that shrinking lands on readable ids.
  return chars.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
})();

function rank(ch: string): number {
  return /[a-z]/.test(ch) ? 0 : /[0-9A-Z]/.test(ch) ? 1 : 2;
}

/**
 * Options of {@link nodeId}.
 *
 * @example
 * ```ts
 * fc.sample(nodeId({ maxLength: 8 }), { seed: 42, numRuns: 3 }); //=> ['ve3', 'Grb', 'b']
 * ```
 */
export interface NodeIdArbitraryOptions {
  /**
   * Longest id generated (1–64).
   *
   * @defaultValue `64`
   */
  readonly maxLength?: number;
}

/**
 * Valid node ids: 1–64 printable ASCII characters without `@`, `,` or `=`.
 * Shrinks towards `'a'`.
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   if `maxLength` is not an integer in [1, 64].
 * @example
 * ```ts
 * fc.assert(fc.property(nodeId(), (id) => isValidNodeId(id)));
 * ```
 */
export function nodeId(options: NodeIdArbitraryOptions = {}): fc.Arbitrary<string> {
  const maxLength = integerOption('maxLength', options.maxLength, MAX_NODE_ID_LENGTH, 1);
  if (maxLength > MAX_NODE_ID_LENGTH)
    throw new InvalidArgumentError('maxLength', maxLength, `at most ${MAX_NODE_ID_LENGTH}`);
  return fc.string({ unit: fc.constantFrom(...NODE_CHARS), minLength: 1, maxLength });
}

/**
 * Options of {@link hlcTimestamp}.
 *
 * @example
 * ```ts
 * fc.sample(hlcTimestamp({ minWallMs: 0, maxWallMs: 10, maxCounter: 3, nodes: ['a', 'b'] }), { seed: 42, numRuns: 3 });
 * //=> [{ wallMs: 7, counter: 2, node: 'a' }, { wallMs: 8, counter: 3, node: 'a' }, { wallMs: 6, counter: 1, node: 'b' }]
 * ```
 */
export interface HlcTimestampArbitraryOptions {
  /**
   * Smallest `wallMs`.
   *
   * @defaultValue `0`
   */
  readonly minWallMs?: number;
  /**
   * Largest `wallMs`.
   *
   * @defaultValue `2 ** 48 - 1` (`HLC_MAX_WALL_MS`)
   */
  readonly maxWallMs?: number;
  /**
   * Largest counter.
   *
   * @defaultValue `65535` (`HLC_MAX_COUNTER`)
   */
  readonly maxCounter?: number;
  /**
   * Node ids to pick from. Small ranges and few nodes produce ties.
   *
   * @defaultValue any valid id (`nodeId()`)
   */
  readonly nodes?: readonly string[];
}

/**
 * Valid hybrid logical timestamps.
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   naming the option that is out of range.
 * @example
 * ```ts
 * fc.assert(fc.property(hlcTimestamp(), (ts) => compareHlc(parseHlc(formatHlc(ts)), ts) === 0));
 * ```
 */
export function hlcTimestamp(
  options: HlcTimestampArbitraryOptions = {},
): fc.Arbitrary<HlcTimestamp> {
  const minWallMs = integerOption('minWallMs', options.minWallMs, 0, 0, HLC_MAX_WALL_MS);
  const maxWallMs = integerOption(
    'maxWallMs',
    options.maxWallMs,
    HLC_MAX_WALL_MS,
    minWallMs,
    HLC_MAX_WALL_MS,
  );
  const maxCounter = integerOption(
    'maxCounter',
    options.maxCounter,
    HLC_MAX_COUNTER,
    0,
    HLC_MAX_COUNTER,
  );
  return fc.record({
    wallMs: fc.integer({ min: minWallMs, max: maxWallMs }),
    counter: fc.integer({ min: 0, max: maxCounter }),
    node: nodesArbitrary(options.nodes),
  });
}

/**
 * Options of {@link lamportTimestamp}.
 *
 * @example
 * ```ts
 * fc.sample(lamportTimestamp({ maxCounter: 10, nodes: ['a', 'b'] }), { seed: 42, numRuns: 3 });
 * //=> [{ counter: 7, node: 'b' }, { counter: 8, node: 'a' }, { counter: 6, node: 'a' }]
 * ```
 */
export interface LamportTimestampArbitraryOptions {
  /**
   * Largest counter.
   *
   * @defaultValue `2 ** 53 - 1` (`Number.MAX_SAFE_INTEGER`)
   */
  readonly maxCounter?: number;
  /**
   * Node ids to pick from.
   *
   * @defaultValue any valid id (`nodeId()`)
   */
  readonly nodes?: readonly string[];
}

/**
 * Valid Lamport timestamps.
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   naming the option that is out of range.
 * @example
 * ```ts
 * fc.assert(fc.property(lamportTimestamp(), (ts) => parseLamport(formatLamport(ts)).counter === ts.counter));
 * ```
 */
export function lamportTimestamp(
  options: LamportTimestampArbitraryOptions = {},
): fc.Arbitrary<LamportTimestamp> {
  const maxCounter = integerOption(
    'maxCounter',
    options.maxCounter,
    Number.MAX_SAFE_INTEGER,
    0,
    Number.MAX_SAFE_INTEGER,
  );
  return fc.record({
    counter: fc.integer({ min: 0, max: maxCounter }),
    node: nodesArbitrary(options.nodes),
  });
}

/**
 * Options of {@link vectorClock}.
 *
 * @example
 * ```ts
 * fc.sample(vectorClock({ nodes: ['a', 'b', 'c'], maxCounter: 5 }), { seed: 42, numRuns: 3 }).map((v) => v.encode());
 * //=> ['a=4,b=1,c=2', 'a=2,c=1', 'b=5,c=5']
 * ```
 */
export interface VectorClockArbitraryOptions {
  /**
   * The nodes that may have entries.
   *
   * @defaultValue `['a', 'b', 'c', 'd']`
   */
  readonly nodes?: readonly string[];
  /**
   * Largest counter. Small values produce more ordered pairs.
   *
   * @defaultValue `1000`
   */
  readonly maxCounter?: number;
}

/**
 * Vector clocks over a fixed set of nodes (absent entries are 0).
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   naming the option that is out of range.
 * @example
 * ```ts
 * fc.assert(fc.property(vectorClock(), vectorClock(), (a, b) => a.merge(b).compare(a) !== 'before'));
 * ```
 */
export function vectorClock(options: VectorClockArbitraryOptions = {}): fc.Arbitrary<VectorClock> {
  const nodes = options.nodes ?? ['a', 'b', 'c', 'd'];
  nodes.forEach((n, i) => validateNodeId(n, `nodes[${i}]`));
  const maxCounter = integerOption(
    'maxCounter',
    options.maxCounter,
    1000,
    0,
    Number.MAX_SAFE_INTEGER - 1,
  );
  return fc
    .array(fc.integer({ min: 0, max: maxCounter }), {
      minLength: nodes.length,
      maxLength: nodes.length,
    })
    .map((counters) => VectorClock.from(nodes.map((n, i) => [n, counters[i] ?? 0] as const)));
}

function nodesArbitrary(nodes: readonly string[] | undefined): fc.Arbitrary<string> {
  if (nodes === undefined) return nodeId();
  if (nodes.length === 0) throw new InvalidArgumentError('nodes', nodes, 'at least one node id');
  nodes.forEach((n, i) => validateNodeId(n, `nodes[${i}]`));
  return fc.constantFrom(...nodes);
}

// ---------------------------------------------------------------------------
// Causal histories

/**
 * Options of {@link causalHistory}.
 *
 * @example
 * ```ts
 * fc.assert(
 *   fc.property(
 *     causalHistory({ nodes: { min: 2, max: 8 }, events: { max: 60 }, maxSkewMs: 50, backwardSteps: false }),
 *     (h) => h.nodes.length >= 2 && h.events.length <= 60 && !h.stepped,
 *   ),
 * ); // passes
 * ```
 */
export interface CausalHistoryOptions {
  /**
   * Number of nodes, or a range.
   *
   * @defaultValue 2–8
   */
  readonly nodes?: number | { readonly min?: number; readonly max?: number };
  /**
   * Number of events, or a range.
   *
   * @defaultValue 0–40
   */
  readonly events?: number | { readonly min?: number; readonly max?: number };
  /**
   * Bound on the spread of clock errors across nodes (integer ms ≥ 0).
   *
   * @defaultValue `100`
   */
  readonly maxSkewMs?: number;
  /**
   * Largest clock drift (ppm); drift stays within `maxSkewMs`.
   *
   * @defaultValue `500`
   */
  readonly maxDriftPpm?: number;
  /**
   * Let clocks step backwards (e.g. an NTP step or a manual change).
   *
   * @defaultValue `true`
   */
  readonly backwardSteps?: boolean;
  /**
   * Largest backward step (ms).
   *
   * @defaultValue `3_600_000` (one hour)
   */
  readonly maxStepMs?: number;
  /**
   * Let nodes pause (long gaps in true time).
   *
   * @defaultValue `true`
   */
  readonly pauses?: boolean;
  /**
   * Longest pause (ms).
   *
   * @defaultValue `10_000`
   */
  readonly maxPauseMs?: number;
  /**
   * Clock resolutions to choose from per node (ms; 0 = exact, fractional readings).
   *
   * @defaultValue `[0, 1, 1, 10, 16]`
   */
  readonly resolutionsMs?: readonly number[];
  /**
   * True time of the start (epoch ms).
   *
   * @defaultValue `Date.UTC(2026, 0, 1)` (2026-01-01T00:00:00Z)
   */
  readonly startMs?: number;
  /**
   * Node ids. Must have at least the maximum number of nodes.
   *
   * @defaultValue `n0`, `n1`, …
   */
  readonly nodeIds?: readonly string[];
}

interface ClockParams {
  readonly offsetMs: number;
  readonly driftPpm: number;
  readonly resolution: number;
}

interface Step {
  readonly node: number;
  readonly kind: number;
  readonly pick: number;
  readonly advanceMs: number;
  readonly stepBackMs: number;
}

/**
 * Random message-passing executions over 2–8 nodes (configurable) whose
 * physical clocks have offsets, drift, coarse resolution (equal readings),
 * backward steps and pauses. Generated as a list of abstract steps that is
 * always interpreted into a valid history, so fast-check shrinks a failing
 * history to a minimal one (fewest events, nodes, smallest offsets).
 *
 * Replay it with {@link chronobound/testing!replayHistory | replayHistory}; get the
 * truth from {@link chronobound/testing!happenedBefore | happenedBefore}; compare with
 * {@link chronobound/testing!checkCausalOrder | checkCausalOrder}.
 *
 * @throws {@link chronobound!InvalidArgumentError | InvalidArgumentError}
 *   naming the option that is out of range.
 * @example
 * ```ts
 * fc.assert(fc.property(causalHistory(), (history) => {
 *   const clocks = new Map(history.nodes.map((n) => [n, new LamportClock({ node: n })]));
 *   const stamps = replayHistory(history, {
 *     local: (e) => clocks.get(e.node)!.tick(),
 *     send: (e) => clocks.get(e.node)!.tick(),
 *     receive: (e, sent) => clocks.get(e.node)!.receive(sent),
 *   });
 *   const result = checkCausalOrder(history, stamps, compareLamport);
 *   if (!result.ok) throw new Error(result.message);
 * }), { numRuns: 10_000 });
 * ```
 */
export function causalHistory(options: CausalHistoryOptions = {}): fc.Arbitrary<CausalHistory> {
  const [minNodes, maxNodes] = rangeOption('nodes', options.nodes, 2, 8, 1);
  const [minEvents, maxEvents] = rangeOption('events', options.events, 0, 40, 0);
  const maxSkewMs = integerOption('maxSkewMs', options.maxSkewMs, 100, 0);
  const maxDriftPpm = integerOption('maxDriftPpm', options.maxDriftPpm, 500, 0, 1e6 - 1);
  const backwardSteps = options.backwardSteps ?? true;
  const maxStepMs = integerOption('maxStepMs', options.maxStepMs, 3_600_000, 1);
  const pauses = options.pauses ?? true;
  const maxPauseMs = integerOption('maxPauseMs', options.maxPauseMs, 10_000, 0);
  const startMs = integerOption('startMs', options.startMs, Date.UTC(2026, 0, 1), 0);
  const resolutions = options.resolutionsMs ?? [0, 1, 1, 10, 16];
  if (resolutions.length === 0 || resolutions.some((r) => !(r >= 0 && Number.isFinite(r))))
    throw new InvalidArgumentError('resolutionsMs', resolutions, 'a non-empty list of numbers ≥ 0');
  const nodeIds = options.nodeIds ?? Array.from({ length: maxNodes }, (_, i) => `n${i}`);
  if (nodeIds.length < maxNodes)
    throw new InvalidArgumentError('nodeIds', nodeIds, `at least ${maxNodes} ids`);
  nodeIds.forEach((n, i) => validateNodeId(n, `nodeIds[${i}]`));
  if (new Set(nodeIds).size !== nodeIds.length)
    throw new InvalidArgumentError('nodeIds', nodeIds, 'distinct ids');

  const half = Math.floor(maxSkewMs / 2);
  const clock: fc.Arbitrary<ClockParams> = fc.record({
    offsetMs: fc.integer({ min: -half, max: half }),
    driftPpm: fc.integer({ min: -maxDriftPpm, max: maxDriftPpm }),
    resolution: fc.constantFrom(...resolutions),
  });
  const advances: Array<fc.WeightedArbitrary<number>> = [
    { arbitrary: fc.constant(0), weight: 3 },
    { arbitrary: fc.integer({ min: 0, max: 5 }), weight: 6 },
    { arbitrary: fc.integer({ min: 0, max: Math.max(1, 2 * maxSkewMs) }), weight: 2 },
  ];
  if (pauses) advances.push({ arbitrary: fc.integer({ min: 0, max: maxPauseMs }), weight: 1 });
  const step: fc.Arbitrary<Step> = fc.record({
    node: fc.nat({ max: maxNodes - 1 }),
    kind: fc.oneof(
      { arbitrary: fc.constant(0), weight: 2 },
      { arbitrary: fc.constant(1), weight: 3 },
      { arbitrary: fc.constant(2), weight: 3 },
    ),
    pick: fc.nat({ max: 63 }),
    advanceMs: fc.oneof(...advances),
    stepBackMs: backwardSteps
      ? fc.oneof(
          { arbitrary: fc.constant(0), weight: 30 },
          { arbitrary: fc.integer({ min: 1, max: maxStepMs }), weight: 1 },
        )
      : fc.constant(0),
  });
  return fc
    .tuple(
      fc.integer({ min: minNodes, max: maxNodes }),
      fc.array(clock, { minLength: maxNodes, maxLength: maxNodes }),
      fc.array(step, { minLength: minEvents, maxLength: maxEvents, size: 'max' }),
    )
    .map(([n, clocks, steps]) =>
      interpret(nodeIds.slice(0, n), clocks.slice(0, n), steps, maxSkewMs, startMs),
    );
}

/** Turns abstract steps into a valid history; total, so every shrink is valid too. */
function interpret(
  nodes: readonly string[],
  clocks: readonly ClockParams[],
  steps: readonly Step[],
  maxSkewMs: number,
  startMs: number,
): CausalHistory {
  const n = nodes.length;
  const half = maxSkewMs / 2;
  // A resolution coarser than the skew budget would break the bound: use exact readings.
  const resolutions = clocks.map((c) => (c.resolution <= maxSkewMs ? c.resolution : 0));
  const stepped = new Array<number>(n).fill(0);
  const pending: Array<{ id: number; from: number }> = [];
  const events: HistoryEvent[] = [];
  let t = startMs;
  let anyStep = false;
  for (const s of steps) {
    t += s.advanceMs;
    const i = s.node % n;
    const params = clocks[i] as ClockParams;
    const resolution = resolutions[i] as number;
    if (s.stepBackMs > 0) {
      stepped[i] = (stepped[i] as number) - s.stepBackMs;
      anyStep = true;
    }
    const drifted = params.offsetMs + (params.driftPpm * (t - startMs)) / 1e6;
    const offset = Math.min(half, Math.max(-half + resolution, drifted)) + (stepped[i] as number);
    const raw = t + offset;
    const physicalMs = resolution > 0 ? Math.floor(raw / resolution) * resolution : raw;
    const id = events.length;
    const node = nodes[i] as string;
    let kind: HistoryEventKind = s.kind === 0 ? 'local' : s.kind === 1 ? 'send' : 'receive';
    let message: number | undefined;
    if (kind === 'send') {
      message = id;
      pending.push({ id, from: i });
    } else if (kind === 'receive') {
      const candidates: number[] = [];
      for (let k = 0; k < pending.length; k++) if (pending[k]?.from !== i) candidates.push(k);
      if (candidates.length === 0) {
        kind = 'local';
      } else {
        const k = candidates[s.pick % candidates.length] as number;
        message = pending[k]?.id;
        pending.splice(k, 1);
      }
    }
    events.push(
      message === undefined
        ? { id, node, kind, trueMs: t, physicalMs }
        : { id, node, kind, message, trueMs: t, physicalMs },
    );
  }
  return { nodes, events, maxSkewMs, stepped: anyStep };
}

function integerOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(name, v, `an integer in [${min}, ${max}]`);
  return v;
}

function rangeOption(
  name: string,
  value: number | { readonly min?: number; readonly max?: number } | undefined,
  defaultMin: number,
  defaultMax: number,
  floor: number,
): [number, number] {
  const min =
    typeof value === 'number'
      ? value
      : (value?.min ?? Math.min(defaultMin, value?.max ?? defaultMin));
  const max = typeof value === 'number' ? value : (value?.max ?? Math.max(defaultMax, min));
  integerOption(`${name}.min`, min, min, floor, 10_000);
  integerOption(`${name}.max`, max, max, min, 10_000);
  return [min, max];
}
