import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderChart } from '../../src/cli/watch.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { CLI, runCli, startCli } from './run-cli.js';

interface WatchLine {
  earliest: number | null;
  latest: number | null;
  estimate: number;
  uncertaintyMs: number | null;
  status: string;
  reason: string | null;
  sample: { source: string; errorMs: number; ageMs: number } | null;
}

const hasScript = spawnSync('script', ['--version']).status === 0;

describe('renderChart', () => {
  it('draws each value as a column of eighth-blocks scaled to the maximum', () => {
    const rows = renderChart([0, 1, 2, 4], 4, 2);
    expect(rows).toEqual(['   █', ' ▄██']);
  });

  it('right-aligns short histories and keeps only the newest `width` values', () => {
    expect(renderChart([4], 3, 1)).toEqual(['  █']);
    expect(renderChart([4, 0, 0, 0], 3, 1)).toEqual(['   ']);
  });

  it('draws an infinite ε (no sample yet) as a full column', () => {
    expect(renderChart([Infinity, 1], 2, 2)).toEqual(['██', '██']);
  });
});

describe('chronobound watch', () => {
  let server: LoopbackNtpServer;
  beforeAll(async () => {
    server = await createNtpServer({ offsetMs: 40, requestDelayMs: 1, responseDelayMs: 1 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('streams JSON lines whose intervals contain the server’s truth, ε growing between polls', async () => {
    const start = server.trueNow();
    const cli = startCli([
      'watch',
      '--server',
      server.address,
      '--poll-ms',
      '400',
      '--interval-ms',
      '50',
      '--json',
    ]);
    const received: { line: WatchLine; truthAtReceipt: number }[] = [];
    // Stop once 12 synchronized lines are in, however long a loaded machine takes.
    const enough = new Promise<void>((resolve) => {
      cli.child.stdout?.on('data', () => {
        const lines = cli.lines();
        while (received.length < lines.length) {
          received.push({
            line: JSON.parse(lines[received.length] ?? '') as WatchLine,
            truthAtReceipt: server.trueNow(),
          });
        }
        if (received.filter((x) => x.line.status === 'synchronized').length >= 12) resolve();
      });
    });
    await enough;
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code, r.stderr).toBe(0);
    const synced = received.filter((x) => x.line.status === 'synchronized');
    expect(synced.length).toBeGreaterThanOrEqual(12);
    for (const { line } of received) {
      // A reason exactly when the line is not synchronized.
      expect(line.reason === null).toBe(line.status === 'synchronized');
    }
    for (const { line, truthAtReceipt } of synced) {
      // Computed after the command started and before the line arrived. (Not "after the
      // previous line arrived": a busy parent can receive lines later than they were written.)
      expect(line.latest as number).toBeGreaterThanOrEqual(start);
      expect(line.earliest as number).toBeLessThanOrEqual(truthAtReceipt);
      expect(line.sample?.source).toBe('ntp');
    }
    // Between two samples ε grows, and never faster than the drift bound (200 ppm); it grows
    // more slowly once the clock has learned the oscillator's frequency.
    let pairs = 0;
    for (let i = 1; i < synced.length; i++) {
      const a = synced[i - 1]?.line;
      const b = synced[i]?.line;
      if (!a?.sample || !b?.sample || a.sample.errorMs !== b.sample.errorMs) continue;
      const grew = (b.uncertaintyMs as number) - (a.uncertaintyMs as number);
      const elapsed = b.sample.ageMs - a.sample.ageMs;
      expect(grew).toBeGreaterThanOrEqual(-1e-9);
      // `ageMs` is read apart from the reading itself, and a loaded machine can stall
      // between the two reads: allow the drift bound over up to 1 s of such skew.
      expect(grew).toBeLessThanOrEqual(200e-6 * (elapsed + 1000));
      pairs++;
    }
    expect(pairs).toBeGreaterThan(3);
  });

  it('runs until SIGINT, then closes its sockets and exits 0', async () => {
    const cli = startCli([
      'watch',
      '--server',
      server.address,
      '--poll-ms',
      '200',
      '--interval-ms',
      '50',
    ]);
    await cli.line(/ ms {2}synchronized$/);
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.stdout).toMatch(
      /^\d{4}-\d{2}-\d{2}T[\d:.]{15}Z {2}ε +\d+\.\d{3} ms {2}synchronized$/m,
    );
  });

  it.skipIf(!hasScript)('redraws in place under a terminal and restores the cursor', async () => {
    const command = `${process.execPath} ${CLI} watch --server ${server.address} --poll-ms 200 --interval-ms 60 --count 12`;
    const { stdout } = await promisify(execFile)('script', ['-qfec', command, '/dev/null'], {
      env: { ...process.env, COLUMNS: '80', LINES: '30' },
      timeout: 20_000,
    });
    expect(stdout).toContain('\x1b[?25l'); // cursor hidden while drawing
    expect(stdout.trimEnd().endsWith('\x1b[?25h')).toBe(true); // and shown again
    expect(stdout).toMatch(new RegExp(`${'\x1b'}\\[\\d+F`)); // moved up over the previous frame
    expect(stdout).toContain('chronobound watch — NTP 127.0.0.1:');
    expect(stdout).toMatch(/ε over the last \d+ s/);
    expect(stdout).toMatch(/[▁▂▃▄▅▆▇█]/);
    expect(stdout).toMatch(/127\.0\.0\.1:\d+\s+offset\s+\+\d+\.\d{3} ms\s+delay/);
  });

  it('off a terminal, says why on every line and exits 1 when it never synchronized', async () => {
    const r = await runCli([
      'watch',
      '--count',
      '2',
      '--interval-ms',
      '20',
      '--chrony',
      '127.0.0.1:9',
      '--timeout-ms',
      '100',
    ]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/ε +∞ ms {2}unsynchronized: \S/);
    expect(r.stderr).toContain(
      'chronobound watch: never synchronized during the run (time from chronyd 127.0.0.1:9)',
    );
  });

  it('in JSON, gives the reason with each unsynchronized line (no bare nulls), exit 1', async () => {
    const dead = await createNtpServer();
    const address = dead.address;
    await dead.close();
    const cli = startCli([
      'watch',
      '--server',
      address,
      '--timeout-ms',
      '100',
      '--interval-ms',
      '20',
      '--json',
    ]);
    // Wait for a line that names the timeout, then stop.
    await cli.line(/"reason":"[^"]*(timed out|no reply|timeout)/i);
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(1);
    const lines = cli.lines().map((l) => JSON.parse(l) as WatchLine);
    for (const line of lines) {
      expect(line.status).toBe('unsynchronized');
      expect(line.earliest).toBeNull();
      expect(typeof line.reason).toBe('string');
      expect(line.reason).not.toBe('');
    }
  });
});
