/**
 * The last-write-wins tests every database runs (postgres.test.ts,
 * sqlite.test.ts), on the model of lww.ts: wall-clock LWW loses the causally
 * later write of DDIA Fig. 8-3 and of random skewed schedules, HLC LWW never
 * does, and bad stamps, in messages or in rows written behind the library's
 * back, are refused at the boundary without touching the row or the clock.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClockOffsetError,
  HlcParseError,
  HybridLogicalClock,
  formatHlc,
  hlcToBigInt,
  receiveStamped,
  stampWrite,
} from '../../../src/index.js';
import { fcParams } from '../../support/fc.js';
import { ddiaFigure83, runScenario, scenarioArb, type LwwStore } from './lww.js';

/** A store of lww.ts that can also write a row as-is, as something bypassing the library would. */
export interface LwwDatabase extends LwwStore {
  insertRaw(run: number, key: string, v: number, stamp: bigint, node: string, wid: number): unknown;
}

/**
 * Declares the suites against the database `database()` returns once the
 * file's `beforeAll` has opened it; `name` goes into the titles and the log.
 */
export function lwwSuite(name: string, database: () => LwwDatabase): void {
  let nextRun = 1;

  describe(`DDIA Fig. 8-3 in ${name}`, () => {
    it('wall-clock LWW silently drops the causally later increment', async () => {
      const store = database();
      const run = nextRun++;
      const outcome = await runScenario(store, run, ddiaFigure83, 'wall');
      expect(outcome.writes).toBe(2);
      expect(outcome.applied).toBe(1); // B's increment was discarded by the upsert
      expect(outcome.lost).toEqual([{ key: 'k0', survivor: 1, lostWrite: 2 }]);
      expect(Number((await store.read(run, 'k0'))?.v)).toBe(1);
    });

    it('HLC LWW keeps it', async () => {
      const store = database();
      const run = nextRun++;
      const outcome = await runScenario(store, run, ddiaFigure83, 'hlc');
      expect(outcome.applied).toBe(2);
      expect(outcome.lost).toEqual([]);
      expect(Number((await store.read(run, 'k0'))?.v)).toBe(2);
    });
  });

  it(`${name}, random skews and schedules: HLC LWW never loses a causally later write; wall-clock LWW does`, async () => {
    const store = database();
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
      `${name}: wall-clock LWW lost a causally later write in ${wallLossRuns}/${runs} schedules; HLC in 0`,
    );
    // Every schedule runs against the database: beside a CPU-heavy neighbour over 60 s.
  }, 300_000);

  describe(`bad stamps at the boundary of ${name}`, () => {
    it('a message with a malformed or far-future stamp is refused; row and clock unchanged', async () => {
      const store = database();
      const run = nextRun++;
      let t = Date.UTC(2026, 0, 1);
      const hlc = new HybridLogicalClock({ node: 'local', physical: () => t, maxOffsetMs: 250 });
      await stampWrite(hlc, (ts) => store.upsert(run, 'x', 1, hlcToBigInt(ts), ts.node, 1)).result;
      const stored = await store.read(run, 'x');
      const clockBefore = hlc.peek();
      const apply = async (message: { v: number; hlc: string; node?: string }) => {
        const { remote } = receiveStamped(hlc, message.hlc, message.node);
        await store.upsert(run, 'x', message.v, hlcToBigInt(remote), remote.node, 99);
      };
      const far = { wallMs: t + 3_600_000, counter: 0, node: 'peer' };
      await expect(apply({ v: 666, hlc: formatHlc(far) })).rejects.toThrow(ClockOffsetError);
      await expect(
        apply({ v: 666, hlc: hlcToBigInt(far).toString(), node: 'peer' }),
      ).rejects.toThrow(ClockOffsetError);
      for (const bad of [
        "1'; DROP TABLE lww; --",
        'ffffffffffff0000@peer; DROP TABLE lww',
        '12345', // a BIGINT without its node
        '',
      ]) {
        await expect(apply({ v: 666, hlc: bad }), bad).rejects.toThrow(HlcParseError);
      }
      expect(await store.read(run, 'x')).toEqual(stored);
      expect(hlc.peek()).toEqual(clockBefore);

      // Not poisoned: the next local write is stamped from physical time as usual.
      t += 5;
      expect(stampWrite(hlc, (ts) => ts).timestamp).toEqual({
        wallMs: t,
        counter: 0,
        node: 'local',
      });
    });

    it('a row carrying a corrupt or far-future stamp cannot be built upon', async () => {
      const store = database();
      const run = nextRun++;
      const t = Date.UTC(2026, 0, 1);
      const hlc = new HybridLogicalClock({ node: 'local', physical: () => t, maxOffsetMs: 250 });
      // Written by something that bypassed the library.
      await store.insertRaw(run, 'neg', 1, -5n, 'w', 1);
      await store.insertRaw(run, 'far', 1, BigInt(t + 86_400_000) << 16n, 'w', 2);
      await store.insertRaw(run, 'empty-node', 1, BigInt(t) << 16n, '', 3);
      await store.insertRaw(run, 'spaced-node', 1, BigInt(t) << 16n, 'a b', 4);
      const before = hlc.now();
      for (const [key, error] of [
        ['neg', HlcParseError],
        ['far', ClockOffsetError],
        ['empty-node', HlcParseError],
        ['spaced-node', HlcParseError],
      ] as const) {
        const row = (await store.read(run, key))!;
        let wrote = false;
        const buildOn = async (): Promise<void> => {
          await stampWrite(
            hlc,
            (ts) => {
              wrote = true;
              return store.upsert(run, key, Number(row.v) + 1, hlcToBigInt(ts), ts.node, 10);
            },
            { after: row.hlc, node: row.node },
          ).result;
        };
        await expect(buildOn(), key).rejects.toThrow(error);
        expect(wrote).toBe(false);
        expect(await store.read(run, key)).toEqual(row);
      }
      expect(hlc.peek()).toEqual(before);
    });
  });
}
