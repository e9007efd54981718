/**
 * How `ntpSource` ages its servers' votes and combines them: each vote aged by
 * the subscribing clock's model where it can vouch for it (else by the drift
 * bound), the selection across servers, and the sample it hands on.
 *
 * @module
 */
import { EPOCH_ROUNDING } from '../_internals/rounding.js';
import { agedBound } from '../sources/exchange.js';
import type {
  AgeableSample,
  AgedSample,
  SourceContext,
  SourceProblemReason,
} from '../sources/types.js';
import type { SyncSample } from '../clock/types.js';
import type { NtpExchange } from './reply-validation.js';
import { selectOffset, type Selection } from './select.js';
import { majorityLeap, type ServerRecord } from './source-server.js';

/**
 * Where a kept exchange's offset lies at `at`: aged by the clock's model
 * (`SourceContext.ageSample`), which moves it by the learned rate and grows its
 * bound by what is unknown about that rate, else by the drift bound. A context
 * that cannot say, or says something wider than the drift bound, gets the drift
 * bound; so does a source with its own `maxDriftPpm` (the clock's model assumes
 * the clock's bound).
 * @internal
 */
export function ageVote(
  context: SourceContext | undefined,
  maxDriftPpm: number,
  sample: AgeableSample,
  at: number,
): AgedSample {
  const drifted = agedBound(sample, at, maxDriftPpm * 1e-6);
  if (context?.ageSample !== undefined && at >= sample.monotonicAt) {
    try {
      const aged = context.ageSample(sample, at);
      if (Number.isFinite(aged.offsetMs) && aged.errorMs >= 0 && aged.errorMs <= drifted) {
        return aged;
      }
    } catch {
      // A model that cannot say is no licence to trust a vote more.
    }
  }
  return { offsetMs: sample.offsetMs, errorMs: drifted };
}

/**
 * The ε the clock predicts for a sample with bound `errorMs` after `elapsedMs`:
 * the clock's model, else the drift bound. A model that cannot say predicts
 * `Infinity`: no licence to poll less.
 * @internal
 */
export function predictWith(
  context: SourceContext | undefined,
  maxDriftPpm: number,
  errorMs: number,
  elapsedMs: number,
): number {
  if (context === undefined) return errorMs + maxDriftPpm * 1e-6 * elapsedMs;
  try {
    const predicted = context.predictUncertaintyMs(errorMs, elapsedMs);
    return typeof predicted === 'number' && !Number.isNaN(predicted)
      ? Math.max(predicted, errorMs)
      : Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * What a selection needs from its source.
 * @internal
 */
export interface SelectEnv {
  readonly name: string;
  readonly servers: readonly ServerRecord[];
  readonly maxRootDistanceMs: number;
  readonly maxDriftPpm: number;
  readonly maxFalsetickers: number | undefined;
  age(sample: AgeableSample, at: number): AgedSample;
  problem(reason: SourceProblemReason, message: string): void;
}

/**
 * Selects across the servers' best votes at `now`, marks each server truechimer
 * or falseticker, and reports `no-majority` and `falseticker` problems.
 *
 * @returns The selection, and when it succeeded the sample to hand on and
 *   whether every vote was gathered in the poll that started at `pollStart`.
 * @internal
 */
export function selectVotes(
  now: number,
  pollStart: number,
  env: SelectEnv,
): { readonly selection: Selection; readonly sample?: SyncSample; readonly fresh: boolean } {
  // Votes go by the server's configured name: an NTS exchange names the NTP server
  // the key exchange gave, not the NTS-KE server that was configured.
  const named: { readonly id: string; readonly vote: NtpExchange }[] = [];
  const candidates: { id: string; monotonicAt: number; offsetMs: number; errorMs: number }[] = [];
  let evidenceFrom = Infinity;
  let fresh = true;
  for (const s of env.servers) {
    if (s.stopped) continue;
    const best = s.filter.best(now);
    // A vote whose aged bound passed the limit is too stale to count.
    if (best === undefined) continue;
    const bestAged = env.age(best, now);
    if (!(bestAged.errorMs <= env.maxRootDistanceMs)) continue;
    const vote = narrowVote(s.filter.samples, best, now, env, bestAged);
    named.push({ id: s.name, vote: best });
    candidates.push({ id: s.name, monotonicAt: now, ...vote.bound });
    // Every vote shapes the hull, so the evidence is as old as the oldest request behind any vote.
    evidenceFrom = Math.min(evidenceFrom, vote.evidenceFrom);
    fresh &&= best.t1 >= pollStart;
  }
  // Every configured server counts towards how many may lie, answering or not.
  const f = env.maxFalsetickers;
  const selection = selectOffset(candidates, {
    maxDriftPpm: env.maxDriftPpm,
    age: (c, at) => env.age(c, at),
    configured: env.servers.length,
    ...(f !== undefined ? { maxFalsetickers: f } : {}),
  });
  for (const s of env.servers) s.selection = undefined;
  if (!selection.ok) {
    if (selection.reason === 'no-majority') {
      env.problem(
        'no-majority',
        (candidates.length <= selection.maxFalsetickers
          ? `${candidates.length} of ${selection.configured} servers answered, and up to ` +
            `${selection.maxFalsetickers} may be wrong: `
          : `no offset is supported by ${selection.required} of the ${candidates.length} ` +
            `answering servers (${selection.configured} configured): `) +
          selection.intervals
            .map((i) => `${i.id} ±${((i.high - i.low) / 2).toFixed(3)} ms`)
            .join(', '),
      );
    }
    return { selection, fresh };
  }
  for (const s of env.servers) {
    if (selection.truechimers.includes(s.name)) s.selection = 'truechimer';
    else if (selection.falsetickers.includes(s.name)) s.selection = 'falseticker';
  }
  if (selection.falsetickers.length > 0) {
    env.problem(
      'falseticker',
      `cast out ${selection.falsetickers.join(', ')}: outside the majority's range`,
    );
  }
  // A leap second counts when more than half of the truechimers announce it.
  const agreed = named.filter((n) => selection.truechimers.includes(n.id));
  const leapSecond = majorityLeap(agreed.map((n) => n.vote));
  const sample: SyncSample = {
    monotonicAt: selection.monotonicAt,
    offsetMs: selection.offsetMs,
    errorMs: selection.errorMs,
    source: env.name,
    evidenceFrom,
    ...(leapSecond === undefined ? {} : { leapSecond }),
  };
  return { selection, sample, fresh };
}

/**
 * A server's vote at `now`: the intersection of all its kept replies, each aged
 * to `now` as the clock ages them. Each aged reply holds the true offset
 * whenever the clock's model holds, so their intersection does too, and it is
 * at least as tight as the best reply alone (on a jittery path, tighter: the
 * request and the reply leg each have their own luckiest exchange). Replies
 * whose aged bounds do not all overlap mean the model failed somewhere between
 * them: the vote is then the best reply alone, as the RFC 5905 filter picks it.
 * `bestAged` is `best` aged to `now`, when the caller has it already.
 * @internal
 */
export function narrowVote(
  kept: readonly NtpExchange[],
  best: NtpExchange,
  now: number,
  env: Pick<SelectEnv, 'age'>,
  bestAged: AgedSample = env.age(best, now),
): { readonly bound: AgedSample; readonly evidenceFrom: number } {
  const alone = { bound: bestAged, evidenceFrom: best.t1 };
  let low = -Infinity;
  let high = Infinity;
  let evidenceFrom = Infinity;
  for (const reply of kept) {
    if (reply.monotonicAt > now) continue;
    const aged = reply === best ? bestAged : env.age(reply, now);
    const replyLow = aged.offsetMs - aged.errorMs;
    const replyHigh = aged.offsetMs + aged.errorMs;
    // A reply that does not narrow the vote is no part of its evidence.
    if (!(replyLow > low) && !(replyHigh < high)) continue;
    low = Math.max(low, replyLow);
    high = Math.min(high, replyHigh);
    evidenceFrom = Math.min(evidenceFrom, reply.t1);
  }
  if (!(low <= high)) return alone;
  const offsetMs = (low + high) / 2;
  // Epoch-scale offsets: the ends and the midpoint round, by a few ulps of the offset.
  const errorMs = (high - low) / 2 + Math.abs(offsetMs) * EPOCH_ROUNDING;
  return errorMs < alone.bound.errorMs ? { bound: { offsetMs, errorMs }, evidenceFrom } : alone;
}
