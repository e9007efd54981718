/**
 * `chronobound demo --etcd`: DDIA's "the leader and the lock" (Figs. 8-4 and
 * 8-5) on a real etcd. Three nodes contend for one lock through
 * `chronobound/etcd`; each holder writes to a table that refuses stale fencing
 * tokens (the key's create revision). One holder is paused past its TTL: its
 * requests to etcd and the write it was about to make are held, in-process, so
 * its keep-alives stop reaching etcd. etcd expires its lease, another node takes
 * over with a larger token and writes; then the paused node resumes, looks at
 * its lease (already gone, by its own clock) and writes anyway: the table
 * refuses the write.
 *
 * @module
 */
import { etcdElection } from '../etcd/election.js';
import type { EtcdElection } from '../etcd/election.js';
import type { EtcdLease } from '../etcd/held-lease.js';
import { ClockUnsynchronizedError } from '../errors.js';
import { EtcdError } from '../etcd/errors.js';
import type { EtcdFetch } from '../etcd/gateway.js';
import { ntpSource } from '../ntp/source.js';
import { createNtpServer, type LoopbackNtpServer } from '../testing/node/index.js';
import { TrueClock } from '../truetime/true-clock.js';
import type { FencedDb } from './demo-db.js';
import { ETCD_INSTALL } from './demo-etcd-server.js';
import { etcdJson, etcdReport, type PauseRecord, type Term } from './demo-etcd-report.js';
import { ExitCode } from './errors.js';
import { asError, sleep, unlessAborted, type CliIo, type Progress } from './io.js';

/** Settings of the etcd demo. @internal */
export interface EtcdDemoOptions {
  readonly endpoints: readonly string[];
  /** Said in the report: who started etcd. */
  readonly etcdDescription: string;
  readonly ttlMs: number;
  /** Ordinary hand-overs before the pause. */
  readonly terms: number;
  readonly json: boolean;
}

const WRITES_PER_TERM = 3;
const WRITE_SPACING_MS = 60;
const REQUEST_TIMEOUT_MS = 2000;
const NODE_NAMES = ['A', 'B', 'C'] as const;

/**
 * Holds a node's outgoing requests while it is "paused": a request made
 * meanwhile leaves only when the pause ends, or fails when its own timeout
 * (the caller's signal) fires first — as if the process could not send it.
 */
class PauseGate {
  #paused: { promise: Promise<void>; resume: () => void } | undefined;

  get paused(): boolean {
    return this.#paused !== undefined;
  }

  pause(): void {
    if (this.#paused !== undefined) return;
    let resume!: () => void;
    const promise = new Promise<void>((r) => (resume = r));
    this.#paused = { promise, resume };
  }

  resume(): void {
    this.#paused?.resume();
    this.#paused = undefined;
  }

  /** Resolves when not paused; rejects with the signal's reason if it aborts first. */
  pass(signal: AbortSignal | null | undefined): Promise<void> {
    const paused = this.#paused;
    if (paused === undefined) return Promise.resolve();
    return signal === null || signal === undefined
      ? paused.promise
      : unlessAborted(paused.promise, signal);
  }

  fetch: EtcdFetch = async (url, init) => {
    await this.pass(init.signal);
    return globalThis.fetch(url, init);
  };
}

interface EtcdNode {
  readonly name: string;
  readonly clock: TrueClock;
  readonly gate: PauseGate;
  readonly election: EtcdElection;
  readonly tokens: bigint[];
  attempted: number;
  accepted: number;
  refused: number;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  readonly done: boolean;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let done = false;
  const promise = new Promise<void>((r) => (resolve = r));
  return {
    promise,
    resolve() {
      done = true;
      resolve();
    },
    get done() {
      return done;
    },
  };
}

/** The shared script: which term is paused, and the two events the pause waits on. */
class Scenario {
  readonly terms: Term[] = [];
  pausedTerm: number;
  total: number;
  readonly takeoverWrote = deferred();
  readonly lateWriteDone = deferred();
  pauseStartedAt = Number.NaN;
  /** The next holder's lease start (epoch ms, its clock's `earliest`). */
  takeoverStart: number | undefined;
  pause: PauseRecord | undefined;

  constructor(ordinaryTerms: number) {
    this.pausedTerm = ordinaryTerms;
    this.total = ordinaryTerms + 2;
  }

  /** The holder to pause lost its lease before the pause (e.g. a disrupted clock): pause the next one. */
  pauseTheNextTerm(): void {
    this.pausedTerm++;
    this.total++;
  }
}

interface Context {
  readonly db: FencedDb;
  readonly resource: string;
  readonly scenario: Scenario;
  readonly options: EtcdDemoOptions;
  readonly stop: AbortSignal;
  /** Ends every campaign: the script is played out. */
  readonly finish: () => void;
  readonly progress: Progress;
}

const PLAYED_OUT = new Error('the demo is played out');

/**
 * Runs the etcd demo against `options.endpoints` and an open fenced table; the
 * caller closes the table.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When etcd cannot be reached (bounded by the request timeouts).
 * @internal
 */
export async function runEtcdDemo(
  options: EtcdDemoOptions,
  db: FencedDb,
  io: CliIo,
  progress: Progress,
): Promise<number> {
  const started = performance.now();
  const run = `${Date.now().toString(36)}-${process.pid}`;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(io.signal.reason);
  io.signal.addEventListener('abort', onAbort, { once: true });
  // Never hang: the whole script gets a generous but finite time.
  const budgetMs = 30_000 + (options.terms + 2) * 4 * options.ttlMs;
  const budget = setTimeout(
    () => controller.abort(new Error(`the demo did not finish within ${budgetMs / 1000} s`)),
    budgetMs,
  );
  let server: LoopbackNtpServer | undefined;
  const nodes: EtcdNode[] = [];
  try {
    progress.update('demo: synchronizing 3 TrueClocks with a loopback NTP server…', true);
    server = await createNtpServer();
    for (const name of NODE_NAMES) nodes.push(makeNode(name, server, options, run));
    await Promise.all(
      nodes.map((n) => n.clock.ready({ timeoutMs: 10_000, signal: controller.signal })),
    );
    await probe(nodes[0], options, controller.signal);
    const scenario = new Scenario(options.terms);
    const context: Context = {
      db,
      resource: `report-${run}`,
      scenario,
      options,
      stop: controller.signal,
      finish: () => controller.abort(PLAYED_OUT),
      progress,
    };
    const finished = await contendAll(nodes, context, controller);
    progress.done();
    const safe = isSafe(scenario);
    const outcome = {
      endpoints: options.endpoints,
      etcdDescription: options.etcdDescription,
      database: db.description,
      ttlMs: options.ttlMs,
      nodes,
      terms: scenario.terms,
      pause: scenario.pause,
      fence: (await db.read(context.resource))?.fence,
      elapsedS: (performance.now() - started) / 1000,
      safe,
    };
    io.stdout.write(options.json ? etcdJson(outcome) : etcdReport(outcome));
    if (!finished) {
      if (!options.json) io.stdout.write('(interrupted before the pause was played out)\n');
      return ExitCode.ok;
    }
    return safe ? ExitCode.ok : ExitCode.runtime;
  } finally {
    clearTimeout(budget);
    io.signal.removeEventListener('abort', onAbort);
    controller.abort();
    progress.done();
    for (const n of nodes) n.gate.resume();
    await Promise.allSettled(nodes.map((n) => n.election.close()));
    await Promise.allSettled(nodes.map((n) => n.clock.close()));
    await server?.close();
  }
}

function makeNode(
  name: string,
  server: LoopbackNtpServer,
  options: EtcdDemoOptions,
  run: string,
): EtcdNode {
  const clock = new TrueClock({
    source: ntpSource({
      servers: [server.address],
      pollIntervalMs: 1000,
      samplesPerPoll: 1,
      sampleSpacingMs: 0,
      timeoutMs: 1000,
      name: `ntp-${name}`,
    }),
  });
  const gate = new PauseGate();
  return {
    name,
    clock,
    gate,
    election: etcdElection({
      endpoints: options.endpoints,
      key: `/chronobound/demo/${run}`,
      ttlMs: options.ttlMs,
      clock,
      value: name,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      fetch: gate.fetch,
    }),
    tokens: [],
    attempted: 0,
    accepted: 0,
    refused: 0,
  };
}

/** One linearizable read first, so that an unreachable etcd is one clear error. */
async function probe(
  node: EtcdNode | undefined,
  options: EtcdDemoOptions,
  signal: AbortSignal,
): Promise<void> {
  try {
    await node?.election.leader({ signal });
  } catch (error) {
    if (!(error instanceof EtcdError)) throw error;
    throw new Error(
      `cannot use etcd at ${options.endpoints.join(', ')}: ${error.message} To start one, ` +
        `${ETCD_INSTALL}; or, with etcd on PATH, run \`chronobound demo --etcd\` alone.`,
      { cause: error },
    );
  }
}

/** Every node contends until the script is played out; the first failure stops them all. Returns whether it finished. */
async function contendAll(
  nodes: readonly EtcdNode[],
  context: Context,
  controller: AbortController,
): Promise<boolean> {
  let failure: Error | undefined;
  await Promise.all(
    nodes.map((node) =>
      contend(node, context).catch((error: unknown) => {
        // After a stop, errors are the stop's echo (aborted campaigns and waits).
        if (context.stop.aborted) return;
        failure = asError(error);
        controller.abort(failure);
      }),
    ),
  );
  if (failure !== undefined) throw failure;
  const reason: unknown = context.stop.reason;
  if (reason === PLAYED_OUT) return true;
  if (reason instanceof Error && reason.message.startsWith('the demo did not finish')) throw reason;
  return false; // interrupted (Ctrl-C)
}

/** One node: campaign, hold a term, resign (or be paused), again — until the script is done. */
async function contend(node: EtcdNode, context: Context): Promise<void> {
  const { scenario, stop } = context;
  while (!stop.aborted && scenario.terms.length < scenario.total) {
    let lease: EtcdLease;
    try {
      lease = await node.election.campaign({ signal: stop });
    } catch (error) {
      if (stop.aborted) return;
      if (!(error instanceof ClockUnsynchronizedError)) throw error;
      // Fail closed: no campaign on a clock that cannot stand behind its bound; wait for it.
      await node.clock.whenTrusted({ timeoutMs: 10_000, signal: stop });
      continue;
    }
    const index = scenario.terms.length;
    if (index >= scenario.total) {
      await lease.resign().catch(() => undefined);
      return;
    }
    const term: Term = {
      node: node.name,
      token: lease.token,
      attempted: 0,
      accepted: 0,
      refused: 0,
    };
    scenario.terms.push(term);
    node.tokens.push(lease.token);
    context.progress.update(
      `demo: term ${index + 1}/${scenario.total}: node ${node.name} holds the lock, token ${lease.token}`,
      true,
    );
    if (index === scenario.pausedTerm) {
      if (!(await pausedTerm(node, lease, term, context))) scenario.pauseTheNextTerm();
    } else {
      if (index === scenario.pausedTerm + 1) recordTakeover(node, lease, scenario);
      await ordinaryTerm(node, lease, term, context, index === scenario.pausedTerm + 1);
      if (scenario.terms.length >= scenario.total) {
        context.finish(); // stops the others' campaigns
        return;
      }
    }
    await sleep(20, stop);
  }
}

/** Writes `value` with the lease's token; counts it for the node and the term. */
async function fencedWrite(
  node: EtcdNode,
  lease: EtcdLease,
  term: Term,
  value: string,
  context: Context,
): Promise<boolean> {
  const accepted = await context.db.write(context.resource, value, lease.token);
  for (const tally of [node, term]) {
    tally.attempted++;
    if (accepted) tally.accepted++;
    else tally.refused++;
  }
  return accepted;
}

/** A holder's ordinary term: check the lease before each write, write, then resign. */
async function ordinaryTerm(
  node: EtcdNode,
  lease: EtcdLease,
  term: Term,
  context: Context,
  takeover: boolean,
): Promise<void> {
  const { scenario, stop } = context;
  for (let i = 1; i <= WRITES_PER_TERM && !stop.aborted; i++) {
    if (!lease.isHeld()) break; // lost mid-term (e.g. a slow machine): stop acting
    await fencedWrite(node, lease, term, `${node.name} #${i} (token ${lease.token})`, context);
    if (takeover && i === 1) {
      // Fig. 8-5: the old holder's late write comes after the new holder has written.
      scenario.takeoverWrote.resolve();
      await unlessAborted(scenario.lateWriteDone.promise, stop);
    }
    await sleep(WRITE_SPACING_MS, stop);
  }
  await lease.resign().catch(() => undefined); // it expires by itself if etcd is not told
}

function recordTakeover(node: EtcdNode, lease: EtcdLease, scenario: Scenario): void {
  const pause = scenario.pause;
  if (pause === undefined) return;
  pause.takeoverAfterMs = performance.now() - scenario.pauseStartedAt;
  pause.takenOverBy = node.name;
  pause.newToken = lease.token;
  // Just granted, never renewed: its start is expiresAt − TTL.
  scenario.takeoverStart = lease.expiresAt - lease.ttlMs;
}

/**
 * The paused holder (Fig. 8-4): it writes, checks its lease (valid), and stops
 * right there — its keep-alives and the write it was about to make are held —
 * until the TTL has run out and the next holder has written. Then it looks at
 * its lease again and, like the careless client of the figure, writes anyway.
 * Returns false, without pausing, when the lease was already lost at the check.
 */
async function pausedTerm(
  node: EtcdNode,
  lease: EtcdLease,
  term: Term,
  context: Context,
): Promise<boolean> {
  const { scenario, stop, options } = context;
  if (lease.isHeld()) {
    await fencedWrite(node, lease, term, `${node.name} #1 (token ${lease.token})`, context);
    await sleep(WRITE_SPACING_MS, stop);
  }
  // Fig. 8-4's check: valid … (if not — a slow machine, a disrupted clock — no pause here).
  if (!lease.isHeld()) {
    await lease.resign().catch(() => undefined);
    return false;
  }
  const pause: PauseRecord = {
    node: node.name,
    token: lease.token,
    remainingAtCheckMs: lease.remainingMs(),
    lostAfterMs: undefined,
    lostReason: undefined,
    takeoverAfterMs: undefined,
    takenOverBy: undefined,
    newToken: undefined,
    gapMs: undefined,
    pausedMs: 0,
    heldAfterResume: true,
    lateWriteAccepted: false,
    fenceAtLateWrite: undefined,
  };
  scenario.pause = pause;
  // … and here it stops, before its next write.
  scenario.pauseStartedAt = performance.now();
  node.gate.pause();
  lease.onLost((error) => {
    pause.lostAfterMs = performance.now() - scenario.pauseStartedAt;
    pause.lostReason = describeLoss(error);
  });
  context.progress.update(
    `demo: node ${node.name} paused with token ${lease.token} (${Math.round(pause.remainingAtCheckMs)} ms left on its lease)`,
    true,
  );
  const ttlPassed = sleep(options.ttlMs + lease.marginMs, stop);
  await unlessAborted(Promise.all([ttlPassed, scenario.takeoverWrote.promise]), stop);
  node.gate.resume();
  pause.pausedMs = performance.now() - scenario.pauseStartedAt;
  if (scenario.takeoverStart !== undefined) {
    pause.gapMs = scenario.takeoverStart - (lease.expiresAt - lease.marginMs);
  }
  // Resumed: look again, then write anyway with the old token.
  pause.heldAfterResume = lease.isHeld();
  if (pause.lostReason === undefined && lease.lostError !== undefined) {
    pause.lostReason = describeLoss(lease.lostError);
  }
  pause.fenceAtLateWrite = (await context.db.read(context.resource))?.fence;
  pause.lateWriteAccepted = await fencedWrite(
    node,
    lease,
    term,
    `${node.name} late write (token ${lease.token})`,
    context,
  );
  scenario.lateWriteDone.resolve();
  await lease.resign().catch(() => undefined);
  return true;
}

function describeLoss(error: Error): string {
  const reason = (error as { reason?: unknown }).reason;
  return `${error.name}${typeof reason === 'string' ? ` (${reason})` : ''}`;
}

/** Safe: the late write was refused, the paused node's own check had given the lease up, and tokens only grew. */
function isSafe(scenario: Scenario): boolean {
  const pause = scenario.pause;
  const tokens = scenario.terms.map((t) => t.token);
  const increasing = tokens.every((t, i) => i === 0 || t > (tokens[i - 1] ?? 0n));
  return pause !== undefined && !pause.lateWriteAccepted && !pause.heldAfterResume && increasing;
}
