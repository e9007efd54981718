/**
 * The simulated NTP network from chronobound/testing: its servers speak the same
 * NTP as the loopback server (the reply builder is shared), keep their clocks and
 * delays as configured, lose and stop as told, all in virtual time; and the module
 * is browser-safe.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/index.js';
import {
  NtpKissOfDeathError,
  NtpRejectedError,
  NtpTimeoutError,
  queryNtp,
  type NtpRejectionReason,
} from '../../src/ntp/index.js';
import {
  SimulatedClock,
  createSimulatedNtpNetwork,
  type NtpServerFault,
} from '../../src/testing/index.js';
import { bundleForBrowser } from '../support/browser-bundle.js';
import { fcParams } from '../support/fc.js';
import { clocksOf, settle } from '../support/clock.js';

describe('createSimulatedNtpNetwork', () => {
  it('property: an exchange’s θ ± λ contains the server clock, whatever its offset, drift and the path', () =>
    fc.assert(
      fc.asyncProperty(
        fc.record({
          offsetMs: fc.double({ min: -1e7, max: 1e7, noNaN: true }),
          driftPpm: fc.double({ min: -500, max: 500, noNaN: true }),
          localDriftPpm: fc.double({ min: -150, max: 150, noNaN: true }),
          requestDelayMs: fc.double({ min: 0, max: 200, noNaN: true }),
          responseDelayMs: fc.double({ min: 0, max: 200, noNaN: true }),
          jitterMs: fc.double({ min: 0, max: 50, noNaN: true }),
          rootDelayMs: fc.double({ min: 0, max: 20, noNaN: true }),
          rootDispersionMs: fc.double({ min: 0, max: 20, noNaN: true }),
          seed: fc.integer(),
        }),
        async (p) => {
          const sim = new SimulatedClock({ driftPpm: p.localDriftPpm });
          const network = createSimulatedNtpNetwork(sim, { seed: p.seed });
          const server = network.addServer(p);
          await sim.advanceAsync(5_000); // let the server's drift show
          const x = await settle(
            sim,
            queryNtp({
              host: server.host,
              transport: network,
              ...clocksOf(sim),
            }),
          );
          // True time at T4: back from now by the monotonic time since, at the local rate.
          const trueAtT4 =
            sim.trueNow() - (sim.monotonic.now() - x.t4) * (1 - p.localDriftPpm * 1e-6);
          const truth = server.clockAt(trueAtT4) - x.t4;
          expect(Math.abs(x.offsetMs - truth)).toBeLessThanOrEqual(x.errorMs);
          expect(x.delayMs).toBeGreaterThanOrEqual(
            (p.requestDelayMs + p.responseDelayMs) * (1 - 1e-9) - 1e-6,
          );
          expect(x.delayMs).toBeLessThanOrEqual(
            p.requestDelayMs + p.responseDelayMs + 2 * p.jitterMs + 1e-6,
          );
        },
      ),
      fcParams(200),
    ));

  it('gives the same refusals as the loopback server for the same faults (one shared reply builder)', async () => {
    const sim = new SimulatedClock();
    const network = createSimulatedNtpNetwork(sim);
    const server = network.addServer();
    const cases: [NtpServerFault, NtpRejectionReason][] = [
      ['truncated', 'truncated'],
      ['wrong-mode', 'wrong-mode'],
      ['wrong-version', 'unsupported-version'],
      ['zero-transmit', 'zero-transmit'],
      ['negative-delay', 'negative-delay'],
      ['absurd-delay', 'absurd-delay'],
    ];
    const options = {
      host: server.host,
      transport: network,
      ...clocksOf(sim),
      timeoutMs: 100,
    };
    for (const [fault, reason] of cases) {
      server.setFault(fault, { count: 1 });
      const error: unknown = await settle(sim, queryNtp(options)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NtpRejectedError);
      expect((error as NtpRejectedError).reason).toBe(reason);
    }
    server.setFault('drop', { count: 1 });
    await expect(settle(sim, queryNtp(options))).rejects.toBeInstanceOf(NtpTimeoutError);
    server.configure({ kissCode: 'RATE' });
    const kiss: unknown = await settle(sim, queryNtp(options)).catch((e: unknown) => e);
    expect(kiss).toBeInstanceOf(NtpKissOfDeathError);
    expect((kiss as NtpKissOfDeathError).kissCode).toBe('RATE');
    server.configure({ kissCode: undefined, stratum: 3, rootDelayMs: 7, rootDispersionMs: 2 });
    const x = await settle(sim, queryNtp(options));
    expect(x.stratum).toBe(3);
    expect(typeof x.referenceId).toBe('string');
    expect(x.rootDelayMs).toBeGreaterThanOrEqual(7);
  });

  it('loses datagrams at the configured rate, stops and starts, and counts it all', async () => {
    const sim = new SimulatedClock();
    const network = createSimulatedNtpNetwork(sim, { seed: 12 });
    const server = network.addServer({ lossRate: 0.5 });
    const options = {
      host: server.host,
      transport: network,
      ...clocksOf(sim),
      timeoutMs: 50,
    };
    let answered = 0;
    for (let i = 0; i < 200; i++) {
      await settle(sim, queryNtp(options)).then(
        () => answered++,
        () => undefined,
      );
    }
    // Each exchange survives two coin flips: about a quarter answer.
    expect(answered).toBeGreaterThan(30);
    expect(answered).toBeLessThan(70);
    expect(server.stats.lost).toBeGreaterThan(80);
    expect(server.requestTimes).toHaveLength(200);
    server.configure({ lossRate: 0 });
    server.stop();
    expect(server.running).toBe(false);
    await expect(settle(sim, queryNtp(options))).rejects.toBeInstanceOf(NtpTimeoutError);
    server.start();
    await settle(sim, queryNtp(options));
    const log = network.datagrams();
    expect(log.filter((d) => d.kind === 'request')).toHaveLength(202);
    expect(log.every((d) => d.atMs >= Date.UTC(2026, 0, 1))).toBe(true);
  });

  it('steps, sets and drifts a server clock continuously, in true time', () => {
    const sim = new SimulatedClock();
    const network = createSimulatedNtpNetwork(sim);
    const server = network.addServer({ offsetMs: 100, driftPpm: 50 });
    const t0 = sim.trueNow();
    expect(server.trueNow()).toBe(t0 + 100);
    sim.advance(1_000_000);
    expect(server.trueNow()).toBeCloseTo(t0 + 1_000_000 + 100 + 50, 6);
    server.setDriftPpm(0);
    expect(server.trueNow()).toBeCloseTo(t0 + 1_000_000 + 150, 6);
    server.step(-50);
    server.setOffset(7);
    expect(server.trueNow()).toBeCloseTo(sim.trueNow() + 7, 6);
    expect(server.clockAt(sim.trueNow() + 10)).toBeCloseTo(sim.trueNow() + 17, 6);
  });

  it('names, addresses and options are checked', () => {
    const sim = new SimulatedClock();
    const network = createSimulatedNtpNetwork(sim);
    const a = network.addServer({ name: 'a.sim' });
    const b = network.addServer({ host: '2001:db8::123', port: 1123 });
    expect(a.address).toBe('192.0.2.1:123');
    expect(b.address).toBe('[2001:db8::123]:1123');
    expect(network.addServer().address).toBe('192.0.2.2:123');
    const bad: [Record<string, unknown>, string][] = [
      [{ host: 'example.com' }, 'host'],
      [{ host: '192.0.2.1' }, 'host'], // taken
      [{ port: 0 }, 'port'],
      [{ name: 'a.sim' }, 'name'], // taken
      [{ name: '10.0.0.1' }, 'name'],
      [{ lossRate: 1.5 }, 'lossRate'],
      [{ offsetMs: NaN }, 'offsetMs'],
      [{ requestDelayMs: -1 }, 'requestDelayMs'],
      [{ kissCode: 'NOPE' }, 'kissCode'],
    ];
    for (const [options, argument] of bad) {
      expect(() => network.addServer(options as never)).toThrow(
        expect.objectContaining({ argument }),
      );
    }
    expect(() => a.configure({ lossRate: -0.1 })).toThrow(InvalidArgumentError);
    expect(() => a.setFault('drop', { count: 0 })).toThrow(InvalidArgumentError);
    expect(() => createSimulatedNtpNetwork({} as never)).toThrow(InvalidArgumentError);
    expect(() => createSimulatedNtpNetwork(sim, { seed: 1.5 })).toThrow(InvalidArgumentError);
  });

  it('is browser-safe: bundles for the browser with no Node built-in and no Node-only NTP code', async () => {
    const { text, inputs } = await bundleForBrowser('src/testing/simulated-network.ts');
    expect(inputs).toContain('src/testing/ntp-reply.ts');
    for (const input of inputs) {
      expect(input).toMatch(/^src\//);
      expect(input).not.toMatch(/^src\/ntp\/(client|transport|source)\.ts$/);
    }
    expect(text).not.toMatch(/["']node:/);
  });
});
