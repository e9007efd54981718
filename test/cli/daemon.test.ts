import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClockboundSegment } from '../../src/node/index.js';
import { monotonicNowNs } from '../../src/node/host-clocks.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { locatePromtool, promtoolCheck } from '../node/promtool.js';
import { CLI, endsWithOneLineError, isOneLineError, runCli, startCli } from './run-cli.js';
import { readSegmentInAnotherProcess, truthBracket } from '../support/clockbound-host.js';
import { performanceAtMonotonicNs } from '../support/host-clocks.js';

const promtool = locatePromtool();

interface Started {
  event: 'started';
  segment: string;
  metrics: string | null;
  source: string;
  updateMs: number;
}

/** `chronobound daemon` polling a port nobody answers on, publishing at `segment`. */
function unansweredDaemon(segment: string, ...flags: string[]): string[] {
  return ['daemon', '--server', '127.0.0.1:9', '--segment', segment, ...flags];
}

let dir: string;
let ntp: LoopbackNtpServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chronobound-daemon-'));
  // The server's clock is this machine's plus 25 ms: the host's system clock is
  // "wrong" by 25 ms, which the segment's bound (around CLOCK_REALTIME) must cover.
  ntp = await createNtpServer({ offsetMs: 25 });
});
afterAll(async () => {
  await ntp.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('chronobound daemon', () => {
  it('publishes one clock for the host: a reader process’s readings contain the server’s truth; /metrics; clean stop; restart continues', async () => {
    const segment = join(dir, 'run', 'clockbound', 'shm0');
    const args = [
      'daemon',
      '--server',
      ntp.address,
      '--segment',
      segment,
      '--metrics',
      '127.0.0.1:0',
      '--update-ms',
      '100',
      '--poll-ms',
      '1000',
      '--json',
    ];
    const daemon = startCli(args);
    try {
      const started = JSON.parse(await daemon.line(/"event":"started"/)) as Started;
      expect(started).toMatchObject({ segment, source: `NTP ${ntp.address}`, updateMs: 100 });
      expect(started.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      await daemon.line(/"status":"synchronized"/, 30_000);

      // Another process reads the segment through clockboundSource + TrueClock.
      const { readings } = await readSegmentInAnotherProcess(segment, {
        readings: 20,
        pollIntervalMs: 50,
        gapMs: 20,
      });
      expect(readings).toHaveLength(20);
      const at = performanceAtMonotonicNs();
      for (const r of readings) {
        // Trusted either way; free-running only if a loaded machine delayed the polls.
        expect(['synchronized', 'free-running']).toContain(r.status);
        const truth = truthBracket(ntp, at, r);
        expect(r.earliest).toBeLessThanOrEqual(truth.high);
        expect(r.latest).toBeGreaterThanOrEqual(truth.low);
        // The bound covers the system clock's 25 ms error (ClockBound bounds CLOCK_REALTIME).
        expect(r.eps).toBeGreaterThan(20);
      }

      const response = await fetch(started.metrics ?? '');
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await response.text();
      expect(text).toMatch(/^chronobound_status\{status="(synchronized|free-running)"\} 1$/m);
      expect(text).toContain(
        `chronobound_ntp_server_state{server="${ntp.address}",state="ok"} 1\n`,
      );
      expect(text).toMatch(/^chronobound_clockbound_writes_total [1-9]\d*$/m);
      expect(text).toMatch(
        /^chronobound_clockbound_status\{status="(synchronized|free-running)"\} 1$/m,
      );
      if (promtool !== undefined) {
        const check = await promtoolCheck(promtool, text);
        expect(check.output).toBe('');
        expect(check.code).toBe(0);
      }

      const live = readClockboundSegment(segment);
      expect(['synchronized', 'free-running']).toContain(live.status);
      expect(live.maxDriftPpb).toBe(200_000);
      expect(live.disruptionSupport).toBe(false);
    } finally {
      daemon.child.kill('SIGTERM');
    }
    const stopped = await daemon.done;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toMatch(/stopped after [1-9]\d* updates; .*shm0 marked unusable\n$/);
    const after = readClockboundSegment(segment);
    expect(after.status).toBe('unknown');
    expect(after.voidAfterNs).toBeLessThan(monotonicNowNs());

    // A restart reuses the segment in place and continues its generation.
    const again = startCli(args);
    try {
      await again.line(/"event":"started"/);
      const restarted = readClockboundSegment(segment);
      expect(restarted.generation).toBeGreaterThan(after.generation);
      expect(restarted.disruptionMarker).toBe(after.disruptionMarker);
    } finally {
      again.child.kill('SIGINT');
    }
    expect((await again.done).code).toBe(0);
  });

  it('says "unknown" until the clock has a sample (graceful start), and serves metrics meanwhile', async () => {
    const segment = join(dir, 'unsynced', 'shm0');
    // A port nobody answers on.
    const daemon = startCli(unansweredDaemon(segment, '--metrics', '127.0.0.1:0', '--json'));
    try {
      const started = JSON.parse(await daemon.line(/"event":"started"/)) as Started;
      const s = readClockboundSegment(segment);
      expect(s.status).toBe('unknown');
      expect(s.voidAfterNs).toBeLessThan(monotonicNowNs());
      const text = await (await fetch(started.metrics ?? '')).text();
      expect(text).toContain('chronobound_status{status="unsynchronized"} 1\n');
      expect(text).toContain('chronobound_uncertainty_seconds +Inf\n');
    } finally {
      daemon.child.kill('SIGTERM');
    }
    expect((await daemon.done).code).toBe(0);
  });

  it('prints its help', async () => {
    const r = await runCli(['daemon', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--segment PATH');
    expect(r.stdout).toContain('/var/run/clockbound/shm0');
    expect(r.stdout).toContain('--metrics host[:port]');
    const top = await runCli(['--help']);
    expect(top.stdout).toMatch(/daemon\s+one clock per host/);
  });

  it.each([
    [['--server', '127.0.0.1:1', '--chrony', '127.0.0.1:323'], /Invalid --chrony: .*not both/],
    [['--update-ms', '5'], /Invalid --update-ms: "5"; expected a number from 10 to 3600000/],
    [['--metrics', '127.0.0.1:99999'], /Invalid --metrics port: "99999"/],
    [['--metrics', '127.0.0.1:1', '--no-metrics'], /Invalid --metrics/],
    [['--segment', ''], /Invalid --segment/],
    [['now'], /takes no positional arguments/],
  ])('usage error %j: one line, exit 2', async (args, message) => {
    const r = await runCli(['daemon', ...args]);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(message);
  });

  it('a segment it cannot create: one line, exit 3', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await runCli(unansweredDaemon(join(file, 'shm0'), '--no-metrics'));
    expect(r.code).toBe(3);
    expect(isOneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(
      /^chronobound daemon: cannot publish the segment at .*a-file\/shm0: (ENOTDIR|EEXIST)/,
    );
  });

  it('a metrics port in use: one line naming --metrics, exit 3, segment left unusable', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const segment = join(dir, 'busy', 'shm0');
    try {
      const r = await runCli(unansweredDaemon(segment, '--metrics', `127.0.0.1:${port}`));
      expect(r.code).toBe(3);
      expect(endsWithOneLineError(r.stderr)).toBe(true);
      expect(r.stderr).toBe(
        `chronobound daemon: address 127.0.0.1:${port} is already in use; pick another --metrics host:port (port 0 picks a free one)\n`,
      );
      expect(readClockboundSegment(segment).status).toBe('unknown');
    } finally {
      blocker.close();
    }
  });

  it('runs from the built CLI', () => {
    expect(CLI).toMatch(/dist\/cli\/main\.js$/);
  });
});
