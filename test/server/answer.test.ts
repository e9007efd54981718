import { describe, expect, it } from 'vitest';
import { answerTimeRequest, type TimeReading, type TimeReply } from '../../src/index.js';
import { SimulatedClock } from '../../src/testing/index.js';
import {
  NOT_TIME_REQUESTS,
  TEST_NONCE as NONCE,
  TEST_REQUEST as REQUEST,
  expectStampedBy,
  fakeServerClock,
  testServerClock as serverClock,
} from '../support/time-servers.js';

/** The reply that refuses: the nonce and the clock's status, no times. */
const refusal = (status: TimeReading['status']) => ({
  type: 'chronobound.time-reply',
  v: 1,
  nonce: NONCE,
  status,
});

describe('answerTimeRequest', () => {
  it('answers a well-formed request with T2, T3 and the clock’s own ε', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim, 2);
    sync();
    sim.advance(2_000);
    const reply = answerTimeRequest(clock, REQUEST);
    expect(reply).toBeDefined();
    const r = reply as TimeReply;
    expect(Object.keys(r).sort()).toEqual(['errorMs', 'nonce', 'status', 't2', 't3', 'type', 'v']);
    // ε = 2 + 200 ppm · 2 s = 2.4 ms, rounded up to the µs, + 1 µs for rounding t2/t3.
    expectStampedBy(r, clock);
    expect(Math.round(r.t2 * 1000)).toBe(r.t2 * 1000);
  });

  it('accepts the request as JSON text too', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    const reply = answerTimeRequest(clock, JSON.stringify(REQUEST));
    expect(reply?.nonce).toBe(NONCE);
  });

  it.each(NOT_TIME_REQUESTS)('ignores %s (undefined: route it elsewhere)', (_what, message) => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    expect(answerTimeRequest(clock, message)).toBeUndefined();
  });

  it('never echoes more than the nonce: extra fields are dropped, the reply is small', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    const reply = answerTimeRequest(clock, { ...REQUEST, extra: 'x'.repeat(10_000) });
    expect(JSON.stringify(reply)).not.toContain('xxx');
    expect(JSON.stringify(reply).length).toBeLessThan(256);
  });

  it('refuses (no times) while the clock is unsynchronized', () => {
    const sim = new SimulatedClock();
    const { clock } = serverClock(sim);
    expect(answerTimeRequest(clock, REQUEST)).toEqual(refusal('unsynchronized'));
  });

  it('refuses when a suspend has disrupted the clock, even before the periodic watchdog ran', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    sim.advance(1000);
    sim.suspend(60_000);
    // No watchdog tick has run since the suspend (watchdogIntervalMs: 0).
    expect(answerTimeRequest(clock, REQUEST)).toEqual(refusal('disrupted'));
  });

  it('refuses when ε is above the clock’s maxUncertaintyMs', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim, 4, 0, { maxUncertaintyMs: 5 });
    sync();
    sim.advance(60_000); // ε = 4 + 12 ms
    expect(answerTimeRequest(clock, REQUEST)?.status).toBe('unsynchronized');
  });

  it('works with a plain { now() } clock and passes free-running through', () => {
    const sim = new SimulatedClock();
    const reply = answerTimeRequest(
      fakeServerClock(sim, 3, () => 0, 'free-running'),
      REQUEST,
    );
    expect(reply?.status).toBe('free-running');
  });
});
