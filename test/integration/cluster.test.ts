/**
 * A multi-process cluster: three Node processes (fixtures/cluster-node.mjs),
 * each with its own simulated clock offset (up to ±250 ms) and drift (±100 ppm),
 * each syncing a TrueClock to a loopback NTP server in this process (the
 * reference), exchanging HLC-stamped messages over loopback UDP, and writing
 * HLC-stamped, commit-waited rows to one PostgreSQL.
 *
 * From the rows and the message log, the checker proves:
 * - every receive is stamped after its send;
 * - writes ordered by causality (vector clocks carried in rows and messages,
 *   independent of the code under test) are ordered by their HLC stamps, and
 *   no causally later write was lost to last-write-wins;
 * - with commit-wait, a write that started (reference time) after another was
 *   acknowledged has the larger commit timestamp, although the nodes' own
 *   clocks disagree by up to 500 ms (the HLC stamps alone violate it);
 * - malformed and far-future datagrams were rejected without poisoning a clock.
 */
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareHlc, formatHlc, parseHlc } from '../../src/index.js';
import { createNtpServer, type LoopbackNtpServer } from '../../src/testing/node/index.js';
import { seed } from '../support/fc.js';
import { locatePostgres, startPostgres, type PostgresCluster } from './helpers/postgres.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/cluster-node.mjs', import.meta.url));
const DURATION_MS = Number(process.env['CHRONOBOUND_LONG'] ? 20_000 : 4_000);
const binDir = locatePostgres();

interface NodeLog {
  sends: Array<{ id: string; to: string; hlc: string }>;
  receives: Array<{ id: string; hlc: string }>;
  rejected: Array<{ id?: string; code: string }>;
  writes: Array<{ wid: string; startRef: number; ackRef: number; commitTs: number; hlc: string }>;
  errors: string[];
  refused: string[];
  epsilon: number[];
  finalHlc: string;
  status: string;
}

interface WriteRow {
  wid: string;
  node: string;
  k: string;
  v: number;
  hlc: string;
  hlc_text: string;
  commit_ts: number;
  start_ref: number;
  vc: Record<string, number>;
  applied: boolean;
  read_wid: string | null;
}

describe.runIf(binDir !== undefined)('three processes, skewed clocks, one PostgreSQL', () => {
  let cluster: PostgresCluster;
  let ntp: LoopbackNtpServer;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    cluster = await startPostgres();
    const c = new pg.Client({ connectionString: cluster.connectionString });
    await c.connect();
    await c.query(`
      CREATE TABLE kv (k text PRIMARY KEY, v integer NOT NULL, hlc bigint NOT NULL,
        node text NOT NULL, wid text NOT NULL, vc jsonb NOT NULL);
      CREATE TABLE writes (wid text PRIMARY KEY, node text NOT NULL, k text NOT NULL,
        v integer NOT NULL, hlc bigint NOT NULL, hlc_text text NOT NULL,
        commit_ts double precision NOT NULL, start_ref double precision NOT NULL,
        vc jsonb NOT NULL, applied boolean NOT NULL, read_wid text);`);
    await c.end();
    // A slow, jittery path: ε of a few ms, more than a write takes, and a different
    // offset error on every node, so commit-wait has real work to do.
    ntp = await createNtpServer({ requestDelayMs: 1, responseDelayMs: 1, jitterMs: 6 });
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await ntp?.close();
    await cluster?.stop();
  });

  it('orders receives after sends, loses no causal write, and commit-wait respects real time', async () => {
    const nodes = [
      { node: 'n1', offset: 250, drift: 100 },
      { node: 'n2', offset: -250, drift: -100 },
      { node: 'n3', offset: (seed % 401) - 200, drift: (seed % 101) - 50 },
    ];
    const ready = new Map<string, number>();
    const done = new Map<string, NodeLog>();
    const exits: Array<Promise<void>> = [];
    await Promise.all(
      nodes.map(
        (n, i) =>
          new Promise<void>((resolve, reject) => {
            const child = fork(FIXTURE, [], {
              env: {
                ...process.env,
                NODE_ID: n.node,
                OFFSET_MS: String(n.offset),
                DRIFT_PPM: String(n.drift),
                NTP_SERVER: ntp.address,
                DATABASE_URL: cluster.connectionString,
                KEYS: '4',
                SEED: String(seed * 7 + i),
              },
              stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            });
            children.push(child);
            child.on('message', (m: { type: string; port?: number; log?: NodeLog }) => {
              if (m.type === 'ready') {
                ready.set(n.node, m.port!);
                resolve();
              } else if (m.type === 'done') done.set(n.node, m.log!);
            });
            exits.push(
              new Promise<void>((res, rej) =>
                child.once('exit', (code) =>
                  code === 0 ? res() : rej(new Error(`${n.node} exited with ${code}`)),
                ),
              ),
            );
            child.once('exit', (code) => {
              if (!ready.has(n.node)) reject(new Error(`${n.node} exited early (${code})`));
            });
          }),
      ),
    );
    const peers = nodes.map((n) => ({ node: n.node, port: ready.get(n.node)! }));
    for (const child of children) child.send({ type: 'start', peers, durationMs: DURATION_MS });

    // Poison, one second in: a stamp an hour ahead, a malformed stamp, not JSON.
    const poisonWallMs = Date.now() + 3_600_000;
    await new Promise((r) => setTimeout(r, 1000));
    const udp = dgram.createSocket('udp4');
    const poison = [
      JSON.stringify({
        id: 'evil/1',
        hlc: formatHlc({ wallMs: poisonWallMs, counter: 0, node: 'mallory' }),
        vc: {},
      }),
      JSON.stringify({ id: 'evil/2', hlc: 'DROP TABLE kv', vc: {} }),
      '{not json',
    ];
    for (const p of peers) {
      for (const body of poison) {
        await new Promise<void>((res, rej) =>
          udp.send(body, p.port, '127.0.0.1', (e) => (e ? rej(e) : res())),
        );
      }
    }
    udp.close();
    await Promise.all(exits);
    const endRef = Date.now();

    const logs = [...done.entries()];
    expect(logs.length).toBe(3);
    for (const [node, log] of logs) {
      expect(log.errors, node).toEqual([]);
      expect(['synchronized', 'disrupted'], node).toContain(log.status);
      expect(log.rejected.map((r) => r.code).sort(), node).toEqual([
        'CLOCK_OFFSET',
        'HLC_PARSE',
        'not-json',
      ]);
      // Not poisoned: nothing it stamped came near the hour-ahead stamp.
      expect(parseHlc(log.finalHlc).wallMs, node).toBeLessThan(endRef + 1000);
    }

    // 1. Every receive is stamped after its send.
    const sends = new Map(logs.flatMap(([, l]) => l.sends.map((s) => [s.id, s] as const)));
    const receives = logs.flatMap(([, l]) => l.receives);
    expect(receives.length).toBeGreaterThan(30);
    expect(receives.length).toBeGreaterThanOrEqual(sends.size * 0.95);
    for (const r of receives) {
      const s = sends.get(r.id);
      expect(s, r.id).toBeDefined();
      expect(compareHlc(parseHlc(r.hlc), parseHlc(s!.hlc)), r.id).toBe(1);
    }

    // The rows.
    const db = new pg.Client({ connectionString: cluster.connectionString });
    await db.connect();
    const rows = (await db.query<WriteRow>('SELECT * FROM writes')).rows;
    const kv = (
      await db.query<{ k: string; hlc: string; node: string; wid: string }>('SELECT * FROM kv')
    ).rows;
    await db.end();

    // Everything acknowledged is there, and nothing else.
    const acked = logs.flatMap(([, l]) => l.writes);
    expect(rows.length).toBe(acked.length);
    const byWid = new Map(rows.map((r) => [r.wid, r]));
    for (const a of acked) {
      const row = byWid.get(a.wid);
      expect(row, a.wid).toBeDefined();
      expect(row!.hlc_text).toBe(a.hlc);
      expect(row!.commit_ts).toBe(a.commitTs);
      expect(parseHlc(a.hlc).wallMs).toBeLessThan(endRef + 1000);
    }
    expect(acked.length).toBeGreaterThan(100);
    // Rank every write by HLC order once; comparing ranks is comparing stamps.
    const byHlc = [...rows].sort((x, y) => compareHlc(parseHlc(x.hlc_text), parseHlc(y.hlc_text)));
    const rank = new Map(byHlc.map((r, i) => [r.wid, i]));
    for (let i = 1; i < byHlc.length; i++) {
      expect(compareHlc(parseHlc(byHlc[i - 1]!.hlc_text), parseHlc(byHlc[i]!.hlc_text))).toBe(-1);
    }
    const names = nodes.map((n) => n.node);
    const vcs = rows.map((r) => Int32Array.from(names, (n) => r.vc[n] ?? 0));
    const before = (a: Int32Array, b: Int32Array): boolean => {
      let strictly = false;
      for (let i = 0; i < a.length; i++) {
        if (a[i]! > b[i]!) return false;
        if (a[i]! < b[i]!) strictly = true;
      }
      return strictly;
    };

    // 2. Causal order ⇒ HLC order, for every pair; read-modify-writes after what they read.
    let causalPairs = 0;
    for (let i = 0; i < rows.length; i++) {
      const ri = rank.get(rows[i]!.wid)!;
      for (let j = 0; j < rows.length; j++) {
        if (before(vcs[i]!, vcs[j]!)) {
          causalPairs++;
          if (ri >= rank.get(rows[j]!.wid)!) {
            throw new Error(`${rows[i]!.wid} → ${rows[j]!.wid} but its stamp is not smaller`);
          }
        }
      }
      const read = rows[i]!.read_wid;
      if (read !== null) expect(rank.get(read)!).toBeLessThan(ri);
    }
    expect(causalPairs).toBeGreaterThan(100);

    // 3. No causally later write lost: each key holds a write that nothing on that key follows,
    // and it is the LWW winner among all writes to the key.
    const index = new Map(rows.map((r, i) => [r.wid, i]));
    for (const row of kv) {
      const s = index.get(row.wid);
      expect(s, row.wid).toBeDefined();
      let winner = -1;
      for (let j = 0; j < rows.length; j++) {
        if (rows[j]!.k !== row.k) continue;
        if (before(vcs[s!]!, vcs[j]!)) {
          throw new Error(`${rows[j]!.wid} (causally after ${row.wid}) was lost on ${row.k}`);
        }
        winner = Math.max(winner, rank.get(rows[j]!.wid)!);
      }
      expect(byHlc[winner]!.wid).toBe(row.wid);
    }

    // 4. Commit-wait: started after W1 was acknowledged ⇒ larger commit timestamp.
    // Sorted by acknowledgement, a prefix maximum answers "all W1 acknowledged before W2 started".
    const byAck = acked
      .map((a) => ({ ...a, node: byWid.get(a.wid)!.node, rank: rank.get(a.wid)! }))
      .sort((x, y) => x.ackRef - y.ackRef);
    const maxCommit: number[] = [];
    const maxRank: number[] = [];
    const perNode = new Map(names.map((n) => [n, [] as number[]]));
    byAck.forEach((w, i) => {
      maxCommit.push(Math.max(w.commitTs, i > 0 ? maxCommit[i - 1]! : -Infinity));
      maxRank.push(Math.max(w.rank, i > 0 ? maxRank[i - 1]! : -1));
      for (const [n, counts] of perNode)
        counts.push((i > 0 ? counts[i - 1]! : 0) + (w.node === n ? 1 : 0));
    });
    let constrained = 0;
    let crossNode = 0;
    let hlcInversions = 0;
    for (const w2 of byAck) {
      // Last W1 with ackRef < w2.startRef.
      let lo = 0;
      let hi = byAck.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (byAck[mid]!.ackRef < w2.startRef) lo = mid + 1;
        else hi = mid;
      }
      const last = lo - 1;
      if (last < 0) continue;
      constrained += last + 1;
      crossNode += last + 1 - perNode.get(w2.node)![last]!;
      if (maxCommit[last]! >= w2.commitTs) {
        const w1 = byAck.slice(0, last + 1).find((w) => w.commitTs >= w2.commitTs)!;
        throw new Error(
          `${w2.wid} started at ${w2.startRef} after ${w1.wid} was acknowledged at ${w1.ackRef}, ` +
            `but commit ts ${w2.commitTs} ≤ ${w1.commitTs}`,
        );
      }
      if (maxRank[last]! > w2.rank) hlcInversions++;
    }
    expect(crossNode).toBeGreaterThan(1000);
    // Without commit-wait the skewed HLC stamps do get real-time order wrong.
    expect(hlcInversions).toBeGreaterThan(0);

    const epsilons = logs.flatMap(([, l]) => l.epsilon).sort((x, y) => x - y);
    const median = epsilons[epsilons.length >> 1]!;
    const refused = logs.reduce((n, [, l]) => n + l.refused.length, 0);
    console.log(
      `cluster: ${acked.length} commit-waited writes (${refused} refused by a disrupted clock), ${receives.length} messages, ` +
        `${causalPairs} causal pairs, ${constrained} real-time pairs (${crossNode} across nodes; ` +
        `${hlcInversions} writes ordered before an earlier-acknowledged one by HLC alone), median ε ${median.toFixed(3)} ms`,
    );
  });
});
