/**
 * The two databases `chronobound demo` can write to, behind one tiny interface:
 * SQLite in a temporary file (better-sqlite3) by default, PostgreSQL with
 * `--postgres URL` (pg). Both drivers are imported only when used, so the CLI
 * runs without them and says how to install the one that is missing.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One row of the demo table, as read back. @internal */
export interface DemoRow {
  readonly v: number;
  /** BIGINT as the driver returns it: bigint (better-sqlite3) or decimal string (pg). */
  readonly ts: bigint | string;
  readonly node: string;
}

/** @internal */
export interface DemoDb {
  /** Human description: driver and where the data lives. */
  readonly description: string;
  /** Reads the row of (run, strategy, key), if any. */
  read(run: string, strategy: string, key: string): Promise<DemoRow | undefined>;
  /** The last-write-wins upsert; resolves whether the row was written. */
  upsert(
    run: string,
    strategy: string,
    key: string,
    v: number,
    ts: bigint,
    node: string,
  ): Promise<boolean>;
  /** Drops the demo's rows (PostgreSQL) or the whole temporary file (SQLite). */
  close(): Promise<void>;
}

/** The table: one row per (run, strategy, key). @internal */
export const DEMO_TABLE = 'chronobound_demo';

const CREATE_SQL = `CREATE TABLE IF NOT EXISTS ${DEMO_TABLE} (
  run TEXT NOT NULL,
  strategy TEXT NOT NULL,
  k TEXT NOT NULL,
  v INTEGER NOT NULL,
  ts BIGINT NOT NULL,
  node TEXT NOT NULL,
  PRIMARY KEY (run, strategy, k)
)`;

/**
 * Last write wins by `(ts, node)`: the write is applied only if its stamp is
 * larger than the stored one. This is the rule every strategy shares; they
 * differ only in how `ts` is chosen. A losing write changes nothing and raises
 * no error, which is exactly how LWW loses data silently.
 */
const UPSERT_SQL = `INSERT INTO ${DEMO_TABLE} (run, strategy, k, v, ts, node)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run, strategy, k) DO UPDATE
SET v = excluded.v, ts = excluded.ts, node = excluded.node
WHERE (excluded.ts, excluded.node) > (${DEMO_TABLE}.ts, ${DEMO_TABLE}.node)`;

const READ_SQL = `SELECT v, ts, node FROM ${DEMO_TABLE} WHERE run = ? AND strategy = ? AND k = ?`;

function dollarParams(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

function isMissingModule(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/**
 * Opens SQLite in a fresh temporary directory.
 * @throws {Error} Saying how to install better-sqlite3 when it is missing.
 * @internal
 */
export async function openSqlite(): Promise<DemoDb> {
  let Database: typeof import('better-sqlite3');
  try {
    Database = (await import('better-sqlite3')).default;
  } catch (error) {
    if (!isMissingModule(error)) throw error;
    throw new Error(
      'the demo stores its rows in SQLite through better-sqlite3, which is not installed; ' +
        'run `npm install better-sqlite3` (or use --postgres URL with `npm install pg`)',
      { cause: error },
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'chronobound-demo-'));
  const file = join(dir, 'demo.sqlite');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(CREATE_SQL);
  const read = db.prepare<[string, string, string], DemoRow>(READ_SQL).safeIntegers(true);
  const upsert = db.prepare(UPSERT_SQL);
  return {
    description: `SQLite ${db.prepare('SELECT sqlite_version() AS v').pluck().get() as string} (better-sqlite3), temporary file ${file}`,
    read(run, strategy, key) {
      const row = read.get(run, strategy, key);
      // safeIntegers() returns every integer as bigint; v is small.
      return Promise.resolve(row === undefined ? undefined : { ...row, v: Number(row.v) });
    },
    upsert(run, strategy, key, v, ts, node) {
      return Promise.resolve(upsert.run(run, strategy, key, v, ts, node).changes > 0);
    },
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/**
 * Connects to PostgreSQL; the table is created if needed and this run's rows
 * are removed on close.
 * @throws {Error} Saying how to install pg when it is missing.
 * @internal
 */
export async function openPostgres(url: string): Promise<DemoDb> {
  let Client: typeof import('pg').Client;
  try {
    Client = (await import('pg')).default.Client;
  } catch (error) {
    if (!isMissingModule(error)) throw error;
    throw new Error(
      '--postgres needs the pg driver, which is not installed; run `npm install pg`',
      { cause: error },
    );
  }
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  // An idle-connection error must not crash the process with an unhandled 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot connect to PostgreSQL at ${redact(url)}: ${why}`, { cause: error });
  }
  await client.query(CREATE_SQL);
  const version =
    (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]
      ?.server_version ?? '?';
  const runs = new Set<string>();
  return {
    description: `PostgreSQL ${version} at ${redact(url)}`,
    async read(run, strategy, key) {
      const result = await client.query<{ v: number; ts: string; node: string }>(
        dollarParams(READ_SQL),
        [run, strategy, key],
      );
      return result.rows[0];
    },
    async upsert(run, strategy, key, v, ts, node) {
      runs.add(run);
      const result = await client.query(dollarParams(UPSERT_SQL), [
        run,
        strategy,
        key,
        v,
        ts.toString(),
        node,
      ]);
      return (result.rowCount ?? 0) > 0;
    },
    async close() {
      try {
        for (const run of runs) {
          await client.query(`DELETE FROM ${DEMO_TABLE} WHERE run = $1`, [run]);
        }
      } finally {
        await client.end();
      }
    },
  };
}

/** Hides the password in a connection URL before printing it. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(the given URL)';
  }
}
