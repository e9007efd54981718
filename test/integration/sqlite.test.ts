/**
 * SQLite (better-sqlite3, a temp file in WAL mode): last-write-wins by wall
 * clock loses causally later writes under skew (DDIA Fig. 8-3); stamped with a
 * hybrid logical clock it never does. Bad stamps are refused at the boundary.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClockOffsetError,
  HlcParseError,
  HybridLogicalClock,
  formatHlc,
  hlcToBigInt,
  receiveStamped,
  stampWrite,
} from '../../src/index.js';
import { fcParams } from '../support/fc.js';
import {
  LWW_UPSERT_SQL,
  ddiaFigure83,
  runScenario,
  scenarioArb,
  type LwwRow,
  type LwwStore,
} from './helpers/lww.js';

let dir: string;
let db: Database.Database;
let store: LwwStore;
let upsert: Database.Statement;
let select: Database.Statement;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'chronobound-sqlite-'));
  db = new Database(join(dir, 'lww.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // BIGINT stamps exceed 2^53: read them back as bigint, never as a rounded number.
  db.defaultSafeIntegers(true);
  db.exec(`CREATE TABLE lww (
    run INTEGER NOT NULL, k TEXT NOT NULL, v INTEGER NOT NULL,
    hlc INTEGER NOT NULL, node TEXT NOT NULL, wid INTEGER NOT NULL,
    PRIMARY KEY (run, k)) WITHOUT ROWID`);
  upsert = db.prepare(LWW_UPSERT_SQL);
  select = db.prepare('SELECT v, hlc, node, wid FROM lww WHERE run = ? AND k = ?');
  store = {
    read: (run, key) => select.get(run, key) as LwwRow | undefined,
    upsert: (run, key, v, stamp, node, wid) =>
      upsert.run(run, key, v, stamp, node, wid).changes === 1,
  };
});

afterAll(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

let nextRun = 1;

describe('DDIA Fig. 8-3 in SQLite', () => {
  it('wall-clock LWW silently drops the causally later increment', async () => {
    const run = nextRun++;
    const outcome = await runScenario(store, run, ddiaFigure83, 'wall');
    expect(outcome.writes).toBe(2);
    expect(outcome.applied).toBe(1); // B's increment was discarded by the upsert
    expect(outcome.lost).toEqual([{ key: 'k0', survivor: 1, lostWrite: 2 }]);
    expect(Number((store.read(run, 'k0') as LwwRow).v)).toBe(1);
  });

  it('HLC LWW keeps it', async () => {
    const run = nextRun++;
    const outcome = await runScenario(store, run, ddiaFigure83, 'hlc');
    expect(outcome.applied).toBe(2);
    expect(outcome.lost).toEqual([]);
    expect(Number((store.read(run, 'k0') as LwwRow).v)).toBe(2);
  });
});

describe('random skews and schedules', () => {
  it('HLC LWW never loses a causally later write; wall-clock LWW does', async () => {
    let runs = 0;
    let wallLossRuns = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        runs++;
        const wall = await runScenario(store, nextRun++, scenario, 'wall');
        if (wall.lost.length > 0) wallLossRuns++;
        const hlc = await runScenario(store, nextRun++, scenario, 'hlc');
        expect(hlc.lost).toEqual([]);
        for (const stamps of hlc.stampsByNode) {
          for (let i = 1; i < stamps.length; i++) {
            expect(stamps[i]! > stamps[i - 1]!).toBe(true);
          }
        }
      }),
      fcParams(1000),
    );
    expect(runs).toBeGreaterThanOrEqual(1000);
    // The property is not vacuous: the same schedules do lose data with wall clocks.
    expect(wallLossRuns).toBeGreaterThan(runs / 20);
    console.log(
      `sqlite: wall-clock LWW lost a causally later write in ${wallLossRuns}/${runs} schedules; HLC in 0`,
    );
  });
});

describe('bad stamps at the boundary', () => {
  it('a message with a malformed or far-future stamp is refused; row and clock unchanged', () => {
    const run = nextRun++;
    let t = Date.UTC(2026, 0, 1);
    const hlc = new HybridLogicalClock({ node: 'local', physical: () => t, maxOffsetMs: 250 });
    stampWrite(hlc, (ts) => upsert.run(run, 'x', 1, hlcToBigInt(ts), ts.node, 1));
    const stored = store.read(run, 'x');
    const clockBefore = hlc.peek();

    const apply = (message: { v: number; hlc: string }) => {
      const { remote } = receiveStamped(hlc, message.hlc);
      upsert.run(run, 'x', message.v, hlcToBigInt(remote), remote.node, 99);
    };
    const future = formatHlc({ wallMs: t + 3_600_000, counter: 0, node: 'peer' });
    expect(() => apply({ v: 666, hlc: future })).toThrow(ClockOffsetError);
    expect(() => apply({ v: 666, hlc: 'ffffffffffff0000@peer; DROP TABLE lww' })).toThrow(
      HlcParseError,
    );
    expect(() => apply({ v: 666, hlc: '' })).toThrow(HlcParseError);
    expect(store.read(run, 'x')).toEqual(stored);
    expect(hlc.peek()).toEqual(clockBefore);

    // Not poisoned: the next local write is stamped from physical time as usual.
    t += 5;
    const { timestamp } = stampWrite(hlc, (ts) => ts);
    expect(timestamp).toEqual({ wallMs: t, counter: 0, node: 'local' });
  });

  it('a row carrying a corrupt or far-future stamp cannot be built upon', () => {
    const run = nextRun++;
    const t = Date.UTC(2026, 0, 1);
    const hlc = new HybridLogicalClock({ node: 'local', physical: () => t, maxOffsetMs: 250 });
    // Written by something that bypassed the library.
    db.prepare('INSERT INTO lww VALUES (?, ?, ?, ?, ?, ?)').run(run, 'neg', 1, -5n, 'w', 1);
    db.prepare('INSERT INTO lww VALUES (?, ?, ?, ?, ?, ?)').run(
      run,
      'far',
      1,
      BigInt(t + 86_400_000) << 16n,
      'w',
      2,
    );
    db.prepare('INSERT INTO lww VALUES (?, ?, ?, ?, ?, ?)').run(
      run,
      'badnode',
      1,
      BigInt(t) << 16n,
      'a b',
      3,
    );
    const before = hlc.now();
    for (const [key, error] of [
      ['neg', HlcParseError],
      ['far', ClockOffsetError],
      ['badnode', HlcParseError],
    ] as const) {
      const row = store.read(run, key) as LwwRow;
      let wrote = false;
      expect(() =>
        stampWrite(
          hlc,
          (ts) => {
            wrote = true;
            return upsert.run(run, key, Number(row.v) + 1, hlcToBigInt(ts), ts.node, 10);
          },
          { after: row.hlc, node: row.node },
        ),
      ).toThrow(error);
      expect(wrote).toBe(false);
      expect(store.read(run, key)).toEqual(row);
    }
    expect(hlc.peek()).toEqual(before);
  });

  it('a BIGINT stamp read as a plain number is refused, not rounded', () => {
    const hlc = new HybridLogicalClock({ node: 'n' });
    const raw = hlcToBigInt(hlc.now());
    const plain = new Database(':memory:'); // default: integers come back as numbers
    const asNumber = plain.prepare('SELECT ? AS hlc').get(raw) as { hlc: number };
    plain.close();
    expect(typeof asNumber.hlc).toBe('number');
    expect(() => receiveStamped(hlc, asNumber.hlc, 'n')).toThrow(/safeIntegers/);
  });
});
