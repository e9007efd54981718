import process from 'node:process';
import { describe, expect, it } from 'vitest';
import { watchProcessPauses } from '../../src/node/index.js';
import type { PauseEvent, Scheduler } from '../../src/index.js';

describe('watchProcessPauses', () => {
  it('checks for a pause as soon as SIGCONT arrives, and close() removes the listener', () => {
    let mono = 0;
    const never: Scheduler = { setTimeout: () => 0, clearTimeout: () => undefined };
    const pauses: PauseEvent[] = [];
    const before = process.listenerCount('SIGCONT');
    const watch = watchProcessPauses({
      monotonic: { now: () => mono },
      scheduler: never,
      onPause: (p) => pauses.push(p),
    });
    expect(process.listenerCount('SIGCONT')).toBe(before + 1);

    mono = 50;
    process.emit('SIGCONT', 'SIGCONT');
    expect(pauses).toEqual([]); // not overdue: nothing to report

    mono = 8_000; // stopped for ~8 s, and the timer has not run yet
    process.emit('SIGCONT', 'SIGCONT');
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toMatchObject({ trigger: 'SIGCONT', durationMs: 7_900 });

    watch.close();
    watch.close();
    expect(process.listenerCount('SIGCONT')).toBe(before);
  });
});
