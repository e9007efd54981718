/**
 * Ten simulated minutes of five nodes pinging each other every second and feeding
 * a `SkewMonitor` each, one of them ('bad') with a broken oscillator and no time
 * reference. The cluster test checks who reports whom and when; the cluster
 * benchmark times it.
 */
import { SkewMonitor } from '../../src/index.js';
import { ClusterSimulator, type ClusterNode } from '../../src/testing/index.js';

export interface SkewClusterRun {
  readonly sim: ClusterSimulator;
  /** `reporter→peer` → when (ms after the start) the reporter first saw the peer beyond 100 ms. */
  readonly reportedAt: ReadonlyMap<string, number>;
  readonly monitors: ReadonlyMap<string, SkewMonitor>;
}

type Ping = { kind: 'ping'; t1: number } | { kind: 'pong'; t1: number; t2: number; t3: number };

export function runSkewCluster(seed: number): SkewClusterRun {
  const sim = new ClusterSimulator({
    seed,
    nodes: [
      { id: 'n1', offsetMs: 5 },
      { id: 'n2', offsetMs: -8, driftPpm: 90 },
      { id: 'n3', driftPpm: -150, pauses: [{ atMs: 100_000, durationMs: 4_000 }] },
      { id: 'n4', offsetMs: 20 },
      // Its oscillator is broken: it gains 0.5 ms per second, and nobody corrects its wall clock.
      { id: 'bad', driftPpm: 500, sync: false },
    ],
    network: { delayMs: [0.5, 15], lossRate: 0.01, duplicateRate: 0.01 },
  });
  const ids = sim.nodes.map((n) => n.id);
  const reportedAt = new Map<string, number>();
  // Healthy nodes stamp with their disciplined TrueClock; 'bad' has no reference and uses its wall
  // clock. A new sample can move a clock's estimate back a little, and a monitor requires its own
  // stamps to be monotonic (t4 ≥ t1), so each node never stamps below its previous stamp.
  const lastStamp = new Map<string, number>();
  const stamp = (n: ClusterNode): number => {
    const reading = n.id === 'bad' ? n.wall.now() : n.clock.now().estimate;
    const t = Math.max(reading, lastStamp.get(n.id) ?? -Infinity);
    lastStamp.set(n.id, t);
    return t;
  };
  const monitors = new Map<string, SkewMonitor>();
  for (const node of sim.nodes) {
    const monitor = new SkewMonitor({
      maxOffsetMs: 100,
      timestampResolutionMs: 1,
      onBeyond: (p) => reportedAt.set(`${node.id}→${p.peer}`, sim.nowMs),
    });
    monitors.set(node.id, monitor);
    node.onMessage<Ping>((m, self) => {
      if (m.payload.kind === 'ping') {
        const t2 = stamp(self);
        self.send(m.from, { kind: 'pong', t1: m.payload.t1, t2, t3: stamp(self) });
      } else {
        monitor.record(m.from, { ...m.payload, t4: stamp(self) });
      }
    });
    const tick = (): void => {
      for (const peer of ids)
        if (peer !== node.id) node.send(peer, { kind: 'ping', t1: stamp(node) });
      node.setTimeout(tick, 1_000);
    };
    node.setTimeout(tick, 1_000);
  }
  sim.run(600_000);
  return { sim, reportedAt, monitors };
}
