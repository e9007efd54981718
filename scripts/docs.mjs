#!/usr/bin/env node
// `npm run docs`: regenerates the documentation's plots from real runs, and the
// API reference (TypeDoc, all five entry points) into docs/api/.
//
//   docs/img/sawtooth.svg          ε over time against a loopback NTP server, with
//                                  true time checked inside [earliest, latest]
//   docs/img/demo.svg              `chronobound demo`'s plot (ε per node, offsets)
//   docs/img/ntp-offset-error.svg  chronobound vs ntp-time-sync offset error
//                                  (bench/ntp-accuracy.bench.ts writes it)
//   docs/img/bench-*.svg           benchmark bars, peers measured in the same run
//   docs/api/                      TypeDoc HTML (git-ignored)
//
// Options: --no-plots, --no-bench (skip the benchmark runs, the slow part),
// --no-api, --sawtooth-s N (length of the sawtooth run, default 30).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const img = join(root, 'docs', 'img');
const work = join(root, '.tmp', 'docs');

const { values: flags } = parseArgs({
  options: {
    'no-plots': { type: 'boolean' },
    'no-bench': { type: 'boolean' },
    'no-api': { type: 'boolean' },
    'sawtooth-s': { type: 'string' },
  },
  strict: true,
});
const sawtoothSeconds = Number(flags['sawtooth-s'] ?? 30);
if (!(sawtoothSeconds > 0)) throw new Error(`--sawtooth-s must be a positive number of seconds`);

function step(name) {
  console.log(`\n== ${name}`);
}

function node(args, env = {}) {
  execFileSync(process.execPath, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
}

function bin(pkg, path) {
  return join(root, 'node_modules', pkg, path);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Builds dist/ (JavaScript only: the plots import it) and bundles the SVG writer. */
async function prepare() {
  step('build dist/ and the SVG writer');
  node([bin('tsup', 'dist/cli-default.js')], { CHRONOBOUND_TEST_BUILD: '1' });
  const { build } = await import('tsup');
  await build({
    entry: { svg: 'src/cli/svg.ts' },
    outDir: join(work, 'tools'),
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    dts: false,
    sourcemap: false,
    splitting: false,
    clean: true,
    silent: true,
    config: false,
  });
  return import(pathToFileURL(join(work, 'tools', 'svg.js')).href);
}

/**
 * The TrueTime sawtooth, measured: a TrueClock fed by ntpSource polls a loopback
 * server every 3 s; every 50 ms we read the clock and the server's true time.
 */
async function sawtooth(svg) {
  step(`sawtooth: ${sawtoothSeconds} s against a loopback NTP server`);
  const { TrueClock } = await import(pathToFileURL(join(root, 'dist/index.js')).href);
  const { ntpSource } = await import(pathToFileURL(join(root, 'dist/ntp/index.js')).href);
  const { createNtpServer } = await import(
    pathToFileURL(join(root, 'dist/testing/node/index.js')).href
  );
  const pollMs = 3000;
  const maxDriftPpm = 200;
  // Fixed delays: with jitter, a new sample is sometimes looser than the aged old
  // one and TrueClock (rightly) keeps the old one, which blurs the teeth.
  const server = await createNtpServer({ offsetMs: 120, requestDelayMs: 1, responseDelayMs: 2 });
  const clock = new TrueClock({
    source: ntpSource({
      servers: [server.address],
      pollIntervalMs: pollMs,
      samplesPerPoll: 1,
      sampleSpacingMs: 0,
    }),
    maxDriftPpm,
  });
  const points = [];
  let outside = 0;
  try {
    await clock.ready({ timeoutMs: 10_000 });
    const start = performance.now();
    while (performance.now() - start < sawtoothSeconds * 1000) {
      const before = performance.now();
      const r = clock.now();
      const after = performance.now();
      // True time at the reading lies between the server's clock at `before` and at `after`.
      const low = server.trueAt(before);
      const high = server.trueAt(after);
      if (r.earliest > high || r.latest < low) outside++;
      const truth = (low + high) / 2;
      points.push({
        t: (before - start) / 1000,
        eps: r.uncertaintyMs,
        lo: r.earliest - truth,
        hi: r.latest - truth,
        err: r.estimate - truth,
      });
      await sleep(50);
    }
  } finally {
    await clock.close();
    await server.close();
  }
  const subtitle =
    `Real run ${new Date().toISOString().slice(0, 10)} · loopback server at +120 ms, delays 1/2 ms · ` +
    `poll ${pollMs / 1000} s · drift bound ${maxDriftPpm} ppm · ` +
    `${points.length - outside}/${points.length} readings contain true time`;
  const epsChart = svg.lineChart({
    title: 'ε = (latest − earliest) / 2 over time: the TrueTime sawtooth',
    subtitle,
    xLabel: 'seconds',
    yLabel: 'ε (ms)',
    yInclude: [0],
    width: 860,
    lines: [{ name: 'ε', points: points.map((p) => [p.t, p.eps]) }],
  });
  const bandChart = svg.lineChart({
    title: '[earliest, latest] relative to true time: 0 must stay inside the band',
    xLabel: 'seconds',
    yLabel: 'ms from true time',
    width: 860,
    bands: [
      { name: '[earliest, latest] − true time', points: points.map((p) => [p.t, p.lo, p.hi]) },
    ],
    lines: [
      { name: 'true time', points: points.map((p) => [p.t, 0]), color: '#000000', dashed: true },
      { name: 'estimate − true time', points: points.map((p) => [p.t, p.err]) },
    ],
  });
  writeFileSync(join(img, 'sawtooth.svg'), svg.stackCharts([epsChart, bandChart]));
  const maxEps = Math.max(...points.map((p) => p.eps));
  const minEps = Math.min(...points.map((p) => p.eps));
  console.log(
    `${points.length} readings, ε from ${minEps.toFixed(3)} to ${maxEps.toFixed(3)} ms, ` +
      `${outside} outside the band → docs/img/sawtooth.svg`,
  );
  if (outside > 0) throw new Error(`${outside} readings did not contain true time`);
}

/** `chronobound demo`'s own plot, from the built CLI. */
function demoPlot() {
  step('chronobound demo (SQLite) → docs/img/demo.svg');
  node([join(root, 'dist/cli/main.js'), 'demo', '--plot', join(img, 'demo.svg')]);
}

/** Runs vitest bench on `files` and returns its JSON report. */
function runBench(files, name) {
  const out = join(work, `${name}.json`);
  node([bin('vitest', 'vitest.mjs'), 'bench', '--run', ...files, '--outputJson', out], {
    CHRONOBOUND_SKIP_BUILD: '1',
  });
  return JSON.parse(readFileSync(out, 'utf8'));
}

/** One bar chart per benchmark file: every group's tasks relative to the group's fastest. */
function benchBars(svg) {
  step('benchmarks: TrueClock and logical clocks against their peers (same run)');
  const charts = [
    { file: 'bench/truetime.bench.ts', out: 'bench-truetime.svg', title: 'Reading the clock' },
    {
      file: 'bench/logical.bench.ts',
      out: 'bench-logical.svg',
      title: 'Logical clocks vs tinybase and @actual-app/crdt',
    },
  ];
  for (const chart of charts) {
    const report = runBench([chart.file], chart.out.replace('.svg', ''));
    const groups = report.files.flatMap((f) => f.groups);
    const date = new Date().toISOString().slice(0, 10);
    const rendered = groups.map((g) => {
      const fastest = Math.max(...g.benchmarks.map((b) => b.hz));
      return svg.horizontalBarChart({
        title: g.fullName.split(' > ').at(-1),
        subtitle: `${chart.title} · vitest bench ${date}, same run · ops/s relative to the fastest (higher is better)`,
        xLabel: 'throughput relative to the fastest task in the group',
        bars: g.benchmarks.map((b) => ({
          label: b.name,
          value: b.hz / fastest,
          valueLabel: `${(b.hz / fastest).toFixed(2)}×`,
          color: /chronobound|TrueClock/.test(b.name) ? '#0072B2' : '#999999',
        })),
      });
    });
    writeFileSync(join(img, chart.out), svg.stackCharts(rendered));
    console.log(`→ docs/img/${chart.out}`);
  }
  step('NTP accuracy: chronobound vs ntp-time-sync (bench/ntp-accuracy.bench.ts)');
  // That benchmark measures both clients on the same server and writes
  // docs/img/ntp-offset-error.svg and bench/results/ntp-accuracy.md itself.
  node([bin('vitest', 'vitest.mjs'), 'bench', '--run', 'bench/ntp-accuracy.bench.ts'], {
    CHRONOBOUND_SKIP_BUILD: '1',
  });
}

function api() {
  step('API reference (TypeDoc) → docs/api/');
  node([bin('typedoc', 'bin/typedoc'), '--options', join(root, 'typedoc.json')]);
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
mkdirSync(img, { recursive: true });
if (flags['no-plots'] !== true) {
  const svg = await prepare();
  await sawtooth(svg);
  demoPlot();
  if (flags['no-bench'] !== true) benchBars(svg);
}
if (flags['no-api'] !== true) api();
console.log('\ndocs: done');
