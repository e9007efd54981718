/**
 * Servers the CLI tests run against (PostgreSQL, chronyd, etcd): started once
 * before a suite's tests and stopped after them.
 */
import { afterAll, beforeAll } from 'vitest';

/**
 * Starts `start()` before the enclosing suite's tests and stops it after them;
 * call the returned function inside a test to get it.
 */
export function suiteFixture<T extends { stop(): Promise<void> }>(
  start: () => Promise<T>,
  startTimeoutMs: number = 120_000,
): () => T {
  let fixture: T | undefined;
  beforeAll(async () => {
    fixture = await start();
  }, startTimeoutMs);
  afterAll(async () => {
    await fixture?.stop();
  });
  return () => {
    if (fixture === undefined) throw new Error('the suite fixture did not start');
    return fixture;
  };
}

/** How many rows `table` holds in the PostgreSQL database at `connectionString`. */
export async function postgresRowCount(connectionString: string, table: string): Promise<number> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const result = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    return result.rows[0]?.n ?? Number.NaN;
  } finally {
    await client.end();
  }
}
