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
import { InvalidArgumentError } from '../errors.js';

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

/** A better-sqlite3 database in a fresh temporary directory, removed by `close()`. */
interface TempSqlite {
  readonly db: import('better-sqlite3').Database;
  /** Driver, version and file, for the report. */
  readonly description: string;
  close(): Promise<void>;
}

/** Opens SQLite in a fresh temporary directory and runs `createSql` there. */
async function openTempSqlite(createSql: string): Promise<TempSqlite> {
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
  db.exec(createSql);
  const version = db.prepare('SELECT sqlite_version() AS v').pluck().get() as string;
  return {
    db,
    description: `SQLite ${version} (better-sqlite3), temporary file ${file}`,
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/**
 * Opens SQLite in a fresh temporary directory.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} Saying how to install better-sqlite3 when it is missing.
 * @internal
 */
export async function openSqlite(): Promise<DemoDb> {
  const sqlite = await openTempSqlite(CREATE_SQL);
  const { db } = sqlite;
  const read = db.prepare<[string, string, string], DemoRow>(READ_SQL).safeIntegers(true);
  const upsert = db.prepare(UPSERT_SQL);
  return {
    description: sqlite.description,
    read(run, strategy, key) {
      const row = read.get(run, strategy, key);
      // safeIntegers() returns every integer as bigint; v is small.
      return Promise.resolve(row === undefined ? undefined : { ...row, v: Number(row.v) });
    },
    upsert(run, strategy, key, v, ts, node) {
      return Promise.resolve(upsert.run(run, strategy, key, v, ts, node).changes > 0);
    },
    close: () => sqlite.close(),
  };
}

/**
 * Checks a `--postgres` value before any connection is tried, so that a typo is
 * a usage error naming it rather than a DNS failure on part of it.
 * @throws {@link InvalidArgumentError} When `url` is not a `postgres://` or `postgresql://` URL.
 * @internal
 */
export function checkPostgresUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (
    parsed === undefined ||
    (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
  ) {
    throw new InvalidArgumentError(
      '--postgres',
      redactText(url),
      'a URL such as postgres://user:password@127.0.0.1:5432/database',
    );
  }
  return url;
}

async function connectPostgres(url: string): Promise<import('pg').Client> {
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
  return client;
}

/**
 * A PostgreSQL connection with the demo's table created. Statements take `?`
 * placeholders, as SQLite's do; `close()` deletes the rows whose keys were
 * written through `write()`, then disconnects.
 */
interface PostgresTable {
  /** Server version and (redacted) URL, for the report. */
  readonly description: string;
  /** Runs a statement that writes the rows of `key` (removed by `close()`); resolves whether it changed any. */
  write(key: string, sql: string, params: unknown[]): Promise<boolean>;
  /** Runs a query; resolves its first row, if any. */
  first<R extends import('pg').QueryResultRow>(
    sql: string,
    params: unknown[],
  ): Promise<R | undefined>;
  close(): Promise<void>;
}

async function openPostgresTable(
  url: string,
  createSql: string,
  table: string,
  keyColumn: string,
): Promise<PostgresTable> {
  const client = await connectPostgres(checkPostgresUrl(url));
  await client.query(createSql);
  const version = await client.query<{ server_version: string }>('SHOW server_version');
  const keys = new Set<string>();
  return {
    description: `PostgreSQL ${version.rows[0]?.server_version ?? '?'} at ${redact(url)}`,
    async write(key, sql, params) {
      keys.add(key);
      const result = await client.query(dollarParams(sql), params);
      return (result.rowCount ?? 0) > 0;
    },
    async first<R extends import('pg').QueryResultRow>(
      sql: string,
      params: unknown[],
    ): Promise<R | undefined> {
      const result = await client.query<R>(dollarParams(sql), params);
      return result.rows[0];
    },
    async close() {
      try {
        for (const key of keys) {
          await client.query(`DELETE FROM ${table} WHERE ${keyColumn} = $1`, [key]);
        }
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * Connects to PostgreSQL; the table is created if needed and this run's rows
 * are removed on close.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} Saying how to install pg when it is missing.
 * @internal
 */
export async function openPostgres(url: string): Promise<DemoDb> {
  const pg = await openPostgresTable(url, CREATE_SQL, DEMO_TABLE, 'run');
  return {
    description: pg.description,
    read: (run, strategy, key) =>
      pg.first<{ v: number; ts: string; node: string }>(READ_SQL, [run, strategy, key]),
    upsert: (run, strategy, key, v, ts, node) =>
      pg.write(run, UPSERT_SQL, [run, strategy, key, v, ts.toString(), node]),
    close: () => pg.close(),
  };
}

/**
 * The storage of `demo --etcd`: one row per run, written only with a fencing
 * token at least as large as the one it holds (the fenced-write recipe of
 * docs/safety.md, one atomic statement).
 * @internal
 */
export interface FencedDb {
  readonly description: string;
  /** Writes `value` under `token`; resolves whether the storage accepted it. */
  write(resource: string, value: string, token: bigint): Promise<boolean>;
  /** The row's value and fence. */
  read(resource: string): Promise<{ readonly value: string; readonly fence: bigint } | undefined>;
  /** Drops the run's rows (PostgreSQL) or the temporary file (SQLite). */
  close(): Promise<void>;
}

/** The fenced table of `demo --etcd`. @internal */
export const FENCED_TABLE = 'chronobound_demo_fenced';

const CREATE_FENCED_SQL = `CREATE TABLE IF NOT EXISTS ${FENCED_TABLE} (
  id    TEXT PRIMARY KEY,
  value TEXT,
  fence BIGINT NOT NULL
)`;

/** docs/safety.md's fenced-write recipe: the check and the write are one statement. */
const FENCED_WRITE_SQL = `INSERT INTO ${FENCED_TABLE} (id, value, fence) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET value = excluded.value, fence = excluded.fence
WHERE excluded.fence >= ${FENCED_TABLE}.fence`;

const FENCED_READ_SQL = `SELECT value, fence FROM ${FENCED_TABLE} WHERE id = ?`;

/**
 * The fenced table in SQLite, in a temporary file.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} Saying how to install better-sqlite3 when it is missing.
 * @internal
 */
export async function openFencedSqlite(): Promise<FencedDb> {
  const sqlite = await openTempSqlite(CREATE_FENCED_SQL);
  const { db } = sqlite;
  const write = db.prepare(FENCED_WRITE_SQL);
  const read = db
    .prepare<[string], { value: string; fence: bigint }>(FENCED_READ_SQL)
    .safeIntegers(true);
  return {
    description: sqlite.description,
    write: (resource, value, token) =>
      Promise.resolve(write.run(resource, value, token).changes > 0),
    read: (resource) => Promise.resolve(read.get(resource)),
    close: () => sqlite.close(),
  };
}

/**
 * The fenced table in PostgreSQL; the run's rows are removed on close.
 * @throws {@link InvalidArgumentError} When `url` is not a PostgreSQL URL.
 * @throws {@link https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Error | Error} When pg is missing or the server cannot be reached.
 * @internal
 */
export async function openFencedPostgres(url: string): Promise<FencedDb> {
  const pg = await openPostgresTable(url, CREATE_FENCED_SQL, FENCED_TABLE, 'id');
  return {
    description: pg.description,
    write: (resource, value, token) =>
      pg.write(resource, FENCED_WRITE_SQL, [resource, value, token.toString()]),
    async read(resource) {
      const row = await pg.first<{ value: string; fence: string }>(FENCED_READ_SQL, [resource]);
      return row === undefined ? undefined : { value: row.value, fence: BigInt(row.fence) };
    },
    close: () => pg.close(),
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

/** Hides what looks like a password in text that is not a valid URL. */
function redactText(text: string): string {
  return text.replace(/(\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}
