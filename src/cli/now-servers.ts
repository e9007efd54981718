/**
 * How `chronobound now` asks its servers: the NTP or NTS servers through one
 * `ntpSource`, whose first round (each server's initial burst of `--samples`
 * exchanges, the clock filter, the selection) is the reading; chronyd once.
 * One report row per server.
 *
 * @module
 */
import { chronySource } from '../ntp/chrony.js';
import type { ChronyTracking } from '../ntp/chrony-protocol.js';
import { selectOffset, type Selection } from '../ntp/select.js';
import { ntpSource } from '../ntp/source.js';
import type { NtpServerStatus } from '../ntp/source-options.js';
import { systemMonotonic } from '../clock/system.js';
import type { SourceProblem } from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import { formatHostPort, type HostPort } from './args.js';
import { Progress, type CliIo } from './io.js';

/**
 * One row of the per-server table (and of the JSON `servers` array).
 * @internal
 */
export interface ServerReport {
  /** `host:port`, or `system clock`: the name `NtpServerStatus.server` uses. */
  readonly server: string;
  readonly kind: 'ntp' | 'nts' | 'chrony' | 'system';
  /** Server time minus the local system clock (ms); null without a reply. */
  readonly offsetMs: number | null;
  /** Round-trip delay (ms): NTP δ, or chronyd's root delay. */
  readonly delayMs: number | null;
  readonly stratum: number | null;
  /** The sample's error bound λ (ms). */
  readonly errorMs: number | null;
  readonly accepted: boolean;
  /** Why it was not used; null when accepted. */
  readonly reason: string | null;
}

interface Collected {
  readonly reports: ServerReport[];
  /** Each usable server's best sample: what a selection across sources votes with. */
  readonly samples: { readonly id: string; readonly sample: SyncSample }[];
}

/**
 * A library message in the CLI's terms: one line, flags instead of option names.
 * @internal
 */
export function cliWords(message: string): string {
  return message.replace(/\s+/g, ' ').replace('as the `ca` option', 'with --nts-ca');
}

/** Why a server gave no usable sample, in a few words. */
function reasonOf(s: NtpServerStatus): string {
  const r = s.lastRejection;
  if (r === undefined) return 'interrupted';
  if (r.reason === 'timeout') return 'timeout: no reply';
  if (r.reason === 'unavailable') return `unavailable: ${r.message}`;
  if (r.reason === 'nts-ke' || r.reason === 'nts') return `${r.reason}: ${cliWords(r.message)}`;
  return `rejected: ${r.reason}`;
}

/** A server's vote: its best exchange, unless DENY/RSTR stopped it (whatever it answered before). */
function voteOf(s: NtpServerStatus): NtpServerStatus['best'] {
  return s.state === 'stopped' ? undefined : s.best;
}

/** The report row of one server, from the source's status at the end of its first round. */
function reportOf(s: NtpServerStatus, kind: 'ntp' | 'nts'): ServerReport {
  const x = voteOf(s);
  return {
    server: s.server,
    kind,
    offsetMs: x?.systemOffsetMs ?? null,
    delayMs: x?.delayMs ?? null,
    stratum: x?.stratum ?? null,
    errorMs: x?.errorMs ?? null,
    accepted: x !== undefined,
    reason: x === undefined ? reasonOf(s) : null,
  };
}

/**
 * How `now` asks its NTP or NTS servers.
 * @internal
 */
export interface Asking {
  /** NTS: each server is an NTS-KE server; `ca` the only CA trusted, if given. */
  readonly nts: boolean;
  readonly ca: string | undefined;
  /** Exchanges per server (the initial burst) and the pause between them (ms). */
  readonly samples: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Closes the source: the servers that had not finished are reported as they stand. */
  readonly signal: AbortSignal;
}

/** What the NTP or NTS servers came to. */
interface NtpCollected extends Collected {
  /** The source's selection at the end of its first round; undefined if interrupted. */
  readonly selection: Selection | undefined;
  /** A failed NTS key exchange's message, when one failed. */
  readonly keFailure: string | undefined;
}

/**
 * Asks the servers through one `ntpSource` and waits for its first round: each
 * server's burst of `samples` exchanges answered, or given up (a timeout, a
 * refusal, a failed key exchange). Nothing unauthenticated is used with NTS.
 */
async function collectNtp(servers: readonly HostPort[], asking: Asking): Promise<NtpCollected> {
  const { nts, ca } = asking;
  const source = ntpSource({
    servers: servers.map(({ host, port }) =>
      nts ? { host, port, nts: ca === undefined ? true : { ca } } : { host, port },
    ),
    initialBurst: asking.samples,
    sampleSpacingMs: asking.intervalMs,
    timeoutMs: asking.timeoutMs,
    signal: asking.signal,
  });
  const stop = source.subscribe(() => undefined, systemMonotonic);
  let selection: Selection | undefined;
  let statuses: readonly NtpServerStatus[];
  try {
    // Rejects only when the signal closed the source first (Ctrl-C).
    selection = await source.firstRound().catch(() => undefined);
    statuses = source.servers();
  } finally {
    stop();
    await source.close();
  }
  const reports = statuses.map((s) => reportOf(s, nts ? 'nts' : 'ntp'));
  const samples: Collected['samples'] = [];
  for (const s of statuses) {
    const vote = voteOf(s);
    if (vote !== undefined) samples.push({ id: s.server, sample: vote });
  }
  const failedKe = statuses.find(
    (s) => s.best === undefined && s.lastRejection?.reason === 'nts-ke',
  );
  return { reports, samples, selection, keFailure: failedKe?.lastRejection?.message };
}

/** Reads chronyd once: its first sample, or the problem it reported. */
async function collectChrony(
  target: HostPort,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Collected> {
  const server = formatHostPort(target);
  const source = chronySource({
    host: target.host,
    port: target.port,
    timeoutMs,
    pollIntervalMs: 3_600_000,
  });
  let outcome: { sample: SyncSample } | { problem: SourceProblem };
  try {
    outcome = await new Promise((resolve) => {
      const done = (value: { sample: SyncSample } | { problem: SourceProblem }): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const onAbort = (): void =>
        done({ problem: { source: server, reason: 'aborted', message: 'interrupted' } });
      signal.addEventListener('abort', onAbort, { once: true });
      source.subscribe(
        (sample) => done({ sample }),
        systemMonotonic,
        (problem) => done({ problem }),
      );
    });
  } finally {
    await source.close();
  }
  const tracking: ChronyTracking | undefined = source.tracking;
  const base = {
    server,
    kind: 'chrony' as const,
    offsetMs: tracking?.currentCorrectionMs ?? null,
    delayMs: tracking?.rootDelayMs ?? null,
    stratum: tracking?.stratum ?? null,
  };
  if ('sample' in outcome) {
    return {
      reports: [{ ...base, errorMs: outcome.sample.errorMs, accepted: true, reason: null }],
      samples: [{ id: server, sample: outcome.sample }],
    };
  }
  const p = outcome.problem;
  const reason =
    p.reason === 'timeout'
      ? 'timeout: no reply (is chronyd running, with cmdport open?)'
      : `${p.reason}: ${p.message}`;
  return { reports: [{ ...base, errorMs: null, accepted: false, reason }], samples: [] };
}

/** What the progress line says while `now` waits for its servers. */
function waitingFor(servers: number, chrony: boolean, samples: number, intervalMs: number): string {
  const parts: string[] = [];
  if (servers > 0) {
    const each = samples > 1 ? `, ${samples} exchanges each ${intervalMs / 1000} s apart` : '';
    parts.push(`${servers} server${servers === 1 ? '' : 's'}${each}`);
  }
  if (chrony) parts.push('chronyd');
  return parts.join(' and ');
}

/**
 * What `now` asks: the NTP or NTS servers, and chronyd.
 * @internal
 */
export interface Plan {
  readonly servers: readonly HostPort[];
  readonly asking: Asking;
  /** The chronyd to ask: the one given, or the local one when no source was given. */
  readonly chrony: HostPort | undefined;
  readonly chronyTimeoutMs: number;
  /** Whether any source was given (else the local chronyd is only tried). */
  readonly explicit: boolean;
}

/**
 * What the sources came to: a row per server and the selection to read from.
 * @internal
 */
export interface Asked {
  readonly reports: ServerReport[];
  readonly selection: Selection | undefined;
  /** A failed NTS key exchange's message, when one failed. */
  readonly keFailure: string | undefined;
}

/**
 * Asks the servers and chronyd at once, with a progress line on a terminal.
 * @internal
 */
export async function ask(plan: Plan, io: CliIo): Promise<Asked> {
  const { servers, asking, chrony } = plan;
  // Only on a terminal: stdout and its JSON stay clean, and so do logs.
  const progress = new Progress(io, 'silent');
  const what = waitingFor(servers.length, chrony !== undefined, asking.samples, asking.intervalMs);
  const total = servers.length + (chrony === undefined ? 0 : 1);
  let finished = 0;
  const show = (): void =>
    progress.update(`chronobound now: asking ${what}… ${finished} of ${total} done`);
  // The NTP servers finish together: the source's first round ends for all of them at once.
  const done = (count: number) => (): void => {
    finished += count;
    show();
  };
  show();
  const [ntp, chronyd] = await Promise.all([
    servers.length === 0 ? undefined : collectNtp(servers, asking).finally(done(servers.length)),
    chrony === undefined
      ? undefined
      : collectChrony(chrony, plan.chronyTimeoutMs, asking.signal).finally(done(1)),
  ]).finally(() => progress.done());
  return {
    reports: [...(ntp?.reports ?? []), ...(chronyd?.reports ?? [])],
    selection: select(plan, ntp, chronyd),
    keFailure: ntp?.keFailure,
  };
}

/**
 * The selection to read from: the NTP servers' own (ntpSource's) when they are
 * all that was asked; with chronyd, one across every usable sample, chronyd one
 * more vote. That second selection takes each server's best reply as it is: it
 * holds the truth as the reply does, but is not narrowed by the server's other
 * replies as ntpSource's votes are.
 */
function select(
  plan: Plan,
  ntp: NtpCollected | undefined,
  chronyd: Collected | undefined,
): Selection | undefined {
  if (ntp !== undefined && chronyd === undefined) return ntp.selection;
  const candidates = [...(ntp?.samples ?? []), ...(chronyd?.samples ?? [])];
  if (candidates.length === 0) return undefined;
  // Like ntpSource: the configured sources set how many may lie (f), so a silent one
  // still counts towards f; a − f of the a answers must overlap. The local chronyd,
  // only tried, counts only if it answered.
  const configured = plan.explicit ? plan.servers.length + 1 : candidates.length;
  return selectOffset(
    candidates.map(({ id, sample }) => ({ id, ...sample })),
    { atMonotonic: systemMonotonic.now(), configured },
  );
}
