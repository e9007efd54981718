/**
 * How `chronobound now` asks its servers: each NTP or NTS server `--samples`
 * times (servers in parallel, the best exchange kept by the clock filter), and
 * chronyd once; one report row per server and the samples to select from.
 *
 * @module
 */
import { NtpRejectedError, NtpTimeoutError, SourceUnavailableError } from '../errors.js';
import { chronySource } from '../ntp/chrony.js';
import type { ChronyTracking } from '../ntp/chrony-protocol.js';
import { NtpSocket } from '../ntp/ntp-socket.js';
import type { NtpExchange } from '../ntp/reply-validation.js';
import { NtsKeyExchangeError } from '../ntp/nts/errors.js';
import { queryNts } from '../ntp/nts/exchange.js';
import type { NtsSession } from '../ntp/nts/session.js';
import { ClockFilter } from '../sources/clock-filter.js';
import { systemMonotonic } from '../clock/system.js';
import type { SourceProblem } from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import { formatHostPort, type HostPort } from './args.js';
import { sleep } from './io.js';

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

export interface Collected {
  readonly reports: ServerReport[];
  readonly samples: { readonly id: string; readonly sample: SyncSample }[];
}

/** A library message in the CLI's terms: one line, flags instead of option names. */
export function cliWords(message: string): string {
  return message.replace(/\s+/g, ' ').replace('as the `ca` option', 'with --nts-ca');
}

/** Why an exchange failed, in a few words. */
function reasonOf(error: unknown): string {
  if (error instanceof NtsKeyExchangeError) return `nts-ke: ${cliWords(error.message)}`;
  if (error instanceof NtpTimeoutError) return 'timeout: no reply';
  if (error instanceof NtpRejectedError) return `rejected: ${error.reason}`;
  if (error instanceof SourceUnavailableError) return `unavailable: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** One server's outcome: its best exchange, or why it has none. */
interface ServerOutcome {
  readonly server: string;
  readonly best: NtpExchange | undefined;
  readonly lastError: unknown;
}

/** The report rows and the usable samples of the NTP or NTS servers asked. */
function collected(results: readonly ServerOutcome[], kind: 'ntp' | 'nts'): Collected {
  const reports: ServerReport[] = [];
  const samples: Collected['samples'] = [];
  for (const { server, best: x, lastError } of results) {
    if (x === undefined) {
      reports.push({
        server,
        kind,
        offsetMs: null,
        delayMs: null,
        stratum: null,
        errorMs: null,
        accepted: false,
        reason: reasonOf(lastError ?? 'interrupted'),
      });
      continue;
    }
    reports.push({
      server,
      kind,
      offsetMs: x.systemOffsetMs ?? null,
      delayMs: x.delayMs,
      stratum: x.stratum,
      errorMs: x.errorMs,
      accepted: true,
      reason: null,
    });
    samples.push({ id: server, sample: x });
  }
  return { reports, samples };
}

/** How `now` asks: exchanges per server, the pause between them, and when to give up. */
export interface Burst {
  readonly samples: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** Called as each server finishes, for the progress line. */
  readonly onServerDone: () => void;
}

/**
 * Asks each server `samples` times, servers in parallel, and keeps each one's
 * best exchange by the clock filter. `ask` makes one exchange; an error for
 * which `isFinal` holds (DENY/RSTR, a failed key exchange) ends that server's burst.
 */
async function burstAll(
  servers: readonly HostPort[],
  burst: Burst,
  ask: (server: HostPort) => Promise<NtpExchange>,
  isFinal: (error: unknown) => boolean,
): Promise<ServerOutcome[]> {
  return Promise.all(
    servers.map(async (server) => {
      const filter = new ClockFilter<NtpExchange>();
      let lastError: unknown;
      for (let i = 0; i < burst.samples && !burst.signal.aborted; i++) {
        if (i > 0) await sleep(burst.intervalMs, burst.signal);
        try {
          filter.add(await ask(server));
        } catch (error) {
          lastError = error;
          if (isFinal(error)) break;
        }
      }
      burst.onServerDone();
      const best = filter.best(systemMonotonic.now());
      return { server: formatHostPort(server), best, lastError };
    }),
  );
}

/** The server asked this client to stop (kiss code DENY or RSTR). */
function isKissOfDeath(error: unknown): boolean {
  return error instanceof NtpRejectedError && error.reason === 'kiss-of-death';
}

/** Asks each NTP server `samples` times and keeps the best exchange. */
export async function collectNtp(servers: readonly HostPort[], burst: Burst): Promise<Collected> {
  const socket = new NtpSocket();
  try {
    const { timeoutMs, signal } = burst;
    const results = await burstAll(
      servers,
      burst,
      ({ host, port }) => socket.query({ host, port, timeoutMs, signal }),
      isKissOfDeath,
    );
    return collected(results, 'ntp');
  } finally {
    await socket.close();
  }
}

/**
 * Asks each NTS server `samples` times: NTS-KE, then authenticated exchanges on
 * the session it gave; keeps the best exchange. Nothing unauthenticated is ever used.
 */
export async function collectNts(
  servers: readonly HostPort[],
  ca: string | undefined,
  burst: Burst,
): Promise<Collected & { readonly keFailure: string | undefined }> {
  const sessions = new Map<HostPort, NtsSession>();
  const { timeoutMs, signal } = burst;
  const results = await burstAll(
    servers,
    burst,
    async (server) => {
      const session = sessions.get(server);
      const x = await queryNts({
        host: server.host,
        port: server.port,
        timeoutMs,
        signal,
        ...(ca === undefined ? {} : { ca }),
        ...(session === undefined ? {} : { session }),
      });
      sessions.set(server, x.session);
      return x;
    },
    // A key exchange that failed fails the same way again.
    (error) => error instanceof NtsKeyExchangeError || isKissOfDeath(error),
  );
  const failedKe = results.find(
    (r) => r.best === undefined && r.lastError instanceof NtsKeyExchangeError,
  );
  return {
    ...collected(results, 'nts'),
    keFailure: failedKe === undefined ? undefined : (failedKe.lastError as Error).message,
  };
}

/** Reads chronyd once: its first sample, or the problem it reported. */
export async function collectChrony(
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
