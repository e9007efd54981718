/**
 * PostgreSQL 15 (throwaway cluster): last-write-wins by wall clock loses
 * causally later writes under skew (DDIA Fig. 8-3); stamped with a hybrid
 * logical clock it never does. Bad stamps are refused at the boundary.
 * node-postgres returns BIGINT as a decimal string, which is how the stamps
 * come back here.
 */
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClockOffsetError,
  HlcParseError,
  HybridLogicalClock,
  decodeHlc,
  formatHlc,
  hlcToBigInt,
  receiveStamped,
  sqlHlc,
  stampWrite,
} from '../../src/index.js';
import { fcParams } from '../support/fc.js';
import {
  LWW_UPSERT_SQL,
  dollarParams,
  ddiaFigure83,
  runScenario,
  scenarioArb,
  type LwwRow,
  type LwwStore,
} from './helpers/lww.js';
import { locatePostgres, startPostgres, type PostgresCluster } from './helpers/postgres.js';

const binDir = locatePostgres();

describe.runIf(binDir !== undefined)('PostgreSQL', () => {
  let cluster: PostgresCluster;
  let client: pg.Client;
  let store: LwwStore;
  const upsertSql = dollarParams(LWW_UPSERT_SQL);

  beforeAll(async () => {
    cluster = await startPostgres();
    client = new pg.Client({ connectionString: cluster.connectionString });
    await client.connect();
    await client.query(`CREATE TABLE lww (
      run INTEGER NOT NULL, k TEXT NOT NULL, v INTEGER NOT NULL,
      hlc BIGINT NOT NULL, node TEXT NOT NULL, wid INTEGER NOT NULL,
      PRIMARY KEY (run, k))`);
    store = {
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
    };
  });

  afterAll(async () => {
    await client?.end();
    await cluster?.stop();
  });

  let nextRun = 1;

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

  describe('DDIA Fig. 8-3', () => {
    it('wall-clock LWW silently drops the causally later increment', async () => {
      const run = nextRun++;
      const outcome = await runScenario(store, run, ddiaFigure83, 'wall');
      expect(outcome.applied).toBe(1);
      expect(outcome.lost).toEqual([{ key: 'k0', survivor: 1, lostWrite: 2 }]);
      expect((await store.read(run, 'k0'))!.v).toBe(1);
    });

    it('HLC LWW keeps it', async () => {
      const run = nextRun++;
      const outcome = await runScenario(store, run, ddiaFigure83, 'hlc');
      expect(outcome.applied).toBe(2);
      expect(outcome.lost).toEqual([]);
      expect((await store.read(run, 'k0'))!.v).toBe(2);
    });
  });

  it('random skews and schedules: HLC LWW never loses a causally later write; wall-clock LWW does', async () => {
    let runs = 0;
    let wallLossRuns = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        runs++;
        const wall = await runScenario(store, nextRun++, scenario, 'wall');
        if (wall.lost.length > 0) wallLossRuns++;
        const hlc = await runScenario(store, nextRun++, scenario, 'hlc');
        expect(hlc.lost).toEqual([]);
      }),
      fcParams(1000),
    );
    expect(runs).toBeGreaterThanOrEqual(1000);
    expect(wallLossRuns).toBeGreaterThan(runs / 20);
    console.log(
      `postgres: wall-clock LWW lost a causally later write in ${wallLossRuns}/${runs} schedules; HLC in 0`,
    );
  });

  describe('bad stamps at the boundary', () => {
    it('a message with a malformed or far-future stamp is refused; row and clock unchanged', async () => {
      const run = nextRun++;
      let t = Date.UTC(2026, 0, 1);
      const hlc = new HybridLogicalClock({ node: 'local', physical: () => t, maxOffsetMs: 250 });
      await stampWrite(hlc, (ts) =>
        client.query(upsertSql, [run, 'x', 1, hlcToBigInt(ts), ts.node, 1]),
      );
      const stored = await store.read(run, 'x');
      const clockBefore = hlc.peek();
      const apply = async (message: { v: number; hlc: string; node?: string }) => {
        const { remote } = receiveStamped(hlc, message.hlc, message.node);
        await client.query(upsertSql, [run, 'x', message.v, hlcToBigInt(remote), remote.node, 99]);
      };
      const far = { wallMs: t + 3_600_000, counter: 0, node: 'peer' };
      await expect(apply({ v: 666, hlc: formatHlc(far) })).rejects.toThrow(ClockOffsetError);
      await expect(
        apply({ v: 666, hlc: hlcToBigInt(far).toString(), node: 'peer' }),
      ).rejects.toThrow(ClockOffsetError);
      await expect(apply({ v: 666, hlc: "1'; DROP TABLE lww; --" })).rejects.toThrow(HlcParseError);
      await expect(apply({ v: 666, hlc: '12345' })).rejects.toThrow(HlcParseError); // no node
      expect(await store.read(run, 'x')).toEqual(stored);
      expect(hlc.peek()).toEqual(clockBefore);
      t += 5;
      expect(stampWrite(hlc, (ts) => ts).timestamp).toEqual({
        wallMs: t,
        counter: 0,
        node: 'local',
      });
    });

    it('a row carrying a corrupt or far-future stamp cannot be built upon', async () => {
      const run = nextRun++;
      const t = Date.UTC(2026, 0, 1);
      const hlc = new HybridLogicalClock({ node: 'local', physical: () => t, maxOffsetMs: 250 });
      const insert = 'INSERT INTO lww VALUES ($1, $2, $3, $4, $5, $6)';
      await client.query(insert, [run, 'neg', 1, -5n, 'w', 1]);
      await client.query(insert, [run, 'far', 1, BigInt(t + 86_400_000) << 16n, 'w', 2]);
      await client.query(insert, [run, 'badnode', 1, BigInt(t) << 16n, '', 3]);
      const before = hlc.now();
      for (const [key, error] of [
        ['neg', HlcParseError],
        ['far', ClockOffsetError],
        ['badnode', HlcParseError],
      ] as const) {
        const row = (await store.read(run, key))!;
        let wrote = false;
        await expect(
          (async () =>
            stampWrite(
              hlc,
              async (ts) => {
                wrote = true;
                return client.query(upsertSql, [run, key, row.v + 1, hlcToBigInt(ts), ts.node, 10]);
              },
              { after: row.hlc, node: row.node },
            ))(),
        ).rejects.toThrow(error);
        expect(wrote).toBe(false);
        expect(await store.read(run, key)).toEqual(row);
      }
      expect(hlc.peek()).toEqual(before);
    });
  });
});
