/**
 * Crash safety of stamped writes.
 *
 * 1. A writer process is killed with SIGKILL at random points (during start-up,
 *    between statements, inside a transaction, while its clock persists its
 *    bound) and restarted with `filePersistence` and a physical clock stepped
 *    back by up to 400 ms, 60 times against SQLite and 20 times against
 *    PostgreSQL, concurrently. It never issues a stamp ≤ one issued before, no
 *    committed row is lost, and no row is overwritten by an older one.
 *    A control run without persistence shows the check catches reissued stamps.
 * 2. PostgreSQL is crashed and restarted under three writers: they get clear
 *    connection errors, retry with the same stamp (idempotent), and nothing
 *    acknowledged is lost.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HybridLogicalClock, hlcToBigInt, stampWrite } from '../../src/index.js';
import { mulberry32 } from '../../src/_internals/prng.js';
import { seed } from '../support/fc.js';
import {
  HISTORY_INSERT,
  KV_UPSERT,
  PG_SCHEMA,
  SQLITE_SCHEMA,
  dollarParams,
} from './fixtures/crash-sql.mjs';
import { locatePostgres, startPostgres, type PostgresCluster } from './helpers/postgres.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const binDir = locatePostgres();
const SCALE = process.env['CHRONOBOUND_LONG'] ? 5 : 1;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'chronobound-crash-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface WriterEnv {
  WRITER_DB: 'sqlite' | 'pg';
  WRITER_TARGET: string;
  WRITER_LOG: string;
  WRITER_HLC: string;
  WRITER_NODE: string;
  WRITER_KEYS: string;
}

/**
 * The environment of writer `name` against `target` (a SQLite file or a
 * PostgreSQL connection string): its log and, when it persists, its clock's
 * file in the test's directory.
 */
function writerEnv(
  db: WriterEnv['WRITER_DB'],
  target: string,
  name: string,
  options: { keys: number; persist: boolean },
): WriterEnv {
  return {
    WRITER_DB: db,
    WRITER_TARGET: target,
    WRITER_LOG: join(dir, `${name}.log`),
    WRITER_HLC: options.persist ? join(dir, `${name}-hlc.json`) : '',
    WRITER_NODE: name,
    WRITER_KEYS: String(options.keys),
  };
}

/**
 * Starts the writer and SIGKILLs it: `fromSpawn` kills `delayMs` after the spawn
 * (often during start-up), otherwise `delayMs` after it reports ready.
 */
async function killCycle(
  env: WriterEnv,
  offsetMs: number,
  windowMs: number,
  delayMs: number,
  fromSpawn: boolean,
  minIssued = 0,
): Promise<void> {
  const child = spawn(process.execPath, [FIXTURE], {
    env: {
      ...process.env,
      ...env,
      WRITER_OFFSET: String(offsetMs),
      WRITER_WINDOW: String(windowMs),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(signal);
      else reject(new Error(`writer exited by itself (code ${code}): ${stderr}`));
    });
  });
  const kill = () => setTimeout(() => child.kill('SIGKILL'), delayMs);
  if (fromSpawn) kill();
  else if (minIssued === 0) child.stdout.once('data', kill);
  else {
    // Kill only once this incarnation has issued `minIssued` stamps.
    const before = countIssued(env.WRITER_LOG);
    const poll = setInterval(() => {
      if (countIssued(env.WRITER_LOG) - before >= minIssued) {
        clearInterval(poll);
        kill();
      }
    }, 5);
    child.once('exit', () => clearInterval(poll));
  }
  await exited;
}

function countIssued(path: string): number {
  try {
    return readFileSync(path, 'utf8').split('\nI ').length - 1;
  } catch {
    return 0;
  }
}

interface LogCheck {
  incarnations: number;
  issued: bigint[];
  acked: Set<bigint>;
}

/**
 * The line the writer was writing when kill -9 struck, cut short: the kernel stops
 * a write that crosses a page boundary once a fatal signal is pending, so the tail
 * and the newline may be missing. The next incarnation's `R` line then follows on
 * the same line (captured), or the file ends there.
 */
const CUT_LINE = /^[RIA](?: \d*)?(R \d+)?$/;

/**
 * Parses the writer's log and checks that issued stamps strictly increase across restarts.
 * A cut line is accepted only where a kill can leave one, just before an `R` line or at
 * the end of the file, and counts as not written: a cut `I` line's transaction never
 * began, and a cut `A` line acknowledged nothing.
 */
function readLog(path: string): LogCheck {
  const lines = readFileSync(path, 'utf8').split('\n');
  const issued: bigint[] = [];
  const acked = new Set<bigint>();
  let incarnations = 0;
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    let text = line;
    if (!/^[RIA] \d+$/.test(text)) {
      const cut = CUT_LINE.exec(text);
      const last = i === lines.length - 1; // no newline follows it
      if (cut?.[1] !== undefined) text = cut[1];
      else if (cut !== null && last) continue;
      else throw new Error(`torn or unexpected log line: ${JSON.stringify(line)}`);
    }
    const m = /^([RIA]) (\d+)$/.exec(text);
    if (!m) throw new Error(`torn or unexpected log line: ${JSON.stringify(line)}`);
    const value = BigInt(m[2]!);
    if (m[1] === 'R') incarnations++;
    else if (m[1] === 'I') issued.push(value);
    else acked.add(value);
  }
  return { incarnations, issued, acked };
}

function firstRegression(stamps: readonly bigint[]): number {
  for (let i = 1; i < stamps.length; i++) if (stamps[i]! <= stamps[i - 1]!) return i;
  return -1;
}

interface DbState {
  history: Array<{ stamp: bigint; k: string; v: number }>;
  kv: Map<string, { hlc: bigint; v: number }>;
}

function checkDatabase(state: DbState, log: LogCheck): void {
  // History in commit order: strictly increasing stamps, even across crashes.
  const stamps = state.history.map((h) => h.stamp);
  expect(firstRegression(stamps)).toBe(-1);
  // Nothing committed that was not issued; nothing acknowledged that was lost.
  const issued = new Set(log.issued);
  for (const s of stamps) expect(issued.has(s)).toBe(true);
  const committed = new Set(stamps);
  for (const a of log.acked) expect(committed.has(a)).toBe(true);
  // Every key holds its newest committed write: never overwritten by an older one.
  const newest = new Map<string, { stamp: bigint; v: number }>();
  for (const h of state.history) newest.set(h.k, h);
  expect(state.kv.size).toBe(newest.size);
  for (const [k, h] of newest) {
    expect(state.kv.get(k)).toEqual({ hlc: h.stamp, v: h.v });
  }
}

function createSqlite(path: string): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(SQLITE_SCHEMA);
  db.close();
}

function readSqlite(path: string): DbState {
  const db = new Database(path);
  db.defaultSafeIntegers(true);
  const history = (
    db.prepare('SELECT stamp, k, v FROM history ORDER BY id').all() as Array<{
      stamp: bigint;
      k: string;
      v: bigint;
    }>
  ).map((h) => ({ stamp: h.stamp, k: h.k, v: Number(h.v) }));
  const kv = new Map(
    (
      db.prepare('SELECT k, v, hlc FROM kv').all() as Array<{ k: string; v: bigint; hlc: bigint }>
    ).map((r) => [r.k, { hlc: r.hlc, v: Number(r.v) }]),
  );
  db.close();
  return { history, kv };
}

async function readPg(client: pg.Client): Promise<DbState> {
  const history = (
    await client.query<{ stamp: string; k: string; v: number }>(
      'SELECT stamp, k, v FROM history ORDER BY id',
    )
  ).rows.map((h) => ({ stamp: BigInt(h.stamp), k: h.k, v: h.v }));
  const kv = new Map(
    (
      await client.query<{ k: string; v: number; hlc: string }>('SELECT k, v, hlc FROM kv')
    ).rows.map((r) => [r.k, { hlc: BigInt(r.hlc), v: r.v }]),
  );
  return { history, kv };
}

async function runCycles(
  env: WriterEnv,
  cycles: number,
  random: () => number,
  maxDelayMs: number,
): Promise<void> {
  for (let c = 0; c < cycles; c++) {
    const fromSpawn = random() < 0.2;
    const delay = fromSpawn ? random() * 120 : random() * maxDelayMs;
    // Stepped back from the real clock by up to 400 ms: without persistence the
    // restarted writer would reissue stamps below the ones it issued before.
    const offset = -Math.floor(random() * 400);
    const window = 1 + Math.floor(random() * 100);
    await killCycle(env, offset, window, delay, fromSpawn);
  }
}

describe('kill -9 and restart with filePersistence', () => {
  let cluster: PostgresCluster | undefined;
  let client: pg.Client | undefined;

  beforeAll(async () => {
    if (binDir === undefined) return;
    cluster = await startPostgres();
    client = new pg.Client({ connectionString: cluster.connectionString });
    await client.connect();
    await client.query(PG_SCHEMA);
  });
  afterAll(async () => {
    await client?.end();
    await cluster?.stop();
  });

  it('never reissues a stamp and loses or regresses no committed row (SQLite ×60, PostgreSQL ×20)', async () => {
    const sqlitePath = join(dir, 'crash.db');
    createSqlite(sqlitePath);
    const sqliteEnv = writerEnv('sqlite', sqlitePath, 'sqlite-writer', { keys: 8, persist: true });
    const runs: Array<Promise<void>> = [runCycles(sqliteEnv, 60 * SCALE, mulberry32(seed), 60)];
    let pgEnv: WriterEnv | undefined;
    if (cluster) {
      pgEnv = writerEnv('pg', cluster.connectionString, 'pg-writer', { keys: 8, persist: true });
      runs.push(runCycles(pgEnv, 20 * SCALE, mulberry32(seed + 1), 200));
    }
    await Promise.all(runs);

    const sqliteLog = readLog(sqliteEnv.WRITER_LOG);
    expect(firstRegression(sqliteLog.issued)).toBe(-1);
    const sqliteState = readSqlite(sqlitePath);
    checkDatabase(sqliteState, sqliteLog);
    let summary = `sqlite: ${sqliteLog.incarnations} incarnations reached the loop, ${sqliteLog.issued.length} stamps issued, ${sqliteState.history.length} committed`;
    // Most kills must land while writing, or the test proves little.
    expect(sqliteLog.incarnations).toBeGreaterThanOrEqual(30);
    expect(sqliteState.history.length).toBeGreaterThan(100);

    if (pgEnv && client) {
      const pgLog = readLog(pgEnv.WRITER_LOG);
      expect(firstRegression(pgLog.issued)).toBe(-1);
      const pgState = await readPg(client);
      checkDatabase(pgState, pgLog);
      expect(pgLog.incarnations).toBeGreaterThanOrEqual(10);
      summary += `; postgres: ${pgLog.incarnations} incarnations, ${pgLog.issued.length} issued, ${pgState.history.length} committed`;
    }
    console.log(summary);
    // 80 kill -9 cycles of child processes: beside a CPU-heavy neighbour they took over 60 s.
  }, 300_000);

  it('control: without persistence, the same restart does reissue old stamps', async () => {
    const path = join(dir, 'control.db');
    createSqlite(path);
    const env = writerEnv('sqlite', path, 'forgetful', { keys: 4, persist: false });
    await killCycle(env, 0, 1000, 0, false, 20);
    await killCycle(env, -2000, 1000, 0, false, 20);
    const log = readLog(env.WRITER_LOG);
    expect(log.incarnations).toBe(2);
    expect(firstRegression(log.issued)).toBeGreaterThan(0);
  });
});

/** Connection failures a writer may see while the server restarts. */
const EXPECTED_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08006',
  '08003',
]);
const EXPECTED_MESSAGES =
  /Connection terminated|connection error|not queryable|terminating connection|Client was closed|timeout exceeded when trying to connect|the database system is (starting up|shutting down|in recovery mode)/i;

describe.runIf(binDir !== undefined)('PostgreSQL restart during a run', () => {
  it('writers get clear errors, retry, and lose nothing acknowledged', async () => {
    const cluster = await startPostgres();
    const admin = new pg.Client({ connectionString: cluster.connectionString });
    try {
      await admin.connect();
      await admin.query(PG_SCHEMA);
      await admin.end();

      const pool = new pg.Pool({
        connectionString: cluster.connectionString,
        max: 3,
        connectionTimeoutMillis: 3000,
      });
      const errors: Error[] = [];
      // An idle connection dropped by the server surfaces here; without a handler it would crash.
      pool.on('error', (e) => errors.push(e));
      // So does a FATAL that arrives between two statements of a checked-out connection.
      pool.on('connect', (client) => client.on('error', (e) => errors.push(e)));

      // A retry of a write that did commit (its reply lost) is not appended twice.
      const retriedHistoryInsert = `${dollarParams(HISTORY_INSERT)} ON CONFLICT (stamp, node) DO NOTHING`;
      const kvUpsert = dollarParams(KV_UPSERT);
      let stop = false;
      const acked: Array<{ node: string; stamp: bigint; k: string; v: number; at: number }> = [];
      const writer = async (node: string) => {
        const hlc = new HybridLogicalClock({ node });
        let n = 0;
        while (!stop) {
          const k = `k${n % 5}`;
          const v = n++;
          // One stamp per logical write; retries reuse it, so a commit whose
          // reply was lost is not applied twice.
          const stamp = hlcToBigInt(stampWrite(hlc, (ts) => ts).timestamp);
          for (let attempt = 0; ; attempt++) {
            try {
              const c = await pool.connect();
              try {
                await c.query('BEGIN');
                await c.query(retriedHistoryInsert, [stamp, node, k, v]);
                await c.query(kvUpsert, [k, v, stamp, node]);
                await c.query('COMMIT');
                c.release();
              } catch (e) {
                c.release(e as Error); // discard the broken connection
                throw e;
              }
              acked.push({ node, stamp, k, v, at: performance.now() });
              break;
            } catch (e) {
              errors.push(e as Error);
              if (attempt > 200) throw e;
              await new Promise((r) => setTimeout(r, 25));
            }
          }
        }
      };
      const writers = ['w1', 'w2', 'w3'].map((node) => writer(node));
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      await sleep(300);
      await cluster.restart({ mode: 'immediate', downMs: 400 }); // a crash
      const afterCrash = performance.now();
      await sleep(300);
      await cluster.restart({ mode: 'fast', downMs: 200 }); // an orderly restart
      const afterRestart = performance.now();
      await sleep(300);
      stop = true;
      await Promise.all(writers);
      await pool.end();

      expect(errors.length).toBeGreaterThan(0);
      const unclear = errors.filter(
        (e) =>
          !EXPECTED_CODES.has((e as { code?: string }).code ?? '') &&
          !EXPECTED_MESSAGES.test(e.message),
      );
      expect(unclear.map((e) => `${(e as { code?: string }).code}: ${e.message}`)).toEqual([]);
      expect(acked.some((a) => a.at > afterCrash && a.at < afterRestart)).toBe(true);
      expect(acked.some((a) => a.at > afterRestart)).toBe(true);

      const check = new pg.Client({ connectionString: cluster.connectionString });
      await check.connect();
      const history = (
        await check.query<{ stamp: string; node: string; k: string; v: number }>(
          'SELECT stamp, node, k, v FROM history ORDER BY id',
        )
      ).rows;
      const kv = (
        await check.query<{ k: string; v: number; hlc: string; node: string }>('SELECT * FROM kv')
      ).rows;
      await check.end();

      const stored = new Set(history.map((h) => `${h.node}/${h.stamp}`));
      const lost = acked.filter((a) => !stored.has(`${a.node}/${a.stamp}`));
      expect(lost).toEqual([]);
      expect(history.length).toBe(stored.size); // retries did not duplicate
      // Each key holds its largest (stamp, node) ever committed.
      const best = new Map<string, { stamp: bigint; node: string; v: number }>();
      for (const h of history) {
        const s = BigInt(h.stamp);
        const cur = best.get(h.k);
        if (!cur || s > cur.stamp || (s === cur.stamp && h.node > cur.node)) {
          best.set(h.k, { stamp: s, node: h.node, v: h.v });
        }
      }
      for (const row of kv) {
        expect({ stamp: BigInt(row.hlc), node: row.node, v: row.v }).toEqual(best.get(row.k));
      }
      const codes = [...new Set(errors.map((e) => (e as { code?: string }).code ?? e.message))];
      console.log(
        `postgres restart: ${acked.length} writes acknowledged, ${errors.length} errors retried (${codes.join(', ')}), none lost`,
      );
    } finally {
      await cluster.stop();
    }
  });
});
