import { afterEach, describe, expect, it } from 'vitest';
import { TrueClock, answerTimeRequest, type TimeReply } from '../../src/index.js';
import { SimulatedClock, manualSource, truthfulSample } from '../../src/testing/index.js';
import { fakeServerClock, syncedServerClock } from '../support/time-servers.js';

const NONCE = '0123456789abcdef0123456789abcdef';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A server TrueClock in the same virtual universe, synced by hand to within `errorMs`. */
function serverClock(sim: SimulatedClock, errorMs = 1, fraction = 0) {
  const server = syncedServerClock(sim, errorMs, fraction);
  cleanups.push(() => server.clock.close());
  return server;
}

describe('answerTimeRequest', () => {
  it('answers a well-formed request with T2, T3 and the clock’s own ε', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim, 2);
    sync();
    sim.advance(2_000);
    const reply = answerTimeRequest(clock, {
      type: 'chronobound.time-request',
      v: 1,
      nonce: NONCE,
    });
    expect(reply).toBeDefined();
    const r = reply as TimeReply;
    expect(Object.keys(r).sort()).toEqual(['errorMs', 'nonce', 'status', 't2', 't3', 'type', 'v']);
    expect(r).toMatchObject({
      type: 'chronobound.time-reply',
      v: 1,
      nonce: NONCE,
      status: 'synchronized',
    });
    const now = clock.now();
    expect(r.t2).toBeCloseTo(now.estimate, 3);
    expect(r.t3).toBeGreaterThanOrEqual(r.t2);
    // ε = 2 + 200 ppm · 2 s = 2.4 ms, rounded up to the µs, + 1 µs for rounding t2/t3.
    expect(r.errorMs).toBeGreaterThanOrEqual(now.uncertaintyMs + 0.001);
    expect(r.errorMs).toBeLessThanOrEqual(now.uncertaintyMs + 0.002);
    expect(Math.round(r.t2 * 1000)).toBe(r.t2 * 1000);
  });

  it('accepts the request as JSON text too', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    const reply = answerTimeRequest(
      clock,
      JSON.stringify({ type: 'chronobound.time-request', v: 1, nonce: NONCE }),
    );
    expect(reply?.nonce).toBe(NONCE);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an app message', { type: 'chat', text: 'hi' }],
    ['an app message as text', '{"type":"chat"}'],
    ['text that is not JSON', 'hello'],
    ['a reply', { type: 'chronobound.time-reply', v: 1, nonce: NONCE }],
    ['version 2', { type: 'chronobound.time-request', v: 2, nonce: NONCE }],
    ['no nonce', { type: 'chronobound.time-request', v: 1 }],
    ['a short nonce', { type: 'chronobound.time-request', v: 1, nonce: 'abc' }],
    ['an uppercase nonce', { type: 'chronobound.time-request', v: 1, nonce: NONCE.toUpperCase() }],
    ['a 1 MB nonce', { type: 'chronobound.time-request', v: 1, nonce: 'a'.repeat(1 << 20) }],
    ['a numeric nonce', { type: 'chronobound.time-request', v: 1, nonce: 1234 }],
    [
      'a nonce with a payload',
      { type: 'chronobound.time-request', v: 1, nonce: `${NONCE}<script>` },
    ],
    [
      'a 2 kB JSON text',
      JSON.stringify({
        type: 'chronobound.time-request',
        v: 1,
        nonce: NONCE,
        pad: 'x'.repeat(2000),
      }),
    ],
  ])('ignores %s (undefined: route it elsewhere)', (_what, message) => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    expect(answerTimeRequest(clock, message)).toBeUndefined();
  });

  it('never echoes more than the nonce: extra fields are dropped, the reply is small', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    const reply = answerTimeRequest(clock, {
      type: 'chronobound.time-request',
      v: 1,
      nonce: NONCE,
      extra: 'x'.repeat(10_000),
    });
    expect(JSON.stringify(reply)).not.toContain('xxx');
    expect(JSON.stringify(reply).length).toBeLessThan(256);
  });

  it('refuses (no times) while the clock is unsynchronized', () => {
    const sim = new SimulatedClock();
    const { clock } = serverClock(sim);
    expect(
      answerTimeRequest(clock, { type: 'chronobound.time-request', v: 1, nonce: NONCE }),
    ).toEqual({
      type: 'chronobound.time-reply',
      v: 1,
      nonce: NONCE,
      status: 'unsynchronized',
    });
  });

  it('refuses when a suspend has disrupted the clock, even before the periodic watchdog ran', () => {
    const sim = new SimulatedClock();
    const { clock, sync } = serverClock(sim);
    sync();
    sim.advance(1000);
    sim.suspend(60_000);
    // No watchdog tick has run since the suspend (watchdogIntervalMs: 0).
    const reply = answerTimeRequest(clock, {
      type: 'chronobound.time-request',
      v: 1,
      nonce: NONCE,
    });
    expect(reply).toEqual({
      type: 'chronobound.time-reply',
      v: 1,
      nonce: NONCE,
      status: 'disrupted',
    });
  });

  it('refuses when ε is above the clock’s maxUncertaintyMs', () => {
    const sim = new SimulatedClock();
    const source = manualSource();
    const clock = new TrueClock({
      source,
      maxUncertaintyMs: 5,
      monotonic: sim.monotonic,
      wall: sim.wall,
      scheduler: sim,
      watchdogIntervalMs: 0,
    });
    cleanups.push(() => clock.close());
    source.push(truthfulSample(sim, 4));
    sim.advance(60_000); // ε = 4 + 12 ms
    expect(
      answerTimeRequest(clock, { type: 'chronobound.time-request', v: 1, nonce: NONCE })?.status,
    ).toBe('unsynchronized');
  });

  it('works with a plain { now() } clock and passes free-running through', () => {
    const sim = new SimulatedClock();
    const reply = answerTimeRequest(
      fakeServerClock(sim, 3, () => 0, 'free-running'),
      {
        type: 'chronobound.time-request',
        v: 1,
        nonce: NONCE,
      },
    );
    expect(reply?.status).toBe('free-running');
  });
});
