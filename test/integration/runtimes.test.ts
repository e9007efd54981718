/**
 * chronobound on the other runtimes it is deployed to: Deno, Bun and workerd (the
 * runtime of Cloudflare Workers), installed from npm by scripts/runtimes.mjs (which
 * `npm test` runs first). Each runtime imports the built root entry `chronobound`
 * through the package's exports map (from an app directory whose
 * node_modules/chronobound links to this repository's dist/) and syncs a TrueClock
 * with httpTimeSource to a Node `timeEndpoint` on loopback, whose clock is 5 s ahead
 * of the machine's. Every reading must reach into the bracket of the Node server's
 * true time fetched just before and just after it.
 *
 * The frozen-clock case runs the same code with the runtime's clocks standing still
 * between I/O events, as on deployed Workers (fixtures/runtimes/stand-still.mjs):
 * the clock must be constructed without hanging, and its readings must stay the
 * same while nothing tells it that time passed, and grow once something does.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as core from '../../src/index.js';
import { TrueClock, httpTimeSource } from '../../src/index.js';
import { timeEndpoint } from '../../src/node/index.js';
import { referenceClock, serverTruth } from '../support/server-truth.js';
import { watchBurst } from './fixtures/runtimes/burst.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const fixtures = resolve(here, 'fixtures/runtimes');

/** The server is this far ahead of the machine's wall clock. */
const OFFSET_MS = 5_000;
/** What the server's reference claims about itself (ms). */
const SERVER_SAMPLE_ERROR_MS = 1;
/** TrueClock's default drift bound, which ε may grow at (ms per ms). */
const MAX_DRIFT = 200e-6;
/** What measureResolution assumes for a clock that did not tick (src/clock/system.ts). */
const UNTICKING_RESOLUTION_MS = 5;
/** A runtime that takes longer than this has hung (vitest's own limit is 60 s). */
const RUN_TIMEOUT_MS = 45_000;
/** Exchanges per poll of the Node client in the createTimeHandler cases. */
const BURST = 8;

type RuntimeName = 'deno' | 'bun' | 'workerd';
const RUNTIMES: readonly RuntimeName[] = ['deno', 'bun', 'workerd'];
/** What the runtime says it is (a case run by Node by mistake must fail). */
const IDENTITY: Record<RuntimeName, RegExp> = {
  deno: /^deno 2\./,
  bun: /^bun 1\./,
  workerd: /^Cloudflare-Workers$/,
};

const installed = JSON.parse(
  execFileSync(process.execPath, [resolve(root, 'scripts/runtimes.mjs'), '--json'], {
    encoding: 'utf8',
  }),
) as Partial<Record<RuntimeName, string>>;

/** The server's truth, by definition: Node's monotonic clock plus a fixed offset. */
const truth = serverTruth(OFFSET_MS);

interface Reading {
  readonly earliest: number;
  readonly latest: number;
  readonly estimate: number;
  readonly uncertaintyMs: number;
  readonly status: string;
}
interface BracketedReading extends Reading {
  readonly before: number;
  readonly after: number;
  /** The runtime's own Date.now() when it read the clock. */
  readonly wallMs: number;
}
interface SyncResult {
  readonly runtime: string;
  readonly resolutionMs: number;
  readonly sampleErrorMs: number;
  readonly readings: readonly BracketedReading[];
}
interface FrozenResult {
  readonly runtime: string;
  readonly constructMs: number;
  readonly stoodStillWhileConstructing: boolean;
  readonly resolutionMs: number;
  readonly busyRealMs: number;
  readonly stoodStillWhileWorking: boolean;
  readonly timerElapsedMs: number;
  readonly before: number;
  readonly after: number;
  readonly quiet: Reading;
  readonly afterWork: Reading;
  readonly afterTimer: Reading;
}

/** The interval reaches into the bracket of true times around the reading. */
function expectHonest(reading: Reading, before: number, after: number): void {
  expect(reading.status).toBe('synchronized');
  expect(reading.earliest).toBeLessThanOrEqual(after);
  expect(reading.latest).toBeGreaterThanOrEqual(before);
}

interface Exit {
  readonly stdout: string;
  readonly stderr: string;
}

function collect(stream: Readable | null): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => (text += chunk));
  return () => text;
}

/** Runs a command to completion; rejects with its output unless it exits 0. */
function runToEnd(command: string, args: readonly string[], cwd: string): Promise<Exit> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: runtimeEnv(cwd),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: RUN_TIMEOUT_MS,
    });
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise({ stdout: stdout(), stderr: stderr() });
      else reject(new Error(`${command} exited ${code ?? signal}:\n${stderr()}${stdout()}`));
    });
  });
}

/** Keeps the runtimes' caches inside the test's app directory. */
function runtimeEnv(app: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DENO_DIR: join(app, '.deno'),
    DENO_NO_UPDATE_CHECK: '1',
    NO_COLOR: '1',
    BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0',
  };
}

/** The last line of output, parsed. */
function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? '') as T;
}

/** Resolves with the first JSON line a long-running child prints on `stream`. */
function firstJsonLine<T>(child: ChildProcess, stream: Readable, what: string): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    let buffered = '';
    const stderr = collect(child.stderr);
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      stream.off('data', onData);
      try {
        resolvePromise(JSON.parse(buffered.slice(0, newline)) as T);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    };
    stream.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      reject(new Error(`${what} exited ${code ?? signal} before it was ready:\n${stderr()}`)),
    );
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

let app: string;
let server: Server;
let base: string;
let reference: ReturnType<typeof referenceClock>;

/** An app directory that depends on chronobound (a link to this repository). */
function makeApp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-runtimes-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'chronobound'), 'dir');
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ private: true, type: 'module', dependencies: { chronobound: '*' } }),
  );
  for (const file of readdirSync(fixtures)) copyFileSync(join(fixtures, file), join(dir, file));
  return dir;
}

beforeAll(async () => {
  app = makeApp();
  reference = referenceClock(truth, SERVER_SAMPLE_ERROR_MS);
  const time = timeEndpoint(reference.clock);
  server = createServer((req, res) =>
    time(req, res, () => {
      if (req.method === 'GET' && req.url === '/truth') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end(JSON.stringify({ truth: truth.now() }));
      } else {
        res.writeHead(404).end();
      }
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await reference?.close();
  await new Promise((r) => server?.close(r));
  if (app) rmSync(app, { recursive: true, force: true });
});

/** The command line that runs `script` from the app directory on Deno or Bun. */
function scriptArgs(runtime: 'deno' | 'bun', script: string, ...args: string[]): string[] {
  return runtime === 'deno'
    ? [
        'run',
        '--no-lock',
        '--no-prompt',
        '--allow-net=127.0.0.1',
        `--allow-read=${app},${root}`,
        script,
        ...args,
      ]
    : ['--no-install', script, ...args];
}

/** Runs a case of fixtures/runtimes/cases.mjs on Deno or Bun. */
async function runCli<T>(runtime: 'deno' | 'bun', binary: string, name: string): Promise<T> {
  const { stdout } = await runToEnd(binary, scriptArgs(runtime, 'cli.mjs', name, base), app);
  return lastJson<T>(stdout);
}

let workerBundled: Promise<void> | undefined;

/** Bundles worker.mjs (and the library, through the exports map) as workerd's worker.js. */
function bundleWorker(): Promise<void> {
  workerBundled ??= build({
    entryPoints: [join(app, 'worker.mjs')],
    outfile: join(app, 'worker.js'),
    absWorkingDir: app,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['workerd', 'worker', 'browser'],
    target: 'es2022',
    logLevel: 'silent',
  }).then(() => undefined);
  return workerBundled;
}

/**
 * Runs a case in a fresh workerd (a fresh isolate: the timer resolution is measured
 * once per isolate, and the frozen case must be the one to measure it).
 */
async function runWorkerd<T>(binary: string, name: string): Promise<T> {
  await bundleWorker();
  const child = spawn(binary, ['serve', join(app, 'workerd.capnp'), '--control-fd=3'], {
    cwd: app,
    env: runtimeEnv(app),
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  try {
    const control = child.stdio[3] as Readable;
    const listening = await firstJsonLine<{ event: string; port: number }>(
      child,
      control,
      'workerd',
    );
    expect(listening.event).toBe('listen');
    const url = new URL(`http://127.0.0.1:${listening.port}/`);
    url.searchParams.set('case', name);
    url.searchParams.set('server', base);
    const response = await fetch(url, { signal: AbortSignal.timeout(RUN_TIMEOUT_MS) });
    const text = await response.text();
    if (!response.ok) throw new Error(`workerd answered ${response.status}:\n${text}`);
    return JSON.parse(text) as T;
  } finally {
    await stop(child);
  }
}

function runCase<T>(runtime: RuntimeName, binary: string, name: string): Promise<T> {
  return runtime === 'workerd' ? runWorkerd<T>(binary, name) : runCli<T>(runtime, binary, name);
}

for (const runtime of RUNTIMES) {
  const binary = installed[runtime];
  if (binary === undefined) {
    if (process.env['CI']) {
      describe(runtime, () => {
        it('is installed (CI requires it: run node scripts/runtimes.mjs)', () => {
          throw new Error(
            `${runtime} is missing; install it with node scripts/runtimes.mjs (npm test does this first)`,
          );
        });
      });
    } else {
      describe.skip(`${runtime} (not installed: node scripts/runtimes.mjs)`, () => {});
    }
    continue;
  }

  describe(runtime, () => {
    it('imports the root entry and syncs to a Node timeEndpoint; every reading contains the server time', async () => {
      const result = await runCase<SyncResult>(runtime, binary, 'sync');
      expect(result.runtime).toMatch(IDENTITY[runtime]);
      expect(result.resolutionMs).toBeGreaterThan(0);
      // Deno and Bun tick in µs; workerd's performance.now() is Date.now(), in whole
      // ms that advance by several at a time on a busy machine.
      expect(result.resolutionMs).toBeLessThanOrEqual(runtime === 'workerd' ? 50 : 1);
      expect(result.sampleErrorMs).toBeGreaterThanOrEqual(SERVER_SAMPLE_ERROR_MS);
      expect(result.readings).toHaveLength(10);
      for (const reading of result.readings) {
        expectHonest(reading, reading.before, reading.after);
        expect(reading.uncertaintyMs).toBeLessThan(50);
        // The server's time, not the runtime's own clock, which is 5 s behind it.
        expect(Math.abs(reading.estimate - reading.wallMs - OFFSET_MS)).toBeLessThan(1000);
      }
    });

    it('with clocks that stand still between I/O: construction is bounded, ε grows only with evidence', async () => {
      const result = await runCase<FrozenResult>(runtime, binary, 'frozen');
      expect(result.runtime).toMatch(IDENTITY[runtime]);
      // Constructed while time stood still: the calibration gave up instead of hanging.
      expect(result.stoodStillWhileConstructing).toBe(true);
      expect(result.constructMs).toBeLessThan(5_000);
      expect(result.resolutionMs).toBe(UNTICKING_RESOLUTION_MS);
      // 30 ms of computation with no I/O: nothing says time passed, so nothing changes.
      expect(result.stoodStillWhileWorking).toBe(true);
      expect(result.busyRealMs).toBeGreaterThanOrEqual(30);
      expect(result.afterWork).toEqual(result.quiet);
      // A timer fired: time moved, and ε grew with it, by no more than the drift bound.
      expect(result.timerElapsedMs).toBeGreaterThanOrEqual(90);
      const grownMs = result.afterTimer.uncertaintyMs - result.afterWork.uncertaintyMs;
      expect(grownMs).toBeGreaterThan(0);
      expect(grownMs).toBeLessThanOrEqual(MAX_DRIFT * result.timerElapsedMs + 1e-6);
      for (const reading of [result.quiet, result.afterWork, result.afterTimer]) {
        expectHonest(reading, result.before, result.after);
      }
    });
  });
}

/**
 * createTimeHandler (the core's Fetch-API time handler) served from Deno and Bun,
 * with a Node client syncing to it. The runtime's own clock syncs to the Node
 * server first, so the chain is Node's truth → runtime → Node client, and the
 * client's readings must contain Node's truth. Runs once src/index.ts exports
 * createTimeHandler.
 */
const handlerLanded = typeof (core as Record<string, unknown>)['createTimeHandler'] === 'function';

for (const runtime of ['deno', 'bun'] as const) {
  const name = `${runtime} serves createTimeHandler(clock); a Node client syncs to it`;
  const binary = installed[runtime];
  if (!handlerLanded || binary === undefined) {
    it.todo(name);
    continue;
  }
  it(name, async () => {
    const child = spawn(binary, scriptArgs(runtime, 'serve.mjs', base), {
      cwd: app,
      env: runtimeEnv(app),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let client: TrueClock | undefined;
    try {
      const { listening } = await firstJsonLine<{ listening: number }>(
        child,
        child.stdout,
        runtime,
      );
      const { source, burstDone } = watchBurst(
        httpTimeSource({
          url: `http://127.0.0.1:${listening}/time`,
          samples: BURST,
          pollIntervalMs: 60_000,
        }),
        BURST,
      );
      client = new TrueClock({ source });
      await client.ready({ timeoutMs: 20_000 });
      await burstDone;
      for (let i = 0; i < 10; i++) {
        const before = truth.now();
        const reading = client.now();
        const after = truth.now();
        expectHonest(reading, before, after);
        expect(Math.abs(reading.estimate - Date.now() - OFFSET_MS)).toBeLessThan(1000);
      }
    } finally {
      await client?.close();
      await stop(child);
    }
  });
}
