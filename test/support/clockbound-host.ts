/**
 * One ClockBound clock per host, as `chronobound daemon` runs it, for the tests
 * and the benchmark that check what other processes read: a writer (a
 * `TrueClock` on a loopback NTP server, publishing the segment every 100 ms)
 * and readers in other processes (the built package from dist/, each reading
 * bracketed by `process.hrtime.bigint()`, which is `CLOCK_MONOTONIC` in every
 * process).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TrueClock } from '../../src/index.js';
import { publishClockbound, type ClockboundPublisher } from '../../src/node/index.js';
import { ntpSource } from '../../src/ntp/index.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { recordingUdpTransport } from './recording-transport.js';

/** A built entry of the package, as a `file:` URL a child process can import. */
export const distUrl = (entry: string): string =>
  pathToFileURL(join(import.meta.dirname, '..', '..', 'dist', entry)).href;

/** A segment path in a fresh temp directory. */
export interface TempSegment {
  /** `<temp dir>/shm0`, not created yet. */
  readonly path: string;
  /** Removes the directory and all in it. */
  remove(): void;
}

/**
 * A fresh temp directory for one segment.
 *
 * @example
 * ```ts
 * const segment = tempSegment();
 * const writer = ClockboundSegmentWriter.open(segment.path);
 * // …
 * segment.remove();
 * ```
 */
export function tempSegment(): TempSegment {
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-segment-'));
  return { path: join(dir, 'shm0'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What {@link startClockboundWriter} runs. */
export interface ClockboundWriter {
  /** The segment's path, in a temp directory that {@link ClockboundWriter.close} removes. */
  readonly path: string;
  /** The loopback NTP server the writer's clock follows. */
  readonly ntp: LoopbackNtpServer;
  readonly clock: TrueClock;
  readonly publisher: ClockboundPublisher;
  /** Datagrams the writer's NTP client has sent so far. */
  sent(): number;
  close(): Promise<void>;
}

/**
 * Starts a loopback NTP server `serverOffsetMs` ahead of this host and a
 * `TrueClock` on it (one exchange to start, then one a minute, through a
 * recording transport), publishing a segment every 100 ms; resolves once the
 * clock is ready.
 *
 * @example
 * ```ts
 * const writer = await startClockboundWriter(25);
 * const reader = new TrueClock({ source: clockboundSource({ path: writer.path }) });
 * ```
 * @throws Error when the clock is not ready within 30 s.
 */
export async function startClockboundWriter(serverOffsetMs: number): Promise<ClockboundWriter> {
  const segment = tempSegment();
  const { path } = segment;
  const ntp = await createNtpServer({ offsetMs: serverOffsetMs });
  const transport = recordingUdpTransport();
  const clock = new TrueClock({
    // One exchange to start, then one a minute: no poll falls inside a test.
    source: ntpSource({
      servers: [ntp.address],
      transport,
      initialBurst: 1,
      pollIntervalMs: 60_000,
      maxPollIntervalMs: 60_000,
    }),
    maxUncertaintyMs: 1000,
  });
  const publisher = publishClockbound(clock, { path, updateMs: 100, maxUncertaintyMs: 1000 });
  const close = async (): Promise<void> => {
    await publisher.close();
    await clock.close();
    await ntp.close();
    segment.remove();
  };
  try {
    await clock.ready({ timeoutMs: 30_000 });
  } catch (error) {
    await close();
    throw error;
  }
  return { path, ntp, clock, publisher, sent: () => transport.sent.length, close };
}

/** One reading taken in another process, bracketed by `CLOCK_MONOTONIC` (ns, as decimal text). */
export interface BracketedReading {
  readonly h1: string;
  readonly h2: string;
  readonly earliest: number;
  readonly latest: number;
  readonly status: string;
  readonly eps: number;
}

/** What {@link readSegmentInAnotherProcess} reports. */
export interface OtherProcessReport {
  /** How long its clock took to be ready (ms). */
  readonly readyMs: number;
  readonly readings: readonly BracketedReading[];
}

/**
 * Runs a Node process that builds a `TrueClock` on `clockboundSource({ path })`
 * from dist/, waits until it is ready and takes `readings` bracketed readings,
 * `gapMs` apart.
 *
 * @example
 * ```ts
 * const { readings } = await readSegmentInAnotherProcess(segment, { readings: 20, pollIntervalMs: 50, gapMs: 20 });
 * ```
 * @throws Error (rejects) when the process fails or takes longer than `timeoutMs`.
 */
export function readSegmentInAnotherProcess(
  path: string,
  options: {
    readonly readings: number;
    /** The source's poll interval; its default (1 s) when left out. */
    readonly pollIntervalMs?: number;
    readonly gapMs?: number;
    readonly timeoutMs?: number;
  },
): Promise<OtherProcessReport> {
  const poll =
    options.pollIntervalMs === undefined ? '' : `, pollIntervalMs: ${options.pollIntervalMs}`;
  const gapMs = options.gapMs ?? 0;
  const code = `
    import { TrueClock } from ${JSON.stringify(distUrl('index.js'))};
    import { clockboundSource } from ${JSON.stringify(distUrl('node/index.js'))};
    const t0 = performance.now();
    const clock = new TrueClock({ source: clockboundSource({ path: process.argv[1]${poll} }), maxUncertaintyMs: 1000 });
    await clock.ready({ timeoutMs: 60000 });
    const readyMs = performance.now() - t0;
    const readings = [];
    for (let i = 0; i < ${options.readings}; i++) {
      const h1 = process.hrtime.bigint();
      const r = clock.now();
      const h2 = process.hrtime.bigint();
      readings.push({ h1: String(h1), h2: String(h2), earliest: r.earliest, latest: r.latest, status: r.status, eps: r.uncertaintyMs });
      ${gapMs > 0 ? `await new Promise((resolve) => setTimeout(resolve, ${gapMs}));` : ''}
    }
    await clock.close();
    console.log(JSON.stringify({ readyMs, readings }));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      if (exitCode !== 0) reject(new Error(`reader exited ${exitCode}: ${err}`));
      else resolve(JSON.parse(out) as OtherProcessReport);
    });
  });
}

/**
 * The server's truth while `reading` was taken: from its truth at `h1` minus
 * `slackMs` to its truth at `h2` plus `slackMs`, with `at` mapping
 * `CLOCK_MONOTONIC` onto this process's `performance.now()`. A correct reading
 * intersects it.
 *
 * @example
 * ```ts
 * const { low, high } = truthBracket(ntp, performanceAtMonotonicNs(), reading);
 * reading.earliest <= high && reading.latest >= low; // true
 * ```
 */
export function truthBracket(
  server: LoopbackNtpServer,
  at: (ns: bigint) => number,
  reading: BracketedReading,
  slackMs: number = 0.01,
): { low: number; high: number } {
  return {
    low: server.trueAt(at(BigInt(reading.h1))) - slackMs,
    high: server.trueAt(at(BigInt(reading.h2))) + slackMs,
  };
}
