/**
 * The poll round of `ntpSource` and the policy that sets each server's next
 * poll from its outcome (docs/ntp.md, "Polling").
 *
 * @module
 */
import type { MonotonicSource } from '../clock/types.js';
import type { AgeableSample, AgedSample } from '../sources/types.js';
import {
  GRID_SLACK_MS,
  LOSS_AFTER_POLLS,
  MAX_LOST_BACKOFF,
  MAX_RATE_INTERVAL_MS,
  POLL_JITTER,
  STARTUP_RETRY_MS,
} from './source-options.js';
import { OUTCOME_RANK, type Outcome, type ServerRecord } from './source-server.js';

/**
 * What a poll round needs from its source.
 * @internal
 */
export interface RoundEnv {
  /** The shortest poll interval (ms). */
  readonly pollIntervalMs: number;
  readonly initialBurst: number;
  readonly samplesPerPoll: number;
  readonly spacingMs: number;
  readonly random: () => number;
  /** The poll grid: its period and its start (monotonic ms). */
  readonly period: number;
  readonly gridStart: number;
  exchange(s: ServerRecord, mono: MonotonicSource): Promise<Outcome>;
  /** Runs a selection across servers and hands on its sample. */
  select(mono: MonotonicSource, pollStart: number): void;
  /** Waits `ms`, or less if `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** The earliest a server may be polled out of turn. */
  earliestPoll(s: ServerRecord): number;
  readonly maxPollIntervalMs: number;
  readonly targetUncertaintyMs: number;
  /** A vote's bound at `at`, aged as the selection ages it. */
  age(sample: AgeableSample, at: number): AgedSample;
  /** The clock's prediction of ε for a sample with `errorMs` after `elapsedMs`. */
  predict(errorMs: number, elapsedMs: number): number;
}

/**
 * One poll of the due servers: `initialBurst` exchanges to a server due a burst,
 * else `samplesPerPoll`, in rounds `spacingMs` apart (a server that answered gets
 * the next exchange; one that has been answering gets one retry for a lost
 * datagram), a selection after every round that brought a sample, then each
 * server's next poll. Stops, scheduling nothing, once `signal` aborts.
 * @internal
 */
export async function pollRound(
  due: readonly ServerRecord[],
  mono: MonotonicSource,
  signal: AbortSignal,
  env: RoundEnv,
): Promise<void> {
  const outcomes = new Map<ServerRecord, Outcome>();
  const start = mono.now();
  /** Exchanges still to send to each server in this poll. */
  const remaining = new Map<ServerRecord, number>();
  /** Retries left: a server that has been answering gets one if a datagram is lost. */
  const retries = new Map<ServerRecord, number>();
  /** Servers whose reach register already shows this poll (an accepted reply came). */
  const reached = new Set<ServerRecord>();
  for (const s of due) {
    s.lastPollAt = start;
    s.inconsistent = false;
    remaining.set(s, s.burst ? env.initialBurst : env.samplesPerPoll);
    retries.set(s, s.everOk && !s.lost ? 1 : 0);
  }
  let live = due;
  for (let round = 0; live.length > 0; round++) {
    if (round > 0 && env.spacingMs > 0) {
      await env.sleep(env.spacingMs, signal);
      if (signal.aborted) return;
    }
    const results = await Promise.all(live.map((s) => env.exchange(s, mono)));
    if (signal.aborted) return;
    let accepted = false;
    const next: ServerRecord[] = [];
    results.forEach((result, i) => {
      const s = live[i] as ServerRecord;
      const left = (remaining.get(s) ?? 1) - 1;
      remaining.set(s, left);
      const before = outcomes.get(s);
      if (result === 'ok') {
        accepted = true;
        // The first accepted reply shows in the reach register at once, not when the poll ends.
        if (!reached.has(s)) {
          reached.add(s);
          s.reach = ((s.reach << 1) | 1) & 0xff;
        }
        if (left > 0) next.push(s);
      } else if (result === 'failed' && before !== 'ok' && (retries.get(s) ?? 0) > 0) {
        // A lost datagram: ask once more, sampleSpacingMs later, rather than miss the
        // poll, so the server keeps its interval and stays in step with the others.
        retries.set(s, 0);
        remaining.set(s, Math.max(left, 1));
        next.push(s);
      }
      // Otherwise no more this poll: a server that timed out would hold every other
      // server's next round back by the timeout.
      // A RATE anywhere in the poll rate-limits it; else one accepted exchange makes it a success.
      if (before === undefined || OUTCOME_RANK[result] > OUTCOME_RANK[before]) {
        outcomes.set(s, result);
      }
    });
    live = next;
    if (accepted) env.select(mono, start);
  }
  const now = mono.now();
  for (const s of due) {
    const outcome = outcomes.get(s) ?? 'failed';
    // Replies that only answered requests from before a disruption say nothing about the server.
    if (!reached.has(s) && outcome !== 'void') s.reach = (s.reach << 1) & 0xff;
    reschedule(s, outcome, start, now, env);
  }
}

/**
 * Sets a server's next interval after a poll (the policy in docs/ntp.md, "Polling").
 * @internal
 */
export function reschedule(
  s: ServerRecord,
  outcome: Outcome,
  started: number,
  now: number,
  env: RoundEnv,
): void {
  if (s.stopped) {
    s.state = 'stopped';
    s.dueAt = Infinity;
    return;
  }
  const min = env.pollIntervalMs;
  let interval: number | undefined;
  if (outcome === 'rate') {
    // The server asks for fewer requests: at least double whatever it saw.
    s.rateFloorMs = Math.min(Math.max(2 * s.currentMs, 2 * min), MAX_RATE_INTERVAL_MS);
    s.state = 'backing-off';
    interval = s.everOk ? s.intervalMs : min;
  } else if (outcome === 'ok') {
    s.failures = 0;
    s.lost = false;
    s.burst = false;
    if (s.rateFloorMs > 0) {
      s.rateFloorMs /= 2;
      if (s.rateFloorMs <= s.intervalMs || s.rateFloorMs < 2 * min) s.rateFloorMs = 0;
    }
    s.intervalMs = s.inconsistent ? min : adapt(s, now, env);
    interval = s.intervalMs;
  } else if (outcome === 'void') {
    // Only replies to requests from before a disruption: ask again as soon as that is possible.
    s.dueAt = env.earliestPoll(s);
    return;
  } else {
    s.failures++;
    if (!s.everOk) {
      // Never answered: a quick retry off the grid; its first answer puts it on the grid.
      const retry = Math.min(min, STARTUP_RETRY_MS * 2 ** (s.failures - 1));
      const dueAt = now + retry * (1 + POLL_JITTER * env.random());
      setNext(s, Math.max(retry, s.rateFloorMs), Math.max(dueAt, env.earliestPoll(s)), started);
      return;
    } else {
      if (s.lost) {
        // Still silent after the loss: retry gently, up to a few minimum intervals apart.
        s.intervalMs = Math.min(s.intervalMs * 2, min * MAX_LOST_BACKOFF);
      } else if (s.failures >= LOSS_AFTER_POLLS) {
        s.lost = true;
        s.burst = true;
        s.intervalMs = min;
      } else {
        // A missed poll: ε grows until the next sample, so ask again sooner.
        s.intervalMs = Math.max(min, s.intervalMs / 2);
      }
      interval = s.intervalMs;
    }
  }
  const nominal = Math.max(interval ?? min, s.rateFloorMs);
  setNext(s, nominal, gridTime(nominal, started, now, s, env), started);
}

function setNext(s: ServerRecord, nominalMs: number, dueAt: number, started: number): void {
  s.previousMs = s.currentMs;
  s.currentMs = nominalMs;
  s.previousGapMs = s.currentGapMs;
  s.currentGapMs = dueAt - started;
  s.dueAt = dueAt;
}

/**
 * The grid tick for a server's next poll: the first tick at least the minimum
 * interval (and any `RATE` demand) after this poll started, and not in the past,
 * rounded up to a multiple of the server's interval in ticks. On the grid that
 * is exactly `interval / pollIntervalMs` ticks on; a server that just changed its
 * interval, or polled off the grid, falls in step with the others.
 */
function gridTime(
  nominalMs: number,
  started: number,
  now: number,
  s: ServerRecord,
  env: RoundEnv,
): number {
  const period = env.period;
  const ticks = Math.max(1, Math.ceil(nominalMs / env.pollIntervalMs - GRID_SLACK_MS));
  const earliest = Math.max(started + Math.max(env.pollIntervalMs, s.rateFloorMs), now);
  const first = Math.max(0, Math.ceil((earliest - GRID_SLACK_MS - env.gridStart) / period));
  return env.gridStart + Math.ceil(first / ticks) * ticks * period;
}

/**
 * The next adaptive interval of a server that just answered: double it while
 * the clock predicts that ε, averaged over twice the interval, stays under the
 * target and ε at its end under twice the target; halve it when the current
 * interval fails either test. Intervals are counted in grid periods, which are
 * up to 10% longer than the nominal interval.
 */
function adapt(s: ServerRecord, now: number, env: RoundEnv): number {
  const min = env.pollIntervalMs;
  const best = s.filter.best(now);
  if (best === undefined) return min;
  // The bound this server's vote gives the clock now, aged as the selection ages it.
  const errorMs = env.age(best, now).errorMs;
  const interval = s.intervalMs;
  const longer = 2 * interval;
  if (longer <= env.maxPollIntervalMs && keepsTarget(errorMs, longer, env)) return longer;
  if (interval > min && !keepsTarget(errorMs, interval, env)) return Math.max(min, interval / 2);
  return interval;
}

/**
 * Whether a sample with `errorMs` taken now keeps the clock on target for a
 * nominal interval: ε on average under the target (what commit-wait costs per
 * write), and at the interval's end, the worst a reader sees, under twice it.
 */
function keepsTarget(errorMs: number, nominalMs: number, env: RoundEnv): boolean {
  const target = env.targetUncertaintyMs;
  const intervalMs = nominalMs * (env.period / env.pollIntervalMs);
  return (
    meanPredicted(errorMs, intervalMs, env) <= target &&
    env.predict(errorMs, intervalMs) <= 2 * target
  );
}

/**
 * The ε a reader at a random moment of the next `intervalMs` sees on average, if
 * the clock's bound rests on a sample with `errorMs` taken now: what commit-wait
 * costs per write. Simpson's rule, exact for the clock's prediction (linear at
 * the drift bound, quadratic with a learned frequency) until the drift bound caps it.
 */
function meanPredicted(errorMs: number, intervalMs: number, env: RoundEnv): number {
  return (
    (errorMs + 4 * env.predict(errorMs, intervalMs / 2) + env.predict(errorMs, intervalMs)) / 6
  );
}
