/**
 * The bound over hours, in virtual time: 24 simulated hours of `ntpSource` →
 * `TrueClock` on a `SimulatedClock` whose oscillator is up to ±150 ppm off and
 * wanders with temperature, talking to three simulated servers over a LAN path
 * (δ 0.2–0.5 ms) or a WAN path (≈20 ms ± jitter, 1% loss); the third server
 * disappears for hour 10. Each path runs twice in the same process:
 *
 * - fixed: the drift bound alone (`maxWanderPpmPerHour: Infinity`) and the old
 *   polling (4 exchanges per server every 64 s);
 * - learned: the defaults (learned frequency, one exchange per poll after the
 *   initial burst, adaptive poll interval between 64 s and 1024 s).
 *
 * Reports ε p50/p99/max after a 10-minute warm-up, ε growth between samples,
 * requests per server per hour, the longest poll interval reached, and
 * containment (every reading checked against the simulation's true time). Then,
 * in real time on loopback, the same reference read through a real chronyd
 * (`chronySource`, ClockBound's formula) next to `ntpSource`: the ε ratio.
 * Prints the tables (recorded in bench/README.md) and writes
 * docs/img/long-run-epsilon.svg.
 *
 *   npx vitest bench --run bench/long-run.bench.ts
 *
 * LONG_RUN_HOURS (default 24) sets the simulated length; LONG_RUN_CHRONY=0 skips
 * the real-time chronyd comparison.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { TrueClock, type TimeReading } from '../src/index.js';
import { chronySource, ntpSource, type NtpSourceOptions } from '../src/ntp/index.js';
import {
  SimulatedClock,
  createSimulatedNtpNetwork,
  type SimulatedNtpServerOptions,
} from '../src/testing/index.js';
import { createNtpServer } from '../src/testing/node/index.js';
import { mulberry32 } from '../src/_internals/prng.js';
import { startChronyd, waitForTracking } from '../test/integration/helpers/chronyd.js';
import { lineChart } from '../src/cli/svg.js';

const HOURS = Number(process.env['LONG_RUN_HOURS'] ?? 24);
const WITH_CHRONY = process.env['LONG_RUN_CHRONY'] !== '0';
const HOUR = 3_600_000;
const WARM_UP_MS = 10 * 60_000;
const READ_EVERY_MS = 10_000;
/** Mid-March: far from the ends of June and December, where leap smears may start. */
const START = Date.UTC(2026, 2, 10);

interface Path {
  readonly label: string;
  readonly server: SimulatedNtpServerOptions;
  /** Run the learned model only (the path exists to show the poll reaching its maximum). */
  readonly learnedOnly?: boolean;
}

const paths: readonly Path[] = [
  {
    label: 'LAN',
    server: { requestDelayMs: 0.1, responseDelayMs: 0.1, jitterMs: 0.15 },
  },
  {
    label: 'WAN',
    server: { requestDelayMs: 8, responseDelayMs: 8, jitterMs: 4, lossRate: 0.01 },
  },
  {
    // A quiet LAN or a cloud provider's local time service: δ 0.1–0.14 ms.
    label: 'quiet LAN',
    server: { requestDelayMs: 0.05, responseDelayMs: 0.05, jitterMs: 0.02 },
    learnedOnly: true,
  },
];

interface Model {
  readonly label: string;
  readonly source: Partial<NtpSourceOptions>;
  readonly maxWanderPpmPerHour?: number;
}

const models: readonly Model[] = [
  {
    label: 'fixed',
    source: { samplesPerPoll: 4, initialBurst: 4, maxPollIntervalMs: 64_000 },
    maxWanderPpmPerHour: Infinity,
  },
  { label: 'learned', source: {} },
];

/** A crystal 120 ppm fast that wanders with the room (24 h) and with load (1 h): ≤ 3.7 ppm/h. */
function driftPpmAt(ms: number): number {
  return (
    120 +
    2 * Math.sin((2 * Math.PI * ms) / (24 * HOUR)) +
    0.5 * Math.sin((2 * Math.PI * ms) / HOUR + 1)
  );
}

interface Result {
  readonly path: string;
  readonly model: string;
  readonly readings: number;
  readonly misses: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly growthP99Ppm: number;
  readonly requestsPerServerHour: number;
  /** Requests per poll of the servers that never went away, after the initial burst. */
  readonly requestsPerPoll: number;
  /** Median interval between the polls of those servers (s). */
  readonly medianPollS: number;
  readonly longestPollS: number;
  readonly bestSampleErrorMs: number;
  readonly series: readonly { readonly hour: number; readonly epsilonMs: number }[];
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function simulate(path: Path, model: Model): Promise<Result> {
  const sim = new SimulatedClock({ trueTimeMs: START, driftPpm: driftPpmAt(0) });
  const network = createSimulatedNtpNetwork(sim, { seed: 7 });
  const servers = [0, 1, 2].map(() => network.addServer(path.server));
  const source = ntpSource({
    servers: servers.map((s) => s.address),
    transport: network,
    random: mulberry32(11),
    scheduler: sim,
    wall: sim.wall,
    ...model.source,
  });
  const clock = new TrueClock({
    source,
    monotonic: sim.monotonic,
    wall: sim.wall,
    scheduler: sim,
    maxUncertaintyMs: Infinity,
    ...(model.maxWanderPpmPerHour === undefined
      ? {}
      : { maxWanderPpmPerHour: model.maxWanderPpmPerHour }),
  });
  const epsilons: number[] = [];
  const growths: number[] = [];
  const series: { hour: number; epsilonMs: number }[] = [];
  let misses = 0;
  let readings = 0;
  let longestPoll = 0;
  let bestSampleError = Infinity;
  let previous: { reading: TimeReading; at: number; sampleAt: number } | undefined;
  for (let t = 0; t < HOURS * HOUR; t += 1000) {
    if (t === 10 * HOUR) servers[2]?.stop();
    if (t === 11 * HOUR) servers[2]?.start();
    await sim.advanceAsync(1000);
    sim.setDriftPpm(driftPpmAt(t + 1000));
    if ((t + 1000) % READ_EVERY_MS !== 0) continue;
    const reading = clock.now();
    const truth = sim.trueNow();
    readings++;
    if (reading.status !== 'unsynchronized' && (truth < reading.earliest || truth > reading.latest))
      misses++;
    const sample = clock.sample;
    for (const s of source.servers()) longestPoll = Math.max(longestPoll, s.pollIntervalMs);
    if (sample !== undefined) bestSampleError = Math.min(bestSampleError, sample.errorMs);
    if (t + 1000 < WARM_UP_MS || sample === undefined) continue;
    epsilons.push(reading.uncertaintyMs);
    if ((t + 1000) % 60_000 === 0)
      series.push({ hour: (t + 1000) / HOUR, epsilonMs: reading.uncertaintyMs });
    const mono = sim.monotonic.now();
    if (previous !== undefined && previous.sampleAt === sample.monotonicAt) {
      growths.push(
        ((reading.uncertaintyMs - previous.reading.uncertaintyMs) / (mono - previous.at)) * 1e6,
      );
    }
    previous = { reading, at: mono, sampleAt: sample.monotonicAt };
  }
  const requests = servers.reduce((n, s) => n + s.stats.requests, 0);
  // A poll is a cluster of requests to one server: the burst's are 2 s apart, polls ≥ 64 s.
  let polls = 0;
  let steady = 0;
  const gaps: number[] = [];
  for (const s of servers.slice(0, 2)) {
    // Monotonic send times; the initial burst is over after the first minute.
    const times = s.requestTimes.filter((t) => t > 61_000);
    steady += times.length;
    let last = -Infinity;
    for (const t of times) {
      if (t - last > 30_000) {
        polls++;
        if (last !== -Infinity) gaps.push(t - last);
      }
      last = t;
    }
  }
  gaps.sort((a, b) => a - b);
  await clock.close();
  const sorted = [...epsilons].sort((a, b) => a - b);
  const growthSorted = [...growths].sort((a, b) => a - b);
  return {
    path: path.label,
    model: model.label,
    readings,
    misses,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    growthP99Ppm: quantile(growthSorted, 0.99),
    requestsPerServerHour: requests / servers.length / HOURS,
    requestsPerPoll: steady / polls,
    medianPollS: quantile(gaps, 0.5) / 1000,
    longestPollS: longestPoll / 1000,
    bestSampleErrorMs: bestSampleError,
    series,
  };
}

interface ChronyComparison {
  readonly seconds: number;
  readonly chronyMedianMs: number;
  readonly ntpMedianMs: number;
}

/** Real time, loopback: the same reference through chronyd + chronySource and through ntpSource. */
async function compareWithChrony(): Promise<ChronyComparison> {
  const reference = await createNtpServer();
  const chronyd = await startChronyd({
    localStratum: false,
    serveNtp: false,
    extraConfig: [`server 127.0.0.1 port ${reference.port} iburst minpoll 0 maxpoll 0`],
  });
  try {
    await waitForTracking(chronyd.cmdPort, (t) => t.leapStatus !== 3 && t.stratum > 0);
    const viaChrony = new TrueClock({ source: chronySource({ port: chronyd.cmdPort }) });
    const viaNtp = new TrueClock({
      source: ntpSource({
        servers: [reference.address],
        pollIntervalMs: 1000,
        maxPollIntervalMs: 1000,
      }),
    });
    await Promise.all([
      viaChrony.ready({ timeoutMs: 20_000 }),
      viaNtp.ready({ timeoutMs: 20_000 }),
    ]);
    const a: number[] = [];
    const b: number[] = [];
    const seconds = 30;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      a.push(viaChrony.now().uncertaintyMs);
      b.push(viaNtp.now().uncertaintyMs);
    }
    await Promise.all([viaChrony.close(), viaNtp.close()]);
    a.sort((x, y) => x - y);
    b.sort((x, y) => x - y);
    return { seconds, chronyMedianMs: quantile(a, 0.5), ntpMedianMs: quantile(b, 0.5) };
  } finally {
    await chronyd.stop();
    await reference.close();
  }
}

const results: Result[] = [];
let chrony: ChronyComparison | undefined;

beforeAll(async () => {
  for (const path of paths) {
    for (const model of models) {
      if (path.learnedOnly !== true || model.label === 'learned') {
        results.push(await simulate(path, model));
      }
    }
  }
  if (WITH_CHRONY) chrony = await compareWithChrony();
}, 1_800_000);

afterAll(() => {
  const ms = (n: number): string => n.toFixed(3);
  const rows = results.map(
    (r) =>
      `| ${r.path} | ${r.model} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.growthP99Ppm.toFixed(1)} | ` +
      `${r.requestsPerServerHour.toFixed(1)} | ${r.requestsPerPoll.toFixed(2)} | ${r.medianPollS.toFixed(0)} | ${r.longestPollS.toFixed(0)} | ${r.misses} of ${r.readings} |`,
  );
  const lines = [
    `${HOURS} simulated hours, reading every ${READ_EVERY_MS / 1000} s; ε after a ${WARM_UP_MS / 60_000}-minute warm-up:`,
    '',
    '| path | model | ε p50 (ms) | ε p99 (ms) | ε max (ms) | ε growth p99 (ppm) | requests / server / h | requests / poll | median poll (s) | longest poll (s) | readings outside truth |',
    '| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
    ...rows,
    '',
    ...results.map(
      (r) =>
        `${r.path} ${r.model}: best sample bound ${ms(r.bestSampleErrorMs)} ms, p50 / best = ${(r.p50 / r.bestSampleErrorMs).toFixed(2)}`,
    ),
  ];
  if (chrony !== undefined) {
    lines.push(
      '',
      `Real time, loopback, ${chrony.seconds} s: ε median via chronyd + chronySource ${ms(chrony.chronyMedianMs)} ms, ` +
        `via ntpSource ${ms(chrony.ntpMedianMs)} ms, ratio ${(chrony.chronyMedianMs / chrony.ntpMedianMs).toFixed(2)}`,
    );
  }
  const markdown = lines.join('\n');
  console.log(`\n${markdown}\n`);
  const root = fileURLToPath(new URL('..', import.meta.url));
  mkdirSync(`${root}bench/results`, { recursive: true });
  writeFileSync(`${root}bench/results/long-run.md`, `${markdown}\n`);
  const lan = results.filter((r) => r.path === 'LAN');
  writeFileSync(
    `${root}docs/img/long-run-epsilon.svg`,
    lineChart({
      title: `ε over ${HOURS} simulated hours, LAN path: the drift bound alone vs the learned frequency`,
      subtitle:
        'three servers, one gone for hour 10; oscillator 120 ppm fast, wandering ≤ 3.7 ppm/h',
      xLabel: 'simulated hours',
      yLabel: 'ε (ms)',
      yInclude: [0],
      lines: lan.map((r) => ({
        name:
          r.model === 'fixed'
            ? 'drift bound alone, 4 exchanges / 64 s'
            : 'learned frequency, adaptive poll',
        points: r.series.map((p) => [p.hour, p.epsilonMs] as const),
      })),
    }),
  );
});

describe('long run', () => {
  bench('one simulated minute of the learned model, LAN', async () => {
    const sim = new SimulatedClock({ trueTimeMs: START });
    const network = createSimulatedNtpNetwork(sim, { seed: 3 });
    const server = network.addServer(paths[0]?.server ?? {});
    const clock = new TrueClock({
      source: ntpSource({
        servers: [server.address],
        transport: network,
        scheduler: sim,
        wall: sim.wall,
      }),
      monotonic: sim.monotonic,
      wall: sim.wall,
      scheduler: sim,
    });
    await sim.advanceAsync(60_000);
    await clock.close();
  });
});
