import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { locatePostgres, startPostgres } from '../integration/helpers/postgres.js';
import type { ChildProcess } from 'node:child_process';
import { suiteFixture } from '../support/suite-fixture.js';
import { postgresRowCount } from './fixtures.js';
import { isOneLineError, jsonOfSuccess, runCli, startCli } from './run-cli.js';

/** Resolves with the first stderr line matching `pattern`; rejects if the process exits first. */
function stderrLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer | string): void => {
      text += String(chunk);
      const found = text.split('\n').find((l) => pattern.test(l));
      if (found === undefined) return;
      child.stderr?.off('data', onData);
      child.off('close', onClose);
      resolve(found);
    };
    const onClose = (): void =>
      reject(new Error(`exited without a stderr line matching ${pattern}:\n${text}`));
    child.stderr?.on('data', onData);
    child.once('close', onClose);
  });
}

interface DemoJson {
  database: string;
  rounds: number;
  elapsedS: number;
  plot: string | null;
  nodes: {
    name: string;
    skewMs: number;
    commits: number;
    meanEpsilonMs: number;
    meanWriteMs: number;
    meanWaitMs: number;
    meanLateMs: number;
    heldBack: number;
  }[];
  results: Record<
    'lww' | 'hlc' | 'commit-wait',
    { attempted: number; kept: number; lost: number; finalValue: number }
  >;
}

const dir = mkdtempSync(join(tmpdir(), 'chronobound-demo-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function checkResults(j: DemoJson, rounds: number): void {
  for (const s of ['lww', 'hlc', 'commit-wait'] as const) {
    expect(j.results[s].attempted).toBe(rounds);
    expect(j.results[s].kept + j.results[s].lost).toBe(rounds);
    // Every increment read the previous value: the counter equals the increments kept.
    expect(j.results[s].finalValue).toBe(j.results[s].kept);
  }
  expect(j.results.hlc.lost).toBe(0);
  expect(j.results['commit-wait'].lost).toBe(0);
  expect(j.nodes.reduce((n, x) => n + x.commits + x.heldBack, 0)).toBe(rounds);
}

describe('chronobound demo (SQLite)', () => {
  it('runs the default demo well under a minute: LWW loses, HLC and commit-wait do not; writes the SVG', async () => {
    const r = await runCli(['demo'], { cwd: dir, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.elapsedMs).toBeLessThan(30_000);
    expect(r.stdout).toMatch(/^chronobound demo: 3 nodes, 40 read-modify-write increments/);
    expect(r.stdout).toMatch(/database: SQLite [\d.]+ \(better-sqlite3\), temporary file /);
    expect(r.stdout).toMatch(/final counter\s+\d+\s+40\s+40/);
    expect(r.stdout).toMatch(/silently lost\s+[1-9]\d*\s+0\s+0/);
    expect(r.stdout).toMatch(
      /First lost increment \(wall-clock LWW\), round \d+: node [ABC] read counter = \d+/,
    );
    expect(r.stdout).toMatch(/node\s+writes\s+mean ε\s+write \+ wait\s+in ε\s+woke late by/);
    expect(r.stdout).toMatch(
      /plus how late the wait woke after that moment — [\d.]+ ms on average/,
    );
    expect(r.stdout).not.toMatch(/about 2ε, less the time the write itself took/);
    // Progress goes to stderr, results to stdout.
    expect(r.stderr).toMatch(/demo: round \d+\/40/);
    expect(r.stdout).not.toMatch(/demo: round/);
    const svgPath = join(dir, 'chronobound-demo.svg');
    expect(r.stdout).toContain(`plot: ${svgPath}`);
    const svg = readFileSync(svgPath, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('ε per node: the TrueTime sawtooth');
    expect(svg.match(/<polyline /g)?.length).toBe(6);
    expect(svg.match(/<polygon /g)?.length).toBe(3);
    // The temporary database is gone.
    const file = /temporary file (\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(file).not.toBe('');
    expect(existsSync(file)).toBe(false);
  }, 60_000);

  it('commit-wait costs about 2ε per write, and loses nothing, with --json', async () => {
    const cwd = mkdtempSync(join(dir, 'no-plot-'));
    const r = await runCli(
      ['demo', '--rounds', '15', '--skew-ms', '0,-300,300', '--no-plot', '--json'],
      {
        cwd,
        timeoutMs: 60_000,
      },
    );
    const j = jsonOfSuccess<DemoJson>(r);
    checkResults(j, 15);
    // With ±300 ms skews and pauses under 120 ms, every hand-over to a node that is behind loses.
    expect(j.results.lww.lost).toBeGreaterThan(0);
    expect(j.plot).toBeNull();
    expect(readdirSync(cwd)).toEqual([]);
    for (const n of j.nodes) {
      if (n.commits === 0) continue;
      // waitUntilAfter(s) resolves once earliest > s = latest at commit: ≈ 2ε, a bit more when
      // a fresh sample moves the estimate, a bit less by the time the write itself took.
      expect(n.meanWaitMs).toBeGreaterThan(n.meanEpsilonMs);
      // Generous slack for a loaded CI machine, plus how late the timers woke (15 ms waits at
      // ε = 0.6 ms were seen under load); a wait that ignored ε would fail the lower bound.
      expect(n.meanWaitMs).toBeLessThan(4 * n.meanEpsilonMs + n.meanLateMs + 10);
      // What the report says: from the stamp, write + wait = 2ε + how late the wait woke, up
      // to a fresh NTP sample moving the interval during a wait (a few of those, at most ~2ε
      // each, averaged over the node's commits). A wait of 3ε by design would fail this.
      expect(
        Math.abs(n.meanWriteMs + n.meanWaitMs - (2 * n.meanEpsilonMs + n.meanLateMs)),
      ).toBeLessThan(Math.max(2, n.meanEpsilonMs));
    }
  }, 60_000);

  it('writes the plot where --plot says', async () => {
    const r = await runCli(['demo', '--rounds', '3', '--plot', 'out/../custom.svg', '--json'], {
      cwd: dir,
    });
    const j = jsonOfSuccess<DemoJson>(r);
    expect(j.plot).toBe(join(dir, 'custom.svg'));
    expect(readFileSync(join(dir, 'custom.svg'), 'utf8')).toContain('</svg>');
  }, 60_000);

  it('stops cleanly on SIGINT', async () => {
    const cli = startCli(['demo', '--rounds', '500', '--no-plot'], { cwd: dir });
    // Interrupt once the rounds are under way (the progress line on stderr says so).
    await stderrLine(cli.child, /^demo: round \d+\/500/);
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code, r.stderr).toBe(0);
    const written = Number(/increments written\s+(\d+)/.exec(r.stdout)?.[1]);
    expect(written).toBeGreaterThanOrEqual(1);
    expect(written).toBeLessThan(500);
    expect(r.stdout).toContain(`(interrupted after ${written} of 500 rounds)`);
  }, 60_000);

  it('takes a negative --skew-ms list as the value, like every command', async () => {
    // --rounds 0 stops it before anything runs: the error names --rounds, not --skew-ms.
    const r = await runCli(['demo', '--skew-ms', '-45,0,30', '--rounds', '0']);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(/^chronobound demo: Invalid --rounds: "0"/);
  });

  it('refuses a --postgres value that is not a URL as a usage error naming it', async () => {
    const r = await runCli(['demo', '--postgres', 'notaurl']);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(/^chronobound demo: Invalid --postgres: "notaurl"; expected a URL/);
    const withPassword = await runCli(['demo', '--postgres', 'postgres://me:hunter2@db:99999/x']);
    expect(withPassword.code).toBe(2);
    expect(withPassword.stderr).toContain('postgres://me:***@db:99999/x');
    expect(withPassword.stderr).not.toContain('hunter2');
  });
});

describe.skipIf(locatePostgres() === undefined)('chronobound demo --postgres', () => {
  const pg = suiteFixture(startPostgres);

  it('runs the same demo against PostgreSQL and removes its rows', async () => {
    const r = await runCli(
      ['demo', '--rounds', '12', '--no-plot', '--json', '--postgres', pg().connectionString],
      {
        timeoutMs: 60_000,
      },
    );
    const j = jsonOfSuccess<DemoJson>(r);
    expect(j.database).toMatch(/^PostgreSQL \d+/);
    checkResults(j, 12);
    expect(await postgresRowCount(pg().connectionString, 'chronobound_demo')).toBe(0);
  }, 120_000);

  it('fails in one line (exit 3) when PostgreSQL is unreachable', async () => {
    const r = await runCli([
      'demo',
      '--no-plot',
      '--postgres',
      'postgres://nobody:secret@127.0.0.1:1/none',
    ]);
    expect(r.code).toBe(3);
    const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
    expect(last).toMatch(
      /^chronobound demo: cannot connect to PostgreSQL at postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none/,
    );
    expect(r.stderr).not.toContain('secret');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
