/**
 * NtpSocket over an injected DatagramTransport: what it did on node:dgram it does
 * on any transport — one socket per family, opened lazily, ref'd only while an
 * exchange is pending, late and duplicate replies recognised, refusals reported,
 * names resolved by the transport — here in virtual time on the simulated network.
 */
import { describe, expect, it } from 'vitest';
import { AbortError, InvalidArgumentError, SourceUnavailableError } from '../../src/index.js';
import {
  NtpSocket,
  NtpTimeoutError,
  ntpSource,
  queryNtp,
  udpTransport,
  type DatagramHandlers,
  type DatagramSocket,
  type DatagramTransport,
  type NtpExchange,
  type NtpRejectedError,
} from '../../src/ntp/index.js';
import {
  SimulatedClock,
  createSimulatedNtpNetwork,
  type SimulatedNtpNetwork,
} from '../../src/testing/index.js';
import { clocksOf, settle } from '../support/clock.js';
import { createNtpServer } from '../../src/testing/node/index.js';

/** A transport that records what NtpSocket asks of it, on top of another. */
function recording(inner: DatagramTransport) {
  const calls: string[] = [];
  const transport: DatagramTransport = {
    async lookup(host) {
      calls.push(`lookup ${host}`);
      return inner.lookup!(host);
    },
    async open(family, handlers) {
      calls.push(`open ${family}`);
      const socket = await inner.open(family, handlers);
      return {
        send: (bytes, address, port) => {
          calls.push(`send ${address}:${port}`);
          return socket.send(bytes, address, port);
        },
        ref: () => void calls.push('ref'),
        unref: () => void calls.push('unref'),
        close: () => {
          calls.push('close');
          return socket.close();
        },
      };
    },
  };
  return { transport, calls };
}

function world(seed = 1) {
  const sim = new SimulatedClock();
  const network = createSimulatedNtpNetwork(sim, { seed });
  const clocks = clocksOf(sim);
  return { sim, network, clocks };
}

/** θ ± λ contains the server's clock at T4 (the simulated machine does not drift here). */
function expectContainsTruth(network: SimulatedNtpNetwork, sim: SimulatedClock, x: NtpExchange) {
  const server = network.servers.find(
    (s) => x.server === s.address || x.server === `${s.name}:123`,
  )!;
  const trueAtT4 = sim.trueNow() - (sim.monotonic.now() - x.t4);
  expect(Math.abs(x.offsetMs - (server.clockAt(trueAtT4) - x.t4))).toBeLessThanOrEqual(x.errorMs);
}

describe('NtpSocket on an injected transport', () => {
  it('opens one socket per family lazily, holds it only while an exchange is pending, and closes it', async () => {
    const { sim, network, clocks } = world();
    const server = network.addServer({ requestDelayMs: 3, responseDelayMs: 4 });
    const { transport, calls } = recording(network);
    const socket = new NtpSocket({ transport });
    expect(calls).toEqual([]); // nothing opened before the first exchange
    const xs = await settle(
      sim,
      Promise.all([
        socket.query({ host: server.host, port: server.port, ...clocks }),
        socket.query({ host: server.host, port: server.port, ...clocks }),
      ]),
    );
    expect(calls.filter((c) => c.startsWith('open'))).toEqual(['open 4']);
    expect(calls.filter((c) => c.startsWith('send'))).toHaveLength(2);
    // ref'd while pending, unref'd once nothing is: the last word is unref.
    expect(calls).toContain('ref');
    expect(calls[calls.length - 1]).toBe('unref');
    for (const x of xs) expectContainsTruth(network, sim, x);
    expect(network.openSockets).toBe(1);
    await socket.close();
    expect(calls[calls.length - 1]).toBe('close');
    expect(network.openSockets).toBe(0);
  });

  it('resolves host names through the transport (no DNS), and says clearly when it cannot', async () => {
    const { sim, network, clocks } = world();
    network.addServer({ name: 'time.sim', offsetMs: 42 });
    const { transport, calls } = recording(network);
    const x = await settle(sim, queryNtp({ host: 'time.sim', transport, ...clocks }));
    expect(calls).toContain('lookup time.sim');
    expect(x.server).toBe('time.sim:123');
    expectContainsTruth(network, sim, x);
    await expect(
      settle(sim, queryNtp({ host: 'nowhere.sim', transport: network, ...clocks })),
    ).rejects.toThrow(/cannot resolve nowhere\.sim/);
    // A transport without lookup takes addresses only.
    const noNames: DatagramTransport = { open: (f, h) => network.open(f, h) };
    const error: unknown = await queryNtp({
      host: 'time.sim',
      transport: noNames,
      ...clocks,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect((error as Error).message).toMatch(/resolves no names/);
    expect(network.openSockets).toBe(0);
  });

  it("recognises a late reply ('stale-transmit'), a second copy ('duplicate') and a reply from elsewhere ('unexpected-address')", async () => {
    const { sim, network, clocks } = world();
    const server = network.addServer();
    const rejected: NtpRejectedError[] = [];
    const socket = new NtpSocket({ transport: network, onRejected: (e) => rejected.push(e) });
    const target = { host: server.host, port: server.port, ...clocks };

    server.configure({ responseDelayMs: 300 });
    await expect(settle(sim, socket.query({ ...target, timeoutMs: 100 }))).rejects.toBeInstanceOf(
      NtpTimeoutError,
    );
    await sim.advanceAsync(500);
    expect(rejected.map((e) => e.reason)).toEqual(['stale-transmit']);

    server.configure({ responseDelayMs: 0 });
    server.setFault('duplicate', { count: 1 });
    await settle(sim, socket.query(target));
    await sim.advanceAsync(10);
    server.setFault('other-port', { count: 1, thenValid: true });
    await settle(sim, socket.query(target));
    server.setFault('bad-origin', { count: 1, thenValid: true });
    await settle(sim, socket.query(target));
    expect(rejected.map((e) => e.reason)).toEqual([
      'stale-transmit',
      'duplicate',
      'unexpected-address',
      'origin-mismatch',
    ]);
    await socket.close();
  });

  it('a transport that cannot open fails the exchange as unavailable; the next exchange opens afresh', async () => {
    const { sim, network, clocks } = world();
    const server = network.addServer();
    let failures = 1;
    let opens = 0;
    const flaky: DatagramTransport = {
      open(family, handlers) {
        opens++;
        if (failures-- > 0) throw new Error('EMFILE: too many open files');
        return network.open(family, handlers);
      },
    };
    const socket = new NtpSocket({ transport: flaky });
    const target = { host: server.host, port: server.port, ...clocks };
    const error: unknown = await socket.query(target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect((error as Error).message).toMatch(/cannot open a UDP socket: EMFILE/);
    await settle(sim, socket.query(target));
    expect(opens).toBe(2);
    await socket.close();
  });

  it('a socket error fails that family’s pending exchanges; a failed send fails its exchange', async () => {
    const { sim, network, clocks } = world();
    const server = network.addServer({ responseDelayMs: 50 });
    let handlers: DatagramHandlers | undefined;
    let sendError: Error | undefined;
    let throwOnSend = false;
    const transport: DatagramTransport = {
      open(family, h) {
        handlers = h;
        const socket = network.open(family, h) as DatagramSocket;
        return {
          send: (bytes, address, port) => {
            if (throwOnSend) throw new Error('socket is not running');
            if (sendError !== undefined) return Promise.reject(sendError);
            return socket.send(bytes, address, port);
          },
          close: () => socket.close(),
        };
      },
    };
    const socket = new NtpSocket({ transport });
    const target = { host: server.host, port: server.port, ...clocks };
    const pending = socket.query(target);
    await sim.advanceAsync(1);
    handlers!.onError(new Error('ENETDOWN'));
    await expect(pending).rejects.toThrow(/socket error: ENETDOWN/);
    // A fresh socket for the next exchange.
    const first = handlers;
    await settle(sim, socket.query(target));
    expect(handlers).not.toBe(first);
    sendError = new Error('EHOSTUNREACH');
    await expect(settle(sim, socket.query(target))).rejects.toThrow(
      /cannot send to 192\.0\.2\.1:123: EHOSTUNREACH/,
    );
    sendError = undefined;
    throwOnSend = true;
    await expect(settle(sim, socket.query(target))).rejects.toThrow(/cannot send: /);
    await socket.close();
  });

  it('closing while the transport is still opening aborts the exchange and closes the socket once it opens', async () => {
    const { network, clocks } = world();
    const server = network.addServer();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: DatagramTransport = {
      async open(family, handlers) {
        await gate;
        return network.open(family, handlers);
      },
    };
    const socket = new NtpSocket({ transport: slow });
    const p = socket.query({ host: server.host, port: server.port, ...clocks });
    await Promise.resolve();
    const closing = socket.close();
    release();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    await closing;
    expect(network.openSockets).toBe(0);
  });

  it('validates the transport', () => {
    expect(() => new NtpSocket({ transport: {} as never })).toThrow(
      expect.objectContaining({ argument: 'transport' }),
    );
    expect(() => new NtpSocket({ transport: {} as never })).toThrow(InvalidArgumentError);
  });

  it('ntpSource over the simulated network opens no real socket', async () => {
    const { sim, network } = world();
    const server = network.addServer({ requestDelayMs: 5, responseDelayMs: 5 });
    const udp = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
    const before = udp();
    const source = ntpSource({
      servers: [server.address],
      transport: network,
      scheduler: sim,
      wall: sim.wall,
    });
    const samples: unknown[] = [];
    source.subscribe((x) => samples.push(x), sim.monotonic);
    await sim.advanceAsync(10_000);
    expect(samples.length).toBeGreaterThanOrEqual(4);
    expect(udp()).toBe(before);
    await source.close();
    expect(network.openSockets).toBe(0);
  });

  it('the default transport is node:dgram: a real exchange with the loopback server', async () => {
    const server = await createNtpServer({ offsetMs: 250 });
    try {
      const x = await queryNtp({ host: server.host, port: server.port, transport: udpTransport });
      expect(Math.abs(x.offsetMs - (server.trueAt(x.t4) - x.t4))).toBeLessThanOrEqual(x.errorMs);
      expect(await udpTransport.lookup!('localhost')).toMatch(/^(127\.0\.0\.1|::1)$/);
    } finally {
      await server.close();
    }
  });
});
