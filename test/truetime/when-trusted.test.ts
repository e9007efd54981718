import { describe, expect, it } from 'vitest';
import { AbortError, ClockUnsynchronizedError, type TimeReading } from '../../src/index.js';
import { truthfulSample } from '../../src/testing/index.js';
import { simulatedRig } from '../support/clock.js';

/** A promise's outcome so far, without waiting for it to settle. */
function track<T>(promise: Promise<T>): {
  readonly settled: () => boolean;
  readonly value: () => T | undefined;
  readonly error: () => unknown;
} {
  let settled = false;
  let value: T | undefined;
  let error: unknown;
  promise.then(
    (v) => {
      settled = true;
      value = v;
    },
    (e: unknown) => {
      settled = true;
      error = e;
    },
  );
  return { settled: () => settled, value: () => value, error: () => error };
}

/** Lets pending promise continuations run (no time passes, virtual or real). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** A rig whose clock has had one sample and then saw a suspend: `disrupted`. */
function disruptedRig(options: { watchdogIntervalMs?: number } = {}) {
  const rig = simulatedRig({ clock: options });
  rig.source.push(truthfulSample(rig.sim, 1));
  rig.sim.suspend(5_000);
  rig.sim.advance(1000);
  expect(rig.clock.now().status).toBe('disrupted');
  return rig;
}

describe('TrueClock.whenTrusted', () => {
  it('resolves at once with the current reading when synchronized or free-running', async () => {
    const { sim, source, clock } = simulatedRig();
    source.push(truthfulSample(sim, 1));
    const synchronized = track(clock.whenTrusted({ timeoutMs: 0 }));
    await flush();
    expect(synchronized.value()).toMatchObject({ status: 'synchronized' });
    sim.advance(10_000); // past freeRunningAfterMs (three poll intervals)
    expect(clock.status).toBe('free-running');
    const freeRunning = track(clock.whenTrusted({ timeoutMs: 0 }));
    await flush();
    expect(freeRunning.value()).toMatchObject({ status: 'free-running' });
  });

  it('waits through disrupted, where ready() returns at once, until a sample gathered after the disruption', async () => {
    const { sim, source, clock } = disruptedRig();
    const stale = truthfulSample(sim, 1);
    sim.suspend(2_000);
    sim.advance(1000);
    await expect(clock.ready({ timeoutMs: 0 })).resolves.toMatchObject({ status: 'disrupted' });
    const trusted = track(clock.whenTrusted({ timeoutMs: 60_000 }));
    await sim.advanceAsync(20_000);
    source.push(stale); // gathered before the last disruption: refused
    await flush();
    expect(clock.status).toBe('disrupted');
    expect(trusted.settled()).toBe(false);
    source.push(truthfulSample(sim, 1));
    await flush();
    const reading = trusted.value() as TimeReading;
    expect(reading.status).toBe('synchronized');
    expect(reading.earliest).toBeLessThanOrEqual(sim.trueNow());
    expect(reading.latest).toBeGreaterThanOrEqual(sim.trueNow());
  });

  it('waits for the first sample on a clock that has none', async () => {
    const { sim, source, clock } = simulatedRig();
    const trusted = track(clock.whenTrusted());
    await sim.advanceAsync(5_000);
    expect(trusted.settled()).toBe(false);
    source.push(truthfulSample(sim, 1));
    await flush();
    expect(trusted.value()).toMatchObject({ status: 'synchronized' });
  });

  it('hears the recovery when ε outgrew maxUncertaintyMs with no status event since', async () => {
    // No watchdog timer: nothing refreshes the status while ε grows past the limit.
    const { sim, source, clock } = simulatedRig({
      clock: { maxUncertaintyMs: 5, maxWanderPpmPerHour: Infinity, watchdogIntervalMs: 0 },
    });
    source.push(truthfulSample(sim, 1));
    sim.advance(30_000); // 1 ms + 200 ppm · 30 s = 7 ms > 5 ms
    const trusted = track(clock.whenTrusted());
    await flush();
    expect(trusted.settled()).toBe(false);
    source.push(truthfulSample(sim, 1));
    await flush();
    expect(trusted.value()).toMatchObject({ status: 'synchronized' });
    expect(sim.pendingTimers).toBe(0); // the timeout's timer is cleared
  });

  it('rejects with ClockUnsynchronizedError naming the last problem once timeoutMs passes', async () => {
    const { sim, clock } = disruptedRig();
    const trusted = track(clock.whenTrusted({ timeoutMs: 500 }));
    await sim.advanceAsync(499);
    expect(trusted.settled()).toBe(false);
    await sim.advanceAsync(1);
    const error = trusted.error();
    expect(error).toBeInstanceOf(ClockUnsynchronizedError);
    expect((error as ClockUnsynchronizedError).status).toBe('disrupted');
    expect(String(error)).toMatch(
      /whenTrusted\(\) refused: the clock is disrupted .*not trusted within 500 ms; last problem: the watchdog saw the monotonic and wall clocks disagree/,
    );
    expect(String(error)).not.toMatch(/Wait for clock\.ready\(\)/);
  });

  it('rejects with AbortError when the signal aborts, or was aborted already', async () => {
    const { sim, clock } = disruptedRig({ watchdogIntervalMs: 0 });
    const controller = new AbortController();
    const trusted = track(clock.whenTrusted({ signal: controller.signal }));
    await sim.advanceAsync(100);
    expect(trusted.settled()).toBe(false);
    controller.abort(new Error('shutting down'));
    await flush();
    expect(trusted.error()).toBeInstanceOf(AbortError);
    expect(String(trusted.error())).toMatch(/whenTrusted\(\) was aborted: shutting down/);
    expect(sim.pendingTimers).toBe(0);
    await expect(clock.whenTrusted({ signal: controller.signal })).rejects.toBeInstanceOf(
      AbortError,
    );
  });

  it('rejects pending and later calls with ClockUnsynchronizedError when the clock is closed', async () => {
    const { sim, clock } = disruptedRig();
    const trusted = track(clock.whenTrusted());
    await sim.advanceAsync(100);
    await clock.close();
    await flush();
    expect(trusted.error()).toBeInstanceOf(ClockUnsynchronizedError);
    expect(String(trusted.error())).toMatch(
      /whenTrusted\(\) refused: .*the clock was closed; last problem: /,
    );
    await expect(clock.whenTrusted()).rejects.toThrow(/whenTrusted\(\) refused: .*closed/);
    expect(sim.pendingTimers).toBe(0);
  });

  it('rejects a negative timeoutMs', () => {
    const { clock } = simulatedRig();
    expect(() => clock.whenTrusted({ timeoutMs: -1 })).toThrow(/timeoutMs/);
  });
});
