/**
 * What `chronobound demo --etcd` prints: a table of the nodes' writes and
 * terms, the pause as it happened, and a one-line verdict; or one JSON object.
 *
 * @module
 */
import { DEMO_COLUMN_GAP } from './demo-report.js';
import { ms, table } from './format.js';

/** One holder's term. @internal */
export interface Term {
  readonly node: string;
  readonly token: bigint;
  attempted: number;
  accepted: number;
  refused: number;
}

/** What happened around the pause. @internal */
export interface PauseRecord {
  node: string;
  token: bigint;
  /** `remainingMs()` of the lease at the check right before the pause. */
  remainingAtCheckMs: number;
  /** When its own lease check gave the lease up, from the start of the pause (ms). */
  lostAfterMs: number | undefined;
  lostReason: string | undefined;
  /** When the next holder had the key, from the start of the pause (ms). */
  takeoverAfterMs: number | undefined;
  takenOverBy: string | undefined;
  newToken: bigint | undefined;
  /**
   * The next holder's lease start (its clock's `earliest` before the grant left)
   * minus the last instant the paused holder's clock let it act (`expiresAt −
   * marginMs`), ms. Both bound true time, so a positive gap proves the two
   * holding periods did not overlap, whatever the process was doing.
   */
  gapMs: number | undefined;
  pausedMs: number;
  heldAfterResume: boolean;
  lateWriteAccepted: boolean;
  fenceAtLateWrite: bigint | undefined;
}

/** One node's writes and terms. @internal */
export interface NodeTally {
  readonly name: string;
  readonly tokens: readonly bigint[];
  readonly attempted: number;
  readonly accepted: number;
  readonly refused: number;
}

/** What the etcd demo saw. @internal */
export interface EtcdOutcome {
  readonly endpoints: readonly string[];
  readonly etcdDescription: string;
  readonly database: string;
  readonly ttlMs: number;
  readonly nodes: readonly NodeTally[];
  readonly terms: readonly Term[];
  readonly pause: PauseRecord | undefined;
  /** The table's fence at the end. */
  readonly fence: bigint | undefined;
  readonly elapsedS: number;
  readonly safe: boolean;
}

/**
 * The etcd demo's result as one JSON object (tokens as decimal strings).
 * @internal
 */
export function etcdJson(outcome: EtcdOutcome): string {
  const { nodes, terms, pause, fence, elapsedS, safe } = outcome;
  return `${JSON.stringify({
    mode: 'etcd',
    etcd: { endpoints: outcome.endpoints, description: outcome.etcdDescription },
    database: outcome.database,
    ttlMs: outcome.ttlMs,
    elapsedS,
    nodes: nodes.map((n) => ({
      name: n.name,
      tokens: n.tokens.map(String),
      attempted: n.attempted,
      accepted: n.accepted,
      refused: n.refused,
    })),
    terms: terms.map((t) => ({ ...t, token: String(t.token) })),
    pause:
      pause === undefined
        ? null
        : {
            ...pause,
            token: String(pause.token),
            newToken: pause.newToken === undefined ? null : String(pause.newToken),
            fenceAtLateWrite:
              pause.fenceAtLateWrite === undefined ? null : String(pause.fenceAtLateWrite),
            lostAfterMs: pause.lostAfterMs ?? null,
            lostReason: pause.lostReason ?? null,
            takeoverAfterMs: pause.takeoverAfterMs ?? null,
            takenOverBy: pause.takenOverBy ?? null,
            gapMs: pause.gapMs ?? null,
          },
    fence: fence === undefined ? null : String(fence),
    verdict: safe ? 'safe' : 'unsafe',
  })}\n`;
}

/**
 * The etcd demo's report, for people: the per-node table, the pause, the verdict.
 * @internal
 */
export function etcdReport(outcome: EtcdOutcome): string {
  const { nodes, terms, pause, elapsedS, safe } = outcome;
  const lines = [
    `chronobound demo --etcd: 3 nodes contend for one lock, ${terms.length} terms, TTL ${outcome.ttlMs} ms`,
    `etcd: ${outcome.etcdDescription}`,
    `database: ${outcome.database}`,
    "every write carries the holder's fencing token (the lock key's create revision); the table",
    'refuses a token below the highest it has accepted',
    '',
    table(
      [
        ['node', 'terms (tokens)', 'writes attempted', 'accepted', 'refused'],
        ...nodes.map((n) => [
          n.name,
          n.tokens.length === 0 ? '0' : `${n.tokens.length} (${n.tokens.join(', ')})`,
          String(n.attempted),
          String(n.accepted),
          String(n.refused),
        ]),
      ],
      DEMO_COLUMN_GAP,
    ),
    '',
  ];
  if (pause !== undefined) lines.push(...pauseLines(pause), '');
  lines.push(verdictLine(pause, safe), `(finished in ${elapsedS.toFixed(1)} s)`, '');
  return lines.join('\n');
}

function pauseLines(p: PauseRecord): string[] {
  const at = (value: number | undefined): string =>
    value === undefined ? 'never' : `${ms(value, 0)} into the pause`;
  return [
    `Pause: node ${p.node} checked its lease (valid, ${ms(p.remainingAtCheckMs, 0)} left) with token ${p.token}, then`,
    `  stopped for ${ms(p.pausedMs, 0)}: its keep-alives and its next write were held (in-process; the`,
    '  node keeps running, so its own timer noticed the deadline; a real SIGSTOP is in',
    '  test/integration/etcd.test.ts).',
    `  Its own lease check gave the lease up ${at(p.lostAfterMs)}${p.lostReason === undefined ? '' : `: ${p.lostReason}`}.`,
    `  etcd expired the lease; node ${p.takenOverBy ?? '?'} took the lock ${at(p.takeoverAfterMs)}, with token ${p.newToken ?? '?'}, and wrote.`,
    `  Its lease began ${p.gapMs === undefined ? '?' : ms(p.gapMs, 0)} after the last instant node ${p.node}'s clock let it act: both are`,
    '  bounds on true time, so the two holding periods did not overlap.',
    `  Resumed, node ${p.node}'s lease.isHeld() said ${p.heldAfterResume}; it wrote anyway with token ${p.token}:`,
    `  ${p.lateWriteAccepted ? 'ACCEPTED' : 'refused'} by the table (its fence was ${p.fenceAtLateWrite ?? '?'}).`,
  ];
}

function verdictLine(pause: PauseRecord | undefined, safe: boolean): string {
  if (pause === undefined) return 'verdict: no pause was played out';
  return safe
    ? `verdict: safe — the stale write (token ${pause.token}) was refused and node ${pause.node} already knew its lease was gone`
    : `verdict: UNSAFE — the stale write was ${pause.lateWriteAccepted ? 'accepted' : 'refused'} and node ${pause.node}'s lease check said ${pause.heldAfterResume ? 'held' : 'gone'}; please report this`;
}
