/**
 * The cluster simulator's speed: ten simulated minutes of five nodes with skew
 * monitoring (test/support/skew-cluster.ts: ~24,000 messages, each node's
 * `TrueClock` fed every simulated second). No peer simulator does the same work,
 * so the figure is absolute; the target is well under a second of real time per
 * run. The cluster test checks what the run finds; this file only times it.
 *
 * Run: npx vitest bench --run bench/cluster.bench.ts
 */
import { afterAll, bench, describe } from 'vitest';
import { runSkewCluster } from '../test/support/skew-cluster.js';

const runsMs: number[] = [];
let messages = 0;
let seed = 1;

afterAll(() => {
  const sorted = runsMs.slice().sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  console.log(
    `cluster simulator, 10 simulated minutes, 5 nodes, ${messages} messages: ` +
      `min ${at(0).toFixed(0)} ms, median ${at(0.5).toFixed(0)} ms, max ${at(1).toFixed(0)} ms ` +
      `over ${sorted.length} runs`,
  );
});

describe('ClusterSimulator', () => {
  bench(
    '10 simulated minutes, 5 nodes, skew monitoring',
    () => {
      const started = performance.now();
      const { sim } = runSkewCluster(seed++);
      runsMs.push(performance.now() - started);
      messages = sim.trace.filter((e) => e.kind === 'send').length;
      void sim.close();
    },
    { iterations: 10, time: 0, warmupIterations: 1 },
  );
});
