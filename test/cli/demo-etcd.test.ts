/**
 * `chronobound demo --etcd`, run as users run it (the built command, a child
 * process) against a real single-member etcd started by the integration
 * helpers. etcd missing: skipped locally, a failure under CI (locateEtcd throws).
 */
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { locateEtcd, startEtcdCluster } from '../integration/helpers/etcd.js';
import { freePort, locatePostgres, startPostgres } from '../integration/helpers/postgres.js';
import { suiteFixture } from '../support/suite-fixture.js';
import { postgresRowCount } from './fixtures.js';
import { endsWithOneLineError, isOneLineError, jsonOfSuccess, runCli } from './run-cli.js';

interface EtcdDemoJson {
  mode: 'etcd';
  etcd: { endpoints: string[]; description: string };
  database: string;
  ttlMs: number;
  nodes: { name: string; tokens: string[]; attempted: number; accepted: number; refused: number }[];
  terms: { node: string; token: string; attempted: number; accepted: number; refused: number }[];
  pause: {
    node: string;
    token: string;
    remainingAtCheckMs: number;
    lostAfterMs: number | null;
    lostReason: string | null;
    takeoverAfterMs: number | null;
    takenOverBy: string | null;
    newToken: string | null;
    gapMs: number | null;
    pausedMs: number;
    heldAfterResume: boolean;
    lateWriteAccepted: boolean;
    fenceAtLateWrite: string | null;
  } | null;
  fence: string | null;
  verdict: 'safe' | 'unsafe';
}

const etcdBinary = locateEtcd();

/** The properties every run must show, whatever node happened to win which term. */
function checkRun(j: EtcdDemoJson, ordinaryTerms: number): void {
  expect(j.mode).toBe('etcd');
  expect(j.verdict).toBe('safe');
  // A holder that lost its lease before the pause (a badly loaded machine) passes the pause on.
  expect(j.terms.length).toBeGreaterThanOrEqual(ordinaryTerms + 2);
  // Fencing tokens (create revisions) grow with every term.
  const tokens = j.terms.map((t) => BigInt(t.token));
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!).toBe(true);
  const pause = j.pause!;
  expect(pause).not.toBeNull();
  const pausedAt = j.terms.findIndex((t) => t.token === pause.token);
  expect(pausedAt).toBe(j.terms.length - 2);
  const paused = j.terms[pausedAt]!;
  const takeover = j.terms[pausedAt + 1]!;
  expect(pause.node).toBe(paused.node);
  expect(pause.token).toBe(paused.token);
  expect(takeover.node).not.toBe(paused.node);
  expect(pause.takenOverBy).toBe(takeover.node);
  expect(pause.newToken).toBe(takeover.token);
  // The pause outlasted the lease; the next holder's lease began after the last instant the
  // paused holder's clock let it act (both bounds on true time: the periods did not overlap).
  expect(pause.pausedMs).toBeGreaterThan(j.ttlMs);
  expect(pause.gapMs).toBeGreaterThan(0);
  expect(pause.lostAfterMs).not.toBeNull();
  expect(pause.takeoverAfterMs).not.toBeNull();
  // Lost by its own check: the deadline passed (or, on a badly loaded machine, the clock was disrupted).
  expect(pause.lostReason).toMatch(/^(EtcdLeaseLostError|ClockUnsynchronizedError)/);
  // Resumed: its own check says the lease is gone, and its late write is refused by the token.
  expect(pause.heldAfterResume).toBe(false);
  expect(pause.lateWriteAccepted).toBe(false);
  expect(BigInt(pause.fenceAtLateWrite!)).toBe(BigInt(takeover.token));
  expect(paused).toMatchObject({ attempted: 2, accepted: 1, refused: 1 });
  expect(j.fence).toBe(takeover.token);
  // The only refusal in the run is that late write; the per-node table adds up.
  const sum = (k: 'attempted' | 'accepted' | 'refused'): number =>
    j.nodes.reduce((n, x) => n + x[k], 0);
  expect(sum('refused')).toBe(1);
  expect(sum('attempted')).toBe(sum('accepted') + 1);
  expect(sum('attempted')).toBe(j.terms.reduce((n, t) => n + t.attempted, 0));
  expect(j.nodes.flatMap((n) => n.tokens).sort()).toEqual(j.terms.map((t) => t.token).sort());
}

describe.skipIf(etcdBinary === undefined)('chronobound demo --etcd', () => {
  const etcd = suiteFixture(() => startEtcdCluster({ size: 1 }));
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-demo-etcd-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('pauses a holder past its TTL: the next holder takes over, the late write is refused (--json)', async () => {
    const r = await runCli(['demo', '--etcd', etcd().endpoints.join(','), '--json'], {
      cwd: dir,
      timeoutMs: 90_000,
    });
    const j = jsonOfSuccess<EtcdDemoJson>(r);
    checkRun(j, 3);
    expect(j.etcd.endpoints).toEqual(etcd().endpoints);
    expect(j.database).toMatch(/^SQLite [\d.]+ \(better-sqlite3\), temporary file /);
  }, 120_000);

  it('prints the per-node table, the pause and a one-line verdict', async () => {
    const r = await runCli(['demo', '--etcd', etcd().endpoints[0]!, '--terms', '1'], {
      cwd: dir,
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^chronobound demo --etcd: 3 nodes contend for one lock, 3 terms/);
    expect(r.stdout).toMatch(/node\s+terms \(tokens\)\s+writes attempted\s+accepted\s+refused/);
    // One row refused exactly one write (the paused node's late write); the others none.
    expect(r.stdout.match(/^[ABC]\s+\d+ \([\d, ]+\)\s+\d+\s+\d+\s+1$/gm)).toHaveLength(1);
    expect(r.stdout.match(/^[ABC]\s+\d+( \([\d, ]+\))?\s+\d+\s+\d+\s+0$/gm)).toHaveLength(2);
    expect(r.stdout).toMatch(
      /Its lease began \d+ ms after the last instant node [ABC]'s clock let it act/,
    );
    expect(r.stdout).toMatch(/Resumed, node [ABC]'s lease\.isHeld\(\) said false; it wrote anyway/);
    expect(r.stdout).toMatch(/^ {2}refused by the table \(its fence was \d+\)\.$/m);
    expect(r.stdout).toMatch(
      /^verdict: safe — the stale write \(token \d+\) was refused and node [ABC] already knew its lease was gone$/m,
    );
    expect(r.stderr).toMatch(/demo: node [ABC] paused with token \d+/);
  }, 120_000);

  it('starts a temporary etcd from PATH when --etcd has no URL, and says so', async () => {
    const r = await runCli(['demo', '--etcd', '--terms', '0', '--json'], {
      cwd: dir,
      env: { ...process.env, PATH: dirname(etcdBinary!) },
      timeoutMs: 90_000,
    });
    const j = jsonOfSuccess<EtcdDemoJson>(r);
    checkRun(j, 0);
    expect(j.etcd.description).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+, etcd 3\.[\d.]+ started for this demo from .*etcd \(removed afterwards\)$/,
    );
    expect(r.stderr).toContain('demo: starting a temporary single-member etcd');
  }, 120_000);

  describe.skipIf(locatePostgres() === undefined)('with --postgres', () => {
    const pg = suiteFixture(startPostgres);

    it('fences the writes in PostgreSQL and removes its row', async () => {
      const r = await runCli(
        [
          'demo',
          '--etcd',
          etcd().endpoints[0]!,
          '--terms',
          '1',
          '--json',
          '--postgres',
          pg().connectionString,
        ],
        { timeoutMs: 90_000 },
      );
      const j = jsonOfSuccess<EtcdDemoJson>(r);
      expect(j.database).toMatch(/^PostgreSQL \d+/);
      checkRun(j, 1);
      expect(await postgresRowCount(pg().connectionString, 'chronobound_demo_fenced')).toBe(0);
    }, 180_000);
  });
});

describe('chronobound demo --etcd: errors', () => {
  it('fails in one line with exit 3, within seconds, when etcd is unreachable', async () => {
    const port = await freePort(); // nothing listens there now
    const r = await runCli(['demo', '--etcd', `http://127.0.0.1:${port}`, '--json'], {
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(3);
    expect(endsWithOneLineError(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(
      new RegExp(
        `chronobound demo: cannot use etcd at http://127\\.0\\.0\\.1:${port}: .*no member reachable`,
      ),
    );
    expect(r.stderr).toContain('apt install etcd-server');
    expect(r.stdout).toBe('');
    // Bounded by the 2 s request timeout, not by the demo's overall budget.
    expect(r.elapsedMs).toBeLessThan(20_000);
  }, 60_000);

  it('is a usage error (exit 2) naming the value when --etcd is not a URL list', async () => {
    const r = await runCli(['demo', '--etcd', 'http://127.0.0.1:2379,notaurl']);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(
      /^chronobound demo: Invalid --etcd: "http:\/\/127\.0\.0\.1:2379,notaurl"/,
    );
  });

  it('says how to start etcd (exit 2) for --etcd alone when etcd is not on PATH', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'chronobound-no-etcd-'));
    // Something named like it but not executable must not count.
    writeFileSync(join(empty, 'etcd'), '');
    chmodSync(join(empty, 'etcd'), 0o644);
    try {
      const r = await runCli(['demo', '--etcd', '--json'], {
        env: { ...process.env, PATH: empty },
      });
      expect(r.code).toBe(2);
      expect(isOneLineError(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(/no etcd on PATH for the demo to start/);
      expect(r.stderr).toMatch(
        /apt install etcd-server.*run `etcd`.*--etcd http:\/\/127\.0\.0\.1:2379/,
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('refuses flags of the other mode as usage errors', async () => {
    const a = await runCli(['demo', '--etcd', 'http://127.0.0.1:2379', '--skew-ms', '0,1,2']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/Invalid --skew-ms: "0,1,2"; expected no --skew-ms with --etcd/);
    const b = await runCli(['demo', '--ttl-ms', '3000']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(
      /Invalid --ttl-ms: "3000"; expected --ttl-ms only together with --etcd/,
    );
  });
});
