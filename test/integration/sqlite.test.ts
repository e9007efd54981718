/**
 * SQLite (better-sqlite3, a temp file in WAL mode): last-write-wins by wall
 * clock loses causally later writes under skew (DDIA Fig. 8-3); stamped with a
 * hybrid logical clock it never does. Bad stamps are refused at the boundary
 * (the suites of helpers/lww-suite.ts), and so is a BIGINT read as a number.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HybridLogicalClock, hlcToBigInt, receiveStamped } from '../../src/index.js';
import { LWW_UPSERT_SQL, type LwwRow } from './helpers/lww.js';
import { lwwSuite, type LwwDatabase } from './helpers/lww-suite.js';

let dir: string;
let db: Database.Database;
let database: LwwDatabase;

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
  const upsert = db.prepare(LWW_UPSERT_SQL);
  const select = db.prepare('SELECT v, hlc, node, wid FROM lww WHERE run = ? AND k = ?');
  const insert = db.prepare('INSERT INTO lww VALUES (?, ?, ?, ?, ?, ?)');
  database = {
    read: (run, key) => select.get(run, key) as LwwRow | undefined,
    upsert: (run, key, v, stamp, node, wid) =>
      upsert.run(run, key, v, stamp, node, wid).changes === 1,
    insertRaw: (run, key, v, stamp, node, wid) => insert.run(run, key, v, stamp, node, wid),
  };
});

afterAll(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

lwwSuite('sqlite', () => database);

it('a BIGINT stamp read as a plain number is refused, not rounded', () => {
  const hlc = new HybridLogicalClock({ node: 'n' });
  const raw = hlcToBigInt(hlc.now());
  const plain = new Database(':memory:'); // default: integers come back as numbers
  const asNumber = plain.prepare('SELECT ? AS hlc').get(raw) as { hlc: number };
  plain.close();
  expect(typeof asNumber.hlc).toBe('number');
  expect(() => receiveStamped(hlc, asNumber.hlc, 'n')).toThrow(/safeIntegers/);
});
