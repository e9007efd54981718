/**
 * One writer, many readers on one host: a `TrueClock` fed by a loopback NTP
 * server publishes a ClockBound segment (`publishClockbound`, as `chronobound
 * daemon` does), and several worker threads and several child processes each run
 * their own `TrueClock` on `clockboundSource({ path })`, built from dist/ as a
 * user's process would be.
 *
 * **Comparing readings with the server's truth across processes.** The server's
 * truth is `trueAt(p)` for `p` on *this* process's `performance.now()`
 * timescale. `performance.timeOrigin + performance.now()` is not a safe common
 * timescale: Node takes `timeOrigin` from a wall-clock reading when each process
 * or worker starts, so two processes' sums differ by the wall-versus-monotonic
 * jitter at their starts and by whatever the time daemon slewed or stepped the
 * wall clock in between (a step between two starts shifts one against the other
 * by the step). `process.hrtime.bigint()` is `CLOCK_MONOTONIC`: one clock for the
 * whole kernel, every thread and process, never stepped. So each reader brackets
 * each reading with `process.hrtime.bigint()` before and after, and this process
 * maps those instants onto its own `performance.now()` through one bracketed pair
 * of reads (error ≪ 10 µs), then asks the server for its truth at both ends. A
 * reading `[earliest, latest]` taken between `h1` and `h2` is correct when it
 * intersects `[trueAt(h1), trueAt(h2)]`: true time at the reading's instant lies
 * in that range and must lie in the reading. No `Date.now()` is involved.
 *
 * **No packets from readers.** The writer's NTP client sends through a counting
 * transport. The server counts the requests it receives; every request it
 * received was sent by someone, so `requests ≤ writer's sends` proves that no
 * reader sent one (a lost writer packet could only hide a reader's on loopback,
 * and loopback does not lose them) — and the count across the readers' whole run
 * grows by the writer's own sends only: as one client's.
 *
 * Synchronisation is by messages (`ready`, then `go`, then `done` with the
 * readings), never by sleeping; timeouts are generous for a loaded 2-core machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  distUrl,
  startClockboundWriter,
  truthBracket,
  type BracketedReading,
} from '../support/clockbound-host.js';
import { performanceAtMonotonicNs } from '../support/host-clocks.js';
import { suiteFixture } from '../support/suite-fixture.js';

const WORKERS = 3;
const CHILDREN = 3;
const READINGS = 30;
/** The server's clock is this host's plus 25 ms: the segment's bound must cover it. */
const SERVER_OFFSET_MS = 25;
/** Slack for mapping CLOCK_MONOTONIC onto performance.now() (ms). */
const SLACK_MS = 0.01;

interface Done {
  readonly type: 'done';
  readonly readings: BracketedReading[];
  readonly samplesAccepted: number;
}

type Message = { readonly type: 'ready' } | Done | { readonly type: 'error'; message: string };

/**
 * The reader, as CommonJS-compatible script text (a worker's `eval` code is a
 * script) using dynamic `import()` of the built package. `post` and `onGo` are
 * bound by the two preludes below.
 */
const READER = `
(async () => {
  const { TrueClock } = await import(${JSON.stringify(distUrl('index.js'))});
  const { clockboundSource } = await import(${JSON.stringify(distUrl('node/index.js'))});
  const clock = new TrueClock({
    source: clockboundSource({ path: SEGMENT, pollIntervalMs: 50 }),
    maxUncertaintyMs: 1000,
  });
  await clock.ready({ timeoutMs: 30000 });
  post({ type: 'ready' });
  await new Promise((resolve) => onGo(resolve));
  const readings = [];
  for (let i = 0; i < ${READINGS}; i++) {
    const h1 = process.hrtime.bigint();
    const r = clock.now();
    const h2 = process.hrtime.bigint();
    readings.push({ h1: String(h1), h2: String(h2), earliest: r.earliest, latest: r.latest, status: r.status, eps: r.uncertaintyMs });
    // Spread the readings over several polls of the segment.
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
  const { samplesAccepted } = clock.metrics();
  await clock.close();
  post({ type: 'done', readings, samplesAccepted });
})().catch((error) => post({ type: 'error', message: String(error && error.stack || error) }));
`;

const WORKER_PRELUDE = `
const { parentPort, workerData } = require('node:worker_threads');
const SEGMENT = workerData;
const post = (m) => parentPort.postMessage(m);
const onGo = (f) => parentPort.once('message', f);
`;

const CHILD_PRELUDE = `
const SEGMENT = process.argv[1];
const post = (m) => process.send(m);
const onGo = (f) => process.once('message', f);
`;

/** One reader, worker or child, seen through its messages. */
interface Reader {
  readonly kind: 'worker' | 'child';
  readonly ready: Promise<void>;
  readonly done: Promise<Done>;
  go(): void;
  kill(): void;
}

function track(
  kind: Reader['kind'],
  on: (listener: (m: Message) => void) => void,
  onExit: (listener: (why: string) => void) => void,
  go: () => void,
  kill: () => void,
): Reader {
  let readyResolve!: () => void;
  let doneResolve!: (d: Done) => void;
  let fail!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    readyResolve = resolve;
    fail = reject;
  });
  const done = new Promise<Done>((resolve, reject) => {
    doneResolve = resolve;
    const earlier = fail;
    fail = (e) => {
      earlier(e);
      reject(e);
    };
  });
  // Unhandled if the test fails elsewhere first.
  ready.catch(() => undefined);
  done.catch(() => undefined);
  on((m) => {
    if (m.type === 'ready') readyResolve();
    else if (m.type === 'done') doneResolve(m);
    else fail(new Error(`${kind} reader failed: ${m.message}`));
  });
  onExit((why) => fail(new Error(`${kind} reader exited before it was done: ${why}`)));
  return { kind, ready, done, go, kill };
}

function startWorker(segment: string): Reader {
  const worker = new Worker(WORKER_PRELUDE + READER, { eval: true, workerData: segment });
  return track(
    'worker',
    (listener) => worker.on('message', listener),
    (listener) => {
      worker.on('error', (e) => listener(String(e)));
      worker.on('exit', (code) => listener(`exit ${code}`));
    },
    () => worker.postMessage('go'),
    () => void worker.terminate(),
  );
}

function startChild(segment: string): Reader {
  const child: ChildProcess = spawn(process.execPath, ['-e', CHILD_PRELUDE + READER, segment], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return track(
    'child',
    (listener) => child.on('message', (m) => listener(m as Message)),
    (listener) => child.on('exit', (code) => listener(`exit ${code}: ${stderr}`)),
    () => child.send('go'),
    () => child.kill('SIGKILL'),
  );
}

describe('one writer, many readers on one host', () => {
  const writerFixture = suiteFixture(async () => {
    const writer = await startClockboundWriter(SERVER_OFFSET_MS);
    // ready() resolves on the sample; the status change it causes is published at once.
    expect(writer.publisher.last?.status).toBe('synchronized');
    return writer;
  });
  it('worker threads and child processes all read the one clock: every reading contains the server’s truth, and the server hears one client', async () => {
    const writer = writerFixture();
    const { ntp, path: segment } = writer;
    const requestsBefore = ntp.stats.requests;
    const sentBefore = writer.sent();
    expect(requestsBefore).toBeGreaterThan(0);
    expect(requestsBefore).toBeLessThanOrEqual(sentBefore);

    const readers: Reader[] = [
      ...Array.from({ length: WORKERS }, () => startWorker(segment)),
      ...Array.from({ length: CHILDREN }, () => startChild(segment)),
    ];
    try {
      await Promise.all(readers.map((r) => r.ready));
      for (const r of readers) r.go();
      const results = await Promise.all(readers.map((r) => r.done));

      const at = performanceAtMonotonicNs();
      let checked = 0;
      for (const [i, result] of results.entries()) {
        const kind = readers[i]?.kind;
        expect(result.readings, kind).toHaveLength(READINGS);
        // The reader polled the segment more than once while it read.
        expect(result.samplesAccepted, kind).toBeGreaterThan(1);
        for (const r of result.readings) {
          // Trusted either way; free-running only if a loaded machine delayed the polls.
          expect(['synchronized', 'free-running'], kind).toContain(r.status);
          const truth = truthBracket(ntp, at, r, SLACK_MS);
          expect(r.earliest, kind).toBeLessThanOrEqual(truth.high);
          expect(r.latest, kind).toBeGreaterThanOrEqual(truth.low);
          // The bound covers the host clock's 25 ms error (ClockBound bounds CLOCK_REALTIME).
          expect(r.eps, kind).toBeGreaterThan(SERVER_OFFSET_MS - 5);
          checked++;
        }
      }
      expect(checked).toBe((WORKERS + CHILDREN) * READINGS);
    } finally {
      for (const r of readers) r.kill();
    }

    // Six clocks read the host's time, and the server heard only the writer.
    const requests = ntp.stats.requests;
    const sent = writer.sent();
    expect(requests).toBeLessThanOrEqual(sent);
    expect(requests - requestsBefore).toBeLessThanOrEqual(sent - sentBefore);
    // One exchange to start, a poll a minute: a few at most, even with retries on a loaded machine.
    expect(sent).toBeLessThanOrEqual(5);
  }, 60_000);
});
