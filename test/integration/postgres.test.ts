/**
 * PostgreSQL 15 (throwaway cluster): last-write-wins by wall clock loses
 * causally later writes under skew (DDIA Fig. 8-3); stamped with a hybrid
 * logical clock it never does. Bad stamps are refused at the boundary (the
 * suites of helpers/lww-suite.ts). node-postgres returns BIGINT as a decimal
 * string, which is how the stamps come back here.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HybridLogicalClock, decodeHlc, hlcToBigInt, sqlHlc } from '../../src/index.js';
import { LWW_UPSERT_SQL, dollarParams, type LwwRow } from './helpers/lww.js';
import { lwwSuite, type LwwDatabase } from './helpers/lww-suite.js';
import { locatePostgres, startPostgres, type PostgresCluster } from './helpers/postgres.js';

const binDir = locatePostgres();

describe.runIf(binDir !== undefined)('PostgreSQL', () => {
  let cluster: PostgresCluster;
  let client: pg.Client;
  let database: LwwDatabase;

  beforeAll(async () => {
    cluster = await startPostgres();
    client = new pg.Client({ connectionString: cluster.connectionString });
    await client.connect();
    await client.query(`CREATE TABLE lww (
      run INTEGER NOT NULL, k TEXT NOT NULL, v INTEGER NOT NULL,
      hlc BIGINT NOT NULL, node TEXT NOT NULL, wid INTEGER NOT NULL,
      PRIMARY KEY (run, k))`);
    const upsertSql = dollarParams(LWW_UPSERT_SQL);
    database = {
      read: async (run, key) =>
        (
          await client.query<LwwRow>({
            name: 'lww-read',
            text: 'SELECT v, hlc, node, wid FROM lww WHERE run = $1 AND k = $2',
            values: [run, key],
          })
        ).rows[0],
      upsert: async (run, key, v, stamp, node, wid) =>
        (
          await client.query({
            name: 'lww-upsert',
            text: upsertSql,
            values: [run, key, v, stamp, node, wid],
          })
        ).rowCount === 1,
      insertRaw: (run, key, v, stamp, node, wid) =>
        client.query('INSERT INTO lww VALUES ($1, $2, $3, $4, $5, $6)', [
          run,
          key,
          v,
          stamp,
          node,
          wid,
        ]),
    };
  });

  afterAll(async () => {
    await client?.end();
    await cluster?.stop();
  });

  it('returns BIGINT stamps as decimal text that decodes exactly', async () => {
    const ts = new HybridLogicalClock({ node: 'pg' }).now();
    const { rows } = await client.query<{ hlc: string }>('SELECT $1::bigint AS hlc', [
      hlcToBigInt(ts),
    ]);
    expect(typeof rows[0]!.hlc).toBe('string');
    expect(decodeHlc(rows[0]!.hlc, 'pg')).toEqual(ts);
    // The sortable text form orders like the BIGINT under PostgreSQL's C collation too.
    const a = sqlHlc({ wallMs: ts.wallMs, counter: 9, node: 'b' });
    const b = sqlHlc({ wallMs: ts.wallMs, counter: 10, node: 'a' });
    const cmp = await client.query<{ lt: boolean }>('SELECT $1::text COLLATE "C" < $2 AS lt', [
      a.text,
      b.text,
    ]);
    expect(cmp.rows[0]!.lt).toBe(true);
  });

  lwwSuite('postgres', () => database);
});
