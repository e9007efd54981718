import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClockUnsynchronizedError,
  InvalidArgumentError,
  Lease,
  LeaseInvalidError,
  TrueClock,
} from '../../src/index.js';
import { truthfulSample } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { simulatedRig } from '../support/clock.js';

function setup(options: { driftPpm?: number; maxUncertaintyMs?: number } = {}) {
  return simulatedRig({
    sim: { driftPpm: options.driftPpm ?? 0, wallOffsetMs: 0 },
    clock: {
      maxDriftPpm: 200,
      maxUncertaintyMs: options.maxUncertaintyMs ?? Infinity,
      freeRunningAfterMs: Infinity,
    },
  });
}

describe('Lease', () => {
  it('DDIA Fig. 8-4: a holder paused past the expiry wakes up to an invalid lease', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    const lease = Lease.acquire(clock, 10_000, { token: 33n });
    expect(lease.isValid()).toBe(true);
    expect(lease.token).toBe(33n);

    // The holder checked the lease, then a stop-the-world GC pause of 15 s hits.
    sim.advance(1_000);
    lease.assertValid();
    sim.pause(15_000);

    // True time is now past the expiry; the holder must find out before writing.
    expect(sim.trueNow()).toBeGreaterThan(lease.expiresAt);
    expect(lease.isValid()).toBe(false);
    expect(lease.remainingMs()).toBe(0);
    expect(() => lease.assertValid()).toThrow(LeaseInvalidError);
    expect(lease.invalidReason).toMatch(/expired/);
  });

  it('is valid only while latest < expiry − margin, and never while true time is past it', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -200, max: 200, noNaN: true }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        fc.double({ min: 100, max: 60_000, noNaN: true }),
        fc.double({ min: 0, max: 50, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 5_000, noNaN: true }), { minLength: 1, maxLength: 20 }),
        (driftPpm, errorMs, fraction, durationMs, marginMs, steps) => {
          const { sim, source, clock } = setup({ driftPpm });
          source.push(truthfulSample(sim, errorMs, fraction));
          let lease: Lease;
          try {
            lease = Lease.acquire(clock, durationMs, { marginMs });
          } catch (e) {
            // Only when the lease cannot outlast its margin and the uncertainty.
            expect(e).toBeInstanceOf(LeaseInvalidError);
            expect(durationMs).toBeLessThanOrEqual(marginMs + 2 * clock.now().uncertaintyMs + 1e-6);
            return;
          }
          // The lease never outlasts durationMs of true time from acquisition.
          expect(lease.expiresAt).toBeLessThanOrEqual(sim.trueNow() + durationMs);
          for (const ms of steps) {
            sim.advance(ms);
            const valid = lease.isValid();
            if (valid) expect(sim.trueNow()).toBeLessThan(lease.expiresAt - marginMs);
            expect(valid).toBe(
              clock.now().latest < lease.expiresAt - marginMs && !lease.invalidReason,
            );
          }
          // Walk up to the boundary in shrinking steps, then just past it.
          for (let i = 0; i < 60 && lease.isValid(); i++) {
            sim.advance(lease.remainingMs() / 2 + 1e-3);
            const valid = lease.isValid();
            if (valid) expect(sim.trueNow()).toBeLessThan(lease.expiresAt - marginMs);
            expect(valid).toBe(clock.now().latest < lease.expiresAt - marginMs);
          }
          expect(lease.isValid()).toBe(false);
          void clock.close();
        },
      ),
      fcParams(500),
    );
  });

  it('remaining time is monotone non-increasing, even when a tighter sample narrows the interval', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ advance: fc.double({ min: 0, max: 3_000, noNaN: true }) }),
            fc.record({
              errorMs: fc.double({ min: 0, max: 30, noNaN: true }),
              fraction: fc.double({ min: -1, max: 1, noNaN: true }),
            }),
          ),
          { maxLength: 30 },
        ),
        (ops) => {
          const { sim, source, clock } = setup({ driftPpm: 150 });
          source.push(truthfulSample(sim, 30, 0.5));
          const lease = Lease.acquire(clock, 20_000, { marginMs: 10 });
          let previous = lease.remainingMs();
          expect(previous).toBeGreaterThan(0);
          for (const op of ops) {
            if ('advance' in op) sim.advance(op.advance);
            else source.push(truthfulSample(sim, op.errorMs, op.fraction));
            const remaining = lease.remainingMs();
            // Time left exactly while the clock can prove the lease is held.
            expect(remaining > 0).toBe(lease.isValid());
            expect(remaining).toBeLessThanOrEqual(previous);
            // What it reports is never more than the clock can prove.
            if (remaining > 0) {
              expect(remaining).toBeLessThanOrEqual(lease.expiresAt - 10 - clock.now().latest);
            }
            previous = remaining;
          }
          void clock.close();
        },
      ),
      fcParams(300),
    );
  });

  it('a tighter sample lowers latest, but remainingMs does not go up', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 40));
    const lease = Lease.acquire(clock, 10_000);
    const before = lease.remainingMs();
    source.push(truthfulSample(sim, 1)); // latest drops by ~39 ms
    expect(lease.expiresAt - clock.now().latest).toBeGreaterThan(before + 30);
    expect(lease.remainingMs()).toBe(before);
  });

  it('fails closed on an unsynchronized clock', () => {
    const { sim, source, clock } = setup();
    expect(() => Lease.acquire(clock, 1000)).toThrow(ClockUnsynchronizedError);
    const lease = new Lease({ clock, expiresAt: sim.trueNow() + 60_000 });
    expect(lease.isValid()).toBe(false);
    expect(() => lease.assertValid()).toThrow(/unsynchronized/);
    // Sticky: a sample arriving later does not revive a lease its holder was told is invalid.
    source.push(truthfulSample(sim, 1));
    expect(lease.isValid()).toBe(false);
    expect(lease.remainingMs()).toBe(0);
  });

  it('fails closed once the uncertainty exceeds maxUncertaintyMs', () => {
    const { sim, source, clock } = setup({ maxUncertaintyMs: 10 });
    source.push(truthfulSample(sim, 1));
    const lease = Lease.acquire(clock, 600_000);
    sim.advance(30_000); // ε = 1 + 6 ms
    expect(lease.isValid()).toBe(true);
    sim.advance(30_000); // ε = 1 + 12 ms > 10
    expect(clock.now().status).toBe('unsynchronized');
    expect(lease.isValid()).toBe(false);
    expect(lease.invalidReason).toMatch(/unsynchronized/);
  });

  it('fails closed on a disrupted clock (the watchdog saw the wall clock jump)', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    const lease = Lease.acquire(clock, 60_000, { token: 1n });
    sim.advance(100);
    sim.suspend(5_000); // monotonic stops, wall and true time go on
    expect(lease.isValid()).toBe(false);
    expect(clock.now().status).toBe('disrupted');
    expect(() => lease.assertValid()).toThrow(/disrupted/);
    expect(() => Lease.acquire(clock, 60_000)).toThrow(ClockUnsynchronizedError);
  });

  it('can be invalidated (released), keeping the first reason', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    const lease = Lease.acquire(clock, 60_000);
    lease.invalidate('released');
    lease.invalidate('something else');
    expect(lease.isValid()).toBe(false);
    expect(() => lease.assertValid()).toThrow('Lease is not valid: released.');
  });

  it('rejects bad input with a typed error naming it', () => {
    const { sim, source, clock } = setup();
    source.push(truthfulSample(sim, 1));
    const named = (fn: () => unknown, argument: string) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgumentError);
        expect((e as InvalidArgumentError).argument).toBe(argument);
        return;
      }
      throw new Error(`expected InvalidArgumentError for ${argument}`);
    };
    named(() => Lease.acquire(clock, 0), 'durationMs');
    named(() => Lease.acquire(clock, NaN), 'durationMs');
    named(() => Lease.acquire(clock, 1000, { marginMs: -1 }), 'marginMs');
    named(() => new Lease({ clock, expiresAt: NaN }), 'expiresAt');
    named(() => new Lease({ clock, expiresAt: 1, token: 1 as unknown as bigint }), 'token');
    named(() => new Lease({ clock: {} as TrueClock, expiresAt: 1 }), 'clock');
    expect(() => Lease.acquire(clock, 5, { marginMs: 10 })).toThrow(LeaseInvalidError);
  });
});
