/**
 * Throwaway etcd clusters for integration tests: `etcd` (Debian `etcd-server`,
 * 3.4) members on free loopback ports, data and logs in a temp directory that
 * {@link EtcdCluster.stop} removes; and a TCP proxy that delays traffic between
 * a client and a member; and the fenced register in PostgreSQL that the lease
 * holders write to.
 *
 * Where the binary is missing the suites skip locally, but under CI
 * (`process.env.CI`) {@link locateEtcd} throws: a missing etcd is a failure
 * there, never a silent skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { TrueClock, systemClockSource } from '../../../src/index.js';
import { checkMonotonic } from '../../../src/testing/index.js';
import { freePort, startPostgres, type PostgresCluster } from './postgres.js';

function candidates(): string[] {
  const list: string[] = [];
  if (process.env['ETCD_BIN']) list.push(process.env['ETCD_BIN']);
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir) list.push(join(dir, 'etcd'));
  list.push('/usr/bin/etcd', '/usr/local/bin/etcd');
  return list;
}

/**
 * The `etcd` binary, or `undefined` when it is not installed (local runs skip).
 * Under CI it throws instead.
 */
export function locateEtcd(): string | undefined {
  for (const path of candidates()) if (existsSync(path)) return path;
  if (process.env['CI']) {
    throw new Error(
      'etcd not found (looked in ETCD_BIN, PATH, /usr/bin, /usr/local/bin); CI must run the etcd ' +
        'tests: install etcd-server (node scripts/system-deps.mjs does) or set ETCD_BIN.',
    );
  }
  return undefined;
}

/** One member of a test cluster. */
export interface EtcdMember {
  readonly name: string;
  /** `http://127.0.0.1:PORT`, the client URL. */
  readonly clientUrl: string;
  readonly clientPort: number;
  readonly peerUrl: string;
  /** Whether its process is running. */
  readonly running: boolean;
  /** The process id while running. */
  readonly pid: number | undefined;
}

/** What {@link startEtcdCluster} returns. */
export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** The client URLs, in member order. */
  readonly endpoints: readonly string[];
  readonly dir: string;
  /** SIGKILLs member `i` and waits for it to exit. */
  kill(i: number): Promise<void>;
  /** Starts a killed member again on its data directory and waits until it serves. */
  restart(i: number): Promise<void>;
  /** The index of the member that is the raft leader now (asks the members). */
  leaderIndex(): Promise<number>;
  /** Waits until some member reports a leader and answers a linearizable read. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Compacts the store up to `revision`. */
  compact(revision: bigint): Promise<void>;
  /** A member's log, for failure messages. */
  log(i: number): Promise<string>;
  /** Kills every member and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startEtcdCluster}. */
export interface StartEtcdOptions {
  /** Members; default 3. */
  readonly size?: number;
  /** The binary; default {@link locateEtcd}. */
  readonly binary?: string;
  /** Raft heartbeat (ms); default 100 (etcd's). */
  readonly heartbeatMs?: number;
  /** Raft election timeout (ms); default 1000 (etcd's). */
  readonly electionTimeoutMs?: number;
}

/** POSTs JSON to a member's gateway. */
export async function etcdPost(
  url: string,
  path: string,
  body: unknown,
  timeoutMs = 5_000,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  return JSON.parse(text.split('\n')[0] ?? '{}') as Record<string, unknown>;
}

/** Polls `probe` until it returns true (every `everyMs`) or throws after `timeoutMs` with `what`. */
export async function waitFor(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Starts a cluster of `size` members on loopback and waits until it has a leader.
 *
 * @throws {Error} When etcd is not installed or the cluster does not come up (logs in the message).
 */
export async function startEtcdCluster(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const binary = options.binary ?? locateEtcd();
  if (binary === undefined) throw new Error('etcd is not installed');
  const size = options.size ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-etcd-'));
  const specs: { name: string; clientPort: number; peerPort: number }[] = [];
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < size; i++) {
    specs.push({ name: `m${i}`, clientPort: await port(), peerPort: await port() });
  }
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
  const token = `chronobound-${process.pid}-${Date.now()}`;
  const procs: (ChildProcess | undefined)[] = specs.map(() => undefined);
  const exited: (Promise<void> | undefined)[] = specs.map(() => undefined);

  const launch = (i: number): void => {
    const s = specs[i]!;
    const logPath = join(dir, `${s.name}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(
      binary,
      [
        '--name',
        s.name,
        '--data-dir',
        join(dir, s.name),
        '--listen-client-urls',
        `http://127.0.0.1:${s.clientPort}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${s.clientPort}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${s.peerPort}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${s.peerPort}`,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        token,
        '--heartbeat-interval',
        String(options.heartbeatMs ?? 100),
        '--election-timeout',
        String(options.electionTimeoutMs ?? 1000),
        '--logger',
        'zap',
        '--log-outputs',
        'stderr',
      ],
      { stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    procs[i] = child;
    exited[i] = new Promise((resolve) => child.once('exit', () => resolve()));
  };

  const clientUrl = (i: number): string => `http://127.0.0.1:${specs[i]!.clientPort}`;
  const memberServes = async (i: number): Promise<boolean> => {
    const status = await etcdPost(clientUrl(i), '/v3/maintenance/status', {}, 1_000);
    return typeof status['leader'] === 'string' && status['leader'] !== '0';
  };

  let stopped = false;
  const killAll = (): void => {
    for (const p of procs) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  };
  const onExit = (): void => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const cluster: EtcdCluster = {
    get members() {
      return specs.map((s, i) => ({
        name: s.name,
        clientUrl: clientUrl(i),
        clientPort: s.clientPort,
        peerUrl: `http://127.0.0.1:${s.peerPort}`,
        running: isRunning(procs[i]),
        pid: procs[i]?.pid,
      }));
    },
    endpoints: specs.map((_, i) => clientUrl(i)),
    dir,
    async kill(i) {
      const p = procs[i];
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      p.kill('SIGKILL');
      await exited[i];
    },
    async restart(i) {
      const p = procs[i];
      if (p && p.exitCode === null && p.signalCode === null) return;
      launch(i);
      await waitFor(`member ${specs[i]!.name} to serve again`, () => memberServes(i), 60_000);
    },
    async leaderIndex() {
      for (let i = 0; i < specs.length; i++) {
        try {
          const status = await etcdPost(clientUrl(i), '/v3/maintenance/status', {}, 1_000);
          const header = status['header'] as { member_id?: string } | undefined;
          if (header?.member_id !== undefined && status['leader'] === header.member_id) return i;
        } catch {
          // Not running; ask the next.
        }
      }
      throw new Error('no member reports being the leader');
    },
    async waitHealthy(timeoutMs = 60_000) {
      await waitFor(
        'the etcd cluster to elect a leader and serve a linearizable read',
        async () => {
          for (let i = 0; i < specs.length; i++) {
            try {
              const r = await etcdPost(clientUrl(i), '/v3/kv/range', { key: 'aGVhbHRo' }, 2_000);
              if (r['header'] !== undefined && r['error'] === undefined) return true;
            } catch {
              // Try the next member.
            }
          }
          return false;
        },
        timeoutMs,
        100,
      );
    },
    async compact(revision) {
      for (let i = 0; i < specs.length; i++) {
        if (!cluster.members[i]!.running) continue;
        const r = await etcdPost(clientUrl(i), '/v3/kv/compaction', {
          revision: revision.toString(),
          physical: true,
        });
        if (r['error'] !== undefined) throw new Error(`compaction failed: ${JSON.stringify(r)}`);
        return;
      }
      throw new Error('no member running');
    },
    log: (i) => readFile(join(dir, `${specs[i]!.name}.log`), 'utf8').catch(() => ''),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      killAll();
      await Promise.all(exited.filter((e): e is Promise<void> => e !== undefined));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    for (let i = 0; i < size; i++) launch(i);
    await cluster.waitHealthy(60_000);
  } catch (error) {
    const logs = await Promise.all(specs.map((_, i) => cluster.log(i)));
    await cluster.stop();
    throw new Error(
      `etcd cluster did not start: ${(error as Error).message}\n${logs.map((l) => l.slice(-2000)).join('\n---\n')}`,
    );
  }
  return cluster;
}

function isRunning(p: ChildProcess | undefined): boolean {
  return p !== undefined && p.exitCode === null && p.signalCode === null;
}

/** A TCP proxy in front of one member that delays every chunk, each way. */
export interface DelayProxy {
  /** `http://127.0.0.1:PORT`, to use as an etcd endpoint. */
  readonly url: string;
  readonly port: number;
  /** The one-way delay now (ms). */
  readonly delayMs: number;
  /** Sets the one-way delay for data that arrives from now on. */
  setDelay(ms: number): void;
  /** Bytes forwarded so far, client → member and member → client. */
  readonly forwarded: { readonly up: number; readonly down: number };
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/**
 * Starts a loopback TCP proxy to `target` (`host:port`) that holds every chunk
 * `delayMs` before forwarding it, in order, in both directions — a network
 * delay injected between a client and etcd. When either side closes, the other
 * is closed and undelivered data is dropped.
 */
export async function startDelayProxy(
  target: { host: string; port: number },
  delayMs: number,
): Promise<DelayProxy> {
  let delay = delayMs;
  const forwarded = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const pipeDelayed = (from: Socket, to: Socket, direction: 'up' | 'down'): void => {
    let lastDue = 0;
    from.on('data', (chunk: Buffer) => {
      const due = Math.max(performance.now() + delay, lastDue);
      lastDue = due;
      setTimeout(() => {
        if (to.destroyed) return;
        forwarded[direction] += chunk.length;
        to.write(chunk);
      }, due - performance.now());
    });
  };
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    pipeDelayed(client, upstream, 'up');
    pipeDelayed(upstream, client, 'down');
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get delayMs() {
      return delay;
    },
    setDelay(ms) {
      delay = ms;
    },
    forwarded,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The storage of the etcd tests: the fenced register of docs/safety.md, plus a log of accepted writes. */
export const FENCED_SCHEMA = `
  DROP TABLE IF EXISTS fenced_resource, fenced_log;
  CREATE TABLE fenced_resource (id TEXT PRIMARY KEY, value TEXT, fence BIGINT NOT NULL);
  CREATE TABLE fenced_log (
    seq    BIGSERIAL PRIMARY KEY,   -- commit order: the UPDATE's row lock serializes writers
    token  BIGINT NOT NULL,
    holder TEXT NOT NULL,
    value  TEXT NOT NULL
  );
  INSERT INTO fenced_resource (id, value, fence) VALUES ('report', 'initial', 0);`;

/**
 * One statement: the fenced-update recipe (`fence <= :token`) and, only when it
 * took effect, a log row. Accepted when a row comes back.
 */
export const FENCED_WRITE = `
  WITH w AS (
    UPDATE fenced_resource SET value = $2, fence = $3 WHERE id = 'report' AND fence <= $3 RETURNING fence
  )
  INSERT INTO fenced_log (token, holder, value) SELECT $3, $1, $2 FROM w RETURNING seq`;

/** What a `pg` client offers that the helpers use. */
export interface Queryable {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rowCount: number | null; rows: Record<string, unknown>[] }>;
}

/** Writes `value` with `token`; `true` when the storage accepted it. */
export async function fencedWrite(
  db: Queryable,
  holder: string,
  value: string,
  token: bigint,
): Promise<boolean> {
  const result = await db.query(FENCED_WRITE, [holder, value, token.toString()]);
  return result.rowCount === 1;
}

/** The register's value and fence. */
export async function readRegister(db: Queryable): Promise<{ value: string; fence: bigint }> {
  const { rows } = await db.query(`SELECT value, fence FROM fenced_resource WHERE id = 'report'`);
  return { value: String(rows[0]!['value']), fence: BigInt(String(rows[0]!['fence'])) };
}

/** The accepted writes, in commit order. */
export async function readLog(
  db: Queryable,
): Promise<{ seq: number; token: bigint; holder: string; value: string }[]> {
  const { rows } = await db.query('SELECT seq, token, holder, value FROM fenced_log ORDER BY seq');
  return rows.map((r) => ({
    seq: Number(r['seq']),
    token: BigInt(String(r['token'])),
    holder: String(r['holder']),
    value: String(r['value']),
  }));
}

/** What {@link startFencedStorage} starts. */
export interface FencedStorage {
  readonly postgres: PostgresCluster;
  /** A client connected to it; run {@link FENCED_SCHEMA} to reset the register. */
  readonly db: pg.Client;
  /** The lease holders' clock: the system clock, trusted within ±5 ms. */
  readonly clock: TrueClock;
  stop(): Promise<void>;
}

/**
 * The etcd tests' storage and clock: a throwaway PostgreSQL, a client on it,
 * and a ready `TrueClock` for the lease holders.
 *
 * @throws Error when PostgreSQL does not start or the clock is not ready in 5 s.
 */
export async function startFencedStorage(): Promise<FencedStorage> {
  const postgres = await startPostgres();
  const db = new pg.Client({ connectionString: postgres.connectionString });
  await db.connect();
  const clock = new TrueClock({ source: systemClockSource({ assumedErrorMs: 5, trusted: true }) });
  await clock.ready({ timeoutMs: 5_000 });
  return {
    postgres,
    db,
    clock,
    stop: async () => {
      await clock.close();
      await db.end();
      await postgres.stop();
    },
  };
}

/**
 * Reads the log of accepted writes and checks that no two holders' writes
 * interleave: in commit order, tokens never go back.
 */
export async function expectTokensInCommitOrder(
  db: Queryable,
): Promise<Awaited<ReturnType<typeof readLog>>> {
  const log = await readLog(db);
  const order = checkMonotonic(
    log.map((l) => l.token),
    (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    { strict: false },
  );
  expect(order.ok, order.ok ? '' : order.message).toBe(true);
  return log;
}
