import { describe, expect, it } from 'vitest';
import {
  FencingGuard,
  FencingTokenIssuer,
  InvalidArgumentError,
  Lease,
  StaleFencingTokenError,
} from '../../src/index.js';
import {
  ClusterSimulator,
  checkIntervalsContainTruth,
  checkLinearizableRegister,
  type ClusterNode,
  type NetworkOptions,
  type Message,
  type RegisterOp,
  type TruthReading,
} from '../../src/testing/index.js';
import { seed } from '../support/fc.js';
import { runSkewCluster } from '../support/skew-cluster.js';

/** A busy little cluster: every node pings a random peer every 200 ms; peers echo. */
function chatter(simSeed: number, untilMs = 60_000): ClusterSimulator {
  const sim = new ClusterSimulator({
    seed: simSeed,
    nodes: [
      { id: 'a', offsetMs: 12, driftPpm: 80 },
      { id: 'b', offsetMs: -30, driftPpm: -120, pauses: [{ atMs: 20_000, durationMs: 3_000 }] },
      { id: 'c', steps: [{ atMs: 30_000, deltaMs: -500 }] },
      { id: 'd', driftPpm: 150 },
    ],
    network: {
      delayMs: [1, 40],
      lossRate: 0.05,
      duplicateRate: 0.05,
      partitions: [{ fromMs: 40_000, untilMs: 45_000, groups: [['a', 'b']] }],
    },
  });
  const ids = sim.nodes.map((n) => n.id);
  for (const node of sim.nodes) {
    node.onMessage<{ kind: string }>((m, self) => {
      if (m.payload.kind === 'ping') self.send(m.from, { kind: 'pong' });
    });
    const tick = (): void => {
      const peers = ids.filter((id) => id !== node.id);
      node.send(peers[Math.floor(sim.random() * peers.length)]!, { kind: 'ping' });
      node.setTimeout(tick, 200);
    };
    node.setTimeout(tick, 200);
  }
  sim.run(untilMs);
  return sim;
}

describe('ClusterSimulator determinism', () => {
  it('same seed, same trace; different seeds, different traces', () => {
    const one = chatter(seed);
    const two = chatter(seed);
    expect(one.trace.length).toBeGreaterThan(1_000);
    expect(JSON.stringify(two.trace)).toBe(JSON.stringify(one.trace));
    const other = chatter(seed + 1);
    expect(JSON.stringify(other.trace)).not.toBe(JSON.stringify(one.trace));
    // The clocks saw the same history too.
    expect(two.node('b').clock.now()).toEqual(one.node('b').clock.now());
    for (const s of [one, two, other]) void s.close();
  });

  it('the trace records sends, deliveries, drops, pauses, steps and partitions', () => {
    const sim = chatter(seed);
    const kinds = new Set(sim.trace.map((e) => e.kind));
    for (const k of ['send', 'deliver', 'drop', 'pause', 'resume', 'step', 'partition', 'heal']) {
      expect(kinds).toContain(k);
    }
    const drops = sim.trace.filter((e) => e.kind === 'drop');
    expect(drops.some((e) => e.detail === 'loss')).toBe(true);
    expect(drops.some((e) => e.detail === 'partition')).toBe(true);
    for (let i = 1; i < sim.trace.length; i++) {
      expect(sim.trace[i]!.atMs).toBeGreaterThanOrEqual(sim.trace[i - 1]!.atMs);
    }
    void sim.close();
  });
});

describe('ClusterSimulator at scale', () => {
  // How fast this runs is a benchmark (bench/cluster.bench.ts), not a test.
  it('a 10-minute, 5-node scenario with skew monitoring finds the node whose clock runs away', () => {
    const { sim, reportedAt, monitors } = runSkewCluster(seed);
    const messages = sim.trace.filter((e) => e.kind === 'send').length;
    expect(messages).toBeGreaterThan(20_000);
    // Every healthy node reports 'bad' once its drift has carried it past 100 ms (~200 s), and
    // no one else; 'bad' in turn sees everyone beyond (the majority decides who is evicted).
    expect([...reportedAt.keys()].sort()).toEqual([
      'bad→n1',
      'bad→n2',
      'bad→n3',
      'bad→n4',
      'n1→bad',
      'n2→bad',
      'n3→bad',
      'n4→bad',
    ]);
    // Not before the offset truly exceeds 100 ms (200 s, ±1 ms of reference error), and soon
    // after it exceeds 100 ms plus the exchange's error bound (≤ 2 + 15/2 + drift ms).
    for (const at of reportedAt.values()) {
      expect(at).toBeGreaterThan(198_000);
      expect(at).toBeLessThan(250_000);
    }
    expect(
      monitors
        .get('bad')!
        .beyond()
        .map((p) => p.peer)
        .sort(),
    ).toEqual(['n1', 'n2', 'n3', 'n4']);
    void sim.close();
  });
});

describe('ClusterSimulator network', () => {
  function pair(network: NetworkOptions, count: number, gapMs = 1) {
    const sim = new ClusterSimulator({ seed, nodes: [{ id: 'a' }, { id: 'b' }], network });
    const got: Message<number>[] = [];
    sim.onMessage<number>('b', (m) => got.push(m));
    for (let i = 0; i < count; i++) sim.at(i * gapMs, () => sim.send('a', 'b', i));
    sim.run(count * gapMs + 10_000);
    return { sim, got };
  }

  it('delays every message within the configured range', () => {
    const { sim, got } = pair({ delayMs: [3, 9] }, 2_000);
    expect(got).toHaveLength(2_000);
    const sent = new Map(got.map((m) => [m.id, m.sentAtMs]));
    const delivered = sim.trace.filter((e) => e.kind === 'deliver');
    for (const e of delivered) {
      const delay = e.atMs - sent.get(e.message!)!;
      expect(delay).toBeGreaterThanOrEqual(3);
      expect(delay).toBeLessThanOrEqual(9);
    }
  });

  it('loses and duplicates messages at the configured rates', () => {
    const { got } = pair({ lossRate: 0.3, duplicateRate: 0.2 }, 10_000);
    const ids = new Set(got.map((m) => m.id));
    expect(ids.size / 10_000).toBeCloseTo(0.7, 1);
    const duplicates = got.filter((m) => m.copy === 1);
    expect(duplicates.length / ids.size).toBeCloseTo(0.2, 1);
    for (const d of duplicates) expect(ids.has(d.id)).toBe(true);
  });

  it('reorders messages when delays vary, and keeps order when they do not', () => {
    const inversions = (got: Message<number>[]) =>
      got.filter((m, i) => i > 0 && m.payload < got[i - 1]!.payload).length;
    expect(inversions(pair({ delayMs: [1, 100] }, 1_000).got)).toBeGreaterThan(100);
    expect(inversions(pair({ delayMs: [5, 5] }, 1_000).got)).toBe(0);
  });

  it('drops messages across a partition (sent during it, or in flight when it starts), not within a side', () => {
    const sim = new ClusterSimulator({
      seed,
      nodes: [{ id: 'a' }, { id: 'b' }, { id: 'c' }],
      network: {
        delayMs: [10, 10],
        partitions: [{ fromMs: 100, untilMs: 200, groups: [['a', 'b'], ['c']] }],
      },
    });
    const got: string[] = [];
    for (const id of ['a', 'b', 'c'])
      sim.onMessage<string>(id, (m) => got.push(`${m.payload}@${id}`));
    sim.at(95, () => sim.send('a', 'c', 'in-flight')); // arrives at 105, during the partition
    sim.at(150, () => sim.send('a', 'c', 'across'));
    sim.at(150, () => sim.send('a', 'b', 'same-side'));
    sim.at(250, () => sim.send('c', 'a', 'after'));
    sim.at(300, () => sim.partition([['a']]));
    sim.at(310, () => sim.send('a', 'b', 'isolated'));
    sim.at(320, () => sim.heal());
    sim.at(330, () => sim.send('a', 'b', 'healed'));
    sim.run(1_000);
    expect(got).toEqual(['same-side@b', 'after@a', 'healed@b']);
    const partitionDrops = sim.trace.filter((e) => e.kind === 'drop' && e.detail === 'partition');
    expect(partitionDrops).toHaveLength(3);
  });

  it('rejects bad configuration with a typed error naming it', () => {
    const node = [{ id: 'a' }];
    expect(() => new ClusterSimulator({ seed: 1.5, nodes: node })).toThrow(/seed/);
    expect(() => new ClusterSimulator({ seed: 1, nodes: [] })).toThrow(/nodes/);
    expect(() => new ClusterSimulator({ seed: 1, nodes: [{ id: 'a' }, { id: 'a' }] })).toThrow(
      /id/,
    );
    expect(() => new ClusterSimulator({ seed: 1, nodes: node, network: { lossRate: 2 } })).toThrow(
      /lossRate/,
    );
    expect(
      () => new ClusterSimulator({ seed: 1, nodes: node, network: { delayMs: [5, 1] } }),
    ).toThrow(/delayMs/);
    expect(
      () =>
        new ClusterSimulator({
          seed: 1,
          nodes: node,
          network: { partitions: [{ fromMs: 0, groups: [['x']] }] },
        }),
    ).toThrow(InvalidArgumentError);
    const sim = new ClusterSimulator({ seed: 1, nodes: node });
    expect(() => sim.send('a', 'nope', 1)).toThrow(/node/);
    expect(() => sim.run(NaN)).toThrow(/untilMs/);
    expect(() => sim.node('a').pause(-1)).toThrow(/durationMs/);
    void sim.close();
  });
});

describe('ClusterSimulator nodes and clocks', () => {
  it('a paused node runs its timers and receives its messages only when it resumes', () => {
    const sim = new ClusterSimulator({
      seed,
      nodes: [{ id: 'a' }, { id: 'b' }],
      network: { delayMs: [5, 5] },
    });
    const b = sim.node('b');
    const log: string[] = [];
    b.onMessage((m) => log.push(`msg ${String(m.payload)} at ${sim.nowMs}`));
    sim.at(1_000, () => {
      b.setTimeout(() => log.push(`timer at ${sim.nowMs}`), 100);
      b.pause(2_000);
      expect(b.paused).toBe(true);
    });
    sim.at(1_500, () => sim.send('a', 'b', 'hello'));
    const monoBefore = { value: 0 };
    sim.at(1_000, () => (monoBefore.value = b.monotonic.now()));
    sim.run(5_000);
    expect(log).toEqual(['timer at 3000', 'msg hello at 3000']);
    expect(b.paused).toBe(false);
    // The monotonic clock kept counting through the pause.
    sim.run(3_000);
    expect(b.monotonic.now() - monoBefore.value).toBeCloseTo(4_000, 6);
    void sim.close();
  });

  it('derives each node’s clocks from true time with its offset, drift and steps', () => {
    const sim = new ClusterSimulator({
      seed,
      nodes: [
        { id: 'fast', offsetMs: 250, driftPpm: 200, wallResolutionMs: 0 },
        {
          id: 'slow',
          offsetMs: -100,
          driftPpm: -100,
          wallResolutionMs: 0,
          steps: [{ atMs: 5_000, deltaMs: 1_000 }],
        },
      ],
    });
    sim.run(100_000);
    const offset = (id: string) => sim.node(id).wall.now() - sim.trueNow();
    expect(offset('fast')).toBeCloseTo(250 + 100_000 * (1 / (1 - 200e-6) - 1), 3);
    expect(offset('slow')).toBeCloseTo(-100 + 1_000 + 100_000 * (1 / (1 + 100e-6) - 1), 3);
    sim.node('fast').setDriftPpm(0);
    const before = offset('fast');
    sim.run(200_000);
    expect(offset('fast')).toBeCloseTo(before, 3);
    void sim.close();
  });

  it('every node’s TrueClock interval contains true time throughout a rough run', () => {
    const sim = new ClusterSimulator({
      seed,
      nodes: [
        { id: 'a', offsetMs: 300, driftPpm: 190, sync: { errorMs: 5, intervalMs: 4_000 } },
        {
          id: 'b',
          driftPpm: -200,
          pauses: [{ atMs: 10_000, durationMs: 8_000 }],
          sync: { errorMs: 2 },
        },
        {
          id: 'c',
          offsetMs: -50,
          steps: [
            { atMs: 20_000, deltaMs: 3_000 },
            { atMs: 40_000, deltaMs: -7_000 },
          ],
        },
        { id: 'd', sync: false },
      ],
    });
    const readings: TruthReading[] = [];
    const probe = (): void => {
      for (const node of sim.nodes) {
        readings.push({
          reading: node.clock.now(),
          trueTime: node.trueNow(),
          label: `${node.id} at ${sim.nowMs}`,
        });
      }
      if (sim.random() < 0.5) sim.at(sim.nowMs + sim.random() * 700, probe);
      else sim.at(sim.nowMs + 300, probe);
    };
    sim.at(0, probe);
    sim.run(60_000);
    expect(readings.length).toBeGreaterThan(500);
    const result = checkIntervalsContainTruth(readings);
    if (!result.ok) throw new Error(result.message);
    expect(sim.node('a').clock.now().status).toBe('synchronized');
    expect(sim.node('d').clock.now().status).toBe('unsynchronized');
    void sim.close();
  });
});

describe('DDIA Figs. 8-4 and 8-5 in the simulator', () => {
  it('a client paused past its lease finds it invalid, and its zombie write is fenced off', () => {
    type Msg =
      | { type: 'acquire' }
      | { type: 'grant'; token: bigint; expiresAt: number }
      | { type: 'busy' }
      | { type: 'write'; token: bigint; value: string }
      | { type: 'write-result'; ok: boolean; error?: string };
    const sim = new ClusterSimulator({
      seed,
      nodes: [
        { id: 'lock' },
        { id: 'storage' },
        { id: 'client1', offsetMs: -200 }, // wall clocks disagree; the TrueClocks do not care
        { id: 'client2', offsetMs: 350, driftPpm: 100 },
      ],
      network: { delayMs: [1, 5] },
    });
    const LEASE_MS = 10_000;

    // Lock service: grants a lease with a fencing token; regrants once the old one has surely expired.
    const issuer = new FencingTokenIssuer();
    let currentExpiry = -Infinity;
    sim.onMessage<Msg>('lock', (m, lock) => {
      if (m.payload.type !== 'acquire') return;
      if (!lock.clock.after(currentExpiry)) return void lock.send(m.from, { type: 'busy' });
      currentExpiry = lock.clock.now().latest + LEASE_MS;
      const token = issuer.next();
      sim.note(`lease to ${m.from}, token ${token}`, 'lock');
      lock.send(m.from, { type: 'grant', token, expiresAt: currentExpiry });
    });

    // Storage: checks fencing tokens.
    const guard = new FencingGuard();
    let stored = '';
    sim.onMessage<Msg>('storage', (m, storage) => {
      if (m.payload.type !== 'write') return;
      try {
        guard.check('file', m.payload.token);
        stored = m.payload.value;
        storage.send(m.from, { type: 'write-result', ok: true });
      } catch (e) {
        if (!(e instanceof StaleFencingTokenError)) throw e;
        storage.send(m.from, { type: 'write-result', ok: false, error: e.message });
      }
    });

    const results: Record<string, Msg[]> = { client1: [], client2: [] };
    const leases: Record<string, Lease> = {};
    let validAfterResume: boolean | undefined;
    const client = (node: ClusterNode, onGrant: (lease: Lease) => void) =>
      node.onMessage<Msg>((m) => {
        if (m.payload.type === 'grant') {
          const lease = new Lease({
            clock: node.clock,
            expiresAt: m.payload.expiresAt,
            token: m.payload.token,
          });
          leases[node.id] = lease;
          onGrant(lease);
        } else {
          results[node.id]!.push(m.payload);
        }
      });

    // Client 1 checks its lease, then a 15 s GC pause hits before its write goes out.
    client(sim.node('client1'), (lease) => {
      lease.assertValid();
      const c1 = sim.node('client1');
      c1.pause(15_000);
      c1.setTimeout(() => {
        validAfterResume = lease.isValid();
        // A careless client writes anyway: only fencing can stop it now.
        c1.send('storage', { type: 'write', token: lease.token!, value: 'client 1 (zombie)' });
      }, 0);
    });
    // Client 2 writes as soon as it gets the lease.
    client(sim.node('client2'), (lease) => {
      lease.assertValid();
      sim.send('client2', 'storage', { type: 'write', token: lease.token!, value: 'client 2' });
    });

    sim.at(2_000, () => sim.send('client1', 'lock', { type: 'acquire' }));
    sim.at(6_000, () => sim.send('client2', 'lock', { type: 'acquire' })); // busy: client 1 holds it
    sim.at(13_000, () => sim.send('client2', 'lock', { type: 'acquire' })); // granted: client 1's expired
    sim.run(30_000);

    expect(results['client2']).toEqual([{ type: 'busy' }, { type: 'write-result', ok: true }]);
    expect(leases['client2']!.token).toBe(2n);
    expect(validAfterResume).toBe(false);
    expect(leases['client1']!.invalidReason).toMatch(/expired/);
    expect(results['client1']).toHaveLength(1);
    expect(results['client1']![0]).toMatchObject({ type: 'write-result', ok: false });
    expect((results['client1']![0] as { error: string }).error).toMatch(
      /token 1 .* token 2 was already accepted/,
    );
    expect(stored).toBe('client 2');
    expect(sim.trace.filter((e) => e.kind === 'note').map((e) => e.detail)).toEqual([
      'lease to client1, token 1',
      'lease to client2, token 2',
    ]);
    void sim.close();
  });
});

describe('commit-wait register in the simulator', () => {
  /**
   * Three clients and one storage node. A write is stamped, sent, and applied by the
   * storage only if its timestamp is the highest seen (last-write-wins); a read returns
   * the current value. With `commitWait`, a write is stamped `now().latest` and sent only
   * once that timestamp has definitely passed; without, it is stamped with the client's
   * (skewed) wall clock and sent at once.
   */
  async function runRegister(mode: 'commit-wait' | 'wall-clock', simSeed: number) {
    const sim = new ClusterSimulator({
      seed: simSeed,
      nodes: [
        { id: 'store' },
        { id: 'c1', offsetMs: 40, driftPpm: 100 },
        { id: 'c2', offsetMs: -30, driftPpm: -150 },
        { id: 'c3', offsetMs: 5 },
      ],
      network: { delayMs: [1, 8] },
    });
    let current = { ts: -Infinity, value: 'initial' };
    type ReqBody = { op: 'write'; ts: number; value: string } | { op: 'read' };
    type Req = ReqBody & { id: number };
    sim.onMessage<Req>('store', (m, store) => {
      const req = m.payload;
      if (req.op === 'write' && req.ts > current.ts) current = { ts: req.ts, value: req.value };
      store.send(m.from, { id: req.id, value: current.value });
    });
    const ops: RegisterOp<string>[] = [];
    const clients = ['c1', 'c2', 'c3'].map((id) => sim.node(id));
    const loops = clients.map(async (node) => {
      const pending = new Map<number, (value: string) => void>();
      node.onMessage<{ id: number; value: string }>((m) =>
        pending.get(m.payload.id)?.(m.payload.value),
      );
      let nextId = 0;
      const rpc = (req: ReqBody) =>
        new Promise<string>((resolve) => {
          const id = nextId++;
          pending.set(id, resolve);
          node.send('store', { ...req, id });
        });
      const sleep = (ms: number) => new Promise<void>((resolve) => node.setTimeout(resolve, ms));
      await sleep(1_500); // let the clock synchronize
      for (let i = 0; i < 12; i++) {
        await sleep(5 + sim.random() * 40);
        const invokeMs = node.trueNow();
        if (sim.random() < 0.5) {
          const value = `${node.id}#${i}`;
          let ts: number;
          if (mode === 'commit-wait') ts = (await node.clock.commitWait((t) => t)).timestamp;
          else ts = node.wall.now();
          await rpc({ op: 'write', ts, value });
          ops.push({
            kind: 'write',
            value,
            invokeMs,
            completeMs: node.trueNow(),
            timestamp: ts,
            client: node.id,
          });
        } else {
          const value = await rpc({ op: 'read' });
          ops.push({ kind: 'read', value, invokeMs, completeMs: node.trueNow(), client: node.id });
        }
      }
    });
    await sim.runAsync(5_000);
    await Promise.all(loops);
    void sim.close();
    return ops;
  }

  it('with commit-wait, every history is linearizable and timestamps follow real time', async () => {
    for (let s = 0; s < 5; s++) {
      const ops = await runRegister('commit-wait', seed + s);
      expect(ops).toHaveLength(36);
      const result = checkLinearizableRegister(ops, { initial: 'initial' });
      if (!result.ok) throw new Error(result.message);
      const writes = checkLinearizableRegister(ops.filter((o) => o.kind === 'write'));
      if (!writes.ok) throw new Error(writes.message);
    }
  });

  it('with skewed wall-clock timestamps, the checkers find a counterexample', async () => {
    let linearizabilityFailures = 0;
    let orderFailures = 0;
    let example = '';
    for (let s = 0; s < 5; s++) {
      const ops = await runRegister('wall-clock', seed + s);
      const result = checkLinearizableRegister(ops, { initial: 'initial' });
      if (!result.ok) {
        linearizabilityFailures++;
        example ||= result.message;
      }
      if (!checkLinearizableRegister(ops.filter((o) => o.kind === 'write')).ok) orderFailures++;
    }
    expect(linearizabilityFailures).toBeGreaterThan(0);
    expect(orderFailures).toBeGreaterThan(0);
    expect(example).toMatch(/^Not linearizable: no order of these \d+ operations/);
    // PRINT_WALKTHROUGH=1 prints the counterexample shown in docs/testing.md.
    if (process.env['PRINT_WALKTHROUGH']) console.log(example);
  });
});
