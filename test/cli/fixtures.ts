/**
 * What the CLI demo tests read back from the PostgreSQL they run against (the
 * servers themselves are suite fixtures: test/support/suite-fixture.ts).
 */

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
